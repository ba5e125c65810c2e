//! Shared fixtures: a simulated KDS, simulated engines, and a release request builder.
#![allow(dead_code)]

use std::path::Path;

use clave_attest::{InsecureSimulatedAttester, Measurement, Policy};
use clave_kds::{InsecureSimulatedSealer, Kds, KdsConfig, Sealer};
use clave_proto::kds_api::{self, ReleaseRequest};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

/// A fixed test time (unix seconds), in the middle of an epoch.
pub const NOW: u64 = 1_750_000_000;

pub fn rng() -> impl CryptoRng + Send + 'static {
    rand_core::UnwrapErr(rand::rngs::SysRng)
}

pub fn engine_measurement() -> Measurement {
    Measurement(vec![0xE1; 32])
}

pub fn kds_measurement() -> Measurement {
    Measurement(vec![0xA1; 32])
}

pub fn dev_config() -> KdsConfig {
    let engine = Policy::insecure_dev([engine_measurement()]).expect("engine policy");
    KdsConfig::new(engine.clone(), engine)
}

/// What a client pins for the test KDS.
pub fn kds_policy() -> Policy {
    Policy::insecure_dev([kds_measurement()]).expect("kds policy")
}

/// A KDS that believes it runs on AMD SEV-SNP with measurement `m`: `kind()` says SEV-SNP, as
/// a configfs-tsm attester inside a real SNP guest would. Its own evidence is simulated, which
/// only matters to whoever verifies *it*; the attacks below are about what it accepts.
pub struct FakeSnpAttester(pub InsecureSimulatedAttester);

impl FakeSnpAttester {
    pub fn new(m: Measurement) -> Self {
        FakeSnpAttester(kds_attester(m))
    }
}

impl clave_attest::Attester for FakeSnpAttester {
    fn kind(&self) -> clave_attest::TeeKind {
        clave_attest::TeeKind::SevSnp
    }
    fn attest(
        &self,
        rd: &clave_attest::ReportData,
    ) -> Result<clave_attest::Evidence, clave_attest::Error> {
        self.0.attest(rd)
    }
    fn measurement(&self) -> Measurement {
        self.0.measurement()
    }
}

pub fn kds_attester(m: Measurement) -> InsecureSimulatedAttester {
    InsecureSimulatedAttester::new(m).expect("attester")
}

pub fn open_kds_with(
    dir: &Path,
    config: KdsConfig,
    m: Measurement,
) -> Result<Kds, clave_kds::Error> {
    Kds::open(
        dir,
        Box::new(InsecureSimulatedSealer::new(m.as_bytes())),
        Box::new(kds_attester(m)),
        config,
        NOW,
        rng(),
    )
}

pub fn open_kds(dir: &Path) -> Kds {
    open_kds_with(dir, dev_config(), kds_measurement()).expect("open kds")
}

/// The master secret as the (insecure, published) simulated sealer lets anyone read it: only
/// for asserting that it appears nowhere.
pub fn peek_master(dir: &Path) -> Zeroizing<Vec<u8>> {
    let blob = std::fs::read(dir.join(clave_kds::MASTER_SEALED_FILE)).expect("read sealed");
    InsecureSimulatedSealer::new(kds_measurement().as_bytes())
        .unseal(&blob)
        .expect("unseal")
}

/// An engine key pair for one release.
pub struct Ephemeral {
    pub sk: [u8; 32],
    pub pk: [u8; 32],
}

impl Ephemeral {
    pub fn new(seed: u8) -> Self {
        let sk = [seed; 32];
        let pk = kds_api::x25519_public_key(&sk).expect("pk");
        Ephemeral { sk, pk }
    }
}

/// A release request from an engine with `attester`, binding `eph` and `nonce`.
pub fn release_request(
    attester: &InsecureSimulatedAttester,
    spec: Vec<u8>,
    eph: &Ephemeral,
    nonce: [u8; 32],
) -> ReleaseRequest {
    use clave_attest::Attester as _;
    let rd = kds_api::release_report_data(&eph.pk, &nonce);
    ReleaseRequest {
        spec,
        evidence: attester.attest(&rd).expect("attest").to_bytes(),
        ephemeral_public_key: eph.pk,
        nonce,
    }
}

pub fn engine() -> InsecureSimulatedAttester {
    kds_attester(engine_measurement())
}
