//! SEV-SNP verification on real, published reports and VCEKs (Milan/Azure, Milan/GCP,
//! Genoa/Azure; see `tests/data/real/README.md`): each verifies at a fixed time inside its
//! validity window, then the mutation matrix, each case with its own error.

use clave_attest::snp::{SnpProduct, SnpReport, verify_report};
use clave_attest::{
    Endorsements, Error, Evidence, Measurement, Policy, ReportData, SignerId, SignerPolicy, Tcb,
    TeeKind, appraise, verify, verify_with_endorsements,
};

/// 2026-01-01T00:00:00Z: inside every VCEK's window.
const NOW: u64 = 1_767_225_600;

#[path = "common/real_data.rs"]
mod real_data;
use real_data::{hex_file, read};

struct Vector {
    name: &'static str,
    report: Vec<u8>,
    vcek: Vec<u8>,
    product: SnpProduct,
    tcb: [u16; 4],
    vcek_not_before: u64,
    vcek_not_after: u64,
}

fn vectors() -> Vec<Vector> {
    vec![
        Vector {
            name: "milan_azure",
            report: hex_file("snp/milan_azure_report.hex"),
            vcek: read("snp/milan_azure_vcek.pem"),
            product: SnpProduct::Milan,
            tcb: [4, 0, 24, 219],
            vcek_not_before: 1_737_662_290,
            vcek_not_after: 1_958_500_690,
        },
        Vector {
            name: "milan_gcp",
            report: hex_file("snp/milan_gcp_report.hex"),
            vcek: read("snp/milan_gcp_vcek.pem"),
            product: SnpProduct::Milan,
            tcb: [4, 0, 27, 222],
            vcek_not_before: 1_764_914_667,
            vcek_not_after: 1_985_839_467,
        },
        Vector {
            name: "genoa_azure",
            report: hex_file("snp/genoa_azure_report.hex"),
            vcek: read("snp/genoa_azure_vcek.pem"),
            product: SnpProduct::Genoa,
            tcb: [10, 0, 23, 84],
            vcek_not_before: 1_737_685_308,
            vcek_not_after: 1_958_523_708,
        },
    ]
}

fn chain_pem(p: SnpProduct) -> Vec<u8> {
    let n = p.name().to_lowercase();
    [
        read(&format!("roots/amd_{n}_ask.pem")),
        read(&format!("roots/amd_{n}_ark.pem")),
    ]
    .concat()
}

fn policy_for(m: &Measurement) -> Policy {
    Policy::measurements([TeeKind::SevSnp], [m.clone()]).expect("policy")
}

#[test]
fn real_reports_verify_at_a_fixed_time() {
    for v in vectors() {
        let c = verify_report(&v.report, &v.vcek, None, NOW)
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(c.kind, TeeKind::SevSnp);
        assert!(!c.debug, "{}", v.name);
        assert_eq!(c.tcb, Tcb(v.tcb.to_vec()), "{}", v.name);
        assert_eq!(c.measurement.as_bytes(), &v.report[0x90..0xC0]);
        assert_eq!(c.platform.vmpl, Some(0));
        // With AMD's cert_chain (ASK then ARK) supplied, too.
        let c2 = verify_report(&v.report, &v.vcek, Some(&chain_pem(v.product)), NOW)
            .unwrap_or_else(|e| panic!("{} with chain: {e}", v.name));
        assert_eq!(c2, c);
        // The window edges are inclusive.
        verify_report(&v.report, &v.vcek, None, v.vcek_not_before).expect("at notBefore");
        verify_report(&v.report, &v.vcek, None, v.vcek_not_after).expect("at notAfter");
        // Through verify_with_endorsements and the policy.
        let ev = Evidence::SevSnp {
            report: v.report.clone(),
            certs: None,
        };
        let e = Endorsements {
            snp_vcek: Some(v.vcek.clone()),
            ..Default::default()
        };
        let got =
            verify_with_endorsements(&ev, &e, &policy_for(&c.measurement), &c.report_data, NOW)
                .unwrap_or_else(|err| panic!("{}: {err}", v.name));
        assert_eq!(got, c);
        // Without a VCEK anywhere: a missing endorsement, not a crash.
        assert!(matches!(
            verify(&ev, &policy_for(&c.measurement), &c.report_data, NOW),
            Err(Error::MissingEndorsement {
                kind: TeeKind::SevSnp,
                ..
            })
        ));
    }
}

/// A GUID certificate table (as the host's `auxblob`) holding the VCEK.
fn cert_table(vcek_der: &[u8], ask_der: Option<&[u8]>) -> Vec<u8> {
    const VCEK: [u8; 16] = [
        0x8d, 0x75, 0xda, 0x63, 0x64, 0xe6, 0x64, 0x45, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac,
        0xcd,
    ];
    const ASK: [u8; 16] = [
        0x79, 0xb3, 0xb7, 0x4a, 0xac, 0xbb, 0xe4, 0x4f, 0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7,
        0x82,
    ];
    let entries: Vec<([u8; 16], &[u8])> = std::iter::once((VCEK, vcek_der))
        .chain(ask_der.map(|a| (ASK, a)))
        .collect();
    let header = 24 * (entries.len() + 1);
    let mut table = Vec::new();
    let mut data = Vec::new();
    for (guid, bytes) in &entries {
        table.extend_from_slice(guid);
        table.extend_from_slice(&((header + data.len()) as u32).to_le_bytes());
        table.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        data.extend_from_slice(bytes);
    }
    table.extend_from_slice(&[0; 24]);
    table.extend_from_slice(&data);
    table
}

fn pem_to_der(pem: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let t = String::from_utf8(pem.to_vec()).expect("utf-8");
    let b64: String = t
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("b64")
}

#[test]
fn plain_verify_works_with_the_certificate_table() {
    let v = &vectors()[0];
    let vcek = pem_to_der(&v.vcek);
    let ask = pem_to_der(&read("roots/amd_milan_ask.pem"));
    for table in [cert_table(&vcek, None), cert_table(&vcek, Some(&ask))] {
        let ev = Evidence::SevSnp {
            report: v.report.clone(),
            certs: Some(table),
        };
        let m = Measurement(v.report[0x90..0xC0].to_vec());
        let c = verify(&ev, &policy_for(&m), &ReportData::ZERO, NOW).expect("verifies");
        assert_eq!(c.measurement, m);
        // And it survives the wire form.
        let back = Evidence::from_bytes(&ev.to_bytes()).expect("decode");
        verify(&back, &policy_for(&m), &ReportData::ZERO, NOW).expect("verifies again");
    }
    // A table pointing outside itself.
    let mut bad = cert_table(&vcek, None);
    bad[16] = 0xff;
    let ev = Evidence::SevSnp {
        report: v.report.clone(),
        certs: Some(bad),
    };
    let m = Measurement(v.report[0x90..0xC0].to_vec());
    assert!(matches!(
        verify(&ev, &policy_for(&m), &ReportData::ZERO, NOW),
        Err(Error::Malformed { .. })
    ));
}

/// Offsets of fields whose corruption is a structural error before any signature check.
fn structural(off: usize) -> bool {
    (0x00..0x04).contains(&off) // version
        || (0x30..0x38).contains(&off) // vmpl, signature algorithm
        || (0x48..0x4C).contains(&off) // key info (signing key)
        || (0x180..0x188).contains(&off) // reported TCB: VCEK extension mismatch
        || (0x1A0..0x1E0).contains(&off) // chip id: VCEK hwID mismatch
}

#[test]
fn one_bit_flipped_in_the_signed_region() {
    let v = &vectors()[0];
    for off in (0..0x2A0)
        .step_by(5)
        .chain([0x1E8, 0x29F, 0x04, 0x08, 0x0A, 0x50, 0x90, 0xC0])
    {
        let mut r = v.report.clone();
        r[off] ^= 0x04;
        let got = verify_report(&r, &v.vcek, None, NOW);
        if structural(off) {
            // Each structural field fails its own check, before the signature.
            let ok = match off {
                0x00..0x04 => matches!(got, Err(Error::UnsupportedVersion { .. })),
                0x30..0x38 => matches!(
                    got,
                    Err(Error::Malformed { .. } | Error::UnsupportedAlgorithm { .. })
                ),
                // Key info: the signing-key selector is checked; its other bits only by the
                // signature.
                0x48..0x4C => matches!(
                    got,
                    Err(Error::Malformed { .. } | Error::BadSignature(TeeKind::SevSnp))
                ),
                _ => matches!(got, Err(Error::EndorsementMismatch { .. })),
            };
            assert!(ok, "offset {off:#x}: {got:?}");
        } else {
            assert!(
                matches!(got, Err(Error::BadSignature(TeeKind::SevSnp))),
                "offset {off:#x}: {got:?}"
            );
        }
    }
    // The debug bit (guest policy bit 19) in particular: the signature no longer verifies; the
    // flipped report parses as debug.
    let mut r = v.report.clone();
    r[0x0A] |= 0x08;
    assert!(SnpReport::parse(&r).expect("parse").debug());
    assert!(matches!(
        verify_report(&r, &v.vcek, None, NOW),
        Err(Error::BadSignature(TeeKind::SevSnp))
    ));
    // Reported TCB and chip id: the VCEK no longer matches the report.
    let mut r = v.report.clone();
    r[0x186] ^= 0x01; // SNP SPL
    assert!(matches!(
        verify_report(&r, &v.vcek, None, NOW),
        Err(Error::EndorsementMismatch { .. })
    ));
    let mut r = v.report.clone();
    r[0x1A5] ^= 0x01;
    assert!(matches!(
        verify_report(&r, &v.vcek, None, NOW),
        Err(Error::EndorsementMismatch { .. })
    ));
}

#[test]
fn signature_field_mutations() {
    let v = &vectors()[0];
    let sig = 0x2A0;
    let check = |mutate: &dyn Fn(&mut Vec<u8>), want: &dyn Fn(&Error) -> bool, what: &str| {
        let mut r = v.report.clone();
        mutate(&mut r);
        let err = verify_report(&r, &v.vcek, None, NOW).expect_err(what);
        assert!(want(&err), "{what}: {err:?}");
    };
    let bad_sig = |e: &Error| matches!(e, Error::BadSignature(TeeKind::SevSnp));
    let malformed = |e: &Error| matches!(e, Error::Malformed { .. });
    check(&|r| r[sig] ^= 1, &bad_sig, "r low byte");
    check(&|r| r[sig + 47] ^= 1, &bad_sig, "r high byte");
    check(&|r| r[sig + 72] ^= 1, &bad_sig, "s low byte");
    check(&|r| r[sig + 72 + 47] ^= 1, &bad_sig, "s high byte");
    // Junk in the padding of r and s (sev would ignore it).
    check(&|r| r[sig + 48] = 1, &malformed, "r padding");
    check(&|r| r[sig + 71] = 0x80, &malformed, "r padding top");
    check(&|r| r[sig + 72 + 60] = 1, &malformed, "s padding");
    // Junk in the reserved tail of the signature field.
    check(&|r| r[sig + 200] = 1, &malformed, "reserved");
    check(&|r| r[0x49F] = 1, &malformed, "last byte");
    // r or s zero, or not below the group order n.
    check(&|r| r[sig..sig + 48].fill(0), &malformed, "r = 0");
    check(&|r| r[sig + 72..sig + 120].fill(0), &malformed, "s = 0");
    check(&|r| r[sig..sig + 48].fill(0xff), &malformed, "r > n");
    let n_le: Vec<u8> = hex::decode("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973")
        .expect("hex")
        .into_iter()
        .rev()
        .collect();
    check(
        &|r| r[sig + 72..sig + 120].copy_from_slice(&n_le),
        &malformed,
        "s = n",
    );
}

#[test]
fn chain_mutations() {
    let v = &vectors()[0];
    let ask = read("roots/amd_milan_ask.pem");
    let ark = read("roots/amd_milan_ark.pem");
    // A lookalike ARK: same names, another RSA key (a modulus byte changed): not pinned.
    let mut fake_ark = pem_to_der(&ark);
    let at = fake_ark.len() - 600; // inside the 4096-bit modulus
    fake_ark[at] ^= 0x01;
    let chain = [pem_to_der(&ask), fake_ark.clone()];
    let pem = |ders: &[Vec<u8>]| {
        use base64::Engine as _;
        ders.iter()
            .map(|d| {
                format!(
                    "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                    base64::engine::general_purpose::STANDARD.encode(d)
                )
            })
            .collect::<String>()
            .into_bytes()
    };
    assert!(matches!(
        verify_report(&v.report, &v.vcek, Some(&pem(&chain)), NOW),
        Err(Error::UntrustedRoot {
            kind: TeeKind::SevSnp,
            ..
        })
    ));
    // The ARK of another product.
    let wrong = [
        pem_to_der(&ask),
        pem_to_der(&read("roots/amd_genoa_ark.pem")),
    ];
    assert!(matches!(
        verify_report(&v.report, &v.vcek, Some(&pem(&wrong)), NOW),
        Err(Error::UntrustedRoot { .. })
    ));
    // The ASK dropped (only the ARK given, in the ASK's place).
    assert!(matches!(
        verify_report(&v.report, &v.vcek, Some(&ark), NOW),
        Err(Error::BadCertificateSignature { .. })
    ));
    // The Genoa ASK in place of the Milan one.
    assert!(matches!(
        verify_report(
            &v.report,
            &v.vcek,
            Some(&read("roots/amd_genoa_ask.pem")),
            NOW
        ),
        Err(Error::BadCertificateSignature { .. })
    ));
    // A bit flipped in the ASK's TBS and in the VCEK's signature.
    let mut ask_der = pem_to_der(&ask);
    ask_der[300] ^= 0x01;
    assert!(matches!(
        verify_report(&v.report, &v.vcek, Some(&ask_der), NOW),
        Err(Error::BadCertificateSignature { .. }) | Err(Error::BadCertificate { .. })
    ));
    let mut vcek_der = pem_to_der(&v.vcek);
    let n = vcek_der.len();
    vcek_der[n - 5] ^= 0x01;
    assert!(matches!(
        verify_report(&v.report, &vcek_der, None, NOW),
        Err(Error::BadCertificateSignature { .. })
    ));
    // Another chip's VCEK (same product).
    let other = &vectors()[1];
    assert!(matches!(
        verify_report(&v.report, &other.vcek, None, NOW),
        Err(Error::EndorsementMismatch { .. })
    ));
    // An empty or garbage VCEK.
    for bad in [&b""[..], b"garbage", &[0x30, 0x03, 0x02, 0x01, 0x00]] {
        assert!(matches!(
            verify_report(&v.report, bad, None, NOW),
            Err(Error::BadCertificate { .. })
        ));
    }
    // Three certificates where ASK, ARK are expected.
    let three = [pem_to_der(&ask), pem_to_der(&ark), pem_to_der(&ark)];
    assert!(matches!(
        verify_report(&v.report, &v.vcek, Some(&pem(&three)), NOW),
        Err(Error::BadCertificate { .. })
    ));
}

#[test]
fn time_outside_each_window() {
    for v in vectors() {
        for t in [0, v.vcek_not_before - 1, v.vcek_not_after + 1, u64::MAX] {
            assert!(
                matches!(
                    verify_report(&v.report, &v.vcek, None, t),
                    Err(Error::CertificateNotValidAt { .. })
                ),
                "{} t={t}",
                v.name
            );
        }
    }
    // Before the Milan ARK/ASK existed (2020-10-22) the VCEK is invalid too; after the ASK
    // expires (2045) as well: the error names the certificate.
    let v = &vectors()[0];
    let err = verify_report(&v.report, &v.vcek, None, 2_400_000_000).expect_err("2046");
    assert!(
        err.to_string().contains("ASK")
            || err.to_string().contains("ARK")
            || err.to_string().contains("VCEK"),
        "{err}"
    );
}

#[test]
fn masked_chip_id_unknown_versions_and_signing_keys() {
    let v = &vectors()[0];
    let mut r = v.report.clone();
    r[0x1A0..0x1E0].fill(0);
    assert!(matches!(
        verify_report(&r, &v.vcek, None, NOW),
        Err(Error::ChipIdMasked)
    ));
    for version in [0u32, 1, 6, 0xffff_ffff] {
        let mut r = v.report.clone();
        r[..4].copy_from_slice(&version.to_le_bytes());
        assert!(matches!(
            verify_report(&r, &v.vcek, None, NOW),
            Err(Error::UnsupportedVersion { .. })
        ));
    }
    // VLEK-signed (KEY_INFO[4:2] = 1) and unsigned (7).
    for ki in [0x04u8, 0x1c] {
        let mut r = v.report.clone();
        r[0x48] |= ki;
        assert!(matches!(
            verify_report(&r, &v.vcek, None, NOW),
            Err(Error::UnsupportedAlgorithm { .. })
        ));
    }
    // Unknown signature algorithm.
    let mut r = v.report.clone();
    r[0x34] = 2;
    assert!(matches!(
        verify_report(&r, &v.vcek, None, NOW),
        Err(Error::Malformed { .. })
    ));
    // Truncated and empty.
    for cut in [0, 1, 0x2A0, 0x49F] {
        assert!(matches!(
            verify_report(&v.report[..cut], &v.vcek, None, NOW),
            Err(Error::Truncated { .. })
        ));
    }
    let mut long = v.report.clone();
    long.push(0);
    assert!(matches!(
        verify_report(&long, &v.vcek, None, NOW),
        Err(Error::TrailingBytes { .. })
    ));
}

#[test]
fn policy_refusals() {
    let v = &vectors()[2]; // Genoa: has an ID key digest and a guest SVN.
    let c = verify_report(&v.report, &v.vcek, None, NOW).expect("verifies");
    let rd = c.report_data;
    let ok = policy_for(&c.measurement);
    appraise(&c, &ok, &rd, NOW).expect("accepted");
    // Wrong measurement, wrong report data.
    assert!(matches!(
        appraise(&c, &policy_for(&Measurement(vec![0; 48])), &rd, NOW),
        Err(Error::MeasurementNotAllowed { .. })
    ));
    assert!(matches!(
        appraise(&c, &ok, &ReportData::ZERO, NOW),
        Err(Error::UserDataMismatch)
    ));
    // TCB below the floor, and at it.
    let mut p = ok.clone();
    p.min_tcb.insert(TeeKind::SevSnp, Tcb(vec![10, 0, 23, 84]));
    appraise(&c, &p, &rd, NOW).expect("at the floor");
    p.min_tcb.insert(TeeKind::SevSnp, Tcb(vec![10, 0, 24, 84]));
    assert!(matches!(
        appraise(&c, &p, &rd, NOW),
        Err(Error::TcbTooLow { .. })
    ));
    // Signer = ID key digest with a minimum guest SVN.
    let id = SignerId(v.report[0xE0..0x110].to_vec());
    let signer = |min_svn| {
        Policy::signer(
            [TeeKind::SevSnp],
            SignerPolicy {
                id: id.clone(),
                product_id: None,
                min_svn,
            },
        )
        .expect("policy")
    };
    appraise(&c, &signer(65547), &rd, NOW).expect("signer");
    assert!(matches!(
        appraise(&c, &signer(65548), &rd, NOW),
        Err(Error::SvnTooLow { .. })
    ));
    // Registers: family id right, host data wrong.
    let mut p = ok.clone();
    p.registers.insert(
        TeeKind::SevSnp,
        [(
            "family_id".to_string(),
            Measurement(hex::decode("01232000000000000000000000000000").expect("hex")),
        )]
        .into(),
    );
    appraise(&c, &p, &rd, NOW).expect("family id");
    p.registers
        .get_mut(&TeeKind::SevSnp)
        .expect("snp")
        .insert("host_data".into(), Measurement(vec![1; 32]));
    assert!(matches!(
        appraise(&c, &p, &rd, NOW),
        Err(Error::RegisterMismatch { .. })
    ));
    // Debug and VMPL on claims (a genuine report with these cannot be made here).
    let mut d = c.clone();
    d.debug = true;
    assert!(matches!(
        appraise(&d, &ok, &rd, NOW),
        Err(Error::DebugEnabled)
    ));
    let mut d = c.clone();
    d.platform.vmpl = Some(2);
    assert!(matches!(
        appraise(&d, &ok, &rd, NOW),
        Err(Error::VmplNotAllowed { vmpl: 2, max: 0 })
    ));
    let mut p = ok.clone();
    p.snp.max_vmpl = 2;
    appraise(&d, &p, &rd, NOW).expect("vmpl 2 allowed");
}

#[test]
fn builtin_arks_are_the_pinned_ones() {
    use sha2::Digest as _;
    for p in SnpProduct::ALL {
        assert_eq!(
            hex::encode(sha2::Sha256::digest(p.ark_der())),
            p.ark_sha256()
        );
        assert_eq!(
            pem_to_der(&read(&format!(
                "roots/amd_{}_ark.pem",
                p.name().to_lowercase()
            ))),
            p.ark_der()
        );
    }
}
