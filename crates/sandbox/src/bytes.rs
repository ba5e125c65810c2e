//! The only module with `unsafe`: borrowing typed-array bytes, loading our own bytecode, and the
//! per-runtime allocator that enforces the heap limit and records exactly when it refused memory.
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
