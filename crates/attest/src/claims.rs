//! Claims (RATS "attestation results" before appraisal): what verified evidence says.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::types::{Measurement, ReportData, SignerId, Tcb, TeeKind};

/// What a piece of evidence says about its TEE, after its cryptography has been checked.
///
/// [`crate::verify()`] returns claims only once they also satisfy the policy. Fields a format does
/// not have are `None` (or an empty [`Tcb`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Which TEE produced the evidence.
    pub kind: TeeKind,
    /// The launch measurement.
    pub measurement: Measurement,
    /// The image signer, if the format has one.
    pub signer: Option<SignerId>,
    /// The product id, if the format has one.
    pub product_id: Option<u16>,
    /// The image security version (0 where the format has none).
    pub svn: u32,
    /// The platform TCB version.
    pub tcb: Tcb,
    /// Whether the TEE runs in debug mode (never accepted by [`crate::verify()`]).
    pub debug: bool,
    /// The 64 bytes of user data bound into the evidence.
    pub report_data: ReportData,
    /// When the evidence was produced (unix seconds), if the format says.
    pub issued_at: Option<u64>,
    /// `true` for the insecure simulated TEE: these claims prove nothing about any hardware.
    pub insecure: bool,
    /// Kind-specific verified details (registers, VMPL, DCAP TCB status); empty for kinds and
    /// fields that have none. Absent from JSON when empty.
    #[serde(default, skip_serializing_if = "PlatformClaims::is_empty")]
    pub platform: PlatformClaims,
}

/// Kind-specific verified details that [`crate::Policy`] can constrain beyond identity and TCB.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformClaims {
    /// Named measurement registers, lowercase: Nitro `pcr0`..`pcr31`; TDX `mr_seam`,
    /// `mr_config_id`, `mr_owner`, `mr_owner_config`, `rtmr0`..`rtmr3`; SEV-SNP `host_data`,
    /// `family_id`, `image_id`, `id_key_digest`, `author_key_digest`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub registers: BTreeMap<String, Measurement>,
    /// SEV-SNP: the VMPL that requested the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmpl: Option<u32>,
    /// TDX: the TD attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub td_attributes: Option<u64>,
    /// DCAP (TDX, SGX): the TCB status computed from Intel's collateral (`UpToDate`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcb_status: Option<String>,
    /// DCAP: the Intel security advisories that apply to this platform's TCB.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advisory_ids: Vec<String>,
    /// DCAP: platform properties from the PCK certificate (`dynamic_platform`, `cached_keys`,
    /// `smt_enabled`) that are set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platform_flags: Vec<String>,
    /// SEV-SNP: the AMD CRL the ARK → ASK → VCEK chain was checked against; `None` when no CRL
    /// was supplied (see [`crate::SnpPolicy::revocation`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl: Option<CrlWindow>,
}

/// The validity window of a verified CRL that a chain was checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrlWindow {
    /// The CRL's `thisUpdate` (unix seconds).
    pub this_update: u64,
    /// The CRL's `nextUpdate` (unix seconds): a verifier must fetch a newer CRL after it.
    pub next_update: u64,
}

impl PlatformClaims {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self == &PlatformClaims::default()
    }
}
