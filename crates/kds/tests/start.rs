//! KDSes without a sealing key (TDX, Nitro): a memory-only cluster (first replica by explicit
//! genesis, the others by joining), and an external key source that every attestation admits to
//! and that a joining replica inherits. The decision of which mode applies is unit-tested in
//! `src/start.rs` (`plan_start`).

mod common;

use clave_attest::{Evidence, verify};
use clave_kds::{
    CLOCK_SEALED_FILE, Error, ExternalKeySource, Kds, MASTER_SEALED_FILE, PendingJoin,
    ReplicaPeer as _,
};
use clave_proto::kds_api::{self, MasterSecretOrigin};
use common::*;

fn join_in_memory(existing: &Kds, dir: &std::path::Path) -> Result<Kds, Error> {
    let nonce = existing.replica_nonce(NOW).nonce;
    let pending = PendingJoin::new_in_memory(
        dir,
        Box::new(kds_attester(kds_measurement())),
        dev_config(),
        nonce,
        rng(),
    )?;
    let response = existing.join(pending.request(), NOW)?;
    pending.finish(&response, NOW)
}

#[test]
fn memory_only_cluster_never_writes_the_master_secret() {
    let a_dir = tempfile::tempdir().expect("tempdir");
    let b_dir = tempfile::tempdir().expect("tempdir");
    let a = Kds::genesis_in_memory(
        a_dir.path(),
        Box::new(kds_attester(kds_measurement())),
        dev_config(),
        NOW,
        rng(),
    )
    .expect("genesis in memory");
    let b = join_in_memory(&a, b_dir.path()).expect("join in memory");
    assert_eq!(a.identity_public_key(), b.identity_public_key());
    for (kds, dir) in [(&a, &a_dir), (&b, &b_dir)] {
        assert_eq!(kds.master_secret_origin(), MasterSecretOrigin::Tee);
        assert!(!dir.path().join(MASTER_SEALED_FILE).exists());
        // The clock floor is kept (sealed under a key derived from the master secret).
        assert!(dir.path().join(CLOCK_SEALED_FILE).exists());
    }
    // B restarted: it has nothing to open and joins again, with the same identity.
    drop(b);
    let b = join_in_memory(&a, b_dir.path()).expect("rejoin");
    assert_eq!(a.identity_public_key(), b.identity_public_key());
    // A memory-only KDS refuses a data directory that holds a sealed master secret.
    let sealed_dir = tempfile::tempdir().expect("tempdir");
    drop(open_kds(sealed_dir.path()));
    assert!(matches!(
        join_in_memory(&a, sealed_dir.path()),
        Err(Error::AlreadyInitialised(_))
    ));
}

#[test]
fn an_external_master_secret_is_attested_as_such_and_inherited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("master.key");
    std::fs::write(&key, format!("{}\n", "5a".repeat(32))).expect("key file");
    let ext = Kds::open_external(
        &dir.path().join("ext"),
        &ExternalKeySource::File(key.clone()),
        Box::new(kds_attester(kds_measurement())),
        dev_config(),
        NOW,
        rng(),
    )
    .expect("external");
    assert_eq!(ext.master_secret_origin(), MasterSecretOrigin::External);
    assert!(!dir.path().join("ext").join(MASTER_SEALED_FILE).exists());
    // The same key gives the same identity at the next start (nothing else is kept).
    drop(ext);
    let ext = Kds::open_external(
        &dir.path().join("ext"),
        &ExternalKeySource::File(key),
        Box::new(kds_attester(kds_measurement())),
        dev_config(),
        NOW,
        rng(),
    )
    .expect("external again");

    // Its evidence binds the label: it verifies only with the external binding.
    let att = ext.attestation(b"n").expect("attestation");
    assert_eq!(att.master_secret_origin, MasterSecretOrigin::External);
    let ev = Evidence::from_bytes(&att.evidence).expect("evidence");
    let pk = att.identity_public_key;
    let external =
        kds_api::kds_attestation_report_data_bound(&pk, b"n", None, MasterSecretOrigin::External);
    verify(&ev, &kds_policy(), &external, NOW).expect("external binding");
    assert!(matches!(
        verify(
            &ev,
            &kds_policy(),
            &kds_api::kds_attestation_report_data(&pk, b"n"),
            NOW
        ),
        Err(clave_attest::Error::UserDataMismatch)
    ));

    // A replica joining in memory inherits the label.
    let m_dir = tempfile::tempdir().expect("tempdir");
    let m = join_in_memory(&ext, m_dir.path()).expect("join in memory");
    assert_eq!(m.identity_public_key(), ext.identity_public_key());
    assert_eq!(m.master_secret_origin(), MasterSecretOrigin::External);
    assert_eq!(
        m.attestation(b"n").expect("att").master_secret_origin,
        MasterSecretOrigin::External
    );

    // A replica that seals its master secret refuses it (once sealed it would lose the label).
    let s_dir = tempfile::tempdir().expect("tempdir");
    let nonce = ext.replica_nonce(NOW).nonce;
    let pending = PendingJoin::new(
        s_dir.path(),
        Box::new(clave_kds::InsecureSimulatedSealer::new(
            kds_measurement().as_bytes(),
        )),
        Box::new(kds_attester(kds_measurement())),
        dev_config(),
        nonce,
        rng(),
    )
    .expect("pending");
    let response = ext.join(pending.request(), NOW).expect("admitted");
    assert!(matches!(
        pending.finish(&response, NOW),
        Err(Error::ExternalMasterRefused)
    ));
    assert!(!s_dir.path().join(MASTER_SEALED_FILE).exists());

    // The host cannot strip the label in transit to a memory joiner: the evidence binds it.
    let j_dir = tempfile::tempdir().expect("tempdir");
    let nonce = ext.replica_nonce(NOW).nonce;
    let pending = PendingJoin::new_in_memory(
        j_dir.path(),
        Box::new(kds_attester(kds_measurement())),
        dev_config(),
        nonce,
        rng(),
    )
    .expect("pending");
    let mut response = ext.join(pending.request(), NOW).expect("admitted");
    response.master_secret_origin = MasterSecretOrigin::Tee;
    assert!(matches!(
        pending.finish(&response, NOW),
        Err(Error::PeerAttestation(
            clave_attest::Error::UserDataMismatch
        ))
    ));
}
