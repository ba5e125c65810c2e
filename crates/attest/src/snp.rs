//! AMD SEV-SNP attestation report parsing (structure only).
//!
//! Layout from the SEV-SNP firmware ABI specification ("ATTESTATION_REPORT structure"), 0x4A0
//! bytes, little-endian. This module parses and exposes the fields the policy engine needs; it
//! does **not** check the ECDSA P-384 signature or the VCEK → ASK → ARK chain (a later issue),
//! so [`crate::verify()`] still refuses SNP evidence with [`Error::Unsupported`].

use crate::Error;
use crate::claims::Claims;
use crate::types::{Measurement, ReportData, SignerId, Tcb, TeeKind};

/// Size of an SNP attestation report.
pub const SNP_REPORT_LEN: usize = 0x4A0;
/// Offset of the signed part's end / the signature.
pub const SNP_SIGNATURE_OFFSET: usize = 0x2A0;
/// Guest policy bit: debugging allowed.
pub const SNP_POLICY_DEBUG_BIT: u64 = 1 << 19;

const OFF_VERSION: usize = 0x00;
const OFF_GUEST_SVN: usize = 0x04;
const OFF_POLICY: usize = 0x08;
const OFF_FAMILY_ID: usize = 0x10;
const OFF_IMAGE_ID: usize = 0x20;
const OFF_VMPL: usize = 0x30;
const OFF_SIG_ALGO: usize = 0x34;
const OFF_CURRENT_TCB: usize = 0x38;
const OFF_KEY_INFO: usize = 0x48;
const OFF_REPORT_DATA: usize = 0x50;
const OFF_MEASUREMENT: usize = 0x90;
const OFF_HOST_DATA: usize = 0xC0;
const OFF_ID_KEY_DIGEST: usize = 0xE0;
const OFF_AUTHOR_KEY_DIGEST: usize = 0x110;
const OFF_REPORTED_TCB: usize = 0x180;
const OFF_CHIP_ID: usize = 0x1A0;

/// Signature algorithm 1: ECDSA P-384 with SHA-384 (the only one defined).
const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;

/// The fields of an SNP attestation report that matter for appraisal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnpReport {
    /// Report format version (2 to 5).
    pub version: u32,
    /// The guest's security version (from its ID block).
    pub guest_svn: u32,
    /// The guest policy (bit 19: debug allowed).
    pub policy: u64,
    /// Family id from the ID block.
    pub family_id: [u8; 16],
    /// Image id from the ID block.
    pub image_id: [u8; 16],
    /// The VMPL that requested the report (0 to 3).
    pub vmpl: u32,
    /// The current platform TCB version.
    pub current_tcb: SnpTcb,
    /// The reported TCB version (the one the VCEK is derived for).
    pub reported_tcb: SnpTcb,
    /// Whether the author key digest is present (else the ID key digest identifies the signer).
    pub author_key_en: bool,
    /// The guest-chosen report data.
    pub report_data: ReportData,
    /// The launch measurement (48 bytes).
    pub measurement: [u8; 48],
    /// Host-provided data.
    pub host_data: [u8; 32],
    /// SHA-384 of the ID key that signed the ID block.
    pub id_key_digest: [u8; 48],
    /// SHA-384 of the author key that certified the ID key.
    pub author_key_digest: [u8; 48],
    /// The chip id (selects the VCEK).
    pub chip_id: [u8; 64],
    /// The signed bytes (`report[..0x2A0]`).
    pub signed: Vec<u8>,
    /// The raw signature field (`report[0x2A0..0x4A0]`: R and S, little-endian, zero-padded).
    pub signature: Vec<u8>,
}

/// An SNP TCB version (Milan/Genoa layout: boot loader, TEE, SNP, microcode SVNs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnpTcb(pub u64);

impl SnpTcb {
    /// The components `[boot_loader, tee, snp, microcode]` as a generic [`Tcb`].
    pub fn to_tcb(self) -> Tcb {
        let b = self.0.to_le_bytes();
        Tcb(vec![b[0].into(), b[1].into(), b[6].into(), b[7].into()])
    }
}

fn u32_le(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

fn u64_le(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

fn arr<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[off..off + N]);
    a
}

impl SnpReport {
    /// Parses a raw report. Checks length, version, signature algorithm and VMPL range.
    pub fn parse(bytes: &[u8]) -> Result<SnpReport, Error> {
        const WHAT: &str = "SEV-SNP report";
        if bytes.len() < SNP_REPORT_LEN {
            return Err(Error::Truncated { what: WHAT });
        }
        if bytes.len() > SNP_REPORT_LEN {
            return Err(Error::TrailingBytes {
                what: WHAT,
                count: bytes.len() - SNP_REPORT_LEN,
            });
        }
        // From here on every offset is inside the fixed-size buffer.
        let version = u32_le(bytes, OFF_VERSION);
        if !(2..=5).contains(&version) {
            return Err(Error::UnsupportedVersion {
                what: WHAT,
                version,
            });
        }
        if u32_le(bytes, OFF_SIG_ALGO) != SIG_ALGO_ECDSA_P384_SHA384 {
            return Err(Error::Malformed {
                what: WHAT,
                reason: "unknown signature algorithm",
            });
        }
        let vmpl = u32_le(bytes, OFF_VMPL);
        if vmpl > 3 {
            return Err(Error::Malformed {
                what: WHAT,
                reason: "VMPL above 3",
            });
        }
        Ok(SnpReport {
            version,
            guest_svn: u32_le(bytes, OFF_GUEST_SVN),
            policy: u64_le(bytes, OFF_POLICY),
            family_id: arr(bytes, OFF_FAMILY_ID),
            image_id: arr(bytes, OFF_IMAGE_ID),
            vmpl,
            current_tcb: SnpTcb(u64_le(bytes, OFF_CURRENT_TCB)),
            reported_tcb: SnpTcb(u64_le(bytes, OFF_REPORTED_TCB)),
            author_key_en: u32_le(bytes, OFF_KEY_INFO) & 1 == 1,
            report_data: ReportData(arr(bytes, OFF_REPORT_DATA)),
            measurement: arr(bytes, OFF_MEASUREMENT),
            host_data: arr(bytes, OFF_HOST_DATA),
            id_key_digest: arr(bytes, OFF_ID_KEY_DIGEST),
            author_key_digest: arr(bytes, OFF_AUTHOR_KEY_DIGEST),
            chip_id: arr(bytes, OFF_CHIP_ID),
            signed: bytes[..SNP_SIGNATURE_OFFSET].to_vec(),
            signature: bytes[SNP_SIGNATURE_OFFSET..].to_vec(),
        })
    }

    /// Whether the guest policy allows debugging.
    pub fn debug(&self) -> bool {
        self.policy & SNP_POLICY_DEBUG_BIT != 0
    }

    /// The claims the report makes. **Unverified**: nothing here checks the signature; use
    /// [`crate::verify()`] for decisions.
    pub fn claims_unverified(&self) -> Claims {
        let signer = if self.author_key_en {
            Some(self.author_key_digest)
        } else if self.id_key_digest != [0; 48] {
            Some(self.id_key_digest)
        } else {
            None
        };
        Claims {
            kind: TeeKind::SevSnp,
            measurement: Measurement(self.measurement.to_vec()),
            signer: signer.map(|s| SignerId(s.to_vec())),
            product_id: None,
            svn: self.guest_svn,
            tcb: self.reported_tcb.to_tcb(),
            debug: self.debug(),
            report_data: self.report_data,
            issued_at: None,
            insecure: false,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
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
}
