//! The gateway's view of an engine: a thing that takes an opaque job and returns opaque bytes.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clave_proto::gateway_api::{
    ENGINE_INVOKE_PATH, ENGINE_JOB_CONTENT_TYPE, ENGINE_READY_PATH, problem_type,
};

use crate::Error;

pub use clave_proto::gateway_api::EngineJob as InvokeJob;

/// A boxed, `Send` future (keeps [`EngineClient`] and [`crate::KeySource`] object safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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
/// ([`HttpEngineClient`]). All bytes are opaque to the gateway.
pub trait EngineClient: Send + Sync + 'static {
    /// Run one job and return the `message/ohttp-res` body.
    fn invoke(&self, job: InvokeJob) -> BoxFuture<'_, Result<Vec<u8>, DispatchError>>;

    /// Whether the engine pool can take work (`/readyz`). Defaults to `true`.
    fn ready(&self) -> BoxFuture<'_, bool> {
        Box::pin(async { true })
    }
}

/// An [`EngineClient`] that posts jobs to engines over HTTP (`POST /v1/engine/invoke`, binary
/// [`InvokeJob`] framing; see `clave_proto::gateway_api`). Engines are tried round-robin; an engine that
/// refuses the connection is skipped (nothing ran there), any later failure is final.
pub struct HttpEngineClient {
    client: reqwest::Client,
    endpoints: Vec<String>,
    next: AtomicUsize,
    max_response_bytes: usize,
}

impl std::fmt::Debug for HttpEngineClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpEngineClient")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

/// Make sure reqwest (built with `rustls-no-provider`) finds a process-wide crypto provider.
pub(crate) fn ensure_rustls_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing the race to another installer is fine: some provider is installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

impl HttpEngineClient {
    /// Client for engines at `endpoints` (base URLs such as `http://10.0.0.5:7001`).
    ///
    /// `max_response_bytes` caps what is read back from an engine.
    ///
    /// # Errors
    /// [`Error::BadRemoteUrl`] for an empty list or a URL that is not http(s); [`Error::HttpClient`].
    pub fn new(endpoints: Vec<String>, max_response_bytes: usize) -> Result<Self, Error> {
        if endpoints.is_empty()
            || endpoints
                .iter()
                .any(|e| !(e.starts_with("http://") || e.starts_with("https://")))
        {
            return Err(Error::BadRemoteUrl);
        }
        ensure_rustls_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(Error::HttpClient)?;
        let endpoints = endpoints
            .into_iter()
            .map(|e| e.trim_end_matches('/').to_owned())
            .collect();
        Ok(Self {
            client,
            endpoints,
            next: AtomicUsize::new(0),
            max_response_bytes,
        })
    }

    async fn invoke_inner(&self, job: InvokeJob) -> Result<Vec<u8>, DispatchError> {
        let frame = job.encode().map_err(|e| DispatchError::Failed {
            reason: format!("cannot frame job: {e}"),
        })?;
        let frame = bytes::Bytes::from(frame);
        let n = self.endpoints.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            let endpoint = &self.endpoints[(start + i) % n];
            let sent = self
                .client
                .post(format!("{endpoint}{ENGINE_INVOKE_PATH}"))
                .header(reqwest::header::CONTENT_TYPE, ENGINE_JOB_CONTENT_TYPE)
                .body(frame.clone())
                .send()
                .await;
            let resp = match sent {
                Ok(resp) => resp,
                Err(e) if e.is_connect() => {
                    tracing::warn!(endpoint = %endpoint, "engine unreachable, trying the next one");
                    continue;
                }
                Err(e) if e.is_timeout() => return Err(DispatchError::Timeout),
                Err(e) => {
                    return Err(DispatchError::Failed {
                        reason: format!("engine request failed: {e}"),
                    });
                }
            };
            return self.read_response(resp).await;
        }
        Err(DispatchError::Unavailable)
    }

    async fn read_response(&self, mut resp: reqwest::Response) -> Result<Vec<u8>, DispatchError> {
        let status = resp.status();
        if status.is_success() {
            if resp
                .content_length()
                .is_some_and(|l| l > self.max_response_bytes as u64)
            {
                return Err(DispatchError::Failed {
                    reason: "engine response too large".into(),
                });
            }
            let mut body = Vec::new();
            loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) => {
                        if body.len() + chunk.len() > self.max_response_bytes {
                            return Err(DispatchError::Failed {
                                reason: "engine response too large".into(),
                            });
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => return Ok(body),
                    Err(e) => {
                        return Err(DispatchError::Failed {
                            reason: format!("reading engine response: {e}"),
                        });
                    }
                }
            }
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        match status.as_u16() {
            400 => Err(DispatchError::Rejected),
            503 => {
                // A 503 only means "nothing ran" when the engine says it is overloaded.
                let body = resp.bytes().await.unwrap_or_default();
                let overloaded = serde_json::from_slice::<clave_proto::gateway_api::Problem>(&body)
                    .is_ok_and(|p| p.type_ == problem_type::OVERLOADED);
                if overloaded {
                    Err(DispatchError::Overloaded { retry_after })
                } else {
                    Err(DispatchError::Failed {
                        reason: "engine answered 503".into(),
                    })
                }
            }
            504 => Err(DispatchError::Timeout),
            other => Err(DispatchError::Failed {
                reason: format!("engine answered {other}"),
            }),
        }
    }
}

impl EngineClient for HttpEngineClient {
    fn invoke(&self, job: InvokeJob) -> BoxFuture<'_, Result<Vec<u8>, DispatchError>> {
        Box::pin(self.invoke_inner(job))
    }

    fn ready(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            for endpoint in &self.endpoints {
                let ok = self
                    .client
                    .get(format!("{endpoint}{ENGINE_READY_PATH}"))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ok {
                    return true;
                }
            }
            false
        })
    }
}
