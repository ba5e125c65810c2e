//! `verify_platform` against a real (in-process, simulated) KDS: the happy path and every
//! refusal a client must make before sealing anything.
#![allow(clippy::unwrap_used)]

use clave_attest::{InsecureSimulatedAttester, Measurement, Policy};
use clave_client::{AttestationError, TrustPolicy, verify_platform};
use clave_kds::{InsecureSimulatedSealer, Kds, KdsConfig};
use clave_proto::kds_api::MasterSecretOrigin;
use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;

const NOW: u64 = 1_800_000_000;

fn m(b: u8) -> Measurement {
    Measurement(vec![b; 32])
}

fn kds(dir: &std::path::Path, engine: Measurement) -> Kds {
    let engines = Policy::insecure_dev([engine]).unwrap();
    let config = KdsConfig::new(engines.clone(), engines);
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
    let r = verify_platform(&trust(), &nonce, &att, &tampered, NOW);
    assert!(
        matches!(
            r,
            Err(AttestationError::Bundle(
                clave_proto::Error::InvalidBase64 { field: "payload" }
            ))
        ),
        "{r:?}"
    );
    // A payload edited below its encoding: the signature no longer verifies.
    let mut tampered = keys.clone();
    let mut p = clave_proto::kds_api::b64::decode(&tampered.bundles[0].payload).unwrap();
    p[3] ^= 1;
    tampered.bundles[0].payload = clave_proto::kds_api::b64::encode(&p);
    let r = verify_platform(&trust(), &nonce, &att, &tampered, NOW);
    assert!(
        matches!(
            r,
            Err(AttestationError::Bundle(clave_proto::Error::BadSignature))
        ),
        "{r:?}"
    );

    // Tampered evidence bytes.
    let mut bad = att.clone();
    let n = bad.evidence.len();
    bad.evidence[n - 1] ^= 0x80;
    assert!(matches!(
        verify_platform(&trust(), &nonce, &bad, &keys, NOW),
        Err(AttestationError::Evidence(
            clave_attest::Error::BadSignature(clave_attest::TeeKind::InsecureSimulated)
        ))
    ));
    bad.evidence.truncate(n / 2);
    assert!(matches!(
        verify_platform(&trust(), &nonce, &bad, &keys, NOW),
        Err(AttestationError::Evidence(
            clave_attest::Error::Truncated { .. }
        ))
    ));

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

fn kds_with_admission(dir: &std::path::Path, admission: Policy) -> Kds {
    let engines = Policy::insecure_dev([m(2)]).unwrap();
    let mut config = KdsConfig::new(engines.clone(), engines);
    config.admission_policy = Some(admission);
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

/// A KDS that admits replicas beyond its own measurement publishes its admission policy and binds
/// its hash: a client refuses it unless it pinned that policy, and cannot be fooled by stripping
/// or swapping the policy in the answer.
#[test]
fn kds_admission_policy_must_be_pinned_and_is_bound() {
    let dir = tempfile::tempdir().unwrap();
    let admission = Policy::insecure_dev([m(1), m(7)]).unwrap();
    let k = kds_with_admission(dir.path(), admission.clone());
    let nonce = [5u8; 32];
    let att = k.attestation(&nonce).unwrap();
    let keys = k.keys(NOW).unwrap();
    assert_eq!(att.admission_policy.as_ref(), Some(&admission));

    // Not pinned: refused, naming the hash `clave attest` shows.
    let hash = hex::encode(clave_proto::kds_api::admission_policy_hash(&admission));
    match verify_platform(&trust(), &nonce, &att, &keys, NOW) {
        Err(AttestationError::AdmissionPolicyRefused { hash: h, .. }) => assert_eq!(h, hash),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Pinned: accepted and described.
    let pinned = trust().accept_kds_admission_policy(admission.clone());
    let v = verify_platform(&pinned, &nonce, &att, &keys, NOW).unwrap();
    assert_eq!(
        v.kds_admission_policy.as_ref().map(|(p, _)| p),
        Some(&admission)
    );
    let words = v.describe().join("\n");
    assert!(words.contains(&hash), "{words}");

    // Stripped from the answer: the evidence binds it, so verification fails.
    let mut stripped = att.clone();
    stripped.admission_policy = None;
    assert!(matches!(
        verify_platform(&pinned, &nonce, &stripped, &keys, NOW),
        Err(AttestationError::Evidence(_))
    ));
    // Swapped for another pinned policy: fails too.
    let other = Policy::insecure_dev([m(1)]).unwrap();
    let mut swapped = att.clone();
    swapped.admission_policy = Some(other.clone());
    let both = pinned.accept_kds_admission_policy(other);
    assert!(matches!(
        verify_platform(&both, &nonce, &swapped, &keys, NOW),
        Err(AttestationError::Evidence(_))
    ));

    // A KDS without an admission policy says so.
    let dir2 = tempfile::tempdir().unwrap();
    let plain = kds(dir2.path(), m(2));
    let v = verify_platform(
        &trust(),
        &nonce,
        &plain.attestation(&nonce).unwrap(),
        &plain.keys(NOW).unwrap(),
        NOW,
    )
    .unwrap();
    assert!(v.kds_admission_policy.is_none());
    assert!(
        v.describe()
            .join("\n")
            .contains("same TEE kind and measurement")
    );
}

/// A KDS whose master secret came from an external key source says so in its evidence: the
/// client refuses it unless told to accept it, cannot be fooled by the label being stripped, and
/// shows it.
#[test]
fn external_master_secret_is_bound_refused_by_default_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("master.key");
    std::fs::write(&key_file, [0x42u8; 32]).unwrap();
    let engines = Policy::insecure_dev([m(2)]).unwrap();
    let k = Kds::open_external(
        &dir.path().join("kds"),
        &clave_kds::ExternalKeySource::File(key_file),
        Box::new(InsecureSimulatedAttester::new(m(1)).unwrap()),
        KdsConfig::new(engines.clone(), engines),
        NOW,
        UnwrapErr(SysRng),
    )
    .unwrap();
    let nonce = [5u8; 32];
    let att = k.attestation(&nonce).unwrap();
    let keys = k.keys(NOW).unwrap();
    assert_eq!(att.master_secret_origin, MasterSecretOrigin::External);

    assert!(matches!(
        verify_platform(&trust(), &nonce, &att, &keys, NOW),
        Err(AttestationError::ExternalMasterSecretRefused)
    ));
    let accepting = trust().accept_external_master_secret();
    let v = verify_platform(&accepting, &nonce, &att, &keys, NOW).unwrap();
    assert_eq!(v.kds_master_secret_origin, MasterSecretOrigin::External);
    let words = v.describe().join("\n");
    assert!(words.contains("external key source"), "{words}");

    // Stripping the label: the evidence binds it, so verification fails even for a client
    // that would accept it.
    let mut stripped = att.clone();
    stripped.master_secret_origin = MasterSecretOrigin::Tee;
    for t in [trust(), accepting.clone()] {
        assert!(matches!(
            verify_platform(&t, &nonce, &stripped, &keys, NOW),
            Err(AttestationError::Evidence(
                clave_attest::Error::UserDataMismatch
            ))
        ));
    }
    // And a KDS whose master secret was made in the TEE cannot be passed off as external
    // (nor the reverse): the label is part of the binding.
    let dir2 = tempfile::tempdir().unwrap();
    let plain = kds(dir2.path(), m(2));
    let mut relabelled = plain.attestation(&nonce).unwrap();
    relabelled.master_secret_origin = MasterSecretOrigin::External;
    assert!(matches!(
        verify_platform(
            &accepting,
            &nonce,
            &relabelled,
            &plain.keys(NOW).unwrap(),
            NOW
        ),
        Err(AttestationError::Evidence(
            clave_attest::Error::UserDataMismatch
        ))
    ));
}

/// `insecure()` looks at everything verified, not only the KDS evidence: a hardware KDS whose key
/// specs (or admission policy) admit the simulated TEE is insecure too.
#[test]
fn insecure_considers_every_verified_spec() {
    let dir = tempfile::tempdir().unwrap();
    let k = kds(dir.path(), m(2));
    let nonce = [5u8; 32];
    let mut v = verify_platform(
        &trust(),
        &nonce,
        &k.attestation(&nonce).unwrap(),
        &k.keys(NOW).unwrap(),
        NOW,
    )
    .unwrap();
    // Pretend the KDS evidence came from hardware.
    v.kds_claims.kind = clave_attest::TeeKind::SevSnp;
    v.kds_claims.insecure = false;
    assert!(v.insecure(), "its key specs still admit simulated engines");
    let hw = Policy::measurements([clave_attest::TeeKind::SevSnp], [m(2)]).unwrap();
    v.code_key.spec.policy = hw.clone();
    assert!(v.insecure(), "the invoke keys still do");
    for k in &mut v.invoke_keys {
        k.spec.policy = hw.clone();
    }
    assert!(!v.insecure());
    v.kds_admission_policy = Some((Policy::insecure_dev([m(1)]).unwrap(), [0; 32]));
    assert!(
        v.insecure(),
        "its admission policy admits simulated replicas"
    );
}
