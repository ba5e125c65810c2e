//! Intel TDX quote parsing (structure only: header and TD report body).
//!
//! Supports quote versions 4 (body at offset 48) and 5 (a body descriptor at 48, body at 54;
//! body type 2 = TDX 1.0, 3 = TDX 1.5). The quote signature and the PCK certificate chain are
//! **not** checked here (a later issue), so [`crate::verify()`] refuses TDX evidence with
//! [`Error::Unsupported`].

use crate::Error;
use crate::claims::Claims;
use crate::types::{Measurement, ReportData, Tcb, TeeKind};

const HEADER_LEN: usize = 48;
const TEE_TYPE_TDX: u32 = 0x81;
/// Length of a TDX 1.0 TD report body.
const BODY_V10_LEN: usize = 584;
/// Length of a TDX 1.5 TD report body.
const BODY_V15_LEN: usize = 648;
/// TD attributes bit 0: the TD is debuggable.
pub const TD_ATTRIBUTES_DEBUG: u64 = 1;

/// The fields of a TDX quote that matter for appraisal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxQuote {
    /// Quote version (4 or 5).
    pub version: u16,
    /// The TDX module's TCB SVN (16 components).
    pub tee_tcb_svn: [u8; 16],
    /// Measurement of the TDX module.
    pub mr_seam: [u8; 48],
    /// The TD attributes (bit 0: debug).
    pub td_attributes: u64,
    /// The build-time measurement of the TD.
    pub mr_td: [u8; 48],
    /// Runtime measurement registers 0 to 3.
    pub rtmrs: [[u8; 48]; 4],
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

impl TdxQuote {
    /// Parses a raw quote's header and TD report body.
    pub fn parse(bytes: &[u8]) -> Result<TdxQuote, Error> {
        const WHAT: &str = "TDX quote";
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated { what: WHAT });
        }
        let version = u16::from_le_bytes(arr(bytes, 0));
        let tee_type = u32::from_le_bytes(arr(bytes, 4));
        if tee_type != TEE_TYPE_TDX {
            return Err(Error::Malformed {
                what: WHAT,
                reason: "TEE type is not TDX",
            });
        }
        let (body_off, body_len) = match version {
            4 => (HEADER_LEN, BODY_V10_LEN),
            5 => {
                if bytes.len() < HEADER_LEN + 6 {
                    return Err(Error::Truncated { what: WHAT });
                }
                let body_type = u16::from_le_bytes(arr(bytes, HEADER_LEN));
                let size = u32::from_le_bytes(arr(bytes, HEADER_LEN + 2)) as usize;
                let want = match body_type {
                    2 => BODY_V10_LEN,
                    3 => BODY_V15_LEN,
                    _ => {
                        return Err(Error::Malformed {
                            what: WHAT,
                            reason: "unknown body type",
                        });
                    }
                };
                if size != want {
                    return Err(Error::Malformed {
                        what: WHAT,
                        reason: "body size does not match its type",
                    });
                }
                (HEADER_LEN + 6, want)
            }
            v => {
                return Err(Error::UnsupportedVersion {
                    what: WHAT,
                    version: v.into(),
                });
            }
        };
        let end = body_off + body_len;
        if bytes.len() < end {
            return Err(Error::Truncated { what: WHAT });
        }
        let b = &bytes[body_off..end];
        let mut rtmrs = [[0u8; 48]; 4];
        for (i, r) in rtmrs.iter_mut().enumerate() {
            *r = arr(b, 328 + 48 * i);
        }
        Ok(TdxQuote {
            version,
            tee_tcb_svn: arr(b, 0),
            mr_seam: arr(b, 16),
            td_attributes: u64::from_le_bytes(arr(b, 120)),
            mr_td: arr(b, 136),
            rtmrs,
            report_data: ReportData(arr(b, 520)),
            signature_data: bytes[end..].to_vec(),
        })
    }

    /// The claims the quote makes. **Unverified**: nothing here checks the signature.
    pub fn claims_unverified(&self) -> Claims {
        Claims {
            kind: TeeKind::Tdx,
            measurement: Measurement(self.mr_td.to_vec()),
            signer: None,
            product_id: None,
            svn: 0,
            tcb: Tcb(self.tee_tcb_svn.iter().map(|&c| c.into()).collect()),
            debug: self.td_attributes & TD_ATTRIBUTES_DEBUG != 0,
            report_data: self.report_data,
            issued_at: None,
            insecure: false,
            platform: Default::default(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A structurally valid synthetic v4 quote with the given report data (not signed).
    pub(crate) fn synthetic_quote(report_data: &ReportData) -> Vec<u8> {
        let mut q = vec![0u8; HEADER_LEN + BODY_V10_LEN];
        q[0..2].copy_from_slice(&4u16.to_le_bytes());
        q[4..8].copy_from_slice(&TEE_TYPE_TDX.to_le_bytes());
        let b = HEADER_LEN;
        q[b..b + 16].fill(2);
        q[b + 136..b + 184].fill(0x77);
        q[b + 520..b + 584].copy_from_slice(report_data.as_bytes());
        q.extend_from_slice(&[0, 0, 0, 0]);
        q
    }

    #[test]
    fn parses_v4_and_v5() {
        let rd = ReportData([9; 64]);
        let q = TdxQuote::parse(&synthetic_quote(&rd)).expect("v4");
        assert_eq!(q.mr_td, [0x77; 48]);
        assert_eq!(q.report_data, rd);
        let c = q.claims_unverified();
        assert!(!c.debug);
        assert_eq!(c.tcb, Tcb(vec![2; 16]));

        let v4 = synthetic_quote(&rd);
        let mut v5 = v4[..HEADER_LEN].to_vec();
        v5[0] = 5;
        v5.extend_from_slice(&2u16.to_le_bytes());
        v5.extend_from_slice(&(BODY_V10_LEN as u32).to_le_bytes());
        v5.extend_from_slice(&v4[HEADER_LEN..]);
        let q5 = TdxQuote::parse(&v5).expect("v5");
        assert_eq!(q5.mr_td, q.mr_td);
        assert_eq!(q5.report_data, rd);
    }

    #[test]
    fn negative() {
        let good = synthetic_quote(&ReportData::ZERO);
        for len in 0..HEADER_LEN + BODY_V10_LEN {
            let r = TdxQuote::parse(&good[..len]);
            assert!(
                matches!(r, Err(Error::Truncated { what: "TDX quote" })),
                "len {len}: {r:?}"
            );
        }
        let mut b = good.clone();
        b[4] = 0;
        assert!(matches!(TdxQuote::parse(&b), Err(Error::Malformed { .. })));
        let mut b = good.clone();
        b[0] = 3;
        assert!(matches!(
            TdxQuote::parse(&b),
            Err(Error::UnsupportedVersion { version: 3, .. })
        ));
        let mut b = good.clone();
        b[HEADER_LEN + 120] = 1;
        assert!(
            TdxQuote::parse(&b)
                .expect("parse")
                .claims_unverified()
                .debug
        );
    }
}
