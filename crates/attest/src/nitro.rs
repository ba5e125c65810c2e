//! AWS Nitro Enclaves attestation document parsing (structure only).
//!
//! A document is a COSE_Sign1 structure (optionally CBOR tag 18): `[protected, unprotected,
//! payload, signature]`, whose payload is a CBOR map with `module_id`, `digest` (`SHA384`),
//! `timestamp` (milliseconds), `pcrs`, `certificate`, `cabundle`, and optional `public_key`,
//! `user_data`, `nonce`. The ECDSA P-384 signature and the certificate chain to the AWS Nitro
//! root are **not** checked here (a later issue), so [`crate::verify()`] refuses Nitro evidence
//! with [`Error::Unsupported`].

use crate::Error;
use crate::cbor::{self, Value};
use crate::claims::Claims;
use crate::types::{Measurement, ReportData, SignerId, Tcb, TeeKind};

const WHAT: &str = "Nitro attestation document";

/// The fields of a Nitro attestation document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NitroDocument {
    /// The enclave's module id.
    pub module_id: String,
    /// The PCR digest algorithm (always `SHA384`).
    pub digest: String,
    /// When the document was made (unix milliseconds).
    pub timestamp_ms: u64,
    /// PCRs by index, sorted.
    pub pcrs: Vec<(u16, Vec<u8>)>,
    /// The DER signing certificate.
    pub certificate: Vec<u8>,
    /// The DER CA bundle, root first.
    pub cabundle: Vec<Vec<u8>>,
    /// Optional public key chosen by the enclave.
    pub public_key: Option<Vec<u8>>,
    /// Optional user data chosen by the enclave (clave: the 64 bytes of report data).
    pub user_data: Option<Vec<u8>>,
    /// Optional nonce chosen by the enclave.
    pub nonce: Option<Vec<u8>>,
    /// The COSE protected header (signed).
    pub protected: Vec<u8>,
    /// The COSE payload bytes (signed).
    pub payload: Vec<u8>,
    /// The COSE signature.
    pub signature: Vec<u8>,
}

fn malformed(reason: &'static str) -> Error {
    Error::Malformed { what: WHAT, reason }
}

fn opt_bytes(map: &Value, key: &str) -> Result<Option<Vec<u8>>, Error> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bytes(b)) => Ok(Some(b.clone())),
        Some(_) => Err(malformed("optional field is neither bytes nor null")),
    }
}

impl NitroDocument {
    /// Parses a raw document.
    pub fn parse(bytes: &[u8]) -> Result<NitroDocument, Error> {
        let top = cbor::decode(bytes)?;
        let top = match top {
            Value::Tag(18, inner) => *inner,
            Value::Tag(..) => return Err(malformed("unexpected CBOR tag")),
            other => other,
        };
        let Value::Array(parts) = top else {
            return Err(malformed("not a COSE_Sign1 array"));
        };
        let [protected, unprotected, payload, signature] = <[Value; 4]>::try_from(parts)
            .map_err(|_| malformed("COSE_Sign1 does not have 4 elements"))?;
        let (
            Value::Bytes(protected),
            Value::Map(_),
            Value::Bytes(payload),
            Value::Bytes(signature),
        ) = (protected, unprotected, payload, signature)
        else {
            return Err(malformed("COSE_Sign1 element of the wrong type"));
        };
        let doc = cbor::decode(&payload)?;
        if doc.as_map().is_none() {
            return Err(malformed("payload is not a map"));
        }
        let text = |k| {
            doc.get(k)
                .and_then(Value::as_text)
                .map(str::to_owned)
                .ok_or(malformed("missing or non-text field"))
        };
        let module_id = text("module_id")?;
        let digest = text("digest")?;
        if digest != "SHA384" {
            return Err(malformed("digest is not SHA384"));
        }
        let timestamp_ms = match doc.get("timestamp") {
            Some(Value::Uint(t)) => *t,
            _ => return Err(malformed("missing or non-integer timestamp")),
        };
        let mut pcrs = Vec::new();
        for (k, v) in doc
            .get("pcrs")
            .and_then(Value::as_map)
            .ok_or(malformed("missing pcrs map"))?
        {
            let (Value::Uint(i), Value::Bytes(p)) = (k, v) else {
                return Err(malformed("pcr entry of the wrong type"));
            };
            let i = u16::try_from(*i)
                .ok()
                .filter(|i| *i < 32)
                .ok_or(malformed("pcr index out of range"))?;
            if ![32, 48, 64].contains(&p.len()) {
                return Err(malformed("pcr length is not 32, 48 or 64"));
            }
            pcrs.push((i, p.clone()));
        }
        pcrs.sort();
        if pcrs.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(malformed("duplicate pcr index"));
        }
        let certificate = doc
            .get("certificate")
            .and_then(Value::as_bytes)
            .ok_or(malformed("missing certificate"))?
            .to_vec();
        let cabundle = match doc.get("cabundle") {
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|c| c.as_bytes().map(<[u8]>::to_vec))
                .collect::<Option<Vec<_>>>()
                .ok_or(malformed("cabundle entry is not bytes"))?,
            _ => return Err(malformed("missing or empty cabundle")),
        };
        Ok(NitroDocument {
            module_id,
            digest,
            timestamp_ms,
            pcrs,
            certificate,
            cabundle,
            public_key: opt_bytes(&doc, "public_key")?,
            user_data: opt_bytes(&doc, "user_data")?,
            nonce: opt_bytes(&doc, "nonce")?,
            protected,
            payload,
            signature,
        })
    }

    /// A PCR by index.
    pub fn pcr(&self, index: u16) -> Option<&[u8]> {
        self.pcrs
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, p)| p.as_slice())
    }

    /// The claims the document makes. **Unverified**: nothing here checks the signature.
    ///
    /// Measurement = PCR0 (the whole enclave image file; PCR1 and PCR2 are hashes of parts of
    /// it and can be pinned through the policy's `registers`); signer = PCR8 (the signing
    /// certificate), unless absent or zero; debug = PCR0, PCR1 or PCR2 is all zeros
    /// (debug-mode enclaves report zeroed PCRs).
    ///
    /// Report data: if `user_data` is exactly 64 bytes it *is* the report data (what clave's
    /// own attester writes). Otherwise the 64 bytes are
    /// `ReportData::hash_of(b"clave/v1/nitro-binding", [public_key, user_data, nonce])`, each
    /// part prefixed with 0x01 when present and given as the single byte 0x00 when absent, so
    /// documents made by other software still bind all three fields.
    pub fn claims_unverified(&self) -> Result<Claims, Error> {
        let pcr0 = self.pcr(0).ok_or(malformed("PCR0 missing"))?;
        let signer = self
            .pcr(8)
            .filter(|p| p.iter().any(|&b| b != 0))
            .map(|p| SignerId(p.to_vec()));
        let report_data = match self.user_data.as_deref().map(<[u8; 64]>::try_from) {
            Some(Ok(rd)) => rd,
            _ => {
                nitro_binding(
                    self.public_key.as_deref(),
                    self.user_data.as_deref(),
                    self.nonce.as_deref(),
                )
                .0
            }
        };
        let debug = [0u16, 1, 2]
            .iter()
            .any(|i| self.pcr(*i).is_some_and(|p| p.iter().all(|&b| b == 0)));
        Ok(Claims {
            kind: TeeKind::Nitro,
            measurement: Measurement(pcr0.to_vec()),
            signer,
            product_id: None,
            svn: 0,
            tcb: Tcb::default(),
            debug,
            report_data: ReportData(report_data),
            issued_at: Some(self.timestamp_ms / 1000),
            insecure: false,
            platform: Default::default(),
        })
    }
}

/// The report data of a Nitro document whose `user_data` is not exactly 64 bytes (see
/// [`NitroDocument::claims_unverified`]).
pub fn nitro_binding(
    public_key: Option<&[u8]>,
    user_data: Option<&[u8]>,
    nonce: Option<&[u8]>,
) -> ReportData {
    let part = |p: Option<&[u8]>| match p {
        Some(b) => [&[1u8][..], b].concat(),
        None => vec![0u8],
    };
    let (a, b, c) = (part(public_key), part(user_data), part(nonce));
    ReportData::hash_of(b"clave/v1/nitro-binding", &[&a, &b, &c])
}

/// SHA-256 of the DER of the AWS Nitro Enclaves root certificate G1 (`CN=aws.nitro-enclaves`,
/// valid to 2049), as published by AWS. The only root Nitro documents may chain to.
pub const AWS_NITRO_ROOT_G1_SHA256: [u8; 32] = [
    0x64, 0x1a, 0x03, 0x21, 0xa3, 0xe2, 0x44, 0xef, 0xe4, 0x56, 0x46, 0x31, 0x95, 0xd6, 0x06, 0x31,
    0x7e, 0xd7, 0xcd, 0xcc, 0x3c, 0x17, 0x56, 0xe0, 0x98, 0x93, 0xf3, 0xc6, 0x8f, 0x79, 0xbb, 0x5b,
];

/// The built-in AWS Nitro root G1 (DER).
pub const AWS_NITRO_ROOT_G1_DER: &[u8] = include_bytes!("../roots/aws_nitro_root_g1.der");

/// COSE algorithm ES384.
const COSE_ALG_ES384: i64 = -35;
/// At most this many certificates in `cabundle`.
const MAX_CABUNDLE: usize = 8;

/// Verifies a Nitro attestation document at `now_unix` and returns its claims (no policy).
///
/// Checks, each with its own error: the COSE_Sign1 structure (untagged or tag 18) and its
/// protected header (`alg` = ES384 and nothing else is accepted); the chain `cabundle[0]` (must
/// be the pinned AWS Nitro root G1, compared by SHA-256 of its DER) → … → `certificate`, each
/// signature ECDSA P-384/SHA-384 over the raw TBS bytes, every intermediate a CA, every
/// certificate valid at `now_unix`; the COSE signature (ES384, 96 bytes `r‖s`, both in range)
/// by the leaf key over the `Sig_structure` built from the exact protected-header and payload
/// bytes. Debug-mode enclaves pass all of this (their PCRs are zero): the claims say `debug`
/// and [`crate::verify()`] refuses them.
pub fn verify_document(bytes: &[u8], now_unix: u64) -> Result<Claims, Error> {
    use coset::{CborSerializable as _, TaggedCborSerializable as _};
    use p384::ecdsa::signature::Verifier as _;

    let kind = TeeKind::Nitro;
    // Structure and payload through our strict reader first (bounded, no panics)...
    let doc = NitroDocument::parse(bytes)?;
    // ...then the COSE layer through coset, which must agree.
    let sign1 = if bytes.first() == Some(&0xd2) {
        coset::CoseSign1::from_tagged_slice(bytes)
    } else {
        coset::CoseSign1::from_slice(bytes)
    }
    .map_err(|_| malformed("COSE_Sign1 rejected by coset"))?;
    if sign1.protected.original_data.as_deref() != Some(doc.protected.as_slice())
        || sign1.payload.as_deref() != Some(doc.payload.as_slice())
    {
        return Err(malformed("COSE_Sign1 decoders disagree"));
    }
    let h = &sign1.protected.header;
    let alg_ok = h.alg
        == Some(coset::RegisteredLabelWithPrivate::Assigned(
            coset::iana::Algorithm::ES384,
        ))
        || h.alg
            == Some(coset::RegisteredLabelWithPrivate::PrivateUse(
                COSE_ALG_ES384,
            ));
    if !alg_ok {
        return Err(Error::UnsupportedAlgorithm {
            kind,
            what: "COSE algorithm (only ES384)",
        });
    }
    if !h.crit.is_empty() {
        return Err(Error::UnsupportedAlgorithm {
            kind,
            what: "COSE critical headers",
        });
    }

    // Certificate chain: cabundle[0] is the root, then intermediates, then the leaf.
    if doc.cabundle.len() > MAX_CABUNDLE {
        return Err(malformed("cabundle has more than 8 certificates"));
    }
    let mut chain = Vec::with_capacity(doc.cabundle.len() + 1);
    for (i, der) in doc.cabundle.iter().enumerate() {
        let role = if i == 0 {
            "root".to_owned()
        } else {
            format!("cabundle[{i}]")
        };
        chain.push(crate::pki::Cert::from_der(der, kind, &role)?);
    }
    chain.push(crate::pki::Cert::from_der(&doc.certificate, kind, "leaf")?);
    let root = &chain[0];
    let fp = crate::pki::fingerprint(&root.der);
    if fp != AWS_NITRO_ROOT_G1_SHA256 || root.der != AWS_NITRO_ROOT_G1_DER {
        return Err(Error::UntrustedRoot {
            kind,
            fingerprint: hex::encode(fp),
        });
    }
    for cert in &chain {
        cert.check_validity(kind, now_unix)?;
    }
    for pair in chain.windows(2) {
        let (parent, child) = (&pair[0], &pair[1]);
        if !parent.is_ca() {
            return Err(Error::BadCertificate {
                kind,
                which: parent.name.clone(),
                reason: "issues certificates but is not a CA",
            });
        }
        child.verify_ecdsa_p384_by(parent, kind)?;
    }

    // The document signature, by the leaf.
    let leaf = chain.last().ok_or(malformed("empty chain"))?;
    let key = leaf.p384_key(kind)?;
    if doc.signature.len() != 96 {
        return Err(malformed("ES384 signature is not 96 bytes"));
    }
    let sig = p384::ecdsa::Signature::from_slice(&doc.signature)
        .map_err(|_| malformed("ES384 signature r or s is zero or out of range"))?;
    let tbs = sign1.tbs_data(&[]);
    key.verify(&tbs, &sig)
        .map_err(|_| Error::BadSignature(kind))?;

    let mut claims = doc.claims_unverified()?;
    for (i, p) in &doc.pcrs {
        claims
            .platform
            .registers
            .insert(format!("pcr{i}"), Measurement(p.clone()));
    }
    Ok(claims)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cbor::{put_bytes, put_head, put_null, put_text};

    /// A structurally valid synthetic document (not signed).
    pub(crate) fn synthetic_document(user_data: Option<&[u8]>, pcr0: u8) -> Vec<u8> {
        let mut p = Vec::new();
        put_head(&mut p, 5, 9);
        put_text(&mut p, "module_id");
        put_text(&mut p, "i-0123-enc0123");
        put_text(&mut p, "digest");
        put_text(&mut p, "SHA384");
        put_text(&mut p, "timestamp");
        put_head(&mut p, 0, 1_800_000_000_123);
        put_text(&mut p, "pcrs");
        put_head(&mut p, 5, 2);
        put_head(&mut p, 0, 0);
        put_bytes(&mut p, &[pcr0; 48]);
        put_head(&mut p, 0, 8);
        put_bytes(&mut p, &[0x88; 48]);
        put_text(&mut p, "certificate");
        put_bytes(&mut p, b"cert");
        put_text(&mut p, "cabundle");
        put_head(&mut p, 4, 1);
        put_bytes(&mut p, b"root");
        put_text(&mut p, "public_key");
        put_null(&mut p);
        put_text(&mut p, "user_data");
        match user_data {
            Some(u) => put_bytes(&mut p, u),
            None => put_null(&mut p),
        }
        put_text(&mut p, "nonce");
        put_null(&mut p);

        let mut d = Vec::new();
        put_head(&mut d, 6, 18);
        put_head(&mut d, 4, 4);
        put_bytes(&mut d, &[0xa1, 0x01, 0x38, 0x22]); // {1: -35} (ES384)
        put_head(&mut d, 5, 0);
        put_bytes(&mut d, &p);
        put_bytes(&mut d, &[0x55; 96]);
        d
    }

    #[test]
    fn parses_and_maps_claims() {
        let doc = NitroDocument::parse(&synthetic_document(Some(&[7; 64]), 0x11)).expect("parse");
        assert_eq!(doc.module_id, "i-0123-enc0123");
        assert_eq!(doc.pcr(0), Some(&[0x11; 48][..]));
        assert_eq!(doc.cabundle, vec![b"root".to_vec()]);
        let c = doc.claims_unverified().expect("claims");
        assert_eq!(c.measurement, Measurement(vec![0x11; 48]));
        assert_eq!(c.signer, Some(SignerId(vec![0x88; 48])));
        assert_eq!(c.report_data, ReportData([7; 64]));
        assert_eq!(c.issued_at, Some(1_800_000_000));
        assert!(!c.debug);
    }

    #[test]
    fn zero_pcr0_means_debug_and_other_user_data_is_hashed() {
        let doc = NitroDocument::parse(&synthetic_document(Some(&[7; 64]), 0)).expect("parse");
        assert!(doc.claims_unverified().expect("claims").debug);
        let doc = NitroDocument::parse(&synthetic_document(Some(&[7; 63]), 1)).expect("parse");
        let c = doc.claims_unverified().expect("claims");
        assert_eq!(c.report_data, nitro_binding(None, Some(&[7; 63]), None));
        let doc = NitroDocument::parse(&synthetic_document(None, 1)).expect("parse");
        let c2 = doc.claims_unverified().expect("claims");
        assert_eq!(c2.report_data, nitro_binding(None, None, None));
        assert_ne!(c.report_data, c2.report_data);
        assert_ne!(
            nitro_binding(None, Some(b""), None),
            nitro_binding(None, None, None)
        );
        assert_ne!(
            nitro_binding(Some(b"a"), None, None),
            nitro_binding(None, Some(b"a"), None)
        );
    }

    #[test]
    fn truncation_and_garbage_are_errors() {
        let good = synthetic_document(Some(&[7; 64]), 0x11);
        for len in 0..good.len() {
            let r = NitroDocument::parse(&good[..len]);
            assert!(
                matches!(r, Err(Error::Truncated { what: "CBOR" })),
                "len {len}: {r:?}"
            );
        }
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(
            NitroDocument::parse(&long),
            Err(Error::TrailingBytes { .. })
        ));
        assert!(matches!(
            NitroDocument::parse(&[0x80]),
            Err(Error::Malformed {
                reason: "COSE_Sign1 does not have 4 elements",
                ..
            })
        ));
        assert!(matches!(
            NitroDocument::parse(&[0xd3, 0x80]),
            Err(Error::Malformed {
                reason: "unexpected CBOR tag",
                ..
            })
        ));
        // Every single-byte corruption is either an error or parses; it never panics.
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0xff;
            let _ = NitroDocument::parse(&b);
        }
    }
}
