//! Linking a function's modules: the loader that resolves and loads imports from the function's
//! bundle only, compiling one module or a bundle to bytecode, and the framing that keeps a
//! bundle's compiled modules together in the [`crate::BytecodeCache`].

use std::collections::HashMap;
use std::rc::Rc;

use rquickjs::{Context, Ctx, Module, Runtime, WriteOptions};

use crate::Error;
use crate::bundle;
use crate::bytes::load_module;
use crate::invoke::{MODULE_NAME, compile_error, internal};
use crate::prelude_compile::CompileIntrinsics;

/// What the module loader links from (state outside the arena, consulted only while a function's
/// modules are compiled or its image is built).
#[derive(Default)]
pub(crate) enum Linking {
    /// No function is being compiled or loaded: `import()` during a call reaches only modules
    /// already linked into the image.
    #[default]
    Idle,
    /// Compiling: the bundle's sources, and each module's bytecode once it is compiled (QuickJS
    /// resolves a module's imports when it compiles it).
    Compile {
        sources: HashMap<String, String>,
        compiled: Vec<(String, Vec<u8>)>,
    },
    /// Building the image: the bundle's bytecode (compiled by this crate from source whose hash
    /// was checked), by module name.
    Link(HashMap<String, Vec<u8>>),
}

pub(crate) type LinkState = Rc<std::cell::RefCell<Linking>>;

/// Links a function's modules from its bundle only: imports resolve by [`bundle::resolve`] and load
/// the bundle's own modules. Nothing else is importable (not the prelude, whose module names
/// contain `:`, which no bundle path may; not files; not URLs).
pub(crate) struct BundleLoader {
    pub(crate) linking: LinkState,
}

fn import_error<'js>(ctx: &Ctx<'js>, message: &str) -> rquickjs::Error {
    rquickjs::Exception::throw_reference(ctx, message)
}

/// The `WriteOptions` of user modules.
fn write_options() -> WriteOptions {
    WriteOptions {
        strip_source: true,
        ..Default::default()
    }
}

impl rquickjs::loader::Resolver for BundleLoader {
    fn resolve<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<rquickjs::loader::ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        let path = bundle::resolve(base, name).map_err(|e| import_error(ctx, &e.to_string()))?;
        let (known, count) = match &*self.linking.borrow() {
            Linking::Idle => (true, 0),
            Linking::Compile { sources, .. } => (sources.contains_key(&path), sources.len()),
            Linking::Link(modules) => (modules.contains_key(&path), modules.len()),
        };
        if !known {
            let hint = if count == 1 {
                " (the function is one module; deploy its directory or entry file with `clave deploy` to bundle what it imports)"
            } else {
                ""
            };
            return Err(import_error(
                ctx,
                &format!("import {name:?} in {base:?}: {path:?} is not in the bundle{hint}"),
            ));
        }
        Ok(path)
    }
}

impl rquickjs::loader::Loader for BundleLoader {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<rquickjs::loader::ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js>> {
        let source = match &*self.linking.borrow() {
            Linking::Link(modules) => {
                if let Some(bytecode) = modules.get(name) {
                    return load_module(ctx.clone(), bytecode);
                }
                None
            }
            Linking::Compile { sources, .. } => sources.get(name).cloned(),
            Linking::Idle => None,
        };
        let Some(source) = source else {
            return Err(import_error(
                ctx,
                &format!(
                    "module {name:?} was not loaded when the function started: import() during a call reaches only modules the bundle imports statically"
                ),
            ));
        };
        // Compiling: declaring it resolves its own imports (re-entering this loader), then its
        // bytecode is kept.
        let m = Module::declare(ctx.clone(), name, source)?;
        let bc = m.write(write_options())?;
        if let Linking::Compile { compiled, .. } = &mut *self.linking.borrow_mut() {
            compiled.push((name.to_owned(), bc));
        }
        Ok(m)
    }
}

/// Compiled modules framed into one byte string for the [`BytecodeCache`]: for each module
/// (entry first) `u32 LE name length, name, u32 LE bytecode length, bytecode`.
fn frame_modules(modules: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(modules.iter().map(|(n, b)| n.len() + b.len() + 8).sum());
    for (name, bc) in modules {
        out.extend_from_slice(&u32::try_from(name.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&u32::try_from(bc.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(bc);
    }
    out
}

/// One length-prefixed field of [`frame_modules`] output from the front of `bytes`.
fn take_frame<'a>(bytes: &mut &'a [u8]) -> Result<&'a [u8], Error> {
    let (len, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or_else(|| internal("truncated module frame"))?;
    let len = u32::from_le_bytes(*len) as usize;
    let field = rest
        .get(..len)
        .ok_or_else(|| internal("truncated module frame"))?;
    *bytes = &rest[len..];
    Ok(field)
}

/// The modules of [`frame_modules`] output, entry first.
pub(crate) fn unframe_modules(mut bytes: &[u8]) -> Result<Vec<(String, &[u8])>, Error> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let name = std::str::from_utf8(take_frame(&mut bytes)?).map_err(internal)?;
        let bc = take_frame(&mut bytes)?;
        out.push((name.to_owned(), bc));
    }
    if out.is_empty() {
        return Err(internal("no modules in the frame"));
    }
    Ok(out)
}

/// Compiles a function's code (one module, or a [`bundle::Bundle`] of several) to framed
/// bytecode ([`frame_modules`], entry first) in a throwaway context of `rt` (same limits as the
/// call), whose loader state is `linking`.
pub(crate) fn compile(rt: &Runtime, linking: &LinkState, source: &str) -> Result<Vec<u8>, Error> {
    let bundle = bundle::Bundle::decode(source).map_err(|e| Error::InvalidModule {
        message: e.to_string(),
    })?;
    let (entry, sources): (&str, HashMap<String, String>) = match &bundle {
        Some(b) => (
            b.entry(),
            b.modules()
                .iter()
                .map(|(p, s)| (p.clone(), s.clone()))
                .collect(),
        ),
        None => (
            MODULE_NAME,
            HashMap::from([(MODULE_NAME.to_owned(), source.to_owned())]),
        ),
    };
    let mut order: Vec<String> = vec![entry.to_owned()];
    order.extend(sources.keys().filter(|p| p.as_str() != entry).cloned());
    *linking.borrow_mut() = Linking::Compile {
        sources,
        compiled: Vec::new(),
    };
    let r = compile_modules(rt, linking, &order, bundle.is_some());
    let compiled = match std::mem::take(&mut *linking.borrow_mut()) {
        Linking::Compile { compiled, .. } => compiled,
        _ => Vec::new(),
    };
    r?;
    // Entry first, then the rest in the order they were compiled.
    let mut framed: Vec<(String, Vec<u8>)> = Vec::with_capacity(compiled.len());
    let mut rest = Vec::new();
    for (name, bc) in compiled {
        if name == entry {
            framed.insert(0, (name, bc));
        } else {
            rest.push((name, bc));
        }
    }
    framed.extend(rest);
    Ok(frame_modules(&framed))
}

/// Declares every module of `order` not compiled yet (the entry first; declaring one compiles
/// what it imports through the loader). Errors of a bundle's modules name the module.
fn compile_modules(
    rt: &Runtime,
    linking: &LinkState,
    order: &[String],
    name_errors: bool,
) -> Result<(), Error> {
    let cctx = Context::custom::<CompileIntrinsics>(rt).map_err(internal)?;
    cctx.with(|ctx| {
        for name in order {
            let source = match &*linking.borrow() {
                Linking::Compile { compiled, sources } => {
                    if compiled.iter().any(|(n, _)| n == name) {
                        None
                    } else {
                        sources.get(name).cloned()
                    }
                }
                _ => None,
            };
            let Some(source) = source else { continue };
            let m =
                Module::declare(ctx.clone(), name.as_str(), source).map_err(
                    |e| match compile_error(&ctx, e) {
                        Error::InvalidModule { message } if name_errors => Error::InvalidModule {
                            message: format!("{name}: {message}"),
                        },
                        other => other,
                    },
                )?;
            let bc = m
                .write(write_options())
                .map_err(|e| compile_error(&ctx, e))?;
            if let Linking::Compile { compiled, .. } = &mut *linking.borrow_mut() {
                compiled.push((name.clone(), bc));
            }
        }
        Ok(())
    })
}
