//! Who may hold the master secret. The two attacks of an operator who controls the host (its
//! flags, ConfigMaps and network) but not the TEE, and the admission policy's binding.

mod common;

use clave_attest::{Attester as _, Error as AttestError, Evidence, Measurement, Policy, verify};
use clave_kds::{Error, InsecureSimulatedSealer, Kds, KdsConfig, PendingJoin, ReplicaPeer};
use clave_proto::MasterSecret;
use clave_proto::derive::identity_key;
use clave_proto::kds_api::{
    self, NonceResponse, ReplicaJoinRequest, ReplicaJoinResponse, admission_policy_hash,
};
use common::*;

fn sealer() -> Box<InsecureSimulatedSealer> {
    Box::new(InsecureSimulatedSealer::new(kds_measurement().as_bytes()))
}

/// What the operator hands the KDS: a "KDS policy" that admits the simulated TEE with the KDS's
/// measurement (on the old code, the `kds.json` of `--policy-dir`).
fn operator_policy() -> Policy {
    Policy::insecure_dev([kds_measurement()]).expect("policy")
}

/// Attack (a): a genuine KDS on SEV-SNP whose host configuration admits the simulated TEE is
/// asked to admit a forged replica (simulated evidence with the KDS's own measurement, which
/// anyone can make). Before the fix the forged replica received the master secret.
#[test]
fn attack_a_hardware_kds_never_hands_the_master_to_a_forged_replica() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The operator's admission policy admitting the simulated TEE: the KDS refuses to start.
    let cfg = KdsConfig {
        admission_policy: Some(operator_policy()),
        ..dev_config()
    };
    let err = Kds::open(
        dir.path(),
        sealer(),
        Box::new(FakeSnpAttester::new(kds_measurement())),
        cfg,
        NOW,
        rng(),
    )
    .expect_err("a hardware KDS must not start with such a policy");
    assert!(matches!(err, Error::Config(_)), "{err}");

    // Without it, the forged replica is refused: the rule is the KDS's own kind and
    // measurement, which a simulated report cannot meet.
    let genuine = Kds::open(
        dir.path(),
        sealer(),
        Box::new(FakeSnpAttester::new(kds_measurement())),
        dev_config(),
        NOW,
        rng(),
    )
    .expect("open");
    let forged_dir = tempfile::tempdir().expect("tempdir");
    let forged = PendingJoin::new(
        forged_dir.path(),
        sealer(),
        Box::new(kds_attester(kds_measurement())),
        dev_config(),
        genuine.replica_nonce(NOW).nonce,
        rng(),
    )
    .expect("pending");
    let err = genuine
        .admit_replica(forged.request(), NOW)
        .expect_err("forged replica refused");
    assert!(
        matches!(
            err,
            Error::Attestation(AttestError::KindNotAccepted(_) | AttestError::InsecureNotAllowed)
        ),
        "{err}"
    );
}

/// A fake peer run by the operator: it answers a join with a master secret of the operator's
/// choosing, "attested" by simulated evidence carrying the KDS measurement.
struct OperatorPeer {
    master: [u8; 32],
}

impl OperatorPeer {
    fn identity(&self) -> [u8; 32] {
        identity_key(&MasterSecret::from_bytes(self.master))
            .expect("identity")
            .verifying_key()
            .to_bytes()
    }
}

impl ReplicaPeer for OperatorPeer {
    fn replica_nonce(&self, _now: u64) -> Result<NonceResponse, Error> {
        Ok(NonceResponse {
            nonce: [3; 32],
            expires_at: NOW + 60,
        })
    }

    fn join(&self, req: &ReplicaJoinRequest, _now: u64) -> Result<ReplicaJoinResponse, Error> {
        let pk = self.identity();
        let evidence = kds_attester(kds_measurement())
            .attest(&kds_api::kds_attestation_report_data(
                &pk,
                &req.joiner_nonce,
            ))
            .expect("forged evidence");
        let (enc, sealed_master) = kds_api::seal_to_ephemeral(
            &req.ephemeral_public_key,
            kds_api::REPLICA_HPKE_INFO,
            &pk,
            &self.master,
            &mut rng(),
        )
        .expect("seal");
        Ok(ReplicaJoinResponse {
            evidence: evidence.to_bytes(),
            identity_public_key: pk,
            enc,
            sealed_master,
            master_secret_origin: Default::default(),
        })
    }
}

/// Attack (b): a genuine, empty KDS on SEV-SNP told to `--join` the operator's fake peer.
/// Before the fix it accepted the operator's master secret whenever the configured KDS policy
/// admitted the fake peer's evidence, and then attested (with real evidence) an identity
/// derived from a secret the operator knows.
#[test]
fn attack_b_empty_hardware_kds_refuses_a_master_from_a_fake_peer() {
    let peer = OperatorPeer { master: [0x42; 32] };
    for admission_policy in [None, Some(operator_policy())] {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = KdsConfig {
            admission_policy,
            ..dev_config()
        };
        let result = Kds::join(
            &peer,
            dir.path(),
            sealer(),
            Box::new(FakeSnpAttester::new(kds_measurement())),
            cfg,
            NOW,
            rng(),
        );
        match result {
            Ok(kds) => panic!(
                "joined the operator's peer: identity {} is the operator's",
                hex::encode(kds.identity_public_key())
            ),
            Err(Error::Config(_) | Error::PeerAttestation(_)) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
        assert!(!dir.path().join(clave_kds::MASTER_SEALED_FILE).exists());
    }
}

/// The simulated-TEE cluster of `clave dev` and the tests keeps working: a simulated KDS admits
/// a simulated replica of its own measurement, and refuses another measurement.
#[test]
fn simulated_cluster_admits_its_own_measurement() {
    let a_dir = tempfile::tempdir().expect("tempdir");
    let a = open_kds(a_dir.path());
    let b_dir = tempfile::tempdir().expect("tempdir");
    let b = Kds::join(
        &a,
        b_dir.path(),
        sealer(),
        Box::new(kds_attester(kds_measurement())),
        dev_config(),
        NOW,
        rng(),
    )
    .expect("join");
    assert_eq!(a.identity_public_key(), b.identity_public_key());
    assert_eq!(a.admission().admission_policy_hash(), None);
    // The attestation carries no admission policy and uses the plain binding.
    let att = a.attestation(b"n").expect("att");
    assert!(att.admission_policy.is_none());
    let ev = Evidence::from_bytes(&att.evidence).expect("ev");
    let rd = kds_api::kds_attestation_report_data(&att.identity_public_key, b"n");
    verify(&ev, &kds_policy(), &rd, NOW).expect("plain binding");
}

/// An admission policy (the upgrade path) admits a successor image, and its hash is bound into
/// every attestation: stripping it from the answer, or claiming another, fails verification.
#[test]
fn admission_policy_admits_a_successor_and_is_bound_into_the_evidence() {
    let successor = Measurement(vec![0xA2; 32]);
    let admission = Policy::insecure_dev([kds_measurement(), successor.clone()]).expect("policy");
    let cfg = KdsConfig {
        admission_policy: Some(admission.clone()),
        ..dev_config()
    };
    let a_dir = tempfile::tempdir().expect("tempdir");
    let a = open_kds_with(a_dir.path(), cfg.clone(), kds_measurement()).expect("open");
    let b_dir = tempfile::tempdir().expect("tempdir");
    let b = Kds::join(
        &a,
        b_dir.path(),
        Box::new(InsecureSimulatedSealer::new(successor.as_bytes())),
        Box::new(kds_attester(successor.clone())),
        cfg,
        NOW,
        rng(),
    )
    .expect("the successor joins under the shared admission policy");
    assert_eq!(a.identity_public_key(), b.identity_public_key());

    let att = a.attestation(b"n").expect("att");
    assert_eq!(att.admission_policy.as_ref(), Some(&admission));
    let ev = Evidence::from_bytes(&att.evidence).expect("ev");
    let h = admission_policy_hash(&admission);
    let bound = kds_api::kds_attestation_report_data_with(&att.identity_public_key, b"n", Some(&h));
    verify(&ev, &kds_policy(), &bound, NOW).expect("binds the admission policy hash");
    let plain = kds_api::kds_attestation_report_data(&att.identity_public_key, b"n");
    assert!(matches!(
        verify(&ev, &kds_policy(), &plain, NOW),
        Err(clave_attest::Error::UserDataMismatch)
    ));
    let other = admission_policy_hash(&kds_policy());
    let swapped =
        kds_api::kds_attestation_report_data_with(&att.identity_public_key, b"n", Some(&other));
    assert!(matches!(
        verify(&ev, &kds_policy(), &swapped, NOW),
        Err(clave_attest::Error::UserDataMismatch)
    ));

    // A joiner without the admission policy refuses this cluster; one with another measurement
    // and no admission policy is refused by it.
    let c_dir = tempfile::tempdir().expect("tempdir");
    let err = Kds::join(
        &a,
        c_dir.path(),
        sealer(),
        Box::new(kds_attester(kds_measurement())),
        dev_config(),
        NOW,
        rng(),
    )
    .expect_err("admission policies differ");
    assert!(
        matches!(err, Error::PeerAttestation(AttestError::UserDataMismatch)),
        "{err}"
    );
}
