//! The only module with `unsafe`: borrowing typed-array bytes and loading our own bytecode.
#![allow(unsafe_code)]

use rquickjs::{Ctx, Module, TypedArray};

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
    // SAFETY: the bytes come only from `Module::write` in this crate (the prelude, compiled at
    // start-up, or a module compiled from source whose SHA-256 was checked and kept in the
    // `BytecodeCache`, which has no other way in). QuickJS does not validate bytecode, so
    // bytecode from anywhere else must never reach this function.
    unsafe { Module::load(ctx, bytecode) }
}
