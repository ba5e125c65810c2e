//! Sealed master secret: genesis, restart, and refusal of damaged or foreign sealed state
//! (which is never overwritten).

mod common;

use clave_attest::Measurement;
use clave_kds::{Error, InsecureSimulatedSealer, Kds, MASTER_SEALED_FILE};
use common::*;

#[test]
fn restart_keeps_identity_and_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (id, bundles) = {
        let kds = open_kds(dir.path());
        (kds.identity_public_key(), kds.keys(NOW).expect("keys"))
    };
    let sealed = std::fs::read(dir.path().join(MASTER_SEALED_FILE)).expect("sealed");
    let kds = open_kds(dir.path());
    assert_eq!(kds.identity_public_key(), id);
    assert_eq!(kds.keys(NOW).expect("keys"), bundles);
    assert_eq!(
        std::fs::read(dir.path().join(MASTER_SEALED_FILE)).expect("sealed"),
        sealed,
        "restart does not rewrite the sealed state"
    );
    // Only one genesis in the log.
    let genesis = kds
        .release_log()
        .expect("log")
        .iter()
        .filter(|e| e.event == clave_proto::kds_api::LogEvent::Genesis)
        .count();
    assert_eq!(genesis, 1);
    // The sealed file does not contain the master in the clear.
    let master = peek_master(dir.path());
    assert!(!sealed.windows(32).any(|w| w == master.as_slice()));
}

#[test]
fn two_geneses_differ() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    assert_ne!(
        open_kds(a.path()).identity_public_key(),
        open_kds(b.path()).identity_public_key()
    );
}

fn assert_refused_and_untouched(
    dir: &std::path::Path,
    bytes: &[u8],
    check: impl Fn(&Error) -> bool,
) {
    let path = dir.join(MASTER_SEALED_FILE);
    std::fs::write(&path, bytes).expect("write");
    let err = Kds::open(
        dir,
        Box::new(InsecureSimulatedSealer::new(kds_measurement().as_bytes())),
        Box::new(kds_attester(kds_measurement())),
        dev_config(),
        NOW,
        rng(),
    )
    .expect_err("must refuse to start");
    assert!(check(&err), "unexpected error: {err}");
    assert_eq!(
        std::fs::read(&path).expect("read"),
        bytes,
        "sealed state was overwritten"
    );
}

#[test]
fn bit_flips_are_detected_and_file_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(open_kds(dir.path()));
    let good = std::fs::read(dir.path().join(MASTER_SEALED_FILE)).expect("sealed");
    // In the ciphertext, the tag, the nonce and the measurement binding.
    for (i, expect_corrupt) in [
        (good.len() - 1, true),
        (good.len() - 20, true),
        (50, true),
        (20, false),
    ] {
        let mut bad = good.clone();
        bad[i] ^= 0x80;
        assert_refused_and_untouched(dir.path(), &bad, |e| {
            if expect_corrupt {
                matches!(e, Error::SealedStateCorrupt)
            } else {
                matches!(e, Error::SealedUnderOtherMeasurement)
            }
        });
    }
    // Magic.
    let mut bad = good.clone();
    bad[0] ^= 0x01;
    assert_refused_and_untouched(dir.path(), &bad, |e| {
        matches!(e, Error::SealedStateBadMagic)
    });
    // Restoring the good file opens again with the same identity.
    std::fs::write(dir.path().join(MASTER_SEALED_FILE), &good).expect("restore");
    open_kds(dir.path());
}

#[test]
fn truncation_is_detected_and_file_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(open_kds(dir.path()));
    let good = std::fs::read(dir.path().join(MASTER_SEALED_FILE)).expect("sealed");
    for len in [0, 5, 8, 40, 54, 60, good.len() - 1] {
        assert_refused_and_untouched(dir.path(), &good[..len], |e| {
            matches!(
                e,
                Error::SealedStateTruncated { .. } | Error::SealedStateCorrupt
            )
        });
    }
    // Short files are reported as truncated, not as something else.
    assert_refused_and_untouched(dir.path(), &good[..30], |e| {
        matches!(e, Error::SealedStateTruncated { len: 30 })
    });
}

#[test]
fn sealed_under_another_measurement_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(open_kds(dir.path()));
    let good = std::fs::read(dir.path().join(MASTER_SEALED_FILE)).expect("sealed");
    let other = Measurement(vec![0x0F; 32]);
    let err = open_kds_with(dir.path(), dev_config(), other).expect_err("must refuse");
    assert!(matches!(err, Error::SealedUnderOtherMeasurement), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join(MASTER_SEALED_FILE)).expect("read"),
        good
    );
}
