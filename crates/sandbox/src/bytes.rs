//! The only module with `unsafe`: borrowing typed-array bytes, loading our own bytecode, the
//! per-runtime allocator that enforces the heap limit and records exactly when it refused memory,
//! and two QuickJS calls rquickjs does not wrap: adding an intrinsic group to a live context, and
//! defining the native accessors of lazily loaded globals.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::rc::Rc;

use rquickjs::allocator::{Allocator, RustAllocator};
use rquickjs::{Ctx, Module, Runtime, TypedArray};

/// Runs `f` on the bytes of a `Uint8Array` (its view, not the whole buffer). `None` if detached.
pub(crate) fn with_u8<R>(ta: &TypedArray<'_, u8>, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    // SAFETY: `as_bytes` borrows the array buffer's memory. `f` is Rust code that runs no
    // JavaScript and does not touch the runtime, so nothing can detach or resize the buffer (or
    // run the GC) while the slice is alive; the runtime is single-threaded and owned by this thread.
    let bytes = unsafe { ta.as_bytes() }?;
    Some(f(bytes))
}

/// Loads module bytecode.
pub(crate) fn load_module<'js>(ctx: Ctx<'js>, bytecode: &[u8]) -> rquickjs::Result<Module<'js>> {
    // SAFETY: the bytes come only from `Module::write` in this crate (the prelude and its chunks,
    // compiled at start-up, or a module compiled from source whose SHA-256 was checked and kept in
    // the `BytecodeCache`, which has no other way in). QuickJS does not validate bytecode, so
    // bytecode from anywhere else must never reach this function.
    unsafe { Module::load(ctx, bytecode) }
}

/// ECMAScript intrinsics that a context gets only when the program first reads one of their
/// globals (indices as `INTRINSIC_*` in prelude.js).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LazyIntrinsic {
    /// `Date`.
    Date = 0,
    /// `Map`, `Set`, `WeakMap`, `WeakSet`.
    MapSet = 1,
    /// `ArrayBuffer`, `SharedArrayBuffer`, the typed arrays, `DataView`, `Atomics`.
    TypedArrays = 2,
    /// `DOMException`.
    DomException = 3,
    /// `WeakRef`, `FinalizationRegistry`.
    WeakRef = 4,
}

impl LazyIntrinsic {
    pub(crate) const ALL: [LazyIntrinsic; 5] = [
        LazyIntrinsic::Date,
        LazyIntrinsic::MapSet,
        LazyIntrinsic::TypedArrays,
        LazyIntrinsic::DomException,
        LazyIntrinsic::WeakRef,
    ];

    pub(crate) fn from_index(i: f64) -> Option<LazyIntrinsic> {
        if i >= 0.0 && i.fract() == 0.0 {
            Self::ALL.get(i as usize).copied()
        } else {
            None
        }
    }
}

/// Adds an intrinsic group to the context of `ctx`; on failure, why (the message of the
/// `InternalError` to throw). The caller adds each group at most once per context.
pub(crate) fn add_intrinsic(ctx: &Ctx<'_>, which: LazyIntrinsic) -> Result<(), &'static str> {
    use rquickjs::qjs;
    let raw = ctx.as_raw().as_ptr();
    if which == LazyIntrinsic::TypedArrays && has_own_global(ctx, c"Atomics") {
        // QuickJS defines `Atomics` as an auto-initialised property and aborts the process if the
        // global already has one (the prelude deletes it first; a non-configurable one stays).
        return Err("the typed arrays cannot be added: the global `Atomics` is not configurable");
    }
    // SAFETY: `raw` is the live context behind `ctx` (a `Ctx` exists only while its runtime is
    // locked by this thread: inside `Context::with` or a host function called from it). These are
    // the functions `JS_NewContext` (and rquickjs's `Context::custom`) call on a fresh context;
    // each needs only the base objects, which every context has, and defines its constructors,
    // prototypes and globals in this context like it does at creation. Calling one while
    // JavaScript is on the stack is fine: it only allocates and defines properties. No Rust
    // references into the JS heap are alive across the call.
    let r = unsafe {
        match which {
            LazyIntrinsic::Date => qjs::JS_AddIntrinsicDate(raw),
            LazyIntrinsic::MapSet => qjs::JS_AddIntrinsicMapSet(raw),
            LazyIntrinsic::TypedArrays => qjs::JS_AddIntrinsicTypedArrays(raw),
            LazyIntrinsic::DomException => qjs::JS_AddIntrinsicDOMException(raw),
            LazyIntrinsic::WeakRef => qjs::JS_AddIntrinsicWeakRef(raw),
        }
    };
    if r == 0 { Ok(()) } else { Err("out of memory") }
}

/// The getter and setter of a lazy global (see [`define_lazy_globals`]): calls
/// `load(name, index)` as getter (no argument) or `load(name, index, value)` as setter.
unsafe extern "C" fn lazy_global_accessor(
    ctx: *mut rquickjs::qjs::JSContext,
    _this: rquickjs::qjs::JSValue,
    argc: std::ffi::c_int,
    argv: *mut rquickjs::qjs::JSValue,
    _magic: std::ffi::c_int,
    data: *mut rquickjs::qjs::JSValue,
) -> rquickjs::qjs::JSValue {
    use rquickjs::qjs;
    // SAFETY: QuickJS calls this with the live context, `argc` readable values in `argv` and the
    // three data values the function was created with (`define_lazy_globals`: load, name,
    // index), all kept alive by the function object during the call. `JS_Call` borrows its
    // arguments and returns a new reference (or the exception marker), which we hand back.
    unsafe {
        let mut args = [*data.add(1), *data.add(2), qjs::JS_UNDEFINED];
        let n = if argc > 0 {
            args[2] = *argv;
            3
        } else {
            2
        };
        qjs::JS_Call(ctx, *data, qjs::JS_UNDEFINED, n, args.as_mut_ptr())
    }
}

/// Defines, for every name `groups[i][k]`, a configurable, non-enumerable accessor on the global
/// object whose getter and setter are one native function calling `load(name, i)` (get) or
/// `load(name, i, value)` (set). A native accessor is about half the cost of a JavaScript closure
/// plus `Object.defineProperty`, and a fresh context defines a few dozen of them.
pub(crate) fn define_lazy_globals<'js>(
    ctx: &Ctx<'js>,
    groups: &rquickjs::Array<'js>,
    load: &rquickjs::Function<'js>,
) -> rquickjs::Result<()> {
    use rquickjs::qjs;
    let raw = ctx.as_raw().as_ptr();
    let global = ctx.globals();
    for (i, group) in groups.iter::<rquickjs::Array<'js>>().enumerate() {
        for name in group?.iter::<rquickjs::String<'js>>() {
            let name = name?;
            let index = rquickjs::Value::new_int(ctx.clone(), i as i32);
            let mut data = [load.as_raw(), name.as_raw(), index.as_raw()];
            // SAFETY: `raw` is the live context behind `ctx`, locked by this thread while a `Ctx`
            // exists. `JS_NewCFunctionData` duplicates the three data values (kept alive here by
            // `load`, `name`, `index`) and returns a new function reference; `JS_DefineProperty`
            // borrows the getter/setter, and we free our reference afterwards; the atom is freed
            // after use. `global` keeps the global object alive.
            let ok = unsafe {
                let f = qjs::JS_NewCFunctionData(
                    raw,
                    Some(lazy_global_accessor),
                    0,
                    0,
                    3,
                    data.as_mut_ptr(),
                );
                if qjs::JS_IsException(f) {
                    false
                } else {
                    let atom = qjs::JS_ValueToAtom(raw, name.as_raw());
                    let r = if atom == qjs::JS_ATOM_NULL as qjs::JSAtom {
                        -1
                    } else {
                        let flags = qjs::JS_PROP_HAS_GET
                            | qjs::JS_PROP_HAS_SET
                            | qjs::JS_PROP_HAS_CONFIGURABLE
                            | qjs::JS_PROP_CONFIGURABLE
                            | qjs::JS_PROP_HAS_ENUMERABLE;
                        let r = qjs::JS_DefineProperty(
                            raw,
                            global.as_raw(),
                            atom,
                            qjs::JS_UNDEFINED,
                            f,
                            f,
                            flags as std::ffi::c_int,
                        );
                        qjs::JS_FreeAtom(raw, atom);
                        r
                    };
                    qjs::JS_FreeValue(raw, f);
                    r >= 0
                }
            };
            if !ok {
                return Err(rquickjs::Error::Exception);
            }
        }
    }
    Ok(())
}

/// True if the global object has an own property `name` (or the lookup failed).
fn has_own_global(ctx: &Ctx<'_>, name: &std::ffi::CStr) -> bool {
    use rquickjs::qjs;
    let raw = ctx.as_raw().as_ptr();
    let global = ctx.globals();
    // SAFETY: `raw` is the live, locked context behind `ctx` (see `add_intrinsic`); `name` is a
    // NUL-terminated string; the atom is freed before returning; `global` keeps the global object
    // alive during the call; a null descriptor pointer asks only whether the property exists.
    unsafe {
        let atom = qjs::JS_NewAtom(raw, name.as_ptr());
        if atom == qjs::JS_ATOM_NULL as qjs::JSAtom {
            return true;
        }
        let r = qjs::JS_GetOwnProperty(raw, std::ptr::null_mut(), global.as_raw(), atom);
        qjs::JS_FreeAtom(raw, atom);
        r != 0
    }
}

/// Heap accounting of one runtime, shared by its allocator and the call state.
///
/// QuickJS's own memory limit cannot tell us that it refused an allocation (it throws an
/// `InternalError` when it can still allocate one, else a bare `null`, and inside promise jobs the
/// failure can be lost). The limit is therefore enforced here, in the runtime's allocator, which
/// sets `refused` whenever it turns a request down: out-of-memory is then reported exactly.
pub(crate) struct Heap {
    limit: Cell<usize>,
    used: Cell<usize>,
    refused: Cell<bool>,
}

impl Heap {
    pub(crate) fn new(limit: usize) -> Rc<Heap> {
        Rc::new(Heap {
            limit: Cell::new(limit),
            used: Cell::new(0),
            refused: Cell::new(false),
        })
    }

    /// Sets the limit in bytes (`usize::MAX`: none).
    pub(crate) fn set_limit(&self, limit: usize) {
        self.limit.set(limit);
    }

    /// True once an allocation was refused because of the limit.
    pub(crate) fn refused(&self) -> bool {
        self.refused.get()
    }

    /// Forgets earlier refusals (when a prepared instance starts its call).
    pub(crate) fn clear_refused(&self) {
        self.refused.set(false);
    }

    /// Bytes currently allocated (usable sizes).
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.get()
    }

    /// Reserves `grow` more bytes, or records a refusal.
    fn admit(&self, grow: usize) -> bool {
        let used = self.used.get();
        if used.saturating_add(grow) > self.limit.get() {
            self.refused.set(true);
            return false;
        }
        true
    }
}

/// Rounds like `RustAllocator` does (multiples of 8 bytes).
fn rounded(size: usize) -> usize {
    size.div_ceil(8).saturating_mul(8)
}

/// `RustAllocator` with the heap limit of [`Heap`].
struct LimitedAllocator(Rc<Heap>);

// SAFETY: every method delegates the actual memory management to `RustAllocator` (which upholds
// the `Allocator` contract) and only adds bookkeeping: a request is either refused before
// `RustAllocator` sees it (null is returned, which QuickJS handles as allocation failure, and a
// refused `realloc` leaves the old block untouched) or forwarded unchanged. `usable_size` is
// `RustAllocator`'s. The `Heap` is only touched from the runtime's thread (`Rc`, `Cell`).
unsafe impl Allocator for LimitedAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        if !self.0.admit(rounded(size)) {
            return std::ptr::null_mut();
        }
        let p = RustAllocator.alloc(size);
        if !p.is_null() {
            // SAFETY: `p` was just returned non-null by `RustAllocator`.
            let n = unsafe { RustAllocator::usable_size(p) };
            self.0.used.set(self.0.used.get() + n);
        }
        p
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        let Some(total) = count.checked_mul(size) else {
            return std::ptr::null_mut();
        };
        if count == 0 || size == 0 || !self.0.admit(rounded(total)) {
            return std::ptr::null_mut();
        }
        let p = RustAllocator.calloc(count, size);
        if !p.is_null() {
            // SAFETY: `p` was just returned non-null by `RustAllocator`.
            let n = unsafe { RustAllocator::usable_size(p) };
            self.0.used.set(self.0.used.get() + n);
        }
        p
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        if ptr.is_null() {
            return;
        }
        // SAFETY: the caller guarantees `ptr` came from this allocator, i.e. from
        // `RustAllocator` through `alloc`, `calloc` or `realloc` above.
        unsafe {
            let n = RustAllocator::usable_size(ptr);
            self.0.used.set(self.0.used.get().saturating_sub(n));
            RustAllocator.dealloc(ptr);
        }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        if new_size == 0 {
            // SAFETY: as in `dealloc`.
            unsafe { self.dealloc(ptr) };
            return std::ptr::null_mut();
        }
        // SAFETY: the caller guarantees `ptr` came from this allocator (so from `RustAllocator`).
        let old = unsafe { RustAllocator::usable_size(ptr) };
        let new = rounded(new_size);
        if new > old && !self.0.admit(new - old) {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` came from `RustAllocator` (see above); on failure it stays valid.
        let p = unsafe { RustAllocator.realloc(ptr, new_size) };
        if !p.is_null() {
            // SAFETY: `p` was just returned non-null by `RustAllocator`.
            let n = unsafe { RustAllocator::usable_size(p) };
            self.0.used.set(self.0.used.get().saturating_sub(old) + n);
        }
        p
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        // SAFETY: the caller guarantees `ptr` came from this allocator (so from `RustAllocator`).
        unsafe { RustAllocator::usable_size(ptr) }
    }
}

/// A runtime whose every allocation is accounted in `heap` and refused beyond its limit.
pub(crate) fn limited_runtime(heap: Rc<Heap>) -> rquickjs::Result<Runtime> {
    Runtime::new_with_alloc(LimitedAllocator(heap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_beyond_the_limit_and_records_it() {
        let heap = Heap::new(usize::MAX);
        let rt = limited_runtime(heap.clone()).expect("runtime");
        let ctx = rquickjs::Context::full(&rt).expect("context");
        assert!(heap.used() > 0);
        heap.set_limit(heap.used() + (1 << 20));
        ctx.with(|ctx| {
            let r: rquickjs::Result<()> =
                ctx.eval("const a = []; for (;;) a.push(new Array(1000).fill(1));");
            assert!(r.is_err());
        });
        assert!(heap.refused());
        heap.set_limit(usize::MAX);
        drop(ctx);
        drop(rt);
        assert_eq!(heap.used(), 0);
    }
}
