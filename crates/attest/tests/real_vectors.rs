//! Boundary tests: the structural parsers against real evidence from hardware
//! (`tests/data/real/`). Cryptographic verification of these is a later issue; here we check
//! that each parses, that its fields land where they should (values cross-checked against the
//! platforms' known TCB versions), that corruption never panics, and that `verify` refuses each
//! one as unsupported instead of accepting it. Files are read at run time; a missing vector fails
//! with its path.

use base64::Engine as _;
use clave_attest::nitro::NitroDocument;
use clave_attest::sgx::SgxQuote;
use clave_attest::snp::SnpReport;
use clave_attest::tdx::TdxQuote;
use clave_attest::{Error, Evidence, Measurement, Policy, ReportData, Tcb, TeeKind, verify};

const NOW: u64 = 1_800_000_000;

#[path = "common/real_data.rs"]
mod real_data;
use real_data::{compact_text as text, hex_file};

fn nitro_doc() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text("nitro/evervault_attestation_doc.b64"))
        .expect("base64")
}

fn all_kinds_policy() -> Policy {
    Policy::measurements(
        [
            TeeKind::SevSnp,
            TeeKind::Tdx,
            TeeKind::SgxDcap,
            TeeKind::Nitro,
        ],
        [Measurement(vec![0; 48])],
    )
    .expect("valid")
}

/// Wire round trip; `verify_evidence` (no time, no endorsements) refuses real evidence as
/// unsupported, and `verify` without endorsements does not accept it either.
fn check_envelope_and_unsupported(ev: Evidence) {
    let kind = ev.kind();
    assert_eq!(Evidence::from_bytes(&ev.to_bytes()).expect("decode"), ev);
    let json = serde_json::to_string(&ev).expect("json");
    assert_eq!(
        serde_json::from_str::<Evidence>(&json).expect("json back"),
        ev
    );
    assert!(matches!(
        clave_attest::verify_evidence(&ev),
        Err(Error::Unsupported(k)) if k == kind
    ));
    // SEV-SNP and DCAP need endorsements (none given); the Nitro document carries its chain,
    // whose certificates have expired at NOW.
    let r = verify(&ev, &all_kinds_policy(), &ReportData::ZERO, NOW);
    let refused = match kind {
        TeeKind::Nitro => {
            matches!(
                r,
                Err(Error::CertificateNotValidAt {
                    kind: TeeKind::Nitro,
                    ..
                })
            )
        }
        _ => matches!(r, Err(Error::MissingEndorsement { kind: k, .. }) if k == kind),
    };
    assert!(refused, "{kind}: {r:?}");
}

#[test]
fn snp_reports_parse() {
    // (file, version, reported TCB [boot loader, tee, snp, microcode], has signer)
    let cases = [
        ("snp/milan_azure_report.hex", 3, [4, 0, 24, 219], true),
        ("snp/milan_gcp_report.hex", 5, [4, 0, 27, 222], false),
        ("snp/genoa_azure_report.hex", 3, [10, 0, 23, 84], true),
    ];
    for (file, version, tcb, has_signer) in cases {
        let bytes = hex_file(file);
        let r = SnpReport::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(r.version, version, "{file}");
        assert!(!r.debug(), "{file}");
        let c = r.claims_unverified();
        assert_eq!(c.tcb, Tcb(tcb.to_vec()), "{file}");
        assert_eq!(c.signer.is_some(), has_signer, "{file}");
        assert_eq!(c.measurement.as_bytes(), &bytes[0x90..0xC0]);
        assert_eq!(c.report_data.as_bytes(), &bytes[0x50..0x90]);
        assert!(!c.insecure);

        // Setting policy bit 19 makes it a debug report.
        let mut dbg = bytes.clone();
        dbg[0x0A] |= 0x08;
        assert!(SnpReport::parse(&dbg).expect("parse").debug());

        // Truncation at each field boundary.
        for cut in [0, 4, 8, 0x10, 0x38, 0x50, 0x90, 0x180, 0x2A0, 0x4A0 - 1] {
            assert!(
                matches!(
                    SnpReport::parse(&bytes[..cut]),
                    Err(Error::Truncated { .. })
                ),
                "{file} cut {cut}"
            );
        }
        check_envelope_and_unsupported(Evidence::SevSnp {
            report: bytes,
            certs: None,
        });
    }
}

#[test]
fn snp_milan_known_measurement() {
    let r = SnpReport::parse(&hex_file("snp/milan_azure_report.hex")).expect("parse");
    assert_eq!(
        hex::encode(r.measurement),
        "5feee30d6d7e1a29f403d70a4198237ddfb13051a2d6976439487c609388ed7f98189887920ab2fa0096903a0c23fca1"
    );
}

#[test]
fn tdx_quote_parses() {
    let bytes = hex_file("tdx/tdx_quote_v4.hex");
    let q = TdxQuote::parse(&bytes).expect("parse");
    assert_eq!(q.version, 4);
    let c = q.claims_unverified();
    assert!(!c.debug);
    assert_eq!(c.tcb.0.len(), 16);
    // MRTD at quote offset 48 + 136, REPORTDATA at 48 + 520.
    assert_eq!(c.measurement.as_bytes(), &bytes[184..232]);
    assert_eq!(c.report_data.as_bytes(), &bytes[568..632]);
    for cut in [0, 47, 48, 184, 631] {
        let r = TdxQuote::parse(&bytes[..cut]);
        assert!(
            matches!(r, Err(Error::Truncated { what: "TDX quote" })),
            "cut {cut}: {r:?}"
        );
    }
    check_envelope_and_unsupported(Evidence::Tdx { quote: bytes });
}

#[test]
fn sgx_quote_parses() {
    let bytes = hex_file("sgx/sgx_quote_v3.hex");
    let q = SgxQuote::parse(&bytes).expect("parse");
    let c = q.claims_unverified();
    assert!(!c.debug);
    // CPUSVN 0e0e100fffff01000000000000000000 and PCESVN 14, as in Intel's sample quotes.
    assert_eq!(
        c.tcb,
        Tcb(vec![
            14, 14, 16, 15, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 14
        ])
    );
    assert_eq!(c.measurement.as_bytes(), &bytes[48 + 64..48 + 96]);
    assert_eq!(
        c.signer.as_ref().map(|s| s.as_bytes()),
        Some(&bytes[48 + 128..48 + 160])
    );
    for cut in [0, 47, 48, 48 + 383] {
        assert!(
            matches!(SgxQuote::parse(&bytes[..cut]), Err(Error::Truncated { .. })),
            "cut {cut}"
        );
    }
    check_envelope_and_unsupported(Evidence::SgxDcap { quote: bytes });
}

#[test]
fn nitro_document_parses() {
    let bytes = nitro_doc();
    let d = NitroDocument::parse(&bytes).expect("parse");
    assert_eq!(d.module_id, "i-0644948d93f19c17b-enc018a705a4fc6e067");
    assert_eq!(d.digest, "SHA384");
    assert_eq!(d.timestamp_ms, 1_694_102_161_556);
    assert_eq!(d.pcrs.len(), 16);
    assert!(!d.cabundle.is_empty());
    assert!(!d.certificate.is_empty());
    // This document's user_data is 91 bytes: not clave report data, so the report data is
    // the documented hash binding of public_key, user_data and nonce.
    let c = d.claims_unverified().expect("claims");
    assert_eq!(
        c.report_data,
        clave_attest::nitro::nitro_binding(
            d.public_key.as_deref(),
            d.user_data.as_deref(),
            d.nonce.as_deref()
        )
    );
    assert!(c.debug, "zero PCRs");
    for cut in [0, 1, 10, bytes.len() / 2, bytes.len() - 1] {
        let r = NitroDocument::parse(&bytes[..cut]);
        assert!(
            matches!(r, Err(Error::Truncated { what: "CBOR" })),
            "cut {cut}: {r:?}"
        );
    }
    check_envelope_and_unsupported(Evidence::Nitro { document: bytes });
}

#[test]
fn corrupting_real_vectors_never_panics() {
    let vectors = [
        hex_file("snp/milan_azure_report.hex"),
        hex_file("tdx/tdx_quote_v4.hex"),
        hex_file("sgx/sgx_quote_v3.hex"),
        nitro_doc(),
    ];
    for (i, v) in vectors.iter().enumerate() {
        // Every byte of the first 1 KiB (all headers and bodies), then every 7th byte.
        let positions = (0..v.len()).filter(|p| *p < 1024 || p % 7 == 0);
        for p in positions {
            let mut b = v.clone();
            b[p] ^= 0xff;
            match i {
                0 => drop(SnpReport::parse(&b)),
                1 => drop(TdxQuote::parse(&b)),
                2 => drop(SgxQuote::parse(&b)),
                _ => drop(NitroDocument::parse(&b)),
            }
        }
    }
}
