//! Key bundles: spec + key configuration + validity, signed by the KDS identity key.
//!
//! Payload JSON: `{"spec": base64url(spec bytes), "key_config": base64url(key config),
//! "not_before": u64, "not_after": u64}`.

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::b64;
use crate::error::{Error, Result};
use crate::ohttp::KeyConfig;
use crate::signed::SignedObject;
use crate::spec::KeySpec;

/// A published derived key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyBundle {
    /// The spec the key was derived for (travels as its canonical bytes).
    pub spec: KeySpec,
    /// The OHTTP key configuration (key id = first byte of the spec id).
    pub key_config: KeyConfig,
    /// Start of validity, unix seconds (inclusive).
    pub not_before: u64,
    /// End of validity, unix seconds (inclusive).
    pub not_after: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    spec: String,
    key_config: String,
    not_before: u64,
    not_after: u64,
}

impl KeyBundle {
    /// The payload bytes that get signed.
    #[must_use]
    pub fn to_payload(&self) -> Vec<u8> {
        let p = Payload {
            spec: b64::encode(&self.spec.to_bytes()),
            key_config: b64::encode(&self.key_config.encode()),
            not_before: self.not_before,
            not_after: self.not_after,
        };
        // Strings and integers always serialise.
        serde_json::to_vec(&p).unwrap_or_default()
    }

    /// Parse payload bytes: canonical spec, valid key config whose key id matches the spec,
    /// `not_before <= not_after`.
    pub fn from_payload(bytes: &[u8]) -> Result<Self> {
        let p: Payload = serde_json::from_slice(bytes).map_err(|e| Error::InvalidJson {
            what: "key bundle",
            reason: e.to_string(),
        })?;
        let spec = KeySpec::from_bytes(&b64::decode_field(&p.spec, "spec")?)?;
        let key_config = KeyConfig::decode(&b64::decode_field(&p.key_config, "key_config")?)?;
        let expected = spec.id().key_id();
        if key_config.key_id() != expected {
            return Err(Error::KeyIdMismatch {
                config: key_config.key_id().0,
                spec: expected.0,
            });
        }
        if p.not_before > p.not_after {
            return Err(Error::InvalidValidity);
        }
        Ok(Self {
            spec,
            key_config,
            not_before: p.not_before,
            not_after: p.not_after,
        })
    }

    /// Sign with the KDS identity key.
    #[must_use]
    pub fn sign(&self, identity: &SigningKey) -> SignedObject {
        SignedObject::sign(identity, &self.to_payload())
    }

    /// Verify the signature with the KDS identity key, parse, and check validity at `now`.
    pub fn verify(signed: &SignedObject, identity: &VerifyingKey, now: u64) -> Result<Self> {
        let bundle = Self::from_payload(&signed.verify(identity)?)?;
        bundle.check_validity(now)?;
        Ok(bundle)
    }

    /// Check `not_before <= now <= not_after`.
    pub fn check_validity(&self, now: u64) -> Result<()> {
        if now < self.not_before {
            return Err(Error::NotYetValid {
                not_before: self.not_before,
                now,
            });
        }
        if now > self.not_after {
            return Err(Error::Expired {
                not_after: self.not_after,
                now,
            });
        }
        Ok(())
    }
}
