//! One invocation: fresh runtime + context, prelude, module from bytecode, `fetch`, our own job
//! loop (deadline checked between jobs, outside `Context::with`), response extraction, teardown.

use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rquickjs::context::intrinsic;
use rquickjs::promise::PromiseState;
use rquickjs::{
    Array, Context, Ctx, Function, Module, Object, Persistent, Promise, Runtime, TypedArray, Value,
    WriteOptions,
};
use sha2::Digest as _;

use crate::bytes::{limited_runtime, load_module, with_u8};
use crate::host::{self, CallState};
use crate::{BytecodeCache, Error, HttpRequest, HttpResponse, Limits, Outcome};

const PRELUDE_SRC: &str = include_str!("prelude.js");
const MODULE_NAME: &str = "worker.js";

/// Intrinsics every execution context starts with (besides the base objects). The context never
/// gets `Eval` (so `eval` and `new Function` of strings throw) nor `Performance` (a
/// high-resolution clock). All of them are added before any program code runs: adding one later
/// (on first use, to make a fresh context cheaper) was tried and dropped, because
/// `JS_AddIntrinsicTypedArrays` reads program-reachable properties and aborts the process when a
/// global it defines already exists, and a frozen `globalThis` then lost the built-ins.
type RunIntrinsics = (
    intrinsic::Date,
    intrinsic::RegExpCompiler,
    intrinsic::RegExp,
    intrinsic::Json,
    intrinsic::Proxy,
    intrinsic::MapSet,
    intrinsic::TypedArrays,
    intrinsic::Promise,
    intrinsic::WeakRef,
    intrinsic::DOMException,
);

/// Intrinsics of the short-lived compile context (parsing needs the eval machinery and the regexp
/// compiler for literals).
type CompileIntrinsics = (intrinsic::Eval, intrinsic::RegExpCompiler);

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// The lazily loaded prelude chunks, in the order of the `CHUNK_*` indices in prelude.js.
const CHUNKS: [(&str, &str); 7] = [
    ("clave:text", include_str!("prelude_text.js")),
    ("clave:url", include_str!("prelude_url.js")),
    ("clave:crypto", include_str!("prelude_crypto.js")),
    ("clave:clone", include_str!("prelude_clone.js")),
    ("clave:console", include_str!("prelude_console.js")),
    ("clave:timers", include_str!("prelude_timers.js")),
    ("clave:extra", include_str!("prelude_extra.js")),
];

/// Bytecode of the core prelude and of its lazily loaded chunks.
pub(crate) struct PreludeCode {
    core: Vec<u8>,
    pub(crate) chunks: Vec<Vec<u8>>,
}

/// The prelude bytecode, compiled once per process.
pub(crate) fn prelude() -> Result<&'static PreludeCode, Error> {
    static PRELUDE: OnceLock<Result<PreludeCode, String>> = OnceLock::new();
    PRELUDE
        .get_or_init(|| {
            let rt = Runtime::new().map_err(|e| e.to_string())?;
            let ctx = Context::custom::<CompileIntrinsics>(&rt).map_err(|e| e.to_string())?;
            ctx.with(|ctx| {
                let compile = |name: &str, src: &str| -> Result<Vec<u8>, String> {
                    let m = Module::declare(ctx.clone(), name, src).map_err(|e| {
                        format!("{name}: {e}: {:?}", exception_text(&ctx, ctx.catch()))
                    })?;
                    // No debug information (line tables) in our own bytecode: it is read into
                    // every context, and its frames need no line numbers.
                    m.write(WriteOptions {
                        strip_source: true,
                        strip_debug: true,
                        ..Default::default()
                    })
                    .map_err(|e| e.to_string())
                };
                Ok(PreludeCode {
                    core: compile("clave:prelude", PRELUDE_SRC)?,
                    chunks: CHUNKS
                        .iter()
                        .map(|(name, src)| compile(name, src))
                        .collect::<Result<_, _>>()?,
                })
            })
        })
        .as_ref()
        .map_err(|e| Error::Internal(format!("prelude does not compile: {e}")))
}

fn exception_text<'js>(_ctx: &Ctx<'js>, v: Value<'js>) -> (String, Option<String>) {
    if let Some(obj) = v.as_object() {
        let name: Option<String> = obj.get("name").ok();
        let message: Option<String> = obj.get("message").ok();
        let stack: Option<String> = obj.get("stack").ok();
        if name.is_some() || message.is_some() {
            let name = name.unwrap_or_else(|| "Error".into());
            let message = message.unwrap_or_default();
            let text = if message.is_empty() {
                name
            } else {
                format!("{name}: {message}")
            };
            return (text, stack.filter(|s| !s.is_empty()));
        }
    }
    let text = if let Some(s) = v.as_string() {
        s.to_string().unwrap_or_default()
    } else if v.is_undefined() {
        "undefined".into()
    } else if v.is_null() {
        "null".into()
    } else if let Some(n) = v.as_number() {
        n.to_string()
    } else if let Some(b) = v.as_bool() {
        b.to_string()
    } else {
        format!("a thrown {}", v.type_name())
    };
    (text, None)
}

/// Maps a thrown value to the typed error.
fn classify<'js>(st: &CallState, ctx: &Ctx<'js>, v: Value<'js>) -> Error {
    if st.expired() {
        return Error::Timeout;
    }
    if st.out_of_memory() {
        return Error::OutOfMemory;
    }
    let (message, stack) = exception_text(ctx, v);
    match message.as_str() {
        "InternalError: out of memory" | "InternalError: string too long" => Error::OutOfMemory,
        "RangeError: Maximum call stack size exceeded" => Error::StackOverflow,
        "InternalError: interrupted" => Error::Timeout,
        _ => Error::ScriptError { message, stack },
    }
}

/// Takes the pending exception of `ctx` after `e` and classifies it.
fn caught<'js>(st: &CallState, ctx: &Ctx<'js>, e: rquickjs::Error) -> Error {
    match e {
        rquickjs::Error::Exception => {
            let v = ctx.catch();
            classify(st, ctx, v)
        }
        rquickjs::Error::Allocation => Error::OutOfMemory,
        other => {
            if st.expired() {
                Error::Timeout
            } else {
                Error::Internal(other.to_string())
            }
        }
    }
}

fn compile_error<'js>(ctx: &Ctx<'js>, e: rquickjs::Error) -> Error {
    match e {
        rquickjs::Error::Exception => {
            let (message, _) = exception_text(ctx, ctx.catch());
            match message.as_str() {
                "InternalError: out of memory" => Error::OutOfMemory,
                "RangeError: Maximum call stack size exceeded" => Error::StackOverflow,
                "InternalError: interrupted" => Error::Timeout,
                _ => Error::InvalidModule { message },
            }
        }
        other => Error::InvalidModule {
            message: other.to_string(),
        },
    }
}

/// Refuses every import: functions are one module, and the prelude must not be importable.
struct NoImports;

impl rquickjs::loader::Resolver for NoImports {
    fn resolve<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        _base: &str,
        name: &str,
        _attributes: Option<rquickjs::loader::ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        Err(rquickjs::Exception::throw_reference(
            ctx,
            &format!("module imports are not supported in the clave sandbox ({name:?})"),
        ))
    }
}

impl rquickjs::loader::Loader for NoImports {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<rquickjs::loader::ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js>> {
        Err(rquickjs::Exception::throw_reference(
            ctx,
            &format!("module imports are not supported in the clave sandbox ({name:?})"),
        ))
    }
}

fn new_runtime(st: &Rc<CallState>) -> Result<Runtime, Error> {
    let rt = limited_runtime(st.heap.clone()).map_err(internal)?;
    rt.set_loader(NoImports, NoImports);
    let s = st.clone();
    rt.set_interrupt_handler(Some(Box::new(move || s.expired())));
    Ok(rt)
}

/// First cycle-collection threshold of a runtime. QuickJS starts at 256 KiB, which an idle
/// instance almost fills, so nearly every call paid for a full GC pass that found nothing (reference
/// counting frees acyclic garbage at once). The threshold grows with the heap limit (1/8 of it,
/// between 256 KiB and 2 MiB); after each pass QuickJS sets it to 1.5 × the live heap.
pub(crate) fn gc_threshold(heap_bytes: usize) -> usize {
    (heap_bytes / 8).clamp(256 << 10, 2 << 20)
}

/// Compiles source to bytecode in a throwaway context of `rt` (same limits as the call).
fn compile(rt: &Runtime, source: &str) -> Result<Vec<u8>, Error> {
    let cctx = Context::custom::<CompileIntrinsics>(rt).map_err(internal)?;
    cctx.with(|ctx| {
        let m = Module::declare(ctx.clone(), MODULE_NAME, source)
            .map_err(|e| compile_error(&ctx, e))?;
        m.write(WriteOptions {
            strip_source: true,
            ..Default::default()
        })
        .map_err(|e| compile_error(&ctx, e))
    })
}

/// Everything that lives in one runtime; dropped in a safe order (persistent handles first).
struct Instance {
    st: Rc<CallState>,
    handles: Handles,
    ctx: Context,
    rt: Runtime,
    failed: bool,
}

#[derive(Default)]
struct Handles {
    dispatch: Option<Persistent<Function<'static>>>,
    run_timers: Option<Persistent<Function<'static>>>,
    check_handler: Option<Persistent<Function<'static>>>,
    begin: Option<Persistent<Function<'static>>>,
    namespace: Option<Persistent<Object<'static>>>,
    pending: Option<Persistent<Promise<'static>>>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        // After an out-of-memory or an interrupt the runtime is never reused; give it headroom so
        // that finalizers and frees during teardown do not fail on the limit.
        if self.failed {
            self.st.heap.set_limit(usize::MAX);
        }
        // No explicit `run_gc`: dropping the context and then the runtime (`JS_FreeRuntime`) runs
        // the cycle collector once and frees everything.
        self.handles = Handles::default();
    }
}

impl Instance {
    /// Fresh runtime + context with the prelude evaluated and the module (from `bytecode`) loaded.
    fn new(
        limits: &Limits,
        st: Rc<CallState>,
        bytecode: BytecodeSource<'_>,
    ) -> Result<(Instance, Option<Vec<u8>>), Error> {
        let mut inst = Instance::prepare(st)?;
        inst.arm(limits, inst.st.deadline(), false)?;
        let compiled = inst.load_user(bytecode)?;
        Ok((inst, compiled))
    }

    /// Fresh runtime + context with the prelude evaluated, before the call is known: no limits
    /// yet beyond the ones `st` was created with (see [`Instance::arm`]). Runs only our own code.
    fn prepare(st: Rc<CallState>) -> Result<Instance, Error> {
        let prelude = prelude()?;
        let rt = new_runtime(&st)?;
        let ctx = Context::custom::<RunIntrinsics>(&rt).map_err(internal)?;
        let mut inst = Instance {
            st,
            handles: Handles::default(),
            ctx,
            rt,
            failed: false,
        };
        let st = inst.st.clone();
        let r = inst.ctx.with(|ctx| -> Result<_, Error> {
            host::install(&ctx, &st, &prelude.chunks).map_err(|e| caught(&st, &ctx, e))?;
            let pm = load_module(ctx.clone(), &prelude.core).map_err(|e| caught(&st, &ctx, e))?;
            let (pm, _p) = pm.eval().map_err(|e| caught(&st, &ctx, e))?;
            let dispatch: Function<'_> = pm.get("dispatch").map_err(internal)?;
            let run_timers: Function<'_> = pm.get("runTimers").map_err(internal)?;
            let check: Function<'_> = pm.get("checkHandler").map_err(internal)?;
            let begin: Function<'_> = pm.get("begin").map_err(internal)?;
            Ok((
                Persistent::save(&ctx, dispatch),
                Persistent::save(&ctx, run_timers),
                Persistent::save(&ctx, check),
                Persistent::save(&ctx, begin),
            ))
        });
        match r {
            Ok((d, t, c, b)) => {
                inst.handles.dispatch = Some(d);
                inst.handles.run_timers = Some(t);
                inst.handles.check_handler = Some(c);
                inst.handles.begin = Some(b);
                Ok(inst)
            }
            Err(e) => {
                inst.failed = true;
                Err(inst.reclassify(e))
            }
        }
    }

    /// Applies the call's limits and deadline. `restart_clock` (for an instance prepared ahead of
    /// its call) moves `performance.timeOrigin` to now, as if the prelude had just run.
    fn arm(
        &mut self,
        limits: &Limits,
        deadline: Instant,
        restart_clock: bool,
    ) -> Result<(), Error> {
        self.st.arm(limits, deadline);
        self.rt.set_max_stack_size(limits.stack_bytes);
        self.rt.set_gc_threshold(gc_threshold(limits.heap_bytes));
        if restart_clock {
            let begin = self.handles.begin.clone();
            let st = self.st.clone();
            self.ctx.with(|ctx| -> Result<(), Error> {
                let f = begin
                    .ok_or_else(|| internal("no begin entry point"))?
                    .restore(&ctx)
                    .map_err(internal)?;
                f.call::<_, ()>(()).map_err(|e| caught(&st, &ctx, e))
            })?;
        }
        Ok(())
    }

    /// Loads and evaluates the function's module (compiling `Source` first, with the call's
    /// limits) and drives top-level await to completion. Returns the bytecode it compiled.
    fn load_user(&mut self, bytecode: BytecodeSource<'_>) -> Result<Option<Vec<u8>>, Error> {
        let mut compiled = None;
        let code: &[u8] = match bytecode {
            BytecodeSource::Bytecode(b) => b,
            BytecodeSource::Source(src) => {
                match compile(&self.rt, src) {
                    Ok(b) => compiled = Some(b),
                    Err(e) => {
                        self.failed = true;
                        return Err(self.reclassify(e));
                    }
                }
                compiled.as_deref().unwrap_or_default()
            }
        };
        let st = self.st.clone();
        let r = self.ctx.with(|ctx| -> Result<_, Error> {
            let um = load_module(ctx.clone(), code).map_err(|e| compile_error(&ctx, e))?;
            let (um, p) = um.eval().map_err(|e| match caught(&st, &ctx, e) {
                Error::ScriptError { message, .. } => Error::InvalidModule { message },
                other => other,
            })?;
            let ns = um.namespace().map_err(|e| caught(&st, &ctx, e))?;
            Ok((Persistent::save(&ctx, ns), Persistent::save(&ctx, p)))
        });
        match r {
            Ok((ns, p)) => {
                self.handles.namespace = Some(ns);
                self.handles.pending = Some(p);
            }
            Err(e) => {
                self.failed = true;
                return Err(self.reclassify(e));
            }
        }
        // Top-level await: drive module evaluation to completion; a throw at top level rejects.
        let settled = self.drive().and_then(|()| {
            let pending = self.handles.pending.take();
            self.ctx.with(|ctx| {
                let p = pending
                    .ok_or_else(|| internal("no module promise"))?
                    .restore(&ctx)
                    .map_err(internal)?;
                match p.result::<Value<'_>>() {
                    Some(Ok(_)) => Ok(()),
                    Some(Err(e)) => Err(caught(&st, &ctx, e)),
                    None => Err(Error::NeverSettled),
                }
            })
        });
        if let Err(e) = settled {
            self.failed = true;
            let e = self.reclassify(e);
            return Err(match e {
                Error::ScriptError { message, .. } => Error::InvalidModule { message },
                other => other,
            });
        }
        Ok(compiled)
    }

    /// Runs jobs and timers until `handles.pending` settles; checks the deadline between jobs.
    fn drive(&mut self) -> Result<(), Error> {
        let st = self.st.clone();
        loop {
            loop {
                if st.expired() {
                    return Err(Error::Timeout);
                }
                match self.rt.execute_pending_job() {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(job) => {
                        return Err(job.0.with(|ctx| {
                            let v = ctx.catch();
                            classify(&st, &ctx, v)
                        }));
                    }
                }
            }
            let pending = self.handles.pending.clone();
            let timers = self.handles.run_timers.clone();
            let state = self.ctx.with(|ctx| {
                pending
                    .map(|p| p.restore(&ctx).map(|p| p.state()))
                    .transpose()
                    .map_err(internal)
            })?;
            if state != Some(PromiseState::Pending) {
                return Ok(());
            }
            let wait = self.ctx.with(|ctx| -> Result<f64, Error> {
                let f = timers
                    .ok_or_else(|| internal("no timer entry point"))?
                    .restore(&ctx)
                    .map_err(internal)?;
                f.call::<_, f64>(()).map_err(|e| caught(&st, &ctx, e))
            })?;
            if wait < 0.0 {
                return Err(Error::NeverSettled);
            }
            if wait > 0.0 {
                let wake = Instant::now() + Duration::from_millis(wait as u64);
                if wake > st.deadline() {
                    return Err(Error::Timeout);
                }
                std::thread::sleep(wake.saturating_duration_since(Instant::now()));
            }
        }
    }

    /// Out of memory is exact: once the allocator refused a request (or a host function refused
    /// a buffer), an error that may be its consequence is reported as `OutOfMemory` — an uncaught
    /// exception of any kind (QuickJS throws a bare `null` when it cannot even allocate its error
    /// object), a promise that never settled (QuickJS can lose a job whose allocation failed), an
    /// invalid module, a bad return value or an internal error. Timeouts, stack overflows and size
    /// limits keep their own error.
    fn reclassify(&self, e: Error) -> Error {
        match e {
            Error::ScriptError { .. }
            | Error::NeverSettled
            | Error::InvalidModule { .. }
            | Error::BadResponse { .. }
            | Error::Internal(_)
                if self.st.out_of_memory() =>
            {
                Error::OutOfMemory
            }
            e => e,
        }
    }

    fn check_handler(&mut self) -> Result<(), Error> {
        let st = self.st.clone();
        let (c, ns) = (
            self.handles.check_handler.clone(),
            self.handles.namespace.clone(),
        );
        self.ctx.with(|ctx| {
            let c = c
                .ok_or_else(|| internal("no check"))?
                .restore(&ctx)
                .map_err(internal)?;
            let ns = ns
                .ok_or_else(|| internal("no ns"))?
                .restore(&ctx)
                .map_err(internal)?;
            let r: Option<String> = c.call((ns,)).map_err(|e| caught(&st, &ctx, e))?;
            match r {
                None => Ok(()),
                Some(message) => Err(Error::NoDefaultExport { message }),
            }
        })
    }

    fn call(&mut self, mut request: HttpRequest, limits: &Limits) -> Result<HttpResponse, Error> {
        let st = self.st.clone();
        let (d, ns) = (
            self.handles.dispatch.clone(),
            self.handles.namespace.clone(),
        );
        let p = self.ctx.with(|ctx| -> Result<_, Error> {
            let d = d
                .ok_or_else(|| internal("no dispatch"))?
                .restore(&ctx)
                .map_err(internal)?;
            let ns = ns
                .ok_or_else(|| internal("no ns"))?
                .restore(&ctx)
                .map_err(internal)?;
            let headers = Array::new(ctx.clone()).map_err(|e| caught(&st, &ctx, e))?;
            let mut i = 0;
            for (k, v) in &request.headers {
                headers
                    .set(i, k.as_str())
                    .map_err(|e| caught(&st, &ctx, e))?;
                headers
                    .set(i + 1, v.as_str())
                    .map_err(|e| caught(&st, &ctx, e))?;
                i += 2;
            }
            // The body goes in as a string when it is valid UTF-8 (the common case: no typed
            // arrays needed, one copy); other bytes are fetched by the prelude (`H.requestBytes`).
            let body = if request.body.is_empty() {
                Value::new_null(ctx.clone())
            } else if let Ok(text) = std::str::from_utf8(&request.body) {
                Value::from_string(
                    rquickjs::String::from_str(ctx.clone(), text)
                        .map_err(|e| caught(&st, &ctx, e))?,
                )
            } else {
                *st.request_bytes.borrow_mut() = std::mem::take(&mut request.body);
                Value::new_bool(ctx.clone(), true)
            };
            let p: Promise<'_> = d
                .call((
                    ns,
                    request.method.as_str(),
                    request.url.as_str(),
                    headers,
                    body,
                ))
                .map_err(|e| caught(&st, &ctx, e))?;
            Ok(Persistent::save(&ctx, p))
        })?;
        self.handles.pending = Some(p);
        self.drive()?;
        let pending = self.handles.pending.take();
        let max = limits.max_response_bytes;
        self.ctx.with(|ctx| {
            let p = pending
                .ok_or_else(|| internal("no promise"))?
                .restore(&ctx)
                .map_err(internal)?;
            let v: Value<'_> = match p.result::<Value<'_>>() {
                Some(Ok(v)) => v,
                Some(Err(e)) => return Err(caught(&st, &ctx, e)),
                None => return Err(Error::NeverSettled),
            };
            if let Some(s) = v.as_string() {
                return Err(Error::BadResponse {
                    returned: s.to_string().unwrap_or_default(),
                });
            }
            let arr = v
                .into_array()
                .ok_or_else(|| internal("dispatch returned no array"))?;
            let status: i32 = arr.get(0).map_err(internal)?;
            if !(200..=599).contains(&status) {
                return Err(Error::BadResponse {
                    returned: "Response.error()".into(),
                });
            }
            let flat: Array<'_> = arr.get(1).map_err(internal)?;
            let body: Value<'_> = arr.get(2).map_err(internal)?;
            let mut size = 0usize;
            let body = if body.is_null() || body.is_undefined() {
                Vec::new()
            } else if let Some(text) = body.as_string() {
                let text = text.to_string().map_err(|e| caught(&st, &ctx, e))?;
                size = text.len();
                if size > max {
                    return Err(Error::ResponseTooLarge { limit: max });
                }
                text.into_bytes()
            } else {
                let ta = TypedArray::<u8>::from_value(body).map_err(internal)?;
                size = ta.len();
                if size > max {
                    return Err(Error::ResponseTooLarge { limit: max });
                }
                with_u8(&ta, <[u8]>::to_vec).ok_or_else(|| internal("detached body"))?
            };
            let mut headers = Vec::with_capacity(flat.len() / 2);
            let mut i = 0;
            while i + 1 < flat.len() {
                let k: String = flat.get(i).map_err(internal)?;
                let v: String = flat.get(i + 1).map_err(internal)?;
                size = size.saturating_add(k.len() + v.len() + 4);
                if size > max {
                    return Err(Error::ResponseTooLarge { limit: max });
                }
                headers.push((k, v));
                i += 2;
            }
            Ok(HttpResponse {
                status: status as u16,
                headers,
                body,
            })
        })
    }
}

enum BytecodeSource<'a> {
    Bytecode(&'a [u8]),
    Source(&'a str),
}

/// One full call. Runs on the calling thread (whose stack must be ≥ 2× `limits.stack_bytes`).
pub(crate) fn run(
    cache: &BytecodeCache,
    code_hash: [u8; 32],
    code: &str,
    request: HttpRequest,
    limits: &Limits,
    abandon: Arc<AtomicBool>,
) -> Result<Outcome, Error> {
    run_at(
        cache,
        code_hash,
        code,
        request,
        limits,
        abandon,
        Instant::now(),
    )
}

pub(crate) fn run_at(
    cache: &BytecodeCache,
    code_hash: [u8; 32],
    code: &str,
    request: HttpRequest,
    limits: &Limits,
    abandon: Arc<AtomicBool>,
    started: Instant,
) -> Result<Outcome, Error> {
    let (result, spent) = run_prepared(
        cache, code_hash, code, request, limits, abandon, started, None,
    );
    drop(spent);
    result
}

/// How long preparing an instance ahead of its call may take (only our prelude runs).
const PREPARE_DEADLINE: Duration = Duration::from_secs(10);

/// A fresh runtime + context with the prelude evaluated, made before its call is known (pool
/// workers keep one ready while idle). It serves exactly one call; no user code has run in it.
pub(crate) struct Ready(Instance);

/// An instance whose call is over, to be dropped (torn down) after the reply was sent.
pub(crate) struct Spent(#[allow(dead_code)] Instance);

/// Prepares an instance for the next call of a worker whose abandon flag is `abandon`.
pub(crate) fn prepare(abandon: Arc<AtomicBool>) -> Option<Ready> {
    let limits = Limits::default();
    let st = Rc::new(CallState::new(
        &limits,
        Instant::now() + PREPARE_DEADLINE,
        abandon,
    ));
    Instance::prepare(st).ok().map(Ready)
}

/// One full call on `ready` (or on a fresh instance). Returns the result and the used instance,
/// which the caller drops when convenient (after replying).
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_prepared(
    cache: &BytecodeCache,
    code_hash: [u8; 32],
    code: &str,
    request: HttpRequest,
    limits: &Limits,
    abandon: Arc<AtomicBool>,
    started: Instant,
    ready: Option<Ready>,
) -> (Result<Outcome, Error>, Option<Spent>) {
    let spent = ready.map(|Ready(i)| Spent(i));
    if request.body.len() > limits.max_request_bytes {
        let e = Error::RequestTooLarge {
            size: request.body.len(),
            limit: limits.max_request_bytes,
        };
        return (Err(e), spent);
    }
    let deadline = started + limits.timeout();
    if Instant::now() >= deadline || abandon.load(std::sync::atomic::Ordering::Relaxed) {
        return (Err(Error::Timeout), spent);
    }
    let cached = cache.get(&code_hash);
    let source = match &cached {
        Some(b) => BytecodeSource::Bytecode(b),
        None => {
            let actual: [u8; 32] = sha2::Sha256::digest(code.as_bytes()).into();
            if actual != code_hash {
                return (Err(Error::CodeHashMismatch), spent);
            }
            BytecodeSource::Source(code)
        }
    };
    let mut inst = match spent {
        Some(Spent(mut inst)) => {
            if let Err(e) = inst.arm(limits, deadline, true) {
                inst.failed = true;
                return (Err(e), Some(Spent(inst)));
            }
            inst
        }
        None => {
            let st = Rc::new(CallState::new(limits, deadline, abandon));
            let mut inst = match Instance::prepare(st) {
                Ok(i) => i,
                Err(e) => return (Err(e), None),
            };
            if let Err(e) = inst.arm(limits, deadline, false) {
                inst.failed = true;
                return (Err(e), Some(Spent(inst)));
            }
            inst
        }
    };
    let result = inst
        .load_user(source)
        .and_then(|compiled| {
            if let Some(b) = compiled {
                cache.insert_compiled(code_hash, Arc::from(b));
            }
            inst.check_handler()
        })
        .and_then(|()| inst.call(request, limits))
        .map_err(|e| inst.reclassify(e));
    if result.is_err() {
        inst.failed = true;
    }
    let st = inst.st.clone();
    let result = result.map(|response| Outcome {
        response,
        console: std::mem::take(&mut *st.console.borrow_mut()),
        console_truncated: st.console_truncated.get(),
    });
    (result, Some(Spent(inst)))
}

/// Deploy-time check on the current thread.
pub(crate) fn check_module(code: &str, limits: &Limits) -> Result<(), Error> {
    let st = Rc::new(CallState::new(
        limits,
        Instant::now() + limits.timeout(),
        Arc::new(AtomicBool::new(false)),
    ));
    let (mut inst, _) = Instance::new(limits, st, BytecodeSource::Source(code))?;
    let r = inst.check_handler();
    if r.is_err() {
        inst.failed = true;
    }
    r
}

/// QuickJS heap bytes of an idle instance (prelude + module loaded).
pub(crate) fn idle_heap_bytes(code: &str) -> Result<usize, Error> {
    let limits = Limits::default();
    let st = Rc::new(CallState::new(
        &limits,
        Instant::now() + limits.timeout(),
        Arc::new(AtomicBool::new(false)),
    ));
    let (inst, _) = Instance::new(&limits, st, BytecodeSource::Source(code))?;
    inst.rt.run_gc();
    let usage = inst.rt.memory_usage();
    Ok(usage.malloc_size.max(0) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    fn global_names(ctx: &Ctx<'_>) -> Vec<String> {
        let f: Function<'_> = ctx
            .eval("() => Object.getOwnPropertyNames(globalThis)")
            .expect("names function");
        f.call(()).expect("names")
    }

    /// Every name in prelude.js's `INTRINSIC_GLOBALS` is a global of a fresh execution context
    /// (the prelude captures them before any program code runs).
    #[test]
    fn intrinsic_globals_exist_in_a_fresh_context() {
        let start = PRELUDE_SRC
            .find("const INTRINSIC_GLOBALS = [")
            .expect("INTRINSIC_GLOBALS in prelude.js");
        let list = &PRELUDE_SRC[start + "const INTRINSIC_GLOBALS = ".len()..];
        let list = &list[..list.find("];").expect("end of list") + 1];
        let list: Vec<Vec<String>> =
            serde_json::from_str(&list.replace('\'', "\"").replace(",\n]", "\n]"))
                .expect("list parses as JSON");
        let rt = Runtime::new().expect("runtime");
        let ctx = Context::custom::<(RunIntrinsics, intrinsic::Eval)>(&rt).expect("context");
        ctx.with(|ctx| {
            let names = global_names(&ctx);
            for name in list.into_iter().flatten() {
                assert!(names.contains(&name), "{name} is not a global");
            }
        });
    }
}
