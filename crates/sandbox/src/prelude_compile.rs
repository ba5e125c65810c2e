//! Compiles the JavaScript prelude to QuickJS bytecode.
//!
//! Shared, by `#[path]`, between the build script (which compiles the prelude once and embeds the
//! bytecode in the binary, so that no process start parses it: ~15 M instructions) and the crate's
//! tests (which check that the embedded bytecode is exactly a fresh compile of the sources with
//! the QuickJS the sandbox runs). It depends on nothing but `rquickjs` and `std`.

use std::path::Path;

use rquickjs::context::intrinsic;
use rquickjs::{Context, Module, Runtime, WriteOptions};

/// Intrinsics of a short-lived compile context (parsing needs the eval machinery and the regexp
/// compiler for literals): the prelude's here, user modules' in `link.rs`.
pub(crate) type CompileIntrinsics = (intrinsic::Eval, intrinsic::RegExpCompiler);

/// The core prelude: module name and file in `src/`.
pub const CORE: (&str, &str) = ("clave:prelude", "prelude.js");

/// The lazily loaded prelude chunks, in the order of the `CHUNK_*` indices in prelude.js: module
/// name and file in `src/`.
pub const CHUNKS: [(&str, &str); 8] = [
    ("clave:text", "prelude_text.js"),
    ("clave:url", "prelude_url.js"),
    ("clave:crypto", "prelude_crypto.js"),
    ("clave:clone", "prelude_clone.js"),
    ("clave:console", "prelude_console.js"),
    ("clave:timers", "prelude_timers.js"),
    ("clave:extra", "prelude_extra.js"),
    ("clave:fetch", "prelude_fetch.js"),
];

/// The core prelude, then the chunks in `CHUNKS` order: module name and file in `src/`.
pub fn files() -> impl Iterator<Item = (&'static str, &'static str)> {
    std::iter::once(CORE).chain(CHUNKS)
}

/// Reads [`files`] from `src` and compiles them, in that order.
///
/// # Errors
/// A file that cannot be read, or as [`compile_all`].
pub fn compile_sources(src: &Path) -> Result<Vec<Vec<u8>>, String> {
    let sources = files()
        .map(|(name, file)| {
            let path = src.join(file);
            std::fs::read_to_string(&path)
                .map(|text| (name, text))
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let modules: Vec<(&str, &str)> = sources.iter().map(|(n, s)| (*n, s.as_str())).collect();
    compile_all(&modules)
}

/// Compiles each `(module name, source)` in one fresh runtime whose context has only
/// [`CompileIntrinsics`], without source or debug information (line tables): the bytecode is
/// read into every context, and our own frames need no line numbers.
///
/// # Errors
/// The module name and QuickJS's message for a source that does not compile.
pub fn compile_all(modules: &[(&str, &str)]) -> Result<Vec<Vec<u8>>, String> {
    let rt = Runtime::new().map_err(|e| e.to_string())?;
    let ctx = Context::custom::<CompileIntrinsics>(&rt).map_err(|e| e.to_string())?;
    ctx.with(|ctx| {
        modules
            .iter()
            .map(|(name, src)| {
                let m = Module::declare(ctx.clone(), *name, *src).map_err(|e| {
                    let thrown = ctx.catch();
                    let detail = thrown
                        .as_exception()
                        .map(|x| {
                            format!(
                                "{} {}",
                                x.message().unwrap_or_default(),
                                x.stack().unwrap_or_default()
                            )
                        })
                        .unwrap_or_else(|| format!("{thrown:?}"));
                    format!("{name}: {e}: {detail}")
                })?;
                m.write(WriteOptions {
                    strip_source: true,
                    strip_debug: true,
                    ..Default::default()
                })
                .map_err(|e| format!("{name}: {e}"))
            })
            .collect()
    })
}
