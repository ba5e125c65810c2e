//! clave-gateway: the untrusted host-side front door of clave. It serves the public HTTP API (keys and
//! evidence proxied from the KDS, deploy/list/activate/rollback/delete of functions, invocation), stores
//! projects, functions, immutable versions, hashed deploy tokens and usage records through sqlx (SQLite or
//! PostgreSQL), and dispatches invocations to engines with backpressure.
//!
//! It refuses to hold plaintext or keys: manifests are read only for name, code hash and limits; sealed code,
//! encapsulated requests and responses, key configs, bundles and evidence are opaque bytes it stores or
//! forwards. Its errors never echo request content.
//!
//! Entry points: [`run_gateway`] (the whole `clave gateway` process from a [`GatewayProcessConfig`]), or
//! the parts: [`Store::connect`], [`AppState::new`], [`app`], [`serve`], [`run_worker`]. Engines plug in
//! through [`EngineClient`] (in-process, or an [`EnginePool`] balancing over remote engines), the KDS
//! through [`KeySource`] ([`HttpKeySource`] for a remote KDS), the asynchronous queue through [`JobQueue`]
//! (NATS JetStream). Wire types live in `clave_proto::gateway_api`.

#![forbid(unsafe_code)]

mod devloop_routes;
mod dispatch;
mod engine;
mod error;
mod kds_proxy;
pub mod metrics;
mod pool;
mod process;
mod queue;
mod routes;
mod starting;
mod store;
mod usage;

use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::time::Duration;

pub use dispatch::{DispatchConfig, DispatchStats, Dispatcher};
pub use engine::{BoxFuture, DispatchError, EngineClient, InvokeJob};
pub use error::{ApiError, Error};
pub use kds_proxy::{HttpKeySource, KdsPaths, KeySource, KeySourceError};
pub use pool::{EnginePool, EnginePoolConfig, HttpEngineClient, normalize_engine_url};
pub use process::{
    GatewayProcess, GatewayProcessConfig, parse_duration, parse_engine_list, run_gateway,
};
pub use queue::{JobQueue, QueueConfig, run_worker};
pub use starting::{HOLD as STARTING_HOLD, Starting};
pub use store::{
    ActiveArtifact, Backend, LogEntry, LogQuery, LogRetention, NewSecret, NewVersion, ResultState,
    SecretInfo, Store, StoredResult, UsageRecord, is_valid_name,
};

use crate::metrics::PrometheusHandle;

/// Size and count limits, checked before any expensive work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest `message/ohttp-req` body.
    pub max_request_bytes: usize,
    /// Largest manifest.
    pub max_manifest_bytes: usize,
    /// Largest sealed code.
    pub max_sealed_code_bytes: usize,
    /// Functions per project.
    pub max_functions_per_project: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: (1 << 20) + 4096,
            max_manifest_bytes: 16 << 10,
            max_sealed_code_bytes: 8 << 20,
            max_functions_per_project: 100,
        }
    }
}

impl Limits {
    /// Largest deploy body: base64url of manifest and code plus JSON framing.
    pub fn max_deploy_body_bytes(&self) -> usize {
        (self.max_manifest_bytes + self.max_sealed_code_bytes) / 3 * 4 + 1024
    }
}

/// Gateway configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Size and count limits.
    pub limits: Limits,
    /// Dispatch limits.
    pub dispatch: DispatchConfig,
    /// How long graceful shutdown waits for in-flight calls.
    pub drain_timeout: Duration,
    /// INSECURE, for benchmarks only: also accept `Content-Type: message/bhttp` (a plain BHTTP request) on
    /// the synchronous invoke routes and hand it to the engine flagged
    /// `JobFlags::INSECURE_PLAINTEXT_BENCH` (the engine must enable it too). Default `false`: `415`.
    pub insecure_plaintext_bench: bool,
    /// A successful synchronous call that took less than this yields to the runtime once before
    /// its answer is written, so that the answers of the calls a worker runs in one stretch leave
    /// together and a waiting client is woken about once per burst
    /// (docs/decisions/0010-answers-in-bursts.md, which bounds the wait). Longer calls and
    /// refusals answer at once. `Duration::ZERO` turns it off. Default 1 ms.
    pub answer_burst_below: Duration,
    /// SHA-256 of the admin bearer token (see [`GatewayConfig::with_admin_token`]); `None` disables the
    /// admin API.
    admin_token_hash: Option<String>,
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("limits", &self.limits)
            .field("dispatch", &self.dispatch)
            .field("drain_timeout", &self.drain_timeout)
            .field("insecure_plaintext_bench", &self.insecure_plaintext_bench)
            .field("answer_burst_below", &self.answer_burst_below)
            .field(
                "admin_token",
                &self.admin_token_hash.as_ref().map(|_| "<set>"),
            )
            .finish()
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            dispatch: DispatchConfig::default(),
            drain_timeout: Duration::from_secs(10),
            insecure_plaintext_bench: false,
            answer_burst_below: Duration::from_millis(1),
            admin_token_hash: None,
        }
    }
}

impl GatewayConfig {
    /// Enable the admin API (`PUT /v1/projects/{p}`, `POST /v1/projects/{p}/tokens`) for `token`. Only its
    /// SHA-256 is kept.
    pub fn with_admin_token(mut self, token: &str) -> Self {
        self.admin_token_hash = Some(store::token_hash(token));
        self
    }

    pub(crate) fn is_admin_token(&self, token: &str) -> bool {
        self.admin_token_hash
            .as_deref()
            .is_some_and(|h| h == store::token_hash(token))
    }
}

#[derive(Clone)]
struct StateInner {
    store: Store,
    keys: Arc<dyn KeySource>,
    dispatcher: Dispatcher,
    config: GatewayConfig,
    metrics: PrometheusHandle,
    queue: Option<JobQueue>,
}

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("backend", &self.inner.store.backend())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over `store`, an engine pool and a KDS. Uses the process-wide Prometheus recorder
    /// ([`metrics::prometheus_handle`]).
    pub fn new(
        store: Store,
        engine: Arc<dyn EngineClient>,
        keys: Arc<dyn KeySource>,
        config: GatewayConfig,
    ) -> Self {
        // The recorder first: the dispatcher registers its gauges with it.
        let metrics = metrics::prometheus_handle();
        let dispatcher = Dispatcher::new(engine, config.dispatch.clone());
        Self {
            inner: Arc::new(StateInner {
                store,
                keys,
                dispatcher,
                config,
                metrics,
                queue: None,
            }),
        }
    }

    fn map_inner(self, f: impl FnOnce(&mut StateInner)) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| (*shared).clone());
        f(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Render `/metrics` from `handle` instead of the process-wide one.
    pub fn with_metrics(self, handle: PrometheusHandle) -> Self {
        self.map_inner(|inner| inner.metrics = handle)
    }

    /// Enable asynchronous invocation (`?mode=async`, `GET .../results/{id}`) through `queue`. The calls
    /// are run by [`run_worker`] (in this process or another gateway over the same database and stream).
    pub fn with_queue(self, queue: JobQueue) -> Self {
        self.map_inner(|inner| inner.queue = Some(queue))
    }

    /// The asynchronous queue, when enabled.
    pub fn queue(&self) -> Option<&JobQueue> {
        self.inner.queue.as_ref()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The dispatcher (stats, close, drain).
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.inner.dispatcher
    }

    /// The configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.inner.config
    }
}

/// The gateway's router (no socket needed: drive it with `tower::ServiceExt::oneshot` in tests).
pub fn app(state: AppState) -> axum::Router {
    routes::router(state)
}

/// Serve [`app`] on `listener` until `shutdown` resolves; then stop accepting, refuse queued calls, and
/// wait up to [`GatewayConfig::drain_timeout`] for running calls before returning.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, axum::Router::new(), shutdown).await
}

/// Like [`serve`], with `extra` routes merged next to the API (`clave dev` adds its web page this
/// way). `extra` must set no fallback and no route of the API.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    extra: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_starting(listener, Starting::serving(state, extra), shutdown).await
}

/// `listener` with `TCP_NODELAY` set on every connection it accepts: an answer written in more
/// than one piece (a streamed body) is not held back until the peer acknowledges the first
/// (Nagle's algorithm against a delayed ACK costs up to 40 ms). For every clave service.
pub fn no_delay(
    listener: tokio::net::TcpListener,
) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt as _;
    listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
        }
    })
}

/// Serve `starting` on `listener`: its key routes at once, the rest once it is
/// [`Starting::ready`] (see [`Starting`]); shut down as [`serve`] does (with nothing to drain
/// if it never became ready).
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve_starting(
    listener: tokio::net::TcpListener,
    starting: Starting,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let triggered = Arc::new(tokio::sync::Notify::new());
    let trigger = triggered.clone();
    let closer = starting.clone();
    let service = axum::ServiceExt::<axum::extract::Request>::into_make_service(starting.service());
    let server = axum::serve(no_delay(listener), service)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("gateway shutting down: draining in-flight calls");
            closer.stop();
            if let Some(state) = closer.state() {
                state.dispatcher().close();
            }
            trigger.notify_one();
        })
        .into_future();
    tokio::pin!(server);
    let result = tokio::select! {
        result = &mut server => result,
        () = async {
            triggered.notified().await;
            tokio::time::sleep(starting.state().map_or(Duration::ZERO, |s| s.config().drain_timeout)).await;
        } => {
            let drained = match starting.state() {
                Some(state) => state.dispatcher().drain(Duration::ZERO).await,
                None => true,
            };
            tracing::warn!(drained, "drain deadline reached; dropping remaining connections");
            Ok(())
        }
    };
    // Usage rows of the calls that just finished are written off the request path: write them now.
    if let Some(state) = starting.state() {
        state.store().flush_usage().await;
    }
    result
}
