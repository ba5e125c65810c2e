//! Sealed developer logs: one record per call, HPKE-sealed inside the engine to the developer's
//! X25519 log key, so that only the holder of the private key (the developer's CLI) reads the
//! function's console output and the call's outcome.
//!
//! Wire form of a sealed record: `header (7) || enc (32) || ct`, the OHTTP request header with
//! key id 0, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM; HPKE
//! `info = "clave/v1/devlog" || 0x00 || header`, `aad = "clave/v1/devlog-aad" || 0x00 ||
//! u16 len || project || u16 len || function`; the plaintext is the JSON of a [`LogRecord`].
//! Changing one bit of a stored record, or filing it under another project or function, makes
//! opening fail.

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ohttp::{
    self, Kem, KeyConfig, PrivateKey, REQUEST_HEADER_LEN, ServerKey, SymmetricSuite, parse_sealed,
};
use crate::types::KeyId;

/// HPKE info label of a sealed log record.
pub const LABEL_DEVLOG: &[u8] = b"clave/v1/devlog";
/// Domain label at the start of a log record's AAD.
pub const LABEL_DEVLOG_AAD: &[u8] = b"clave/v1/devlog-aad";

/// A developer log public key (X25519, 32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LogPublicKey(pub [u8; 32]);

impl std::fmt::Debug for LogPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogPublicKey({})", self.to_hex())
    }
}

impl LogPublicKey {
    /// Lowercase hex (64 digits), as it appears in manifests and the gateway API.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse 64 hex digits (no point validation: see [`LogPublicKey::validate`]; sealing to
    /// an invalid point fails).
    ///
    /// # Errors
    /// [`Error::InvalidHex`].
    pub fn from_hex(s: &str) -> Result<Self> {
        let mut b = [0u8; 32];
        hex::decode_to_slice(s, &mut b).map_err(|_| Error::InvalidHex { what: "log key" })?;
        Ok(Self(b))
    }

    /// Refuse the all-zero and other low-order points (one X25519 operation).
    ///
    /// # Errors
    /// [`Error::InvalidPublicKey`].
    pub fn validate(&self) -> Result<()> {
        self.checked_config().map(drop)
    }

    fn checked_config(&self) -> Result<KeyConfig> {
        KeyConfig::new(
            KeyId(0),
            Kem::X25519HkdfSha256,
            self.0.to_vec(),
            vec![SymmetricSuite::DEFAULT],
        )
    }

    fn config(&self) -> KeyConfig {
        KeyConfig::new_prevalidated(
            KeyId(0),
            Kem::X25519HkdfSha256,
            self.0.to_vec(),
            vec![SymmetricSuite::DEFAULT],
        )
    }
}

/// A developer log key pair (the CLI keeps it; the engine only ever sees the public half).
#[derive(Clone)]
pub struct LogKeyPair {
    key: ServerKey,
    public: LogPublicKey,
}

impl std::fmt::Debug for LogKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogKeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl LogKeyPair {
    /// A new random key pair.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut ikm = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill_bytes(ikm.as_mut());
        let private = PrivateKey::derive(Kem::X25519HkdfSha256, ikm.as_ref());
        Self::from_private(private).expect("a derived X25519 key is valid")
    }

    /// The key pair of 32 private key bytes.
    ///
    /// # Errors
    /// [`Error::InvalidPrivateKey`].
    pub fn from_private_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_private(PrivateKey::from_bytes(Kem::X25519HkdfSha256, bytes)?)
    }

    fn from_private(private: PrivateKey) -> Result<Self> {
        let mut pk = [0u8; 32];
        let raw = private.public_key();
        if raw.len() != 32 {
            return Err(Error::InvalidPrivateKey);
        }
        pk.copy_from_slice(&raw);
        let public = LogPublicKey(pk);
        let key = ServerKey::new(public.checked_config()?, private)?;
        Ok(Self { key, public })
    }

    /// The private key bytes (zeroized on drop).
    #[must_use]
    pub fn private_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        self.key.private_key().to_bytes()
    }

    /// The public key.
    #[must_use]
    pub fn public(&self) -> LogPublicKey {
        self.public
    }

    /// Open a sealed record filed under `project`/`function`.
    ///
    /// # Errors
    /// [`Error::DecryptionFailed`] (tampered, or sealed to another key or under another
    /// project/function), parse errors, [`Error::InvalidJson`].
    pub fn open(&self, project: &str, function: &str, sealed: &[u8]) -> Result<LogRecord> {
        let parsed = parse_sealed(sealed)?;
        let (pt, _) = ohttp::open_with_keys(
            std::slice::from_ref(&self.key),
            &parsed,
            LABEL_DEVLOG,
            &aad(project, function),
        )?;
        serde_json::from_slice(&pt).map_err(|e| Error::InvalidJson {
            what: "log record",
            reason: e.to_string(),
        })
    }
}

fn aad(project: &str, function: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(LABEL_DEVLOG_AAD.len() + 5 + project.len() + function.len());
    out.extend_from_slice(LABEL_DEVLOG_AAD);
    out.push(0);
    for part in [project, function] {
        out.extend_from_slice(&u16::try_from(part.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// Seal `record` to `key`, filed under `project`/`function`.
///
/// # Errors
/// HPKE errors (never for a valid key).
pub fn seal_log(
    key: &LogPublicKey,
    project: &str,
    function: &str,
    record: &LogRecord,
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>> {
    let pt = zeroize::Zeroizing::new(serde_json::to_vec(record).unwrap_or_default());
    let sealed = ohttp::seal_to_config(
        &key.config(),
        LABEL_DEVLOG,
        &aad(project, function),
        &pt,
        rng,
    )?;
    let mut out = Vec::with_capacity(REQUEST_HEADER_LEN + sealed.enc.len() + sealed.ct.len());
    out.extend_from_slice(&sealed.header.encode());
    out.extend_from_slice(&sealed.enc);
    out.extend_from_slice(&sealed.ct);
    Ok(out)
}

/// One console line of a call.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// `log`, `info`, `debug`, `warn`, `error` or `trace`.
    pub level: String,
    /// The text.
    pub text: String,
}

impl std::fmt::Debug for LogLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogLine")
            .field("level", &self.level)
            .field("len", &self.text.len())
            .finish()
    }
}

/// What one call did, as the developer sees it in `clave tail`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// When the call started, unix milliseconds (engine clock).
    pub ts_ms: u64,
    /// The function.
    pub function: String,
    /// The code hash that ran (or was asked for).
    pub code_hash: String,
    /// `ok`, or the problem kind (`script-error`, `timeout`, `out-of-memory`,
    /// `code-hash-mismatch`, `stale-date`, `replay`, `limit-exceeded`, `bad-request`, ...).
    pub outcome: String,
    /// HTTP status sent to the caller (the function's, or the problem's).
    pub status: u16,
    /// The error message (script errors, limits), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The JavaScript stack of an uncaught exception, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// Time in the engine, microseconds.
    pub duration_us: u64,
    /// Request body size, bytes.
    pub request_bytes: u64,
    /// Response body size, bytes (0 for a problem).
    pub response_bytes: u64,
    /// Console output, in order.
    pub console: Vec<LogLine>,
    /// Whether console output beyond the function's limit was dropped.
    #[serde(default)]
    pub console_truncated: bool,
}

impl std::fmt::Debug for LogRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogRecord")
            .field("ts_ms", &self.ts_ms)
            .field("function", &self.function)
            .field("status", &self.status)
            .field("console_lines", &self.console.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ohttp::testing::FixedBytes;

    fn record() -> LogRecord {
        LogRecord {
            ts_ms: 1,
            function: "f".into(),
            code_hash: "00".into(),
            outcome: "ok".into(),
            status: 200,
            message: None,
            stack: None,
            duration_us: 5,
            request_bytes: 1,
            response_bytes: 2,
            console: vec![LogLine {
                level: "log".into(),
                text: "hello".into(),
            }],
            console_truncated: false,
        }
    }

    #[test]
    fn round_trip_and_tamper() {
        let kp = LogKeyPair::generate(&mut FixedBytes::new(&[7]));
        let again = LogKeyPair::from_private_bytes(&kp.private_bytes()).expect("bytes");
        assert_eq!(again.public(), kp.public());
        let pk = LogPublicKey::from_hex(&kp.public().to_hex()).expect("hex");
        let sealed = seal_log(&pk, "p", "f", &record(), &mut FixedBytes::new(&[9])).expect("seal");
        assert_eq!(kp.open("p", "f", &sealed).expect("open"), record());
        // Every single-bit change is refused.
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            let r = kp.open("p", "f", &bad);
            assert!(crate::ohttp::refused_flip(i, &r), "bit flip at {i}: {r:?}");
        }
        assert!(
            matches!(kp.open("p", "g", &sealed), Err(Error::DecryptionFailed)),
            "other function"
        );
        assert!(
            matches!(kp.open("q", "f", &sealed), Err(Error::DecryptionFailed)),
            "other project"
        );
        let r = kp.open("p", "f", &sealed[..20]);
        assert!(
            matches!(r, Err(Error::Truncated { .. })),
            "truncated: {r:?}"
        );
        let other = LogKeyPair::generate(&mut FixedBytes::new(&[8]));
        assert!(
            matches!(other.open("p", "f", &sealed), Err(Error::DecryptionFailed)),
            "other key"
        );
    }

    #[test]
    fn bad_public_keys_are_refused() {
        assert!(matches!(
            LogPublicKey::from_hex("00"),
            Err(Error::InvalidHex { .. })
        ));
        let zero = LogPublicKey::from_hex(&"0".repeat(64)).expect("hex");
        assert!(
            matches!(zero.validate(), Err(Error::InvalidPublicKey)),
            "all-zero point"
        );
        let sealed = seal_log(&zero, "p", "f", &record(), &mut FixedBytes::new(&[9]));
        assert!(
            matches!(sealed, Err(Error::InvalidPublicKey)),
            "sealing to a low-order point fails"
        );
        assert!(matches!(
            LogPublicKey::from_hex(&"g".repeat(64)),
            Err(Error::InvalidHex { .. })
        ));
    }
}
