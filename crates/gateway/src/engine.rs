//! The gateway's view of an engine: a thing that takes an opaque job and returns opaque bytes.

use std::time::Duration;

use crate::pool::EnginePool;

pub use clave_proto::gateway_api::EngineJob as InvokeJob;

/// A boxed, `Send` future (keeps [`EngineClient`] and [`crate::KeySource`] object safe).
pub use clave_proto::BoxFuture;

/// Why a call did not produce an encapsulated response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// The engine refused the outer envelope (undecryptable, tampered, truncated, unknown key). Nothing ran.
    #[error("engine rejected the encapsulated request")]
    Rejected,
    /// Queue full, concurrency cap or engine busy. Nothing ran; retry is safe.
    #[error("overloaded")]
    Overloaded {
        /// Suggested wait, when known.
        retry_after: Option<Duration>,
    },
    /// No answer in time. The function may have run.
    #[error("timed out")]
    Timeout,
    /// No engine was reached (connection refused, shutting down). Nothing ran; retry is safe.
    #[error("no engine available")]
    Unavailable,
    /// The engine failed after the function may have run. `reason` is for logs only and never carries
    /// request content.
    #[error("engine failed: {reason}")]
    Failed {
        /// Operator-facing reason.
        reason: String,
    },
}

impl DispatchError {
    /// Whether the call certainly did not run, so that a client may retry it.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Overloaded { .. } | Self::Unavailable)
    }

    /// Short outcome label used in metrics and usage records.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Rejected => "rejected",
            Self::Overloaded { .. } => "overloaded",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::Failed { .. } => "failed",
        }
    }
}

/// Something that runs an [`InvokeJob`] inside a TEE: an in-process engine pool (dev) or remote engines
/// ([`EnginePool`]). All bytes are opaque to the gateway.
pub trait EngineClient: Send + Sync + 'static {
    /// Run one job and return the `message/ohttp-res` body.
    fn invoke(&self, job: InvokeJob) -> BoxFuture<'_, Result<Vec<u8>, DispatchError>>;

    /// Whether the engine pool can take work (`/readyz`). Defaults to `true`.
    fn ready(&self) -> BoxFuture<'_, bool> {
        Box::pin(async { true })
    }

    /// The [`EnginePool`] behind this client, if it is one (engine registration needs it).
    fn as_pool(&self) -> Option<&EnginePool> {
        None
    }
}
