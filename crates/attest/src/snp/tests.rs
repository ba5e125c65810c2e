use super::*;

/// A structurally valid synthetic report (not signed).
pub(crate) fn synthetic_report() -> Vec<u8> {
    let mut r = vec![0u8; SNP_REPORT_LEN];
    r[OFF_VERSION..OFF_VERSION + 4].copy_from_slice(&3u32.to_le_bytes());
    r[OFF_GUEST_SVN..OFF_GUEST_SVN + 4].copy_from_slice(&7u32.to_le_bytes());
    r[OFF_POLICY..OFF_POLICY + 8].copy_from_slice(&0x30000u64.to_le_bytes());
    r[OFF_SIG_ALGO..OFF_SIG_ALGO + 4].copy_from_slice(&1u32.to_le_bytes());
    let tcb = u64::from_le_bytes([3, 0, 0, 0, 0, 0, 8, 115]);
    r[OFF_REPORTED_TCB..OFF_REPORTED_TCB + 8].copy_from_slice(&tcb.to_le_bytes());
    r[OFF_REPORT_DATA..OFF_REPORT_DATA + 64].fill(0xab);
    r[OFF_MEASUREMENT..OFF_MEASUREMENT + 48].fill(0xcd);
    r[OFF_ID_KEY_DIGEST..OFF_ID_KEY_DIGEST + 48].fill(0x11);
    r[OFF_AUTHOR_KEY_DIGEST..OFF_AUTHOR_KEY_DIGEST + 48].fill(0x22);
    r
}

#[test]
fn parses_fields_at_their_offsets() {
    let r = SnpReport::parse(&synthetic_report()).expect("parse");
    assert_eq!(r.version, 3);
    assert_eq!(r.guest_svn, 7);
    assert!(!r.debug());
    assert_eq!(r.measurement, [0xcd; 48]);
    assert_eq!(r.report_data, ReportData([0xab; 64]));
    assert_eq!(r.signed.len(), 0x2A0);
    assert_eq!(r.signature.len(), 0x200);
    let c = r.claims_unverified();
    assert_eq!(c.tcb, Tcb(vec![3, 0, 8, 115]));
    assert_eq!(c.signer, Some(SignerId(vec![0x11; 48])));
    assert!(!c.insecure);
}

#[test]
fn debug_bit_and_author_key() {
    let mut b = synthetic_report();
    b[OFF_POLICY + 2] |= 0x08; // bit 19
    b[OFF_KEY_INFO] = 1;
    let r = SnpReport::parse(&b).expect("parse");
    assert!(r.debug());
    assert!(r.claims_unverified().debug);
    assert_eq!(r.claims_unverified().signer, Some(SignerId(vec![0x22; 48])));
}

#[test]
fn negative() {
    let good = synthetic_report();
    for len in [0, 1, 0x2A0, SNP_REPORT_LEN - 1] {
        assert!(matches!(
            SnpReport::parse(&good[..len]),
            Err(Error::Truncated { .. })
        ));
    }
    let mut long = good.clone();
    long.push(0);
    assert!(matches!(
        SnpReport::parse(&long),
        Err(Error::TrailingBytes { count: 1, .. })
    ));
    for v in [0u32, 1, 6, u32::MAX] {
        let mut b = good.clone();
        b[..4].copy_from_slice(&v.to_le_bytes());
        assert!(matches!(
            SnpReport::parse(&b),
            Err(Error::UnsupportedVersion { .. })
        ));
    }
    let mut b = good.clone();
    b[OFF_SIG_ALGO] = 2;
    assert!(matches!(SnpReport::parse(&b), Err(Error::Malformed { .. })));
    let mut b = good.clone();
    b[OFF_VMPL] = 4;
    assert!(matches!(SnpReport::parse(&b), Err(Error::Malformed { .. })));
}

#[test]
fn snp_evidence_is_parsed_then_unsupported() {
    use crate::evidence::Evidence;
    let ev = Evidence::SevSnp {
        report: synthetic_report(),
        certs: None,
    };
    assert!(matches!(
        crate::verify::verify_evidence(&ev),
        Err(Error::Unsupported(TeeKind::SevSnp))
    ));
    let ev = Evidence::SevSnp {
        report: vec![0; 10],
        certs: None,
    };
    assert!(matches!(
        crate::verify::verify_evidence(&ev),
        Err(Error::Truncated { .. })
    ));
}
