//! The engine's clock floor: a host that restarts an engine (emptying its in-memory replay
//! cache) with the clock wound back must not get it to serve again at the earlier time, and a
//! running engine refuses requests at a wound-back clock. See `src/clock_floor.rs`.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use clave_engine::clock_floor::CLOCK_FLOOR_FILE;
use clave_engine::{Engine, EngineConfig, Error};
use common::*;

const SKEW: u64 = EngineConfig::DEFAULT_MAX_CLOCK_REGRESSION_SECS;

fn config_in(dir: &std::path::Path) -> EngineConfig {
    EngineConfig {
        data_dir: Some(dir.to_path_buf()),
        ..dev_config()
    }
}

/// A second engine over the same KDS and data directory: the engine after a restart.
fn restarted(h: &Harness, config: EngineConfig) -> Engine {
    let c = h.clock.clone();
    Engine::with_runner(config, h.fake.clone(), engine_attester(), h.runner.clone())
        .expect("engine")
        .with_clock(Arc::new(move || c.load(Ordering::SeqCst)))
}

#[tokio::test]
async fn restart_with_the_clock_wound_back_is_refused() {
    let data = tempfile::tempdir().expect("tempdir");
    let h = harness_with(config_in(data.path()));
    h.engine.refresh(NOW).await.expect("keys");
    assert!(data.path().join(CLOCK_FLOOR_FILE).exists());
    let d = h.deploy("echo", "export default () => 'ok'", fast_limits());
    // The host captures a request the engine serves at T.
    let t = NOW + 1000;
    let (captured, _) = h.seal_request("echo", d.code_hash, t, b"{}");
    h.engine
        .invoke(h.job(&d, captured.clone()), t)
        .await
        .expect("served");
    // Time passes; the engine serves on (its floor rises to T2).
    let t2 = t + 1000;
    let (later, _) = h.seal_request("echo", d.code_hash, t2, b"{}");
    h.engine.invoke(h.job(&d, later), t2).await.expect("served");
    assert_eq!(h.runs(), 2);

    // The host restarts the engine (emptying its replay cache) with the clock back at T, where
    // the captured request is fresh again: the engine refuses to take keys, nothing runs.
    h.clock.store(t, Ordering::SeqCst);
    let engine = restarted(&h, config_in(data.path()));
    let err = engine.refresh(t).await.expect_err("wound back");
    assert!(
        matches!(err, Error::ClockBehind { now, high_water } if now == t && high_water == t2),
        "{err}"
    );
    assert!(!engine.is_ready());
    assert!(matches!(
        engine.invoke(h.job(&d, captured.clone()), t).await,
        Err(Error::NotReady)
    ));
    assert_eq!(h.runs(), 2, "the captured request ran again");

    // Within the allowed skew (an NTP step) the restarted engine starts.
    let near = t2 - SKEW;
    let engine = restarted(&h, config_in(data.path()));
    engine.refresh(near).await.expect("within the skew");

    // Without a data directory nothing survives the restart: the same wound-back engine runs
    // the captured request a second time (the attack the floor stops).
    let forgetful = restarted(&h, dev_config());
    forgetful.refresh(t).await.expect("no floor");
    forgetful
        .invoke(h.job(&d, captured), t)
        .await
        .expect("served again");
    assert_eq!(h.runs(), 3);
}

#[tokio::test]
async fn a_running_engine_refuses_requests_at_a_wound_back_clock() {
    let data = tempfile::tempdir().expect("tempdir");
    let h = harness_with(config_in(data.path()));
    h.engine.refresh(NOW).await.expect("keys");
    let d = h.deploy("echo", "export default () => 'ok'", fast_limits());
    let t = NOW + 500;
    let (enc, _) = h.seal_request("echo", d.code_hash, t, b"{}");
    h.engine.invoke(h.job(&d, enc), t).await.expect("served");

    let back = t - SKEW - 1;
    let (enc, _) = h.seal_request("echo", d.code_hash, back, b"{}");
    let err = h
        .engine
        .invoke(h.job(&d, enc), back)
        .await
        .expect_err("wound back");
    assert!(
        matches!(err, Error::ClockBehind { now, high_water } if now == back && high_water == t),
        "{err}"
    );
    assert_eq!(h.runs(), 1, "nothing ran at the wound-back clock");
    // Within the skew it serves.
    let (enc, _) = h.seal_request("echo", d.code_hash, t - SKEW, b"{}");
    h.engine
        .invoke(h.job(&d, enc), t - SKEW)
        .await
        .expect("within the skew");
    assert_eq!(h.runs(), 2);
}

#[tokio::test]
async fn a_forged_or_edited_floor_file_is_refused() {
    let data = tempfile::tempdir().expect("tempdir");
    let h = harness_with(config_in(data.path()));
    h.engine.refresh(NOW).await.expect("keys");
    let path = data.path().join(CLOCK_FLOOR_FILE);
    let mut bytes = std::fs::read(&path).expect("floor file");
    // The host lowers the stored time (bytes 23..31, big-endian) to make room to wind back.
    bytes[30] ^= 0x01;
    std::fs::write(&path, &bytes).expect("write");
    let engine = restarted(&h, config_in(data.path()));
    let err = engine.refresh(NOW).await.expect_err("edited floor");
    assert!(
        matches!(&err, Error::ClockFloor(m) if m.contains("does not verify")),
        "{err}"
    );
    assert!(!engine.is_ready());
}
