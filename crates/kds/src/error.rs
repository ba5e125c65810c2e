//! The crate's error type.

use std::path::{Path, PathBuf};

use crate::seal::SealerKind;

/// Everything the KDS refuses or fails at.
///
/// Groups: sealed state (storage of the master secret), refusals of a peer's request (each with
/// a stable [`slug`](Error::slug) used as the problem type and in the release log), and
/// operator/internal problems. No variant carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- sealed state ------------------------------------------------------------------------
    /// The sealed state file is shorter than its format requires.
    #[error("sealed master secret is truncated ({len} bytes)")]
    SealedStateTruncated {
        /// Its length.
        len: usize,
    },
    /// The sealed state file does not start with the clave seal magic.
    #[error("sealed master secret file is not a clave sealed blob (bad magic)")]
    SealedStateBadMagic,
    /// A sealed format version this code does not understand.
    #[error("sealed master secret has unsupported version {0}")]
    SealedStateVersion(u8),
    /// The blob was sealed by another kind of sealer.
    #[error("sealed master secret was sealed by a {sealed} sealer, this KDS uses {sealer}")]
    SealerKindMismatch {
        /// The kind recorded in the blob.
        sealed: SealerKind,
        /// The kind of this KDS's sealer.
        sealer: SealerKind,
    },
    /// The blob was sealed under another TEE measurement: this KDS build cannot open it.
    #[error("sealed master secret was sealed under another measurement")]
    SealedUnderOtherMeasurement,
    /// Authentication of the sealed blob failed: it was modified or corrupted.
    #[error("sealed master secret is corrupt (authentication failed)")]
    SealedStateCorrupt,
    /// The unsealed master secret has the wrong length.
    #[error("unsealed master secret has length {0}, expected 32")]
    MasterSecretLength(usize),
    /// The sealing key could not be obtained or used.
    #[error("sealing failed: {0}")]
    Sealing(&'static str),
    /// `SNP_GET_DERIVED_KEY` on `/dev/sev-guest` failed.
    #[error(
        "SNP_GET_DERIVED_KEY failed: {os_error} (firmware error {fw_error:#x}, hypervisor error {vmm_error:#x})"
    )]
    SevGuestRequest {
        /// The OS error of the ioctl.
        os_error: String,
        /// The firmware's error code (low half of `exitinfo2`).
        fw_error: u32,
        /// The hypervisor's error code (high half of `exitinfo2`).
        vmm_error: u32,
    },
    /// A replica join was asked of a data directory that already holds a master secret.
    #[error("data directory {0} already holds a sealed master secret")]
    AlreadyInitialised(PathBuf),

    // ---- refusals of a peer's request ---------------------------------------------------------
    /// The spec bytes do not parse as a canonical key spec.
    #[error("malformed key spec")]
    MalformedSpec,
    /// The spec is well formed but this KDS does not serve it (now).
    #[error("this KDS does not serve the requested key spec")]
    UnknownSpec,
    /// The evidence bytes do not parse.
    #[error("malformed evidence: {0}")]
    MalformedEvidence(#[source] clave_attest::Error),
    /// The ephemeral public key is not usable.
    #[error("invalid ephemeral public key")]
    BadEphemeralKey,
    /// The nonce was not issued by this KDS (or was forgotten).
    #[error("nonce was not issued by this KDS")]
    NonceUnknown,
    /// The nonce expired before it was used.
    #[error("nonce expired")]
    NonceExpired,
    /// The nonce was already used.
    #[error("nonce was already used")]
    NonceReused,
    /// Too many nonces are in use at once on this replica; try again shortly.
    #[error("too many outstanding nonces; try again shortly")]
    NonceStoreFull,
    /// The evidence failed verification or the policy refused it.
    #[error("attestation refused: {0}")]
    Attestation(#[source] clave_attest::Error),
    /// The caller nonce of an attestation request is malformed.
    #[error("malformed caller nonce")]
    BadCallerNonce,

    // ---- replica join, seen from the joiner ---------------------------------------------------
    /// The existing replica's evidence failed verification against the KDS policy.
    #[error("existing replica refused: {0}")]
    PeerAttestation(#[source] clave_attest::Error),
    /// The master secret received does not derive the identity key the peer attested.
    #[error("master secret from the peer does not match its attested identity")]
    PeerIdentityMismatch,
    /// The peer's response could not be opened or parsed.
    #[error("malformed replica join response")]
    MalformedJoinResponse,
    /// The peer's master secret came from an external key source, and this KDS keeps its master
    /// secret sealed (where it would lose that label).
    #[error(
        "the replica's master secret came from an external key source; a KDS that seals its master secret does not take one (start it with --master-secret-source memory to join that cluster)"
    )]
    ExternalMasterRefused,
    /// The peer refused the join (transport-level report from a [`crate::ReplicaPeer`]).
    #[error("peer refused the join: {0}")]
    PeerRefused(String),

    // ---- operator / internal ------------------------------------------------------------------
    /// A file system operation failed.
    #[error("I/O on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The release log has a line that does not parse.
    #[error("release log line {line} is corrupt")]
    LogCorrupt {
        /// 1-based line number.
        line: usize,
    },
    /// The configuration is unusable.
    #[error("invalid KDS configuration: {0}")]
    Config(String),
    /// The clock is further behind the sealed high-water mark than the allowed regression: the
    /// host moved time backwards.
    #[error(
        "the clock ({now}) is behind this KDS's sealed high-water mark ({high_water}) by more than the allowed regression"
    )]
    ClockBehind {
        /// The time given.
        now: u64,
        /// The latest time this KDS acted at.
        high_water: u64,
    },
    /// A KDS whose sealer is bound to hardware has a master secret but no clock file (deleted).
    #[error("{0} is missing next to the sealed master secret")]
    ClockFloorMissing(PathBuf),
    /// The KDS must not start this way ([`crate::start::plan_start`]); the text says what to do.
    #[error("the KDS does not start: {0}")]
    StartRefused(String),
    /// An external master secret is not 32 bytes or 64 hex digits (its bytes are never shown).
    #[error(
        "the external master secret from {source_name} must be 32 bytes or 64 hex digits (got {len} bytes)"
    )]
    ExternalMasterSecret {
        /// The source as given (`PATH` or `fd:N`).
        source_name: String,
        /// How many bytes were read.
        len: usize,
    },
    /// This KDS could not produce its own evidence.
    #[error("attester failed: {0}")]
    Attester(#[source] clave_attest::Error),
    /// A key derivation or protocol step of clave-proto failed.
    #[error("protocol: {0}")]
    Proto(String),
    /// An internal invariant failed.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A stable kebab-case name of the variant: the problem type slug (`urn:clave:kds:<slug>`) and
    /// the `reason` of a release log entry.
    pub fn slug(&self) -> &'static str {
        match self {
            Error::SealedStateTruncated { .. } => "sealed-state-truncated",
            Error::SealedStateBadMagic => "sealed-state-bad-magic",
            Error::SealedStateVersion(_) => "sealed-state-version",
            Error::SealerKindMismatch { .. } => "sealer-kind-mismatch",
            Error::SealedUnderOtherMeasurement => "sealed-under-other-measurement",
            Error::SealedStateCorrupt => "sealed-state-corrupt",
            Error::MasterSecretLength(_) => "master-secret-length",
            Error::Sealing(_) => "sealing",
            Error::SevGuestRequest { .. } => "sev-guest-request",
            Error::AlreadyInitialised(_) => "already-initialised",
            Error::MalformedSpec => "malformed-spec",
            Error::UnknownSpec => "unknown-spec",
            Error::MalformedEvidence(_) => "malformed-evidence",
            Error::BadEphemeralKey => "bad-ephemeral-key",
            Error::NonceUnknown => "nonce-unknown",
            Error::NonceExpired => "nonce-expired",
            Error::NonceReused => "nonce-reused",
            Error::NonceStoreFull => "nonce-store-full",
            Error::Attestation(e) => attestation_slug(e),
            Error::BadCallerNonce => "bad-caller-nonce",
            Error::PeerAttestation(_) => "peer-attestation",
            Error::PeerIdentityMismatch => "peer-identity-mismatch",
            Error::MalformedJoinResponse => "malformed-join-response",
            Error::ExternalMasterRefused => "external-master-refused",
            Error::PeerRefused(_) => "peer-refused",
            Error::Io { .. } => "io",
            Error::LogCorrupt { .. } => "log-corrupt",
            Error::Config(_) => "config",
            Error::ClockBehind { .. } => "clock-behind",
            Error::ClockFloorMissing(_) => "clock-floor-missing",
            Error::StartRefused(_) => "start-refused",
            Error::ExternalMasterSecret { .. } => "external-master-secret",
            Error::Attester(_) => "attester",
            Error::Proto(_) => "proto",
            Error::Internal(_) => "internal",
        }
    }

    /// Whether the error is the requester's fault (a refusal), as opposed to a KDS failure.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Error::MalformedSpec
                | Error::UnknownSpec
                | Error::MalformedEvidence(_)
                | Error::BadEphemeralKey
                | Error::NonceUnknown
                | Error::NonceExpired
                | Error::NonceReused
                | Error::Attestation(_)
                | Error::BadCallerNonce
        )
    }
}

/// A finer slug for attestation refusals, so the log says why.
fn attestation_slug(e: &clave_attest::Error) -> &'static str {
    use clave_attest::Error as A;
    match e {
        A::BadSignature(_) | A::Unsupported(_) => "attestation-signature",
        A::KindNotAccepted(_) => "attestation-kind-not-accepted",
        A::InsecureNotAllowed => "attestation-insecure-not-allowed",
        A::DebugEnabled => "attestation-debug-enabled",
        A::MeasurementNotAllowed { .. } => "attestation-measurement-not-allowed",
        A::SignerNotAllowed { .. } => "attestation-signer-not-allowed",
        A::SvnTooLow { .. } => "attestation-svn-too-low",
        A::TcbTooLow { .. } => "attestation-tcb-too-low",
        A::UserDataMismatch => "attestation-report-data-mismatch",
        A::Expired { .. } | A::IssuedInFuture { .. } | A::MissingTimestamp => {
            "attestation-freshness"
        }
        _ => "attestation",
    }
}
