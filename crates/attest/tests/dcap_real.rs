//! TDX and SGX DCAP verification (dcap-qvl, RustCrypto) on real published quotes and Intel
//! collateral (see `tests/data/real/README.md`), at fixed times inside the collateral window,
//! then the main mutations.

use clave_attest::dcap::{DcapCollateral, verify_quote};
use clave_attest::{
    Endorsements, Error, Evidence, Measurement, Policy, TcbStatus, TeeKind, appraise,
    verify_with_endorsements,
};

const TDX_NOW: u64 = 1_757_894_400; // 2025-09-15
const SGX_NOW: u64 = 1_755_236_700; // 2025-08-15T05:45Z

#[path = "common/real_data.rs"]
mod real_data;
use real_data::{hex_file, read_text as read};

fn cases() -> [(TeeKind, Vec<u8>, DcapCollateral, u64); 2] {
    [
        (
            TeeKind::Tdx,
            hex_file("tdx/tdx_quote_v4.hex"),
            DcapCollateral::from_json(&read("tdx/tdx_collateral.json")).expect("collateral"),
            TDX_NOW,
        ),
        (
            TeeKind::SgxDcap,
            hex_file("sgx/sgx_quote_v3.hex"),
            DcapCollateral::from_json(&read("sgx/sgx_collateral.json")).expect("collateral"),
            SGX_NOW,
        ),
    ]
}

#[test]
fn real_quotes_verify_and_statuses_are_gated() {
    for (kind, quote, col, now) in cases() {
        let c =
            verify_quote(kind, &quote, Some(&col), now).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(c.kind, kind);
        assert!(c.platform.tcb_status.is_some());
        let ev = match kind {
            TeeKind::Tdx => Evidence::Tdx {
                quote: quote.clone(),
            },
            _ => Evidence::SgxDcap {
                quote: quote.clone(),
            },
        };
        let e = Endorsements {
            dcap: Some(col.clone()),
            ..Default::default()
        };
        let mut p = Policy::measurements([kind], [c.measurement.clone()]).expect("policy");
        // Accept whatever status this (old) sample has, so the rest of the pipeline is shown;
        // the default (UpToDate only) is checked below.
        let status = c.platform.tcb_status.clone().expect("status");
        let all = [
            TcbStatus::UpToDate,
            TcbStatus::SWHardeningNeeded,
            TcbStatus::ConfigurationNeeded,
            TcbStatus::ConfigurationAndSWHardeningNeeded,
            TcbStatus::OutOfDate,
            TcbStatus::OutOfDateConfigurationNeeded,
        ];
        p.dcap.accepted_tcb_statuses = all.to_vec();
        let got = verify_with_endorsements(&ev, &e, &p, &c.report_data, now);
        if c.debug {
            assert!(matches!(got, Err(Error::DebugEnabled)), "{kind}: {got:?}");
        } else {
            assert_eq!(got.expect("accepted"), c);
        }
        let mut strict = p.clone();
        strict.dcap.accepted_tcb_statuses = vec![TcbStatus::UpToDate];
        if status != "UpToDate" {
            let mut nd = c.clone();
            nd.debug = false;
            assert!(matches!(
                appraise(&nd, &strict, &c.report_data, now),
                Err(Error::TcbStatusNotAccepted { .. })
            ));
        }
        // Platform flags: refusing one that is set.
        let mut nd = c.clone();
        nd.debug = false;
        nd.platform.tcb_status = Some("UpToDate".into());
        nd.platform.platform_flags = vec!["smt_enabled".into()];
        appraise(&nd, &strict, &c.report_data, now).expect("default allows SMT");
        strict.dcap.allow_smt = false;
        assert!(matches!(
            appraise(&nd, &strict, &c.report_data, now),
            Err(Error::PlatformFlagNotAllowed {
                flag: "smt_enabled",
                ..
            })
        ));
        // Wrong measurement.
        let wrong = Policy::measurements(
            [kind],
            [Measurement(vec![7; c.measurement.as_bytes().len()])],
        )
        .expect("p");
        assert!(matches!(
            appraise(&nd, &wrong, &c.report_data, now),
            Err(Error::MeasurementNotAllowed { .. })
        ));
        eprintln!(
            "{kind}: status {status}, flags {:?}, debug {}",
            c.platform.platform_flags, c.debug
        );
    }
}

#[test]
fn mutations() {
    for (kind, quote, col, now) in cases() {
        // Missing collateral.
        assert!(matches!(
            verify_quote(kind, &quote, None, now),
            Err(Error::MissingEndorsement { .. })
        ));
        // Collateral time windows: long before and after.
        for t in [1_500_000_000, 1_900_000_000] {
            assert!(
                matches!(
                    verify_quote(kind, &quote, Some(&col), t),
                    Err(Error::QuoteVerification { .. })
                ),
                "{kind} t={t}"
            );
        }
        // One bit in the header, in the signed body, in the QE report.
        let body_len = if kind == TeeKind::Tdx { 584 } else { 384 };
        let sig_at = 48 + body_len + 4;
        for off in [10, 48 + 10, 48 + 300, sig_at + 150] {
            let mut q = quote.clone();
            q[off] ^= 0x01;
            let r = verify_quote(kind, &q, Some(&col), now);
            assert!(
                matches!(r, Err(Error::QuoteVerification { kind: k, .. }) if k == kind),
                "{kind} off {off}: {r:?}"
            );
        }
        for off in [sig_at, sig_at + 40] {
            let mut q = quote.clone();
            q[off] ^= 0x01;
            assert!(matches!(
                verify_quote(kind, &q, Some(&col), now),
                Err(Error::QuoteVerification { .. })
            ));
        }
        // Collateral: a bit in the TCB info signature, the QE identity body.
        let mut c2 = col.clone();
        c2.tcb_info_signature[5] ^= 1;
        let r = verify_quote(kind, &quote, Some(&c2), now);
        assert!(
            matches!(r, Err(Error::QuoteVerification { kind: k, .. }) if k == kind),
            "{r:?}"
        );
        let mut c2 = col.clone();
        c2.qe_identity = c2.qe_identity.replacen("\"version\":2", "\"version\":3", 1);
        let r = verify_quote(kind, &quote, Some(&c2), now);
        assert!(
            matches!(r, Err(Error::QuoteVerification { kind: k, .. }) if k == kind),
            "{r:?}"
        );
        // Truncated and empty.
        let declared =
            u32::from_le_bytes(quote[48 + body_len..sig_at].try_into().expect("4")) as usize;
        for cut in [0, 10, 48, 48 + body_len, sig_at + declared - 1] {
            let r = verify_quote(kind, &quote[..cut], Some(&col), now);
            assert!(
                matches!(r, Err(Error::Truncated { .. })),
                "{kind} cut {cut}: {r:?}"
            );
        }
    }
    // Another kind's quote under this kind.
    let [(_, tdx, tcol, tnow), (_, sgx, _, _)] = cases();
    let r = verify_quote(TeeKind::SgxDcap, &tdx, Some(&tcol), tnow);
    assert!(
        matches!(
            r,
            Err(Error::UnsupportedVersion {
                what: "SGX quote",
                version: 4
            })
        ),
        "{r:?}"
    );
    let r = verify_quote(TeeKind::Tdx, &sgx, Some(&tcol), tnow);
    assert!(
        matches!(
            r,
            Err(Error::Malformed {
                what: "TDX quote",
                reason: "TEE type is not TDX"
            })
        ),
        "{r:?}"
    );
    assert!(matches!(
        DcapCollateral::from_json("{}"),
        Err(Error::Malformed {
            what: "DCAP collateral JSON",
            ..
        })
    ));
}
