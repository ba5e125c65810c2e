//! Key acquisition: attested release from a real KDS through the in-process fake client.

mod common;

use std::sync::atomic::Ordering;

use clave_attest::{Measurement, Policy};
use clave_engine::{EngineConfig, Error};
use common::*;

#[tokio::test]
async fn acquires_keys_with_simulated_attester_under_dev_policy() {
    let h = harness_with(dev_config());
    assert!(!h.engine.is_ready());
    let status = h.engine.refresh(NOW).await.expect("keys acquired");
    assert!(h.engine.is_ready());
    assert_eq!(status.identity_public_key, h.kds.identity_public_key());
    assert_eq!(status.code_keys, 1);
    let epoch = h.kds.config().epoch_at(NOW);
    assert_eq!(status.invoke_epochs, vec![epoch, epoch + 1]);
    assert_eq!(h.fake.releases.load(Ordering::SeqCst), 3);
    // A second refresh reuses the held keys: no new release.
    h.engine.refresh(NOW + 10).await.expect("refresh");
    assert_eq!(h.fake.releases.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn refuses_kds_whose_evidence_does_not_satisfy_the_kds_policy() {
    let config = EngineConfig::insecure_dev(Measurement(vec![0x99; 32])).expect("config");
    let h = harness_with(config);
    let err = h.engine.refresh(NOW).await.expect_err("refused");
    assert!(matches!(err, Error::KdsAttestation(_)), "{err:?}");
    assert!(!h.engine.is_ready());
    assert_eq!(
        h.fake.releases.load(Ordering::SeqCst),
        0,
        "nothing asked of it"
    );
}

#[tokio::test]
async fn refuses_kds_under_a_policy_without_the_simulated_tee() {
    let policy =
        Policy::measurements([clave_attest::TeeKind::SevSnp], [kds_measurement()]).expect("policy");
    let h = harness_with(EngineConfig::new(policy));
    let err = h.engine.refresh(NOW).await.expect_err("refused");
    assert!(matches!(err, Error::KdsAttestation(_)), "{err:?}");
}

#[tokio::test]
async fn refuses_released_key_that_does_not_match_the_bundle() {
    let h = harness_with(dev_config());
    *h.fake.tamper.lock().expect("lock") = Tamper::WrongReleasedKey;
    let err = h.engine.refresh(NOW).await.expect_err("refused");
    assert!(matches!(err, Error::ReleasedKeyMismatch { .. }), "{err:?}");
    assert!(!h.engine.is_ready());
}

#[tokio::test]
async fn refuses_identity_not_bound_by_the_evidence() {
    let h = harness_with(dev_config());
    *h.fake.tamper.lock().expect("lock") = Tamper::SwapIdentity;
    let err = h.engine.refresh(NOW).await.expect_err("refused");
    assert!(matches!(err, Error::KdsAttestation(_)), "{err:?}");
}

#[tokio::test]
async fn failed_refresh_keeps_the_keys_held() {
    let h = ready_harness().await;
    *h.fake.tamper.lock().expect("lock") = Tamper::SwapIdentity;
    assert!(matches!(
        h.engine.refresh(NOW + 5).await,
        Err(Error::KdsAttestation(_))
    ));
    assert!(h.engine.is_ready());
    let d = h.deploy("echo", ECHO, fast_limits());
    let resp = h.call(&d, b"{\"a\":1}").await.expect("still serves");
    assert_eq!(resp.status, 200);
}

#[tokio::test]
async fn rotation_fetches_the_new_epoch_and_keeps_the_previous_for_the_grace_window() {
    let h = ready_harness().await;
    let d = h.deploy("echo", ECHO, fast_limits());
    let epoch = h.kds.config().epoch_at(NOW);
    let secs = h.kds.config().epoch_seconds;
    // A request sealed to the current epoch's key just before the boundary…
    let boundary = (epoch + 1) * secs;
    h.clock.store(boundary - 5, Ordering::SeqCst);
    let (enc, opener) = h.seal_request("echo", d.code_hash, boundary - 5, b"{\"x\":2}");
    // …arrives after the rotation.
    h.clock.store(boundary + 5, Ordering::SeqCst);
    let status = h.engine.refresh(boundary + 5).await.expect("refresh");
    assert_eq!(status.invoke_epochs, vec![epoch, epoch + 1, epoch + 2]);
    let sealed = h
        .engine
        .invoke(h.job(&d, enc), boundary + 5)
        .await
        .expect("old epoch key still held");
    let resp = opener.open(&sealed).expect("open").expect("ok");
    assert_eq!(resp.status, 200);
    // Long after the grace window the old epoch is gone.
    let later = boundary + secs + h.engine.config().key_grace_secs + 10;
    h.clock.store(later, Ordering::SeqCst);
    let status = h.engine.refresh(later).await.expect("refresh");
    assert!(!status.invoke_epochs.contains(&epoch), "{status:?}");
}

#[tokio::test]
async fn http_kds_client_acquires_keys_from_the_kds_service() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kds = open_kds(dir.path());
    let app = clave_kds::router_with_clock(kds.clone(), std::sync::Arc::new(|| NOW));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let client = clave_engine::HttpKdsClient::new(&format!("http://{addr}/")).expect("client");
    let runner = std::sync::Arc::new(NoRunner);
    let engine = clave_engine::Engine::with_runner(
        dev_config(),
        std::sync::Arc::new(client),
        engine_attester(),
        runner,
    )
    .expect("engine");
    let status = engine.refresh(NOW).await.expect("keys over HTTP");
    assert_eq!(status.identity_public_key, kds.identity_public_key());
    assert_eq!(status.invoke_epochs.len(), 2);

    // A KDS refusal comes back typed.
    let bad = clave_engine::HttpKdsClient::new(&format!("http://{addr}")).expect("client");
    use clave_engine::KdsClient as _;
    let err = bad
        .release(clave_proto::kds_api::ReleaseRequest {
            spec: b"{}".to_vec(),
            evidence: vec![1],
            ephemeral_public_key: [9; 32],
            nonce: [0; 32],
        })
        .await
        .expect_err("refused");
    assert!(
        matches!(err, clave_engine::KdsError::Refused { .. }),
        "{err:?}"
    );
    server.abort();
    assert!(matches!(
        clave_engine::HttpKdsClient::new("ftp://x"),
        Err(clave_engine::KdsError::Transport(_))
    ));
}

struct NoRunner;

impl clave_engine::Runner for NoRunner {
    fn run(
        &self,
        _: clave_engine::RunRequest,
    ) -> clave_engine::BoxFuture<'_, clave_engine::RunReport> {
        Box::pin(async {
            clave_engine::RunReport {
                result: Err(clave_engine::RunError::Internal),
                console: Vec::new(),
                console_truncated: false,
                stack: None,
            }
        })
    }
}
