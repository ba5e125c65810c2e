use super::*;

fn m(b: u8) -> Measurement {
    Measurement(vec![b; 48])
}

#[test]
fn defaults_are_strict() {
    let text = format!(
        r#"{{"accepted_kinds":["sev_snp"],"measurements":["{}"]}}"#,
        m(1).to_hex()
    );
    let p = Policy::from_json(&text).expect("valid policy");
    assert!(!p.allow_insecure_simulated);
    assert_eq!(p.max_evidence_age_secs, None);
    assert!(p.min_tcb.is_empty());
    assert_eq!(p.accepted_kinds, vec![TeeKind::SevSnp]);
    assert_eq!(p.identity, Identity::Measurements(vec![m(1)]));
    // The canonical form spells out the insecure switch.
    assert_eq!(
        p.to_json(),
        format!(
            r#"{{"accepted_kinds":["sev_snp"],"measurements":["{}"],"allow_insecure_simulated":false}}"#,
            m(1).to_hex()
        )
    );
    assert_eq!(Policy::from_json(&p.to_json()).expect("reparse"), p);
}

#[test]
fn signer_defaults_min_svn_zero() {
    let p = Policy::from_json(r#"{"accepted_kinds":["sgx_dcap"],"signer":{"id":"aa"}}"#)
        .expect("valid");
    assert_eq!(
        p.identity,
        Identity::Signer(SignerPolicy {
            id: SignerId(vec![0xaa]),
            product_id: None,
            min_svn: 0
        })
    );
}

#[test]
fn unknown_fields_are_rejected_with_their_name() {
    for text in [
        r#"{"accepted_kinds":["tdx"],"measurements":["aa"],"allow_debug":true}"#,
        r#"{"accepted_kinds":["tdx"],"signer":{"id":"aa","mrsigner":"bb"}}"#,
    ] {
        match Policy::from_json(text) {
            Err(PolicyError::Syntax(msg)) => assert!(msg.contains("unknown field"), "{msg}"),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }
    // Also through plain serde (as clave-proto uses it).
    let err = serde_json::from_str::<Policy>(
        r#"{"accepted_kinds":["tdx"],"measurements":["aa"],"debug":false}"#,
    )
    .expect_err("unknown field");
    assert!(err.to_string().contains("unknown field `debug`"), "{err}");
}

#[test]
fn unknown_kind_and_bad_hex_are_syntax_errors() {
    for text in [
        r#"{"accepted_kinds":["sev"],"measurements":["aa"]}"#,
        r#"{"accepted_kinds":["tdx"],"measurements":["xyz"]}"#,
        r#"{"accepted_kinds":["tdx"],"measurements":[""]}"#,
        r#"{"accepted_kinds":"tdx","measurements":["aa"]}"#,
        r#"{"measurements":["aa"]}"#,
        r#"not json"#,
        r#"{"accepted_kinds":["tdx"],"measurements":["aa"]} trailing"#,
    ] {
        assert!(
            matches!(Policy::from_json(text), Err(PolicyError::Syntax(_))),
            "{text}"
        );
    }
}

#[test]
fn contradictory_settings_are_rejected() {
    let cases = [
        (
            r#"{"accepted_kinds":[],"measurements":["aa"]}"#,
            PolicyError::NoAcceptedKinds,
        ),
        (
            r#"{"accepted_kinds":["tdx"],"measurements":[]}"#,
            PolicyError::EmptyMeasurementSet,
        ),
        (r#"{"accepted_kinds":["tdx"]}"#, PolicyError::NoIdentity),
        (
            r#"{"accepted_kinds":["tdx"],"measurements":["aa"],"signer":{"id":"bb"}}"#,
            PolicyError::BothIdentities,
        ),
        (
            r#"{"accepted_kinds":["insecure_simulated"],"measurements":["aa"]}"#,
            PolicyError::InsecureKindNotAllowed,
        ),
        (
            r#"{"accepted_kinds":["tdx"],"measurements":["aa"],"allow_insecure_simulated":true}"#,
            PolicyError::InsecureAllowedButNotListed,
        ),
        (
            r#"{"accepted_kinds":["tdx"],"measurements":["aa"],"min_tcb":{"sev_snp":[1,2,3,4]}}"#,
            PolicyError::TcbForUnacceptedKind(TeeKind::SevSnp),
        ),
        (
            r#"{"accepted_kinds":["sev_snp"],"measurements":["aa"],"min_tcb":{"sev_snp":[1,2,3]}}"#,
            PolicyError::TcbComponentCount {
                kind: TeeKind::SevSnp,
                expected: 4,
                got: 3,
            },
        ),
        (
            r#"{"accepted_kinds":["insecure_simulated"],"allow_insecure_simulated":true,"measurements":["aa"],"min_tcb":{"insecure_simulated":[]}}"#,
            PolicyError::TcbComponentCount {
                kind: TeeKind::InsecureSimulated,
                expected: 16,
                got: 0,
            },
        ),
        (
            r#"{"accepted_kinds":["nitro"],"measurements":["aa"],"min_tcb":{"nitro":[]}}"#,
            PolicyError::TcbNotApplicable(TeeKind::Nitro),
        ),
        (
            r#"{"accepted_kinds":["tdx"],"measurements":["aa"],"max_evidence_age_secs":0}"#,
            PolicyError::ZeroMaxAge,
        ),
    ];
    for (text, want) in cases {
        assert_eq!(Policy::from_json(text), Err(want), "{text}");
    }
}

#[test]
fn serialisation_is_canonical() {
    let a = Policy::measurements([TeeKind::Tdx, TeeKind::SevSnp, TeeKind::Tdx], [m(2), m(1)])
        .expect("valid");
    let b =
        Policy::measurements([TeeKind::SevSnp, TeeKind::Tdx], [m(1), m(2), m(1)]).expect("valid");
    assert_eq!(a, b);
    assert_eq!(a.to_json(), b.to_json());
    // A hand-built unsorted policy still serialises canonically.
    let mut c = a.clone();
    c.accepted_kinds.reverse();
    assert_eq!(serde_json::to_string(&c).expect("ser"), a.to_json());
    // Non-canonical input parses to the same canonical value.
    let text = format!(
        r#"{{"accepted_kinds":["tdx","sev_snp"],"measurements":["{}","{}"],"allow_insecure_simulated":false}}"#,
        m(2).to_hex(),
        m(1).to_hex()
    );
    let d = Policy::from_json(&text).expect("valid");
    assert_eq!(d.to_json(), a.to_json());
    assert_eq!(
        serde_json::from_str::<Policy>(&a.to_json()).expect("serde parse"),
        a
    );
}

#[test]
fn hardware_constructors_refuse_the_insecure_kind() {
    assert_eq!(
        Policy::measurements([TeeKind::SevSnp, TeeKind::InsecureSimulated], [m(1)]),
        Err(PolicyError::InsecureKindNotAllowed)
    );
    let signer = SignerPolicy {
        id: SignerId(vec![1]),
        product_id: None,
        min_svn: 0,
    };
    assert_eq!(
        Policy::signer([TeeKind::InsecureSimulated], signer),
        Err(PolicyError::InsecureKindNotAllowed)
    );
    assert_eq!(
        Policy::measurements([], [m(1)]),
        Err(PolicyError::NoAcceptedKinds)
    );
}

#[test]
fn insecure_dev_policy() {
    let p = Policy::insecure_dev([m(7)]).expect("valid");
    assert!(p.allow_insecure_simulated);
    assert_eq!(p.accepted_kinds, vec![TeeKind::InsecureSimulated]);
    assert_eq!(
        Policy::insecure_dev([]),
        Err(PolicyError::EmptyMeasurementSet)
    );
}

#[test]
fn pretty_form_parses_back() {
    let mut p = Policy::measurements([TeeKind::SevSnp], [m(3)]).expect("valid");
    p.min_tcb.insert(TeeKind::SevSnp, Tcb(vec![3, 0, 8, 115]));
    p.max_evidence_age_secs = Some(300);
    assert_eq!(Policy::from_json(&p.to_json_pretty()).expect("parse"), p);
}
