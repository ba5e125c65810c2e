//! The invoke path end to end: deploy (seal_code) → sealed request → engine → user opens.

mod common;

use axum::body::Body;
use axum::http;
use clave_attest::{Evidence, Policy};
use clave_engine::{EngineAttestation, Error, engine_attestation_report_data, router};
use clave_proto::gateway_api::{
    ENGINE_INVOKE_PATH, ENGINE_JOB_CONTENT_TYPE, ENGINE_READY_PATH, JobFlags,
    OHTTP_RESPONSE_CONTENT_TYPE, Problem, problem_type,
};
use clave_proto::{CodeHash, ProblemKind};
use common::*;
use tower::ServiceExt as _;

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("json")
}

#[tokio::test]
async fn user_decrypts_echo_and_transform_results() {
    let h = ready_harness().await;
    let echo = h.deploy("echo", ECHO, fast_limits());
    let resp = h.call(&echo, br#"{"hello":"world"}"#).await.expect("ok");
    assert_eq!(resp.status, 200);
    let v = json(&resp.body);
    assert_eq!(v["echo"]["hello"], "world");
    assert_eq!(v["path"], "/default/echo");
    assert_eq!(v["type"], "application/json");

    let upper = h.deploy("upper", UPPER, fast_limits());
    let resp = h.call(&upper, b"shout this").await.expect("ok");
    assert_eq!(resp.status, 201);
    assert_eq!(resp.body, b"SHOUT THIS");
    assert_eq!(resp.header("x-kind"), Some("upper"));
    assert_eq!(h.runs(), 2);
}

#[tokio::test]
async fn wrong_pinned_hash_is_refused_encrypted_and_the_function_does_not_run() {
    let h = ready_harness().await;
    let d = h.deploy("marker", MARKER, fast_limits());
    let wrong = CodeHash::of(b"some other code");
    let (enc, opener) = h.seal_request("marker", wrong, NOW, b"{}");
    let sealed = h.engine.invoke(h.job(&d, enc), NOW).await.expect("sealed");
    let err = opener.open(&sealed).expect("opens").expect_err("refused");
    assert_eq!(err.kind, ProblemKind::CodeHashMismatch);
    assert_eq!(h.runs(), 0, "the function did not run");
    assert!(h.runner.console.lock().expect("lock").is_empty());
    // The right pin runs it, and the marker shows up.
    let resp = h.call(&d, b"{}").await.expect("ok");
    assert_eq!(resp.body, b"ran");
    assert_eq!(h.runs(), 1);
    assert!(h.runner.console.lock().expect("lock")[0].contains("MARKER"));
}

#[tokio::test]
async fn swapped_sealed_code_is_refused_without_running() {
    let h = ready_harness().await;
    let d = h.deploy("marker", MARKER, fast_limits());
    let other = h.deploy("marker", ECHO, fast_limits());
    // The platform keeps the manifest but hands over other sealed code.
    let mut routed = d.clone();
    routed.sealed_code = other.sealed_code.clone();
    let (enc, opener) = h.seal_request("marker", d.code_hash, NOW, b"{}");
    let sealed = h
        .engine
        .invoke(h.job(&routed, enc), NOW)
        .await
        .expect("sealed");
    let err = opener.open(&sealed).expect("opens").expect_err("refused");
    assert_eq!(err.kind, ProblemKind::Internal, "{err}");
    // Garbage code too.
    routed.sealed_code = vec![0; 10];
    let (enc, opener) = h.seal_request("marker", d.code_hash, NOW, b"{}");
    let sealed = h
        .engine
        .invoke(h.job(&routed, enc), NOW)
        .await
        .expect("sealed");
    let err = opener.open(&sealed).expect("opens").expect_err("refused");
    assert_eq!(err.kind, ProblemKind::Internal, "{err}");
    assert_eq!(h.runs(), 0);
}

#[tokio::test]
async fn request_for_function_a_routed_as_function_b_is_refused() {
    let h = ready_harness().await;
    let a = h.deploy("fn-a", ECHO, fast_limits());
    let b = h.deploy("fn-b", MARKER, fast_limits());
    let (enc, opener) = h.seal_request("fn-a", a.code_hash, NOW, b"{}");
    let sealed = h.engine.invoke(h.job(&b, enc), NOW).await.expect("sealed");
    let err = opener.open(&sealed).expect("opens").expect_err("refused");
    assert_eq!(err.kind, ProblemKind::WrongFunction);
    // Routed right by name but with B's manifest and code: refused too.
    let (enc, opener) = h.seal_request("fn-a", a.code_hash, NOW, b"{}");
    let mut job = h.job(&b, enc);
    job.function = "fn-a".into();
    let sealed = h.engine.invoke(job, NOW).await.expect("sealed");
    let err = opener.open(&sealed).expect("opens").expect_err("refused");
    assert_eq!(err.kind, ProblemKind::WrongFunction);
    assert_eq!(h.runs(), 0);
}

#[tokio::test]
async fn replayed_request_is_refused() {
    let h = ready_harness().await;
    let d = h.deploy("echo", ECHO, fast_limits());
    let (enc, opener) = h.seal_request("echo", d.code_hash, NOW, b"{\"n\":1}");
    let first = h
        .engine
        .invoke(h.job(&d, enc.clone()), NOW)
        .await
        .expect("first");
    assert!(opener.open(&first).expect("opens").is_ok());
    let again = h
        .engine
        .invoke(h.job(&d, enc.clone()), NOW + 30)
        .await
        .expect("sealed");
    let err = opener.open(&again).expect("opens").expect_err("replay");
    assert_eq!(err.kind, ProblemKind::Replay);
    // After the window it is stale rather than forgotten.
    let late = h
        .engine
        .invoke(h.job(&d, enc), NOW + 61)
        .await
        .expect("sealed");
    let err = opener.open(&late).expect("opens").expect_err("stale");
    assert_eq!(err.kind, ProblemKind::StaleDate);
    assert_eq!(h.runs(), 1);
}

#[tokio::test]
async fn async_redelivery_gets_the_first_sealed_response() {
    let h = ready_harness().await;
    let d = h.deploy("echo", ECHO, fast_limits());
    let (enc, opener) = h.seal_async_request("echo", d.code_hash, NOW, b"{\"n\":1}");
    let mut job = h.job(&d, enc);
    job.flags = JobFlags::ASYNC;
    let first = h.engine.invoke(job.clone(), NOW).await.expect("first");
    let again = h
        .engine
        .invoke(job.clone(), NOW + 120)
        .await
        .expect("redelivery");
    assert_eq!(first, again, "exactly the bytes of the first run");
    assert!(opener.open(&again).expect("opens").is_ok());
    assert_eq!(h.runs(), 1, "ran once");
    // Without the flag the same bytes are refused: they were sealed for an asynchronous call.
    job.flags = JobFlags::NONE;
    let sync = h.engine.invoke(job, NOW + 1).await.expect("sealed");
    let err = opener.open(&sync).expect("opens").expect_err("mode");
    assert_eq!(err.kind, ProblemKind::BadRequest);
    assert_eq!(h.runs(), 1, "still ran once");
}

#[tokio::test]
async fn stale_dates_are_refused() {
    let h = ready_harness().await;
    let d = h.deploy("marker", MARKER, fast_limits());
    for date in [NOW - 61, NOW + 61, 0] {
        let (enc, opener) = h.seal_request("marker", d.code_hash, date, b"{}");
        let sealed = h.engine.invoke(h.job(&d, enc), NOW).await.expect("sealed");
        let err = opener.open(&sealed).expect("opens").expect_err("stale");
        assert_eq!(err.kind, ProblemKind::StaleDate, "date {date}");
    }
    for date in [NOW - 60, NOW + 60] {
        let (enc, opener) = h.seal_request("marker", d.code_hash, date, b"{}");
        let sealed = h.engine.invoke(h.job(&d, enc), NOW).await.expect("sealed");
        assert!(opener.open(&sealed).expect("opens").is_ok(), "date {date}");
    }
    assert_eq!(h.runs(), 2);
}

#[tokio::test]
async fn tampered_truncated_or_unknown_key_requests_get_a_clear_error() {
    let h = ready_harness().await;
    let d = h.deploy("marker", MARKER, fast_limits());
    let (enc, _) = h.seal_request("marker", d.code_hash, NOW, b"{}");
    let mut flipped = enc.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let mut flipped_enc = enc.clone();
    flipped_enc[10] ^= 0x80;
    for bad in [
        flipped,
        flipped_enc,
        enc[..enc.len() - 1].to_vec(),
        enc[..20].to_vec(),
        enc[..3].to_vec(),
        Vec::new(),
    ] {
        let err = h
            .engine
            .invoke(h.job(&d, bad), NOW)
            .await
            .expect_err("clear error");
        assert!(err.is_rejected(), "{err:?}");
        assert!(matches!(err, Error::Undecryptable), "{err:?}");
    }
    let held: Vec<u8> = h
        .bundles()
        .iter()
        .map(|b| b.key_config.key_id().0)
        .collect();
    let unknown = (0..=255u8)
        .find(|k| !held.contains(k))
        .expect("a free key id");
    let mut other = enc.clone();
    other[0] = unknown;
    let err = h
        .engine
        .invoke(h.job(&d, other), NOW)
        .await
        .expect_err("clear");
    assert!(
        matches!(err, Error::UnknownKeyId(k) if k == unknown),
        "{err:?}"
    );
    assert_eq!(h.runs(), 0);
}

#[tokio::test]
async fn not_ready_engine_refuses_in_the_clear() {
    let h = harness_with(dev_config());
    let err = h
        .engine
        .invoke(clave_proto::gateway_api::EngineJob::default(), NOW)
        .await
        .expect_err("not ready");
    assert!(matches!(err, Error::NotReady));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn sandbox_timeout_is_an_encrypted_problem_and_the_next_call_works() {
    let h = ready_harness().await;
    let spin = h.deploy("spin", SPIN, fast_limits());
    let err = h.call(&spin, b"{}").await.expect_err("timeout");
    assert_eq!(err.kind, ProblemKind::Timeout);
    let echo = h.deploy("echo", ECHO, fast_limits());
    let resp = h.call(&echo, b"[1,2,3]").await.expect("next call works");
    assert_eq!(json(&resp.body)["echo"], serde_json::json!([1, 2, 3]));
}

#[tokio::test]
async fn script_error_is_encrypted_with_its_message() {
    let h = ready_harness().await;
    let d = h.deploy(
        "throws",
        "export default { fetch() { throw new Error('kaputt'); } };",
        fast_limits(),
    );
    let err = h.call(&d, b"{}").await.expect_err("script error");
    assert_eq!(err.kind, ProblemKind::ScriptError);
    assert!(err.detail.as_deref().unwrap_or("").contains("kaputt"));
}

#[tokio::test]
async fn manifest_limits_apply_within_platform_maxima() {
    let h = ready_harness().await;
    let limits = clave_proto::code::Limits {
        max_response_bytes: 64,
        ..fast_limits()
    };
    let d = h.deploy(
        "big",
        "export default { fetch() { return new Response('x'.repeat(1000)); } };",
        limits,
    );
    let err = h.call(&d, b"{}").await.expect_err("limit");
    assert_eq!(err.kind, ProblemKind::LimitExceeded);
}

#[tokio::test]
async fn code_is_cached_after_the_first_open() {
    let h = ready_harness().await;
    let d = h.deploy("echo", ECHO, fast_limits());
    assert!(h.call(&d, b"1").await.is_ok());
    // Same manifest, sealed code now unreadable: the cached code (bound to this manifest and
    // hash) serves.
    let mut broken = d.clone();
    broken.sealed_code = vec![1, 2, 3];
    let (enc, opener) = h.seal_request("echo", d.code_hash, NOW, b"2");
    let sealed = h
        .engine
        .invoke(h.job(&broken, enc), NOW)
        .await
        .expect("sealed");
    assert!(opener.open(&sealed).expect("opens").is_ok());
}

// ---- HTTP service ----

async fn body_of(resp: axum::response::Response) -> Vec<u8> {
    axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .expect("body")
        .to_vec()
}

fn post_job(body: Vec<u8>, ct: &str) -> http::Request<Body> {
    http::Request::post(ENGINE_INVOKE_PATH)
        .header(http::header::CONTENT_TYPE, ct)
        .body(Body::from(body))
        .expect("request")
}

#[tokio::test]
async fn http_invoke_round_trip_and_clear_errors() {
    let h = ready_harness().await;
    let app = router(h.engine.clone());
    let d = h.deploy("echo", ECHO, fast_limits());
    let (enc, opener) = h.seal_request("echo", d.code_hash, NOW, br#"{"via":"http"}"#);
    let frame = h.job(&d, enc.clone()).encode().expect("frame");
    let resp = app
        .clone()
        .oneshot(post_job(frame, ENGINE_JOB_CONTENT_TYPE))
        .await
        .expect("response");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()[http::header::CONTENT_TYPE],
        OHTTP_RESPONSE_CONTENT_TYPE
    );
    let out = opener
        .open(&body_of(resp).await)
        .expect("opens")
        .expect("ok");
    assert_eq!(json(&out.body)["echo"]["via"], "http");

    // Tampered request: 400 engine-rejected, no content.
    let mut bad = enc.clone();
    bad[30] ^= 1;
    let frame = h.job(&d, bad).encode().expect("frame");
    let resp = app
        .clone()
        .oneshot(post_job(frame, ENGINE_JOB_CONTENT_TYPE))
        .await
        .expect("response");
    assert_eq!(resp.status(), 400);
    let p: Problem = serde_json::from_slice(&body_of(resp).await).expect("problem");
    assert_eq!(p.type_, problem_type::ENGINE_REJECTED);

    // Truncated framing: 400.
    let frame = h.job(&d, enc.clone()).encode().expect("frame");
    let resp = app
        .clone()
        .oneshot(post_job(
            frame[..frame.len() - 3].to_vec(),
            ENGINE_JOB_CONTENT_TYPE,
        ))
        .await
        .expect("response");
    assert_eq!(resp.status(), 400);

    // Wrong media type: 415.
    let frame = h.job(&d, enc).encode().expect("frame");
    let resp = app
        .clone()
        .oneshot(post_job(frame, "application/json"))
        .await
        .expect("response");
    assert_eq!(resp.status(), 415);
}

#[tokio::test]
async fn http_attestation_ready_and_health() {
    let h = harness_with(dev_config());
    let app = router(h.engine.clone());
    let get = |uri: &str| {
        http::Request::get(uri)
            .body(Body::empty())
            .expect("request")
    };
    let resp = app
        .clone()
        .oneshot(get(ENGINE_READY_PATH))
        .await
        .expect("r");
    assert_eq!(resp.status(), 503);
    h.engine.refresh(NOW).await.expect("keys");
    let resp = app
        .clone()
        .oneshot(get(ENGINE_READY_PATH))
        .await
        .expect("r");
    assert_eq!(resp.status(), 200);
    let resp = app.clone().oneshot(get("/healthz")).await.expect("r");
    assert_eq!(resp.status(), 200);

    let nonce = [7u8; 16];
    let uri = format!("/v1/engine/attestation?nonce={}", hex::encode(nonce));
    let resp = app.clone().oneshot(get(&uri)).await.expect("r");
    assert_eq!(resp.status(), 200);
    let att: EngineAttestation = serde_json::from_slice(&body_of(resp).await).expect("json");
    let ev = Evidence::from_bytes(&att.evidence).expect("evidence");
    let policy = Policy::insecure_dev([engine_measurement()]).expect("policy");
    clave_attest::verify(&ev, &policy, &engine_attestation_report_data(&nonce), NOW)
        .expect("engine evidence binds the nonce");
    let r = clave_attest::verify(&ev, &policy, &engine_attestation_report_data(&[8; 16]), NOW);
    assert!(
        matches!(r, Err(clave_attest::Error::UserDataMismatch)),
        "another nonce: {r:?}"
    );
    let resp = app
        .clone()
        .oneshot(get("/v1/engine/attestation?nonce="))
        .await
        .expect("r");
    assert_eq!(resp.status(), 400);
    let resp = app.oneshot(get("/v1/engine/attestation")).await.expect("r");
    assert_eq!(resp.status(), 400);
}

/// A redelivery that arrives while the first run of the same async job is still running is told
/// "overloaded" (nothing ran, deliver again later), never a sealed replay refusal that the queue
/// would store as the user's result; once the first run is done, a redelivery gets its bytes.
#[tokio::test]
async fn async_redelivery_during_the_first_run_is_overloaded_not_refused() {
    const SLOW: &str = r#"export default {
      async fetch(request) {
        await new Promise((r) => setTimeout(r, 400));
        return Response.json(await request.json());
      }
    };"#;
    let h = ready_harness().await;
    let d = h.deploy("slow", SLOW, clave_proto::code::Limits::default());
    let (enc, opener) = h.seal_async_request("slow", d.code_hash, NOW, b"{\"n\":7}");
    let mut job = h.job(&d, enc);
    job.flags = JobFlags::ASYNC;
    let engine = h.engine.clone();
    let first_job = job.clone();
    let first = tokio::spawn(async move { engine.invoke(first_job, NOW).await });
    // Wait (bounded) until the first delivery is running in the sandbox.
    for _ in 0..200 {
        if h.runs() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(h.runs(), 1, "the first delivery started");
    let during = h.engine.invoke(job.clone(), NOW).await;
    assert!(
        matches!(during, Err(Error::Overloaded)),
        "a concurrent redelivery must be retryable, got {during:?}"
    );
    let first = first.await.expect("join").expect("first run");
    assert!(opener.open(&first).expect("opens").is_ok());
    let after = h.engine.invoke(job, NOW + 5).await.expect("redelivery");
    assert_eq!(after, first, "exactly the bytes of the first run");
    assert_eq!(h.runs(), 1, "ran once");
}
