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
mod tests {
    use super::*;
    use clave_attest::{SignerId, Tcb, TcbStatus};

    fn m(b: u8) -> Measurement {
        Measurement(vec![b; 32])
    }

    #[test]
    fn subset_of_measurements_is_within() {
        let ours = Policy::insecure_dev([m(1), m(2)]).expect("policy");
        let theirs = Policy::insecure_dev([m(1)]).expect("policy");
        assert_eq!(policy_within(&theirs, &ours, true), Ok(()));
        assert_eq!(
            policy_within(&ours, &theirs, true),
            Err(format!(
                "it admits engine measurement {}, which you do not accept",
                m(2)
            ))
        );
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
        assert_eq!(
            policy_within(&theirs, &ours, false),
            Err(format!(
                "it admits TEE kind {}, which you do not accept",
                TeeKind::Tdx
            ))
        );
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
        assert_eq!(
            policy_within(&lower, &ours, false),
            Err("it admits engines with security version 3 (you require at least 4)".into())
        );
        assert_eq!(policy_within(&higher, &ours, false), Ok(()));
        let pinned = Policy::measurements([TeeKind::SgxDcap], [m(1)]).expect("policy");
        assert_eq!(
            policy_within(&higher, &pinned, false),
            Err("it admits any engine of a signer, you accept only pinned measurements".into())
        );
    }

    #[test]
    fn age_limit_must_hold() {
        let mut ours = Policy::measurements([TeeKind::SevSnp], [m(1)]).expect("policy");
        ours.max_evidence_age_secs = Some(60);
        let mut theirs = ours.clone();
        theirs.max_evidence_age_secs = None;
        assert_eq!(
            policy_within(&theirs, &ours, false),
            Err("it accepts engine evidence older than your limit of 60 s".into())
        );
        theirs.max_evidence_age_secs = Some(30);
        assert_eq!(policy_within(&theirs, &ours, false), Ok(()));
    }

    fn h(b: u8) -> Measurement {
        Measurement(vec![b; 48])
    }

    /// The client's engine policy every row starts from: every field set to a non-default value
    /// so that looser and stricter both exist.
    fn ours() -> Policy {
        let mut p =
            Policy::measurements([TeeKind::SevSnp, TeeKind::Tdx], [m(1), m(2)]).expect("policy");
        p.min_tcb.insert(TeeKind::SevSnp, Tcb(vec![1, 0, 8, 100]));
        p.max_evidence_age_secs = Some(300);
        p.registers
            .entry(TeeKind::Tdx)
            .or_default()
            .insert("rtmr0".into(), h(0xA0));
        p.snp.max_vmpl = 1;
        p.dcap.accepted_tcb_statuses = vec![TcbStatus::UpToDate, TcbStatus::SWHardeningNeeded];
        p.dcap.allow_dynamic_platform = false;
        p.dcap.allow_cached_keys = false;
        p.dcap.allow_smt = false;
        p.normalized().expect("valid")
    }

    fn signer(svn: u32, product: Option<u16>) -> Identity {
        Identity::Signer(SignerPolicy {
            id: SignerId(vec![9; 32]),
            product_id: product,
            min_svn: svn,
        })
    }

    type Edit = fn(&mut Policy, &mut Policy);

    /// Every field of a policy, looser / equal / stricter in the spec than in ours.
    #[test]
    fn every_field_is_subsumed_looser_equal_stricter() {
        use TeeKind::*;
        let rows: &[(&str, &str, Edit, bool)] = &[
            (
                "accepted_kinds",
                "looser",
                |_, s| s.accepted_kinds.push(Nitro),
                false,
            ),
            ("accepted_kinds", "equal", |_, _| {}, true),
            (
                "accepted_kinds",
                "stricter",
                |_, s| {
                    s.accepted_kinds = vec![SevSnp];
                    s.registers.clear();
                },
                true,
            ),
            (
                "allow_insecure_simulated",
                "looser",
                |_, s| {
                    s.accepted_kinds.push(InsecureSimulated);
                    s.allow_insecure_simulated = true;
                },
                false,
            ),
            (
                "allow_insecure_simulated",
                "stricter",
                |o, _| {
                    o.accepted_kinds.push(InsecureSimulated);
                    o.allow_insecure_simulated = true;
                },
                true,
            ),
            (
                "identity.measurements",
                "looser",
                |_, s| s.identity = Identity::Measurements(vec![m(1), m(2), m(3)]),
                false,
            ),
            (
                "identity.measurements",
                "stricter",
                |_, s| s.identity = Identity::Measurements(vec![m(1)]),
                true,
            ),
            (
                "identity.signer.min_svn",
                "looser",
                |o, s| {
                    o.identity = signer(4, Some(1));
                    s.identity = signer(3, Some(1));
                },
                false,
            ),
            (
                "identity.signer.min_svn",
                "equal",
                |o, s| {
                    o.identity = signer(4, Some(1));
                    s.identity = signer(4, Some(1));
                },
                true,
            ),
            (
                "identity.signer.min_svn",
                "stricter",
                |o, s| {
                    o.identity = signer(4, Some(1));
                    s.identity = signer(5, Some(1));
                },
                true,
            ),
            (
                "identity.signer.product_id",
                "looser",
                |o, s| {
                    o.identity = signer(4, Some(1));
                    s.identity = signer(4, None);
                },
                false,
            ),
            (
                "identity.signer.product_id",
                "stricter",
                |o, s| {
                    o.identity = signer(4, None);
                    s.identity = signer(4, Some(1));
                },
                true,
            ),
            (
                "identity.signer.id",
                "other",
                |o, s| {
                    o.identity = signer(4, None);
                    s.identity = Identity::Signer(SignerPolicy {
                        id: SignerId(vec![8; 32]),
                        product_id: None,
                        min_svn: 9,
                    });
                },
                false,
            ),
            (
                "identity",
                "signer vs measurements",
                |_, s| s.identity = signer(4, None),
                false,
            ),
            (
                "min_tcb",
                "looser",
                |_, s| {
                    s.min_tcb.insert(SevSnp, Tcb(vec![1, 0, 8, 99]));
                },
                false,
            ),
            (
                "min_tcb",
                "absent",
                |_, s| {
                    s.min_tcb.clear();
                },
                false,
            ),
            (
                "min_tcb",
                "stricter",
                |_, s| {
                    s.min_tcb.insert(SevSnp, Tcb(vec![1, 0, 8, 101]));
                },
                true,
            ),
            (
                "max_evidence_age_secs",
                "looser",
                |_, s| s.max_evidence_age_secs = Some(600),
                false,
            ),
            (
                "max_evidence_age_secs",
                "absent",
                |_, s| s.max_evidence_age_secs = None,
                false,
            ),
            (
                "max_evidence_age_secs",
                "stricter",
                |_, s| s.max_evidence_age_secs = Some(60),
                true,
            ),
            (
                "registers",
                "absent",
                |_, s| {
                    s.registers.clear();
                },
                false,
            ),
            (
                "registers",
                "other value",
                |_, s| {
                    s.registers
                        .entry(Tdx)
                        .or_default()
                        .insert("rtmr0".into(), h(0xB0));
                },
                false,
            ),
            (
                "registers",
                "stricter",
                |_, s| {
                    s.registers
                        .entry(Tdx)
                        .or_default()
                        .insert("rtmr1".into(), h(0xB1));
                },
                true,
            ),
            ("snp.max_vmpl", "looser", |_, s| s.snp.max_vmpl = 2, false),
            ("snp.max_vmpl", "stricter", |_, s| s.snp.max_vmpl = 0, true),
            (
                "snp.max_vmpl",
                "irrelevant without sev_snp",
                |_, s| {
                    s.accepted_kinds = vec![Tdx];
                    s.min_tcb.clear();
                    s.snp.max_vmpl = 3;
                },
                true,
            ),
            (
                "snp.revocation",
                "looser",
                |o, s| {
                    o.snp.revocation = Revocation::Required;
                    s.snp.revocation = Revocation::IfPresent;
                },
                false,
            ),
            (
                "snp.revocation",
                "equal",
                |o, s| {
                    o.snp.revocation = Revocation::Required;
                    s.snp.revocation = Revocation::Required;
                },
                true,
            ),
            (
                "snp.revocation",
                "stricter",
                |_, s| s.snp.revocation = Revocation::Required,
                true,
            ),
            (
                "dcap.accepted_tcb_statuses",
                "looser",
                |_, s| s.dcap.accepted_tcb_statuses.push(TcbStatus::OutOfDate),
                false,
            ),
            (
                "dcap.accepted_tcb_statuses",
                "stricter",
                |_, s| s.dcap.accepted_tcb_statuses = vec![TcbStatus::UpToDate],
                true,
            ),
            (
                "dcap.accepted_tcb_statuses",
                "irrelevant without tdx/sgx",
                |_, s| {
                    s.accepted_kinds = vec![SevSnp];
                    s.registers.clear();
                    s.dcap.accepted_tcb_statuses.push(TcbStatus::OutOfDate);
                },
                true,
            ),
            (
                "dcap.allow_dynamic_platform",
                "looser",
                |_, s| s.dcap.allow_dynamic_platform = true,
                false,
            ),
            (
                "dcap.allow_dynamic_platform",
                "stricter",
                |o, s| {
                    o.dcap.allow_dynamic_platform = true;
                    s.dcap.allow_dynamic_platform = false;
                },
                true,
            ),
            (
                "dcap.allow_cached_keys",
                "looser",
                |_, s| s.dcap.allow_cached_keys = true,
                false,
            ),
            (
                "dcap.allow_cached_keys",
                "stricter",
                |o, s| {
                    o.dcap.allow_cached_keys = true;
                    s.dcap.allow_cached_keys = false;
                },
                true,
            ),
            (
                "dcap.allow_smt",
                "looser",
                |_, s| s.dcap.allow_smt = true,
                false,
            ),
            (
                "dcap.allow_smt",
                "stricter",
                |o, s| {
                    o.dcap.allow_smt = true;
                    s.dcap.allow_smt = false;
                },
                true,
            ),
        ];
        for (field, how, edit, within) in rows {
            let mut o = ours();
            let mut s = ours();
            edit(&mut o, &mut s);
            let o = o
                .normalized()
                .unwrap_or_else(|e| panic!("{field} {how}: ours {e}"));
            let s = s
                .normalized()
                .unwrap_or_else(|e| panic!("{field} {how}: spec {e}"));
            let got = policy_within(&s, &o, true);
            assert_eq!(got.is_ok(), *within, "{field} {how}: {got:?}");
            // "equal" is trivially within; looser never is, whatever the master switch, and the
            // refusal names the field that is looser.
            if !within {
                let words = match *field {
                    "accepted_kinds" => "TEE kind",
                    "allow_insecure_simulated" => "insecure",
                    "identity.signer.product_id" => "product id",
                    f if f.starts_with("identity") => "engine",
                    "min_tcb" => "TCB floor",
                    "max_evidence_age_secs" => "older than your limit",
                    "registers" => "register",
                    "snp.max_vmpl" => "VMPL",
                    "snp.revocation" => "AMD's CRL",
                    "dcap.accepted_tcb_statuses" => "TCB status",
                    "dcap.allow_dynamic_platform" => "dynamic platforms",
                    "dcap.allow_cached_keys" => "cached keys",
                    "dcap.allow_smt" => "SMT enabled",
                    other => panic!("no expected words for {other}"),
                };
                let reason = got.expect_err("looser");
                assert!(reason.contains(words), "{field} {how}: {reason}");
                assert_eq!(
                    policy_within(&s, &o, false),
                    Err(reason),
                    "{field} {how}: another reason without the master switch"
                );
            }
        }
        // Equal policies are within each other.
        assert_eq!(policy_within(&ours(), &ours(), false), Ok(()));
    }

    /// The attack of the issue: TDX's MRTD covers the firmware only, so a spec that drops the
    /// client's RTMR pins admits any TD on that firmware.
    #[test]
    fn spec_without_the_clients_rtmr_pins_is_refused() {
        let mut ours = Policy::measurements([TeeKind::Tdx], [h(1)]).expect("policy");
        ours.registers
            .entry(TeeKind::Tdx)
            .or_default()
            .insert("rtmr2".into(), h(0x22));
        let spec = Policy::measurements([TeeKind::Tdx], [h(1)]).expect("policy");
        let err = policy_within(&spec, &ours, false).expect_err("broader");
        assert!(err.contains("rtmr2"), "{err}");
    }
}
