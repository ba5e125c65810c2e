//! `verify_platform` against a real (in-process, simulated) KDS: the happy path and every
//! refusal a client must make before sealing anything.
#![allow(clippy::unwrap_used)]

use clave_attest::{InsecureSimulatedAttester, Measurement, Policy};
use clave_client::{AttestationError, TrustPolicy, verify_platform};
use clave_kds::{InsecureSimulatedSealer, Kds, KdsConfig};
use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;

const NOW: u64 = 1_800_000_000;

fn m(b: u8) -> Measurement {
    Measurement(vec![b; 32])
}

fn kds(dir: &std::path::Path, engine: Measurement) -> Kds {
    let engines = Policy::insecure_dev([engine]).unwrap();
    let config = KdsConfig::new(
        engines.clone(),
        engines,
        Policy::insecure_dev([m(1)]).unwrap(),
    );
    Kds::open(
        dir,
        Box::new(InsecureSimulatedSealer::new(&[1; 32])),
        Box::new(InsecureSimulatedAttester::new(m(1)).unwrap()),
        config,
        NOW,
        UnwrapErr(SysRng),
    )
    .unwrap()
}

fn trust() -> TrustPolicy {
    TrustPolicy::insecure_dev(m(1), [m(2), m(3)]).unwrap()
}

#[test]
fn accepts_the_pinned_platform_and_explains_it() {
    let dir = tempfile::tempdir().unwrap();
    let k = kds(dir.path(), m(2));
    let nonce = [5u8; 32];
    let v = verify_platform(
        &trust(),
        &nonce,
        &k.attestation(&nonce).unwrap(),
        &k.keys(NOW).unwrap(),
        NOW,
    )
    .unwrap();
    assert!(v.insecure());
    assert!(v.invoke_key(NOW).is_some());
    assert_eq!(v.identity_public_key, k.identity_public_key());
    let words = v.describe().join("\n");
    assert!(words.contains(&m(1).to_hex()), "{words}");
    assert!(words.contains("INSECURE"), "{words}");
    assert!(v.usable_until(300) <= NOW + 300);
}

#[test]
fn refuses_what_it_must() {
    let dir = tempfile::tempdir().unwrap();
    let k = kds(dir.path(), m(2));
    let nonce = [5u8; 32];
    let att = k.attestation(&nonce).unwrap();
    let keys = k.keys(NOW).unwrap();

    // Simulated TEE without the master switch.
    let mut strict = trust();
    strict.allow_insecure_simulated = false;
    assert!(matches!(
        verify_platform(&strict, &nonce, &att, &keys, NOW),
        Err(AttestationError::InsecureRefused)
    ));

    // Evidence for another nonce (replay).
    assert!(matches!(
        verify_platform(&trust(), &[6u8; 32], &att, &keys, NOW),
        Err(AttestationError::NonceMismatch)
    ));

    // Another KDS measurement pinned.
    let other = TrustPolicy::insecure_dev(m(9), [m(2)]).unwrap();
    assert!(matches!(
        verify_platform(&other, &nonce, &att, &keys, NOW),
        Err(AttestationError::Evidence(_))
    ));

    // Bundles signed by another identity.
    let dir2 = tempfile::tempdir().unwrap();
    let k2 = kds(dir2.path(), m(2));
    let keys2 = k2.keys(NOW).unwrap();
    assert!(matches!(
        verify_platform(&trust(), &nonce, &att, &keys2, NOW),
        Err(AttestationError::IdentityMismatch)
    ));
    // ... even when the listing claims the attested identity.
    let mut forged = keys2.clone();
    forged.identity_public_key = keys.identity_public_key;
    assert!(matches!(
        verify_platform(&trust(), &nonce, &att, &forged, NOW),
        Err(AttestationError::Bundle(_))
    ));

    // A tampered bundle payload.
    let mut tampered = keys.clone();
    let mut p = tampered.bundles[0].payload.clone().into_bytes();
    p[3] ^= 1;
    tampered.bundles[0].payload = String::from_utf8(p).unwrap();
    assert!(verify_platform(&trust(), &nonce, &att, &tampered, NOW).is_err());

    // Tampered evidence bytes.
    let mut bad = att.clone();
    let n = bad.evidence.len();
    bad.evidence[n - 1] ^= 0x80;
    assert!(verify_platform(&trust(), &nonce, &bad, &keys, NOW).is_err());
    bad.evidence.truncate(n / 2);
    assert!(verify_platform(&trust(), &nonce, &bad, &keys, NOW).is_err());

    // Expired bundles.
    assert!(matches!(
        verify_platform(&trust(), &nonce, &att, &keys, NOW + 10 * 86_400),
        Err(AttestationError::MissingKey(_))
    ));

    // Keys released to engines the client does not accept.
    let dir3 = tempfile::tempdir().unwrap();
    let k3 = kds(dir3.path(), m(4));
    let att3 = k3.attestation(&nonce).unwrap();
    let keys3 = k3.keys(NOW).unwrap();
    assert!(matches!(
        verify_platform(&trust(), &nonce, &att3, &keys3, NOW),
        Err(AttestationError::SpecTooBroad { .. })
    ));
}
