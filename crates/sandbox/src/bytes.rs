//! `unsafe` besides the arena (`arena.rs`): borrowing typed-array bytes, loading our own bytecode,
//! the heap accounting the arena allocator enforces the limit with (recording exactly when it
//! refused memory), and QuickJS calls rquickjs does not wrap: adding an intrinsic group to a live context,
//! defining the native accessors of lazily loaded globals, and the native JSON paths (parsing
//! JSON text into JS values, serializing plain data) of `body.json()` and `Response.json()`.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::rc::Rc;

use rquickjs::{Ctx, Module, TypedArray};

mod json;

pub(crate) use json::{json_fast, json_parse_fast};

/// Runs `f` on the bytes of a `Uint8Array` (its view, not the whole buffer). `None` if detached.
pub(crate) fn with_u8<R>(ta: &TypedArray<'_, u8>, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    // SAFETY: `as_bytes` borrows the array buffer's memory. `f` is Rust code that runs no
    // JavaScript and does not touch the runtime, so nothing can detach or resize the buffer (or
    // run the GC) while the slice is alive; the runtime is single-threaded and owned by this thread.
    let bytes = unsafe { ta.as_bytes() }?;
    Some(f(bytes))
}

/// Points the runtime's stack overflow check at the current stack position (`JS_UpdateStackTop`).
pub(crate) fn update_stack_top(ctx: &Ctx<'_>) {
    // SAFETY: `ctx` is a live context locked by this thread; the runtime it belongs to is used
    // only from this thread, and `JS_UpdateStackTop` only records the current stack pointer.
    unsafe {
        let rt = rquickjs::qjs::JS_GetRuntime(ctx.as_raw().as_ptr());
        rquickjs::qjs::JS_UpdateStackTop(rt);
    }
}

/// Loads module bytecode.
pub(crate) fn load_module<'js>(ctx: Ctx<'js>, bytecode: &[u8]) -> rquickjs::Result<Module<'js>> {
    // SAFETY: the bytes come only from `Module::write` in this crate: the prelude and its chunks
    // (compiled from this crate's sources by its build script and embedded in the binary), or a
    // module compiled from source whose SHA-256 was checked and kept in the `BytecodeCache`, which
    // has no other way in. QuickJS does not validate bytecode, so bytecode from anywhere else
    // must never reach this function.
    unsafe { Module::load(ctx, bytecode) }
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

    /// Forgets earlier refusals (when a call starts).
    pub(crate) fn clear_refused(&self) {
        self.refused.set(false);
    }

    /// Bytes currently allocated (usable sizes).
    pub(crate) fn used(&self) -> usize {
        self.used.get()
    }

    /// Sets the bytes in use (after an arena was restored to an image that held `used`).
    pub(crate) fn set_used(&self, used: usize) {
        self.used.set(used);
    }

    pub(crate) fn add_used(&self, n: usize) {
        self.used.set(self.used.get().saturating_add(n));
    }

    pub(crate) fn sub_used(&self, n: usize) {
        self.used.set(self.used.get().saturating_sub(n));
    }

    /// Records that the allocator could not satisfy a request (the arena is full).
    pub(crate) fn record_refusal(&self) {
        self.refused.set(true);
    }

    /// Reserves `grow` more bytes, or records a refusal.
    pub(crate) fn admit(&self, grow: usize) -> bool {
        let used = self.used.get();
        if used.saturating_add(grow) > self.limit.get() {
            self.refused.set(true);
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests;
