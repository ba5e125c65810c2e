//! The INSECURE plaintext benchmark path (refused unless enabled) and the wider date window of
//! asynchronous jobs (without opening a relabelling replay).

mod common;

use axum::body::Body;
use axum::http;
use clave_engine::{EngineConfig, Error, router};
use clave_proto::gateway_api::{ENGINE_INVOKE_PATH, ENGINE_JOB_CONTENT_TYPE, JobFlags};
use clave_proto::{CodeHash, InvokeRequest, ProblemKind};
use common::*;
use tower::ServiceExt as _;

fn plain_request(function: &str, pin: CodeHash, date: u64, body: &[u8]) -> Vec<u8> {
    let mut req = InvokeRequest::new(
        "default".parse().expect("project"),
        function.parse().expect("function"),
        pin,
        date,
        body.to_vec(),
    );
    req.headers
        .push(("content-type".into(), "application/json".into()));
    req.to_bhttp().expect("bhttp")
}

/// Status and body of a plain BHTTP response.
fn plain_response(bytes: &[u8]) -> (u16, Vec<u8>) {
    let m = clave_proto::invoke::decode_bhttp(bytes).expect("bhttp response");
    let bhttp::ControlData::Response(status) = m.control() else {
        panic!("not a response");
    };
    (status.code(), m.content().to_vec())
}

async fn plaintext_harness(enabled: bool) -> Harness {
    let mut config = dev_config();
    config.insecure_plaintext_bench = enabled;
    let h = harness_with(config);
    h.engine.refresh(NOW).await.expect("keys");
    h
}

#[test]
fn plaintext_bench_is_off_by_default() {
    let c = EngineConfig::insecure_dev(kds_measurement()).expect("config");
    assert!(!c.insecure_plaintext_bench);
    assert_eq!(
        c.async_date_window_secs,
        EngineConfig::DEFAULT_ASYNC_DATE_WINDOW_SECS
    );
}

#[tokio::test]
async fn plaintext_job_is_refused_unless_enabled() {
    let h = plaintext_harness(false).await;
    let d = h.deploy("echo", ECHO, fast_limits());
    let mut job = h.job(&d, plain_request("echo", d.code_hash, NOW, b"{}"));
    job.flags = JobFlags::INSECURE_PLAINTEXT_BENCH;
    let err = h
        .engine
        .invoke(job.clone(), NOW)
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::PlaintextRefused), "{err:?}");
    assert!(err.is_rejected());
    // Over HTTP: a clear 400, and nothing ran.
    let resp = router(h.engine.clone())
        .oneshot(
            http::Request::post(ENGINE_INVOKE_PATH)
                .header(http::header::CONTENT_TYPE, ENGINE_JOB_CONTENT_TYPE)
                .body(Body::from(job.encode().expect("frame")))
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(resp.status(), 400);
    assert_eq!(h.runs(), 0);
}

#[tokio::test]
async fn plaintext_job_runs_with_the_same_checks_when_enabled() {
    let h = plaintext_harness(true).await;
    let d = h.deploy("echo", ECHO, fast_limits());
    let mut job = h.job(
        &d,
        plain_request("echo", d.code_hash, NOW, br#"{"plain":true}"#),
    );
    job.flags = JobFlags::INSECURE_PLAINTEXT_BENCH;
    let answer = h.engine.invoke(job.clone(), NOW).await.expect("answer");
    let (status, body) = plain_response(&answer);
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["echo"]["plain"], true);
    assert_eq!(h.runs(), 1);

    // The hash pin and the date are still checked (the function does not run).
    let mut wrong = job.clone();
    wrong.request = plain_request("echo", CodeHash::of(b"other"), NOW, b"{}");
    let (status, _) = plain_response(&h.engine.invoke(wrong, NOW).await.expect("answer"));
    assert_eq!(status, ProblemKind::CodeHashMismatch.defaults().0);
    let mut stale = job.clone();
    stale.request = plain_request("echo", d.code_hash, NOW - 61, b"{}");
    let (status, _) = plain_response(&h.engine.invoke(stale, NOW).await.expect("answer"));
    assert_eq!(status, ProblemKind::StaleDate.defaults().0);
    assert_eq!(h.runs(), 1);

    // A sealed request flagged plaintext is just malformed BHTTP: an error, nothing runs.
    let (enc, _) = h.seal_request("echo", d.code_hash, NOW, b"{}");
    let mut sealed = job.clone();
    sealed.request = enc;
    let (status, _) = plain_response(&h.engine.invoke(sealed, NOW).await.expect("answer"));
    assert_eq!(status, ProblemKind::BadRequest.defaults().0);
    // Never together with the asynchronous queue.
    job.flags = JobFlags::INSECURE_PLAINTEXT_BENCH | JobFlags::ASYNC;
    let err = h.engine.invoke(job, NOW).await.expect_err("refused");
    assert!(matches!(err, Error::PlaintextRefused), "{err:?}");
    // The confidential path still works beside it.
    assert!(h.call(&d, b"{}").await.is_ok());
    assert_eq!(h.runs(), 2);
}

#[tokio::test]
async fn async_jobs_get_the_wider_date_window() {
    let h = ready_harness().await;
    let d = h.deploy("marker", MARKER, fast_limits());
    let window = h.engine.config().async_date_window_secs;
    assert_eq!(window, 900);
    // Waited ten minutes in the queue: fine when flagged ASYNC ...
    let (enc, opener) = h.seal_request("marker", d.code_hash, NOW - 600, b"{}");
    let mut job = h.job(&d, enc);
    job.flags = JobFlags::ASYNC;
    let sealed = h.engine.invoke(job, NOW).await.expect("sealed");
    assert!(opener.open(&sealed).expect("opens").is_ok());
    // ... stale for a synchronous call ...
    let (enc, opener) = h.seal_request("marker", d.code_hash, NOW - 600, b"{}");
    let sealed = h.engine.invoke(h.job(&d, enc), NOW).await.expect("sealed");
    let err = opener.open(&sealed).expect("opens").expect_err("stale");
    assert_eq!(err.kind, ProblemKind::StaleDate);
    // ... and stale past the asynchronous window too.
    for date in [NOW - window - 1, NOW + window + 1] {
        let (enc, opener) = h.seal_request("marker", d.code_hash, date, b"{}");
        let mut job = h.job(&d, enc);
        job.flags = JobFlags::ASYNC;
        let sealed = h.engine.invoke(job, NOW).await.expect("sealed");
        let err = opener.open(&sealed).expect("opens").expect_err("stale");
        assert_eq!(err.kind, ProblemKind::StaleDate, "date {date}");
    }
    assert_eq!(h.runs(), 1);
}

#[tokio::test]
async fn a_synchronous_request_relabelled_async_later_is_still_a_replay() {
    let h = ready_harness().await;
    let d = h.deploy("marker", MARKER, fast_limits());
    let (enc, opener) = h.seal_request("marker", d.code_hash, NOW, b"{}");
    let first = h
        .engine
        .invoke(h.job(&d, enc.clone()), NOW)
        .await
        .expect("first");
    assert!(opener.open(&first).expect("opens").is_ok());
    // The host replays the captured request five minutes later, flagged asynchronous: past the
    // synchronous window, within the asynchronous one. The replay cache still remembers it.
    let mut job = h.job(&d, enc);
    job.flags = JobFlags::ASYNC;
    let again = h.engine.invoke(job, NOW + 300).await.expect("sealed");
    let err = opener.open(&again).expect("opens").expect_err("replay");
    assert_eq!(err.kind, ProblemKind::Replay);
    assert_eq!(h.runs(), 1, "ran once");
}

#[tokio::test]
async fn async_redelivery_within_the_async_window_gets_the_first_response() {
    let h = ready_harness().await;
    let d = h.deploy("echo", ECHO, fast_limits());
    let (enc, opener) = h.seal_request("echo", d.code_hash, NOW - 800, b"{\"n\":1}");
    let mut job = h.job(&d, enc);
    job.flags = JobFlags::ASYNC;
    let first = h.engine.invoke(job.clone(), NOW).await.expect("first");
    // Redelivered after the request's date window has passed: the held response, not a run.
    let again = h.engine.invoke(job, NOW + 200).await.expect("redelivery");
    assert_eq!(first, again);
    assert!(opener.open(&again).expect("opens").is_ok());
    assert_eq!(h.runs(), 1);
}

#[test]
fn windows_and_replay_retention() {
    let mut c = dev_config();
    assert_eq!(c.date_window_for(JobFlags::NONE), 60);
    assert_eq!(c.date_window_for(JobFlags::ASYNC), 900);
    assert_eq!(c.replay_window_secs(), 900);
    // Never narrower than the synchronous window.
    c.async_date_window_secs = 10;
    assert_eq!(c.date_window_for(JobFlags::ASYNC), 60);
    assert_eq!(c.replay_window_secs(), 60);
    // Async results outlive the replay entries by default.
    assert!(dev_config().async_result_secs >= 2 * dev_config().replay_window_secs());
}
