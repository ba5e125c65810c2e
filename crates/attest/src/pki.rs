//! X.509 helpers shared by the SEV-SNP and Nitro verifiers (RustCrypto `x509-cert` 0.3,
//! `p384` 0.14): the pinned roots, validity at a caller-given time, and ECDSA P-384 certificate
//! signatures checked over the **raw** TBS bytes as they appear in the certificate (never a
//! re-encoding).

use der::Decode;
use der::asn1::ObjectIdentifier;
use p384::ecdsa::signature::Verifier as _;
use sha2::{Digest, Sha256};

use crate::Error;
use crate::pem::PemError;
use crate::types::TeeKind;

/// id-ecPublicKey.
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp384r1.
const OID_SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// ecdsa-with-SHA384.
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// id-ce-basicConstraints.
const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");

/// The largest certificate accepted (real ones are 0.5 to 2 KiB).
pub(crate) const MAX_CERT_LEN: usize = 16 * 1024;

/// SHA-256 of a DER certificate: how roots are pinned.
pub(crate) fn fingerprint(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

/// A parsed certificate together with its exact DER bytes and the raw TBS slice.
pub(crate) struct Cert {
    /// The whole certificate as received.
    pub(crate) der: Vec<u8>,
    /// Range of the raw `tbsCertificate` TLV inside `der`.
    pub(crate) tbs: std::ops::Range<usize>,
    /// The decoded certificate.
    pub(crate) parsed: x509_cert::Certificate,
    /// Which certificate this is, for error messages.
    pub(crate) name: String,
}

impl std::fmt::Debug for Cert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cert").field("name", &self.name).finish()
    }
}

/// Reads one DER header at `pos`: returns (tag, header length, content length).
pub(crate) fn der_header(b: &[u8], pos: usize) -> Option<(u8, usize, usize)> {
    let tag = *b.get(pos)?;
    let first = *b.get(pos + 1)?;
    if first < 0x80 {
        return Some((tag, 2, first.into()));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 3 {
        return None;
    }
    let mut len = 0usize;
    for i in 0..n {
        len = (len << 8) | usize::from(*b.get(pos + 2 + i)?);
    }
    Some((tag, 2 + n, len))
}

impl Cert {
    /// Parses a DER certificate (strict DER; nothing may follow it).
    pub(crate) fn from_der(der: &[u8], kind: TeeKind, role: &str) -> Result<Cert, Error> {
        let bad = |reason: &'static str| Error::BadCertificate {
            kind,
            which: role.to_owned(),
            reason,
        };
        if der.is_empty() {
            return Err(bad("empty"));
        }
        if der.len() > MAX_CERT_LEN {
            return Err(bad("larger than 16 KiB"));
        }
        let parsed = x509_cert::Certificate::from_der(der)
            .map_err(|_| bad("not a DER X.509 certificate"))?;
        // Outer SEQUENCE, then the TBS SEQUENCE: keep its exact bytes.
        let (tag, hl, len) = der_header(der, 0).ok_or(bad("bad outer header"))?;
        if tag != 0x30 || hl + len != der.len() {
            return Err(bad("bad outer header"));
        }
        let (tag, thl, tlen) = der_header(der, hl).ok_or(bad("bad TBS header"))?;
        let end = hl + thl + tlen;
        if tag != 0x30 || end > der.len() {
            return Err(bad("bad TBS header"));
        }
        let name = format!("{role} ({})", parsed.tbs_certificate().subject());
        Ok(Cert {
            der: der.to_vec(),
            tbs: hl..end,
            parsed,
            name,
        })
    }

    /// The raw, signed `tbsCertificate` bytes.
    pub(crate) fn tbs_raw(&self) -> &[u8] {
        &self.der[self.tbs.clone()]
    }

    /// The subject public key bits.
    pub(crate) fn public_key_bytes(&self) -> &[u8] {
        self.parsed
            .tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes()
    }

    /// The subject's P-384 ECDSA key, if it has one.
    pub(crate) fn p384_key(&self, kind: TeeKind) -> Result<p384::ecdsa::VerifyingKey, Error> {
        let spki = self.parsed.tbs_certificate().subject_public_key_info();
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        if spki.algorithm.oid != OID_EC_PUBLIC_KEY || curve != Some(OID_SECP384R1) {
            return Err(Error::UnsupportedAlgorithm {
                kind,
                what: "certificate key is not ECDSA P-384",
            });
        }
        p384::ecdsa::VerifyingKey::from_sec1_bytes(self.public_key_bytes()).map_err(|_| {
            Error::BadCertificate {
                kind,
                which: self.name.clone(),
                reason: "invalid P-384 public key",
            }
        })
    }

    /// Checks `notBefore <= now <= notAfter`.
    pub(crate) fn check_validity(&self, kind: TeeKind, now: u64) -> Result<(), Error> {
        let v = self.parsed.tbs_certificate().validity();
        let not_before = v.not_before.to_unix_duration().as_secs();
        let not_after = v.not_after.to_unix_duration().as_secs();
        if now < not_before || now > not_after {
            return Err(Error::CertificateNotValidAt {
                kind,
                which: self.name.clone(),
                not_before,
                not_after,
                now,
            });
        }
        Ok(())
    }

    /// Whether the certificate says it is a CA (basicConstraints cA = TRUE).
    pub(crate) fn is_ca(&self) -> bool {
        self.parsed
            .tbs_certificate()
            .extensions()
            .into_iter()
            .flatten()
            .filter(|e| e.extn_id == OID_BASIC_CONSTRAINTS)
            .any(|e| {
                x509_cert::ext::pkix::BasicConstraints::from_der(e.extn_value.as_bytes())
                    .map(|bc| bc.ca)
                    .unwrap_or(false)
            })
    }

    /// The value bytes of an extension by OID, if present exactly once.
    pub(crate) fn extension(&self, oid: &ObjectIdentifier) -> Option<&[u8]> {
        let mut it = self
            .parsed
            .tbs_certificate()
            .extensions()
            .into_iter()
            .flatten()
            .filter(|e| &e.extn_id == oid);
        let first = it.next()?;
        if it.next().is_some() {
            return None;
        }
        Some(first.extn_value.as_bytes())
    }

    /// Verifies that `issuer` signed this certificate with ECDSA P-384 / SHA-384, over the raw
    /// TBS bytes.
    pub(crate) fn verify_ecdsa_p384_by(&self, issuer: &Cert, kind: TeeKind) -> Result<(), Error> {
        let bad_sig = || Error::BadCertificateSignature {
            kind,
            which: self.name.clone(),
        };
        if self.parsed.signature_algorithm().oid != OID_ECDSA_SHA384
            || self.parsed.tbs_certificate().signature().oid != OID_ECDSA_SHA384
        {
            return Err(Error::UnsupportedAlgorithm {
                kind,
                what: "certificate signature is not ecdsa-with-SHA384",
            });
        }
        if self.parsed.tbs_certificate().issuer() != issuer.parsed.tbs_certificate().subject() {
            return Err(Error::BadCertificate {
                kind,
                which: self.name.clone(),
                reason: "issuer name differs from the parent's subject",
            });
        }
        let key = issuer.p384_key(kind)?;
        let sig_bytes = self.parsed.signature().as_bytes().ok_or_else(bad_sig)?;
        let sig = p384::ecdsa::Signature::from_der(sig_bytes).map_err(|_| bad_sig())?;
        key.verify(self.tbs_raw(), &sig).map_err(|_| bad_sig())
    }
}

/// Parses a PEM or DER certificate (PEM: exactly one `CERTIFICATE` block).
pub(crate) fn cert_from_pem_or_der(bytes: &[u8], kind: TeeKind, role: &str) -> Result<Cert, Error> {
    let mut certs = certs_from_pem_or_der(bytes, kind, role)?;
    if certs.len() != 1 {
        return Err(Error::BadCertificate {
            kind,
            which: role.to_owned(),
            reason: "expected exactly one certificate",
        });
    }
    Ok(certs.remove(0))
}

/// Parses a DER certificate or a PEM bundle of `CERTIFICATE` blocks, in order (at most 8).
pub(crate) fn certs_from_pem_or_der(
    bytes: &[u8],
    kind: TeeKind,
    role: &str,
) -> Result<Vec<Cert>, Error> {
    let text = std::str::from_utf8(bytes)
        .ok()
        .filter(|t| t.contains("-----BEGIN"));
    let Some(text) = text else {
        return Ok(vec![Cert::from_der(bytes, kind, role)?]);
    };
    let ders =
        crate::pem::decode_blocks(text.as_bytes(), crate::pem::CERTIFICATE, 8).map_err(|e| {
            Error::BadCertificate {
                kind,
                which: role.to_owned(),
                reason: match e {
                    PemError::NoBlock => "no CERTIFICATE block",
                    PemError::Unterminated => "unterminated PEM block",
                    PemError::TooMany => "more than 8 certificates",
                    _ => "malformed PEM block",
                },
            }
        })?;
    ders.iter()
        .map(|der| Cert::from_der(der, kind, role))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lengths() {
        assert_eq!(der_header(&[0x30, 0x03], 0), Some((0x30, 2, 3)));
        assert_eq!(
            der_header(&[0x30, 0x82, 0x01, 0x00], 0),
            Some((0x30, 4, 256))
        );
        assert_eq!(der_header(&[0x30, 0x80], 0), None);
        assert_eq!(der_header(&[0x30, 0x85, 1, 1, 1, 1, 1], 0), None);
        assert_eq!(der_header(&[0x30], 0), None);
    }

    #[test]
    fn garbage_is_an_error() {
        for b in [
            &[][..],
            &[0x30, 0x00],
            &[0xff; 40],
            b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----",
        ] {
            let r = cert_from_pem_or_der(b, TeeKind::Nitro, "x");
            assert!(
                matches!(
                    &r,
                    Err(Error::BadCertificate {
                        kind: TeeKind::Nitro,
                        which,
                        ..
                    }) if which == "x"
                ),
                "{b:x?}: {r:?}"
            );
        }
    }
}
