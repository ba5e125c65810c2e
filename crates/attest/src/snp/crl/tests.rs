//! Unit tests of the AMD CRL checks. No genuine AMD CRL is available offline (see
//! `tests/data/real/README.md`), so the CRLs here are signed by a generated RSA test key that
//! stands in for the ARK through the crate-private [`Anchor`] seam; the names, serials and
//! algorithm identifier are the real Milan ARK's, ASK's and VCEK's. Production code never builds
//! an anchor from anything but a pinned ARK (see `check_chain`).

use std::sync::OnceLock;

use super::*;
use crate::pki::cert_from_pem_or_der;

#[path = "../../../tests/common/crl_builder.rs"]
mod builder;

use builder::{CrlSpec, TestEntry, build_crl, extension, serial_of, subject_of};

const T0: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const T1: u64 = T0 + 7 * 24 * 3600;
const NOW: u64 = T0 + 3600;

fn ark_key() -> &'static rsa::RsaPrivateKey {
    static K: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    K.get_or_init(|| builder::test_key("clave test ARK"))
}

fn other_key() -> &'static rsa::RsaPrivateKey {
    static K: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    K.get_or_init(|| builder::test_key("clave other key"))
}

fn milan_ark() -> &'static [u8] {
    SnpProduct::Milan.ark_der()
}

struct Chain {
    ark: Cert,
    ask: Cert,
    vcek: Cert,
}

fn chain() -> Chain {
    Chain {
        ark: Cert::from_der(SnpProduct::Milan.ark_der(), KIND, "ARK").expect("ark"),
        ask: Cert::from_der(SnpProduct::Milan.ask_der(), KIND, "ASK").expect("ask"),
        vcek: cert_from_pem_or_der(
            include_bytes!("../../../tests/data/real/snp/milan_azure_vcek.pem"),
            KIND,
            "VCEK",
        )
        .expect("vcek"),
    }
}

/// The test stand-in for the Milan ARK: its real name, the test key.
fn test_anchor() -> Anchor {
    Anchor {
        name: subject_of(milan_ark()),
        key: ark_key().to_public_key(),
        label: "test ARK-Milan".into(),
    }
}

fn spec() -> CrlSpec {
    CrlSpec::new(milan_ark(), T0, T1)
}

fn check(crl: &[u8], now: u64) -> Result<CrlWindow, Error> {
    let c = chain();
    check_chain_by(
        crl,
        &test_anchor(),
        &[(&c.ark, true), (&c.ask, true), (&c.vcek, false)],
        now,
    )
}

fn signed(spec: &CrlSpec) -> Vec<u8> {
    build_crl(spec, ark_key())
}

#[test]
fn an_empty_crl_passes_and_reports_its_window() {
    let crl = signed(&spec());
    let w = check(&crl, NOW).expect("valid CRL");
    assert_eq!(
        w,
        CrlWindow {
            this_update: T0,
            next_update: T1
        }
    );
    let parsed = SnpCrl::parse(&crl).expect("parse");
    assert!(parsed.issuer().contains("ARK-Milan"), "{}", parsed.issuer());
    assert!(parsed.revoked().is_empty());
    // PEM is accepted too.
    let pem = builder::to_pem(&crl);
    assert_eq!(check(pem.as_bytes(), NOW).expect("pem"), w);
}

#[test]
fn unrelated_entries_pass() {
    let mut s = spec();
    s.entries = vec![
        TestEntry::direct(&[0x01, 0x00, 0x02], T0 - 10),
        TestEntry::direct(&[0x42], T0 - 5),
    ];
    check(&signed(&s), NOW).expect("nothing of ours is listed");
    let listed = SnpCrl::parse(&signed(&s)).expect("parse").revoked();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].serial, "010002");
    assert_eq!(listed[0].revoked_at, T0 - 10);
}

#[test]
fn a_revoked_ask_is_refused_by_name_and_serial() {
    let ask_serial = serial_of(SnpProduct::Milan.ask_der());
    assert_eq!(ask_serial, [0x01, 0x00, 0x01]);
    let mut s = spec();
    s.entries = vec![
        TestEntry::direct(&[0x42], T0 - 50),
        TestEntry::direct(&ask_serial, T0 - 100),
    ];
    match check(&signed(&s), NOW) {
        Err(Error::CertificateRevoked {
            which,
            serial,
            revoked_at,
            ..
        }) => {
            assert!(which.starts_with("ASK"), "{which}");
            assert!(which.contains("SEV-Milan"), "{which}");
            assert_eq!(serial, "010001");
            assert_eq!(revoked_at, T0 - 100);
        }
        other => panic!("expected a revoked ASK, got {other:?}"),
    }
    // A certificateIssuer naming the ARK itself is a direct entry.
    let mut s = spec();
    s.entries = vec![TestEntry::indirect(
        subject_of(milan_ark()),
        &ask_serial,
        T0 - 100,
    )];
    assert!(matches!(
        check(&signed(&s), NOW),
        Err(Error::CertificateRevoked { which, .. }) if which.starts_with("ASK")
    ));
}

#[test]
fn a_revoked_ark_is_refused() {
    let mut s = spec();
    s.entries = vec![TestEntry::direct(&serial_of(milan_ark()), T0 - 1)];
    assert!(matches!(
        check(&signed(&s), NOW),
        Err(Error::CertificateRevoked { which, serial, .. }) if which.starts_with("ARK") && serial == "010000"
    ));
}

#[test]
fn a_revoked_vcek_is_refused_through_certificate_issuer() {
    let c = chain();
    let vcek_serial = c
        .vcek
        .parsed
        .tbs_certificate()
        .serial_number()
        .as_bytes()
        .to_vec();
    assert_eq!(vcek_serial, [0x00], "AMD VCEKs carry serial 0");
    let ask_name = subject_of(SnpProduct::Milan.ask_der());
    let mut s = spec();
    s.entries = vec![TestEntry::indirect(ask_name.clone(), &vcek_serial, T0 - 7)];
    match check(&signed(&s), NOW) {
        Err(Error::CertificateRevoked {
            which,
            serial,
            revoked_at,
            ..
        }) => {
            assert!(which.starts_with("VCEK"), "{which}");
            assert_eq!(serial, "00");
            assert_eq!(revoked_at, T0 - 7);
        }
        other => panic!("expected a revoked VCEK, got {other:?}"),
    }
    // The certificateIssuer carries over to the following entries (RFC 5280 5.3.3).
    let mut s = spec();
    s.entries = vec![
        TestEntry::indirect(ask_name, &[0x77], T0 - 9),
        TestEntry::direct(&vcek_serial, T0 - 8),
    ];
    assert!(matches!(
        check(&signed(&s), NOW),
        Err(Error::CertificateRevoked { which, .. }) if which.starts_with("VCEK")
    ));
    // An entry naming another issuer revokes nothing of ours.
    let mut s = spec();
    s.entries = vec![TestEntry::indirect(
        subject_of(SnpProduct::Genoa.ask_der()),
        &vcek_serial,
        T0 - 7,
    )];
    check(&signed(&s), NOW).expect("another ASK's certificate");
}

#[test]
fn a_bare_serial_zero_from_the_ark_does_not_revoke_every_vcek() {
    // The ARK never issued a certificate with serial 0; VCEKs (all serial 0) are the ASK's.
    let mut s = spec();
    s.entries = vec![TestEntry::direct(&[0x00], T0 - 1)];
    check(&signed(&s), NOW).expect("out of scope for the VCEK");
}

#[test]
fn wrong_signer_is_a_bad_signature() {
    let crl = build_crl(&spec(), other_key());
    assert!(matches!(
        check(&crl, NOW),
        Err(Error::CrlBadSignature { issuer, .. }) if issuer == "test ARK-Milan"
    ));
}

#[test]
fn the_pinned_ark_refuses_the_test_key() {
    // The production entry points use the built-in ARK: a CRL named ARK-Milan but signed by any
    // other key fails, whatever the caller does.
    let crl = signed(&spec());
    let parsed = SnpCrl::parse(&crl).expect("parse");
    assert!(matches!(
        parsed.verify(SnpProduct::Milan, NOW),
        Err(Error::CrlBadSignature { issuer, .. }) if issuer.contains("ARK-Milan")
    ));
    let c = chain();
    assert!(matches!(
        check_chain(&crl, &c.ark, &c.ask, &c.vcek, NOW),
        Err(Error::CrlBadSignature { .. })
    ));
}

#[test]
fn a_crl_of_another_product_is_refused() {
    for p in [SnpProduct::Genoa, SnpProduct::Turin] {
        let s = CrlSpec::new(p.ark_der(), T0, T1);
        let crl = signed(&s);
        match check(&crl, NOW) {
            Err(Error::CrlWrongIssuer {
                issuer, expected, ..
            }) => {
                assert!(issuer.contains(&format!("ARK-{}", p.name())), "{issuer}");
                assert_eq!(expected, "test ARK-Milan");
            }
            other => panic!("{}: expected a wrong issuer, got {other:?}", p.name()),
        }
        // And through the pinned path: Milan's ARK does not accept Genoa's/Turin's CRL.
        assert!(matches!(
            SnpCrl::parse(&crl)
                .expect("parse")
                .verify(SnpProduct::Milan, NOW),
            Err(Error::CrlWrongIssuer { .. })
        ));
    }
}

#[test]
fn the_window_is_enforced_with_a_one_sided_skew() {
    let crl = signed(&spec());
    check(&crl, T0).expect("at thisUpdate");
    check(&crl, T0 - CRL_CLOCK_SKEW_SECS).expect("within the skew before thisUpdate");
    check(&crl, T1).expect("at nextUpdate");
    assert!(matches!(
        check(&crl, T0 - CRL_CLOCK_SKEW_SECS - 1),
        Err(Error::CrlNotYetValid { this_update: T0, now, .. }) if now == T0 - CRL_CLOCK_SKEW_SECS - 1
    ));
    assert!(matches!(
        check(&crl, T1 + 1),
        Err(Error::CrlExpired {
            next_update: T1,
            ..
        })
    ));
    assert!(matches!(check(&crl, 0), Err(Error::CrlNotYetValid { .. })));
    assert!(matches!(
        check(&crl, u64::MAX),
        Err(Error::CrlExpired { .. })
    ));
}

#[test]
fn an_expired_crl_that_lists_the_ask_is_reported_as_expired() {
    // The signature and window come first: a stale CRL proves nothing either way.
    let mut s = spec();
    s.entries = vec![TestEntry::direct(
        &serial_of(SnpProduct::Milan.ask_der()),
        T0,
    )];
    assert!(matches!(
        check(&signed(&s), T1 + 1),
        Err(Error::CrlExpired { .. })
    ));
}

fn is_malformed(r: Result<CrlWindow, Error>) -> bool {
    matches!(r, Err(Error::CrlMalformed { .. }))
}

#[test]
fn structural_refusals() {
    // No nextUpdate.
    let mut s = spec();
    s.next_update = None;
    assert!(is_malformed(check(&signed(&s), NOW)));
    // nextUpdate before thisUpdate.
    let mut s = spec();
    s.next_update = Some(T0 - 1);
    assert!(is_malformed(check(&signed(&s), NOW)));
    // Version 1 (an explicit INTEGER 0).
    let mut s = spec();
    s.version = x509_cert::Version::V1;
    assert!(is_malformed(check(&signed(&s), NOW)));
    // A delta CRL.
    let mut s = spec();
    s.extensions = vec![extension("2.5.29.27", true, vec![0x02, 0x01, 0x05])];
    assert!(is_malformed(check(&signed(&s), NOW)));
    // An unknown critical CRL extension; the same one non-critical is ignored.
    let mut s = spec();
    s.extensions = vec![extension("1.2.3.4.5", true, vec![0x05, 0x00])];
    assert!(is_malformed(check(&signed(&s), NOW)));
    s.extensions = vec![extension("1.2.3.4.5", false, vec![0x05, 0x00])];
    check(&signed(&s), NOW).expect("non-critical unknown extension");
    // A CRL number (known) is fine even if marked critical; twice is not.
    s.extensions = vec![extension("2.5.29.20", true, vec![0x02, 0x01, 0x07])];
    check(&signed(&s), NOW).expect("cRLNumber");
    s.extensions = vec![
        extension("2.5.29.20", false, vec![0x02, 0x01, 0x07]),
        extension("2.5.29.20", false, vec![0x02, 0x01, 0x08]),
    ];
    assert!(is_malformed(check(&signed(&s), NOW)));
    // issuingDistributionPoint with onlyContainsUserCerts (would not cover the ASK).
    let mut s = spec();
    s.extensions = vec![extension(
        "2.5.29.28",
        true,
        vec![0x30, 0x03, 0x81, 0x01, 0xff],
    )];
    assert!(is_malformed(check(&signed(&s), NOW)));
    // An empty issuingDistributionPoint (full scope) is fine.
    s.extensions = vec![extension("2.5.29.28", true, vec![0x30, 0x00])];
    check(&signed(&s), NOW).expect("full-scope IDP");
    // An unknown critical entry extension; reasonCode is fine.
    let mut s = spec();
    let mut e = TestEntry::direct(&[0x42], T0 - 1);
    e.extra = vec![extension("1.2.3.4.6", true, vec![0x05, 0x00])];
    s.entries = vec![e.clone()];
    assert!(is_malformed(check(&signed(&s), NOW)));
    e.extra = vec![extension("2.5.29.21", false, vec![0x0a, 0x01, 0x01])];
    s.entries = vec![e];
    check(&signed(&s), NOW).expect("reasonCode");
}

#[test]
fn only_rsassa_pss_sha384_salt_48_is_accepted() {
    // Salt 32 declared and used: a different algorithm, refused before any signature check.
    let mut s = spec();
    s.algorithm = builder::pss_sha384_with_salt(32);
    s.salt_len = 32;
    assert!(matches!(
        check(&signed(&s), NOW),
        Err(Error::UnsupportedAlgorithm { .. })
    ));
    // sha384WithRSAEncryption (PKCS#1 v1.5).
    let mut s = spec();
    s.algorithm = x509_cert::spki::AlgorithmIdentifierOwned {
        oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12"),
        parameters: None,
    };
    assert!(matches!(
        check(&signed(&s), NOW),
        Err(Error::UnsupportedAlgorithm { .. })
    ));
    // Salt 48 declared but the signature made with salt 32: a bad signature.
    let mut s = spec();
    s.salt_len = 32;
    assert!(matches!(
        check(&signed(&s), NOW),
        Err(Error::CrlBadSignature { .. })
    ));
    // Inner and outer algorithms differ.
    let mut s = spec();
    s.outer_algorithm = Some(builder::pss_sha384_with_salt(32));
    assert!(is_malformed(check(&signed(&s), NOW)));
}

#[test]
fn truncation_garbage_and_size() {
    let crl = signed(&spec());
    for len in 0..crl.len() {
        assert!(
            is_malformed(check(&crl[..len], NOW)),
            "prefix of {len} bytes"
        );
    }
    let mut long = crl.clone();
    long.push(0);
    assert!(is_malformed(check(&long, NOW)), "trailing byte");
    for junk in [
        &b"<html>not found</html>"[..],
        &[0x30, 0x80, 0x00, 0x00],
        &[0xff; 64],
        b"-----BEGIN X509 CRL-----\n!!!\n-----END X509 CRL-----\n",
        b"-----BEGIN X509 CRL-----\nMAA=\n",
    ] {
        assert!(is_malformed(check(junk, NOW)));
    }
    assert!(is_malformed(check(&vec![0x30; MAX_CRL_LEN + 1], NOW)));
    // A certificate is not a CRL.
    assert!(is_malformed(check(milan_ark(), NOW)));
}

#[test]
fn every_bit_flip_is_refused() {
    let mut s = spec();
    s.entries = vec![TestEntry::direct(&[0x42], T0 - 1)];
    let crl = signed(&s);
    let parsed = SnpCrl::parse(&crl).expect("parse");
    let sig_start = crl.len() - parsed.signature.len();
    // One bit in every byte of the signature value: always a bad signature.
    for i in sig_start..crl.len() {
        let mut b = crl.clone();
        b[i] ^= 0x01 << (i % 8);
        assert!(
            matches!(check(&b, NOW), Err(Error::CrlBadSignature { .. })),
            "signature byte {i}"
        );
    }
    // One bit in every other byte (framing, TBS, algorithm): refused, never a panic.
    for i in 0..sig_start {
        let mut b = crl.clone();
        b[i] ^= 0x01 << (i % 8);
        let r = check(&b, NOW);
        assert!(
            matches!(
                r,
                Err(Error::CrlMalformed { .. }
                    | Error::CrlBadSignature { .. }
                    | Error::CrlWrongIssuer { .. }
                    | Error::UnsupportedAlgorithm { .. }
                    | Error::CrlNotYetValid { .. }
                    | Error::CrlExpired { .. })
            ),
            "body byte {i}: {r:?}"
        );
    }
    // The TBS body proper (after its header): a flip there that still parses is a bad
    // signature, or a wrong issuer when it lands in the name.
    let tbs = parsed.tbs.clone();
    for i in tbs.start + 4..tbs.end {
        let mut b = crl.clone();
        b[i] ^= 0x80;
        match check(&b, NOW) {
            Err(Error::CrlBadSignature { .. })
            | Err(Error::CrlWrongIssuer { .. })
            | Err(Error::CrlMalformed { .. })
            | Err(Error::UnsupportedAlgorithm { .. }) => {}
            other => panic!("TBS byte {i}: {other:?}"),
        }
    }
}
