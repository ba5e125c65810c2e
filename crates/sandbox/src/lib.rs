//! clave-sandbox: the JavaScript sandbox of the clave engine (QuickJS-ng through rquickjs 0.14).
//!
//! It runs a Workers-style ES module (`export default { fetch(request, env, ctx) }`, alone or as the
//! entry of a [`bundle::Bundle`] of modules linked from the bundle only) per call in a
//! fresh instance restored from the function's snapshot image, with a Web API surface written here (see the README), under hard limits:
//! a wall-clock deadline, heap bytes, stack bytes, request/response/console sizes. Every limit ends
//! only that call with a typed [`Error`]; [`SandboxPool`] answers [`Error::Timeout`] on time even
//! when a native built-in overruns, by abandoning and replacing the worker thread.
//!
//! It refuses: network access other than HTTPS `fetch()` through the [`Outbound`] the embedder
//! supplies for a call (without one, `fetch` rejects), any filesystem, timers beyond the call's deadline,
//! clocks finer than 1 ms, `eval` and `new Function` of strings (the context has no eval intrinsic),
//! bytecode that it did not compile itself, and printing anything (console output is returned).
//!
//! Script error messages and console lines are plaintext produced by the function: they must stay
//! inside the TEE, and the engine must only ever return them encrypted to the invoking user.

mod arena;
pub mod bundle;
mod bytes;
mod cache;
mod host;
mod invoke;
mod link;
pub mod outbound;
mod pool;
// The compiler itself runs in the build script and the tests; the crate uses its tables.
#[cfg_attr(not(test), allow(dead_code))]
mod prelude_compile;

use std::time::Duration;

pub use outbound::{Outbound, OutboundError, OutboundRequest, OutboundResponse};
pub use pool::{INLINE_MAX_STACK, PoolConfig, Sandbox, SandboxPool};

/// An HTTP request handed to the function's `fetch` as a `Request`.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Method, e.g. `GET` (normalised like `new Request` does).
    pub method: String,
    /// Absolute URL, e.g. `https://fn.example/path?q=1`.
    pub url: String,
    /// Header fields in order; invalid names or values are skipped.
    pub headers: Vec<(String, String)>,
    /// Body bytes (ignored for `GET` and `HEAD`).
    pub body: Vec<u8>,
    /// The `env` object passed to `fetch(request, env, ctx)`: `(name, value)` string
    /// properties, in order (a later duplicate wins). Empty: `{}`. Values may be secrets: they
    /// are never printed.
    pub env: Env,
}

/// Properties of the `env` object of a call (shared between calls of one deployment).
pub type Env = std::sync::Arc<[(String, String)]>;

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print user input: it is plaintext inside the TEE.
        f.debug_struct("HttpRequest")
            .field("headers", &self.headers.len())
            .field("body_len", &self.body.len())
            .field("env", &self.env.len())
            .finish_non_exhaustive()
    }
}

/// The `Response` the function returned, flattened.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code (200..=599).
    pub status: u16,
    /// Header fields as `Headers` iterates them: lower-case names, sorted, `set-cookie` split.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &self.headers.len())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Severity of a captured `console` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConsoleLevel {
    /// `console.log`, `dir`, `table`, `group`.
    Log,
    /// `console.info`, `count`, `time*`.
    Info,
    /// `console.debug`.
    Debug,
    /// `console.warn`.
    Warn,
    /// `console.error`, failed `console.assert`.
    Error,
    /// `console.trace`.
    Trace,
}

/// One captured `console` line (plaintext from the function: keep it inside the TEE).
#[derive(Clone, PartialEq, Eq)]
pub struct ConsoleLine {
    /// Severity.
    pub level: ConsoleLevel,
    /// Formatted text.
    pub text: String,
}

impl std::fmt::Debug for ConsoleLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleLine")
            .field("level", &self.level)
            .field("len", &self.text.len())
            .finish()
    }
}

/// What a successful call produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The function's response.
    pub response: HttpResponse,
    /// Captured console output, at most `Limits::max_console_bytes` of text.
    pub console: Vec<ConsoleLine>,
    /// True if console output beyond the limit was dropped.
    pub console_truncated: bool,
}

/// Everything a call produced, also when it failed: the result and the console output up to
/// the failure (plaintext from the function: keep it inside the TEE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallReport {
    /// The response, or why there is none.
    pub result: Result<HttpResponse, Error>,
    /// Captured console output, at most `Limits::max_console_bytes` of text.
    pub console: Vec<ConsoleLine>,
    /// True if console output beyond the limit was dropped.
    pub console_truncated: bool,
}

impl CallReport {
    /// A report of a call that failed before the function could print anything.
    #[must_use]
    pub fn failed(error: Error) -> Self {
        Self {
            result: Err(error),
            console: Vec::new(),
            console_truncated: false,
        }
    }

    /// The [`Outcome`] of a successful call (the console of a failed one is dropped).
    ///
    /// # Errors
    /// The call's error.
    pub fn into_outcome(self) -> Result<Outcome, Error> {
        self.result.map(|response| Outcome {
            response,
            console: self.console,
            console_truncated: self.console_truncated,
        })
    }
}

/// Per-call limits (the manifest's), clamped to the platform maxima of the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deadline in milliseconds, enforced as wall-clock time from the start of the call (stricter
    /// than CPU time: waiting for timers counts too).
    pub cpu_ms: u64,
    /// JavaScript heap limit in bytes (QuickJS allocator); host functions refuse single
    /// allocations larger than this too.
    pub heap_bytes: usize,
    /// JavaScript stack limit in bytes.
    pub stack_bytes: usize,
    /// Largest request body accepted.
    pub max_request_bytes: usize,
    /// Largest response (body plus header bytes) returned.
    pub max_response_bytes: usize,
    /// Console text kept per call; the rest is dropped and `Outcome::console_truncated` set.
    pub max_console_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cpu_ms: 1_000,
            heap_bytes: 64 << 20,
            stack_bytes: 512 << 10,
            max_request_bytes: 1 << 20,
            max_response_bytes: 6 << 20,
            max_console_bytes: 64 << 10,
        }
    }
}

impl Limits {
    /// Smallest values accepted (smaller requests are raised to these): 1 ms, 1 MiB heap,
    /// 64 KiB stack.
    pub const FLOOR: Limits = Limits {
        cpu_ms: 1,
        heap_bytes: 1 << 20,
        stack_bytes: 64 << 10,
        max_request_bytes: 0,
        max_response_bytes: 0,
        max_console_bytes: 0,
    };

    /// Each field is the minimum of `self` and `max` (and at least [`Limits::FLOOR`]).
    pub fn clamp(&self, max: &Limits) -> Limits {
        let f = Limits::FLOOR;
        Limits {
            cpu_ms: self.cpu_ms.min(max.cpu_ms).max(f.cpu_ms),
            heap_bytes: self.heap_bytes.min(max.heap_bytes).max(f.heap_bytes),
            stack_bytes: self.stack_bytes.min(max.stack_bytes).max(f.stack_bytes),
            max_request_bytes: self.max_request_bytes.min(max.max_request_bytes),
            max_response_bytes: self.max_response_bytes.min(max.max_response_bytes),
            max_console_bytes: self.max_console_bytes.min(max.max_console_bytes),
        }
    }

    /// The deadline as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.cpu_ms)
    }
}

/// Why a call (or a deploy-time check) failed. Messages from scripts are plaintext written by the
/// function: return them to the invoking user only encrypted.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The deadline passed (interrupt, timer beyond the deadline, or a native built-in overran and
    /// the pool abandoned the worker after the grace period).
    #[error("the function exceeded its time limit")]
    Timeout,
    /// The JavaScript heap limit or a host allocation budget was exceeded.
    #[error("the function exceeded its memory limit")]
    OutOfMemory,
    /// The JavaScript stack limit was exceeded.
    #[error("the function exceeded its stack limit")]
    StackOverflow,
    /// The response (body plus headers) is larger than `Limits::max_response_bytes`.
    #[error("the response is larger than {limit} bytes")]
    ResponseTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request body is larger than `Limits::max_request_bytes`.
    #[error("the request body of {size} bytes is larger than {limit} bytes")]
    RequestTooLarge {
        /// The body size.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The function threw (or its promise rejected) with an uncaught error.
    #[error("uncaught exception: {message}")]
    ScriptError {
        /// `Name: message` of the error, or the thrown value as a string.
        message: String,
        /// The JavaScript stack trace, if any.
        stack: Option<String>,
    },
    /// The module does not compile or link, or its evaluation threw.
    #[error("invalid module: {message}")]
    InvalidModule {
        /// What was wrong.
        message: String,
    },
    /// The module has no default export with a `fetch` function.
    #[error("no usable default export: {message}")]
    NoDefaultExport {
        /// What was wrong.
        message: String,
    },
    /// `fetch` resolved to something that is not a `Response`.
    #[error("fetch() returned {returned}, not a Response")]
    BadResponse {
        /// A description of the returned value's type.
        returned: String,
    },
    /// The promise returned by `fetch` never settled and no timer was pending.
    #[error("the promise returned by fetch() never settled")]
    NeverSettled,
    /// The code does not hash to the given code hash.
    #[error("the code does not match its code hash")]
    CodeHashMismatch,
    /// Too many abandoned worker threads (calls whose native built-in overran the deadline) are
    /// still running: the pool refuses to start another thread until some exit. Retry later.
    #[error("the sandbox is overloaded: {running} abandoned workers still running (limit {limit})")]
    Overloaded {
        /// Abandoned worker threads still running.
        running: usize,
        /// The pool's cap ([`SandboxPool::max_abandoned_running`]).
        limit: usize,
    },
    /// A bug or resource failure in the sandbox itself.
    #[error("internal sandbox error: {0}")]
    Internal(String),
}

/// Deploy-time validation: the module compiles, links, evaluates within default limits, and has a
/// default export with a `fetch` function. Blocking; runs on its own thread (top-level code that
/// overruns the deadline inside a native built-in delays this call until that built-in returns).
pub fn check(code: &str) -> Result<(), Error> {
    check_with_limits(code, &Limits::default())
}

/// [`check`] with explicit limits.
pub fn check_with_limits(code: &str, limits: &Limits) -> Result<(), Error> {
    let limits = limits.clamp(&Limits {
        stack_bytes: 8 << 20,
        ..*limits
    });
    let code = code.to_owned();
    let stack = pool::thread_stack_for(limits.stack_bytes);
    std::thread::scope(|s| {
        let h = std::thread::Builder::new()
            .name("clave-sandbox-check".into())
            .stack_size(stack)
            .spawn_scoped(s, move || invoke::check_module(&code, &limits))
            .map_err(|e| Error::Internal(format!("spawn check thread: {e}")))?;
        h.join()
            .map_err(|_| Error::Internal("check thread panicked".into()))?
    })
}

/// Runs one call on the current thread, without supervision (no abandonment of overrunning native
/// built-ins). For benchmarks and tools; the engine uses [`SandboxPool`]. The current thread's stack
/// must be at least twice `limits.stack_bytes`.
pub fn run_on_current_thread(
    cache: &BytecodeCache,
    code_hash: [u8; 32],
    code: &str,
    request: HttpRequest,
    limits: &Limits,
) -> Result<Outcome, Error> {
    invoke::run_on_thread_slot(
        cache,
        code_hash,
        code,
        request,
        limits,
        Limits::default().heap_bytes,
        invoke::DEFAULT_IMAGE_BYTES,
    )
    .into_outcome()
}

pub use cache::BytecodeCache;

/// Resident memory of an idle instance (runtime + context + prelude + module loaded, no call made):
/// returns the QuickJS heap bytes in use (`malloc_size`). For `clave bench`.
pub fn idle_instance_heap_bytes(code: &str) -> Result<usize, Error> {
    invoke::idle_heap_bytes(code).map(|(heap, _, _)| heap)
}

/// The snapshot image a slot keeps for the function `code` (runtime, context, prelude and module
/// evaluated): `(bytes it restores, bytes of it not shared with the slot's base image)`. The
/// second is what a deployed function costs in memory per worker while its image is cached.
pub fn function_image_bytes(code: &str) -> Result<(usize, usize), Error> {
    invoke::idle_heap_bytes(code).map(|(_, image, unique)| (image, unique))
}

/// FUZZING ONLY (`fuzz/fuzz_targets/sandbox_json.rs`): the native `JSON.parse` fast path of
/// `request.json()` on `text`. Not part of the API.
#[doc(hidden)]
pub fn __fuzz_native_json_parse<'js>(
    ctx: &rquickjs::Ctx<'js>,
    text: &rquickjs::String<'js>,
) -> Option<rquickjs::Value<'js>> {
    bytes::json_parse_fast(ctx, text, 1 << 20)
}
