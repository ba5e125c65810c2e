//! Boundary tests: the simulated TEE through the public API (`verify` with policies).

use std::collections::BTreeMap;
use std::sync::Arc;

use clave_attest::simulated::{SIGNING_DOMAIN, insecure_root_key};
use clave_attest::verify::{MAX_CLOCK_SKEW_SECS, check_insecure};
use clave_attest::{
    Attester, Error, Evidence, Identity, InsecureSimulatedAttester, InsecureSimulatedReport,
    InsecureSimulatedVerifier, Measurement, Policy, PolicyError, ReportData, SignerId,
    SignerPolicy, Tcb, TeeKind, Verifier, verify,
};
use ed25519_dalek::{Signer as _, SigningKey};

const NOW: u64 = 1_800_000_000;

fn measurement() -> Measurement {
    Measurement::of_binary(b"the engine binary")
}

fn nonce() -> ReportData {
    ReportData::hash_of(b"clave/test", &[b"ephemeral pk", b"nonce"])
}

fn attester() -> InsecureSimulatedAttester {
    InsecureSimulatedAttester::new(measurement())
        .expect("valid measurement")
        .with_tcb(Tcb(vec![1, 2, 3, 4]))
        .expect("valid tcb")
        .with_clock(Arc::new(|| NOW))
}

fn dev_policy() -> Policy {
    Policy::insecure_dev([measurement()]).expect("valid policy")
}

fn report_bytes(ev: &Evidence) -> Vec<u8> {
    match ev {
        Evidence::Simulated { report } => report.clone(),
        other => panic!("not simulated: {other:?}"),
    }
}

fn sign_raw(body: &[u8]) -> Evidence {
    let mut msg = SIGNING_DOMAIN.to_vec();
    msg.extend_from_slice(body);
    let sig = insecure_root_key().sign(&msg);
    let mut report = body.to_vec();
    report.extend_from_slice(&sig.to_bytes());
    Evidence::Simulated { report }
}

#[test]
fn valid_evidence_is_accepted_and_marked_insecure() {
    let ev = attester().attest(&nonce()).expect("attest");
    let ev = Evidence::from_bytes(&ev.to_bytes()).expect("wire round trip");
    let claims = verify(&ev, &dev_policy(), &nonce(), NOW).expect("accepted");
    assert!(claims.insecure);
    assert_eq!(claims.kind, TeeKind::InsecureSimulated);
    assert_eq!(claims.measurement, measurement());
    assert_eq!(claims.tcb, Tcb(vec![1, 2, 3, 4]));
    assert!(!claims.debug);
    assert_eq!(claims.report_data, nonce());
    assert_eq!(claims.issued_at, Some(NOW));
    assert_eq!(attester().measurement(), measurement());
    assert_eq!(attester().kind(), TeeKind::InsecureSimulated);
    // Also through the JSON form.
    let json = serde_json::to_string(&ev).expect("json");
    let back: Evidence = serde_json::from_str(&json).expect("json back");
    assert!(verify(&back, &dev_policy(), &nonce(), NOW).is_ok());
}

#[test]
fn encoding_is_deterministic() {
    let a = attester().attest(&nonce()).expect("attest");
    let b = attester().attest(&nonce()).expect("attest");
    assert_eq!(a, b);
}

#[test]
fn wrong_user_data_is_refused() {
    let ev = attester().attest(&nonce()).expect("attest");
    let other = ReportData::hash_of(b"clave/test", &[b"ephemeral pk", b"other nonce"]);
    assert!(matches!(
        verify(&ev, &dev_policy(), &other, NOW),
        Err(Error::UserDataMismatch)
    ));
}

#[test]
fn debug_is_refused() {
    let ev = attester()
        .with_debug(true)
        .attest(&nonce())
        .expect("attest");
    let err = verify(&ev, &dev_policy(), &nonce(), NOW).expect_err("debug refused");
    assert!(matches!(err, Error::DebugEnabled));
    assert!(err.is_policy_refusal());
}

#[test]
fn measurement_not_in_set_is_refused() {
    let ev = InsecureSimulatedAttester::new(Measurement::of_binary(b"another binary"))
        .expect("attester")
        .attest(&nonce())
        .expect("attest");
    match verify(&ev, &dev_policy(), &nonce(), NOW) {
        Err(Error::MeasurementNotAllowed { measurement: m }) => {
            assert_eq!(m, Measurement::of_binary(b"another binary"));
        }
        other => panic!("expected MeasurementNotAllowed, got {other:?}"),
    }
}

#[test]
fn tcb_below_floor_is_refused() {
    let mut policy = dev_policy();
    policy
        .min_tcb
        .insert(TeeKind::InsecureSimulated, Tcb(vec![1, 2, 4, 0]));
    let ev = attester().attest(&nonce()).expect("attest");
    match verify(&ev, &policy, &nonce(), NOW) {
        Err(Error::TcbTooLow { tcb, min }) => {
            assert_eq!(tcb, Tcb(vec![1, 2, 3, 4]));
            assert_eq!(min, Tcb(vec![1, 2, 4, 0]));
        }
        other => panic!("expected TcbTooLow, got {other:?}"),
    }
    // A floor with another component count is incomparable: refused.
    policy
        .min_tcb
        .insert(TeeKind::InsecureSimulated, Tcb(vec![0, 0, 0]));
    assert!(matches!(
        verify(&ev, &policy, &nonce(), NOW),
        Err(Error::TcbTooLow { .. })
    ));
    // Exactly at the floor: accepted.
    policy
        .min_tcb
        .insert(TeeKind::InsecureSimulated, Tcb(vec![1, 2, 3, 4]));
    assert!(verify(&ev, &policy, &nonce(), NOW).is_ok());
}

#[test]
fn signed_by_another_root_is_refused() {
    let other_key = SigningKey::from_bytes(&[7u8; 32]);
    let ev = attester()
        .with_signing_key(other_key.clone())
        .attest(&nonce())
        .expect("attest");
    assert!(matches!(
        verify(&ev, &dev_policy(), &nonce(), NOW),
        Err(Error::BadSignature(TeeKind::InsecureSimulated))
    ));
    // A verifier that trusts that other root accepts the signature.
    let claims = InsecureSimulatedVerifier::with_root(other_key.verifying_key())
        .verify_evidence(&ev)
        .expect("other root verifies");
    assert!(claims.insecure);
    // And the default verifier does not.
    assert!(matches!(
        InsecureSimulatedVerifier::new().verify_evidence(&ev),
        Err(Error::BadSignature(TeeKind::InsecureSimulated))
    ));
    // With the other root, the full policy still applies.
    let v = InsecureSimulatedVerifier::with_root(other_key.verifying_key());
    assert!(clave_attest::verify_with(&v, &ev, &dev_policy(), &nonce(), NOW).is_ok());
    assert!(matches!(
        clave_attest::verify_with(&v, &ev, &dev_policy(), &ReportData::ZERO, NOW),
        Err(Error::UserDataMismatch)
    ));
    assert!(matches!(
        clave_attest::verify_with(
            &v,
            &Evidence::Tdx { quote: vec![] },
            &dev_policy(),
            &nonce(),
            NOW
        ),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn truncated_at_every_length_is_an_error() {
    let ev = attester().attest(&nonce()).expect("attest");
    let report = report_bytes(&ev);
    for len in 0..report.len() {
        let cut = Evidence::Simulated {
            report: report[..len].to_vec(),
        };
        let err = verify(&cut, &dev_policy(), &nonce(), NOW).expect_err("truncated");
        assert!(
            matches!(err, Error::Truncated { .. } | Error::BadSignature(_)),
            "len {len}: {err:?}"
        );
    }
    let wire = ev.to_bytes();
    for len in 0..wire.len() {
        let r = Evidence::from_bytes(&wire[..len]);
        assert!(
            matches!(
                r,
                Err(Error::Truncated {
                    what: "evidence envelope" | "evidence body"
                })
            ),
            "len {len}: {r:?}"
        );
    }
}

#[test]
fn every_byte_flipped_is_an_error() {
    let ev = attester().attest(&nonce()).expect("attest");
    let report = report_bytes(&ev);
    for i in 0..report.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut bad = report.clone();
            bad[i] ^= mask;
            let err = verify(
                &Evidence::Simulated { report: bad },
                &dev_policy(),
                &nonce(),
                NOW,
            )
            .expect_err("flipped byte must be refused");
            assert!(
                matches!(err, Error::BadSignature(TeeKind::InsecureSimulated)),
                "byte {i} mask {mask:#x}: {err:?}"
            );
        }
    }
    // Appending to a good report breaks the signature too.
    let mut long = report.clone();
    long.push(0);
    assert!(matches!(
        verify(
            &Evidence::Simulated { report: long },
            &dev_policy(),
            &nonce(),
            NOW
        ),
        Err(Error::BadSignature(TeeKind::InsecureSimulated))
    ));
}

#[test]
fn insecure_kind_refused_by_policies_that_do_not_allow_it() {
    let ev = attester().attest(&nonce()).expect("attest");
    // A real-hardware policy that happens to list the same measurement.
    let snp =
        Policy::measurements([TeeKind::SevSnp, TeeKind::Tdx], [measurement()]).expect("valid");
    assert!(matches!(
        verify(&ev, &snp, &nonce(), NOW),
        Err(Error::KindNotAccepted(TeeKind::InsecureSimulated))
    ));
    // A hand-built policy listing the kind without the switch is invalid and accepts nothing.
    let mut sneaky = dev_policy();
    sneaky.allow_insecure_simulated = false;
    assert!(matches!(
        verify(&ev, &sneaky, &nonce(), NOW),
        Err(Error::InvalidPolicy(PolicyError::InsecureKindNotAllowed))
    ));
    // The switch without the kind is invalid too.
    let mut odd = snp.clone();
    odd.allow_insecure_simulated = true;
    assert!(matches!(
        verify(&ev, &odd, &nonce(), NOW),
        Err(Error::InvalidPolicy(
            PolicyError::InsecureAllowedButNotListed
        ))
    ));
    // The check on its own, independent of validation.
    let claims = clave_attest::verify_evidence(&ev).expect("signature is good");
    assert!(matches!(
        check_insecure(&claims, &sneaky),
        Err(Error::InsecureNotAllowed)
    ));
    // A claims value marked insecure is refused even under another kind.
    let mut relabelled = claims.clone();
    relabelled.kind = TeeKind::SevSnp;
    assert!(matches!(
        check_insecure(&relabelled, &snp),
        Err(Error::InsecureNotAllowed)
    ));
}

#[test]
fn signer_identity_and_svn() {
    let signer = SignerId(vec![0x5a; 32]);
    // Only a hand-built (or parsed) policy can pin a simulated signer: the constructors refuse
    // the insecure kind except through `insecure_dev`.
    let policy = Policy {
        accepted_kinds: vec![TeeKind::InsecureSimulated],
        identity: Identity::Signer(SignerPolicy {
            id: signer.clone(),
            product_id: Some(9),
            min_svn: 4,
        }),
        min_tcb: BTreeMap::new(),
        allow_insecure_simulated: true,
        max_evidence_age_secs: None,
        registers: BTreeMap::new(),
        snp: Default::default(),
        dcap: Default::default(),
    };
    policy.validate().expect("valid");
    let make = |s: SignerId, product: u16, svn: u32| {
        InsecureSimulatedAttester::new(measurement())
            .expect("attester")
            .with_signer(s, product, svn)
            .expect("signer")
            .attest(&nonce())
            .expect("attest")
    };
    // Any measurement, right signer, high enough SVN.
    let ok = verify(&make(signer.clone(), 9, 4), &policy, &nonce(), NOW).expect("accepted");
    assert_eq!(ok.signer, Some(signer.clone()));
    assert!(verify(&make(signer.clone(), 9, 10), &policy, &nonce(), NOW).is_ok());
    assert!(matches!(
        verify(&make(signer.clone(), 9, 3), &policy, &nonce(), NOW),
        Err(Error::SvnTooLow { svn: 3, min: 4 })
    ));
    assert!(matches!(
        verify(&make(signer.clone(), 8, 5), &policy, &nonce(), NOW),
        Err(Error::SignerNotAllowed {
            product_id: Some(8),
            ..
        })
    ));
    assert!(matches!(
        verify(
            &make(SignerId(vec![0x5b; 32]), 9, 5),
            &policy,
            &nonce(),
            NOW
        ),
        Err(Error::SignerNotAllowed { .. })
    ));
    // No signer at all.
    let ev = attester().attest(&nonce()).expect("attest");
    assert!(matches!(
        verify(&ev, &policy, &nonce(), NOW),
        Err(Error::SignerNotAllowed { signer: None, .. })
    ));
}

#[test]
fn evidence_age() {
    let mut policy = dev_policy();
    policy.max_evidence_age_secs = Some(300);
    let at = |t: u64| attester().attest_at(&nonce(), Some(t)).expect("attest");
    assert!(verify(&at(NOW), &policy, &nonce(), NOW).is_ok());
    assert!(verify(&at(NOW - 300), &policy, &nonce(), NOW).is_ok());
    assert!(matches!(
        verify(&at(NOW - 301), &policy, &nonce(), NOW),
        Err(Error::Expired {
            max_age_secs: 300,
            ..
        })
    ));
    assert!(verify(&at(NOW + MAX_CLOCK_SKEW_SECS), &policy, &nonce(), NOW).is_ok());
    assert!(matches!(
        verify(&at(NOW + MAX_CLOCK_SKEW_SECS + 1), &policy, &nonce(), NOW),
        Err(Error::IssuedInFuture { .. })
    ));
    // No timestamp although the format has one, under an age limit.
    let none = attester().attest_at(&nonce(), None).expect("attest");
    assert!(matches!(
        verify(&none, &policy, &nonce(), NOW),
        Err(Error::MissingTimestamp)
    ));
    // Without an age limit, no timestamp is fine (freshness from the nonce), but the future is not.
    assert!(verify(&none, &dev_policy(), &nonce(), NOW).is_ok());
    assert!(matches!(
        verify(&at(u64::MAX), &dev_policy(), &nonce(), NOW),
        Err(Error::IssuedInFuture { .. })
    ));
}

#[test]
fn signed_but_non_canonical_reports_are_malformed() {
    // Anyone can sign with the insecure root, so the parser must be strict on its own.
    let good = report_bytes(&attester().attest(&nonce()).expect("attest"));
    let body = &good[..good.len() - 64];

    let mut b = body.to_vec();
    b[1] = 2; // version 2
    assert!(matches!(
        verify(&sign_raw(&b), &dev_policy(), &nonce(), NOW),
        Err(Error::UnsupportedVersion { version: 2, .. })
    ));
    let mut b = body.to_vec();
    b[2] |= 0x04; // unknown flag
    assert!(matches!(
        verify(&sign_raw(&b), &dev_policy(), &nonce(), NOW),
        Err(Error::Malformed { .. })
    ));
    let mut b = body.to_vec();
    b[2] &= !0x02; // timestamp without its flag
    assert!(matches!(
        verify(&sign_raw(&b), &dev_policy(), &nonce(), NOW),
        Err(Error::Malformed { .. })
    ));
    let mut b = body.to_vec();
    b.push(0); // trailing byte inside the signed region
    assert!(matches!(
        verify(&sign_raw(&b), &dev_policy(), &nonce(), NOW),
        Err(Error::TrailingBytes { .. })
    ));
    let mut b = body.to_vec();
    b[3] = 0; // zero-length measurement
    assert!(matches!(
        verify(&sign_raw(&b), &dev_policy(), &nonce(), NOW),
        Err(Error::Malformed {
            reason: "measurement length not in 1..=64",
            ..
        })
    ));
    let mut b = body.to_vec();
    b[3] = 65; // measurement too long
    assert!(matches!(
        verify(&sign_raw(&b), &dev_policy(), &nonce(), NOW),
        Err(Error::Malformed { .. })
    ));
    for len in 0..body.len() {
        let err = verify(&sign_raw(&body[..len]), &dev_policy(), &nonce(), NOW)
            .expect_err("truncated body");
        assert!(
            matches!(
                err,
                Error::Truncated { .. }
                    | Error::Malformed { .. }
                    | Error::UnsupportedVersion { .. }
            ),
            "len {len}: {err:?}"
        );
    }
    // The untouched body re-signed is of course fine.
    assert!(verify(&sign_raw(body), &dev_policy(), &nonce(), NOW).is_ok());
}

#[test]
fn report_round_trips_through_sign_and_verify() {
    let report = InsecureSimulatedReport {
        measurement: Measurement(vec![1; 64]),
        signer: Some(SignerId(vec![2; 64])),
        product_id: u16::MAX,
        svn: u32::MAX,
        tcb: Tcb(vec![u16::MAX; 16]),
        debug: true,
        report_data: ReportData([3; 64]),
        timestamp: Some(u64::MAX),
    };
    let bytes = report.sign(&insecure_root_key()).expect("sign");
    let back = InsecureSimulatedReport::verify(&bytes, &insecure_root_key().verifying_key())
        .expect("verify");
    assert_eq!(back, report);
    let too_many = InsecureSimulatedReport {
        tcb: Tcb(vec![0; 17]),
        ..report
    };
    assert!(matches!(
        too_many.sign(&insecure_root_key()),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn attester_rejects_bad_configuration() {
    let bad_measurement = "simulated measurement must be 1 to 64 bytes";
    assert!(matches!(
        InsecureSimulatedAttester::new(Measurement(vec![])),
        Err(Error::InvalidArgument(m)) if m == bad_measurement
    ));
    assert!(matches!(
        InsecureSimulatedAttester::new(Measurement(vec![0; 65])),
        Err(Error::InvalidArgument(m)) if m == bad_measurement
    ));
    let a = InsecureSimulatedAttester::new(measurement()).expect("attester");
    assert!(matches!(
        a.clone().with_signer(SignerId(vec![]), 0, 0),
        Err(Error::InvalidArgument(
            "simulated signer must be 1 to 64 bytes"
        ))
    ));
    assert!(matches!(
        a.with_tcb(Tcb(vec![0; 17])),
        Err(Error::InvalidArgument(
            "simulated TCB has more than 16 components"
        ))
    ));
}

#[test]
fn real_kinds_are_unsupported_not_accepted() {
    let policy = Policy::measurements(
        [
            TeeKind::SevSnp,
            TeeKind::Tdx,
            TeeKind::SgxDcap,
            TeeKind::Nitro,
        ],
        [measurement()],
    )
    .expect("valid");
    // Structurally valid but unsigned reports without endorsements: refused with a missing
    // endorsement (never accepted); verify_evidence (no time) calls them unsupported.
    let mut snp = vec![0u8; 0x4A0];
    snp[0] = 2; // version 2
    snp[0x34] = 1; // ECDSA P-384
    let mut sgx = vec![0u8; 48 + 384];
    sgx[0] = 3; // version 3
    sgx[2] = 2; // ECDSA P-256
    for ev in [
        Evidence::SevSnp {
            report: snp,
            certs: None,
        },
        Evidence::SgxDcap { quote: sgx },
    ] {
        let kind = ev.kind();
        assert!(matches!(
            verify(&ev, &policy, &nonce(), NOW),
            Err(Error::MissingEndorsement { kind: k, .. }) if k == kind
        ));
        assert!(matches!(
            clave_attest::verify_evidence(&ev),
            Err(Error::Unsupported(k)) if k == kind
        ));
    }
    // Malformed input is reported as such before anything else.
    for ev in [
        Evidence::SevSnp {
            report: vec![0; 8],
            certs: None,
        },
        Evidence::Tdx { quote: vec![0; 8] },
        Evidence::SgxDcap { quote: vec![0; 8] },
    ] {
        assert!(matches!(
            verify(&ev, &policy, &nonce(), NOW),
            Err(Error::Truncated { .. })
        ));
    }
    let r = verify(
        &Evidence::Nitro {
            document: vec![0; 8],
        },
        &policy,
        &nonce(),
        NOW,
    );
    assert!(
        matches!(
            r,
            Err(Error::TrailingBytes {
                what: "CBOR",
                count: 7
            })
        ),
        "{r:?}"
    );
}

#[test]
fn debug_output_has_no_key_material() {
    let a = attester();
    let text = format!("{a:?}");
    assert!(!text.contains(&hex::encode(insecure_root_key().to_bytes())));
    assert!(!text.contains("key"));
}
