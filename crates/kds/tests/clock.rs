//! The sealed clock floor: the host cannot wind a KDS's clock back across a restart (or while it
//! runs) by more than the allowed regression.

mod common;

use clave_kds::seal::SealerKind;
use clave_kds::{CLOCK_SEALED_FILE, Error, InsecureSimulatedSealer, Kds, KdsConfig, Sealer};
use common::*;
use zeroize::Zeroizing;

const BACK: u64 = KdsConfig::DEFAULT_MAX_CLOCK_REGRESSION_SECS;

fn open_at(dir: &std::path::Path, now: u64) -> Result<Kds, Error> {
    Kds::open(
        dir,
        Box::new(InsecureSimulatedSealer::new(kds_measurement().as_bytes())),
        Box::new(kds_attester(kds_measurement())),
        dev_config(),
        now,
        rng(),
    )
}

#[test]
fn restart_with_the_clock_wound_back_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kds = open_at(dir.path(), NOW).expect("genesis");
    let identity = kds.identity_public_key();
    drop(kds);
    assert!(dir.path().join(CLOCK_SEALED_FILE).exists());
    // A day back: refused, and nothing on disk changes.
    let before = std::fs::read(dir.path().join(CLOCK_SEALED_FILE)).expect("clock");
    let err = open_at(dir.path(), NOW - 86_400).expect_err("wound back");
    assert!(
        matches!(err, Error::ClockBehind { now, high_water } if now == NOW - 86_400 && high_water == NOW),
        "{err}"
    );
    assert_eq!(
        std::fs::read(dir.path().join(CLOCK_SEALED_FILE)).expect("clock"),
        before
    );
    // Within the allowed skew, or forward: fine.
    let kds = open_at(dir.path(), NOW - BACK).expect("small skew");
    assert_eq!(kds.identity_public_key(), identity);
    drop(kds);
    drop(open_at(dir.path(), NOW + 3_600).expect("forward"));
    // The floor moved with it.
    assert!(matches!(
        open_at(dir.path(), NOW + 3_600 - BACK - 1),
        Err(Error::ClockBehind { .. })
    ));
}

#[test]
fn a_restart_within_a_minute_of_the_stored_mark_does_not_rewrite_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(CLOCK_SEALED_FILE);
    drop(open_at(dir.path(), NOW).expect("genesis"));
    let written = std::fs::read(&path).expect("clock");
    // Sealing draws a fresh nonce, so any rewrite changes the bytes.
    drop(open_at(dir.path(), NOW + 59).expect("restart"));
    assert_eq!(std::fs::read(&path).expect("clock"), written);
    // The running KDS writes once the clock is a minute past the stored mark (not the start's).
    let kds = open_at(dir.path(), NOW + 59).expect("restart");
    let spec = dev_config().code_spec().to_bytes();
    let eph = Ephemeral::new(1);
    let req = release_request(&engine(), spec, &eph, kds.new_nonce(NOW + 59).nonce);
    kds.release(&req, NOW + 59).expect("granted");
    assert_eq!(
        std::fs::read(&path).expect("clock"),
        written,
        "59 s: not yet"
    );
    let req = release_request(
        &engine(),
        dev_config().code_spec().to_bytes(),
        &eph,
        kds.new_nonce(NOW + 60).nonce,
    );
    kds.release(&req, NOW + 60).expect("granted");
    drop(kds);
    let rewritten = std::fs::read(&path).expect("clock");
    assert_ne!(rewritten, written, "60 s past the stored mark: written");
    assert!(matches!(
        open_at(dir.path(), NOW + 60 - BACK - 1),
        Err(Error::ClockBehind { high_water, .. }) if high_water == NOW + 60
    ));
    assert_eq!(std::fs::read(&path).expect("clock"), rewritten);
    // The stored mark is NOW + 60: NOW + 60 - BACK opens (nothing written), a restart a minute
    // or more past it writes at once.
    drop(open_at(dir.path(), NOW + 60 - BACK).expect("within the regression"));
    assert_eq!(std::fs::read(&path).expect("clock"), rewritten);
    drop(open_at(dir.path(), NOW + 120).expect("restart"));
    assert_ne!(std::fs::read(&path).expect("clock"), rewritten);
    assert!(matches!(
        open_at(dir.path(), NOW + 120 - BACK - 1),
        Err(Error::ClockBehind { high_water, .. }) if high_water == NOW + 120
    ));
}

#[test]
fn a_running_kds_refuses_releases_at_a_wound_back_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kds = open_at(dir.path(), NOW).expect("genesis");
    let spec = dev_config().code_spec().to_bytes();
    let eph = Ephemeral::new(1);
    let req = release_request(&engine(), spec.clone(), &eph, kds.new_nonce(NOW).nonce);
    kds.release(&req, NOW).expect("granted");
    let then = NOW - BACK - 1;
    let req = release_request(&engine(), spec, &eph, kds.new_nonce(then).nonce);
    let err = kds.release(&req, then).expect_err("refused");
    assert!(matches!(err, Error::ClockBehind { .. }), "{err}");
}

/// A sealer standing for a hardware-bound one (its kind is what matters here).
struct FakeHardwareSealer(InsecureSimulatedSealer);

impl Sealer for FakeHardwareSealer {
    fn kind(&self) -> SealerKind {
        SealerKind::SevSnpDerivedKey
    }
    fn measurement_binding(&self) -> [u8; 32] {
        self.0.measurement_binding()
    }
    fn sealing_key(&self) -> Result<Zeroizing<[u8; 32]>, Error> {
        self.0.sealing_key()
    }
}

#[test]
fn hardware_sealed_kds_refuses_a_deleted_clock_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = |now| {
        Kds::open(
            dir.path(),
            Box::new(FakeHardwareSealer(InsecureSimulatedSealer::new(
                kds_measurement().as_bytes(),
            ))),
            Box::new(kds_attester(kds_measurement())),
            dev_config(),
            now,
            rng(),
        )
    };
    drop(open(NOW).expect("genesis"));
    std::fs::remove_file(dir.path().join(CLOCK_SEALED_FILE)).expect("delete");
    let err = open(NOW - 86_400).expect_err("refused");
    assert!(matches!(err, Error::ClockFloorMissing(_)), "{err}");
}
