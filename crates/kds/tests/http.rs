//! The axum service through `tower::ServiceExt::oneshot` (no socket).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use clave_attest::Evidence;
use clave_kds::{Kds, PendingJoin, router_with_clock};
use clave_proto::kds_api::{
    self, AttestationResponse, KeysResponse, NonceResponse, Problem, ReleaseLogResponse,
    ReleaseResponse, ReplicaJoinResponse, paths,
};
use clave_proto::{KeyBundle, KeyPurpose};
use common::*;
use tower::ServiceExt as _;

struct Svc {
    kds: Arc<Kds>,
    clock: Arc<AtomicU64>,
    _dir: tempfile::TempDir,
}

impl Svc {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let kds = Arc::new(open_kds(dir.path()));
        Svc {
            kds,
            clock: Arc::new(AtomicU64::new(NOW)),
            _dir: dir,
        }
    }

    async fn call(
        &self,
        method: &str,
        uri: &str,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, String, Vec<u8>) {
        let clock = self.clock.clone();
        let app = router_with_clock(
            self.kds.clone(),
            Arc::new(move || clock.load(Ordering::SeqCst)),
        );
        let mut req = Request::builder().method(method).uri(uri);
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .expect("request");
        let resp = app.oneshot(req).await.expect("infallible");
        let status = resp.status();
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec();
        (status, ct, bytes)
    }

    async fn ok<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        uri: &str,
        body: Option<Vec<u8>>,
    ) -> T {
        let (status, ct, bytes) = self.call(method, uri, body).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        assert_eq!(ct, "application/json");
        serde_json::from_slice(&bytes).expect("json")
    }

    async fn problem(
        &self,
        method: &str,
        uri: &str,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, Problem) {
        let (status, ct, bytes) = self.call(method, uri, body).await;
        assert_eq!(ct, kds_api::PROBLEM_CONTENT_TYPE);
        let p: Problem = serde_json::from_slice(&bytes).expect("problem json");
        assert_eq!(p.status, status.as_u16());
        (status, p)
    }
}

#[tokio::test]
async fn keys_are_signed_bundles_for_code_and_two_invoke_epochs() {
    let svc = Svc::new();
    let keys: KeysResponse = svc.ok("GET", paths::KEYS, None).await;
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&keys.identity_public_key).expect("vk");
    let bundles: Vec<KeyBundle> = keys
        .bundles
        .iter()
        .map(|s| {
            KeyBundle::verify(s, &vk, NOW)
                .or_else(|_| {
                    // The next epoch's bundle is not valid yet at NOW; check it at its start.
                    let b = KeyBundle::from_payload(&s.verify(&vk).expect("signature"))?;
                    KeyBundle::verify(s, &vk, b.not_before)
                })
                .expect("bundle")
        })
        .collect();
    assert_eq!(bundles.len(), 3);
    assert_eq!(bundles[0].spec.purpose, KeyPurpose::Code);
    assert_eq!(bundles[1].spec.epoch, keys.epoch);
    assert_eq!(bundles[2].spec.epoch, keys.epoch + 1);
    assert_eq!(keys.epoch, NOW / keys.epoch_seconds);
    // Rotation: a day later the "next" key is the current one.
    svc.clock.store(NOW + keys.epoch_seconds, Ordering::SeqCst);
    let later: KeysResponse = svc.ok("GET", paths::KEYS, None).await;
    assert_eq!(later.bundles[1], keys.bundles[2]);
}

#[tokio::test]
async fn attestation_over_http() {
    let svc = Svc::new();
    for (q, nonce) in [("00ff10", vec![0u8, 255, 16]), ("AQID", vec![1, 2, 3])] {
        let att: AttestationResponse = svc
            .ok("GET", &format!("{}?nonce={q}", paths::ATTESTATION), None)
            .await;
        assert_eq!(att.nonce, nonce);
        let ev = Evidence::from_bytes(&att.evidence).expect("evidence");
        let rd = kds_api::kds_attestation_report_data(&att.identity_public_key, &nonce);
        clave_attest::verify(&ev, &kds_policy(), &rd, NOW).expect("verifies");
    }
    let (status, p) = svc.problem("GET", paths::ATTESTATION, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(p.slug(), Some("bad-caller-nonce"));
    let (status, _) = svc
        .problem("GET", &format!("{}?nonce=%21%21", paths::ATTESTATION), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn release_over_http_then_refusals_as_problems() {
    let svc = Svc::new();
    let spec = dev_config().code_spec().to_bytes();
    let eph = Ephemeral::new(9);
    let n: NonceResponse = svc.ok("POST", paths::NONCE, None).await;
    assert_eq!(n.expires_at, NOW + 60);
    let req = release_request(&engine(), spec.clone(), &eph, n.nonce);
    let body = serde_json::to_vec(&req).expect("json");
    let resp: ReleaseResponse = svc.ok("POST", paths::RELEASE, Some(body.clone())).await;
    let sk = kds_api::open_from_kds(
        &eph.sk,
        kds_api::RELEASE_HPKE_INFO,
        &resp.spec_id,
        &resp.enc,
        &resp.sealed_key,
    )
    .expect("opens");
    assert_eq!(sk.len(), 32);

    // Replay.
    let (status, p) = svc.problem("POST", paths::RELEASE, Some(body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(p.type_, "urn:clave:kds:nonce-reused");

    // Stale nonce (the service clock moved on).
    let n: NonceResponse = svc.ok("POST", paths::NONCE, None).await;
    svc.clock.store(NOW + 61, Ordering::SeqCst);
    let body =
        serde_json::to_vec(&release_request(&engine(), spec.clone(), &eph, n.nonce)).expect("json");
    let (status, p) = svc.problem("POST", paths::RELEASE, Some(body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(p.slug(), Some("nonce-expired"));
    svc.clock.store(NOW, Ordering::SeqCst);

    // Wrong measurement.
    let n: NonceResponse = svc.ok("POST", paths::NONCE, None).await;
    let other = kds_attester(clave_attest::Measurement(vec![1; 32]));
    let body =
        serde_json::to_vec(&release_request(&other, spec.clone(), &eph, n.nonce)).expect("json");
    let (status, p) = svc.problem("POST", paths::RELEASE, Some(body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(p.slug(), Some("attestation-measurement-not-allowed"));

    // Unknown spec.
    let n: NonceResponse = svc.ok("POST", paths::NONCE, None).await;
    let body = serde_json::to_vec(&release_request(
        &engine(),
        dev_config().invoke_spec(1).to_bytes(),
        &eph,
        n.nonce,
    ))
    .expect("json");
    let (status, p) = svc.problem("POST", paths::RELEASE, Some(body)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(p.slug(), Some("unknown-spec"));

    // Malformed bodies.
    for bad in [&b"not json"[..], b"{}", b"{\"spec\":\"AA\"}"] {
        let (status, p) = svc
            .problem("POST", paths::RELEASE, Some(bad.to_vec()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(p.slug(), Some("malformed-request"));
    }

    // The operator log, over HTTP: one grant, four refusals, no key.
    let log: ReleaseLogResponse = svc.ok("GET", paths::LOG, None).await;
    let releases: Vec<_> = log
        .entries
        .iter()
        .filter(|e| e.event == kds_api::LogEvent::KeyRelease)
        .map(|e| e.reason.clone().unwrap_or_else(|| "granted".into()))
        .collect();
    assert_eq!(
        releases,
        [
            "granted",
            "nonce-reused",
            "nonce-expired",
            "attestation-measurement-not-allowed",
            "unknown-spec"
        ]
    );
    let (_, _, raw) = svc.call("GET", paths::LOG, None).await;
    assert!(!raw.windows(32).any(|w| w == sk.as_slice()));
    assert!(
        !raw.windows(43)
            .any(|w| w == kds_api::b64::encode(&sk).as_bytes())
    );
}

#[tokio::test]
async fn replica_join_over_http() {
    let svc = Svc::new();
    let n: NonceResponse = svc.ok("POST", paths::REPLICA_NONCE, None).await;
    let b_dir = tempfile::tempdir().expect("tempdir");
    let pending = PendingJoin::new(
        b_dir.path(),
        Box::new(clave_kds::InsecureSimulatedSealer::new(
            kds_measurement().as_bytes(),
        )),
        Box::new(kds_attester(kds_measurement())),
        dev_config(),
        n.nonce,
        rng(),
    )
    .expect("pending");
    let body = serde_json::to_vec(pending.request()).expect("json");
    let resp: ReplicaJoinResponse = svc
        .ok("POST", paths::REPLICA_JOIN, Some(body.clone()))
        .await;
    let b = Kds::join_from(pending, &resp, NOW).expect("joined");
    assert_eq!(b.identity_public_key(), svc.kds.identity_public_key());
    assert_eq!(b.keys(NOW).expect("keys"), svc.kds.keys(NOW).expect("keys"));
    // The same request again is refused (nonce consumed).
    let (status, p) = svc.problem("POST", paths::REPLICA_JOIN, Some(body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(p.slug(), Some("nonce-reused"));
}
