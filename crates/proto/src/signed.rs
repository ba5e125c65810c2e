//! Signed objects: `{payload: base64url(bytes), signature: base64url(Ed25519(bytes))}`.
//!
//! The signature covers exactly the decoded payload bytes; verification never re-serialises.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::b64;
use crate::error::{Error, Result};

/// A payload with a detached Ed25519 signature, both unpadded base64url.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedObject {
    /// base64url (no padding) of the payload bytes.
    pub payload: String,
    /// base64url (no padding) of the 64-byte Ed25519 signature over the payload bytes.
    pub signature: String,
}

impl SignedObject {
    /// Sign `payload` with `key`.
    #[must_use]
    pub fn sign(key: &SigningKey, payload: &[u8]) -> Self {
        let sig = key.sign(payload);
        Self {
            payload: b64::encode(payload),
            signature: b64::encode(&sig.to_bytes()),
        }
    }

    /// Verify against `key` and return the exact payload bytes that were signed.
    pub fn verify(&self, key: &VerifyingKey) -> Result<Vec<u8>> {
        let payload = b64::decode_field(&self.payload, "payload")?;
        let sig = b64::decode_field(&self.signature, "signature")?;
        let sig: [u8; 64] = sig.as_slice().try_into().map_err(|_| Error::BadSignature)?;
        key.verify_strict(&payload, &Signature::from_bytes(&sig))
            .map_err(|_| Error::BadSignature)?;
        Ok(payload)
    }

    /// JSON text of this object.
    #[must_use]
    pub fn to_json(&self) -> String {
        // Two strings always serialise.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parse JSON text (unknown fields rejected).
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| Error::InvalidJson {
            what: "signed object",
            reason: e.to_string(),
        })
    }
}
