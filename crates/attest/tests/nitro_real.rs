//! Nitro verification on a real, published attestation document (Evervault, 2023-09-07; see
//! `tests/data/real/README.md`): it verifies at a fixed time inside its chain's validity window
//! (its PCRs are zero: a debug-mode enclave, so policy refuses it), then the mutation matrix,
//! each case with its own error.

use std::path::PathBuf;

use base64::Engine as _;
use clave_attest::nitro::{NitroDocument, verify_document};
use clave_attest::{Error, Evidence, Measurement, Policy, ReportData, TeeKind, verify};

/// Inside the common window 2023-09-07T15:55:08Z ..= 18:55:11Z (leaf validity).
const NOW: u64 = 1_694_102_200;
const LEAF_NOT_BEFORE: u64 = 1_694_102_108;
const LEAF_NOT_AFTER: u64 = 1_694_112_911;

fn doc() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/real/nitro/evervault_attestation_doc.b64");
    let text: String = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

/// Byte offset of `needle` in `hay` (first occurrence).
fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present")
}

/// Re-encodes a document from parts with the same CBOR shape (untagged COSE_Sign1).
fn rebuild(protected: &[u8], payload: &[u8], sig: &[u8]) -> Vec<u8> {
    fn head(out: &mut Vec<u8>, major: u8, n: usize) {
        let m = major << 5;
        if n < 24 {
            out.push(m | n as u8);
        } else if n < 256 {
            out.extend([m | 24, n as u8]);
        } else if n < 65536 {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        } else {
            out.push(m | 26);
            out.extend((n as u32).to_be_bytes());
        }
    }
    let mut d = Vec::new();
    head(&mut d, 4, 4);
    head(&mut d, 2, protected.len());
    d.extend(protected);
    d.push(0xa0);
    head(&mut d, 2, payload.len());
    d.extend(payload);
    head(&mut d, 2, sig.len());
    d.extend(sig);
    d
}

#[test]
fn verifies_at_a_fixed_time_and_policy_refuses_debug() {
    let bytes = doc();
    let c = verify_document(&bytes, NOW).expect("genuine document verifies");
    assert_eq!(c.kind, TeeKind::Nitro);
    assert!(c.debug, "PCR0..2 are zero: debug mode");
    assert_eq!(c.issued_at, Some(1_694_102_161));
    assert_eq!(c.platform.registers.len(), 16);
    assert_eq!(
        c.platform.registers["pcr3"].to_hex(),
        "4a9329d69c836267b18abbf9f4a38889124490453419e426818626348d21f989dc930b1562682a9082887454e53425aa"
    );
    // Both ends of the leaf's window are inclusive.
    verify_document(&bytes, LEAF_NOT_BEFORE).expect("at notBefore");
    verify_document(&bytes, LEAF_NOT_AFTER).expect("at notAfter");

    // Through verify(): cryptography passes, the policy refuses debug.
    let policy =
        Policy::measurements([TeeKind::Nitro], [Measurement(vec![0; 48])]).expect("policy");
    let ev = Evidence::Nitro { document: bytes };
    assert!(matches!(
        verify(&ev, &policy, &c.report_data, NOW),
        Err(Error::DebugEnabled)
    ));
}

#[test]
fn time_outside_each_window() {
    let bytes = doc();
    for t in [
        0,
        LEAF_NOT_BEFORE - 1,
        LEAF_NOT_AFTER + 1,
        1_800_000_000,
        u64::MAX,
    ] {
        assert!(
            matches!(
                verify_document(&bytes, t),
                Err(Error::CertificateNotValidAt {
                    kind: TeeKind::Nitro,
                    ..
                })
            ),
            "t={t}"
        );
    }
}

#[test]
fn bit_flips_in_signed_regions_and_signature() {
    let good = doc();
    let d = NitroDocument::parse(&good).expect("parse");
    let payload_at = find(&good, &d.payload);
    let sig_at = good.len() - 96;
    // The protected header: {1: -35} -> {1: -36} (ES512): refused as an algorithm.
    let mut b = good.clone();
    let prot_at = find(&good, &[0x44, 0xa1, 0x01, 0x38, 0x22]) + 1;
    b[prot_at + 3] ^= 0x01;
    assert!(matches!(
        verify_document(&b, NOW),
        Err(Error::UnsupportedAlgorithm { .. })
    ));
    // Flips in the payload that keep it parseable (inside byte strings: PCRs, nonce,
    // user_data, module id text): the signature no longer verifies.
    let nonce = d.nonce.as_deref().expect("nonce");
    let ud = d.user_data.as_deref().expect("user_data");
    for needle in [nonce, ud, &d.pcrs[3].1[..], d.module_id.as_bytes()] {
        let at = find(&good, needle);
        for bit in [0u8, 1] {
            let mut b = good.clone();
            b[at + 5] ^= 1 << bit;
            assert!(
                matches!(
                    verify_document(&b, NOW),
                    Err(Error::BadSignature(TeeKind::Nitro))
                ),
                "payload flip at {}",
                at + 5
            );
        }
    }
    // A flip inside the leaf certificate (which sits in the payload): its own signature fails
    // first.
    let leaf_at = find(&good, &d.certificate);
    let mut b = good.clone();
    b[leaf_at + 200] ^= 0x01;
    assert!(matches!(
        verify_document(&b, NOW),
        Err(Error::BadCertificateSignature { .. }) | Err(Error::BadCertificate { .. })
    ));
    assert!(payload_at < sig_at);
    // Each signature byte (r and s).
    for i in [0usize, 1, 24, 47, 48, 49, 72, 95] {
        let mut b = good.clone();
        b[sig_at + i] ^= 0x01;
        assert!(
            matches!(
                verify_document(&b, NOW),
                Err(Error::BadSignature(TeeKind::Nitro)) | Err(Error::Malformed { .. })
            ),
            "sig byte {i}"
        );
    }
}

#[test]
fn signature_scalars_zero_or_out_of_range() {
    let good = doc();
    let d = NitroDocument::parse(&good).expect("parse");
    let n_p384 = hex::decode("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973").expect("hex");
    let mut cases: Vec<Vec<u8>> = Vec::new();
    let (r, s) = d.signature.split_at(48);
    cases.push([&[0u8; 48][..], s].concat()); // r = 0
    cases.push([r, &[0u8; 48][..]].concat()); // s = 0
    cases.push([&n_p384[..], s].concat()); // r = n
    cases.push([r, &[0xff; 48][..]].concat()); // s > n
    for (i, sig) in cases.iter().enumerate() {
        let b = rebuild(&d.protected, &d.payload, sig);
        assert!(
            matches!(verify_document(&b, NOW), Err(Error::Malformed { .. })),
            "case {i}"
        );
    }
    // Wrong signature length.
    let b = rebuild(&d.protected, &d.payload, &d.signature[..95]);
    assert!(matches!(
        verify_document(&b, NOW),
        Err(Error::Malformed { .. })
    ));
    // The unchanged parts rebuild to the original bytes (sanity of the helper).
    assert_eq!(rebuild(&d.protected, &d.payload, &d.signature), good);
}

/// Replaces one DER certificate inside the payload by another of the same length, or rebuilds
/// the payload's `cabundle`.
fn with_cabundle(good: &[u8], f: impl FnOnce(&mut Vec<Vec<u8>>)) -> Vec<u8> {
    let d = NitroDocument::parse(good).expect("parse");
    let mut bundle = d.cabundle.clone();
    f(&mut bundle);
    // Re-encode the cabundle array in the payload.
    let mut old_arr = Vec::new();
    enc_bstr_array(&mut old_arr, &d.cabundle);
    let mut new_arr = Vec::new();
    enc_bstr_array(&mut new_arr, &bundle);
    let at = find(&d.payload, &old_arr);
    let payload = [
        &d.payload[..at],
        &new_arr[..],
        &d.payload[at + old_arr.len()..],
    ]
    .concat();
    // The signature is now wrong, but the chain is checked first.
    rebuild(&d.protected, &payload, &d.signature)
}

fn enc_bstr_array(out: &mut Vec<u8>, items: &[Vec<u8>]) {
    out.push(0x80 | items.len() as u8);
    for it in items {
        let n = it.len();
        if n < 256 {
            out.extend([0x58, n as u8]);
        } else {
            out.push(0x59);
            out.extend((n as u16).to_be_bytes());
        }
        out.extend(it);
    }
}

#[test]
fn chain_mutations() {
    let good = doc();
    // A certificate dropped from the middle of the chain.
    let b = with_cabundle(&good, |c| {
        c.remove(2);
    });
    assert!(matches!(
        verify_document(&b, NOW),
        Err(Error::BadCertificate { .. }) | Err(Error::BadCertificateSignature { .. })
    ));
    // The root dropped: the first certificate is no longer the pinned root.
    let b = with_cabundle(&good, |c| {
        c.remove(0);
    });
    assert!(matches!(
        verify_document(&b, NOW),
        Err(Error::UntrustedRoot { .. })
    ));
    // A lookalike root: same names, another key (a P-384 key generated here, spliced into the
    // root's SubjectPublicKeyInfo).
    let b = with_cabundle(&good, |c| {
        let root = &mut c[0];
        let d = NitroDocument::parse(&good).expect("parse");
        let _ = d;
        let key = p384::ecdsa::SigningKey::from_slice(&[0x42; 48]).expect("key");
        let point = key.verifying_key().to_sec1_point(false);
        let at = find(root, &[0x03, 0x62, 0x00, 0x04]) + 3; // BIT STRING of 97 bytes
        root[at..at + 97].copy_from_slice(point.as_bytes());
    });
    assert!(matches!(
        verify_document(&b, NOW),
        Err(Error::UntrustedRoot { .. })
    ));
    // A flipped bit in an intermediate's TBS.
    let b = with_cabundle(&good, |c| {
        c[1][100] ^= 0x01;
    });
    assert!(matches!(
        verify_document(&b, NOW),
        Err(Error::BadCertificateSignature { .. }) | Err(Error::BadCertificate { .. })
    ));
    // A flipped bit in an intermediate's signature (last bytes of the DER).
    let b = with_cabundle(&good, |c| {
        let n = c[2].len();
        c[2][n - 3] ^= 0x01;
    });
    assert!(matches!(
        verify_document(&b, NOW),
        Err(Error::BadCertificateSignature { .. }) | Err(Error::BadCertificate { .. })
    ));
    // An empty bundle and an over-long bundle.
    let b = with_cabundle(&good, |c| {
        let r = c[0].clone();
        c.extend(std::iter::repeat_n(r, 8));
    });
    assert!(matches!(
        verify_document(&b, NOW),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn policy_refusals_on_claims() {
    // The real document is debug; the remaining policy checks are exercised on its verified
    // claims through appraise(), with debug cleared, to show each has its own error.
    let c0 = verify_document(&doc(), NOW).expect("verifies");
    let mut c = c0.clone();
    c.debug = false;
    let m = c.measurement.clone();
    let rd = c.report_data;
    let ok = Policy::measurements([TeeKind::Nitro], [m.clone()]).expect("policy");
    clave_attest::appraise(&c, &ok, &rd, NOW).expect("appraises");
    // Wrong measurement.
    let p = Policy::measurements([TeeKind::Nitro], [Measurement(vec![1; 48])]).expect("policy");
    assert!(matches!(
        clave_attest::appraise(&c, &p, &rd, NOW),
        Err(Error::MeasurementNotAllowed { .. })
    ));
    // Wrong report data (nonce).
    assert!(matches!(
        clave_attest::appraise(&c, &ok, &ReportData([9; 64]), NOW),
        Err(Error::UserDataMismatch)
    ));
    // PCR3 and PCR4 named by the policy: right and wrong.
    let mut p = ok.clone();
    p.registers.insert(
        TeeKind::Nitro,
        [("pcr4".to_string(), c.platform.registers["pcr4"].clone())].into(),
    );
    clave_attest::appraise(&c, &p, &rd, NOW).expect("pcr4 matches");
    p.registers
        .get_mut(&TeeKind::Nitro)
        .expect("nitro")
        .insert("pcr3".into(), Measurement(vec![0; 48]));
    assert!(matches!(
        clave_attest::appraise(&c, &p, &rd, NOW),
        Err(Error::RegisterMismatch { ref register, .. }) if register == "pcr3"
    ));
    // A register the document lacks.
    let mut p = ok.clone();
    p.registers.insert(
        TeeKind::Nitro,
        [("pcr20".to_string(), Measurement(vec![0; 48]))].into(),
    );
    assert!(matches!(
        clave_attest::appraise(&c, &p, &rd, NOW),
        Err(Error::RegisterMismatch { .. })
    ));
    // Too old for a max age.
    let mut p = ok.clone();
    p.max_evidence_age_secs = Some(10);
    assert!(matches!(
        clave_attest::appraise(&c, &p, &rd, NOW),
        Err(Error::Expired { .. })
    ));
}

#[test]
fn truncated_empty_and_garbage_never_panic() {
    let good = doc();
    assert!(matches!(
        verify_document(&[], NOW),
        Err(Error::Truncated { what: "CBOR" })
    ));
    for cut in (0..good.len()).step_by(97).chain([good.len() - 1]) {
        let r = verify_document(&good[..cut], NOW);
        assert!(
            matches!(r, Err(Error::Truncated { what: "CBOR" })),
            "cut {cut}: {r:?}"
        );
    }
    // A flipped byte breaks the structure, a certificate, or the signature: each is refused as
    // such (never as an I/O, policy or internal error).
    for p in (0..good.len()).step_by(13) {
        let mut b = good.clone();
        b[p] ^= 0x5a;
        let r = verify_document(&b, NOW);
        assert!(
            matches!(
                r,
                Err(Error::Truncated { .. }
                    | Error::TrailingBytes { .. }
                    | Error::Malformed { .. }
                    | Error::BadSignature(TeeKind::Nitro)
                    | Error::BadCertificate { .. }
                    | Error::BadCertificateSignature { .. }
                    | Error::UntrustedRoot { .. }
                    | Error::CertificateNotValidAt { .. }
                    | Error::UnsupportedAlgorithm { .. })
            ),
            "flip at {p}: {r:?}"
        );
    }
}
