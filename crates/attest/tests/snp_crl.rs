//! Boundary tests of AMD CRL checking on the real SEV-SNP vectors (`tests/data/real/snp`).
//!
//! No genuine AMD CRL is in the repository (none was found with clear provenance; see
//! `tests/data/real/README.md`), so no CRL here can verify under the pinned ARK: these tests pin
//! down what the public entry points do with a CRL that is absent, malformed, foreign or signed
//! by anyone but AMD, and what the policy says. The positive path (a valid CRL, revoked ASK and
//! VCEK) is covered by the unit tests in `src/snp/crl/tests.rs` with a generated test ARK.

use clave_attest::snp::crl::SnpCrl;
use clave_attest::snp::{SnpProduct, verify_report, verify_report_with_crl};
use clave_attest::{
    Endorsements, Error, Evidence, Policy, PolicyError, Revocation, TeeKind, appraise,
    verify_evidence_with, verify_with_endorsements,
};

#[path = "common/crl_builder.rs"]
mod builder;

use builder::{CrlSpec, TestEntry, build_crl, serial_of};

/// 2026-01-01T00:00:00Z: inside every VCEK's window.
const NOW: u64 = 1_767_225_600;

#[path = "common/real_data.rs"]
mod real_data;
use real_data::{hex_file, read};

struct Vector {
    report: Vec<u8>,
    vcek: Vec<u8>,
    product: SnpProduct,
}

fn milan() -> Vector {
    Vector {
        report: hex_file("snp/milan_azure_report.hex"),
        vcek: read("snp/milan_azure_vcek.pem"),
        product: SnpProduct::Milan,
    }
}

fn genoa() -> Vector {
    Vector {
        report: hex_file("snp/genoa_azure_report.hex"),
        vcek: read("snp/genoa_azure_vcek.pem"),
        product: SnpProduct::Genoa,
    }
}

fn evidence(v: &Vector) -> Evidence {
    Evidence::SevSnp {
        report: v.report.clone(),
        certs: None,
    }
}

fn endorsements(v: &Vector, crl: Option<Vec<u8>>) -> Endorsements {
    Endorsements {
        snp_vcek: Some(v.vcek.clone()),
        snp_crl: crl,
        ..Default::default()
    }
}

/// A CRL with AMD's names, serials and algorithm, signed by a test key (not AMD's).
fn lookalike_crl(product: SnpProduct, revoke_ask: bool) -> Vec<u8> {
    let mut s = CrlSpec::new(product.ark_der(), NOW - 3600, NOW + 7 * 86_400);
    if revoke_ask {
        s.entries = vec![TestEntry::direct(&serial_of(product.ask_der()), NOW - 7200)];
    }
    build_crl(&s, &builder::test_key("lookalike ARK"))
}

fn policy(v: &Vector, revocation: Revocation) -> Policy {
    let c = verify_report(&v.report, &v.vcek, None, NOW).expect("real vector verifies");
    let mut p = Policy::measurements([TeeKind::SevSnp], [c.measurement]).expect("policy");
    p.snp.revocation = revocation;
    p
}

#[test]
fn without_a_crl_the_default_policy_accepts_and_required_refuses() {
    let v = milan();
    let c = verify_evidence_with(&evidence(&v), &endorsements(&v, None), NOW).expect("verifies");
    assert_eq!(c.platform.crl, None, "no CRL was checked");
    let rd = c.report_data;
    verify_with_endorsements(
        &evidence(&v),
        &endorsements(&v, None),
        &policy(&v, Revocation::IfPresent),
        &rd,
        NOW,
    )
    .expect("if_present: accepted without a CRL");
    let err = verify_with_endorsements(
        &evidence(&v),
        &endorsements(&v, None),
        &policy(&v, Revocation::Required),
        &rd,
        NOW,
    )
    .expect_err("required: refused without a CRL");
    assert!(matches!(err, Error::RevocationNotChecked(TeeKind::SevSnp)));
    assert!(err.is_policy_refusal());
    // Appraising claims that do carry a CRL window passes the same policy.
    let mut checked = c.clone();
    checked.platform.crl = Some(clave_attest::CrlWindow {
        this_update: NOW - 1,
        next_update: NOW + 1,
    });
    appraise(&checked, &policy(&v, Revocation::Required), &rd, NOW).expect("checked claims");
}

#[test]
fn a_crl_not_signed_by_the_pinned_ark_is_refused() {
    for v in [milan(), genoa()] {
        for revoke_ask in [false, true] {
            let crl = lookalike_crl(v.product, revoke_ask);
            // The signature is checked before the entries: a lookalike listing the ASK is a bad
            // signature, not a revocation.
            let err =
                verify_evidence_with(&evidence(&v), &endorsements(&v, Some(crl.clone())), NOW)
                    .expect_err("lookalike CRL");
            assert!(
                matches!(&err, Error::CrlBadSignature { issuer, .. } if issuer.contains(&format!("ARK-{}", v.product.name()))),
                "{}: {err}",
                v.product.name()
            );
            assert!(!err.is_policy_refusal());
            // The same through verify_report_with_crl, PEM or DER.
            assert!(matches!(
                verify_report_with_crl(&v.report, &v.vcek, None, &crl, NOW),
                Err(Error::CrlBadSignature { .. })
            ));
            let pem = builder::to_pem(&crl);
            assert!(matches!(
                verify_report_with_crl(&v.report, &v.vcek, None, pem.as_bytes(), NOW),
                Err(Error::CrlBadSignature { .. })
            ));
        }
    }
}

#[test]
fn a_crl_of_another_product_is_refused() {
    // Genoa's CRL handed in for a Milan chain, and the other way round.
    for (v, other) in [(milan(), SnpProduct::Genoa), (genoa(), SnpProduct::Turin)] {
        let crl = lookalike_crl(other, false);
        let err = verify_evidence_with(&evidence(&v), &endorsements(&v, Some(crl)), NOW)
            .expect_err("foreign CRL");
        match err {
            Error::CrlWrongIssuer {
                issuer, expected, ..
            } => {
                assert!(
                    issuer.contains(&format!("ARK-{}", other.name())),
                    "{issuer}"
                );
                assert!(
                    expected.contains(&format!("ARK-{}", v.product.name())),
                    "{expected}"
                );
            }
            other => panic!("expected a wrong issuer, got {other:?}"),
        }
    }
}

#[test]
fn malformed_crls_are_refused_and_never_panic() {
    let v = milan();
    let good = lookalike_crl(SnpProduct::Milan, true);
    let mut cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"<html>rate limited</html>".to_vec(),
        read("roots/amd_milan_ark.pem"),
        good[..good.len() / 2].to_vec(),
        good[..good.len() - 1].to_vec(),
        [good.as_slice(), &[0]].concat(),
    ];
    for i in [0, 1, 3, 5, 9] {
        let mut b = good.clone();
        b[i] ^= 0xff;
        cases.push(b);
    }
    for crl in cases {
        let err = verify_evidence_with(&evidence(&v), &endorsements(&v, Some(crl)), NOW)
            .expect_err("malformed CRL");
        assert!(
            matches!(err, Error::CrlMalformed { .. }),
            "expected CrlMalformed, got {err}"
        );
    }
    // A CRL is only looked at once the chain itself verified: evidence errors come first.
    let mut bad_report = v.report.clone();
    bad_report[0] = 9;
    assert!(matches!(
        verify_report_with_crl(&bad_report, &v.vcek, None, b"junk", NOW),
        Err(Error::UnsupportedVersion { .. })
    ));
}

#[test]
fn the_crl_parser_reads_the_window_and_entries() {
    let crl = SnpCrl::parse(&lookalike_crl(SnpProduct::Genoa, true)).expect("parse");
    assert!(crl.issuer().contains("ARK-Genoa"));
    assert_eq!(crl.this_update(), NOW - 3600);
    assert_eq!(crl.next_update(), NOW + 7 * 86_400);
    let r = crl.revoked();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].serial, "020002");
    assert!(r[0].issuer.contains("ARK-Genoa"));
    // Parsing proves nothing: the pinned ARK refuses it.
    assert!(matches!(
        crl.verify(SnpProduct::Genoa, NOW),
        Err(Error::CrlBadSignature { .. })
    ));
}

#[test]
fn policy_revocation_field_is_backwards_compatible() {
    let m = "aa".repeat(48);
    let base = format!(r#"{{"accepted_kinds":["sev_snp"],"measurements":["{m}"]}}"#);
    let p = Policy::from_json(&base).expect("old policy");
    assert_eq!(p.snp.revocation, Revocation::IfPresent);
    // The default is not written: existing canonical bytes (and key spec ids) do not change.
    assert!(!p.to_json().contains("revocation"));
    assert!(!p.to_json().contains("\"snp\":"));
    let strict = format!(
        r#"{{"accepted_kinds":["sev_snp"],"measurements":["{m}"],"snp":{{"revocation":"required"}}}}"#
    );
    let p = Policy::from_json(&strict).expect("strict policy");
    assert_eq!(p.snp.revocation, Revocation::Required);
    assert!(p.to_json().contains(r#""snp":{"revocation":"required"}"#));
    assert_eq!(Policy::from_json(&p.to_json()).expect("round trip"), p);
    let explicit_default = format!(
        r#"{{"accepted_kinds":["sev_snp"],"measurements":["{m}"],"snp":{{"revocation":"if_present","max_vmpl":0}}}}"#
    );
    assert_eq!(
        Policy::from_json(&explicit_default)
            .expect("explicit default")
            .to_json(),
        Policy::from_json(&base).expect("old").to_json()
    );
    for bad in ["\"sometimes\"", "true", "\"Required\""] {
        let text = format!(
            r#"{{"accepted_kinds":["sev_snp"],"measurements":["{m}"],"snp":{{"revocation":{bad}}}}}"#
        );
        assert!(
            matches!(Policy::from_json(&text), Err(PolicyError::Syntax(_))),
            "{bad}"
        );
    }
    // The repository's example policies still parse.
    for text in [
        include_str!("data/dev-policy.json"),
        include_str!("data/snp-tdx-policy.json"),
        include_str!("data/sgx-signer-policy.json"),
    ] {
        let p = Policy::from_json(text).expect("example policy");
        assert_eq!(p.snp.revocation, Revocation::IfPresent);
    }
}
