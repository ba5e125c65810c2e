//! Evidence (RATS): what an attester produces and a verifier checks, and its wire forms.
//!
//! # Binary wire form (version 1)
//!
//! ```text
//! magic   "CLEV"            4 bytes
//! version 0x01              1 byte
//! kind    tag               1 byte  (01 insecure_simulated, 02 sev_snp, 03 tdx, 04 sgx_dcap, 05 nitro)
//! body    fields            each: u32 big-endian length || bytes; an optional field is a
//!                           presence byte (00 absent, 01 present) then, if present, the field
//! ```
//!
//! Bodies: insecure_simulated `report`; sev_snp `report`, optional `certs`; tdx `quote`;
//! sgx_dcap `quote`; nitro `document`. Nothing may follow the body. The whole envelope is at most
//! [`MAX_EVIDENCE_LEN`] bytes.
//!
//! # JSON form
//!
//! `{"kind": "<TeeKind>", "data": "<base64url without padding of the body>"}`, for HTTP APIs.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;
use crate::byte_reader::{Reader, put_bytes_u32};
use crate::types::TeeKind;

/// Magic bytes that open the binary evidence envelope.
pub const EVIDENCE_MAGIC: [u8; 4] = *b"CLEV";
/// The envelope version written by [`Evidence::to_bytes`].
pub const EVIDENCE_VERSION: u8 = 1;
/// The largest evidence envelope accepted (1 MiB: real quotes with certificate chains are a few
/// KiB).
pub const MAX_EVIDENCE_LEN: usize = 1 << 20;

/// Evidence from a TEE, as produced by an [`crate::Attester`]. The variants hold the raw,
/// still unverified bytes of each format; [`crate::verify()`] parses and checks them.
#[derive(Clone, PartialEq, Eq)]
pub enum Evidence {
    /// A report of the insecure simulated TEE ([`crate::simulated::InsecureSimulatedReport`]).
    Simulated {
        /// The signed report.
        report: Vec<u8>,
    },
    /// An AMD SEV-SNP attestation report (0x4A0 bytes) and, if the host supplied them, the
    /// certificates (the GUID-keyed certificate table from configfs-tsm `auxblob`: VCEK, ASK,
    /// ARK).
    SevSnp {
        /// The raw attestation report.
        report: Vec<u8>,
        /// The raw certificate table, if any.
        certs: Option<Vec<u8>>,
    },
    /// An Intel TDX quote (version 4 or 5, with its certification data).
    Tdx {
        /// The raw quote.
        quote: Vec<u8>,
    },
    /// An Intel SGX DCAP quote (version 3).
    SgxDcap {
        /// The raw quote.
        quote: Vec<u8>,
    },
    /// An AWS Nitro attestation document (COSE_Sign1, CBOR).
    Nitro {
        /// The raw document.
        document: Vec<u8>,
    },
}

impl std::fmt::Debug for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Lengths only: evidence is not secret, but dumping kilobytes of hex helps nobody.
        let mut d = f.debug_struct("Evidence");
        d.field("kind", &self.kind());
        match self {
            Evidence::Simulated { report } | Evidence::SevSnp { report, .. } => {
                d.field("report_len", &report.len())
            }
            Evidence::Tdx { quote } | Evidence::SgxDcap { quote } => {
                d.field("quote_len", &quote.len())
            }
            Evidence::Nitro { document } => d.field("document_len", &document.len()),
        };
        if let Evidence::SevSnp { certs, .. } = self {
            d.field("certs_len", &certs.as_ref().map(Vec::len));
        }
        d.finish()
    }
}

impl Evidence {
    /// The TEE kind this evidence claims to come from.
    pub fn kind(&self) -> TeeKind {
        match self {
            Evidence::Simulated { .. } => TeeKind::InsecureSimulated,
            Evidence::SevSnp { .. } => TeeKind::SevSnp,
            Evidence::Tdx { .. } => TeeKind::Tdx,
            Evidence::SgxDcap { .. } => TeeKind::SgxDcap,
            Evidence::Nitro { .. } => TeeKind::Nitro,
        }
    }

    /// The binary envelope (see the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let body = self.body_bytes();
        let mut out = Vec::with_capacity(6 + body.len());
        out.extend_from_slice(&EVIDENCE_MAGIC);
        out.push(EVIDENCE_VERSION);
        out.push(self.kind().tag());
        out.extend_from_slice(&body);
        out
    }

    /// Decodes the binary envelope. Strict: wrong magic, version or kind tag, truncation,
    /// oversize and trailing bytes are all errors.
    pub fn from_bytes(bytes: &[u8]) -> Result<Evidence, Error> {
        if bytes.len() > MAX_EVIDENCE_LEN {
            return Err(Error::TooLarge {
                what: "evidence",
                len: bytes.len(),
                max: MAX_EVIDENCE_LEN,
            });
        }
        let mut r = Reader::new(bytes, "evidence envelope");
        if r.array::<4>()? != EVIDENCE_MAGIC {
            return Err(Error::BadMagic);
        }
        let version = r.u8()?;
        if version != EVIDENCE_VERSION {
            return Err(Error::UnsupportedVersion {
                what: "evidence envelope",
                version: version.into(),
            });
        }
        let tag = r.u8()?;
        let kind = TeeKind::from_tag(tag).ok_or(Error::UnknownKind(tag))?;
        let rest = r.take(r.remaining())?;
        Evidence::from_body(kind, rest)
    }

    /// The kind-specific body (the envelope without magic, version and tag).
    fn body_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Evidence::Simulated { report } => put_bytes_u32(&mut out, report),
            Evidence::SevSnp { report, certs } => {
                put_bytes_u32(&mut out, report);
                match certs {
                    None => out.push(0),
                    Some(c) => {
                        out.push(1);
                        put_bytes_u32(&mut out, c);
                    }
                }
            }
            Evidence::Tdx { quote } | Evidence::SgxDcap { quote } => put_bytes_u32(&mut out, quote),
            Evidence::Nitro { document } => put_bytes_u32(&mut out, document),
        }
        out
    }

    fn from_body(kind: TeeKind, body: &[u8]) -> Result<Evidence, Error> {
        if body.len() > MAX_EVIDENCE_LEN {
            return Err(Error::TooLarge {
                what: "evidence",
                len: body.len(),
                max: MAX_EVIDENCE_LEN,
            });
        }
        let mut r = Reader::new(body, "evidence body");
        let ev = match kind {
            TeeKind::InsecureSimulated => Evidence::Simulated {
                report: r.bytes_u32()?.to_vec(),
            },
            TeeKind::SevSnp => {
                let report = r.bytes_u32()?.to_vec();
                let certs = match r.u8()? {
                    0 => None,
                    1 => Some(r.bytes_u32()?.to_vec()),
                    _ => {
                        return Err(Error::Malformed {
                            what: "evidence body",
                            reason: "presence byte is neither 0 nor 1",
                        });
                    }
                };
                Evidence::SevSnp { report, certs }
            }
            TeeKind::Tdx => Evidence::Tdx {
                quote: r.bytes_u32()?.to_vec(),
            },
            TeeKind::SgxDcap => Evidence::SgxDcap {
                quote: r.bytes_u32()?.to_vec(),
            },
            TeeKind::Nitro => Evidence::Nitro {
                document: r.bytes_u32()?.to_vec(),
            },
        };
        r.finish()?;
        Ok(ev)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvidenceJson {
    kind: TeeKind,
    data: String,
}

impl Serialize for Evidence {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        EvidenceJson {
            kind: self.kind(),
            data: URL_SAFE_NO_PAD.encode(self.body_bytes()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Evidence {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let j = EvidenceJson::deserialize(d)?;
        if j.data.len() > MAX_EVIDENCE_LEN.div_ceil(3) * 4 {
            return Err(serde::de::Error::custom("evidence data too large"));
        }
        let body = URL_SAFE_NO_PAD
            .decode(j.data.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("evidence data: {e}")))?;
        Evidence::from_body(j.kind, &body).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Evidence> {
        vec![
            Evidence::Simulated {
                report: vec![1, 2, 3],
            },
            Evidence::SevSnp {
                report: vec![4; 0x4a0],
                certs: None,
            },
            Evidence::SevSnp {
                report: vec![5; 10],
                certs: Some(vec![6; 7]),
            },
            Evidence::SevSnp {
                report: vec![],
                certs: Some(vec![]),
            },
            Evidence::Tdx { quote: vec![7; 9] },
            Evidence::SgxDcap { quote: vec![8] },
            Evidence::Nitro { document: vec![] },
        ]
    }

    #[test]
    fn binary_round_trip() {
        for ev in samples() {
            let bytes = ev.to_bytes();
            assert_eq!(&bytes[..4], b"CLEV");
            assert_eq!(Evidence::from_bytes(&bytes).expect("decode"), ev);
        }
    }

    #[test]
    fn json_round_trip() {
        for ev in samples() {
            let json = serde_json::to_string(&ev).expect("encode");
            assert!(json.starts_with(&format!("{{\"kind\":\"{}\"", ev.kind())));
            assert_eq!(serde_json::from_str::<Evidence>(&json).expect("decode"), ev);
        }
    }

    #[test]
    fn truncation_at_every_length_is_an_error() {
        for ev in samples() {
            let bytes = ev.to_bytes();
            for len in 0..bytes.len() {
                let r = Evidence::from_bytes(&bytes[..len]);
                assert!(
                    matches!(
                        r,
                        Err(Error::Truncated {
                            what: "evidence envelope" | "evidence body"
                        })
                    ),
                    "{ev:?} truncated to {len}: {r:?}"
                );
            }
        }
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        for ev in samples() {
            let mut bytes = ev.to_bytes();
            bytes.push(0);
            assert!(matches!(
                Evidence::from_bytes(&bytes),
                Err(Error::TrailingBytes { .. })
            ));
        }
    }

    #[test]
    fn wrong_magic_version_and_tag() {
        let good = samples()[0].to_bytes();
        let mut b = good.clone();
        b[0] = b'X';
        assert!(matches!(Evidence::from_bytes(&b), Err(Error::BadMagic)));
        let mut b = good.clone();
        b[4] = 2;
        assert!(matches!(
            Evidence::from_bytes(&b),
            Err(Error::UnsupportedVersion { version: 2, .. })
        ));
        for tag in [0u8, 6, 0xff] {
            let mut b = good.clone();
            b[5] = tag;
            assert!(matches!(Evidence::from_bytes(&b), Err(Error::UnknownKind(t)) if t == tag));
        }
        // A valid tag of another kind whose body does not fit that kind.
        let mut b = samples()[2].to_bytes();
        b[5] = TeeKind::Tdx.tag();
        assert!(matches!(
            Evidence::from_bytes(&b),
            Err(Error::TrailingBytes { .. })
        ));
        // Bad presence byte.
        let mut b = samples()[2].to_bytes();
        b[6 + 4 + 10] = 2;
        assert!(matches!(
            Evidence::from_bytes(&b),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn oversize_and_lying_lengths() {
        let big = vec![0u8; MAX_EVIDENCE_LEN + 1];
        assert!(matches!(
            Evidence::from_bytes(&big),
            Err(Error::TooLarge { .. })
        ));
        // A length prefix claiming more than is there.
        let mut b = Vec::from(*b"CLEV");
        b.extend_from_slice(&[1, 1, 0xff, 0xff, 0xff, 0xff, 0]);
        assert!(matches!(
            Evidence::from_bytes(&b),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn json_negative() {
        for (text, words) in [
            (r#"{"kind":"tdx"}"#, "missing field `data`"),
            (
                r#"{"kind":"tdx","data":"AAAA","extra":1}"#,
                "unknown field `extra`",
            ),
            (
                r#"{"kind":"sev","data":"AAAAAQA"}"#,
                "unknown variant `sev`",
            ),
            (
                r#"{"kind":"tdx","data":"AAAAAQA="}"#,
                "evidence data: Invalid padding",
            ),
            (
                r#"{"kind":"tdx","data":"!!!!"}"#,
                "evidence data: Invalid symbol",
            ),
            (
                r#"{"kind":"tdx","data":"AAAAAgA"}"#,
                "truncated evidence body",
            ),
        ] {
            let err = serde_json::from_str::<Evidence>(text).expect_err(text);
            assert!(err.to_string().contains(words), "{text}: {err}");
        }
        // The same body accepted once correctly encoded.
        assert_eq!(
            serde_json::from_str::<Evidence>(r#"{"kind":"tdx","data":"AAAAAQA"}"#).expect("decode"),
            Evidence::Tdx { quote: vec![0] }
        );
    }
}
