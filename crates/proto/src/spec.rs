//! Key specs: `{purpose, policy, epoch}` with one canonical byte encoding.

use clave_attest::Policy;
use serde::{Deserialize, Serialize};

use crate::canonical;
use crate::error::{Error, Result};
use crate::types::SpecId;

/// What a derived key is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPurpose {
    /// Long-lived: developers seal code to it.
    Code,
    /// Rotated by epoch: users seal invoke requests to it.
    Invoke,
}

/// A key spec: the public description of one derived key. Its canonical bytes name the key.
///
/// Canonical bytes are JSON with object members sorted by key and no whitespace, e.g.
/// `{"epoch":3,"policy":{...},"purpose":"invoke"}`; [`KeySpec::from_bytes`] accepts only that
/// encoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// Code or invoke.
    pub purpose: KeyPurpose,
    /// Who may receive the private key (attestation reference values).
    pub policy: Policy,
    /// Rotation counter (0 for code keys by convention).
    pub epoch: u64,
}

impl KeySpec {
    /// Build a spec.
    #[must_use]
    pub fn new(purpose: KeyPurpose, policy: Policy, epoch: u64) -> Self {
        Self {
            purpose,
            policy,
            epoch,
        }
    }

    /// The canonical encoding.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        match serde_json::to_value(self) {
            Ok(v) => canonical::to_vec(&v),
            // A struct of strings, integers and lists always serialises.
            Err(_) => Vec::new(),
        }
    }

    /// Decode, accepting only the canonical encoding (decode, re-encode, compare).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let spec: KeySpec = serde_json::from_slice(bytes).map_err(|e| Error::InvalidJson {
            what: "key spec",
            reason: e.to_string(),
        })?;
        if spec.to_bytes() != bytes {
            return Err(Error::NonCanonical { what: "key spec" });
        }
        Ok(spec)
    }

    /// `SHA-256(canonical bytes)`.
    #[must_use]
    pub fn id(&self) -> SpecId {
        SpecId::of_bytes(&self.to_bytes())
    }
}
