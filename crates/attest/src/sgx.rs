//! Intel SGX DCAP quote parsing (structure only: version 3 header and ISV enclave report).
//!
//! Layout from Intel's "SGX ECDSA Quote Library API" (quote v3): a 48-byte header, the 384-byte
//! enclave report body, then the signature data. The ECDSA signature, the QE report and the PCK
//! certificate chain are **not** checked here (a later issue), so [`crate::verify()`] refuses
//! SGX evidence with [`Error::Unsupported`].

use crate::Error;
use crate::claims::Claims;
use crate::types::{Measurement, ReportData, SignerId, Tcb, TeeKind};

const HEADER_LEN: usize = 48;
const BODY_LEN: usize = 384;
/// Enclave attributes flag: the enclave is debuggable.
pub const SGX_FLAGS_DEBUG: u64 = 0x02;

/// The fields of an SGX quote that matter for appraisal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SgxQuote {
    /// Attestation key type (2: ECDSA P-256, 3: ECDSA P-384).
    pub att_key_type: u16,
    /// The quoting enclave's SVN.
    pub qe_svn: u16,
    /// The provisioning certification enclave's SVN.
    pub pce_svn: u16,
    /// The platform CPU security version.
    pub cpu_svn: [u8; 16],
    /// Enclave attribute flags (bit 1: debug).
    pub flags: u64,
    /// The enclave measurement.
    pub mr_enclave: [u8; 32],
    /// The enclave signer (hash of the signing key).
    pub mr_signer: [u8; 32],
    /// The product id chosen by the signer.
    pub isv_prod_id: u16,
    /// The enclave security version.
    pub isv_svn: u16,
    /// The caller's report data.
    pub report_data: ReportData,
    /// Bytes after the body: signature data length and signature data (unparsed).
    pub signature_data: Vec<u8>,
}

fn arr<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[off..off + N]);
    a
}

impl SgxQuote {
    /// Parses a raw version 3 quote.
    pub fn parse(bytes: &[u8]) -> Result<SgxQuote, Error> {
        const WHAT: &str = "SGX quote";
        if bytes.len() < HEADER_LEN + BODY_LEN {
            return Err(Error::Truncated { what: WHAT });
        }
        let version = u16::from_le_bytes(arr(bytes, 0));
        if version != 3 {
            return Err(Error::UnsupportedVersion {
                what: WHAT,
                version: version.into(),
            });
        }
        let att_key_type = u16::from_le_bytes(arr(bytes, 2));
        if !matches!(att_key_type, 2 | 3) {
            return Err(Error::Malformed {
                what: WHAT,
                reason: "unknown attestation key type",
            });
        }
        let b = &bytes[HEADER_LEN..HEADER_LEN + BODY_LEN];
        Ok(SgxQuote {
            att_key_type,
            qe_svn: u16::from_le_bytes(arr(bytes, 8)),
            pce_svn: u16::from_le_bytes(arr(bytes, 10)),
            cpu_svn: arr(b, 0),
            flags: u64::from_le_bytes(arr(b, 48)),
            mr_enclave: arr(b, 64),
            mr_signer: arr(b, 128),
            isv_prod_id: u16::from_le_bytes(arr(b, 256)),
            isv_svn: u16::from_le_bytes(arr(b, 258)),
            report_data: ReportData(arr(b, 320)),
            signature_data: bytes[HEADER_LEN + BODY_LEN..].to_vec(),
        })
    }

    /// The claims the quote makes. **Unverified**: nothing here checks the signature.
    ///
    /// TCB = the 16 CPUSVN bytes followed by PCESVN (17 components).
    pub fn claims_unverified(&self) -> Claims {
        let mut tcb: Vec<u16> = self.cpu_svn.iter().map(|&c| c.into()).collect();
        tcb.push(self.pce_svn);
        Claims {
            kind: TeeKind::SgxDcap,
            measurement: Measurement(self.mr_enclave.to_vec()),
            signer: Some(SignerId(self.mr_signer.to_vec())),
            product_id: Some(self.isv_prod_id),
            svn: self.isv_svn.into(),
            tcb: Tcb(tcb),
            debug: self.flags & SGX_FLAGS_DEBUG != 0,
            report_data: self.report_data,
            issued_at: None,
            insecure: false,
            platform: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synthetic_quote() -> Vec<u8> {
        let mut q = vec![0u8; HEADER_LEN + BODY_LEN];
        q[0..2].copy_from_slice(&3u16.to_le_bytes());
        q[2..4].copy_from_slice(&2u16.to_le_bytes());
        q[10..12].copy_from_slice(&13u16.to_le_bytes());
        let b = HEADER_LEN;
        q[b..b + 16].fill(1);
        q[b + 64..b + 96].fill(0xe1);
        q[b + 128..b + 160].fill(0x51);
        q[b + 256..b + 258].copy_from_slice(&7u16.to_le_bytes());
        q[b + 258..b + 260].copy_from_slice(&5u16.to_le_bytes());
        q[b + 320..b + 384].fill(0x44);
        q.extend_from_slice(&[0; 4]);
        q
    }

    #[test]
    fn parses_fields() {
        let q = SgxQuote::parse(&synthetic_quote()).expect("parse");
        let c = q.claims_unverified();
        assert_eq!(c.measurement, Measurement(vec![0xe1; 32]));
        assert_eq!(c.signer, Some(SignerId(vec![0x51; 32])));
        assert_eq!(c.product_id, Some(7));
        assert_eq!(c.svn, 5);
        assert_eq!(c.tcb.0.len(), 17);
        assert_eq!(c.tcb.0[16], 13);
        assert_eq!(c.report_data, ReportData([0x44; 64]));
        assert!(!c.debug);
    }

    #[test]
    fn negative() {
        let good = synthetic_quote();
        for len in 0..HEADER_LEN + BODY_LEN {
            assert!(matches!(
                SgxQuote::parse(&good[..len]),
                Err(Error::Truncated { .. })
            ));
        }
        let mut b = good.clone();
        b[0] = 4;
        assert!(matches!(
            SgxQuote::parse(&b),
            Err(Error::UnsupportedVersion { version: 4, .. })
        ));
        let mut b = good.clone();
        b[2] = 9;
        assert!(matches!(SgxQuote::parse(&b), Err(Error::Malformed { .. })));
        let mut b = good;
        b[HEADER_LEN + 48] = 0x02;
        assert!(
            SgxQuote::parse(&b)
                .expect("parse")
                .claims_unverified()
                .debug
        );
    }
}
