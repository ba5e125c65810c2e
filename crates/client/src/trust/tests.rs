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
