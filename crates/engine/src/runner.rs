//! The one place the engine touches `clave-sandbox`: the [`Runner`] trait and its sandbox
//! implementation [`SandboxRunner`]. Everything else in the engine speaks clave-proto types.

use std::sync::Arc;

use clave_proto::code::Limits;
use clave_proto::{CodeHash, HostPattern, InvokeRequest, InvokeResponse};

use crate::egress::{Egress, EgressConfig};
use crate::kds_client::BoxFuture;

/// Why a run failed. Script messages are plaintext from the function: they only ever leave the
/// engine encrypted to the invoking user.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The time limit passed.
    #[error("time limit exceeded")]
    Timeout,
    /// The heap limit was hit.
    #[error("memory limit exceeded")]
    OutOfMemory,
    /// The stack limit was hit.
    #[error("stack limit exceeded")]
    StackOverflow,
    /// The request body is larger than the function's limit.
    #[error("request body too large")]
    RequestTooLarge,
    /// The response is larger than the function's limit.
    #[error("response too large")]
    ResponseTooLarge,
    /// The function threw, did not load, or returned something that is not a `Response`.
    #[error("script error")]
    Script {
        /// The error message (plaintext from the function).
        message: String,
    },
    /// The code does not hash to the given code hash.
    #[error("code hash mismatch")]
    CodeHashMismatch,
    /// The runner itself failed (never caused by the function's input).
    #[error("runner failure")]
    Internal,
}

impl std::fmt::Debug for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Never print the function's message.
            RunError::Script { message } => f
                .debug_struct("Script")
                .field("message_len", &message.len())
                .finish(),
            other => write!(f, "{other}"),
        }
    }
}

/// Everything a run produced, also when it failed: what the developer log record is made of
/// (plaintext from the function: it stays inside the TEE, or leaves it sealed to the developer).
#[derive(Clone, PartialEq, Eq)]
pub struct RunReport {
    /// The response, or why there is none.
    pub result: Result<InvokeResponse, RunError>,
    /// Console lines as `(level, text)`, in order, also those printed before a failure.
    pub console: Vec<(&'static str, String)>,
    /// Whether console output beyond the function's limit was dropped.
    pub console_truncated: bool,
    /// The JavaScript stack of an uncaught exception, if any.
    pub stack: Option<String>,
}

impl std::fmt::Debug for RunReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunReport")
            .field("ok", &self.result.is_ok())
            .field("console_lines", &self.console.len())
            .finish_non_exhaustive()
    }
}

/// One function call for a [`Runner`]: the module `code` (whose SHA-256 is `code_hash`), the
/// caller's `request`, the `limits` (the manifest's, already clamped to the platform maxima), the
/// call's `env` object (vars and opened secrets) and the hosts `outbound` its `fetch()` may reach
/// (empty: `fetch()` rejects). `Debug` prints neither the code nor the env values.
#[derive(Clone)]
pub struct RunRequest {
    /// SHA-256 of `code`.
    pub code_hash: CodeHash,
    /// The module source.
    pub code: Arc<str>,
    /// The caller's request.
    pub request: InvokeRequest,
    /// The call's limits.
    pub limits: Limits,
    /// The `env` object: vars and opened secrets (plaintext: it stays inside the TEE).
    pub env: clave_sandbox::Env,
    /// Hosts the function's `fetch()` may reach.
    pub outbound: Arc<[HostPattern]>,
}

impl RunRequest {
    /// A call with an empty `env` and no outbound hosts.
    #[must_use]
    pub fn new(
        code_hash: CodeHash,
        code: Arc<str>,
        request: InvokeRequest,
        limits: Limits,
    ) -> Self {
        Self {
            code_hash,
            code,
            request,
            limits,
            env: clave_sandbox::Env::default(),
            outbound: Arc::from(Vec::new()),
        }
    }

    /// The same call with `fetch()` allowed to reach `outbound`.
    #[must_use]
    pub fn with_outbound(mut self, outbound: Arc<[HostPattern]>) -> Self {
        self.outbound = outbound;
        self
    }

    /// The same call with the `env` object `env`.
    #[must_use]
    pub fn with_env(mut self, env: clave_sandbox::Env) -> Self {
        self.env = env;
        self
    }
}

impl std::fmt::Debug for RunRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunRequest")
            .field("code_hash", &self.code_hash)
            .field("request", &self.request)
            .field("limits", &self.limits)
            .field("env_len", &self.env.len())
            .field("outbound", &self.outbound)
            .finish_non_exhaustive()
    }
}

/// Runs one function call in a fresh sandbox.
pub trait Runner: Send + Sync {
    /// Run `call`: the response or why there is none, with the console output (kept also when
    /// the call fails).
    fn run(&self, call: RunRequest) -> BoxFuture<'_, RunReport>;

    /// Get the calling thread ready to run calls itself (see [`Engine::prepare_thread`]);
    /// nothing by default.
    ///
    /// [`Engine::prepare_thread`]: crate::Engine::prepare_thread
    fn prepare_thread(&self) {}
}

/// Sandbox pool settings of a [`SandboxRunner`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxSettings {
    /// Worker threads (concurrent calls).
    pub workers: usize,
    /// Platform maxima every call is clamped to.
    pub max: Limits,
    /// How long after the deadline the pool waits before abandoning a worker, milliseconds.
    pub grace_ms: u64,
    /// Bytes of compiled bytecode kept in memory.
    pub bytecode_cache_bytes: usize,
    /// Functions that have always finished within this many milliseconds run on the thread that
    /// handles the request (no hand-off to a sandbox worker); 0 turns this off. The threads that
    /// call the engine must then have stacks of at least 2 × `max.stack_bytes`, capped at
    /// [`clave_sandbox::INLINE_MAX_STACK`]` × 2` (functions with larger stack limits always go to
    /// the workers).
    pub inline_budget_ms: u64,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        let d = clave_sandbox::PoolConfig::default();
        Self {
            workers: d.workers,
            max: from_sandbox_limits(&d.max),
            grace_ms: u64::try_from(d.grace.as_millis()).unwrap_or(u64::MAX),
            bytecode_cache_bytes: d.cache_bytes,
            inline_budget_ms: 0,
        }
    }
}

/// The real runner: a supervised [`clave_sandbox::SandboxPool`], and the egress functions'
/// `fetch()` uses.
#[derive(Clone, Debug)]
pub struct SandboxRunner {
    pool: clave_sandbox::SandboxPool,
    egress: Arc<Egress>,
}

impl SandboxRunner {
    /// Start the worker threads, with the default egress ([`EgressConfig::default`]: direct).
    ///
    /// # Errors
    /// [`crate::Error::Sandbox`] when a worker thread cannot be spawned.
    pub fn new(settings: &SandboxSettings) -> Result<Self, crate::Error> {
        Self::with_egress(settings, Arc::new(Egress::new(EgressConfig::default())?))
    }

    /// Start the worker threads; functions' `fetch()` goes through `egress`.
    ///
    /// # Errors
    /// [`crate::Error::Sandbox`] when a worker thread cannot be spawned.
    pub fn with_egress(
        settings: &SandboxSettings,
        egress: Arc<Egress>,
    ) -> Result<Self, crate::Error> {
        let cfg = clave_sandbox::PoolConfig {
            workers: settings.workers.max(1),
            max: to_sandbox_limits(&settings.max),
            grace: std::time::Duration::from_millis(settings.grace_ms),
            cache_bytes: settings.bytecode_cache_bytes,
            inline_budget: std::time::Duration::from_millis(settings.inline_budget_ms),
            ..clave_sandbox::PoolConfig::default()
        };
        let pool = clave_sandbox::SandboxPool::new(cfg)
            .map_err(|e| crate::Error::Sandbox(e.to_string()))?;
        Ok(Self { pool, egress })
    }
}

fn usize_of(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

fn u64_of(v: usize) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// Manifest limits as sandbox limits (the sandbox clamps them to its maxima again).
pub(crate) fn to_sandbox_limits(l: &Limits) -> clave_sandbox::Limits {
    clave_sandbox::Limits {
        cpu_ms: l.cpu_ms,
        heap_bytes: usize_of(l.heap_bytes),
        stack_bytes: usize_of(l.stack_bytes),
        max_request_bytes: usize_of(l.max_request_bytes),
        max_response_bytes: usize_of(l.max_response_bytes),
        max_console_bytes: usize_of(l.max_console_bytes),
    }
}

fn from_sandbox_limits(l: &clave_sandbox::Limits) -> Limits {
    Limits {
        cpu_ms: l.cpu_ms,
        heap_bytes: u64_of(l.heap_bytes),
        stack_bytes: u64_of(l.stack_bytes),
        max_request_bytes: u64_of(l.max_request_bytes),
        max_response_bytes: u64_of(l.max_response_bytes),
        max_console_bytes: u64_of(l.max_console_bytes),
    }
}

/// The sandbox `Request` URL of an invoke request: `https://clave/{project}/{function}` followed by
/// the caller's path and query.
fn request_url(req: &InvokeRequest) -> String {
    // As `format!("{SCHEME}://{AUTHORITY}{}", req.path())`, in one allocation.
    let parts = [
        clave_proto::invoke::SCHEME,
        "://",
        clave_proto::invoke::AUTHORITY,
        "/",
        req.project.as_str(),
        "/",
        req.function.as_str(),
        &req.target,
    ];
    let mut url = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        url.push_str(part);
    }
    url
}

fn map_error(e: clave_sandbox::Error) -> RunError {
    use clave_sandbox::Error as S;
    match e {
        S::Timeout => RunError::Timeout,
        S::OutOfMemory => RunError::OutOfMemory,
        S::StackOverflow => RunError::StackOverflow,
        S::ResponseTooLarge { .. } => RunError::ResponseTooLarge,
        S::RequestTooLarge { .. } => RunError::RequestTooLarge,
        S::ScriptError { message, .. } => RunError::Script { message },
        S::InvalidModule { message } => RunError::Script {
            message: format!("invalid module: {message}"),
        },
        S::NoDefaultExport { message } => RunError::Script {
            message: format!("no usable default export: {message}"),
        },
        S::BadResponse { returned } => RunError::Script {
            message: format!("fetch() returned {returned}, not a Response"),
        },
        S::NeverSettled => RunError::Script {
            message: "the promise returned by fetch() never settled".into(),
        },
        S::CodeHashMismatch => RunError::CodeHashMismatch,
        _ => RunError::Internal,
    }
}

impl SandboxRunner {
    async fn call(&self, call: RunRequest) -> clave_sandbox::CallReport {
        let RunRequest {
            code_hash,
            code,
            request,
            limits,
            env,
            outbound,
        } = call;
        let http = clave_sandbox::HttpRequest {
            env,
            url: request_url(&request),
            method: request.method,
            headers: request.headers,
            body: request.body,
        };
        let limits = to_sandbox_limits(&limits);
        if outbound.is_empty() {
            // Fast functions run here, on the request's thread; the rest on a sandbox worker.
            match self
                .pool
                .run_inline_report(code_hash.0, &code, http, limits)
            {
                Ok(r) => r,
                Err(http) => {
                    self.pool
                        .run_report(code_hash.0, code, http, limits, None)
                        .await
                }
            }
        } else {
            // A function that may fetch always runs on a worker: its exchanges block the
            // thread (until the call's deadline at most).
            let net: Arc<dyn clave_sandbox::Outbound> = Arc::new(self.egress.for_call(outbound));
            self.pool
                .run_report(code_hash.0, code, http, limits, Some(net))
                .await
        }
    }
}

/// The name of a console level in log records.
pub(crate) fn level_name(level: clave_sandbox::ConsoleLevel) -> &'static str {
    use clave_sandbox::ConsoleLevel as L;
    match level {
        L::Info => "info",
        L::Debug => "debug",
        L::Warn => "warn",
        L::Error => "error",
        L::Trace => "trace",
        _ => "log",
    }
}

fn response_of(r: clave_sandbox::HttpResponse) -> InvokeResponse {
    InvokeResponse {
        status: r.status,
        headers: r.headers,
        body: r.body,
    }
}

impl Runner for SandboxRunner {
    fn run(&self, call: RunRequest) -> BoxFuture<'_, RunReport> {
        Box::pin(async move {
            let r = self.call(call).await;
            let stack = match &r.result {
                Err(clave_sandbox::Error::ScriptError { stack, .. }) => stack.clone(),
                _ => None,
            };
            RunReport {
                result: r.result.map(response_of).map_err(map_error),
                console: r
                    .console
                    .into_iter()
                    .map(|l| (level_name(l.level), l.text))
                    .collect(),
                console_truncated: r.console_truncated,
                stack,
            }
        })
    }

    fn prepare_thread(&self) {
        if let Err(e) = self.pool.prepare_inline_slot() {
            tracing::warn!(error = %e, "could not build this thread's sandbox slot ahead");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_url_is_scheme_authority_and_path() {
        for target in ["", "/a/b?c=d", "?q=1"] {
            let req = InvokeRequest::new(
                "proj".parse().expect("project"),
                "fn-1".parse().expect("function"),
                clave_proto::CodeHash::of(b"x"),
                0,
                vec![],
            )
            .with_target("GET", target)
            .expect("target");
            assert_eq!(
                request_url(&req),
                format!(
                    "{}://{}{}",
                    clave_proto::invoke::SCHEME,
                    clave_proto::invoke::AUTHORITY,
                    req.path()
                )
            );
        }
    }

    #[test]
    fn limits_round_trip() {
        let l = Limits::default();
        assert_eq!(from_sandbox_limits(&to_sandbox_limits(&l)), l);
    }

    #[test]
    fn script_error_debug_hides_message() {
        let e = RunError::Script {
            message: "secret input".into(),
        };
        assert!(!format!("{e:?}").contains("secret"));
        assert!(!format!("{e}").contains("secret"));
    }
}
