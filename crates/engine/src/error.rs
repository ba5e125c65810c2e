//! The one error type of `clave-engine`.
//!
//! Only two kinds of error are ever returned in the clear by [`crate::Engine::invoke`]: the
//! outer envelope names an unknown key ([`Error::UnknownKeyId`]) or does not decrypt
//! ([`Error::Undecryptable`]); plus the capacity errors that say "nothing ran"
//! ([`Error::NotReady`], [`Error::Overloaded`]). None of them carries request content. Every
//! other invoke failure travels encrypted to the user as problem JSON inside the response.

use crate::kds_client::KdsError;

/// Errors of the engine: key acquisition (start / refresh), the outer invoke envelope, and
/// configuration. Variants describe the input that was refused; none carries key material or
/// plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A KDS call failed (transport, refusal or malformed answer).
    #[error("KDS call `{call}` failed: {source}")]
    Kds {
        /// Which KDS call (`attestation`, `keys`, `nonce`, `release`).
        call: &'static str,
        /// What went wrong.
        #[source]
        source: KdsError,
    },
    /// The KDS's evidence does not satisfy the engine's KDS policy (or is not genuine, or does
    /// not bind the KDS identity key and the engine's nonce).
    #[error("KDS attestation refused: {0}")]
    KdsAttestation(#[source] clave_attest::Error),
    /// The KDS answered its attestation for another nonce than the one the engine sent.
    #[error("KDS attestation echoes another nonce")]
    KdsNonceMismatch,
    /// The KDS identity key is not a valid Ed25519 key, or the key listing names another
    /// identity than the attested one.
    #[error("KDS identity key mismatch or invalid")]
    KdsIdentityMismatch,
    /// A key bundle failed its signature, parse or validity check.
    #[error("key bundle refused: {0}")]
    BadBundle(#[source] clave_proto::Error),
    /// The KDS published no currently valid bundle for a purpose the engine needs.
    #[error("the KDS publishes no valid {purpose} key")]
    MissingKey {
        /// `"code"` or `"invoke"`.
        purpose: &'static str,
    },
    /// The engine's own attester failed to produce evidence.
    #[error("own attestation failed: {0}")]
    OwnAttestation(#[source] clave_attest::Error),
    /// The released key did not open (wrong spec id, tampered or not for our ephemeral key).
    #[error("released key for spec {spec_id} did not open")]
    ReleaseOpen {
        /// Hex spec id.
        spec_id: String,
    },
    /// The released private key does not belong to the bundle's public key: refused.
    #[error("released key for spec {spec_id} does not match its bundle's public key")]
    ReleasedKeyMismatch {
        /// Hex spec id.
        spec_id: String,
    },
    /// The engine has no keys yet (key acquisition did not succeed). Nothing ran.
    #[error("the engine has no keys yet")]
    NotReady,
    /// The replay cache is full of live entries; the request was not accepted. Nothing ran.
    #[error("the engine is overloaded")]
    Overloaded,
    /// No invoke key has the request's key id. Nothing ran.
    #[error("unknown key id {0}")]
    UnknownKeyId(u8),
    /// The encapsulated request is truncated, tampered or malformed. Nothing ran.
    #[error("the encapsulated request could not be opened")]
    Undecryptable,
    /// The engine job framing is malformed. Nothing ran.
    #[error("malformed engine job: {0}")]
    BadJob(#[source] clave_proto::gateway_api::WireError),
    /// The engine could not even seal an error for the user (an internal bug).
    #[error("could not seal the response: {0}")]
    Seal(#[source] clave_proto::Error),
    /// A job flagged [`clave_proto::gateway_api::JobFlags::INSECURE_PLAINTEXT_BENCH`] reached an
    /// engine that does not enable the insecure benchmark path (or it was also flagged
    /// asynchronous). Nothing ran.
    #[error("insecure plaintext jobs are not enabled on this engine")]
    PlaintextRefused,
    /// A caller nonce for the engine's own attestation is empty or longer than 64 bytes.
    #[error("nonce must be 1 to 64 bytes")]
    BadNonce,
    /// Invalid engine configuration.
    #[error("invalid engine configuration: {0}")]
    Config(String),
    /// The clock is further behind the engine's clock floor (the latest time it served at,
    /// kept across restarts) than the allowed regression: the host moved time backwards. Nothing
    /// ran; fix the host's clock.
    #[error(
        "the clock ({now}) is behind the engine's clock floor ({high_water}) by more than the allowed regression: nothing runs until the host's clock is right"
    )]
    ClockBehind {
        /// The time given.
        now: u64,
        /// The latest time this engine served at.
        high_water: u64,
    },
    /// The clock floor file cannot be read, trusted or written.
    #[error("engine clock floor: {0}")]
    ClockFloor(String),
    /// The sandbox pool could not start.
    #[error("sandbox: {0}")]
    Sandbox(String),
}

impl Error {
    /// Whether the error is one of the two "outer envelope refused" errors (the gateway maps
    /// these to `400 urn:clave:problem:engine-rejected`).
    #[must_use]
    pub fn is_rejected(&self) -> bool {
        matches!(
            self,
            Error::UnknownKeyId(_)
                | Error::Undecryptable
                | Error::BadJob(_)
                | Error::PlaintextRefused
        )
    }

    /// Whether nothing ran and a retry may succeed later (`503 overloaded`).
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::NotReady | Error::Overloaded)
    }
}

/// The name the brief and the gateway use for this crate's error.
pub type EngineError = Error;
