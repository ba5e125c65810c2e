//! The host sees no per-call outcome: while a function throws, times out, is called with a wrong
//! code hash, with a stale date, replayed and routed to the wrong function, everything the engine
//! writes to host-visible tracing (every target, every level) and every metric recorded in the
//! process carry none of the outcome words. Each outcome is still delivered, sealed, to the
//! caller (checked here too, so the calls really took those paths).

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use clave_proto::{CodeHash, ProblemKind};
use common::*;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Words that name a call's outcome (`ProblemKind` slugs and their spellings in logs).
const OUTCOME_WORDS: &[&str] = &[
    "outcome",
    "script-error",
    "script_error",
    "scripterror",
    "timeout",
    "timed out",
    "code-hash-mismatch",
    "code_hash_mismatch",
    "codehashmismatch",
    "stale-date",
    "stale_date",
    "staledate",
    "replay",
    "wrong-function",
    "wrong_function",
    "kaputt",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_logs_and_metrics_carry_no_call_outcome() {
    let logs = Capture::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let recorder = clave_gateway::metrics::PrometheusRecorder::default();
    let metrics_handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder");

    let h = ready_harness().await;

    // Throws.
    let thrower = h.deploy(
        "thrower",
        "export default { fetch() { throw new Error('kaputt'); } };",
        fast_limits(),
    );
    let err = h.call(&thrower, b"{}").await.expect_err("throws");
    assert_eq!(err.kind, ProblemKind::ScriptError);

    // Times out.
    let spin = h.deploy("spin", SPIN, fast_limits());
    let err = h.call(&spin, b"{}").await.expect_err("times out");
    assert_eq!(err.kind, ProblemKind::Timeout);

    // Wrong pinned hash.
    let marker = h.deploy("marker", MARKER, fast_limits());
    let (enc, opener) = h.seal_request("marker", CodeHash::of(b"other code"), NOW, b"{}");
    let sealed = h
        .engine
        .invoke(h.job(&marker, enc), NOW)
        .await
        .expect("sealed");
    let err = opener.open(&sealed).expect("opens").expect_err("refused");
    assert_eq!(err.kind, ProblemKind::CodeHashMismatch);

    // Stale date.
    let (enc, opener) = h.seal_request("marker", marker.code_hash, NOW - 3_600, b"{}");
    let sealed = h
        .engine
        .invoke(h.job(&marker, enc), NOW)
        .await
        .expect("sealed");
    let err = opener.open(&sealed).expect("opens").expect_err("stale");
    assert_eq!(err.kind, ProblemKind::StaleDate);

    // Replay.
    let (enc, opener) = h.seal_request("marker", marker.code_hash, NOW, b"{}");
    let first = h
        .engine
        .invoke(h.job(&marker, enc.clone()), NOW)
        .await
        .expect("sealed");
    assert!(opener.open(&first).expect("opens").is_ok());
    let again = h
        .engine
        .invoke(h.job(&marker, enc), NOW)
        .await
        .expect("sealed");
    let err = opener.open(&again).expect("opens").expect_err("replay");
    assert_eq!(err.kind, ProblemKind::Replay);

    // Routed to another function.
    let (enc, opener) = h.seal_request("marker", marker.code_hash, NOW, b"{}");
    let sealed = h
        .engine
        .invoke(h.job(&spin, enc), NOW)
        .await
        .expect("sealed");
    let err = opener
        .open(&sealed)
        .expect("opens")
        .expect_err("wrong function");
    assert_eq!(err.kind, ProblemKind::WrongFunction);

    let text = String::from_utf8_lossy(&logs.0.lock().expect("logs")).to_lowercase();
    // The capture works: the engine did log each call (function names are host-visible).
    assert!(text.contains("invoke"), "nothing captured:\n{text}");
    assert!(text.contains("thrower") && text.contains("spin"), "{text}");
    // The metrics capture works too: the recorder is the process-wide one and renders what
    // anything in the process records (the engine records no metric of its own today).
    metrics::counter!("clave_test_capture_control").increment(1);
    let rendered = metrics_handle.render().to_lowercase();
    assert!(
        rendered.contains("clave_test_capture_control 1"),
        "the recorder captured nothing:\n{rendered}"
    );
    for word in OUTCOME_WORDS {
        assert!(
            !text.contains(word),
            "host-visible log carries the outcome word {word:?}:\n{text}"
        );
        assert!(
            !rendered.contains(word),
            "a metric carries the outcome word {word:?}:\n{rendered}"
        );
    }
}
