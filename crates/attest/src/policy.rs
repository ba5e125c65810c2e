//! Attestation policy (RATS "reference values") and its file format.
//!
//! # File format (JSON)
//!
//! ```json
//! {
//!   "accepted_kinds": ["sev_snp", "tdx"],
//!   "measurements": ["<hex>", "<hex>"],
//!   "min_tcb": { "sev_snp": [3, 0, 8, 115] },
//!   "max_evidence_age_secs": 300
//! }
//! ```
//!
//! or, pinning a signer instead of exact measurements (survives upgrades: the new image carries
//! the same signer and a higher SVN):
//!
//! ```json
//! {
//!   "accepted_kinds": ["sgx_dcap"],
//!   "signer": { "id": "<hex MRSIGNER>", "product_id": 1, "min_svn": 4 }
//! }
//! ```
//!
//! Fields:
//!
//! | field | required | default | meaning |
//! |---|---|---|---|
//! | `accepted_kinds` | yes | – | non-empty list of [`TeeKind`] names |
//! | `measurements` | one of these two | – | exact set of accepted measurements (hex) |
//! | `signer` | one of these two | – | `{id, product_id?, min_svn?}`; `min_svn` defaults to 0 |
//! | `min_tcb` | no | no floor | per accepted kind, the minimum TCB components (SNP 4: boot loader, TEE, SNP, microcode; TDX 16; SGX 17; simulated 1 to 16; none for Nitro) |
//! | `allow_insecure_simulated` | no | `false` | must be `true` iff `insecure_simulated` is listed |
//! | `max_evidence_age_secs` | no | no limit | for formats with a timestamp; nonce binding is always checked |
//! | `snp` | no | `{}` | `{"max_vmpl": 0..=3, "revocation": "if_present" \| "required"}` (see [`SnpPolicy`], [`Revocation`]) |
//!
//! Debug mode has no knob: it is never accepted. The insecure simulated TEE is never accepted
//! unless the policy both lists the kind and sets `allow_insecure_simulated`. Unknown fields are
//! an error. Lists are sorted and deduplicated on parsing and on serialisation, so the same
//! policy always serialises to the same bytes (clave-proto hashes them into key spec ids).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::types::{Measurement, SignerId, Tcb, TeeKind};

/// Which workload identities a policy accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// Exactly these measurements (pins one build; an upgrade needs a new policy).
    Measurements(Vec<Measurement>),
    /// Any image signed by this signer with at least this security version.
    Signer(SignerPolicy),
}

/// A signer identity with a minimum security version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerPolicy {
    /// The signer (SNP author/ID key digest, SGX `MRSIGNER`, Nitro `PCR8`, simulated signer).
    pub id: SignerId,
    /// The product id the image must carry (SGX `ISVPRODID`); `None` accepts any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<u16>,
    /// The minimum security version (SGX `ISVSVN`, SNP `GUEST_SVN`).
    #[serde(default)]
    pub min_svn: u32,
}

/// Attestation policy: which evidence is acceptable (RATS "reference values").
///
/// Build one with [`Policy::measurements`], [`Policy::signer`], [`Policy::insecure_dev`] or
/// [`Policy::from_json`]. [`crate::verify()`] refuses everything under a policy that fails
/// [`Policy::validate`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PolicyFile", into = "PolicyFile")]
pub struct Policy {
    /// The TEE kinds accepted (non-empty).
    pub accepted_kinds: Vec<TeeKind>,
    /// The accepted workload identity.
    pub identity: Identity,
    /// Per kind, the minimum platform TCB. Kinds without an entry have no floor.
    pub min_tcb: BTreeMap<TeeKind, Tcb>,
    /// Whether the insecure simulated TEE is accepted (default `false`). Must agree with
    /// `accepted_kinds`.
    pub allow_insecure_simulated: bool,
    /// Maximum evidence age in seconds, for formats that carry a timestamp. `None`: no limit
    /// (freshness then rests on the nonce in the report data alone).
    pub max_evidence_age_secs: Option<u64>,
    /// Per kind, named measurement registers that must hold exactly these values (Nitro
    /// `pcr0`..`pcr31`; TDX `rtmr0`..`rtmr3`, `mr_config_id`, `mr_owner`, `mr_owner_config`,
    /// `mr_seam`; SEV-SNP `host_data`, `family_id`, `image_id`). Empty by default.
    pub registers: BTreeMap<TeeKind, BTreeMap<String, Measurement>>,
    /// SEV-SNP settings (default: VMPL 0 only).
    pub snp: SnpPolicy,
    /// DCAP (TDX and SGX) settings (default: TCB status `UpToDate`; dynamic platform, cached
    /// keys and SMT accepted, as on every public cloud).
    pub dcap: DcapPolicy,
}

/// SEV-SNP settings beyond identity and TCB.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnpPolicy {
    /// The highest VMPL a report may come from (0 = the most privileged level only; default 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_vmpl: u32,
    /// Whether the ARK → ASK → VCEK chain must have been checked against AMD's CRL (default
    /// [`Revocation::IfPresent`]). Absent from the JSON when default, so existing policies keep
    /// their canonical bytes.
    #[serde(default, skip_serializing_if = "Revocation::is_if_present")]
    pub revocation: Revocation,
}

/// What a policy says about certificate revocation (SEV-SNP: AMD's ARK-signed CRL).
///
/// A CRL that *is* supplied is always checked in full (ARK signature, `thisUpdate` /
/// `nextUpdate` window, ASK/VCEK serials) under either setting; a bad, expired or foreign CRL is
/// never ignored. The setting only decides what happens when **no** CRL was supplied.
///
/// The CRL is an input of the *verifier* (`Endorsements::snp_crl`, fetched by
/// `clave-collateral`), never part of the evidence, so the host under attack cannot strip it:
/// `if_present` hands the adversary no downgrade, it only tolerates verifiers that do not fetch
/// CRLs (offline TEEs verifying each other, existing deployments).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Revocation {
    /// Check a supplied CRL; accept evidence verified without one (the default).
    #[default]
    IfPresent,
    /// Refuse evidence verified without a CRL ([`crate::Error::RevocationNotChecked`]).
    Required,
}

impl Revocation {
    fn is_if_present(&self) -> bool {
        *self == Revocation::IfPresent
    }
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

fn is_true(v: &bool) -> bool {
    *v
}

fn yes() -> bool {
    true
}

/// A DCAP TCB status, as Intel's TCB info names it. `Revoked` has no variant: it is never
/// accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TcbStatus {
    /// The platform is patched.
    UpToDate,
    /// Patched, but software hardening (for example against an LVI class issue) is needed.
    SWHardeningNeeded,
    /// Patched, but a BIOS configuration change is needed.
    ConfigurationNeeded,
    /// Both of the above.
    ConfigurationAndSWHardeningNeeded,
    /// The platform misses security patches.
    OutOfDate,
    /// Out of date and needs a configuration change.
    OutOfDateConfigurationNeeded,
}

impl TcbStatus {
    /// Intel's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TcbStatus::UpToDate => "UpToDate",
            TcbStatus::SWHardeningNeeded => "SWHardeningNeeded",
            TcbStatus::ConfigurationNeeded => "ConfigurationNeeded",
            TcbStatus::ConfigurationAndSWHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            TcbStatus::OutOfDate => "OutOfDate",
            TcbStatus::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
        }
    }
}

fn default_statuses() -> Vec<TcbStatus> {
    vec![TcbStatus::UpToDate]
}

fn is_default_statuses(v: &[TcbStatus]) -> bool {
    v == [TcbStatus::UpToDate]
}

/// DCAP (TDX and SGX) settings.
///
/// Defaults accept a genuine, up-to-date quote from a public cloud: those platforms report
/// dynamic platform, cached keys and SMT in the PCK certificate. Set a flag to `false` to refuse
/// such platforms (stricter, opt-in).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DcapPolicy {
    /// TCB statuses accepted (default `["UpToDate"]`; `Revoked` is never accepted).
    #[serde(
        default = "default_statuses",
        skip_serializing_if = "is_default_statuses"
    )]
    pub accepted_tcb_statuses: Vec<TcbStatus>,
    /// Accept platforms whose PCK says "dynamic platform" (default `true`).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub allow_dynamic_platform: bool,
    /// Accept platforms whose PCK says "cached keys" (default `true`).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub allow_cached_keys: bool,
    /// Accept platforms with SMT (hyper-threading) enabled (default `true`).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub allow_smt: bool,
}

impl Default for DcapPolicy {
    fn default() -> Self {
        DcapPolicy {
            accepted_tcb_statuses: default_statuses(),
            allow_dynamic_platform: true,
            allow_cached_keys: true,
            allow_smt: true,
        }
    }
}

impl DcapPolicy {
    fn is_default(&self) -> bool {
        self == &DcapPolicy::default()
    }
}

impl SnpPolicy {
    fn is_default(&self) -> bool {
        self == &SnpPolicy::default()
    }
}

/// The register names a policy may constrain, per kind.
pub fn register_name_allowed(kind: TeeKind, name: &str) -> bool {
    match kind {
        TeeKind::Nitro => name
            .strip_prefix("pcr")
            .and_then(|n| n.parse::<u8>().ok())
            .is_some_and(|n| n < 32 && name == format!("pcr{n}")),
        TeeKind::Tdx => matches!(
            name,
            "rtmr0"
                | "rtmr1"
                | "rtmr2"
                | "rtmr3"
                | "mr_config_id"
                | "mr_owner"
                | "mr_owner_config"
                | "mr_seam"
        ),
        TeeKind::SevSnp => matches!(
            name,
            "host_data" | "family_id" | "image_id" | "id_key_digest" | "author_key_digest"
        ),
        TeeKind::SgxDcap | TeeKind::InsecureSimulated => false,
    }
}

/// Why a policy is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The text is not valid policy JSON: a syntax error, a missing or unknown field, a wrong type.
    #[error("policy JSON: {0}")]
    Syntax(String),
    /// `accepted_kinds` is empty: nothing could ever be accepted.
    #[error("accepted_kinds is empty")]
    NoAcceptedKinds,
    /// Neither `measurements` nor `signer` is given.
    #[error("the policy names no identity: give `measurements` or `signer`")]
    NoIdentity,
    /// Both `measurements` and `signer` are given.
    #[error("give either `measurements` or `signer`, not both")]
    BothIdentities,
    /// `measurements` is an empty list: nothing could ever be accepted.
    #[error("measurements is empty")]
    EmptyMeasurementSet,
    /// `insecure_simulated` is listed but `allow_insecure_simulated` is not set.
    #[error("accepted_kinds lists insecure_simulated but allow_insecure_simulated is false")]
    InsecureKindNotAllowed,
    /// `allow_insecure_simulated` is set but `insecure_simulated` is not listed.
    #[error("allow_insecure_simulated is true but accepted_kinds lacks insecure_simulated")]
    InsecureAllowedButNotListed,
    /// `min_tcb` names a kind the policy does not accept.
    #[error("min_tcb names {0}, which accepted_kinds does not list")]
    TcbForUnacceptedKind(TeeKind),
    /// A `min_tcb` entry has the wrong number of components for its kind (it could never be met).
    #[error("min_tcb for {kind} has {got} components; {kind} TCBs have {expected}")]
    TcbComponentCount {
        /// The kind.
        kind: TeeKind,
        /// Components that kind has (for the simulated TEE: the maximum, 16).
        expected: usize,
        /// Components given.
        got: usize,
    },
    /// `min_tcb` names a kind without TCB versions (Nitro).
    #[error("min_tcb names {0}, which has no TCB version")]
    TcbNotApplicable(TeeKind),
    /// `max_evidence_age_secs` is zero: no evidence could ever be fresh enough.
    #[error("max_evidence_age_secs is 0")]
    ZeroMaxAge,
    /// `registers` names a kind the policy does not accept.
    #[error("registers names {0}, which accepted_kinds does not list")]
    RegistersForUnacceptedKind(TeeKind),
    /// `registers` names a register that kind does not have.
    #[error("registers: {kind} has no register {name:?}")]
    UnknownRegister {
        /// The kind.
        kind: TeeKind,
        /// The name given.
        name: String,
    },
    /// `dcap.accepted_tcb_statuses` is empty: no DCAP quote could ever be accepted.
    #[error("dcap.accepted_tcb_statuses is empty")]
    NoAcceptedTcbStatus,
    /// `snp.max_vmpl` is above 3 (VMPLs are 0 to 3).
    #[error("snp.max_vmpl {0} is above 3")]
    BadMaxVmpl(u32),
}

impl Policy {
    /// The policy of `kinds` and `identity` with every optional check at its default (no TCB
    /// floor, no age limit, no register or SNP/DCAP constraints), normalised and validated.
    fn base(
        accepted_kinds: Vec<TeeKind>,
        identity: Identity,
        allow_insecure_simulated: bool,
    ) -> Result<Policy, PolicyError> {
        Policy {
            accepted_kinds,
            identity,
            min_tcb: BTreeMap::new(),
            allow_insecure_simulated,
            max_evidence_age_secs: None,
            registers: BTreeMap::new(),
            snp: SnpPolicy::default(),
            dcap: DcapPolicy::default(),
        }
        .normalized()
    }

    /// A policy accepting exactly `measurements` on the given hardware kinds, with no TCB floor
    /// and no age limit. Lists are normalised (sorted, deduplicated). Listing
    /// [`TeeKind::InsecureSimulated`] here is an error ([`PolicyError::InsecureKindNotAllowed`]):
    /// use [`Policy::insecure_dev`], which says what it does.
    pub fn measurements(
        kinds: impl IntoIterator<Item = TeeKind>,
        measurements: impl IntoIterator<Item = Measurement>,
    ) -> Result<Policy, PolicyError> {
        Policy::base(
            kinds.into_iter().collect(),
            Identity::Measurements(measurements.into_iter().collect()),
            false,
        )
    }

    /// A policy accepting any image of `signer.id` (and product) with SVN at least
    /// `signer.min_svn` on the given hardware kinds. Like [`Policy::measurements`], it refuses
    /// to list the insecure simulated TEE.
    pub fn signer(
        kinds: impl IntoIterator<Item = TeeKind>,
        signer: SignerPolicy,
    ) -> Result<Policy, PolicyError> {
        Policy::base(kinds.into_iter().collect(), Identity::Signer(signer), false)
    }

    /// The development policy: accepts only the insecure simulated TEE, with exactly these
    /// measurements. Anyone can forge such evidence; never use it outside `clave dev`.
    pub fn insecure_dev(
        measurements: impl IntoIterator<Item = Measurement>,
    ) -> Result<Policy, PolicyError> {
        Policy::base(
            vec![TeeKind::InsecureSimulated],
            Identity::Measurements(measurements.into_iter().collect()),
            true,
        )
    }

    /// Parses a policy file (JSON), normalises and validates it.
    pub fn from_json(text: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile =
            serde_json::from_str(text).map_err(|e| PolicyError::Syntax(e.to_string()))?;
        Policy::try_from(file)
    }

    /// The canonical JSON form (compact, normalised, fields in a fixed order).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&PolicyFile::from(self.clone()))
            .expect("serialising a policy of strings and integers cannot fail")
    }

    /// The canonical JSON form, indented for people.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(&PolicyFile::from(self.clone()))
            .expect("serialising a policy of strings and integers cannot fail")
    }

    /// Sorts and deduplicates the lists, then validates.
    pub fn normalized(mut self) -> Result<Policy, PolicyError> {
        self.normalize();
        self.validate()?;
        Ok(self)
    }

    fn normalize(&mut self) {
        self.accepted_kinds.sort();
        self.accepted_kinds.dedup();
        if let Identity::Measurements(m) = &mut self.identity {
            m.sort();
            m.dedup();
        }
        self.dcap.accepted_tcb_statuses.sort();
        self.dcap.accepted_tcb_statuses.dedup();
    }

    /// Checks that the settings are consistent and could accept something.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.accepted_kinds.is_empty() {
            return Err(PolicyError::NoAcceptedKinds);
        }
        if let Identity::Measurements(m) = &self.identity
            && m.is_empty()
        {
            return Err(PolicyError::EmptyMeasurementSet);
        }
        let lists_insecure = self.accepted_kinds.contains(&TeeKind::InsecureSimulated);
        match (lists_insecure, self.allow_insecure_simulated) {
            (true, false) => return Err(PolicyError::InsecureKindNotAllowed),
            (false, true) => return Err(PolicyError::InsecureAllowedButNotListed),
            _ => {}
        }
        if let Some(kind) = self
            .min_tcb
            .keys()
            .find(|k| !self.accepted_kinds.contains(k))
        {
            return Err(PolicyError::TcbForUnacceptedKind(*kind));
        }
        for (&kind, tcb) in &self.min_tcb {
            let got = tcb.0.len();
            match kind.tcb_components() {
                Some(0) => return Err(PolicyError::TcbNotApplicable(kind)),
                Some(expected) if got != expected => {
                    return Err(PolicyError::TcbComponentCount {
                        kind,
                        expected,
                        got,
                    });
                }
                None if got == 0 || got > crate::simulated::MAX_TCB_COMPONENTS => {
                    return Err(PolicyError::TcbComponentCount {
                        kind,
                        expected: crate::simulated::MAX_TCB_COMPONENTS,
                        got,
                    });
                }
                _ => {}
            }
        }
        if self.max_evidence_age_secs == Some(0) {
            return Err(PolicyError::ZeroMaxAge);
        }
        for (&kind, regs) in &self.registers {
            if !self.accepted_kinds.contains(&kind) {
                return Err(PolicyError::RegistersForUnacceptedKind(kind));
            }
            if let Some(name) = regs.keys().find(|n| !register_name_allowed(kind, n)) {
                return Err(PolicyError::UnknownRegister {
                    kind,
                    name: name.clone(),
                });
            }
        }
        if self.dcap.accepted_tcb_statuses.is_empty() {
            return Err(PolicyError::NoAcceptedTcbStatus);
        }
        if self.snp.max_vmpl > 3 {
            return Err(PolicyError::BadMaxVmpl(self.snp.max_vmpl));
        }
        Ok(())
    }

    /// Whether the policy lists `kind`.
    pub fn accepts_kind(&self, kind: TeeKind) -> bool {
        self.accepted_kinds.contains(&kind)
    }
}

/// The on-disk / on-wire shape of a [`Policy`]: flat, strict, with documented defaults.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    accepted_kinds: Vec<TeeKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    measurements: Option<Vec<Measurement>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signer: Option<SignerPolicy>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    min_tcb: BTreeMap<TeeKind, Tcb>,
    #[serde(default)]
    allow_insecure_simulated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_evidence_age_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    registers: BTreeMap<TeeKind, BTreeMap<String, Measurement>>,
    #[serde(default, skip_serializing_if = "SnpPolicy::is_default")]
    snp: SnpPolicy,
    #[serde(default, skip_serializing_if = "DcapPolicy::is_default")]
    dcap: DcapPolicy,
}

impl TryFrom<PolicyFile> for Policy {
    type Error = PolicyError;

    fn try_from(f: PolicyFile) -> Result<Policy, PolicyError> {
        let identity = match (f.measurements, f.signer) {
            (Some(m), None) => Identity::Measurements(m),
            (None, Some(s)) => Identity::Signer(s),
            (None, None) => return Err(PolicyError::NoIdentity),
            (Some(_), Some(_)) => return Err(PolicyError::BothIdentities),
        };
        Policy {
            accepted_kinds: f.accepted_kinds,
            identity,
            min_tcb: f.min_tcb,
            allow_insecure_simulated: f.allow_insecure_simulated,
            max_evidence_age_secs: f.max_evidence_age_secs,
            registers: f.registers,
            snp: f.snp,
            dcap: f.dcap,
        }
        .normalized()
    }
}

impl From<Policy> for PolicyFile {
    fn from(mut p: Policy) -> PolicyFile {
        // Serialisation is canonical even for a hand-built, unsorted policy.
        p.normalize();
        let (measurements, signer) = match p.identity {
            Identity::Measurements(m) => (Some(m), None),
            Identity::Signer(s) => (None, Some(s)),
        };
        PolicyFile {
            accepted_kinds: p.accepted_kinds,
            measurements,
            signer,
            min_tcb: p.min_tcb,
            allow_insecure_simulated: p.allow_insecure_simulated,
            max_evidence_age_secs: p.max_evidence_age_secs,
            registers: p.registers,
            snp: p.snp,
            dcap: p.dcap,
        }
    }
}

#[cfg(test)]
mod tests;
