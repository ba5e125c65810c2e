//! AMD SEV-SNP certificate revocation: the CRL that AMD's KDS publishes per product at
//! `https://kdsintf.amd.com/vcek/v1/{Milan,Genoa,Turin}/crl` (the CRL distribution point named
//! in the ARK and ASK certificates).
//!
//! The CRL is a DER X.509 v2 `CertificateList` signed by the product's ARK with RSASSA-PSS
//! (SHA-384, MGF1-SHA-384, 48-byte salt). [`SnpCrl::parse`] reads it; checking it (inside
//! [`crate::verify_evidence_with`] when [`crate::Endorsements::snp_crl`] is set, or with
//! [`SnpCrl::verify`]) means, each with its own error:
//!
//! 1. it parses: DER (or PEM `X509 CRL`), version 2, at most [`MAX_CRL_LEN`] bytes, inner and
//!    outer signature algorithms equal, `nextUpdate` present and not before `thisUpdate`, no
//!    delta-CRL indicator, no `issuingDistributionPoint` that narrows its scope (only user
//!    certificates, only some reasons, only attribute certificates), no unknown critical CRL or
//!    entry extension ([`Error::CrlMalformed`]);
//! 2. its issuer is the subject of the **pinned** ARK of the product that issued the chain (a
//!    CRL of another product is [`Error::CrlWrongIssuer`]);
//! 3. its signature algorithm is exactly RSASSA-PSS / SHA-384 / MGF1-SHA-384 / salt 48
//!    ([`Error::UnsupportedAlgorithm`]) and the signature verifies under the pinned ARK's key over
//!    the **raw** `tbsCertList` bytes, never a re-encoding ([`Error::CrlBadSignature`]);
//! 4. it is valid at `now`: `thisUpdate - CRL_CLOCK_SKEW_SECS <= now <= nextUpdate`
//!    ([`Error::CrlNotYetValid`], [`Error::CrlExpired`]). The tolerance is one-sided on purpose:
//!    a CRL fetched seconds after AMD issued it may look slightly "future" to a verifier whose
//!    clock lags ([`CRL_CLOCK_SKEW_SECS`], the same skew evidence timestamps get), but there is
//!    no grace after `nextUpdate`: an expired CRL may hide a newer revocation, so a fresh one
//!    must be fetched (`clave-collateral` caches a CRL no longer than its `nextUpdate`);
//! 5. no certificate of the chain is listed ([`Error::CertificateRevoked`], naming which one and
//!    its serial). Entries are matched by **issuer and serial**, as RFC 5280 §5.3.3 scopes them:
//!    an entry revokes a certificate *issued by the CRL issuer* (the ARK: the ASK, or the ARK
//!    itself; known from the verified chain, not from comparing name encodings) unless a
//!    `certificateIssuer` entry extension names another issuer (then it applies to that entry
//!    and the following ones, an indirect CRL). The VCEK is issued by the ASK, so
//!    it is revoked only through an entry whose `certificateIssuer` is the ASK. Matching the
//!    VCEK's serial alone would be wrong: every VCEK AMD issues has serial number 0 (all the real
//!    VCEKs in `tests/data/real` do), so a bare entry `0` from the ARK would revoke every chip.
//!    (AMD supersedes VCEKs through TCB versions, which the policy's `min_tcb` gates.)
//!
//! What is not checked: OCSP (AMD runs none), CRL numbers across fetches (a verifier that keeps
//! no state cannot detect an older-but-still-valid CRL being replayed inside its window), and
//! delta CRLs (refused).

use std::ops::Range;

use der::asn1::ObjectIdentifier;
use der::{Decode as _, Encode as _};
use x509_cert::crl::CertificateList;
use x509_cert::name::Name;

use crate::Error;
use crate::claims::CrlWindow;
use crate::pem::PemError;
use crate::pki::{Cert, der_header};
use crate::snp::SnpProduct;
use crate::types::TeeKind;

/// The largest CRL accepted (AMD's CRLs are a few KiB).
pub const MAX_CRL_LEN: usize = 1 << 20;
/// How far in the future a CRL's `thisUpdate` may lie (verifier clock lagging AMD's).
pub const CRL_CLOCK_SKEW_SECS: u64 = crate::verify::MAX_CLOCK_SKEW_SECS;

const KIND: TeeKind = TeeKind::SevSnp;
/// The salt length AMD's ARK uses with RSASSA-PSS / SHA-384.
const PSS_SALT_LEN: u8 = 48;

mod oid {
    use der::asn1::ObjectIdentifier as O;
    pub(super) const RSASSA_PSS: O = O::new_unwrap("1.2.840.113549.1.1.10");
    pub(super) const DELTA_CRL_INDICATOR: O = O::new_unwrap("2.5.29.27");
    pub(super) const ISSUING_DISTRIBUTION_POINT: O = O::new_unwrap("2.5.29.28");
    pub(super) const CERTIFICATE_ISSUER: O = O::new_unwrap("2.5.29.29");
    /// Extensions understood well enough to accept them even when critical.
    pub(super) const KNOWN_CRL: [O; 3] = [
        O::new_unwrap("2.5.29.20"), // cRLNumber
        O::new_unwrap("2.5.29.35"), // authorityKeyIdentifier
        O::new_unwrap("2.5.29.46"), // freshestCRL
    ];
    pub(super) const KNOWN_ENTRY: [O; 2] = [
        O::new_unwrap("2.5.29.21"), // reasonCode
        O::new_unwrap("2.5.29.24"), // invalidityDate
    ];
}

/// OIDs in the older generation (`rsa` 0.9 / `pkcs1` 0.7 / `der` 0.7) used for the PSS params.
mod oid07 {
    use rsa::pkcs1::ObjectIdentifier as O;
    pub(super) const SHA384: O = O::new_unwrap("2.16.840.1.101.3.4.2.2");
    pub(super) const MGF1: O = O::new_unwrap("1.2.840.113549.1.1.8");
}

/// One entry of a CRL, for display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    /// The issuer of the revoked certificate (the CRL issuer unless a `certificateIssuer` entry
    /// extension says otherwise).
    pub issuer: String,
    /// The serial number (hex of the DER INTEGER contents).
    pub serial: String,
    /// The revocation date (unix seconds).
    pub revoked_at: u64,
}

#[derive(Clone, Debug)]
struct Entry {
    /// `None`: the CRL's own issuer; `Some`: named by a `certificateIssuer` entry extension.
    issuer: Option<Name>,
    serial: Vec<u8>,
    revoked_at: u64,
}

/// A parsed AMD CRL. **Unverified** until [`SnpCrl::verify`] (or the verifier) has checked its
/// signature and window.
#[derive(Clone)]
pub struct SnpCrl {
    der: Vec<u8>,
    tbs: Range<usize>,
    issuer: Name,
    this_update: u64,
    next_update: u64,
    algorithm: x509_cert::spki::AlgorithmIdentifierOwned,
    signature: Vec<u8>,
    entries: Vec<Entry>,
}

impl std::fmt::Debug for SnpCrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnpCrl")
            .field("issuer", &self.issuer.to_string())
            .field("this_update", &self.this_update)
            .field("next_update", &self.next_update)
            .field("entries", &self.entries.len())
            .finish()
    }
}

fn malformed(reason: &'static str) -> Error {
    Error::CrlMalformed { kind: KIND, reason }
}

/// DER as given, or the body of exactly one PEM `X509 CRL` block.
fn crl_der(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    if !crate::pem::is_pem(bytes) {
        return Ok(bytes.to_vec());
    }
    let mut blocks = crate::pem::decode_blocks(bytes, crate::pem::X509_CRL, 1).map_err(|e| {
        malformed(match e {
            PemError::Malformed => "malformed PEM X509 CRL block",
            _ => "PEM text is not one X509 CRL block",
        })
    })?;
    Ok(blocks.remove(0))
}

fn unix(t: x509_cert::time::Time) -> u64 {
    t.to_unix_duration().as_secs()
}

impl SnpCrl {
    /// Parses a CRL (DER, or PEM `X509 CRL`) and checks its form (step 1 of the module docs).
    /// Checks no signature and no time.
    pub fn parse(bytes: &[u8]) -> Result<SnpCrl, Error> {
        if bytes.is_empty() {
            return Err(malformed("empty"));
        }
        if bytes.len() > MAX_CRL_LEN {
            return Err(malformed("larger than 1 MiB"));
        }
        let der = crl_der(bytes)?;
        let list = CertificateList::<x509_cert::certificate::Rfc5280>::from_der(&der)
            .map_err(|_| malformed("not a DER X.509 CRL (CertificateList)"))?;
        // Outer SEQUENCE, then the TBS SEQUENCE: keep its exact bytes for the signature.
        let (tag, hl, len) = der_header(&der, 0).ok_or(malformed("bad outer header"))?;
        if tag != 0x30 || hl + len != der.len() {
            return Err(malformed("bad outer header"));
        }
        let (tag, thl, tlen) = der_header(&der, hl).ok_or(malformed("bad tbsCertList header"))?;
        let end = hl + thl + tlen;
        if tag != 0x30 || end > der.len() {
            return Err(malformed("bad tbsCertList header"));
        }
        let tbs = &list.tbs_cert_list;
        if tbs.version != x509_cert::Version::V2 {
            return Err(malformed("not a version 2 CRL"));
        }
        if tbs.signature != list.signature_algorithm {
            return Err(malformed(
                "inner and outer signature algorithms differ (RFC 5280 5.1.1.2)",
            ));
        }
        let next_update = tbs
            .next_update
            .map(unix)
            .ok_or(malformed("no nextUpdate (a CRL must say when it expires)"))?;
        let this_update = unix(tbs.this_update);
        if next_update < this_update {
            return Err(malformed("nextUpdate lies before thisUpdate"));
        }
        let signature = list
            .signature
            .as_bytes()
            .ok_or(malformed("signature BIT STRING has unused bits"))?
            .to_vec();
        let mut seen: Vec<ObjectIdentifier> = Vec::new();
        for ext in tbs.crl_extensions.iter().flatten() {
            if seen.contains(&ext.extn_id) {
                return Err(malformed("an extension appears twice"));
            }
            seen.push(ext.extn_id);
            if ext.extn_id == oid::DELTA_CRL_INDICATOR {
                return Err(malformed("a delta CRL (only complete CRLs are accepted)"));
            }
            if ext.extn_id == oid::ISSUING_DISTRIBUTION_POINT {
                let idp = x509_cert::ext::pkix::crl::IssuingDistributionPoint::from_der(
                    ext.extn_value.as_bytes(),
                )
                .map_err(|_| malformed("issuingDistributionPoint does not parse"))?;
                if idp.only_contains_user_certs
                    || idp.only_contains_attribute_certs
                    || idp.only_some_reasons.is_some()
                {
                    return Err(malformed(
                        "issuingDistributionPoint narrows the scope (user certificates only, \
                         attribute certificates or some reasons only)",
                    ));
                }
                continue;
            }
            if ext.critical && !oid::KNOWN_CRL.contains(&ext.extn_id) {
                return Err(malformed("unknown critical CRL extension"));
            }
        }
        let mut entries = Vec::new();
        let mut current_issuer: Option<Name> = None;
        for rc in tbs.revoked_certificates.iter().flatten() {
            for ext in rc.crl_entry_extensions.iter().flatten() {
                if ext.extn_id == oid::CERTIFICATE_ISSUER {
                    let names = x509_cert::ext::pkix::name::GeneralNames::from_der(
                        ext.extn_value.as_bytes(),
                    )
                    .map_err(|_| malformed("certificateIssuer entry extension does not parse"))?;
                    let name = names
                        .into_iter()
                        .find_map(|n| match n {
                            x509_cert::ext::pkix::name::GeneralName::DirectoryName(d) => Some(d),
                            _ => None,
                        })
                        .ok_or(malformed("certificateIssuer names no directory name"))?;
                    // Naming the CRL issuer itself is a direct entry again.
                    current_issuer = (name != tbs.issuer).then_some(name);
                } else if ext.critical && !oid::KNOWN_ENTRY.contains(&ext.extn_id) {
                    return Err(malformed("unknown critical CRL entry extension"));
                }
            }
            entries.push(Entry {
                issuer: current_issuer.clone(),
                serial: rc.serial_number.as_bytes().to_vec(),
                revoked_at: unix(rc.revocation_date),
            });
        }
        Ok(SnpCrl {
            tbs: hl..end,
            issuer: tbs.issuer.clone(),
            this_update,
            next_update,
            algorithm: list.signature_algorithm.clone(),
            signature,
            entries,
            der,
        })
    }

    /// The issuer name (for AMD: `CN=ARK-Milan, ...`).
    pub fn issuer(&self) -> String {
        self.issuer.to_string()
    }

    /// `thisUpdate` (unix seconds).
    pub fn this_update(&self) -> u64 {
        self.this_update
    }

    /// `nextUpdate` (unix seconds).
    pub fn next_update(&self) -> u64 {
        self.next_update
    }

    /// The validity window.
    pub fn window(&self) -> CrlWindow {
        CrlWindow {
            this_update: self.this_update,
            next_update: self.next_update,
        }
    }

    /// The revoked certificates, in CRL order.
    pub fn revoked(&self) -> Vec<RevokedEntry> {
        self.entries
            .iter()
            .map(|e| RevokedEntry {
                issuer: e.issuer.as_ref().unwrap_or(&self.issuer).to_string(),
                serial: hex::encode(&e.serial),
                revoked_at: e.revoked_at,
            })
            .collect()
    }

    /// Checks that this CRL is `product`'s, signed by its built-in, pinned ARK, and valid at
    /// `now_unix` (steps 2 to 4 of the module docs). Revocation of a chain is checked by the
    /// verifier ([`crate::verify_evidence_with`] with [`crate::Endorsements::snp_crl`]).
    pub fn verify(&self, product: SnpProduct, now_unix: u64) -> Result<CrlWindow, Error> {
        let ark = Cert::from_der(product.ark_der(), KIND, "ARK")?;
        self.verify_by(&Anchor::of(&ark)?, now_unix)
    }

    /// Steps 2 to 4 against `anchor`. Production code passes only a pinned ARK.
    pub(crate) fn verify_by(&self, anchor: &Anchor, now_unix: u64) -> Result<CrlWindow, Error> {
        use rsa::signature::Verifier as _;
        if self.issuer != anchor.name {
            return Err(Error::CrlWrongIssuer {
                kind: KIND,
                issuer: self.issuer.to_string(),
                expected: anchor.label.clone(),
            });
        }
        check_pss_sha384(&self.algorithm)?;
        let bad_sig = || Error::CrlBadSignature {
            kind: KIND,
            issuer: anchor.label.clone(),
        };
        let sig =
            rsa::pss::Signature::try_from(self.signature.as_slice()).map_err(|_| bad_sig())?;
        rsa::pss::VerifyingKey::<rsa::sha2::Sha384>::new_with_salt_len(
            anchor.key.clone(),
            PSS_SALT_LEN.into(),
        )
        .verify(&self.der[self.tbs.clone()], &sig)
        .map_err(|_| bad_sig())?;
        if now_unix.saturating_add(CRL_CLOCK_SKEW_SECS) < self.this_update {
            return Err(Error::CrlNotYetValid {
                kind: KIND,
                this_update: self.this_update,
                now: now_unix,
            });
        }
        if now_unix > self.next_update {
            return Err(Error::CrlExpired {
                kind: KIND,
                next_update: self.next_update,
                now: now_unix,
            });
        }
        Ok(self.window())
    }

    /// Step 5: none of `certs` is listed. Each certificate comes with whether it was issued by
    /// the CRL's issuer (established by the verified chain, not by comparing names, so that a
    /// different but equivalent encoding of the ARK's name can never hide a revoked ASK): direct
    /// entries apply to those, `certificateIssuer` entries to certificates with that issuer.
    pub(crate) fn check_not_revoked(&self, certs: &[(&Cert, bool)]) -> Result<(), Error> {
        for (c, issued_by_crl_issuer) in certs {
            let tbs = c.parsed.tbs_certificate();
            let serial = tbs.serial_number().as_bytes();
            if let Some(e) = self.entries.iter().find(|e| {
                e.serial == serial
                    && match &e.issuer {
                        None => *issued_by_crl_issuer,
                        Some(n) => n == tbs.issuer(),
                    }
            }) {
                return Err(Error::CertificateRevoked {
                    kind: KIND,
                    which: c.name.clone(),
                    serial: hex::encode(serial),
                    revoked_at: e.revoked_at,
                });
            }
        }
        Ok(())
    }
}

/// Requires RSASSA-PSS with SHA-384, MGF1-SHA-384, a 48-byte salt and the standard trailer.
fn check_pss_sha384(alg: &x509_cert::spki::AlgorithmIdentifierOwned) -> Result<(), Error> {
    let unsupported = Error::UnsupportedAlgorithm {
        kind: KIND,
        what: "CRL signature algorithm (only RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48)",
    };
    if alg.oid != oid::RSASSA_PSS {
        return Err(unsupported);
    }
    // The parameters are decoded by the older generation's `pkcs1::RsaPssParams`: through DER.
    let params = alg
        .parameters
        .as_ref()
        .and_then(|p| p.to_der().ok())
        .ok_or(malformed("RSASSA-PSS without parameters"))?;
    let p = rsa::pkcs1::RsaPssParams::try_from(params.as_slice())
        .map_err(|_| malformed("RSASSA-PSS parameters do not parse"))?;
    let mgf_hash = p.mask_gen.parameters.as_ref().map(|h| h.oid);
    if p.hash.oid != oid07::SHA384
        || p.mask_gen.oid != oid07::MGF1
        || mgf_hash != Some(oid07::SHA384)
        || p.salt_len != PSS_SALT_LEN
        || p.trailer_field != rsa::pkcs1::TrailerField::BC
    {
        return Err(unsupported);
    }
    Ok(())
}

/// The key a CRL must be signed with and the name it must be issued by.
pub(crate) struct Anchor {
    pub(crate) name: Name,
    pub(crate) key: rsa::RsaPublicKey,
    pub(crate) label: String,
}

impl Anchor {
    /// The anchor of a root certificate (in production: always a pinned ARK).
    pub(crate) fn of(ark: &Cert) -> Result<Anchor, Error> {
        use rsa::pkcs8::DecodePublicKey as _;
        let tbs = ark.parsed.tbs_certificate();
        let spki = tbs
            .subject_public_key_info()
            .to_der()
            .map_err(|_| Error::BadCertificate {
                kind: KIND,
                which: ark.name.clone(),
                reason: "public key does not re-encode",
            })?;
        let key = rsa::RsaPublicKey::from_public_key_der(&spki).map_err(|_| {
            Error::UnsupportedAlgorithm {
                kind: KIND,
                what: "ARK key is not RSA",
            }
        })?;
        Ok(Anchor {
            name: tbs.subject().clone(),
            key,
            label: ark.name.clone(),
        })
    }
}

/// Checks `crl` against the chain `ark` → `ask` → `vcek` (already verified, `ark` pinned) at
/// `now_unix`: every step of the module docs.
pub(crate) fn check_chain(
    crl: &[u8],
    ark: &Cert,
    ask: &Cert,
    vcek: &Cert,
    now_unix: u64,
) -> Result<CrlWindow, Error> {
    // The ARK (self-signed) and the ASK are the ARK's; the VCEK is the ASK's.
    check_chain_by(
        crl,
        &Anchor::of(ark)?,
        &[(ark, true), (ask, true), (vcek, false)],
        now_unix,
    )
}

fn check_chain_by(
    crl: &[u8],
    anchor: &Anchor,
    certs: &[(&Cert, bool)],
    now_unix: u64,
) -> Result<CrlWindow, Error> {
    let crl = SnpCrl::parse(crl)?;
    let window = crl.verify_by(anchor, now_unix)?;
    crl.check_not_revoked(certs)?;
    Ok(window)
}

#[cfg(test)]
mod tests;
