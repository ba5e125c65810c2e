//! Structural checks of fetched bytes: DER framing, PEM certificate blocks, the percent-encoded
//! issuer-chain headers, the signed JSON of Intel PCS, `Cache-Control`. These only decide
//! whether bytes are *shaped* right (so garbage is refetched or reported); every signature is
//! checked by `clave-attest`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Why bytes are not what they should be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    Truncated,
    Malformed(&'static str),
}

/// Checks that `b` is exactly one DER SEQUENCE (a certificate or CRL), nothing before or after.
pub(crate) fn check_der_sequence(b: &[u8]) -> Result<(), Shape> {
    let Some((&tag, rest)) = b.split_first() else {
        return Err(Shape::Truncated);
    };
    if tag != 0x30 {
        return Err(Shape::Malformed("not a DER SEQUENCE"));
    }
    let Some((&l0, rest)) = rest.split_first() else {
        return Err(Shape::Truncated);
    };
    let (len, rest) = if l0 < 0x80 {
        (usize::from(l0), rest)
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 4 {
            return Err(Shape::Malformed("bad DER length"));
        }
        if rest.len() < n {
            return Err(Shape::Truncated);
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
        (len, &rest[n..])
    };
    match rest.len().cmp(&len) {
        std::cmp::Ordering::Less => Err(Shape::Truncated),
        std::cmp::Ordering::Greater => Err(Shape::Malformed("bytes after the DER structure")),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

const PEM_BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const PEM_END: &str = "-----END CERTIFICATE-----";

/// The DER of every `CERTIFICATE` block of a PEM text, each checked as a DER SEQUENCE. At least
/// one block is required.
pub(crate) fn pem_certificates(text: &[u8]) -> Result<Vec<Vec<u8>>, Shape> {
    let text = std::str::from_utf8(text).map_err(|_| Shape::Malformed("not UTF-8 PEM"))?;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(PEM_BEGIN) {
        let after = &rest[start + PEM_BEGIN.len()..];
        let Some(end) = after.find(PEM_END) else {
            return Err(Shape::Truncated);
        };
        let b64: String = after[..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = STANDARD
            .decode(b64.as_bytes())
            .map_err(|_| Shape::Malformed("PEM body is not base64"))?;
        check_der_sequence(&der)?;
        out.push(der);
        rest = &after[end + PEM_END.len()..];
    }
    if out.is_empty() {
        return Err(if text.contains("-----BEGIN") {
            Shape::Truncated
        } else {
            Shape::Malformed("no PEM certificate")
        });
    }
    Ok(out)
}

/// A certificate as DER: DER passes through (checked), PEM with one certificate is decoded.
pub(crate) fn certificate_der(b: &[u8]) -> Result<Vec<u8>, Shape> {
    if b.starts_with(b"-----BEGIN") {
        let mut certs = pem_certificates(b)?;
        if certs.len() != 1 {
            return Err(Shape::Malformed("more than one certificate"));
        }
        return Ok(certs.remove(0));
    }
    check_der_sequence(b)?;
    Ok(b.to_vec())
}

/// A CRL as DER: DER passes through (checked); hex-encoded DER (what a PCCS serves) is decoded.
pub(crate) fn crl_der(b: &[u8]) -> Result<Vec<u8>, Shape> {
    if b.first() == Some(&0x30) {
        check_der_sequence(b)?;
        return Ok(b.to_vec());
    }
    let t: Vec<u8> = b
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if t.is_empty() {
        return Err(Shape::Truncated);
    }
    let der = hex::decode(&t).map_err(|_| Shape::Malformed("neither DER nor hex"))?;
    check_der_sequence(&der)?;
    Ok(der)
}

/// RFC 3986 percent-decoding (Intel's issuer-chain headers). `+` stays `+`.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = b.get(i + 1..i + 3)?;
            let h = std::str::from_utf8(h).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// RFC 3986 percent-encoding of everything but unreserved characters (used by tests and by
/// anyone serving a mirror).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(c));
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// Intel PCS signed JSON `{"<key>": {...}, "signature": "<hex>"}`: returns the exact text of the
/// inner object (the signature covers those bytes, so it must not be re-serialised) and the
/// signature bytes.
pub(crate) fn signed_json(body: &[u8], key: &str) -> Result<(String, Vec<u8>), Shape> {
    let text = std::str::from_utf8(body).map_err(|_| Shape::Malformed("not UTF-8"))?;
    let v: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) if e.is_eof() => return Err(Shape::Truncated),
        Err(_) => return Err(Shape::Malformed("not JSON")),
    };
    let obj = v.as_object().ok_or(Shape::Malformed("not a JSON object"))?;
    if !obj.get(key).is_some_and(serde_json::Value::is_object) {
        return Err(Shape::Malformed("the signed object is missing"));
    }
    let sig = obj
        .get("signature")
        .and_then(serde_json::Value::as_str)
        .ok_or(Shape::Malformed("the signature is missing"))?;
    let sig = hex::decode(sig).map_err(|_| Shape::Malformed("the signature is not hex"))?;
    if sig.len() != 64 {
        return Err(Shape::Malformed("the signature is not 64 bytes"));
    }
    let raw = top_level_raw(text, key).ok_or(Shape::Malformed("the signed object is missing"))?;
    Ok((raw.to_owned(), sig))
}

/// The exact text of the value of `key` in the top-level object of `text`, which must already be
/// known to be valid JSON.
fn top_level_raw<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(b, i);
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = scan_string(b, i)?;
        let this_key = &text[i + 1..key_end - 1];
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(b, i + 1);
        let end = scan_value(b, start)?;
        if this_key == key {
            return Some(&text[start..end]);
        }
        i = skip_ws(b, end);
        match b.get(i) {
            Some(b',') => i += 1,
            _ => return None,
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b
        .get(i)
        .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// `b[i]` is `"`; returns the index just after the closing quote.
fn scan_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match b.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// Returns the index just after the value starting at `b[i]`.
fn scan_value(b: &[u8], mut i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => scan_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match b.get(i)? {
                    b'"' => {
                        i = scan_string(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            while b
                .get(i)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                i += 1;
            }
            Some(i)
        }
    }
}

/// The freshness lifetime a `Cache-Control` header grants: `Some(0)` for `no-store`/`no-cache`,
/// `Some(n)` for `max-age=n`, `None` when it says neither.
pub(crate) fn cache_control_max_age(value: &str) -> Option<u64> {
    let mut max_age = None;
    for d in value.split(',') {
        let d = d.trim().to_ascii_lowercase();
        if d == "no-store" || d == "no-cache" {
            return Some(0);
        }
        if let Some(n) = d.strip_prefix("max-age=") {
            max_age = n.trim_matches('"').parse::<u64>().ok();
        }
    }
    max_age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_framing() {
        assert_eq!(check_der_sequence(&[0x30, 0x02, 1, 2]), Ok(()));
        assert_eq!(
            check_der_sequence(&[0x30, 0x03, 1, 2]),
            Err(Shape::Truncated)
        );
        assert!(matches!(
            check_der_sequence(&[0x30, 0x01, 1, 2]),
            Err(Shape::Malformed(_))
        ));
        assert!(matches!(
            check_der_sequence(b"<html>"),
            Err(Shape::Malformed(_))
        ));
        assert_eq!(check_der_sequence(&[]), Err(Shape::Truncated));
        assert_eq!(check_der_sequence(&[0x30]), Err(Shape::Truncated));
        assert_eq!(
            check_der_sequence(&[0x30, 0x82, 0x01]),
            Err(Shape::Truncated)
        );
        let mut long = vec![0x30, 0x82, 0x01, 0x00];
        long.extend(vec![0u8; 256]);
        assert_eq!(check_der_sequence(&long), Ok(()));
        assert!(check_der_sequence(&[0x30, 0x80]).is_err());
        assert!(check_der_sequence(&[0x30, 0x85, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn crl_hex_or_der() {
        assert_eq!(crl_der(&[0x30, 0x01, 7]).expect("der"), vec![0x30, 1, 7]);
        assert_eq!(crl_der(b"300107\n").expect("hex"), vec![0x30, 1, 7]);
        assert!(crl_der(b"zz").is_err());
        assert_eq!(crl_der(b""), Err(Shape::Truncated));
    }

    #[test]
    fn percent_round_trip() {
        let s = "-----BEGIN CERTIFICATE-----\nMII+/=\n";
        assert_eq!(percent_decode(&percent_encode(s)).as_deref(), Some(s));
        assert_eq!(percent_decode("a%2"), None);
        assert_eq!(percent_decode("a%zz"), None);
        assert_eq!(percent_decode("a+b").as_deref(), Some("a+b"));
    }

    #[test]
    fn signed_json_keeps_exact_text() {
        let inner = r#"{"id":"TDX","x":[1,{"y":"}\""}],"z":1.50}"#;
        let sig = "ab".repeat(64);
        let body = format!(r#"{{ "tcbInfo" : {inner} , "signature":"{sig}"}}"#);
        let (raw, s) = signed_json(body.as_bytes(), "tcbInfo").expect("parse");
        assert_eq!(raw, inner);
        assert_eq!(s, vec![0xab; 64]);
        // Signature first, too.
        let body = format!(r#"{{"signature":"{sig}","tcbInfo":{inner}}}"#);
        assert_eq!(signed_json(body.as_bytes(), "tcbInfo").expect("p").0, inner);
        assert_eq!(
            signed_json(&body.as_bytes()[..body.len() / 2], "tcbInfo"),
            Err(Shape::Truncated)
        );
        assert!(signed_json(b"<html>", "tcbInfo").is_err());
        assert!(signed_json(body.as_bytes(), "enclaveIdentity").is_err());
        let short = format!(r#"{{"tcbInfo":{inner},"signature":"abcd"}}"#);
        assert!(signed_json(short.as_bytes(), "tcbInfo").is_err());
    }

    #[test]
    fn cache_control() {
        assert_eq!(cache_control_max_age("public, max-age=3600"), Some(3600));
        assert_eq!(cache_control_max_age("no-store"), Some(0));
        assert_eq!(cache_control_max_age("Max-Age=5, No-Cache"), Some(0));
        assert_eq!(cache_control_max_age("public"), None);
        assert_eq!(cache_control_max_age("max-age=abc"), None);
    }

    #[test]
    fn pem_blocks() {
        let der = [0x30u8, 0x01, 0x05];
        let pem = format!("{PEM_BEGIN}\n{}\n{PEM_END}\n", STANDARD.encode(der));
        assert_eq!(
            pem_certificates(pem.as_bytes()).expect("pem"),
            vec![der.to_vec()]
        );
        assert_eq!(certificate_der(pem.as_bytes()).expect("pem"), der.to_vec());
        assert_eq!(
            pem_certificates(&pem.as_bytes()[..20]),
            Err(Shape::Truncated)
        );
        assert!(pem_certificates(b"hello").is_err());
        assert!(pem_certificates(format!("{PEM_BEGIN}\n!!\n{PEM_END}").as_bytes()).is_err());
    }
}
