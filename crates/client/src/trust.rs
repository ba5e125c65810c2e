//! The client's trust policy and the check that a key spec's policy is no broader than it.

use std::time::Duration;

use clave_attest::{Identity, Measurement, Policy, PolicyError, TeeKind};

/// What a client is willing to trust, fixed before it talks to any gateway.
///
/// - `kds_policy`: the reference values the KDS's evidence must satisfy (pinned KDS measurement(s)
///   or signer, TEE kinds, TCB floor).
/// - `engine_policy`: the engines the client accepts. Every key bundle's spec policy (who may
///   receive the private key) must be *no broader* than this: its kinds a subset, its
///   measurements a subset (or the same signer with at least the same SVN), its TCB floors at
///   least as high, and the simulated TEE only when allowed.
/// - `allow_insecure_simulated`: the master switch for the insecure simulated TEE, checked on
///   top of the two policies. Off unless the caller says so (`--insecure-dev`).
/// - `max_age`: how long a verified attestation is reused before it is fetched and checked again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustPolicy {
    /// Reference values of the KDS.
    pub kds_policy: Policy,
    /// The engines the client accepts.
    pub engine_policy: Policy,
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
            allow_insecure_simulated: true,
            max_age: DEFAULT_MAX_AGE,
        })
    }

    /// Replace the cache age.
    #[must_use]
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }
}

/// Checks that `spec` (a key bundle's policy: who may receive the private key) admits nothing
/// that `accepted` (the client's engine policy) does not. Returns the first reason it is broader.
pub fn policy_within(
    spec: &Policy,
    accepted: &Policy,
    allow_insecure_simulated: bool,
) -> Result<(), String> {
    for kind in &spec.accepted_kinds {
        if !accepted.accepts_kind(*kind) {
            return Err(format!(
                "it admits TEE kind {kind}, which you do not accept"
            ));
        }
        if *kind == TeeKind::InsecureSimulated && !allow_insecure_simulated {
            return Err("it admits the insecure simulated TEE, which you do not accept".into());
        }
    }
    if spec.allow_insecure_simulated
        && !(accepted.allow_insecure_simulated && allow_insecure_simulated)
    {
        return Err("it admits the insecure simulated TEE, which you do not accept".into());
    }
    match (&spec.identity, &accepted.identity) {
        (Identity::Measurements(theirs), Identity::Measurements(ours)) => {
            if let Some(m) = theirs.iter().find(|m| !ours.contains(m)) {
                return Err(format!(
                    "it admits engine measurement {m}, which you do not accept"
                ));
            }
        }
        (Identity::Signer(theirs), Identity::Signer(ours)) => {
            if theirs.id != ours.id {
                return Err(format!(
                    "it admits engines signed by {}, you accept only {}",
                    theirs.id, ours.id
                ));
            }
            if ours.product_id.is_some() && theirs.product_id != ours.product_id {
                return Err("it admits another product id than the one you accept".into());
            }
            if theirs.min_svn < ours.min_svn {
                return Err(format!(
                    "it admits engines with security version {} (you require at least {})",
                    theirs.min_svn, ours.min_svn
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
    for (kind, ours) in &accepted.min_tcb {
        if !spec.accepts_kind(*kind) {
            continue;
        }
        match spec.min_tcb.get(kind) {
            Some(theirs) if theirs.meets(ours) => {}
            _ => {
                return Err(format!(
                    "its TCB floor for {kind} is lower than the one you require ({ours})"
                ));
            }
        }
    }
    if let Some(ours) = accepted.max_evidence_age_secs {
        match spec.max_evidence_age_secs {
            Some(theirs) if theirs <= ours => {}
            _ => {
                return Err(format!(
                    "it accepts engine evidence older than your limit of {ours} s"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clave_attest::{SignerId, SignerPolicy};

    fn m(b: u8) -> Measurement {
        Measurement(vec![b; 32])
    }

    #[test]
    fn subset_of_measurements_is_within() {
        let ours = Policy::insecure_dev([m(1), m(2)]).expect("policy");
        let theirs = Policy::insecure_dev([m(1)]).expect("policy");
        assert_eq!(policy_within(&theirs, &ours, true), Ok(()));
        assert!(policy_within(&ours, &theirs, true).is_err());
    }

    #[test]
    fn insecure_needs_the_master_switch() {
        let p = Policy::insecure_dev([m(1)]).expect("policy");
        let err = policy_within(&p, &p, false).expect_err("refused");
        assert!(err.contains("insecure"), "{err}");
    }

    #[test]
    fn kinds_must_be_a_subset() {
        let ours = Policy::measurements([TeeKind::SevSnp], [m(1)]).expect("policy");
        let theirs = Policy::measurements([TeeKind::SevSnp, TeeKind::Tdx], [m(1)]).expect("policy");
        assert!(policy_within(&theirs, &ours, false).is_err());
        assert_eq!(policy_within(&ours, &ours, false), Ok(()));
    }

    #[test]
    fn signer_svn_must_not_be_lower() {
        let signer = |svn| SignerPolicy {
            id: SignerId(vec![9; 32]),
            product_id: Some(1),
            min_svn: svn,
        };
        let ours = Policy::signer([TeeKind::SgxDcap], signer(4)).expect("policy");
        let lower = Policy::signer([TeeKind::SgxDcap], signer(3)).expect("policy");
        let higher = Policy::signer([TeeKind::SgxDcap], signer(5)).expect("policy");
        assert!(policy_within(&lower, &ours, false).is_err());
        assert_eq!(policy_within(&higher, &ours, false), Ok(()));
        let pinned = Policy::measurements([TeeKind::SgxDcap], [m(1)]).expect("policy");
        assert!(policy_within(&higher, &pinned, false).is_err());
    }

    #[test]
    fn age_limit_must_hold() {
        let mut ours = Policy::measurements([TeeKind::SevSnp], [m(1)]).expect("policy");
        ours.max_evidence_age_secs = Some(60);
        let mut theirs = ours.clone();
        theirs.max_evidence_age_secs = None;
        assert!(policy_within(&theirs, &ours, false).is_err());
        theirs.max_evidence_age_secs = Some(30);
        assert_eq!(policy_within(&theirs, &ours, false), Ok(()));
    }
}
