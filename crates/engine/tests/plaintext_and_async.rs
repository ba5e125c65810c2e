//! The INSECURE plaintext benchmark path (refused unless enabled) and the wider date window of
//! asynchronous requests (sealed by the caller, so the host cannot relabel a synchronous one).

mod common;

use axum::body::Body;
use axum::http;
use clave_engine::{EngineConfig, Error, router};
use clave_proto::gateway_api::{ENGINE_INVOKE_PATH, ENGINE_JOB_CONTENT_TYPE, JobFlags};
use clave_proto::{CodeHash, InvokeMode, InvokeRequest, ProblemKind};
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
    wrong.request = plain_request("echo", CodeHash::of(b"other"), NOW, b"{}").into();
    let (status, _) = plain_response(&h.engine.invoke(wrong, NOW).await.expect("answer"));
    assert_eq!(status, ProblemKind::CodeHashMismatch.defaults().0);
    let mut stale = job.clone();
    stale.request = plain_request("echo", d.code_hash, NOW - 61, b"{}").into();
    let (status, _) = plain_response(&h.engine.invoke(stale, NOW).await.expect("answer"));
    assert_eq!(status, ProblemKind::StaleDate.defaults().0);
    assert_eq!(h.runs(), 1);

    // A sealed request flagged plaintext is just malformed BHTTP: an error, nothing runs.
    let (enc, _) = h.seal_request("echo", d.code_hash, NOW, b"{}");
    let mut sealed = job.clone();
    sealed.request = enc.into();
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
async fn async_requests_get_the_wider_date_window() {
    let h = ready_harness().await;
    let d = h.deploy("marker", MARKER, fast_limits());
    let window = h.engine.config().async_date_window_secs;
    assert_eq!(window, 900);
    // Waited ten minutes in the queue: fine when sealed and delivered as asynchronous ...
    let (enc, opener) = h.seal_async_request("marker", d.code_hash, NOW - 600, b"{}");
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
        let (enc, opener) = h.seal_async_request("marker", d.code_hash, date, b"{}");
        let mut job = h.job(&d, enc);
        job.flags = JobFlags::ASYNC;
        let sealed = h.engine.invoke(job, NOW).await.expect("sealed");
        let err = opener.open(&sealed).expect("opens").expect_err("stale");
        assert_eq!(err.kind, ProblemKind::StaleDate, "date {date}");
    }
    assert_eq!(h.runs(), 1);
}

#[tokio::test]
async fn the_host_cannot_relabel_a_synchronous_request_as_asynchronous() {
    let h = ready_harness().await;
    let d = h.deploy("marker", MARKER, fast_limits());
    // A fresh synchronous request delivered on the asynchronous route: refused, nothing runs.
    let (enc, opener) = h.seal_request("marker", d.code_hash, NOW, b"{}");
    let mut job = h.job(&d, enc.clone());
    job.flags = JobFlags::ASYNC;
    let sealed = h.engine.invoke(job.clone(), NOW).await.expect("sealed");
    let err = opener.open(&sealed).expect("opens").expect_err("mode");
    assert_eq!(err.kind, ProblemKind::BadRequest);
    assert!(
        err.detail
            .as_deref()
            .unwrap_or_default()
            .contains("synchronous"),
        "{err:?}"
    );
    assert_eq!(h.runs(), 0);
    // The refusal did not burn the request: delivered as sealed, it runs once ...
    let first = h
        .engine
        .invoke(h.job(&d, enc.clone()), NOW)
        .await
        .expect("first");
    assert!(opener.open(&first).expect("opens").is_ok());
    assert_eq!(h.runs(), 1);
    // ... and captured and replayed five minutes later, relabelled asynchronous (past its
    // synchronous window, within the asynchronous one), it is still refused.
    let again = h.engine.invoke(job, NOW + 300).await.expect("sealed");
    let err = opener.open(&again).expect("opens").expect_err("refused");
    assert_eq!(err.kind, ProblemKind::BadRequest);
    // An asynchronous request delivered synchronously is refused the same way.
    let (enc, opener) = h.seal_async_request("marker", d.code_hash, NOW, b"{}");
    let sealed = h.engine.invoke(h.job(&d, enc), NOW).await.expect("sealed");
    let err = opener.open(&sealed).expect("opens").expect_err("mode");
    assert_eq!(err.kind, ProblemKind::BadRequest);
    assert_eq!(h.runs(), 1, "ran once");
}

#[tokio::test]
async fn synchronous_requests_leave_the_replay_cache_after_their_own_window() {
    // A one-entry replay cache: a synchronous request occupies it only until date + 60 s, so a
    // second request fits after that (with the old widest-window rule it stayed 900 s).
    let mut config = dev_config();
    config.replay_capacity = 1;
    let h = harness_with(config);
    h.engine.refresh(NOW).await.expect("keys");
    let d = h.deploy("marker", MARKER, fast_limits());
    let (enc, opener) = h.seal_request("marker", d.code_hash, NOW, b"{}");
    let sealed = h.engine.invoke(h.job(&d, enc), NOW).await.expect("sealed");
    assert!(opener.open(&sealed).expect("opens").is_ok());
    // Full while the first id lives.
    let (enc, _) = h.seal_request("marker", d.code_hash, NOW + 30, b"{}");
    let err = h
        .engine
        .invoke(h.job(&d, enc), NOW + 30)
        .await
        .expect_err("full");
    assert!(matches!(err, Error::Overloaded), "{err:?}");
    // After date + 60 s the slot is free again.
    let (enc, opener) = h.seal_request("marker", d.code_hash, NOW + 61, b"{}");
    let sealed = h
        .engine
        .invoke(h.job(&d, enc), NOW + 61)
        .await
        .expect("sealed");
    assert!(opener.open(&sealed).expect("opens").is_ok());
    assert_eq!(h.runs(), 2);
}

#[tokio::test]
async fn async_redelivery_within_the_async_window_gets_the_first_response() {
    let h = ready_harness().await;
    let d = h.deploy("echo", ECHO, fast_limits());
    let (enc, opener) = h.seal_async_request("echo", d.code_hash, NOW - 800, b"{\"n\":1}");
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
    assert_eq!(c.date_window_for(InvokeMode::Sync), 60);
    assert_eq!(c.date_window_for(InvokeMode::Async), 900);
    assert_eq!(c.replay_window_secs(), 900);
    // Never narrower than the synchronous window.
    c.async_date_window_secs = 10;
    assert_eq!(c.date_window_for(InvokeMode::Async), 60);
    assert_eq!(c.replay_window_secs(), 60);
    // Async results outlive the replay entries by default.
    assert!(dev_config().async_result_secs >= 2 * dev_config().replay_window_secs());
}

/// An inner request whose `date` is an RFC 9110 HTTP-date, as any HTTP client writes it.
fn http_date_request(pin: CodeHash, date: &str) -> Vec<u8> {
    let mut m = bhttp::Message::request(
        b"POST".to_vec(),
        b"https".to_vec(),
        b"clave".to_vec(),
        b"/default/echo".to_vec(),
    );
    m.put_header("clave-code-hash", pin.to_hex());
    m.put_header("date", date);
    m.put_header("content-type", "application/json");
    m.write_content(br#"{"d":1}"#);
    let mut out = Vec::new();
    m.write_bhttp(bhttp::Mode::KnownLength, &mut out)
        .expect("bhttp");
    out
}

#[tokio::test]
async fn an_http_date_is_accepted_and_held_to_the_same_window() {
    // The plaintext path parses and checks the inner request exactly as the sealed one does.
    let h = plaintext_harness(true).await;
    let d = h.deploy("echo", ECHO, fast_limits());
    let call = |date: &str| {
        let mut job = h.job(&d, http_date_request(d.code_hash, date));
        job.flags = JobFlags::INSECURE_PLAINTEXT_BENCH;
        job
    };
    // NOW = 1_750_000_000 s = Sun, 15 Jun 2025 15:06:40 GMT.
    let (status, body) = plain_response(
        &h.engine
            .invoke(call("Sun, 15 Jun 2025 15:06:40 GMT"), NOW)
            .await
            .expect("answer"),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(h.runs(), 1);
    // 61 s early: stale, as for decimal seconds.
    let (status, _) = plain_response(
        &h.engine
            .invoke(call("Sun, 15 Jun 2025 15:05:39 GMT"), NOW)
            .await
            .expect("answer"),
    );
    assert_eq!(status, ProblemKind::StaleDate.defaults().0);
    // Not a date (the weekday is wrong): a bad request.
    let (status, _) = plain_response(
        &h.engine
            .invoke(call("Mon, 15 Jun 2025 15:06:40 GMT"), NOW)
            .await
            .expect("answer"),
    );
    assert_eq!(status, ProblemKind::BadRequest.defaults().0);
    assert_eq!(h.runs(), 1, "nothing else ran");
}

/// A short call's answer waits until the calls its worker already holds have run (decision
/// 0010: answers leave in bursts, so a sleeping gateway is woken once per burst). Two jobs taken
/// together by one worker that runs calls itself (as `clave dev` and `clave engine` do): both
/// have run before either answer is complete.
#[test]
fn answers_of_jobs_taken_together_leave_together() {
    // Calls run inline on a thread whose stack holds twice the sandbox's stack limit.
    let thread = std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(jobs_taken_together())
        })
        .expect("thread");
    thread.join().expect("test thread");
}

async fn jobs_taken_together() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    let mut config = dev_config();
    config.insecure_plaintext_bench = true;
    // No job of this test is "long", however slow the machine.
    config.answer_burst_below = std::time::Duration::from_secs(3600);
    let h = Arc::new(harness_with_sandbox(
        config,
        clave_engine::SandboxSettings {
            workers: 1,
            inline_budget_ms: 1_000,
            ..clave_engine::SandboxSettings::default()
        },
    ));
    h.engine.refresh(NOW).await.expect("keys");
    let d = h.deploy("echo", ECHO, fast_limits());
    let mut job = h.job(&d, plain_request("echo", d.code_hash, NOW, b"{}"));
    job.flags = JobFlags::INSECURE_PLAINTEXT_BENCH;
    let frame = job.encode().expect("frame");
    let post = |h: Arc<Harness>, frame: Vec<u8>| async move {
        let resp = router(h.engine.clone())
            .oneshot(
                http::Request::post(ENGINE_INVOKE_PATH)
                    .header(http::header::CONTENT_TYPE, ENGINE_JOB_CONTENT_TYPE)
                    .body(Body::from(frame))
                    .expect("request"),
            )
            .await
            .expect("response");
        (
            resp.status().as_u16(),
            h.runner.finished.load(Ordering::SeqCst),
        )
    };
    // Warm: the code is open and the function's image is built, so a call is short.
    assert_eq!(post(h.clone(), frame.clone()).await.0, 200);
    let before = h.runner.finished.load(Ordering::SeqCst);
    let first = tokio::spawn(post(h.clone(), frame.clone()));
    let second = tokio::spawn(post(h.clone(), frame));
    let (first, second) = (first.await.expect("first"), second.await.expect("second"));
    assert_eq!((first.0, second.0), (200, 200));
    assert_eq!(
        (first.1 - before, second.1 - before),
        (2, 2),
        "the first answer was complete before the second job ran"
    );
}
