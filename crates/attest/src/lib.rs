//! clave-attest: the crate every trust decision in clave goes through.
//!
//! It decodes TEE [`Evidence`], checks its cryptography, and appraises the resulting [`Claims`]
//! against a [`Policy`] (RATS "reference values") in one call, [`verify()`]. It is pure: no
//! network, no clock of its own (time is an argument), no global state, and no I/O except in the
//! hardware attesters behind the `configfs-tsm` and `nitro-nsm` features.
//!
//! It refuses debug-mode TEEs under every policy (there is no knob), and it refuses the insecure
//! simulated TEE ([`simulated`]) unless a policy explicitly allows it; claims from the simulated
//! TEE always carry `insecure: true`. Real hardware evidence (AWS Nitro, AMD SEV-SNP, Intel TDX
//! and SGX DCAP) is verified against built-in, pinned vendor roots at a caller-given time, with
//! endorsements (VCEK, AMD's CRL, Intel collateral) passed in through [`Endorsements`]; it never
//! fetches them (`clave-collateral` does) and has no way to replace a root.
//!
//! ```
//! use clave_attest::{verify, Attester, InsecureSimulatedAttester, Measurement, Policy, ReportData};
//!
//! let m = Measurement::of_binary(b"engine binary bytes");
//! let attester = InsecureSimulatedAttester::new(m.clone())?;
//! let nonce = ReportData::hash_of(b"example", &[b"nonce"]);
//! let evidence = attester.attest(&nonce)?;
//! let wire = evidence.to_bytes();
//!
//! let policy = Policy::insecure_dev([m])?;
//! let claims = verify(&clave_attest::Evidence::from_bytes(&wire)?, &policy, &nonce, 1_700_000_000)?;
//! assert!(claims.insecure);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod attester;
mod byte_reader;
mod cbor;
mod claims;
mod clock;
#[cfg(feature = "configfs-tsm")]
pub mod configfs_tsm;
pub mod dcap;
mod error;
mod evidence;
pub mod nitro;
#[cfg(feature = "nitro-nsm")]
pub mod nitro_nsm;
pub mod pem;
mod pki;
pub mod policy;
pub mod sgx;
pub mod simulated;
pub mod snp;
pub mod tdx;
mod types;
pub mod verify;

pub use attester::Attester;
pub use claims::{Claims, CrlWindow, PlatformClaims};
pub use clock::{Clock, system_clock, unix_now};
pub use error::Error;
pub use evidence::{EVIDENCE_MAGIC, EVIDENCE_VERSION, Evidence, MAX_EVIDENCE_LEN};
pub use policy::{
    DcapPolicy, Identity, Policy, PolicyError, Revocation, SignerPolicy, SnpPolicy, TcbStatus,
};
pub use simulated::{
    InsecureSimulatedAttester, InsecureSimulatedReport, InsecureSimulatedVerifier,
};
pub use types::{MAX_DIGEST_LEN, Measurement, ReportData, SignerId, Tcb, TeeKind};
pub use verify::{
    Endorsements, Verifier, appraise, verify, verify_evidence, verify_evidence_with, verify_with,
    verify_with_endorsements,
};
