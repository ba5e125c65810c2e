//! The client's trust policy and the check that a key spec's policy is no broader than it.

use std::time::Duration;

use clave_attest::{
    DcapPolicy, Identity, Measurement, Policy, PolicyError, Revocation, SignerPolicy, SnpPolicy,
    TeeKind,
};

/// What a client is willing to trust, fixed before it talks to any gateway.
///
/// - `kds_policy`: the reference values the KDS's evidence must satisfy (pinned KDS measurement(s)
///   or signer, TEE kinds, TCB floor).
/// - `engine_policy`: the engines the client accepts. Every key bundle's spec policy (who may
///   receive the private key) must be *no broader* than this: its kinds a subset, its
///   measurements a subset (or the same signer with at least the same SVN), its TCB floors at
///   least as high, and the simulated TEE only when allowed.
/// - `kds_admission_policies`: the admission policies a KDS may run with. A KDS admits replicas
///   of its own measurement only, unless it runs with an admission policy (an upgrade path);
///   that policy travels with its evidence, which binds its hash. A KDS whose admission policy
///   is not listed here (by equality) is refused. Empty by default: only KDSes that admit
///   nothing but their own measurement are accepted.
/// - `accept_external_master_secret`: whether a KDS whose master secret came from an external key
///   source (its evidence says so) is accepted. Whoever provides that secret can derive every
///   key, so it is off unless the caller says so.
/// - `allow_insecure_simulated`: the master switch for the insecure simulated TEE, checked on
///   top of the two policies. Off unless the caller says so (`--insecure-dev`).
/// - `max_age`: how long a verified attestation is reused before it is fetched and checked again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustPolicy {
    /// Reference values of the KDS.
    pub kds_policy: Policy,
    /// The engines the client accepts.
    pub engine_policy: Policy,
    /// Admission policies a KDS may run with (see above); empty: none.
    pub kds_admission_policies: Vec<Policy>,
    /// Whether a KDS holding a master secret from an external key source is accepted.
    pub accept_external_master_secret: bool,
    /// Whether the insecure simulated TEE may be accepted at all.
    pub allow_insecure_simulated: bool,
    /// How long a verification result is cached.
    pub max_age: Duration,
}

/// Default cache age of a verified attestation.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);

impl TrustPolicy {
    /// A policy for real hardware: `kds_policy` and `engine_policy` as given, simulated TEE
    /// refused, default cache age.
    #[must_use]
    pub fn new(kds_policy: Policy, engine_policy: Policy) -> Self {
        Self {
            kds_policy,
            engine_policy,
            kds_admission_policies: Vec::new(),
            accept_external_master_secret: false,
            allow_insecure_simulated: false,
            max_age: DEFAULT_MAX_AGE,
        }
    }

    /// The development policy: accepts the INSECURE simulated TEE, with the KDS pinned to
    /// `kds_measurement` and engines pinned to `engine_measurements`. Anyone can forge simulated
    /// evidence; use it only against `clave dev`.
    ///
    /// # Errors
    /// When a measurement list is empty.
    pub fn insecure_dev(
        kds_measurement: Measurement,
        engine_measurements: impl IntoIterator<Item = Measurement>,
    ) -> Result<Self, PolicyError> {
        Ok(Self {
            kds_policy: Policy::insecure_dev([kds_measurement])?,
            engine_policy: Policy::insecure_dev(engine_measurements)?,
            kds_admission_policies: Vec::new(),
            accept_external_master_secret: false,
            allow_insecure_simulated: true,
            max_age: DEFAULT_MAX_AGE,
        })
    }

    /// Also accept a KDS that runs with `admission_policy` (compare its hash with the one
    /// `clave attest` shows before pinning it).
    #[must_use]
    pub fn accept_kds_admission_policy(mut self, admission_policy: Policy) -> Self {
        self.kds_admission_policies.push(admission_policy);
        self
    }

    /// Also accept a KDS whose master secret came from an external key source: you then trust
    /// whoever provides that secret (it can derive every key) as much as the TEE.
    #[must_use]
    pub fn accept_external_master_secret(mut self) -> Self {
        self.accept_external_master_secret = true;
        self
    }

    /// Replace the cache age.
    #[must_use]
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }
}

/// Checks that `spec` (a key bundle's policy: who may receive the private key) admits nothing
/// that `accepted` (the client's engine policy) does not: a field-by-field subsumption, every
/// field of `spec` equal to or stricter than the same field of `accepted`, never looser. Returns
/// the first reason it is broader.
///
/// | field | `spec` is within `accepted` when |
/// |---|---|
/// | `accepted_kinds` | a subset; the simulated kind only with the master switch |
/// | `allow_insecure_simulated` | `false`, or `true` in both and the master switch is on |
/// | `identity` | measurements: a subset; signer: the same id, the same product id if we pin one, `min_svn` ≥ ours; a signer spec against pinned measurements (or the reverse) is refused |
/// | `min_tcb` | for every kind it accepts that we floor: its floor meets ours |
/// | `max_evidence_age_secs` | when we limit it: a limit at most ours |
/// | `registers` | for every kind it accepts: every register we pin, pinned to the same value |
/// | `snp` (if it accepts SEV-SNP) | `max_vmpl` ≤ ours; `revocation` `required` if ours is |
/// | `dcap` (if it accepts TDX or SGX) | statuses a subset of ours; each `allow_*` flag `false` or also ours |
///
/// Every struct is destructured without `..`, so a field added to [`Policy`] does not compile
/// here until it has a rule (an unknown field is never silently ignored); the JSON parser of
/// [`Policy`] already refuses unknown fields on the wire.
pub fn policy_within(
    spec: &Policy,
    accepted: &Policy,
    allow_insecure_simulated: bool,
) -> Result<(), String> {
    let Policy {
        accepted_kinds,
        identity,
        min_tcb,
        allow_insecure_simulated: spec_allows_simulated,
        max_evidence_age_secs,
        registers,
        snp,
        dcap,
    } = spec;
    let Policy {
        accepted_kinds: our_kinds,
        identity: our_identity,
        min_tcb: our_min_tcb,
        allow_insecure_simulated: we_allow_simulated,
        max_evidence_age_secs: our_max_age,
        registers: our_registers,
        snp: our_snp,
        dcap: our_dcap,
    } = accepted;

    // accepted_kinds, allow_insecure_simulated
    for kind in accepted_kinds {
        if !our_kinds.contains(kind) {
            return Err(format!(
                "it admits TEE kind {kind}, which you do not accept"
            ));
        }
        if *kind == TeeKind::InsecureSimulated && !allow_insecure_simulated {
            return Err("it admits the insecure simulated TEE, which you do not accept".into());
        }
    }
    if *spec_allows_simulated && !(*we_allow_simulated && allow_insecure_simulated) {
        return Err("it admits the insecure simulated TEE, which you do not accept".into());
    }

    // identity
    identity_within(identity, our_identity)?;

    // min_tcb
    for (kind, ours) in our_min_tcb {
        if !accepted_kinds.contains(kind) {
            continue;
        }
        match min_tcb.get(kind) {
            Some(theirs) if theirs.meets(ours) => {}
            _ => {
                return Err(format!(
                    "its TCB floor for {kind} is lower than the one you require ({ours})"
                ));
            }
        }
    }

    // max_evidence_age_secs
    if let Some(ours) = our_max_age {
        match max_evidence_age_secs {
            Some(theirs) if theirs <= ours => {}
            _ => {
                return Err(format!(
                    "it accepts engine evidence older than your limit of {ours} s"
                ));
            }
        }
    }

    // registers
    for (kind, ours) in our_registers {
        if !accepted_kinds.contains(kind) {
            continue;
        }
        let theirs = registers.get(kind);
        for (name, value) in ours {
            match theirs.and_then(|t| t.get(name)) {
                Some(v) if v == value => {}
                Some(v) => {
                    return Err(format!(
                        "it pins {kind} register {name} to {v}, you require {value}"
                    ));
                }
                None => {
                    return Err(format!(
                        "it does not pin {kind} register {name}, which you require to be {value}"
                    ));
                }
            }
        }
    }

    // snp
    if accepted_kinds.contains(&TeeKind::SevSnp) {
        let SnpPolicy {
            max_vmpl,
            revocation,
        } = snp;
        let SnpPolicy {
            max_vmpl: our_vmpl,
            revocation: our_revocation,
        } = our_snp;
        if max_vmpl > our_vmpl {
            return Err(format!(
                "it admits SEV-SNP reports from VMPL {max_vmpl} (you allow at most {our_vmpl})"
            ));
        }
        let strictness = |r: &Revocation| match r {
            Revocation::IfPresent => 0,
            Revocation::Required => 1,
        };
        if strictness(revocation) < strictness(our_revocation) {
            return Err(
                "it admits SEV-SNP evidence whose chain was not checked against AMD's CRL, which you require"
                    .into(),
            );
        }
    }

    // dcap
    if accepted_kinds
        .iter()
        .any(|k| matches!(k, TeeKind::Tdx | TeeKind::SgxDcap))
    {
        let DcapPolicy {
            accepted_tcb_statuses,
            allow_dynamic_platform,
            allow_cached_keys,
            allow_smt,
        } = dcap;
        let DcapPolicy {
            accepted_tcb_statuses: our_statuses,
            allow_dynamic_platform: our_dynamic,
            allow_cached_keys: our_cached,
            allow_smt: our_smt,
        } = our_dcap;
        if let Some(st) = accepted_tcb_statuses
            .iter()
            .find(|st| !our_statuses.contains(st))
        {
            return Err(format!(
                "it admits DCAP platforms with TCB status {}, which you do not accept",
                st.as_str()
            ));
        }
        for (theirs, ours, what) in [
            (allow_dynamic_platform, our_dynamic, "dynamic platforms"),
            (allow_cached_keys, our_cached, "platforms with cached keys"),
            (allow_smt, our_smt, "platforms with SMT enabled"),
        ] {
            if *theirs && !*ours {
                return Err(format!("it admits DCAP {what}, which you do not accept"));
            }
        }
    }
    Ok(())
}

fn identity_within(theirs: &Identity, ours: &Identity) -> Result<(), String> {
    match (theirs, ours) {
        (Identity::Measurements(theirs), Identity::Measurements(ours)) => {
            if let Some(m) = theirs.iter().find(|m| !ours.contains(m)) {
                return Err(format!(
                    "it admits engine measurement {m}, which you do not accept"
                ));
            }
        }
        (Identity::Signer(theirs), Identity::Signer(ours)) => {
            let SignerPolicy {
                id,
                product_id,
                min_svn,
            } = theirs;
            if *id != ours.id {
                return Err(format!(
                    "it admits engines signed by {}, you accept only {}",
                    id, ours.id
                ));
            }
            if ours.product_id.is_some() && *product_id != ours.product_id {
                return Err("it admits another product id than the one you accept".into());
            }
            if *min_svn < ours.min_svn {
                return Err(format!(
                    "it admits engines with security version {} (you require at least {})",
                    min_svn, ours.min_svn
                ));
            }
        }
        (Identity::Signer(_), Identity::Measurements(_)) => {
            return Err(
                "it admits any engine of a signer, you accept only pinned measurements".into(),
            );
        }
        (Identity::Measurements(theirs), Identity::Signer(_)) => {
            // Exact measurements cannot be matched against a signer without the images; refuse
            // rather than guess.
            return Err(format!(
                "it pins {} engine measurement(s), you accept engines by signer; pin measurements instead",
                theirs.len()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
