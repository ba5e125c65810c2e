//! clave-collateral against a local HTTP server (127.0.0.1, ephemeral port) that serves the real
//! recorded endorsements of `crates/attest/tests/data/real` in AMD KDS / Intel PCS form: fetch,
//! cache hit, expiry, refetch, offline mode, typed errors, and end to end through
//! `clave_attest::verify_with_endorsements` at the vectors' fixed times.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use clave_attest::dcap::DcapCollateral;
use clave_attest::snp::{SnpProduct, SnpReport};
use clave_attest::{
    Endorsements, Evidence, Policy, TcbStatus, TeeKind, verify_evidence_with,
    verify_with_endorsements,
};
use clave_collateral::{Config, Error, Fetcher, VcekRequest, percent_encode};

#[path = "../../attest/tests/common/crl_builder.rs"]
mod crl_builder;

const SNP_NOW: u64 = 1_767_225_600;
const TDX_NOW: u64 = 1_757_894_400;
const SGX_NOW: u64 = 1_755_236_700;

#[path = "../../attest/tests/common/real_data.rs"]
mod real_data;
use real_data::{hex_file, read};

fn pem_to_der(pem: &[u8]) -> Vec<u8> {
    let t = String::from_utf8(pem.to_vec()).expect("utf-8");
    let b64: String = t
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64")
}

#[derive(Clone)]
struct Canned {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

#[derive(Clone, Default)]
struct Server {
    routes: Arc<Mutex<HashMap<String, Canned>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Server {
    fn set(&self, path: &str, status: u16, headers: Vec<(&'static str, String)>, body: Vec<u8>) {
        self.routes.lock().expect("lock").insert(
            path.to_owned(),
            Canned {
                status,
                headers,
                body,
            },
        );
    }
    fn ok(&self, path: &str, body: Vec<u8>) {
        self.set(
            path,
            200,
            vec![("cache-control", "max-age=100".into())],
            body,
        );
    }
    fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .expect("lock")
            .get(path)
            .copied()
            .unwrap_or(0)
    }
    fn total(&self) -> usize {
        self.hits.lock().expect("lock").values().sum()
    }
}

async fn serve(State(s): State<Server>, uri: Uri) -> Response {
    let key = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    *s.hits.lock().expect("lock").entry(key.clone()).or_default() += 1;
    let canned = s.routes.lock().expect("lock").get(&key).cloned();
    match canned {
        None => (StatusCode::NOT_FOUND, "no such resource").into_response(),
        Some(c) => {
            let mut r = (
                StatusCode::from_u16(c.status).expect("status"),
                c.body.clone(),
            )
                .into_response();
            for (k, v) in c.headers {
                r.headers_mut().insert(k, v.parse().expect("header value"));
            }
            r
        }
    }
}

async fn start(server: &Server) -> String {
    let app = axum::Router::new()
        .fallback(serve)
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn config(base: &str, cache: Option<PathBuf>) -> Config {
    let mut c = Config::default();
    c.amd_kds_url = base.to_owned();
    c.intel_pcs_url = base.to_owned();
    c.intel_root_ca_crl_url = format!("{base}/IntelSGXRootCA.der");
    c.cache_dir = cache;
    // No genuine AMD CRL is available offline (none can verify under the pinned ARK), so the
    // end-to-end SNP tests run without one; `snp_crl_*` below turn it back on.
    c.fetch_snp_crl = false;
    c
}

/// Offline over `dir`, without the AMD CRL (see [`config`]).
fn offline_config(dir: &std::path::Path) -> Config {
    let mut c = Config::offline(dir);
    c.fetch_snp_crl = false;
    c
}

struct SnpVector {
    report: Vec<u8>,
    vcek_pem: Vec<u8>,
    product: SnpProduct,
}

fn snp_vectors() -> Vec<SnpVector> {
    [
        ("milan_azure", SnpProduct::Milan),
        ("milan_gcp", SnpProduct::Milan),
        ("genoa_azure", SnpProduct::Genoa),
    ]
    .into_iter()
    .map(|(n, product)| SnpVector {
        report: hex_file(&format!("snp/{n}_report.hex")),
        vcek_pem: read(&format!("snp/{n}_vcek.pem")),
        product,
    })
    .collect()
}

fn chain_pem(p: SnpProduct) -> Vec<u8> {
    let n = p.name().to_lowercase();
    [
        read(&format!("roots/amd_{n}_ask.pem")),
        read(&format!("roots/amd_{n}_ark.pem")),
    ]
    .concat()
}

fn vcek_path(v: &SnpVector) -> String {
    let r = VcekRequest::from_report(&v.report, None).expect("request");
    format!(
        "/vcek/v1/{}/{}?{}",
        r.product.name(),
        r.hwid_hex(),
        r.spl_query()
    )
}

/// KDS answers for every SNP vector (VCEK as DER, as AMD serves it).
fn serve_snp(server: &Server) {
    for v in snp_vectors() {
        server.ok(&vcek_path(&v), pem_to_der(&v.vcek_pem));
    }
    for p in [SnpProduct::Milan, SnpProduct::Genoa] {
        server.ok(&format!("/vcek/v1/{}/cert_chain", p.name()), chain_pem(p));
    }
}

fn verify_snp(v: &SnpVector, e: &Endorsements) {
    let ev = Evidence::SevSnp {
        report: v.report.clone(),
        certs: None,
    };
    let c = verify_evidence_with(&ev, e, SNP_NOW).expect("snp evidence verifies");
    let policy = Policy::measurements([TeeKind::SevSnp], [c.measurement.clone()]).expect("policy");
    let rd = SnpReport::parse(&v.report).expect("report").report_data;
    let got = verify_with_endorsements(&ev, e, &policy, &rd, SNP_NOW).expect("accepted");
    assert_eq!(got.kind, TeeKind::SevSnp);
}

#[tokio::test]
async fn snp_fetch_cache_hit_expiry_refetch_and_verify() {
    let server = Server::default();
    serve_snp(&server);
    let base = start(&server).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let now = Arc::new(AtomicU64::new(1_000_000));
    let clock = now.clone();
    let f = Fetcher::new(config(&base, Some(dir.path().to_path_buf())))
        .expect("fetcher")
        .with_clock(Arc::new(move || clock.load(Ordering::SeqCst)));

    // The URL format, pinned on one vector.
    let milan = &snp_vectors()[0];
    assert!(vcek_path(milan).starts_with("/vcek/v1/Milan/0f92f1d29e384e0a"));
    assert!(vcek_path(milan).ends_with("?blSPL=04&teeSPL=00&snpSPL=24&ucodeSPL=219"));

    for v in snp_vectors() {
        let e = f.snp_endorsements(&v.report, None).await.expect("fetch");
        assert_eq!(e.snp_vcek.as_deref(), Some(&pem_to_der(&v.vcek_pem)[..]));
        assert_eq!(e.snp_chain.as_deref(), Some(&chain_pem(v.product)[..]));
        verify_snp(&v, &e);
    }
    // 3 VCEKs + 2 chains.
    assert_eq!(server.total(), 5);
    // Cache hits: no new requests.
    for v in snp_vectors() {
        let e = f.snp_endorsements(&v.report, None).await.expect("cached");
        verify_snp(&v, &e);
    }
    assert_eq!(server.total(), 5);
    // Still fresh just before max-age runs out, stale at it: one refetch each.
    now.fetch_add(99, Ordering::SeqCst);
    f.snp_endorsements(&milan.report, None)
        .await
        .expect("fresh");
    assert_eq!(server.total(), 5);
    now.fetch_add(1, Ordering::SeqCst);
    f.snp_endorsements(&milan.report, None)
        .await
        .expect("refetch");
    assert_eq!(server.hits(&vcek_path(milan)), 2);
    assert_eq!(server.hits("/vcek/v1/Milan/cert_chain"), 2);
    assert_eq!(server.total(), 7);

    // No Cache-Control: the configured default TTL applies (capped by max_ttl).
    let chain = "/vcek/v1/Genoa/cert_chain";
    server.set(chain, 200, vec![], chain_pem(SnpProduct::Genoa));
    now.fetch_add(1000, Ordering::SeqCst);
    let mut cfg = config(&base, Some(dir.path().to_path_buf()));
    cfg.default_ttl_secs = 50;
    let clock = now.clone();
    let f2 = Fetcher::new(cfg)
        .expect("fetcher")
        .with_clock(Arc::new(move || clock.load(Ordering::SeqCst)));
    f2.snp_cert_chain(SnpProduct::Genoa).await.expect("fetch");
    assert_eq!(server.hits(chain), 2);
    now.fetch_add(49, Ordering::SeqCst);
    f2.snp_cert_chain(SnpProduct::Genoa).await.expect("hit");
    assert_eq!(server.hits(chain), 2);
    now.fetch_add(1, Ordering::SeqCst);
    f2.snp_cert_chain(SnpProduct::Genoa).await.expect("refetch");
    assert_eq!(server.hits(chain), 3);
    // no-store: never fresh.
    server.set(
        chain,
        200,
        vec![("cache-control", "no-store".into())],
        chain_pem(SnpProduct::Genoa),
    );
    now.fetch_add(50, Ordering::SeqCst);
    f2.snp_cert_chain(SnpProduct::Genoa).await.expect("refetch");
    f2.snp_cert_chain(SnpProduct::Genoa).await.expect("refetch");
    assert_eq!(server.hits(chain), 5);
    // No temporary files are left behind.
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        let name = entry.expect("entry").file_name();
        assert!(!name.to_string_lossy().contains(".tmp."), "{name:?}");
    }
}

#[tokio::test]
async fn offline_mode_and_corrupt_entries() {
    let server = Server::default();
    serve_snp(&server);
    let base = start(&server).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let online = Fetcher::new(config(&base, Some(dir.path().to_path_buf()))).expect("fetcher");
    let v = &snp_vectors()[2];
    online
        .snp_endorsements(&v.report, None)
        .await
        .expect("fetch");
    assert_eq!(server.total(), 2);

    // Offline: files only, whatever their age; verification still succeeds.
    let offline = Fetcher::new(offline_config(dir.path()))
        .expect("offline")
        .with_clock(Arc::new(|| u64::MAX));
    let e = offline
        .snp_endorsements(&v.report, None)
        .await
        .expect("offline");
    verify_snp(v, &e);
    assert_eq!(server.total(), 2);

    // Offline, missing: a clear error naming the file.
    let other = &snp_vectors()[0];
    let other_req = VcekRequest::from_report(&other.report, None).expect("req");
    match offline.vcek(&other_req).await {
        Err(Error::OfflineMissing { path, what }) => {
            assert_eq!(path, dir.path().join(other_req.cache_name()));
            assert!(path.starts_with(dir.path()));
            assert!(what.contains("VCEK"), "{what}");
        }
        r => panic!("{r:?}"),
    }
    let empty = tempfile::tempdir().expect("tempdir");
    let err = Fetcher::new(Config::offline(empty.path()))
        .expect("offline")
        .tcb_info(TeeKind::Tdx, &[0x20, 0xa0, 0x6f, 0, 0, 0])
        .await
        .expect_err("missing");
    assert!(
        err.to_string().contains("intel-tdx-tcb-20a06f000000.json"),
        "{err}"
    );
    // Offline without a directory is a configuration error.
    let mut c = Config::default();
    c.offline = true;
    assert!(matches!(Fetcher::new(c), Err(Error::InvalidConfig(_))));

    // Corrupt entries: offline refuses them, online refetches and repairs them.
    let req = VcekRequest::from_report(&v.report, None).expect("req");
    let vcek_file = online.cache_path(&req.cache_name()).expect("path");
    let good = std::fs::read(&vcek_file).expect("cached");
    let flipped: Vec<u8> = {
        let mut e: serde_json::Value = serde_json::from_slice(&good).expect("json");
        // A syntactically valid entry whose body is not a certificate.
        e["body"] = serde_json::Value::String("00ff".into());
        serde_json::to_vec(&e).expect("json")
    };
    for bad in [
        b"{not json".to_vec(),
        flipped,
        good[..good.len() / 2].to_vec(),
    ] {
        std::fs::write(&vcek_file, &bad).expect("write");
        assert!(matches!(
            offline.snp_endorsements(&v.report, None).await,
            Err(Error::CacheCorrupt { .. })
        ));
        let before = server.total();
        let e = online
            .snp_endorsements(&v.report, None)
            .await
            .expect("refetch");
        verify_snp(v, &e);
        assert_eq!(server.total(), before + 1);
        let body = |b: &[u8]| {
            serde_json::from_slice::<serde_json::Value>(b).expect("json")["body"].clone()
        };
        assert_eq!(
            body(&std::fs::read(&vcek_file).expect("repaired")),
            body(&good)
        );
    }
}

#[tokio::test]
async fn http_failures_are_typed() {
    let server = Server::default();
    let base = start(&server).await;
    let f = Fetcher::new(config(&base, None)).expect("fetcher");
    let v = &snp_vectors()[0];
    let path = vcek_path(v);
    let req = VcekRequest::from_report(&v.report, None).expect("req");

    // 404.
    assert!(matches!(f.vcek(&req).await, Err(Error::NotFound { .. })));
    // 500 and 429.
    for status in [500, 429] {
        server.set(&path, status, vec![], b"oops".to_vec());
        match f.vcek(&req).await {
            Err(Error::HttpStatus { status: s, url }) => {
                assert_eq!(s, status);
                assert!(url.ends_with(&path));
            }
            r => panic!("{r:?}"),
        }
    }
    // Garbage and truncated bodies.
    let der = pem_to_der(&v.vcek_pem);
    server.ok(&path, b"<html>rate limited</html>".to_vec());
    assert!(matches!(f.vcek(&req).await, Err(Error::Malformed { .. })));
    server.ok(&path, der[..der.len() / 2].to_vec());
    assert!(matches!(f.vcek(&req).await, Err(Error::Truncated { .. })));
    server.ok(&path, Vec::new());
    assert!(matches!(f.vcek(&req).await, Err(Error::Truncated { .. })));
    server.ok(&path, der.clone());
    assert_eq!(f.vcek(&req).await.expect("ok"), der);
    // PEM is accepted and converted.
    server.ok(&path, v.vcek_pem.clone());
    assert_eq!(f.vcek(&req).await.expect("pem"), der);
    // Chain: garbage, truncated PEM.
    let chain = "/vcek/v1/Milan/cert_chain";
    server.ok(chain, b"hello".to_vec());
    assert!(matches!(
        f.snp_cert_chain(SnpProduct::Milan).await,
        Err(Error::Malformed { .. })
    ));
    let pem = chain_pem(SnpProduct::Milan);
    server.ok(chain, pem[..100].to_vec());
    assert!(matches!(
        f.snp_cert_chain(SnpProduct::Milan).await,
        Err(Error::Truncated { .. })
    ));
    // CRL: DER passes (shape only), garbage does not.
    let crl = "/vcek/v1/Milan/crl";
    let some_crl = DcapCollateral::from_json(
        &String::from_utf8(read("tdx/tdx_collateral.json")).expect("utf8"),
    )
    .expect("collateral")
    .root_ca_crl;
    server.ok(crl, some_crl.clone());
    assert_eq!(f.snp_crl(SnpProduct::Milan).await.expect("crl"), some_crl);
    server.ok(crl, b"garbage".to_vec());
    assert!(matches!(
        f.snp_crl(SnpProduct::Milan).await,
        Err(Error::Malformed { .. })
    ));
    // Intel: a TCB info without its issuer chain header, with a broken one, truncated JSON.
    let tcb = "/tdx/certification/v4/tcb?fmspc=20A06F000000";
    let body = tdx_tcb_body();
    server.ok(tcb, body.clone());
    assert!(matches!(
        f.tcb_info(TeeKind::Tdx, &[0x20, 0xa0, 0x6f, 0, 0, 0]).await,
        Err(Error::MissingHeader {
            header: "TCB-Info-Issuer-Chain",
            ..
        })
    ));
    server.set(
        tcb,
        200,
        vec![("TCB-Info-Issuer-Chain", "%zz".into())],
        body.clone(),
    );
    assert!(matches!(
        f.tcb_info(TeeKind::Tdx, &[0x20, 0xa0, 0x6f, 0, 0, 0]).await,
        Err(Error::MissingHeader { .. })
    ));
    let chain_hdr = percent_encode(&tdx_collateral().tcb_info_issuer_chain);
    server.set(
        tcb,
        200,
        vec![("TCB-Info-Issuer-Chain", chain_hdr.clone())],
        body[..body.len() - 10].to_vec(),
    );
    assert!(matches!(
        f.tcb_info(TeeKind::Tdx, &[0x20, 0xa0, 0x6f, 0, 0, 0]).await,
        Err(Error::Truncated { .. })
    ));
    server.set(
        tcb,
        200,
        vec![("TCB-Info-Issuer-Chain", chain_hdr)],
        b"[1,2]".to_vec(),
    );
    assert!(matches!(
        f.tcb_info(TeeKind::Tdx, &[0x20, 0xa0, 0x6f, 0, 0, 0]).await,
        Err(Error::Malformed { .. })
    ));
    // Not a DCAP kind.
    assert!(matches!(
        f.tcb_info(TeeKind::Nitro, &[0; 6]).await,
        Err(Error::InvalidRequest(_))
    ));
    // Nobody listening: a transport error.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let f = Fetcher::new(config(&dead, None)).expect("fetcher");
    assert!(matches!(f.vcek(&req).await, Err(Error::Transport { .. })));
    // Bad configuration.
    assert!(matches!(
        Fetcher::new(config("ftp://x", None)),
        Err(Error::InvalidConfig(_))
    ));
}

fn tdx_collateral() -> DcapCollateral {
    DcapCollateral::from_json(&String::from_utf8(read("tdx/tdx_collateral.json")).expect("utf8"))
        .expect("collateral")
}

fn tdx_tcb_body() -> Vec<u8> {
    let c = tdx_collateral();
    format!(
        r#"{{"tcbInfo":{},"signature":"{}"}}"#,
        c.tcb_info,
        hex::encode(&c.tcb_info_signature)
    )
    .into_bytes()
}

/// Intel PCS answers for a DCAP collateral set (TCB info and QE identity bodies given as the
/// full PCS JSON).
fn serve_dcap(
    server: &Server,
    tee: &str,
    fmspc: &str,
    c: &DcapCollateral,
    tcb_body: Vec<u8>,
    qe_body: Vec<u8>,
) {
    let age = ("cache-control", "max-age=3600".to_string());
    server.set(
        &format!("/{tee}/certification/v4/tcb?fmspc={fmspc}"),
        200,
        vec![
            age.clone(),
            (
                "TCB-Info-Issuer-Chain",
                percent_encode(&c.tcb_info_issuer_chain),
            ),
        ],
        tcb_body,
    );
    server.set(
        &format!("/{tee}/certification/v4/qe/identity"),
        200,
        vec![
            age.clone(),
            (
                "SGX-Enclave-Identity-Issuer-Chain",
                percent_encode(&c.qe_identity_issuer_chain),
            ),
        ],
        qe_body,
    );
    server.set(
        "/sgx/certification/v4/pckcrl?ca=platform&encoding=der",
        200,
        vec![
            age.clone(),
            (
                "SGX-PCK-CRL-Issuer-Chain",
                percent_encode(&c.pck_crl_issuer_chain),
            ),
        ],
        c.pck_crl.clone(),
    );
    server.set("/IntelSGXRootCA.der", 200, vec![age], c.root_ca_crl.clone());
}

#[tokio::test]
async fn tdx_collateral_end_to_end() {
    let c = tdx_collateral();
    let server = Server::default();
    let qe_body = format!(
        r#"{{"enclaveIdentity":{},"signature":"{}"}}"#,
        c.qe_identity,
        hex::encode(&c.qe_identity_signature)
    )
    .into_bytes();
    serve_dcap(&server, "tdx", "20A06F000000", &c, tdx_tcb_body(), qe_body);
    let base = start(&server).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let f = Fetcher::new(config(&base, Some(dir.path().to_path_buf()))).expect("fetcher");
    let quote = hex_file("tdx/tdx_quote_v4.hex");
    let ev = Evidence::Tdx {
        quote: quote.clone(),
    };
    let e = f.endorsements_for(&ev, None).await.expect("fetch");
    assert_eq!(e.dcap.as_ref(), Some(&c), "byte-identical collateral");
    assert_eq!(server.total(), 4);
    let claims = verify_evidence_with(&ev, &e, TDX_NOW).expect("verifies");
    let policy = Policy::measurements([TeeKind::Tdx], [claims.measurement.clone()]).expect("p");
    verify_with_endorsements(&ev, &e, &policy, &claims.report_data, TDX_NOW).expect("accepted");
    // Cached, then offline.
    f.endorsements_for(&ev, None).await.expect("cached");
    assert_eq!(server.total(), 4);
    let off = Fetcher::new(Config::offline(dir.path())).expect("offline");
    let e2 = off
        .dcap_collateral_for_quote(&quote)
        .await
        .expect("offline");
    assert_eq!(e2, c);
}

#[tokio::test]
async fn sgx_collateral_from_real_pcs_responses() {
    let c = DcapCollateral::from_json(
        &String::from_utf8(read("sgx/sgx_collateral.json")).expect("utf8"),
    )
    .expect("collateral");
    // The recorded PCS responses, byte-exact, and the PCK CRL as DER.
    let mut served = c.clone();
    served.pck_crl = hex_file("sgx/sgx_pck_platform_crl.hex");
    assert_eq!(served.pck_crl, c.pck_crl);
    let server = Server::default();
    serve_dcap(
        &server,
        "sgx",
        "00606A000000",
        &served,
        read("sgx/sgx_tcbinfo_v3_00606a000000.json"),
        read("sgx/sgx_qeidentity_v4.json"),
    );
    let base = start(&server).await;
    let f = Fetcher::new(config(&base, None)).expect("fetcher");
    let quote = hex_file("sgx/sgx_quote_v3.hex");
    let got = f.dcap_collateral_for_quote(&quote).await.expect("fetch");
    assert_eq!(got, c, "inner JSON kept byte for byte");
    let ev = Evidence::SgxDcap { quote };
    let e = Endorsements {
        dcap: Some(got),
        ..Default::default()
    };
    let claims = verify_evidence_with(&ev, &e, SGX_NOW).expect("verifies");
    let mut policy =
        Policy::measurements([TeeKind::SgxDcap], [claims.measurement.clone()]).expect("p");
    policy.dcap.accepted_tcb_statuses = vec![TcbStatus::UpToDate, TcbStatus::SWHardeningNeeded];
    verify_with_endorsements(&ev, &e, &policy, &claims.report_data, SGX_NOW).expect("accepted");
}

/// A CRL in AMD's form for `product` (ARK names, ARK algorithm) valid `SNP_NOW - 3600 ..
/// next_update`, signed by a test key: no genuine AMD CRL is available offline.
fn test_crl(product: SnpProduct, next_update: u64) -> Vec<u8> {
    let s = crl_builder::CrlSpec::new(product.ark_der(), SNP_NOW - 3600, next_update);
    crl_builder::build_crl(&s, &crl_builder::test_key("collateral test ARK"))
}

#[tokio::test]
async fn snp_crl_is_fetched_cached_until_next_update_and_fed_to_verification() {
    let server = Server::default();
    serve_snp(&server);
    let crl_path = "/vcek/v1/Milan/crl";
    let next_update = SNP_NOW + 50;
    let crl = test_crl(SnpProduct::Milan, next_update);
    // A generous max-age: the CRL's nextUpdate must still cap the cache entry.
    server.set(
        crl_path,
        200,
        vec![("cache-control", "max-age=100000".into())],
        crl.clone(),
    );
    let base = start(&server).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let now = Arc::new(AtomicU64::new(SNP_NOW));
    let clock = now.clone();
    let mut cfg = config(&base, Some(dir.path().to_path_buf()));
    cfg.fetch_snp_crl = true;
    assert!(Config::default().fetch_snp_crl, "on by default");
    let f = Fetcher::new(cfg)
        .expect("fetcher")
        .with_clock(Arc::new(move || clock.load(Ordering::SeqCst)));
    let v = &snp_vectors()[0];
    let e = f.snp_endorsements(&v.report, None).await.expect("fetch");
    assert_eq!(e.snp_crl.as_deref(), Some(&crl[..]));
    assert_eq!(server.hits(crl_path), 1);
    // Fed to verification: this CRL is not signed by AMD's ARK, so the verifier refuses it
    // (a genuine one would pass and put its window in the claims).
    let ev = Evidence::SevSnp {
        report: v.report.clone(),
        certs: None,
    };
    assert!(matches!(
        verify_evidence_with(&ev, &e, SNP_NOW),
        Err(clave_attest::Error::CrlBadSignature { .. })
    ));
    // Without it, the same endorsements verify.
    let without = Endorsements {
        snp_crl: None,
        ..e.clone()
    };
    verify_evidence_with(&ev, &without, SNP_NOW).expect("no CRL");
    // Cached until its nextUpdate, then refetched (although max-age has not run out).
    now.store(next_update - 1, Ordering::SeqCst);
    f.snp_crl(SnpProduct::Milan).await.expect("cached");
    assert_eq!(server.hits(crl_path), 1);
    now.store(next_update, Ordering::SeqCst);
    f.snp_crl(SnpProduct::Milan).await.expect("refetched");
    assert_eq!(server.hits(crl_path), 2);
    let entry: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            f.cache_path(&clave_collateral::crl_cache_name(SnpProduct::Milan))
                .expect("path"),
        )
        .expect("cache file"),
    )
    .expect("json");
    // Refetched at nextUpdate, the served CRL is already past it: the entry expires at once.
    assert_eq!(entry["expires_at"], serde_json::json!(next_update));

    // Offline: the cached CRL is returned whatever its age (the verifier judges the window).
    let mut off = Config::offline(dir.path());
    assert!(off.fetch_snp_crl);
    let offline = Fetcher::new(off.clone())
        .expect("offline")
        .with_clock(Arc::new(|| u64::MAX));
    let e = offline
        .snp_endorsements(&v.report, None)
        .await
        .expect("offline");
    assert_eq!(e.snp_crl.as_deref(), Some(&crl[..]));
    // Offline without the CRL file: a clear error naming it; with the CRL switched off, fine.
    std::fs::remove_file(
        dir.path()
            .join(clave_collateral::crl_cache_name(SnpProduct::Milan)),
    )
    .expect("remove");
    match offline.snp_endorsements(&v.report, None).await {
        Err(Error::OfflineMissing { path, what }) => {
            assert!(path.ends_with("amd-Milan-crl.json"), "{}", path.display());
            assert!(what.contains("CRL"), "{what}");
        }
        r => panic!("{r:?}"),
    }
    off.fetch_snp_crl = false;
    let e = Fetcher::new(off)
        .expect("offline")
        .snp_endorsements(&v.report, None)
        .await
        .expect("offline without CRL");
    assert_eq!(e.snp_crl, None);
}

#[tokio::test]
async fn snp_crl_failures_fail_the_fetch() {
    let server = Server::default();
    serve_snp(&server);
    let base = start(&server).await;
    let mut cfg = config(&base, None);
    cfg.fetch_snp_crl = true;
    let f = Fetcher::new(cfg).expect("fetcher");
    let v = &snp_vectors()[2]; // Genoa
    // Not served: 404, not "no CRL".
    assert!(matches!(
        f.snp_endorsements(&v.report, None).await,
        Err(Error::NotFound { url }) if url.ends_with("/vcek/v1/Genoa/crl")
    ));
    // Garbage: a shape error.
    server.ok("/vcek/v1/Genoa/crl", b"<html>busy</html>".to_vec());
    assert!(matches!(
        f.snp_endorsements(&v.report, None).await,
        Err(Error::Malformed { .. })
    ));
    // Another product's CRL at Genoa's URL: fetched (bytes only), refused by the verifier.
    server.ok(
        "/vcek/v1/Genoa/crl",
        test_crl(SnpProduct::Milan, SNP_NOW + 86_400),
    );
    let e = f.snp_endorsements(&v.report, None).await.expect("fetched");
    let ev = Evidence::SevSnp {
        report: v.report.clone(),
        certs: None,
    };
    assert!(matches!(
        verify_evidence_with(&ev, &e, SNP_NOW),
        Err(clave_attest::Error::CrlWrongIssuer { .. })
    ));
}
