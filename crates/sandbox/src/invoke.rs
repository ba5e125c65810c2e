//! Sandbox slots and one invocation: a runtime + context living in an arena, the base and function
//! snapshot images, restoring a function's image, `fetch`, our own job loop (deadline checked
//! between jobs, outside `Context::with`) and response extraction.

use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rquickjs::context::intrinsic;
use rquickjs::promise::PromiseState;
use rquickjs::{
    Array, Context, Ctx, Function, Object, Persistent, Promise, Runtime, TypedArray, Value,
};
use sha2::Digest as _;

use crate::arena::Arena;
use crate::bytes::{load_module, with_u8};
use crate::host::{self, CallState};
use crate::link::{BundleLoader, LinkState, Linking, compile, unframe_modules};
use crate::{BytecodeCache, CallReport, Error, HttpRequest, HttpResponse, Limits};

/// Module name of a function that is one module.
pub(crate) const MODULE_NAME: &str = "worker.js";

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

pub(crate) fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// Bytecode of the core prelude and of its lazily loaded chunks (in
/// [`crate::prelude_compile::CHUNKS`] order), compiled by the build script.
pub(crate) struct PreludeCode {
    core: &'static [u8],
    pub(crate) chunks: [&'static [u8]; crate::prelude_compile::CHUNKS.len()],
}

include!(concat!(env!("OUT_DIR"), "/prelude_code.rs"));

/// The prelude bytecode, embedded in the binary by the build script (see build.rs).
pub(crate) fn prelude() -> &'static PreludeCode {
    &PRELUDE
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

pub(crate) fn compile_error<'js>(ctx: &Ctx<'js>, e: rquickjs::Error) -> Error {
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

/// First cycle-collection threshold of a runtime. QuickJS starts at 256 KiB, which an idle
/// instance almost fills, so nearly every call paid for a full GC pass that found nothing (reference
/// counting frees acyclic garbage at once). The threshold grows with the heap limit (1/8 of it,
/// between 256 KiB and 2 MiB); after each pass QuickJS sets it to 1.5 × the live heap.
pub(crate) fn gc_threshold(heap_bytes: usize) -> usize {
    (heap_bytes / 8).clamp(256 << 10, 2 << 20)
}

/// An image of a slot's arena and the heap bytes in use when it was taken.
struct Image {
    bytes: crate::arena::Image,
    heap_used: usize,
}

/// A function's image: the base image plus the function's module evaluated (sharing the pages it
/// did not change with the base image). `ns` is the module namespace; its reference is part of the
/// image (it exists only while the image is restored), so the handle is never dropped.
struct FnImage {
    image: Image,
    /// Bytes of pages not shared with the base image: what the function costs in memory.
    unique: usize,
    ns: ManuallyDrop<Persistent<Object<'static>>>,
    tick: u64,
}

/// Function images of one slot, least recently used dropped first beyond `max` bytes.
struct Images {
    map: HashMap<[u8; 32], FnImage>,
    bytes: usize,
    max: usize,
    tick: u64,
}

impl Images {
    fn insert(&mut self, hash: [u8; 32], mut img: FnImage) {
        let size = img.unique;
        if size > self.max {
            return;
        }
        while self.bytes + size > self.max {
            let Some(oldest) = self.map.iter().min_by_key(|(_, v)| v.tick).map(|(k, _)| *k) else {
                break;
            };
            if let Some(old) = self.map.remove(&oldest) {
                self.bytes -= old.unique;
            }
        }
        self.tick += 1;
        img.tick = self.tick;
        self.bytes += size;
        if let Some(old) = self.map.insert(hash, img) {
            self.bytes -= old.unique;
        }
    }

    fn get(&mut self, hash: &[u8; 32]) -> Option<&FnImage> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(hash).map(|img| {
            img.tick = tick;
            &*img
        })
    }
}

/// The prelude's entry points, saved in the base image (so valid in every image of the slot).
struct Entry {
    dispatch: Persistent<Function<'static>>,
    finish: Persistent<Function<'static>>,
    run_timers: Persistent<Function<'static>>,
    check_handler: Persistent<Function<'static>>,
    begin: Persistent<Function<'static>>,
}

/// What a slot's arena holds right now.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Holds {
    /// Exactly the function's image (nothing ran since it was restored or taken).
    Function([u8; 32]),
    /// Anything else: a call ran, or a build failed part way.
    Dirty,
}

/// A sandbox slot: one QuickJS runtime + context living entirely in one [`Arena`], the base image
/// (runtime, context, intrinsics, host functions, prelude) and the images of the functions this
/// slot ran (base + module evaluated). Every call starts from an image restored into the arena, so
/// nothing a call does — globals, prototypes, module state, timers, pending jobs, the allocator's
/// state — is visible to the next one. A slot belongs to one thread.
///
/// Everything outside the arena that the runtime refers to is made while the base image is built
/// and never changes afterwards: the rquickjs runtime's Rust-side data (class ids, the prototype of
/// Rust functions, the interrupt handler, the loader), the Rust closures of the host functions
/// (all made up front, none per call), and `st`, whose per-call fields are reset by
/// [`CallState::arm`]. Handles to values inside the arena (`entry`, the images' namespaces) stay
/// valid across restores because the arena never moves.
pub(crate) struct Slot {
    st: Rc<CallState>,
    entry: Option<Entry>,
    /// Every host function, held so that none can be finalized (its Rust closure freed) while
    /// images refer to it.
    pins: Vec<Persistent<Value<'static>>>,
    pending: Option<Persistent<Promise<'static>>>,
    /// Dropped after `entry` and `pending`, before `rt` (field order).
    ctx: Context,
    rt: Runtime,
    base: Option<Image>,
    images: Images,
    holds: Holds,
    /// The largest heap limit a call may have (the arena is reserved for it).
    max_heap: usize,
    /// What the loader links from while a function is compiled or its image built.
    linking: LinkState,
    /// Last: the runtime lives in it.
    arena: Arena,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Back to the base image (a consistent state that holds every reference the Rust side
        // holds), then an ordinary teardown, which also frees the host functions' closures.
        self.st.heap.set_limit(usize::MAX);
        std::mem::forget(self.pending.take());
        self.restore_base();
        self.entry = None;
        self.pins.clear();
        // The fields drop next, in order: the context, the runtime, the images, the arena.
    }
}

/// How long building a slot's base image may take (only our prelude runs).
const PREPARE_DEADLINE: Duration = Duration::from_secs(10);

/// Default bytes of function images kept per slot.
pub(crate) const DEFAULT_IMAGE_BYTES: usize = 32 << 20;

/// Arena reservation (virtual, committed on use) for a heap limit: fragmentation headroom and the
/// allocator's own bookkeeping on top of the limit.
pub(crate) fn arena_bytes_for(heap_limit: usize) -> usize {
    heap_limit
        .saturating_add(heap_limit / 2)
        .saturating_add(16 << 20)
}

impl Slot {
    /// A new slot on the current thread: arena, runtime, context, host functions, prelude; takes
    /// the base image. `max_heap` is the largest heap limit a call may ask for.
    pub(crate) fn new(
        abandon: Arc<AtomicBool>,
        max_heap: usize,
        image_bytes: usize,
    ) -> Result<Slot, Error> {
        let prelude = prelude();
        let limits = Limits::default();
        let st = Rc::new(CallState::new(
            &limits,
            Instant::now() + PREPARE_DEADLINE,
            abandon,
        ));
        st.heap.set_limit(usize::MAX);
        let arena = Arena::new(arena_bytes_for(max_heap)).map_err(Error::Internal)?;
        let rt = Runtime::new_with_alloc(arena.allocator(st.heap.clone())).map_err(internal)?;
        let linking: LinkState = Rc::default();
        rt.set_loader(
            BundleLoader {
                linking: linking.clone(),
            },
            BundleLoader {
                linking: linking.clone(),
            },
        );
        let s = st.clone();
        rt.set_interrupt_handler(Some(Box::new(move || s.expired())));
        let ctx = Context::custom::<RunIntrinsics>(&rt).map_err(internal)?;
        let mut slot = Slot {
            st,
            entry: None,
            pins: Vec::new(),
            pending: None,
            ctx,
            rt,
            base: None,
            images: Images {
                map: HashMap::new(),
                bytes: 0,
                max: image_bytes,
                tick: 0,
            },
            holds: Holds::Dirty,
            max_heap,
            linking,
            arena,
        };
        let st = slot.st.clone();
        let (entry, pins) = slot.ctx.with(|ctx| -> Result<_, Error> {
            let pins =
                host::install(&ctx, &st, &prelude.chunks).map_err(|e| caught(&st, &ctx, e))?;
            let pm = load_module(ctx.clone(), prelude.core).map_err(|e| caught(&st, &ctx, e))?;
            let (pm, _p) = pm.eval().map_err(|e| caught(&st, &ctx, e))?;
            let get = |name: &str| -> Result<Persistent<Function<'static>>, Error> {
                let f: Function<'_> = pm.get(name).map_err(internal)?;
                Ok(Persistent::save(&ctx, f))
            };
            let entry = Entry {
                dispatch: get("dispatch")?,
                finish: get("finish")?,
                run_timers: get("runTimers")?,
                check_handler: get("checkHandler")?,
                begin: get("begin")?,
            };
            Ok((entry, pins))
        })?;
        slot.entry = Some(entry);
        slot.pins = pins;
        slot.rt.run_gc();
        slot.base = Some(Image {
            bytes: slot.arena.snapshot(None),
            heap_used: slot.st.heap.used(),
        });
        Ok(slot)
    }

    /// Puts the base image back (a no-op if the slot has none yet) and marks the arena dirty.
    fn restore_base(&mut self) {
        if let Some(base) = &self.base {
            self.arena.restore(&base.bytes);
            self.st.heap.set_used(base.heap_used);
        }
        self.holds = Holds::Dirty;
    }

    /// Applies the call's limits and deadline, and restarts the clock of `performance`.
    fn arm(&mut self, limits: &Limits, deadline: Instant) -> Result<(), Error> {
        self.st.arm(limits, deadline);
        update_stack_top(&self.ctx);
        self.rt.set_max_stack_size(limits.stack_bytes);
        self.rt.set_gc_threshold(gc_threshold(limits.heap_bytes));
        let begin = self.entry()?.begin.clone();
        let st = self.st.clone();
        self.ctx.with(|ctx| -> Result<(), Error> {
            let f = begin.restore(&ctx).map_err(internal)?;
            f.call::<_, ()>(()).map_err(|e| caught(&st, &ctx, e))
        })
    }

    fn entry(&self) -> Result<&Entry, Error> {
        self.entry
            .as_ref()
            .ok_or_else(|| internal("slot without entry points"))
    }

    /// Puts the arena back into the state of the function image `hash` now (off the critical
    /// path, after a reply was sent), so that the call's data does not linger and the next call
    /// of that function starts at once. Without such an image it restores the base image and
    /// returns false.
    pub(crate) fn scrub(&mut self, hash: &[u8; 32]) -> bool {
        if self.holds == Holds::Function(*hash) {
            return true;
        }
        std::mem::forget(self.pending.take());
        let Some(img) = self.images.map.get(hash) else {
            // No image to keep warm (too large for the budget, or a top level that drew
            // randomness): the base image still clears what the call left.
            self.restore_base();
            return false;
        };
        self.arena.restore(&img.image.bytes);
        self.st.heap.set_used(img.image.heap_used);
        self.holds = Holds::Function(*hash);
        true
    }

    /// One full call: restores the function's image (building it from the base image on a miss),
    /// runs `fetch`, and extracts the response.
    #[allow(clippy::too_many_arguments)] // the call's inputs, each used once
    pub(crate) fn call(
        &mut self,
        cache: &BytecodeCache,
        code_hash: [u8; 32],
        code: &str,
        request: HttpRequest,
        limits: &Limits,
        started: Instant,
        outbound: crate::outbound::CallOutbound,
    ) -> CallReport {
        if request.body.len() > limits.max_request_bytes {
            return CallReport::failed(Error::RequestTooLarge {
                size: request.body.len(),
                limit: limits.max_request_bytes,
            });
        }
        let limits = &Limits {
            heap_bytes: limits.heap_bytes.min(self.max_heap),
            ..*limits
        };
        let deadline = started + limits.timeout();
        if Instant::now() >= deadline || self.st.abandon.load(Ordering::Relaxed) {
            return CallReport::failed(Error::Timeout);
        }
        self.st.set_outbound(outbound);
        let result = self
            .enter(cache, code_hash, code, limits, deadline)
            .and_then(|ns| self.run_fetch(ns, request, limits))
            .map_err(|e| self.reclassify(e));
        self.st.set_outbound(None);
        // Whatever happened, the arena is restored before the next call (by the worker's scrub
        // after the reply, at the latest when the next call starts).
        self.st.heap.set_limit(usize::MAX);
        std::mem::forget(self.pending.take());
        self.holds = Holds::Dirty;
        let st = &self.st;
        let console = std::mem::take(&mut *st.console.borrow_mut());
        st.request_bytes.borrow_mut().clear();
        CallReport {
            result,
            console,
            console_truncated: st.console_truncated.get(),
        }
    }

    /// Makes the arena hold the function's image (restored, or built from the base image and
    /// taken now) with the call's limits armed; returns the module namespace.
    fn enter(
        &mut self,
        cache: &BytecodeCache,
        code_hash: [u8; 32],
        code: &str,
        limits: &Limits,
        deadline: Instant,
    ) -> Result<Persistent<Object<'static>>, Error> {
        if self.images.map.contains_key(&code_hash) {
            if self.holds != Holds::Function(code_hash)
                && let Some(img) = self.images.map.get(&code_hash)
            {
                self.arena.restore(&img.image.bytes);
                self.st.heap.set_used(img.image.heap_used);
            }
            self.holds = Holds::Dirty;
            // Cloned after the restore: the clone's references belong to this call's state.
            let ns = self
                .images
                .get(&code_hash)
                .map(|img| Persistent::clone(&img.ns))
                .ok_or_else(|| internal("image vanished"))?;
            self.arm(limits, deadline)?;
            return Ok(ns);
        }
        // Miss: the bytecode (compiled once per process, after checking the hash), then the base
        // image, the module evaluated with the call's limits, and a new image.
        let cached = cache.get(&code_hash);
        let compiled;
        let bytecode: &[u8] = match &cached {
            Some(b) => b,
            None => {
                let actual: [u8; 32] = sha2::Sha256::digest(code.as_bytes()).into();
                if actual != code_hash {
                    return Err(Error::CodeHashMismatch);
                }
                compiled = self.compile_in_base(code, limits, deadline)?;
                cache.insert_compiled(code_hash, Arc::from(compiled.as_slice()));
                &compiled
            }
        };
        if self.base.is_none() {
            return Err(internal("slot without base"));
        }
        self.restore_base();
        self.arm(limits, deadline)?;
        self.st.evaluating_module.set(true);
        let loaded = self.load_user(bytecode);
        self.st.evaluating_module.set(false);
        let ns = loaded?;
        self.check_handler(&ns)?;
        let base_len = self.base.as_ref().map_or(0, |b| b.bytes.len());
        if self.st.top_level_random.get()
            || self.arena.top().saturating_sub(base_len) > self.images.max
        {
            // Keys, nonces or ids drawn at top level must be fresh in every call (so this module
            // is evaluated for every call), and an image over the budget would not be kept.
            return Ok(ns);
        }
        self.rt.run_gc();
        // The image holds `ns`'s references; the call gets its own clone, made afterwards.
        let bytes = self.arena.snapshot(self.base.as_ref().map(|b| &b.bytes));
        let unique = self
            .base
            .as_ref()
            .map_or(bytes.len(), |b| bytes.unique_bytes(&b.bytes));
        let image = Image {
            bytes,
            heap_used: self.st.heap.used(),
        };
        let call_ns = ns.clone();
        self.images.insert(
            code_hash,
            FnImage {
                image,
                unique,
                ns: ManuallyDrop::new(ns),
                tick: 0,
            },
        );
        Ok(call_ns)
    }

    /// Compiles source (whose hash was checked) in a throwaway context of this runtime, from the
    /// base image and with the call's limits; the arena is dirty afterwards.
    fn compile_in_base(
        &mut self,
        code: &str,
        limits: &Limits,
        deadline: Instant,
    ) -> Result<Vec<u8>, Error> {
        if self.base.is_none() {
            return Err(internal("slot without base"));
        }
        self.restore_base();
        self.st.arm(limits, deadline);
        update_stack_top(&self.ctx);
        self.rt.set_max_stack_size(limits.stack_bytes);
        compile(&self.rt, &self.linking, code).map_err(|e| self.reclassify(e))
    }

    /// Loads the function's modules (framed bytecode, entry first), links and evaluates them, and
    /// drives top-level await to completion.
    fn load_user(&mut self, framed: &[u8]) -> Result<Persistent<Object<'static>>, Error> {
        let modules = unframe_modules(framed)?;
        let entry = modules[0].1;
        *self.linking.borrow_mut() = Linking::Link(
            modules
                .iter()
                .map(|(name, bc)| (name.clone(), bc.to_vec()))
                .collect(),
        );
        let r = self.load_entry(entry);
        *self.linking.borrow_mut() = Linking::Idle;
        r
    }

    /// [`Slot::load_user`] with the loader armed.
    fn load_entry(&mut self, code: &[u8]) -> Result<Persistent<Object<'static>>, Error> {
        let st = self.st.clone();
        let (ns, p) = self
            .ctx
            .with(|ctx| -> Result<_, Error> {
                let um = load_module(ctx.clone(), code).map_err(|e| compile_error(&ctx, e))?;
                let (um, p) = um.eval().map_err(|e| match caught(&st, &ctx, e) {
                    Error::ScriptError { message, .. } => Error::InvalidModule { message },
                    other => other,
                })?;
                let ns = um.namespace().map_err(|e| caught(&st, &ctx, e))?;
                Ok((Persistent::save(&ctx, ns), Persistent::save(&ctx, p)))
            })
            .map_err(|e| self.reclassify(e))?;
        self.pending = Some(p);
        // Top-level await: drive module evaluation to completion; a throw at top level rejects.
        let settled = self.drive().and_then(|()| {
            let pending = self.pending.take();
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
            let e = self.reclassify(e);
            return Err(match e {
                Error::ScriptError { message, .. } => Error::InvalidModule { message },
                other => other,
            });
        }
        Ok(ns)
    }

    /// Runs jobs and timers until `pending` settles; checks the deadline between jobs.
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
            let pending = self.pending.clone();
            let state = self.ctx.with(|ctx| {
                pending
                    .map(|p| p.restore(&ctx).map(|p| p.state()))
                    .transpose()
                    .map_err(internal)
            })?;
            if state != Some(PromiseState::Pending) {
                return Ok(());
            }
            let timers = self.entry()?.run_timers.clone();
            let wait = self.ctx.with(|ctx| -> Result<f64, Error> {
                let f = timers.restore(&ctx).map_err(internal)?;
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

    fn check_handler(&mut self, ns: &Persistent<Object<'static>>) -> Result<(), Error> {
        let st = self.st.clone();
        let c = self.entry()?.check_handler.clone();
        let ns = ns.clone();
        let r = self.ctx.with(|ctx| {
            let c = c.restore(&ctx).map_err(internal)?;
            let ns = ns.restore(&ctx).map_err(internal)?;
            let r: Option<String> = c.call((ns,)).map_err(|e| caught(&st, &ctx, e))?;
            match r {
                None => Ok(()),
                Some(message) => Err(Error::NoDefaultExport { message }),
            }
        });
        r.map_err(|e| self.reclassify(e))
    }

    fn run_fetch(
        &mut self,
        ns: Persistent<Object<'static>>,
        mut request: HttpRequest,
        limits: &Limits,
    ) -> Result<HttpResponse, Error> {
        let st = self.st.clone();
        let d = self.entry()?.dispatch.clone();
        let p = self.ctx.with(|ctx| -> Result<_, Error> {
            let d = d.restore(&ctx).map_err(internal)?;
            let ns = ns.restore(&ctx).map_err(internal)?;
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
            let env = Object::new(ctx.clone()).map_err(|e| caught(&st, &ctx, e))?;
            for (k, v) in request.env.iter() {
                env.set(k.as_str(), v.as_str())
                    .map_err(|e| caught(&st, &ctx, e))?;
            }
            let p: Promise<'_> = d
                .call((
                    ns,
                    request.method.as_str(),
                    request.url.as_str(),
                    headers,
                    body,
                    env,
                ))
                .map_err(|e| caught(&st, &ctx, e))?;
            Ok(Persistent::save(&ctx, p))
        })?;
        self.pending = Some(p);
        self.drive()?;
        let pending = self.pending.take();
        let max = limits.max_response_bytes;
        let finish = self.entry()?.finish.clone();
        self.ctx.with(|ctx| {
            let p = pending
                .ok_or_else(|| internal("no promise"))?
                .restore(&ctx)
                .map_err(internal)?;
            let returned: Value<'_> = match p.result::<Value<'_>>() {
                Some(Ok(v)) => v,
                Some(Err(e)) => return Err(caught(&st, &ctx, e)),
                None => return Err(Error::NeverSettled),
            };
            let finish = finish.restore(&ctx).map_err(internal)?;
            let v: Value<'_> = finish.call((returned,)).map_err(|e| caught(&st, &ctx, e))?;
            if let Some(s) = v.as_string() {
                return Err(Error::BadResponse {
                    returned: s.to_string().unwrap_or_default(),
                });
            }
            let arr = v
                .into_array()
                .ok_or_else(|| internal("finish returned no array"))?;
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

/// Points the runtime's stack check at the current thread's stack (a slot's calls all run on its
/// thread, but not always at the same depth).
fn update_stack_top(ctx: &Context) {
    ctx.with(|ctx| crate::bytes::update_stack_top(&ctx));
}

/// A throwaway slot (heap limits up to `limits.heap_bytes`, unbounded images) in which `code` was
/// evaluated with `limits` and its default export checked; the hash of `code`.
fn evaluated(code: &str, limits: &Limits) -> (Result<(), Error>, Option<Slot>, [u8; 32]) {
    let hash: [u8; 32] = sha2::Sha256::digest(code.as_bytes()).into();
    let mut slot = match Slot::new(
        Arc::new(AtomicBool::new(false)),
        limits.heap_bytes,
        usize::MAX,
    ) {
        Ok(slot) => slot,
        Err(e) => return (Err(e), None, hash),
    };
    let cache = BytecodeCache::new(0);
    let deadline = Instant::now() + limits.timeout();
    let r = slot.enter(&cache, hash, code, limits, deadline).map(drop);
    slot.st.heap.set_limit(usize::MAX);
    slot.holds = Holds::Dirty;
    (r, Some(slot), hash)
}

/// Deploy-time check on the current thread: a throwaway slot (base image, the module evaluated
/// with `limits`, its default export checked).
pub(crate) fn check_module(code: &str, limits: &Limits) -> Result<(), Error> {
    evaluated(code, limits).0
}

/// QuickJS heap bytes of an idle instance (prelude + module loaded), the size of its image, and the
/// bytes of that image not shared with the base image.
pub(crate) fn idle_heap_bytes(code: &str) -> Result<(usize, usize, usize), Error> {
    let (r, slot, hash) = evaluated(code, &Limits::default());
    r?;
    let slot = slot.ok_or_else(|| internal("no slot"))?;
    let usage = slot.rt.memory_usage();
    let (image, unique) = slot
        .images
        .map
        .get(&hash)
        .map_or((0, 0), |i| (i.image.bytes.len(), i.unique));
    Ok((usage.malloc_size.max(0) as usize, image, unique))
}

std::thread_local! {
    static THREAD_SLOT: std::cell::RefCell<Option<Slot>> = const { std::cell::RefCell::new(None) };
}

/// Builds `slot` unless it exists and takes heap limits up to `max_heap` (an old one is dropped
/// first: two arenas never coexist); whether it built one.
fn ensure_slot(
    slot: &mut Option<Slot>,
    max_heap: usize,
    image_bytes: usize,
) -> Result<bool, Error> {
    if slot.as_ref().is_some_and(|s| s.max_heap >= max_heap) {
        return Ok(false);
    }
    *slot = None;
    *slot = Some(Slot::new(
        Arc::new(AtomicBool::new(false)),
        max_heap,
        image_bytes,
    )?);
    Ok(true)
}

/// Builds the current thread's slot (as the first call on it would, for heap limits up to
/// `max_heap`) unless it has one; whether it built one.
pub(crate) fn prepare_thread_slot(max_heap: usize, image_bytes: usize) -> Result<bool, Error> {
    THREAD_SLOT.with(|cell| match cell.try_borrow_mut() {
        Ok(mut guard) => ensure_slot(&mut guard, max_heap, image_bytes),
        Err(_) => Ok(false),
    })
}

/// One call on a slot kept by the current thread (made on first use, for heap limits up to
/// `max_heap`, keeping up to `image_bytes` of function images). A panic drops the thread's slot
/// (the next call builds a new one) and answers an internal error.
pub(crate) fn run_on_thread_slot(
    cache: &BytecodeCache,
    code_hash: [u8; 32],
    code: &str,
    request: HttpRequest,
    limits: &Limits,
    max_heap: usize,
    image_bytes: usize,
) -> CallReport {
    THREAD_SLOT.with(|cell| {
        let Ok(mut guard) = cell.try_borrow_mut() else {
            return CallReport::failed(internal(
                "the thread's sandbox slot is in use (re-entrant call)",
            ));
        };
        let max_heap = max_heap.max(limits.heap_bytes);
        if let Err(e) = ensure_slot(&mut guard, max_heap, image_bytes) {
            return CallReport::failed(e);
        }
        let Some(slot) = guard.as_mut() else {
            return CallReport::failed(internal("no slot"));
        };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let r = slot.call(
                cache,
                code_hash,
                code,
                request,
                limits,
                Instant::now(),
                None,
            );
            slot.scrub(&code_hash);
            r
        }));
        match r {
            Ok(r) => r,
            Err(_) => {
                let broken = guard.take();
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(broken)));
                CallReport::failed(internal("sandbox call panicked"))
            }
        }
    })
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

    /// The bytecode the build script embedded is exactly what the sandbox's QuickJS makes of the
    /// sources now (a stale or foreign build output would be read without validation).
    #[test]
    fn the_embedded_prelude_is_a_fresh_compile_of_the_sources() {
        use crate::prelude_compile::{CHUNKS, compile_sources};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let fresh = compile_sources(&dir).expect("the prelude compiles");
        let embedded = prelude();
        assert_eq!(fresh.len(), 1 + embedded.chunks.len());
        assert!(fresh[0] == embedded.core, "core prelude differs");
        for (i, chunk) in embedded.chunks.iter().enumerate() {
            assert!(fresh[i + 1] == *chunk, "chunk {} differs", CHUNKS[i].0);
        }
        // And it is real bytecode: a slot reads and evaluates the core.
        drop(Slot::new(Arc::new(AtomicBool::new(false)), 16 << 20, 1 << 20).expect("a slot"));
    }

    /// Every name in prelude.js's `INTRINSIC_GLOBALS` is a global of a fresh execution context
    /// (the prelude captures them before any program code runs).
    #[test]
    fn intrinsic_globals_exist_in_a_fresh_context() {
        const PRELUDE_SRC: &str = include_str!("prelude.js");
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
