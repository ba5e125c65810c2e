//! The code envelope: a manifest in the clear and the code HPKE-sealed to the `code` key.
//!
//! Sealed code wire form: `header (7) || SHA-256(manifest bytes) (32) || enc || ct`, where the
//! header is the OHTTP request header (key id, KEM, KDF, AEAD), HPKE `info = "clave/v1/code" ||
//! 0x00 || header` and `aad = SHA-256(manifest bytes)`.

use std::collections::BTreeMap;

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::ohttp::{
    self, KeyConfig, REQUEST_HEADER_LEN, Reader, RequestHeader, ServerKey, parse_body,
};
use crate::outbound::HostPattern;
use crate::types::{CodeHash, FunctionName, KeyId, ProjectName};

/// HPKE info label of sealed code.
pub const LABEL_CODE: &[u8] = b"clave/v1/code";

/// Per-function limits, enforced by the engine within platform maxima.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// CPU time per invocation, milliseconds.
    pub cpu_ms: u64,
    /// JS heap, bytes.
    pub heap_bytes: u64,
    /// JS stack, bytes.
    pub stack_bytes: u64,
    /// Largest accepted request body, bytes.
    pub max_request_bytes: u64,
    /// Largest allowed response body, bytes.
    pub max_response_bytes: u64,
    /// Largest console output kept, bytes.
    pub max_console_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu_ms: 1_000,
            heap_bytes: 64 << 20,
            stack_bytes: 1 << 20,
            max_request_bytes: 1 << 20,
            max_response_bytes: 1 << 20,
            max_console_bytes: 64 << 10,
        }
    }
}

/// A deploy manifest. Its exact JSON bytes are bound to the sealed code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Function name.
    pub name: FunctionName,
    /// The project the function is deployed to. The engine runs the code only for requests
    /// that name this project (and this function). `None` (absent from the JSON) only in
    /// manifests made before projects were named; such code runs for a request naming any
    /// project, as long as its function name and code hash match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<ProjectName>,
    /// SHA-256 of the code bytes.
    pub code_hash: CodeHash,
    /// Entry module name (e.g. `index.js`).
    pub entry: String,
    /// Limits.
    pub limits: Limits,
    /// Creation time, unix seconds.
    pub created: u64,
    /// Plain configuration values the function reads as `env.NAME` (visible to the operator:
    /// never put secrets here). Absent from the JSON when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    /// Names of the sealed secrets the function may read as `env.NAME`: the engine passes a
    /// secret only if its name is listed here, so a user who pins this manifest sees which
    /// secrets the code can use (not their values, which may rotate). Absent when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// The developer log key (X25519 public key, 64 hex digits): the engine seals one log record
    /// per call (console output and outcome) to it. `None`: no logs are produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_key: Option<String>,
    /// The hosts the function may reach with `fetch()` (HTTPS only, see
    /// [`crate::outbound::HostPattern`]); empty (absent from the JSON) means none. At most
    /// [`crate::outbound::MAX_OUTBOUND_HOSTS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outbound: Vec<HostPattern>,
}

impl Manifest {
    /// JSON bytes (fields in declaration order, compact).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        // Strings and integers always serialise.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parse manifest JSON (unknown fields rejected; outbound host patterns validated; var and
    /// secret names must be valid [`crate::secret::is_valid_secret_name`]s and distinct, the log
    /// key a valid X25519 key).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let m: Self = serde_json::from_slice(bytes).map_err(|e| Error::InvalidJson {
            what: "manifest",
            reason: e.to_string(),
        })?;
        crate::outbound::check_list(&m.outbound)?;
        m.check_env()?;
        Ok(m)
    }

    /// Check `vars`, `secrets` and `log_key`.
    ///
    /// # Errors
    /// [`Error::InvalidJson`] naming the offending entry.
    pub fn check_env(&self) -> Result<()> {
        let bad = |reason: String| Error::InvalidJson {
            what: "manifest",
            reason,
        };
        for name in self.vars.keys().chain(self.secrets.iter()) {
            if !crate::secret::is_valid_secret_name(name) {
                return Err(bad(format!(
                    "{name:?} is not a valid var or secret name (A-Z, a-z, 0-9, _; not starting with a digit; at most 64)"
                )));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for name in &self.secrets {
            if !seen.insert(name) || self.vars.contains_key(name) {
                return Err(bad(format!("{name:?} is listed twice in vars and secrets")));
            }
        }
        if let Some(k) = &self.log_key {
            crate::devlog::LogPublicKey::from_hex(k)
                .map_err(|_| bad("log_key is not 64 hex digits".to_owned()))?;
        }
        Ok(())
    }

    /// `SHA-256(manifest bytes)`: the AAD of the sealed code.
    #[must_use]
    pub fn digest(manifest_bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(manifest_bytes).into()
    }
}

/// Code sealed to a code key configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedCode {
    header: RequestHeader,
    manifest_digest: [u8; 32],
    enc: Vec<u8>,
    ciphertext: Vec<u8>,
}

impl std::fmt::Debug for SealedCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedCode")
            .field("header", &self.header)
            .field("manifest_digest", &hex::encode(self.manifest_digest))
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

impl SealedCode {
    /// Key id of the code key it is sealed to.
    #[must_use]
    pub fn key_id(&self) -> KeyId {
        self.header.key_id
    }

    /// The manifest digest it is bound to.
    #[must_use]
    pub fn manifest_digest(&self) -> &[u8; 32] {
        &self.manifest_digest
    }

    /// Wire bytes.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(REQUEST_HEADER_LEN + 32 + self.enc.len() + self.ciphertext.len());
        out.extend_from_slice(&self.header.encode());
        out.extend_from_slice(&self.manifest_digest);
        out.extend_from_slice(&self.enc);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Parse wire bytes (structure and algorithm ids only; nothing is decrypted).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let header = RequestHeader::decode(r.take(REQUEST_HEADER_LEN, "sealed code header")?)?;
        let digest = r.take(32, "manifest digest")?;
        let parsed = parse_body(header, r.rest())?;
        let mut manifest_digest = [0u8; 32];
        manifest_digest.copy_from_slice(digest);
        Ok(Self {
            header,
            manifest_digest,
            enc: parsed.enc.to_vec(),
            ciphertext: parsed.ct.to_vec(),
        })
    }
}

/// Seal `code` to `config`, bound to `manifest_bytes`. Refuses code that does not match the
/// manifest's `code_hash`.
pub fn seal_code(
    config: &KeyConfig,
    manifest_bytes: &[u8],
    code: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<SealedCode> {
    let manifest = Manifest::from_bytes(manifest_bytes)?;
    check_code_hash(&manifest, code)?;
    seal_code_unbound(config, manifest_bytes, code, rng)
}

/// `code`'s hash, if it is the one `manifest` names.
fn check_code_hash(manifest: &Manifest, code: &[u8]) -> Result<CodeHash> {
    let actual = CodeHash::of(code);
    if actual != manifest.code_hash {
        return Err(Error::CodeHashMismatch {
            expected: manifest.code_hash,
            actual,
        });
    }
    Ok(actual)
}

/// Seal `code` to `config` with AAD = SHA-256(`manifest_bytes`), without checking the code
/// against the manifest (the callers do, or deliberately do not).
fn seal_code_unbound(
    config: &KeyConfig,
    manifest_bytes: &[u8],
    code: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<SealedCode> {
    let digest = Manifest::digest(manifest_bytes);
    let sealed = ohttp::seal_to_config(config, LABEL_CODE, &digest, code, rng)?;
    Ok(SealedCode {
        header: sealed.header,
        manifest_digest: digest,
        enc: sealed.enc,
        ciphertext: sealed.ct,
    })
}

/// Open sealed code with `key`: checks the manifest binding (AAD), decrypts, and requires the
/// code to hash to the manifest's `code_hash`. Returns the code and its verified hash.
pub fn open_code(
    key: &ServerKey,
    manifest_bytes: &[u8],
    sealed: &SealedCode,
) -> Result<(Vec<u8>, CodeHash)> {
    open_code_with_keys(std::slice::from_ref(key), manifest_bytes, sealed)
}

/// [`open_code`] choosing among several code keys by key id.
pub fn open_code_with_keys(
    keys: &[ServerKey],
    manifest_bytes: &[u8],
    sealed: &SealedCode,
) -> Result<(Vec<u8>, CodeHash)> {
    let digest = Manifest::digest(manifest_bytes);
    if digest != sealed.manifest_digest {
        return Err(Error::ManifestMismatch);
    }
    let manifest = Manifest::from_bytes(manifest_bytes)?;
    let parsed = ohttp::Parsed {
        header: sealed.header,
        enc: &sealed.enc,
        ct: &sealed.ciphertext,
    };
    let (code, _) = ohttp::open_with_keys(keys, &parsed, LABEL_CODE, &digest)?;
    let actual = check_code_hash(&manifest, &code)?;
    Ok((code, actual))
}

/// Test-only hooks. Never use them in a service.
#[doc(hidden)]
pub mod testing {
    use super::*;

    /// Seal without checking the code against the manifest, to exercise
    /// [`Error::CodeHashMismatch`] on the opening side.
    pub fn seal_code_unchecked(
        config: &KeyConfig,
        manifest_bytes: &[u8],
        code: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<SealedCode> {
        seal_code_unbound(config, manifest_bytes, code, rng)
    }
}

#[cfg(test)]
mod env_tests {
    use super::*;

    fn manifest_json(extra: &str) -> Vec<u8> {
        format!(
            r#"{{"name":"f","code_hash":"{}","entry":"index.js","limits":{},"created":1{extra}}}"#,
            "00".repeat(32),
            serde_json::to_string(&Limits::default()).expect("limits")
        )
        .into_bytes()
    }

    #[test]
    fn old_manifests_parse_and_keep_their_bytes() {
        let old = manifest_json("");
        let m = Manifest::from_bytes(&old).expect("old manifest");
        assert!(m.vars.is_empty() && m.secrets.is_empty() && m.log_key.is_none());
        assert_eq!(m.to_bytes(), old, "no new field is written when unused");
    }

    #[test]
    fn vars_secrets_and_log_key_are_checked() {
        let key = format!(r#","log_key":"{}""#, "ab".repeat(32));
        let good = manifest_json(&format!(r#","vars":{{"A":"1"}},"secrets":["B"]{key}"#));
        let m = Manifest::from_bytes(&good).expect("good");
        assert_eq!(m.to_bytes(), good);
        for (bad, why) in [
            (
                r#","vars":{"1A":"x"}"#,
                "\"1A\" is not a valid var or secret name",
            ),
            (
                r#","secrets":["a-b"]"#,
                "\"a-b\" is not a valid var or secret name",
            ),
            (r#","secrets":["A","A"]"#, "\"A\" is listed twice"),
            (
                r#","vars":{"A":"1"},"secrets":["A"]"#,
                "\"A\" is listed twice",
            ),
            (r#","log_key":"zz""#, "log_key is not 64 hex digits"),
            (r#","log_key":"abcd""#, "log_key is not 64 hex digits"),
        ] {
            let r = Manifest::from_bytes(&manifest_json(bad));
            assert!(
                matches!(&r, Err(Error::InvalidJson { reason, .. }) if reason.contains(why)),
                "{bad}: {r:?}"
            );
        }
    }
}
