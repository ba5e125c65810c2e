//! The one error type of `clave-proto`.

use crate::types::CodeHash;

/// Everything that can go wrong while encoding, decoding, sealing or opening a clave message.
///
/// Variants describe the *input* that was rejected. None of them carries key material or
/// plaintext; the few that carry strings carry parser diagnostics only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended inside `what`.
    #[error("truncated {what}: need {needed} bytes, have {got}")]
    Truncated {
        /// The structure that was cut short.
        what: &'static str,
        /// Bytes needed to finish it.
        needed: usize,
        /// Bytes that were available.
        got: usize,
    },
    /// Bytes were left over after a complete `what`.
    #[error("{count} trailing bytes after {what}")]
    TrailingBytes {
        /// The structure that was complete.
        what: &'static str,
        /// Number of unexpected bytes.
        count: usize,
    },
    /// A length field is outside the range the format allows.
    #[error("length {len} of {what} is out of range")]
    LengthOutOfRange {
        /// The length-prefixed structure.
        what: &'static str,
        /// The offending length.
        len: usize,
    },
    /// The KEM identifier is not one clave implements (or not the one of the selected key).
    #[error("unsupported KEM 0x{0:04x}")]
    UnsupportedKem(u16),
    /// The KDF identifier is not supported (clave implements HKDF-SHA256 only).
    #[error("unsupported KDF 0x{0:04x}")]
    UnsupportedKdf(u16),
    /// The AEAD identifier is not supported (clave implements AES-128-GCM and AES-256-GCM).
    #[error("unsupported AEAD 0x{0:04x}")]
    UnsupportedAead(u16),
    /// A key configuration lists no (KDF, AEAD) pair that clave supports.
    #[error("key configuration offers no supported symmetric suite")]
    NoSupportedSuite,
    /// A key configuration list contains no configuration that clave supports.
    #[error("key configuration list contains no supported configuration")]
    NoSupportedKeyConfig,
    /// No server key has this key identifier.
    #[error("unknown key id {0}")]
    UnknownKeyId(u8),
    /// A public key (or encapsulated key) is malformed, all-zero or of low order.
    #[error("invalid public key")]
    InvalidPublicKey,
    /// A private key is malformed or does not match its key configuration.
    #[error("invalid private key")]
    InvalidPrivateKey,
    /// AEAD authentication failed: the ciphertext, header or context is wrong.
    #[error("decryption failed")]
    DecryptionFailed,
    /// An Ed25519 signature did not verify (or was malformed).
    #[error("bad signature")]
    BadSignature,
    /// A base64url field is not canonical unpadded base64url.
    #[error("invalid base64url in {field}")]
    InvalidBase64 {
        /// The field that held it.
        field: &'static str,
    },
    /// A hex field is not 64 lowercase hex digits.
    #[error("invalid hex in {what}")]
    InvalidHex {
        /// The field that held it.
        what: &'static str,
    },
    /// JSON that does not parse into `what`.
    #[error("invalid JSON for {what}: {reason}")]
    InvalidJson {
        /// The structure being parsed.
        what: &'static str,
        /// The parser's diagnostic.
        reason: String,
    },
    /// The bytes parse but are not the one canonical encoding of `what`.
    #[error("non-canonical encoding of {what}")]
    NonCanonical {
        /// The structure with a canonical encoding.
        what: &'static str,
    },
    /// The code does not hash to the code hash the manifest names.
    #[error("code hash mismatch: manifest names {expected}, code hashes to {actual}")]
    CodeHashMismatch {
        /// Hash named by the manifest (or the request).
        expected: CodeHash,
        /// Hash of the bytes actually present.
        actual: CodeHash,
    },
    /// Sealed code was bound to a different manifest (AAD mismatch).
    #[error("sealed code belongs to a different manifest")]
    ManifestMismatch,
    /// An outbound host pattern of a manifest is not a valid pattern (see
    /// [`crate::outbound::HostPattern`]).
    #[error("invalid outbound host pattern {pattern:?}: {reason}")]
    InvalidHostPattern {
        /// The pattern (at most 300 characters of it).
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A project or function name violates `[a-z0-9][a-z0-9-]{0,62}`.
    #[error("invalid {kind} name: {reason}")]
    InvalidName {
        /// `"project"` or `"function"`.
        kind: &'static str,
        /// What rule was broken.
        reason: &'static str,
    },
    /// Binary HTTP (RFC 9292) that does not parse.
    #[error("binary HTTP: {0}")]
    Bhttp(String),
    /// A BHTTP request where a response was expected, or the reverse.
    #[error("expected a BHTTP {expected}")]
    UnexpectedMessage {
        /// `"request"` or `"response"`.
        expected: &'static str,
    },
    /// An invoke request whose method is not an HTTP method token (RFC 9110 `token`, at most
    /// 32 characters).
    #[error("the method is not an HTTP method token")]
    InvalidMethod,
    /// An invoke request whose scheme, authority or path is not
    /// `https://clave/{project}/{function}[/path][?query]`.
    #[error("invalid invoke target: {reason}")]
    InvalidTarget {
        /// What rule was broken.
        reason: &'static str,
    },
    /// A required header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header is present but malformed (or repeated).
    #[error("invalid header {name}: {reason}")]
    InvalidHeader {
        /// Header name.
        name: &'static str,
        /// What rule was broken.
        reason: &'static str,
    },
    /// A header name or value is not valid text.
    #[error("header is not valid UTF-8 text")]
    InvalidHeaderText,
    /// A status code outside 200..=599 for a final response.
    #[error("invalid status {0}")]
    InvalidStatus(u16),
    /// A key bundle's key configuration does not carry the key id its spec implies.
    #[error("key id mismatch: config has {config}, spec implies {spec}")]
    KeyIdMismatch {
        /// Key id in the key configuration.
        config: u8,
        /// Key id derived from the spec id.
        spec: u8,
    },
    /// A validity window where `not_before > not_after`.
    #[error("invalid validity window")]
    InvalidValidity,
    /// A key bundle used before its `not_before`.
    #[error("not valid before {not_before} (now {now})")]
    NotYetValid {
        /// Start of validity (unix seconds).
        not_before: u64,
        /// The time given by the caller.
        now: u64,
    },
    /// A key bundle used after its `not_after`.
    #[error("expired at {not_after} (now {now})")]
    Expired {
        /// End of validity (unix seconds).
        not_after: u64,
        /// The time given by the caller.
        now: u64,
    },
    /// A bug inside this crate or a dependency; never caused by peer input.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
