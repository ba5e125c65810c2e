//! Per-call state and the native host functions behind the JavaScript prelude.
//!
//! Every host function that allocates checks its size against the call's byte budget before
//! allocating, and returns buffers through `ArrayBuffer::new_copy` / JS strings, which the QuickJS
//! allocator (and so the heap limit) accounts for.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use base64::Engine as _;
use rquickjs::{
    ArrayBuffer, Ctx, Exception, Function, Object, Persistent, TypedArray, Value, function::Opt,
};
use sha2::Digest as _;

use crate::bytes::{Heap, define_lazy_globals, json_fast, json_parse_fast, load_module, with_u8};
use crate::{ConsoleLevel, ConsoleLine, Limits};

/// State shared by the interrupt handler, the host functions and the job loop of a slot's calls.
///
/// One per sandbox slot, made before its base image (so it lives outside the arena and is never
/// restored); each call's limits are set, and its per-call fields reset, by [`CallState::arm`].
pub(crate) struct CallState {
    deadline: Cell<Instant>,
    pub abandon: Arc<AtomicBool>,
    pub interrupted: Cell<bool>,
    pub host_oom: Cell<bool>,
    /// True while a function's module is being evaluated for its image.
    pub evaluating_module: Cell<bool>,
    /// Set when the module's top level drew randomness: its state must not become an image (every
    /// call would replay the same keys, nonces and ids), so the top level runs for every call.
    pub top_level_random: Cell<bool>,
    budget: Cell<usize>,
    pub console: RefCell<Vec<ConsoleLine>>,
    pub console_left: Cell<usize>,
    pub console_truncated: Cell<bool>,
    /// The runtime's heap accounting (its allocator enforces `Limits::heap_bytes`).
    pub heap: Rc<Heap>,
    /// A request body that is not valid UTF-8, handed to the prelude by `H.requestBytes()`.
    pub request_bytes: RefCell<Vec<u8>>,
    /// State of `Math.random` (xorshift128+), reseeded from the OS for every call.
    random: Cell<[u64; 2]>,
    /// The network for `fetch()`, set for the duration of one call (`None`: `fetch` rejects).
    outbound: RefCell<crate::outbound::CallOutbound>,
}

impl CallState {
    pub fn new(limits: &Limits, deadline: Instant, abandon: Arc<AtomicBool>) -> Self {
        CallState {
            deadline: Cell::new(deadline),
            abandon,
            interrupted: Cell::new(false),
            host_oom: Cell::new(false),
            evaluating_module: Cell::new(false),
            top_level_random: Cell::new(false),
            budget: Cell::new(limits.heap_bytes),
            console: RefCell::new(Vec::new()),
            console_left: Cell::new(limits.max_console_bytes),
            console_truncated: Cell::new(false),
            heap: Heap::new(limits.heap_bytes),
            request_bytes: RefCell::new(Vec::new()),
            random: Cell::new(fresh_seed()),
            outbound: RefCell::new(None),
        }
    }

    /// Sets (or with `None` clears) the network of the call about to run.
    pub fn set_outbound(&self, outbound: crate::outbound::CallOutbound) {
        *self.outbound.borrow_mut() = outbound;
    }

    /// The network of the current call, if it has one.
    pub fn outbound(&self) -> crate::outbound::CallOutbound {
        self.outbound.borrow().clone()
    }

    /// Notes that randomness was drawn (see `top_level_random`).
    fn drew_random(&self) {
        if self.evaluating_module.get() {
            self.top_level_random.set(true);
        }
    }

    /// The next `Math.random()` value: 53 random bits in [0, 1).
    pub fn next_random(&self) -> f64 {
        self.drew_random();
        let [mut s1, s0] = self.random.get();
        let result = s0.wrapping_add(s1);
        s1 ^= s1 << 23;
        s1 ^= s1 >> 17;
        s1 ^= s0;
        s1 ^= s0 >> 26;
        self.random.set([s0, s1]);
        (result >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Sets the limits and deadline of the call about to run, and resets every per-call field.
    pub fn arm(&self, limits: &Limits, deadline: Instant) {
        self.deadline.set(deadline);
        self.budget.set(limits.heap_bytes);
        self.heap.set_limit(limits.heap_bytes);
        self.heap.clear_refused();
        self.console_left.set(limits.max_console_bytes);
        self.console_truncated.set(false);
        self.console.borrow_mut().clear();
        self.host_oom.set(false);
        self.interrupted.set(false);
        self.evaluating_module.set(false);
        self.top_level_random.set(false);
        self.request_bytes.borrow_mut().clear();
        self.random.set(fresh_seed());
    }

    /// The wall-clock deadline of the call.
    pub fn deadline(&self) -> Instant {
        self.deadline.get()
    }

    /// True if the call ran out of memory: the allocator refused a request or a host function
    /// refused a buffer beyond the budget.
    pub fn out_of_memory(&self) -> bool {
        self.host_oom.get() || self.heap.refused()
    }

    /// True (and remembered) once the deadline passed or the supervisor gave up on this call.
    pub fn expired(&self) -> bool {
        if self.interrupted.get() {
            return true;
        }
        if self.abandon.load(Ordering::Relaxed) || Instant::now() >= self.deadline.get() {
            self.interrupted.set(true);
            return true;
        }
        false
    }

    pub(crate) fn charge<'js>(&self, ctx: &Ctx<'js>, bytes: usize) -> rquickjs::Result<()> {
        if bytes > self.budget.get() {
            self.host_oom.set(true);
            return Err(Exception::throw_range(
                ctx,
                "allocation exceeds the per-call memory budget",
            ));
        }
        Ok(())
    }

    /// Copies a JS string to Rust; a failure is QuickJS running out of memory (the copy is made
    /// with the JS allocator first).
    pub(crate) fn js_string<'js>(
        &self,
        ctx: &Ctx<'js>,
        s: &rquickjs::String<'js>,
    ) -> rquickjs::Result<String> {
        s.to_string().map_err(|_| {
            self.host_oom.set(true);
            Exception::throw_range(ctx, "out of memory")
        })
    }

    fn log(&self, level: &str, text: String) {
        let left = self.console_left.get();
        if text.len() > left {
            self.console_truncated.set(true);
        }
        let mut cut = text.len().min(left);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        if cut == 0 && !text.is_empty() {
            return;
        }
        let mut text = text;
        text.truncate(cut);
        self.console_left.set(left - cut);
        let level = match level {
            "info" => ConsoleLevel::Info,
            "debug" => ConsoleLevel::Debug,
            "warn" => ConsoleLevel::Warn,
            "error" => ConsoleLevel::Error,
            "trace" => ConsoleLevel::Trace,
            _ => ConsoleLevel::Log,
        };
        self.console.borrow_mut().push(ConsoleLine { level, text });
    }
}

/// A non-zero xorshift128+ seed from the OS generator.
fn fresh_seed() -> [u64; 2] {
    let mut seed: [u64; 2] = rand::random();
    if seed == [0, 0] {
        seed[0] = 1;
    }
    seed
}

fn url_components(u: &ada_url::Url) -> Vec<String> {
    vec![
        u.href().to_owned(),
        u.origin(),
        u.protocol().to_owned(),
        u.username().to_owned(),
        u.password().to_owned(),
        u.host().to_owned(),
        u.hostname().to_owned(),
        u.port().to_owned(),
        u.pathname().to_owned(),
        u.search().to_owned(),
        u.hash().to_owned(),
    ]
}

/// Forgiving-base64 decode (WHATWG): `None` on failure; output is a Latin-1 string.
fn forgiving_atob(input: &str) -> Option<String> {
    let mut s: Vec<u8> = input
        .bytes()
        .filter(|b| !matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' '))
        .collect();
    if s.len().is_multiple_of(4) && s.last() == Some(&b'=') {
        s.pop();
        if s.last() == Some(&b'=') {
            s.pop();
        }
    }
    if s.len() % 4 == 1 || !input.is_ascii() {
        return None;
    }
    if !s
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
    {
        return None;
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
    );
    let bytes = engine.decode(&s).ok()?;
    Some(bytes.into_iter().map(char::from).collect())
}

/// The longest JSON text `H.jsonFast` builds and `H.jsonParse` parses natively.
const JSON_FAST_MAX_BYTES: usize = 4 << 20;

/// Installs `globalThis.__clave_host` (the prelude takes it and deletes it). Returns every host
/// function, for the slot to hold: a host function owns a Rust closure outside the arena, so none
/// may ever be finalized while images refer to it.
pub(crate) fn install<'js>(
    ctx: &Ctx<'js>,
    st: &Rc<CallState>,
    chunks: &'static [&'static [u8]],
) -> rquickjs::Result<Vec<Persistent<Value<'static>>>> {
    let host = Object::new(ctx.clone())?;

    // Loads prelude chunk `i` (our own bytecode, compiled by the build script) and returns its
    // namespace.
    host.set(
        "load",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, i: f64| -> rquickjs::Result<Object<'js>> {
                let bytes = chunks
                    .get(i as usize)
                    .ok_or_else(|| Exception::throw_internal(&ctx, "no such prelude chunk"))?;
                let (m, p) = load_module(ctx.clone(), bytes)?.eval()?;
                match p.result::<Value<'js>>() {
                    Some(Ok(_)) => m.namespace(),
                    Some(Err(e)) => Err(e),
                    None => Err(Exception::throw_internal(
                        &ctx,
                        "prelude chunk did not evaluate synchronously",
                    )),
                }
            },
        )?,
    )?;

    // Lazy globals: native accessors calling `load(name, group)` / `load(name, group, value)`.
    host.set(
        "lazyGlobals",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, groups: rquickjs::Array<'js>, load: Function<'js>| {
                define_lazy_globals(&ctx, &groups, &load)
            },
        )?,
    )?;

    // `Response.json(data)`: the JSON text of plain data, made without the generic
    // `JSON.stringify` (which the prelude runs instead when this returns `undefined`).
    let s = st.clone();
    host.set(
        "jsonFast",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, v: Value<'js>| -> rquickjs::Result<Value<'js>> {
                // Larger texts (bounded by the budget: the text is built outside the JS heap)
                // take the generic path.
                match json_fast(&ctx, &v, s.budget.get().min(JSON_FAST_MAX_BYTES)) {
                    Some(text) => Ok(Value::from_string(rquickjs::String::from_str(ctx, &text)?)),
                    None => Ok(Value::new_undefined(ctx)),
                }
            },
        )?,
    )?;

    // `body.json()`: the value of JSON text, parsed without the generic `JSON.parse` (which the
    // prelude runs instead when this returns `undefined`: invalid or unusual text).
    host.set(
        "jsonParse",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, text: rquickjs::String<'js>| -> Value<'js> {
                json_parse_fast(&ctx, &text, JSON_FAST_MAX_BYTES)
                    .unwrap_or_else(|| Value::new_undefined(ctx))
            },
        )?,
    )?;

    // `Date.now()` without the Date intrinsic: milliseconds since the epoch.
    host.set(
        "now",
        Function::new(ctx.clone(), || -> f64 {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as f64)
                .unwrap_or(0.0)
        })?,
    )?;

    // `new Request(url)`: the href, `null` if the URL does not parse, `false` if it has
    // credentials.
    let s = st.clone();
    host.set(
        "requestHref",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, input: String| -> rquickjs::Result<Value<'js>> {
                s.charge(&ctx, input.len().saturating_mul(3))?;
                Ok(match ada_url::Url::parse(&input, None) {
                    Err(_) => Value::new_null(ctx),
                    Ok(u) if u.has_credentials() => Value::new_bool(ctx, false),
                    Ok(u) => Value::from_string(rquickjs::String::from_str(ctx, u.href())?),
                })
            },
        )?,
    )?;

    // Every host function is made here, once per slot, before its base image is taken: a Rust
    // function made during a call would own a Rust-side closure that restoring the image forgets.
    more(ctx, st, &host)?;
    crate::outbound::install(ctx, st, &host)?;

    // `Math.random`: the context's own generator state would be part of every image (each call
    // would see the same sequence), so the slot's generator, reseeded from the OS for every call
    // (`CallState::arm`), replaces it.
    let s = st.clone();
    host.set(
        "mathRandom",
        Function::new(ctx.clone(), move || s.next_random())?.with_name("random")?,
    )?;

    let mut pins = Vec::new();
    for key in host.keys::<String>() {
        let v: Value<'js> = host.get(key?)?;
        pins.push(Persistent::save(ctx, v));
    }
    ctx.globals().set("__clave_host", host)?;
    Ok(pins)
}

/// The rarely used host functions (adding an intrinsic group, non-UTF-8 request bytes, console,
/// encodings, digests, randomness, URL parsing).
fn more<'js>(ctx: &Ctx<'js>, st: &Rc<CallState>, host: &Object<'js>) -> rquickjs::Result<()> {
    // The request body that is not valid UTF-8 (called once, by `dispatch`).
    let s = st.clone();
    host.set(
        "requestBytes",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>| {
            let bytes = std::mem::take(&mut *s.request_bytes.borrow_mut());
            ArrayBuffer::new_copy(ctx, bytes)
        })?,
    )?;

    let s = st.clone();
    host.set(
        "log",
        Function::new(ctx.clone(), move |level: String, text: String| {
            s.log(&level, text);
        })?,
    )?;
    let s = st.clone();
    host.set(
        "consoleLeft",
        Function::new(ctx.clone(), move || -> f64 {
            if s.console_left.get() == 0 {
                s.console_truncated.set(true);
            }
            s.console_left.get() as f64
        })?,
    )?;

    let s = st.clone();
    host.set(
        "utf8Encode",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, text: rquickjs::String<'js>, units: f64| {
                s.charge(&ctx, (units.max(0.0) as usize).saturating_mul(3))?;
                let text = s.js_string(&ctx, &text)?;
                ArrayBuffer::new_copy(ctx, text.as_bytes())
            },
        )?,
    )?;

    let s = st.clone();
    host.set(
        "utf8Decode",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, data: TypedArray<'js, u8>, fatal: bool, keep_bom: bool| {
                s.charge(&ctx, data.len().saturating_mul(3))?;
                let decoded = with_u8(&data, |b| {
                    let b = if !keep_bom && b.starts_with(&[0xef, 0xbb, 0xbf]) {
                        &b[3..]
                    } else {
                        b
                    };
                    if fatal {
                        std::str::from_utf8(b).ok().map(str::to_owned)
                    } else {
                        Some(String::from_utf8_lossy(b).into_owned())
                    }
                })
                .ok_or_else(|| Exception::throw_type(&ctx, "buffer is detached"))?;
                match decoded {
                    Some(text) => rquickjs::String::from_str(ctx, &text),
                    None => Err(Exception::throw_type(
                        &ctx,
                        "The encoded data was not valid for encoding utf-8",
                    )),
                }
            },
        )?,
    )?;

    let s = st.clone();
    host.set(
        "digest",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, alg: String, data: TypedArray<'js, u8>| {
                s.charge(&ctx, 64)?;
                let out = with_u8(&data, |b| match alg.as_str() {
                    "SHA-256" => Some(sha2::Sha256::digest(b).to_vec()),
                    "SHA-384" => Some(sha2::Sha384::digest(b).to_vec()),
                    "SHA-512" => Some(sha2::Sha512::digest(b).to_vec()),
                    _ => None,
                })
                .flatten()
                .ok_or_else(|| {
                    Exception::throw_type(&ctx, "unsupported digest or detached buffer")
                })?;
                ArrayBuffer::new_copy(ctx, out)
            },
        )?,
    )?;

    let s = st.clone();
    host.set(
        "random",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, n: f64| {
            let n = n.max(0.0) as usize;
            if n > 65536 {
                return Err(Exception::throw_range(&ctx, "at most 65536 random bytes"));
            }
            s.charge(&ctx, n)?;
            s.drew_random();
            let mut buf = vec![0u8; n];
            rand::fill(&mut buf[..]);
            ArrayBuffer::new_copy(ctx, buf)
        })?,
    )?;

    let s = st.clone();
    host.set(
        "btoa",
        Function::new(
            ctx.clone(),
            // `null` for a character above U+00FF (the prelude throws the DOMException).
            move |ctx: Ctx<'js>,
                  data: rquickjs::String<'js>,
                  units: f64|
                  -> rquickjs::Result<Value<'js>> {
                s.charge(&ctx, (units.max(0.0) as usize).saturating_mul(4))?;
                let text = s.js_string(&ctx, &data)?;
                let mut bytes = Vec::with_capacity(text.len());
                for c in text.chars() {
                    let c = u32::from(c);
                    if c > 0xff {
                        return Ok(Value::new_null(ctx));
                    }
                    bytes.push(c as u8);
                }
                let out = base64::engine::general_purpose::STANDARD.encode(bytes);
                Ok(Value::from_string(rquickjs::String::from_str(ctx, &out)?))
            },
        )?,
    )?;

    let s = st.clone();
    host.set(
        "atob",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  data: rquickjs::String<'js>,
                  units: f64|
                  -> rquickjs::Result<Value<'js>> {
                s.charge(&ctx, (units.max(0.0) as usize).saturating_mul(3))?;
                let text = s.js_string(&ctx, &data)?;
                match forgiving_atob(&text) {
                    Some(out) => Ok(Value::from_string(rquickjs::String::from_str(ctx, &out)?)),
                    None => Ok(Value::new_null(ctx)),
                }
            },
        )?,
    )?;

    let s = st.clone();
    host.set(
        "urlParse",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  input: String,
                  base: Opt<String>|
                  -> rquickjs::Result<Option<Vec<String>>> {
                s.charge(&ctx, input.len().saturating_mul(12))?;
                let parsed = ada_url::Url::parse(&input, base.0.as_deref());
                Ok(parsed.ok().map(|u| url_components(&u)))
            },
        )?,
    )?;

    let s = st.clone();
    host.set(
        "urlSet",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  href: String,
                  which: String,
                  value: String|
                  -> rquickjs::Result<Vec<String>> {
                s.charge(&ctx, (href.len() + value.len()).saturating_mul(12))?;
                let mut u = ada_url::Url::parse(&href, None)
                    .map_err(|_| Exception::throw_type(&ctx, "Invalid URL"))?;
                // A setter that refuses its value leaves the URL as it was (WHATWG).
                let v = Some(value.as_str());
                match which.as_str() {
                    "protocol" => drop(u.set_protocol(&value)),
                    "username" => drop(u.set_username(v)),
                    "password" => drop(u.set_password(v)),
                    "host" => drop(u.set_host(v)),
                    "hostname" => drop(u.set_hostname(v)),
                    "port" => drop(u.set_port(v)),
                    "pathname" => drop(u.set_pathname(v)),
                    "search" => u.set_search(v),
                    "hash" => u.set_hash(v),
                    _ => {}
                }
                Ok(url_components(&u))
            },
        )?,
    )?;

    Ok(())
}

#[cfg(test)]
mod tests {
    use super::forgiving_atob;

    #[test]
    fn atob_is_forgiving() {
        assert_eq!(forgiving_atob("aGk=").as_deref(), Some("hi"));
        assert_eq!(forgiving_atob("aGk").as_deref(), Some("hi"));
        assert_eq!(forgiving_atob(" aG k= ").as_deref(), Some("hi"));
        assert_eq!(forgiving_atob("aGk==="), None);
        assert_eq!(forgiving_atob("a"), None);
        assert_eq!(forgiving_atob("a*b="), None);
        assert_eq!(forgiving_atob("").as_deref(), Some(""));
    }
}
