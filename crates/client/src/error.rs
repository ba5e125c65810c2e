//! The one error type of `clave-client`; every variant says whose fault it is.

use clave_proto::gateway_api::Problem;

/// Why the attestation of a platform was not accepted. Nothing was sealed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestationError {
    /// The KDS runs on the insecure simulated TEE and the trust policy does not allow it.
    #[error(
        "the platform runs on the INSECURE simulated TEE, which your trust policy refuses (use --insecure-dev only for local development)"
    )]
    InsecureRefused,
    /// The evidence did not verify or does not satisfy the KDS policy.
    #[error("the KDS evidence was refused: {0}")]
    Evidence(#[source] clave_attest::Error),
    /// The gateway answered for another nonce than ours (a replay).
    #[error("the KDS evidence was made for another nonce (possible replay)")]
    NonceMismatch,
    /// The key list names another identity key than the attested one.
    #[error("the key bundles are signed by another key than the attested KDS identity")]
    IdentityMismatch,
    /// A bundle's signature, encoding or validity failed.
    #[error("a key bundle was refused: {0}")]
    Bundle(#[source] clave_proto::Error),
    /// A bundle's spec admits engines the client does not accept.
    #[error("the {purpose} key may be released to engines you do not trust: {reason}")]
    SpecTooBroad {
        /// `code` or `invoke`.
        purpose: &'static str,
        /// Which part is broader.
        reason: String,
    },
    /// The KDS runs with an admission policy (it admits replicas beyond its own measurement)
    /// that the trust policy does not list.
    #[error(
        "the KDS admits replicas under an admission policy you have not accepted (hash {hash}): {words}"
    )]
    AdmissionPolicyRefused {
        /// Its hash (hex), as `clave attest` shows it.
        hash: String,
        /// The policy in words.
        words: String,
    },
    /// The KDS's master secret came from an external key source (its evidence says so) and the
    /// trust policy does not accept that.
    #[error(
        "the KDS's master secret was provided by an external key source, so whoever provided it can derive every key; your trust policy refuses that (accept it only if you trust that source: --accept-external-master-secret)"
    )]
    ExternalMasterSecretRefused,
    /// No bundle of the needed purpose is valid now.
    #[error("the platform publishes no valid {0} key")]
    MissingKey(&'static str),
    /// The attestation or key answer is not what the protocol says.
    #[error("malformed answer from the platform: {0}")]
    Malformed(String),
}

/// Which limit a function hit.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitKind {
    /// CPU time.
    CpuTime,
    /// Heap memory.
    Memory,
    /// Stack, request, response or console size (the detail says which, when known).
    Other(String),
}

impl std::fmt::Display for LimitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::CpuTime => f.write_str("CPU time limit"),
            Self::Memory => f.write_str("memory limit"),
            Self::Other(d) if d.is_empty() => f.write_str("size limit"),
            Self::Other(d) => write!(f, "limit ({d})"),
        }
    }
}

/// Whose fault an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The caller: bad arguments, names, files.
    Caller,
    /// The network: the gateway could not be reached.
    Network,
    /// The attestation or key bundles did not satisfy the trust policy.
    Attestation,
    /// The untrusted gateway refused or failed (its error travelled in the clear).
    Gateway,
    /// The engine refused inside the TEE (hash mismatch, stale date, replay...).
    Engine,
    /// The function itself (threw or hit a limit).
    Function,
}

/// Everything that can go wrong in the SDK.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The caller gave something unusable (bad name, URL, limits...).
    #[error("{0}")]
    InvalidInput(String),
    /// The gateway could not be reached or the connection failed.
    #[error("cannot reach the gateway at {url}: {reason}")]
    Transport {
        /// The gateway URL.
        url: String,
        /// What failed (connection refused, timeout...).
        reason: String,
    },
    /// The gateway answered with an error (in the clear: it never saw the content).
    #[error("the gateway refused the request ({status}){}", problem_text(.problem))]
    Gateway {
        /// HTTP status.
        status: u16,
        /// The problem document, if the gateway sent one.
        problem: Option<Problem>,
    },
    /// Attestation or key verification failed; nothing was sealed.
    #[error("attestation failed: {0}")]
    Attestation(#[from] AttestationError),
    /// The engine refused to run the code because its hash differs from the pinned one.
    #[error("the engine refused: the deployed code does not have the pinned hash{}", detail_text(.detail))]
    HashRefused {
        /// The engine's explanation.
        detail: Option<String>,
    },
    /// The function threw an exception.
    #[error("the function threw: {message}")]
    FunctionThrew {
        /// The exception message (decrypted; only the caller sees it).
        message: String,
    },
    /// The function hit a limit.
    #[error("the function hit its {kind}")]
    LimitHit {
        /// Which limit.
        kind: LimitKind,
    },
    /// The engine refused for another reason (stale date, replay, malformed request, internal).
    #[error("the engine refused the call: {title} ({slug}){}", detail_text(.detail))]
    EngineRefused {
        /// Problem slug.
        slug: String,
        /// Inner status.
        status: u16,
        /// Title.
        title: String,
        /// Detail.
        detail: Option<String>,
    },
    /// A protocol step failed (sealing, opening the response, unexpected bytes).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Waited for something the platform had not done yet (e.g. run a queued asynchronous call).
    #[error("{what} was not ready after {after:?}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        after: std::time::Duration,
    },
}

fn problem_text(p: &Option<Problem>) -> String {
    match p {
        Some(p) => match &p.detail {
            Some(d) => format!(": {}: {d}", p.title),
            None => format!(": {}", p.title),
        },
        None => String::new(),
    }
}

fn detail_text(d: &Option<String>) -> String {
    d.as_ref().map(|d| format!(": {d}")).unwrap_or_default()
}

impl ClientError {
    /// Whose fault the error is.
    #[must_use]
    pub fn fault(&self) -> Fault {
        match self {
            Self::InvalidInput(_) => Fault::Caller,
            Self::Transport { .. } => Fault::Network,
            Self::Gateway { .. } | Self::Timeout { .. } => Fault::Gateway,
            Self::Attestation(_) => Fault::Attestation,
            Self::HashRefused { .. } | Self::EngineRefused { .. } | Self::Protocol(_) => {
                Fault::Engine
            }
            Self::FunctionThrew { .. } | Self::LimitHit { .. } => Fault::Function,
        }
    }

    /// The gateway's HTTP status, for [`ClientError::Gateway`].
    #[must_use]
    pub fn gateway_status(&self) -> Option<u16> {
        match self {
            Self::Gateway { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The problem `type` URI, for [`ClientError::Gateway`].
    #[must_use]
    pub fn problem_type(&self) -> Option<&str> {
        match self {
            Self::Gateway {
                problem: Some(p), ..
            } => Some(&p.type_),
            _ => None,
        }
    }
}

/// `Result` with [`ClientError`].
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
