//! Boundary tests: the example policy files parse, and their canonical forms are stable.

use clave_attest::{Identity, Measurement, Policy, Tcb, TeeKind};

#[test]
fn dev_policy_file() {
    let p = Policy::from_json(include_str!("data/dev-policy.json")).expect("valid");
    assert!(p.allow_insecure_simulated);
    assert_eq!(p.accepted_kinds, vec![TeeKind::InsecureSimulated]);
    assert_eq!(p.max_evidence_age_secs, Some(300));
    // The file's measurement is SHA-256("foo"), as `Measurement::of_binary` would compute.
    assert_eq!(
        p.identity,
        Identity::Measurements(vec![Measurement::of_binary(b"foo")])
    );
}

#[test]
fn snp_tdx_policy_file_is_normalised() {
    let p = Policy::from_json(include_str!("data/snp-tdx-policy.json")).expect("valid");
    assert_eq!(p.accepted_kinds, vec![TeeKind::SevSnp, TeeKind::Tdx]);
    assert!(!p.allow_insecure_simulated);
    assert_eq!(
        p.min_tcb.get(&TeeKind::SevSnp),
        Some(&Tcb(vec![3, 0, 8, 115]))
    );
    let canonical = p.to_json();
    assert!(canonical.starts_with(r#"{"accepted_kinds":["sev_snp","tdx"],"measurements":["#));
    assert!(canonical.contains(r#""min_tcb":{"sev_snp":[3,0,8,115],"tdx":[3,0,2,"#));
    assert_eq!(Policy::from_json(&canonical).expect("reparse"), p);
}

#[test]
fn sgx_signer_policy_file() {
    let p = Policy::from_json(include_str!("data/sgx-signer-policy.json")).expect("valid");
    match &p.identity {
        Identity::Signer(s) => {
            assert_eq!(s.product_id, Some(1));
            assert_eq!(s.min_svn, 4);
            assert_eq!(s.id.as_bytes().len(), 32);
        }
        other => panic!("expected a signer identity, got {other:?}"),
    }
    assert_eq!(
        p.to_json(),
        r#"{"accepted_kinds":["sgx_dcap"],"signer":{"id":"83d719e77deaca1470f6baf62a4d774303c899db69020f9c70ee1dfc08c7ce9e","product_id":1,"min_svn":4},"allow_insecure_simulated":false}"#
    );
}
