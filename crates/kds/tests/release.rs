//! Key release: granted for a matching engine, refused with a typed reason otherwise, and
//! every case in the release log without any secret.

mod common;

use clave_attest::{Attester as _, Error as AttestError, Policy, Tcb, TeeKind};
use clave_kds::{Error, Kds, KdsConfig};
use clave_proto::kds_api::{self, LogEvent, Outcome, RELEASE_HPKE_INFO, ReleaseResponse};
use clave_proto::ohttp::{Kem, PrivateKey};
use clave_proto::{KeyBundle, KeyPurpose, KeySpec};
use common::*;

fn open_released(eph: &Ephemeral, resp: &ReleaseResponse) -> zeroize::Zeroizing<Vec<u8>> {
    kds_api::open_from_kds(
        &eph.sk,
        RELEASE_HPKE_INFO,
        &resp.spec_id,
        &resp.enc,
        &resp.sealed_key,
    )
    .expect("released key opens")
}

/// The bundle of `spec` published by `kds` at `now`.
fn bundle_for(kds: &Kds, spec: &KeySpec, now: u64) -> KeyBundle {
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&kds.identity_public_key()).expect("vk");
    kds.bundles(now)
        .expect("bundles")
        .iter()
        .map(|s| KeyBundle::verify(s, &vk, now).expect("bundle verifies"))
        .find(|b| &b.spec == spec)
        .expect("spec is published")
}

#[test]
fn granted_for_matching_engine_and_key_matches_bundle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kds = open_kds(dir.path());
    let cfg = dev_config();
    for spec in [cfg.code_spec(), cfg.invoke_spec(cfg.epoch_at(NOW))] {
        let eph = Ephemeral::new(7);
        let nonce = kds.new_nonce(NOW).nonce;
        let req = release_request(&engine(), spec.to_bytes(), &eph, nonce);
        let resp = kds.release(&req, NOW).expect("granted");
        assert_eq!(resp.spec_id, *spec.id().as_bytes());
        let sk = open_released(&eph, &resp);
        let private = PrivateKey::from_bytes(Kem::X25519HkdfSha256, &sk).expect("x25519 key");
        let bundle = bundle_for(&kds, &spec, NOW);
        assert_eq!(private.public_key(), bundle.key_config.public_key());
        // Wrong AAD (another spec id) does not open.
        assert!(matches!(
            kds_api::open_from_kds(
                &eph.sk,
                RELEASE_HPKE_INFO,
                &[0; 32],
                &resp.enc,
                &resp.sealed_key
            ),
            Err(kds_api::WireError::Open)
        ));
    }
}

#[test]
fn grace_window_and_next_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kds = open_kds(dir.path());
    let cfg = dev_config();
    let e = cfg.epoch_at(NOW);
    let try_epoch = |epoch: u64| {
        let eph = Ephemeral::new(3);
        let nonce = kds.new_nonce(NOW).nonce;
        let req = release_request(&engine(), cfg.invoke_spec(epoch).to_bytes(), &eph, nonce);
        kds.release(&req, NOW)
    };
    assert!(try_epoch(e - 1).is_ok(), "previous epoch within grace");
    assert!(try_epoch(e + 1).is_ok(), "next epoch is pre-released");
    assert!(matches!(try_epoch(e - 2), Err(Error::UnknownSpec)));
    assert!(matches!(try_epoch(e + 2), Err(Error::UnknownSpec)));
}

fn refused(kds: &Kds, req: &clave_proto::kds_api::ReleaseRequest, now: u64) -> Error {
    kds.release(req, now).expect_err("must be refused")
}

#[test]
fn refusals_are_typed_and_logged_without_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Code key requires TCB >= [5] so that a low-TCB engine can be refused.
    let mut cfg = dev_config();
    cfg.code_policy
        .min_tcb
        .insert(TeeKind::InsecureSimulated, Tcb(vec![5]));
    let cfg = KdsConfig {
        code_policy: cfg.code_policy.normalized().expect("policy"),
        ..cfg
    };
    let kds = open_kds_with(dir.path(), cfg.clone(), kds_measurement()).expect("open");
    let good = engine().with_tcb(Tcb(vec![5])).expect("tcb");
    let spec = cfg.code_spec().to_bytes();
    let mut released = Vec::new();

    // Granted.
    let eph = Ephemeral::new(1);
    let n = kds.new_nonce(NOW).nonce;
    let resp = kds
        .release(&release_request(&good, spec.clone(), &eph, n), NOW)
        .expect("granted");
    released.push(open_released(&eph, &resp));

    // Wrong measurement.
    let other = kds_attester(clave_attest::Measurement(vec![0xBB; 32]))
        .with_tcb(Tcb(vec![5]))
        .expect("tcb");
    let n = kds.new_nonce(NOW).nonce;
    let e = refused(&kds, &release_request(&other, spec.clone(), &eph, n), NOW);
    assert!(
        matches!(
            e,
            Error::Attestation(AttestError::MeasurementNotAllowed { .. })
        ),
        "{e}"
    );

    // Debug.
    let debug = good.clone().with_debug(true);
    let n = kds.new_nonce(NOW).nonce;
    let e = refused(&kds, &release_request(&debug, spec.clone(), &eph, n), NOW);
    assert!(
        matches!(e, Error::Attestation(AttestError::DebugEnabled)),
        "{e}"
    );

    // TCB too low.
    let low = engine().with_tcb(Tcb(vec![4])).expect("tcb");
    let n = kds.new_nonce(NOW).nonce;
    let e = refused(&kds, &release_request(&low, spec.clone(), &eph, n), NOW);
    assert!(
        matches!(e, Error::Attestation(AttestError::TcbTooLow { .. })),
        "{e}"
    );

    // Stale nonce.
    let n = kds.new_nonce(NOW).nonce;
    let e = refused(
        &kds,
        &release_request(&good, spec.clone(), &eph, n),
        NOW + KdsConfig::DEFAULT_NONCE_TTL_SECONDS + 1,
    );
    assert!(matches!(e, Error::NonceExpired), "{e}");

    // Reused nonce (after a grant).
    let n = kds.new_nonce(NOW).nonce;
    let req = release_request(&good, spec.clone(), &eph, n);
    released.push(open_released(
        &eph,
        &kds.release(&req, NOW).expect("granted"),
    ));
    let e = refused(&kds, &req, NOW);
    assert!(matches!(e, Error::NonceReused), "{e}");

    // Reused nonce (consumed by a refused request).
    let n = kds.new_nonce(NOW).nonce;
    let _ = refused(&kds, &release_request(&debug, spec.clone(), &eph, n), NOW);
    let e = refused(&kds, &release_request(&good, spec.clone(), &eph, n), NOW);
    assert!(matches!(e, Error::NonceReused), "{e}");

    // Nonce from another KDS.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let other_kds = open_kds(dir2.path());
    let n = other_kds.new_nonce(NOW).nonce;
    let e = refused(&kds, &release_request(&good, spec.clone(), &eph, n), NOW);
    assert!(matches!(e, Error::NonceUnknown), "{e}");

    // Evidence not binding the ephemeral key (bound to another key, sent with ours).
    let n = kds.new_nonce(NOW).nonce;
    let mut req = release_request(&good, spec.clone(), &Ephemeral::new(99), n);
    req.ephemeral_public_key = eph.pk;
    let e = refused(&kds, &req, NOW);
    assert!(
        matches!(e, Error::Attestation(AttestError::UserDataMismatch)),
        "{e}"
    );

    // Evidence binding the key but another nonce.
    let n = kds.new_nonce(NOW).nonce;
    let mut req = release_request(&good, spec.clone(), &eph, [0x55; 32]);
    req.nonce = n;
    let e = refused(&kds, &req, NOW);
    assert!(
        matches!(e, Error::Attestation(AttestError::UserDataMismatch)),
        "{e}"
    );

    // A spec the KDS does not serve (other policy), and a malformed one.
    let foreign = KeySpec::new(
        KeyPurpose::Code,
        Policy::insecure_dev([clave_attest::Measurement(vec![0xBB; 32])]).expect("policy"),
        0,
    );
    let n = kds.new_nonce(NOW).nonce;
    let e = refused(
        &kds,
        &release_request(&good, foreign.to_bytes(), &eph, n),
        NOW,
    );
    assert!(matches!(e, Error::UnknownSpec), "{e}");
    let n = kds.new_nonce(NOW).nonce;
    let e = refused(
        &kds,
        &release_request(&good, b"{\"nope\":1}".to_vec(), &eph, n),
        NOW,
    );
    assert!(matches!(e, Error::MalformedSpec), "{e}");

    // Malformed evidence.
    let n = kds.new_nonce(NOW).nonce;
    let mut req = release_request(&good, spec.clone(), &eph, n);
    req.evidence.truncate(10);
    let e = refused(&kds, &req, NOW);
    assert!(matches!(e, Error::MalformedEvidence(_)), "{e}");

    // The log has the genesis, every case in order, with typed reasons.
    let log = kds.release_log().expect("log");
    let reasons: Vec<(Outcome, Option<&str>)> = log
        .iter()
        .filter(|e| e.event == LogEvent::KeyRelease)
        .map(|e| (e.outcome, e.reason.as_deref()))
        .collect();
    use Outcome::{Granted as G, Refused as R};
    assert_eq!(
        reasons,
        vec![
            (G, None),
            (R, Some("attestation-measurement-not-allowed")),
            (R, Some("attestation-debug-enabled")),
            (R, Some("attestation-tcb-too-low")),
            (R, Some("nonce-expired")),
            (G, None),
            (R, Some("nonce-reused")),
            (R, Some("attestation-debug-enabled")),
            (R, Some("nonce-reused")),
            (R, Some("nonce-unknown")),
            (R, Some("attestation-report-data-mismatch")),
            (R, Some("attestation-report-data-mismatch")),
            (R, Some("unknown-spec")),
            (R, Some("malformed-spec")),
            (R, Some("malformed-evidence")),
        ]
    );
    assert_eq!(log[0].event, LogEvent::Genesis);
    let grant = log
        .iter()
        .find(|e| e.outcome == Outcome::Granted && e.event == LogEvent::KeyRelease)
        .expect("grant");
    assert_eq!(
        grant.spec_id.as_deref(),
        Some(cfg.code_spec().id().to_hex().as_str())
    );
    assert_eq!(grant.tee_kind.as_deref(), Some("insecure_simulated"));
    assert_eq!(
        grant.measurement.as_deref(),
        Some(engine_measurement().to_hex().as_str())
    );
    // The wrong-measurement refusal records the (genuinely signed) measurement that asked.
    assert_eq!(
        log[2].measurement.as_deref(),
        Some("bb".repeat(32).as_str())
    );

    // No secret in the log's bytes: neither released key nor master, raw, hex or base64url.
    let bytes = std::fs::read(dir.path().join(clave_kds::RELEASE_LOG_FILE)).expect("log file");
    let master = peek_master(dir.path());
    let mut secrets: Vec<&[u8]> = released.iter().map(|k| k.as_slice()).collect();
    secrets.push(master.as_slice());
    for secret in secrets {
        assert_eq!(secret.len(), 32);
        for needle in [
            secret.to_vec(),
            hex::encode(secret).into_bytes(),
            kds_api::b64::encode(secret).into_bytes(),
            secret[..8].to_vec(),
            hex::encode(&secret[..8]).into_bytes(),
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                "secret material found in the release log"
            );
        }
    }
}

#[test]
fn simulated_refused_when_policy_does_not_allow_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snp_only =
        Policy::measurements([TeeKind::SevSnp], [engine_measurement()]).expect("snp policy");
    let cfg = KdsConfig {
        code_policy: snp_only.clone(),
        invoke_policy: snp_only,
        ..dev_config()
    };
    let kds = open_kds_with(dir.path(), cfg.clone(), kds_measurement()).expect("open");
    let eph = Ephemeral::new(1);
    let n = kds.new_nonce(NOW).nonce;
    let e = refused(
        &kds,
        &release_request(&engine(), cfg.code_spec().to_bytes(), &eph, n),
        NOW,
    );
    assert!(
        matches!(
            e,
            Error::Attestation(AttestError::KindNotAccepted(_) | AttestError::InsecureNotAllowed)
        ),
        "{e}"
    );
}

#[test]
fn attestation_binds_identity_and_nonce() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kds = open_kds(dir.path());
    let att = kds.attestation(b"caller nonce").expect("attestation");
    assert_eq!(att.identity_public_key, kds.identity_public_key());
    let ev = clave_attest::Evidence::from_bytes(&att.evidence).expect("evidence");
    let expected = kds_api::kds_attestation_report_data(&att.identity_public_key, b"caller nonce");
    let claims = clave_attest::verify(&ev, &kds_policy(), &expected, NOW).expect("verifies");
    assert_eq!(claims.measurement, kds_measurement());
    assert!(matches!(kds.attestation(b""), Err(Error::BadCallerNonce)));
    assert!(matches!(
        kds.attestation(&[0; 65]),
        Err(Error::BadCallerNonce)
    ));
    // A different nonce does not verify.
    let other = kds_api::kds_attestation_report_data(&att.identity_public_key, b"other");
    assert!(matches!(
        clave_attest::verify(&ev, &kds_policy(), &other, NOW),
        Err(clave_attest::Error::UserDataMismatch)
    ));
    let _ = engine().kind();
}
