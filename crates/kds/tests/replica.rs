//! Replicas: mutual attestation, identical bundles, impostors refused in both directions.

mod common;

use clave_attest::{Error as AttestError, InsecureSimulatedAttester, Measurement, Policy};
use clave_kds::{Error, InsecureSimulatedSealer, Kds, KdsConfig, MASTER_SEALED_FILE, PendingJoin};
use clave_proto::kds_api::{LogEvent, Outcome};
use common::*;

fn join_with(
    existing: &Kds,
    dir: &std::path::Path,
    attester: InsecureSimulatedAttester,
    config: KdsConfig,
) -> Result<Kds, Error> {
    let m = {
        use clave_attest::Attester as _;
        attester.measurement()
    };
    Kds::join(
        existing,
        dir,
        Box::new(InsecureSimulatedSealer::new(m.as_bytes())),
        Box::new(attester),
        config,
        NOW,
        rng(),
    )
}

#[test]
fn replica_publishes_identical_bundles_and_releases_same_keys() {
    let a_dir = tempfile::tempdir().expect("tempdir");
    let b_dir = tempfile::tempdir().expect("tempdir");
    let a = open_kds(a_dir.path());
    let b = join_with(
        &a,
        b_dir.path(),
        kds_attester(kds_measurement()),
        dev_config(),
    )
    .expect("join");
    assert_eq!(a.identity_public_key(), b.identity_public_key());
    for now in [NOW, NOW + 86_400 * 3 + 17] {
        let ja = serde_json::to_vec(&a.keys(now).expect("keys")).expect("json");
        let jb = serde_json::to_vec(&b.keys(now).expect("keys")).expect("json");
        assert_eq!(ja, jb, "bundles must be byte-identical");
    }
    // B persisted the master sealed to itself: a restart of B keeps the identity.
    drop(b);
    let b = open_kds(b_dir.path());
    assert_eq!(a.identity_public_key(), b.identity_public_key());
    // Both release the same key for the same spec.
    let spec = dev_config().code_spec().to_bytes();
    let eph = Ephemeral::new(4);
    let ka = a
        .release(
            &release_request(&engine(), spec.clone(), &eph, a.new_nonce(NOW).nonce),
            NOW,
        )
        .expect("a releases");
    let kb = b
        .release(
            &release_request(&engine(), spec, &eph, b.new_nonce(NOW).nonce),
            NOW,
        )
        .expect("b releases");
    let open = |r: &clave_proto::kds_api::ReleaseResponse| {
        clave_proto::kds_api::open_from_kds(
            &eph.sk,
            clave_proto::kds_api::RELEASE_HPKE_INFO,
            &r.spec_id,
            &r.enc,
            &r.sealed_key,
        )
        .expect("open")
    };
    assert_eq!(open(&ka), open(&kb));
    // Logged on both sides.
    let la = a.release_log().expect("log");
    assert!(
        la.iter()
            .any(|e| e.event == LogEvent::ReplicaJoin && e.outcome == Outcome::Granted)
    );
    let lb = b.release_log().expect("log");
    assert!(lb.iter().any(|e| e.event == LogEvent::Joined));
    // The master never appears in either log.
    let master = peek_master(a_dir.path());
    for d in [a_dir.path(), b_dir.path()] {
        let bytes = std::fs::read(d.join(clave_kds::RELEASE_LOG_FILE)).expect("log");
        assert!(!bytes.windows(32).any(|w| w == master.as_slice()));
        assert!(
            !bytes
                .windows(64)
                .any(|w| w == hex::encode(master.as_slice()).as_bytes())
        );
    }
}

fn assert_impostor_refused(
    attester: InsecureSimulatedAttester,
    check: impl Fn(&AttestError) -> bool,
) {
    let a_dir = tempfile::tempdir().expect("tempdir");
    let b_dir = tempfile::tempdir().expect("tempdir");
    let a = open_kds(a_dir.path());
    let err = join_with(&a, b_dir.path(), attester, dev_config()).expect_err("impostor");
    match &err {
        Error::Attestation(e) => assert!(check(e), "unexpected: {e}"),
        other => panic!("unexpected error {other}"),
    }
    assert!(!b_dir.path().join(MASTER_SEALED_FILE).exists());
    let log = a.release_log().expect("log");
    let last = log.last().expect("entry");
    assert_eq!(last.event, LogEvent::ReplicaJoin);
    assert_eq!(last.outcome, Outcome::Refused);
}

#[test]
fn impostor_with_other_measurement_is_refused() {
    assert_impostor_refused(kds_attester(Measurement(vec![0x66; 32])), |e| {
        matches!(e, AttestError::MeasurementNotAllowed { .. })
    });
}

#[test]
fn impostor_in_debug_is_refused() {
    assert_impostor_refused(kds_attester(kds_measurement()).with_debug(true), |e| {
        matches!(e, AttestError::DebugEnabled)
    });
}

#[test]
fn joiner_refuses_an_existing_replica_of_another_measurement() {
    // The existing replica runs another measurement, and its admission policy admits the
    // joiner's: the joiner still refuses (its own rule is "same measurement", and the peer's
    // evidence binds an admission policy the joiner does not hold).
    let a_dir = tempfile::tempdir().expect("tempdir");
    let b_dir = tempfile::tempdir().expect("tempdir");
    let rogue = Measurement(vec![0x77; 32]);
    let rogue_cfg = KdsConfig {
        admission_policy: Some(Policy::insecure_dev([kds_measurement()]).expect("policy")),
        ..dev_config()
    };
    let a = open_kds_with(a_dir.path(), rogue_cfg, rogue).expect("open");
    let err = join_with(
        &a,
        b_dir.path(),
        kds_attester(kds_measurement()),
        dev_config(),
    )
    .expect_err("joiner must refuse");
    assert!(
        matches!(
            err,
            Error::PeerAttestation(
                AttestError::MeasurementNotAllowed { .. } | AttestError::UserDataMismatch
            )
        ),
        "{err}"
    );
    assert!(!b_dir.path().join(MASTER_SEALED_FILE).exists());
}

#[test]
fn joiner_refuses_a_relayed_or_tampered_response() {
    let a_dir = tempfile::tempdir().expect("tempdir");
    let c_dir = tempfile::tempdir().expect("tempdir");
    let a = open_kds(a_dir.path());
    let c = open_kds(c_dir.path()); // another genuine KDS with another master
    let new_pending = |dir: &std::path::Path| {
        PendingJoin::new(
            dir,
            Box::new(InsecureSimulatedSealer::new(kds_measurement().as_bytes())),
            Box::new(kds_attester(kds_measurement())),
            dev_config(),
            a.replica_nonce(NOW).nonce,
            rng(),
        )
        .expect("pending")
    };

    // A relay: C's genuine attestation for our nonce, with a master of the attacker's choosing
    // sealed correctly to us. Only the identity check catches it.
    let b_dir = tempfile::tempdir().expect("tempdir");
    let pending = new_pending(b_dir.path());
    let c_att = c.attestation(&pending.request().joiner_nonce).expect("att");
    let (enc, sealed_master) = clave_proto::kds_api::seal_to_ephemeral(
        &pending.request().ephemeral_public_key,
        clave_proto::kds_api::REPLICA_HPKE_INFO,
        &c_att.identity_public_key,
        &[0x42; 32],
        &mut rng(),
    )
    .expect("seal");
    let resp = clave_proto::kds_api::ReplicaJoinResponse {
        evidence: c_att.evidence,
        identity_public_key: c_att.identity_public_key,
        enc,
        sealed_master,
        master_secret_origin: Default::default(),
    };
    let err = Kds::join_from(pending, &resp, NOW).expect_err("mismatch");
    assert!(matches!(err, Error::PeerIdentityMismatch), "{err}");

    // A's answer with the identity swapped for C's: A's evidence does not bind C's key.
    let b_dir = tempfile::tempdir().expect("tempdir");
    let pending = new_pending(b_dir.path());
    let mut resp = a.admit_replica(pending.request(), NOW).expect("admitted");
    resp.identity_public_key = c.identity_public_key();
    let err = Kds::join_from(pending, &resp, NOW).expect_err("mismatch");
    assert!(
        matches!(err, Error::PeerAttestation(AttestError::UserDataMismatch)),
        "{err}"
    );

    // C's genuine evidence for our nonce with A's identity and master: does not bind A's key.
    let b_dir = tempfile::tempdir().expect("tempdir");
    let pending = new_pending(b_dir.path());
    let mut resp = a.admit_replica(pending.request(), NOW).expect("admitted");
    let c_att = c.attestation(&pending.request().joiner_nonce).expect("att");
    resp.evidence = c_att.evidence;
    let err = Kds::join_from(pending, &resp, NOW).expect_err("mismatch");
    assert!(
        matches!(err, Error::PeerAttestation(AttestError::UserDataMismatch)),
        "{err}"
    );

    // Evidence not bound to our nonce.
    let b_dir = tempfile::tempdir().expect("tempdir");
    let pending = new_pending(b_dir.path());
    let mut resp = a.admit_replica(pending.request(), NOW).expect("admitted");
    resp.evidence = a.attestation(b"another nonce").expect("att").evidence;
    let err = Kds::join_from(pending, &resp, NOW).expect_err("stale");
    assert!(
        matches!(err, Error::PeerAttestation(AttestError::UserDataMismatch)),
        "{err}"
    );

    // Tampered ciphertext.
    let b_dir = tempfile::tempdir().expect("tempdir");
    let pending = new_pending(b_dir.path());
    let mut resp = a.admit_replica(pending.request(), NOW).expect("admitted");
    resp.sealed_master[0] ^= 1;
    let err = Kds::join_from(pending, &resp, NOW).expect_err("tampered");
    assert!(matches!(err, Error::MalformedJoinResponse), "{err}");
    assert!(!b_dir.path().join(MASTER_SEALED_FILE).exists());
}

#[test]
fn join_nonce_is_single_use_and_separate_from_release_nonces() {
    let a_dir = tempfile::tempdir().expect("tempdir");
    let a = open_kds(a_dir.path());
    let b_dir = tempfile::tempdir().expect("tempdir");
    let pending = PendingJoin::new(
        b_dir.path(),
        Box::new(InsecureSimulatedSealer::new(kds_measurement().as_bytes())),
        Box::new(kds_attester(kds_measurement())),
        dev_config(),
        a.replica_nonce(NOW).nonce,
        rng(),
    )
    .expect("pending");
    a.admit_replica(pending.request(), NOW).expect("first");
    assert!(matches!(
        a.admit_replica(pending.request(), NOW),
        Err(Error::NonceReused)
    ));
    // A release nonce is not a replica nonce.
    let pending = PendingJoin::new(
        b_dir.path(),
        Box::new(InsecureSimulatedSealer::new(kds_measurement().as_bytes())),
        Box::new(kds_attester(kds_measurement())),
        dev_config(),
        a.new_nonce(NOW).nonce,
        rng(),
    )
    .expect("pending");
    assert!(matches!(
        a.admit_replica(pending.request(), NOW),
        Err(Error::NonceUnknown)
    ));
}

#[test]
fn join_refuses_an_initialised_directory() {
    let a_dir = tempfile::tempdir().expect("tempdir");
    let a = open_kds(a_dir.path());
    let b_dir = tempfile::tempdir().expect("tempdir");
    let b = open_kds(b_dir.path());
    let before = std::fs::read(b_dir.path().join(MASTER_SEALED_FILE)).expect("sealed");
    drop(b);
    let err = join_with(
        &a,
        b_dir.path(),
        kds_attester(kds_measurement()),
        dev_config(),
    )
    .expect_err("refused");
    assert!(matches!(err, Error::AlreadyInitialised(_)), "{err}");
    assert_eq!(
        std::fs::read(b_dir.path().join(MASTER_SEALED_FILE)).expect("sealed"),
        before
    );
}

/// Behind one service name an engine may get its nonce from one replica and send the release to
/// another: replicas sharing the master accept each other's nonces, once each per replica.
#[test]
fn replicas_accept_each_others_nonces() {
    let a_dir = tempfile::tempdir().expect("tempdir");
    let b_dir = tempfile::tempdir().expect("tempdir");
    let a = open_kds(a_dir.path());
    let b = join_with(
        &a,
        b_dir.path(),
        kds_attester(kds_measurement()),
        dev_config(),
    )
    .expect("join");
    let spec = dev_config().code_spec().to_bytes();
    let eph = Ephemeral::new(5);
    let nonce = a.new_nonce(NOW).nonce;
    b.release(&release_request(&engine(), spec.clone(), &eph, nonce), NOW)
        .expect("b accepts a's nonce");
    assert!(matches!(
        b.release(&release_request(&engine(), spec.clone(), &eph, nonce), NOW),
        Err(Error::NonceReused)
    ));
    // A KDS with another master does not.
    let c_dir = tempfile::tempdir().expect("tempdir");
    let c = open_kds(c_dir.path());
    assert!(matches!(
        c.release(
            &release_request(&engine(), spec, &eph, a.new_nonce(NOW).nonce),
            NOW
        ),
        Err(Error::NonceUnknown)
    ));
}
