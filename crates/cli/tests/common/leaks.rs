//! Searching captured channels (database dumps, queue payloads, HTTP answers, logs, files) for
//! confidentiality markers, in every encoding a careless line of code could store them in: the
//! text itself, standard and URL-safe base64 (at each of the three byte alignments, so a marker
//! inside a longer encoded value is found), lowercase and uppercase hex (PostgreSQL prints `bytea`
//! as `\x` + hex), and JSON-escaped text (as `serde_json` writes it, and fully `\u`-escaped).
#![allow(dead_code, clippy::unwrap_used)]

use base64::Engine as _;

/// One encoded form of a marker.
#[derive(Debug, Clone)]
pub struct Needle {
    pub marker: String,
    pub encoding: &'static str,
    pub bytes: Vec<u8>,
}

/// The part of `encode(prefix + marker)` that depends on the marker's bytes only, for each of the
/// three alignments of the marker inside a longer value.
fn base64_forms(marker: &[u8], engine: &base64::engine::GeneralPurpose) -> Vec<Vec<u8>> {
    (0..3usize)
        .map(|k| {
            let mut input = vec![0u8; k];
            input.extend_from_slice(marker);
            let enc = engine.encode(&input).into_bytes();
            let from = (8 * k).div_ceil(6);
            let to = (8 * input.len()) / 6;
            enc[from..to].to_vec()
        })
        .collect()
}

/// Every encoded form of every marker.
pub fn needles(markers: &[&str]) -> Vec<Needle> {
    let std = base64::engine::general_purpose::STANDARD;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut out = Vec::new();
    for m in markers {
        let mut push = |encoding: &'static str, bytes: Vec<u8>| {
            out.push(Needle {
                marker: (*m).to_owned(),
                encoding,
                bytes,
            });
        };
        push("text", m.as_bytes().to_vec());
        for f in base64_forms(m.as_bytes(), &std) {
            push("base64", f);
        }
        for f in base64_forms(m.as_bytes(), &url) {
            push("base64url", f);
        }
        push("hex", hex::encode(m).into_bytes());
        push("HEX", hex::encode_upper(m).into_bytes());
        let json = serde_json::to_string(m).unwrap();
        push("JSON-escaped", json.as_bytes()[1..json.len() - 1].to_vec());
        let all_u: String = m.encode_utf16().map(|u| format!("\\u{u:04x}")).collect();
        push("JSON \\u-escaped", all_u.into_bytes());
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Every (channel, marker, encoding) found.
pub fn find(needles: &[Needle], channels: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut hits = Vec::new();
    for (channel, bytes) in channels {
        for n in needles {
            if contains(bytes, &n.bytes) {
                hits.push(format!("{} ({}) in {channel}", n.marker, n.encoding));
            }
        }
    }
    hits
}

/// Fail with every hit.
pub fn assert_none(needles: &[Needle], channels: &[(String, Vec<u8>)]) {
    let hits = find(needles, channels);
    assert!(
        hits.is_empty(),
        "confidential markers leaked ({} hits):\n  {}",
        hits.len(),
        hits.join("\n  ")
    );
}

/// Every regular file under `dir`, recursively, as channels.
pub fn files_under(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// Every table of the PostgreSQL database at `url`, one channel per table: each row as
/// PostgreSQL's text form of the whole row (`bytea` columns as `\x` + hex).
pub async fn postgres_tables(url: &str) -> Vec<(String, Vec<u8>)> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut out = Vec::new();
    for t in tables {
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT t::text FROM \"{}\" t",
            t.replace('"', "\"\"")
        )))
        .fetch_all(&mut conn)
        .await
        .unwrap();
        out.push((
            format!("PostgreSQL table {t}"),
            rows.join("\n").into_bytes(),
        ));
    }
    let _ = conn.close().await;
    out
}

/// The search finds each marker in each encoding, at every alignment inside a longer value.
pub fn self_check() {
    let marker = "MARKER-self-check-0f9e";
    let needles = needles(&[marker]);
    let std = base64::engine::general_purpose::STANDARD;
    let url = base64::engine::general_purpose::URL_SAFE;
    for k in 0..3 {
        let mut v = b"xyz"[..k].to_vec();
        v.extend_from_slice(marker.as_bytes());
        v.extend_from_slice(b"tail");
        let samples = [
            std.encode(&v),
            url.encode(&v),
            hex::encode(&v),
            hex::encode_upper(&v),
            serde_json::to_string(&String::from_utf8(v.clone()).unwrap()).unwrap(),
        ];
        for s in samples {
            let hay = format!("row: {s} end").into_bytes();
            assert!(
                !find(&needles, &[(s.clone(), hay)]).is_empty(),
                "{s} not found"
            );
        }
    }
    assert!(find(&needles, &[(String::new(), b"MARKER-self-check".to_vec())]).is_empty());
}
