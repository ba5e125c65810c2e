//! The native JSON paths of `request.json()` and `Response.json()`: a parser and a serialiser
//! that run no JavaScript and give up (for `JSON.parse`/`JSON.stringify` to take over) on anything
//! they do not handle exactly.

use super::*;

/// `JSON.stringify(value)` (no replacer, no indent) of plain data, written directly in Rust:
/// `None` unless `value` is made only of primitives (strings that are well-formed UTF-16,
/// numbers, booleans, `null`; `undefined` and symbols where JSON skips them), ordinary objects
/// whose prototype is the context's `Object.prototype` and arrays (without holes) whose prototype
/// is its `Array.prototype`, with only data properties, no `toJSON` anywhere on the way (own, on
/// those prototypes), nested at most 64 deep, and the text at most `limit` bytes. It only reads
/// own properties without running any JavaScript (no getters, proxies, `toJSON` or coercions),
/// so giving up part way has no observable effect and the caller then runs `JSON.stringify`,
/// which produces the same text for every value accepted here.
pub(crate) fn json_fast(
    ctx: &Ctx<'_>,
    value: &rquickjs::Value<'_>,
    limit: usize,
) -> Option<String> {
    use rquickjs::qjs;
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: `raw` is the live context behind `ctx`, locked by this thread while a `Ctx` exists.
    // Every value we get from QuickJS is a new reference that we free exactly once (the
    // prototypes below, property descriptors, enumerations, atoms and C strings, see
    // `JsonWriter`); `value` is borrowed for the whole call. No JavaScript runs meanwhile: for
    // objects of class Object or Array (never proxies) `JS_GetPrototype`, `JS_GetOwnProperty`,
    // `JS_GetOwnPropertyNames` and `JS_GetLength` read the object's own shape only.
    unsafe {
        let object = qjs::JS_NewObject(raw);
        let array = qjs::JS_NewArray(raw);
        let w = JsonWriter {
            raw,
            out: String::new(),
            limit,
            object_proto: qjs::JS_GetPrototype(raw, object),
            array_proto: qjs::JS_GetPrototype(raw, array),
            to_json: qjs::JS_NewAtom(raw, c"toJSON".as_ptr()),
        };
        qjs::JS_FreeValue(raw, object);
        qjs::JS_FreeValue(raw, array);
        let mut w = w;
        let ok = qjs::JS_IsObject(w.object_proto)
            && qjs::JS_IsObject(w.array_proto)
            && w.to_json != qjs::JS_ATOM_NULL as qjs::JSAtom
            && !w.has_own_to_json(w.object_proto)
            && !w.has_own_to_json(w.array_proto)
            && w.proto_is(w.array_proto, w.object_proto)
            && w.value(value.as_raw(), 0) == Some(true);
        let out = std::mem::take(&mut w.out);
        drop(w);
        if !ok {
            // A failed QuickJS call (out of memory) left an exception: the fallback will meet
            // the same condition and report it.
            let e = qjs::JS_GetException(raw);
            qjs::JS_FreeValue(raw, e);
            return None;
        }
        Some(out)
    }
}

/// `JSON.parse(text)` (no reviver) written directly in Rust: `None` (and nothing allocated
/// remains) if `text` is longer than `limit` bytes, is not valid JSON, nests deeper than 64,
/// contains a lone surrogate (raw or escaped) or QuickJS runs out of memory; the caller then runs
/// `JSON.parse`, which reports the error. Parsing runs no JavaScript, so falling back is not
/// observable. Numbers are parsed with Rust's correctly rounded `f64` parser, as QuickJS's own.
pub(crate) fn json_parse_fast<'js>(
    ctx: &Ctx<'js>,
    text: &rquickjs::String<'js>,
    limit: usize,
) -> Option<rquickjs::Value<'js>> {
    use rquickjs::qjs;
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: `raw` is the live context behind `ctx`, locked by this thread while a `Ctx` exists.
    // The C string is freed once, after parsing; every value the parser makes is either handed
    // to its parent (QuickJS's define functions take ownership) or freed on failure, and the
    // result is a new reference that `Value::from_raw` takes over.
    unsafe {
        let mut len = 0;
        let p = qjs::JS_ToCStringLen2(raw, &mut len, text.as_raw(), false);
        if p.is_null() {
            let e = qjs::JS_GetException(raw);
            qjs::JS_FreeValue(raw, e);
            return None;
        }
        let bytes = std::slice::from_raw_parts(p.cast::<u8>(), len as usize);
        let text = match std::str::from_utf8(bytes) {
            Ok(t) if t.len() <= limit => Some(t),
            _ => None,
        };
        let v = if let Some(text) = text {
            let mut parser = JsonParser { raw, t: text, i: 0 };
            parser.ws();
            match parser.value(0) {
                Some(v) => {
                    parser.ws();
                    if parser.i == bytes.len() {
                        Some(v)
                    } else {
                        qjs::JS_FreeValue(raw, v);
                        None
                    }
                }
                None => None,
            }
        } else {
            None
        };
        qjs::JS_FreeCString(raw, p);
        match v {
            Some(v) => Some(rquickjs::Value::from_raw(ctx.clone(), v)),
            None => {
                let e = qjs::JS_GetException(raw);
                qjs::JS_FreeValue(raw, e);
                None
            }
        }
    }
}

/// State of [`json_parse_fast`]: the text `t`, read at byte offset `i`.
struct JsonParser<'a> {
    raw: *mut rquickjs::qjs::JSContext,
    t: &'a str,
    i: usize,
}

impl<'a> JsonParser<'a> {
    /// The text's bytes.
    fn s(&self) -> &'a [u8] {
        self.t.as_bytes()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s().get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.s()[self.i..].starts_with(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    /// One value (after whitespace) as a new reference; `None` on anything we do not accept.
    unsafe fn value(&mut self, depth: u32) -> Option<rquickjs::qjs::JSValue> {
        use rquickjs::qjs;
        // SAFETY (caller): `self.raw` is the live, locked context.
        unsafe {
            match *self.s().get(self.i)? {
                b'{' => {
                    if depth >= 64 {
                        return None;
                    }
                    self.i += 1;
                    let obj = qjs::JS_NewObject(self.raw);
                    if qjs::JS_IsException(obj) {
                        return None;
                    }
                    self.ws();
                    if self.eat(b"}") {
                        return Some(obj);
                    }
                    loop {
                        let ok = self.member(obj, depth);
                        self.ws();
                        if ok && self.eat(b",") {
                            self.ws();
                            continue;
                        }
                        if ok && self.eat(b"}") {
                            return Some(obj);
                        }
                        qjs::JS_FreeValue(self.raw, obj);
                        return None;
                    }
                }
                b'[' => {
                    if depth >= 64 {
                        return None;
                    }
                    self.i += 1;
                    let arr = qjs::JS_NewArray(self.raw);
                    if qjs::JS_IsException(arr) {
                        return None;
                    }
                    self.ws();
                    if self.eat(b"]") {
                        return Some(arr);
                    }
                    let mut n: u32 = 0;
                    loop {
                        let ok = match self.value(depth + 1) {
                            Some(v) => {
                                let r = qjs::JS_DefinePropertyValueUint32(
                                    self.raw,
                                    arr,
                                    n,
                                    v,
                                    qjs::JS_PROP_C_W_E as i32,
                                );
                                n = n.wrapping_add(1);
                                r >= 0 && n != 0
                            }
                            None => false,
                        };
                        self.ws();
                        if ok && self.eat(b",") {
                            self.ws();
                            continue;
                        }
                        if ok && self.eat(b"]") {
                            return Some(arr);
                        }
                        qjs::JS_FreeValue(self.raw, arr);
                        return None;
                    }
                }
                b'"' => {
                    let text = self.string()?;
                    let v = qjs::JS_NewStringLen(self.raw, text.as_ptr().cast(), text.len() as _);
                    (!qjs::JS_IsException(v)).then_some(v)
                }
                b't' => self
                    .eat(b"true")
                    .then(|| qjs::JS_MKVAL(qjs::JS_TAG_BOOL, 1)),
                b'f' => self
                    .eat(b"false")
                    .then(|| qjs::JS_MKVAL(qjs::JS_TAG_BOOL, 0)),
                b'n' => self
                    .eat(b"null")
                    .then(|| qjs::JS_MKVAL(qjs::JS_TAG_NULL, 0)),
                b'-' | b'0'..=b'9' => self.number().map(qjs::JS_NewFloat64),
                _ => None,
            }
        }
    }

    /// `"key": value` defined on `obj`; false on failure (nothing leaks).
    unsafe fn member(&mut self, obj: rquickjs::qjs::JSValue, depth: u32) -> bool {
        use rquickjs::qjs;
        if self.s().get(self.i) != Some(&b'"') {
            return false;
        }
        let Some(key) = self.string() else {
            return false;
        };
        self.ws();
        if !self.eat(b":") {
            return false;
        }
        self.ws();
        // SAFETY (caller): `obj` is a live object we own; the atom and the value are freed or
        // handed over exactly once.
        unsafe {
            let atom = if key.is_ascii() {
                // QuickJS looks up existing atoms by bytes, which is right for ASCII only.
                qjs::JS_NewAtomLen(self.raw, key.as_ptr().cast(), key.len() as _)
            } else {
                let k = qjs::JS_NewStringLen(self.raw, key.as_ptr().cast(), key.len() as _);
                if qjs::JS_IsException(k) {
                    return false;
                }
                let a = qjs::JS_ValueToAtom(self.raw, k);
                qjs::JS_FreeValue(self.raw, k);
                a
            };
            if atom == qjs::JS_ATOM_NULL as qjs::JSAtom {
                return false;
            }
            let ok = match self.value(depth + 1) {
                Some(v) => {
                    qjs::JS_DefinePropertyValue(self.raw, obj, atom, v, qjs::JS_PROP_C_W_E as i32)
                        >= 0
                }
                None => false,
            };
            qjs::JS_FreeAtom(self.raw, atom);
            ok
        }
    }

    /// A string literal at `self.i` (the opening quote), unescaped; `None` if invalid or it has
    /// a lone surrogate escape.
    fn string(&mut self) -> Option<std::borrow::Cow<'a, str>> {
        // Every bound of a slice below is at or just after an ASCII byte (a quote, a backslash,
        // the end of an escape), so the slices of `t` need no validation (`get` still checks
        // that they are char boundaries).
        let (s, t) = (self.s(), self.t);
        self.i += 1;
        let start = self.i;
        // Fast path: no escapes.
        self.i = start + find_special(s.get(start..)?)?;
        if s[self.i] < 0x20 {
            return None;
        }
        if s[self.i] == b'"' {
            let text = t.get(start..self.i)?;
            self.i += 1;
            return Some(std::borrow::Cow::Borrowed(text));
        }
        let mut out = String::from(t.get(start..self.i)?);
        loop {
            let run = self.i;
            self.i = run + find_special(s.get(run..)?)?;
            out.push_str(t.get(run..self.i)?);
            match s[self.i] {
                b'"' => {
                    self.i += 1;
                    return Some(std::borrow::Cow::Owned(out));
                }
                b'\\' => {
                    let e = *self.s().get(self.i + 1)?;
                    self.i += 2;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let c = if (0xd800..0xdc00).contains(&hi) {
                                if !self.eat(b"\\u") {
                                    return None;
                                }
                                let lo = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&lo) {
                                    return None;
                                }
                                0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                            } else {
                                hi
                            };
                            out.push(char::from_u32(c)?);
                        }
                        _ => return None,
                    }
                }
                _ => return None,
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s().get(self.i..self.i + 4)?;
        let h = std::str::from_utf8(h).ok()?;
        if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.i += 4;
        u32::from_str_radix(h, 16).ok()
    }

    /// A JSON number (strict grammar) as `f64`.
    fn number(&mut self) -> Option<f64> {
        let start = self.i;
        self.eat(b"-");
        match *self.s().get(self.i)? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.eat(b".") {
            if !self.s().get(self.i)?.is_ascii_digit() {
                return None;
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.s().get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.s().get(self.i) {
                self.i += 1;
            }
            if !self.s().get(self.i)?.is_ascii_digit() {
                return None;
            }
            self.digits();
        }
        self.t.get(start..self.i)?.parse().ok()
    }

    fn digits(&mut self) {
        while self.s().get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
    }
}

/// State of [`json_fast`]; frees its references when dropped.
struct JsonWriter {
    raw: *mut rquickjs::qjs::JSContext,
    out: String,
    limit: usize,
    object_proto: rquickjs::qjs::JSValue,
    array_proto: rquickjs::qjs::JSValue,
    to_json: rquickjs::qjs::JSAtom,
}

impl Drop for JsonWriter {
    fn drop(&mut self) {
        use rquickjs::qjs;
        // SAFETY: the three are references we own (see `json_fast`); a JS_ATOM_NULL atom (the
        // lookup failed) is not freed.
        unsafe {
            qjs::JS_FreeValue(self.raw, self.object_proto);
            qjs::JS_FreeValue(self.raw, self.array_proto);
            if self.to_json != qjs::JS_ATOM_NULL as qjs::JSAtom {
                qjs::JS_FreeAtom(self.raw, self.to_json);
            }
        }
    }
}

impl JsonWriter {
    /// True if `obj` (an object that is not a proxy) has an own `toJSON` property (or the lookup
    /// failed).
    unsafe fn has_own_to_json(&self, obj: rquickjs::qjs::JSValue) -> bool {
        // SAFETY (caller): `obj` is a live object of this context; a null descriptor only asks
        // whether the property exists.
        unsafe {
            rquickjs::qjs::JS_GetOwnProperty(self.raw, std::ptr::null_mut(), obj, self.to_json) != 0
        }
    }

    /// True if the prototype of `obj` (an object that is not a proxy) is `proto`.
    unsafe fn proto_is(&self, obj: rquickjs::qjs::JSValue, proto: rquickjs::qjs::JSValue) -> bool {
        use rquickjs::qjs;
        // SAFETY (caller): `obj` is a live object that is not a proxy (no trap runs); we free
        // the prototype reference we get.
        unsafe {
            let p = qjs::JS_GetPrototype(self.raw, obj);
            let same =
                qjs::JS_IsObject(p) && qjs::JS_VALUE_GET_PTR(p) == qjs::JS_VALUE_GET_PTR(proto);
            qjs::JS_FreeValue(self.raw, p);
            same
        }
    }

    fn full(&self) -> bool {
        self.out.len() > self.limit
    }

    /// Appends `text` as a JSON string literal (escapes as `JSON.stringify`): runs of bytes
    /// that need no escape are copied at once (only `"`, `\\` and controls below 0x20 do; a
    /// `&str` holds no lone surrogate).
    fn quote(&mut self, text: &str) {
        self.out.reserve(text.len() + 2);
        self.out.push('"');
        let bytes = text.as_bytes();
        let mut run = 0;
        while let Some(at) = bytes.get(run..).and_then(find_special) {
            let i = run + at;
            let b = bytes[i];
            // `i` is the position of an ASCII byte: a char boundary.
            self.out.push_str(&text[run..i]);
            match b {
                b'"' => self.out.push_str("\\\""),
                b'\\' => self.out.push_str("\\\\"),
                0x08 => self.out.push_str("\\b"),
                0x0c => self.out.push_str("\\f"),
                b'\n' => self.out.push_str("\\n"),
                b'\r' => self.out.push_str("\\r"),
                b'\t' => self.out.push_str("\\t"),
                _ => {
                    use std::fmt::Write as _;
                    let _ = write!(self.out, "\\u{b:04x}");
                }
            }
            run = i + 1;
        }
        self.out.push_str(&text[run..]);
        self.out.push('"');
    }

    /// Appends a C string from QuickJS (freed here) as a JSON string; `false` if it is not
    /// valid UTF-8 (a lone surrogate) or missing.
    unsafe fn quote_c(&mut self, p: *const std::ffi::c_char, len: usize) -> bool {
        if p.is_null() {
            return false;
        }
        // SAFETY (caller): `p` points to `len` bytes owned by QuickJS until `JS_FreeCString`.
        let ok =
            match std::str::from_utf8(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }) {
                Ok(text) => {
                    self.quote(text);
                    true
                }
                Err(_) => false,
            };
        // SAFETY: `p` came from `JS_ToCStringLen2` / `JS_AtomToCStringLen` of this context.
        unsafe { rquickjs::qjs::JS_FreeCString(self.raw, p) };
        ok
    }

    /// Appends `v`: `Some(true)` written, `Some(false)` nothing to write (`undefined`, a symbol),
    /// `None` give up.
    unsafe fn value(&mut self, v: rquickjs::qjs::JSValue, depth: u32) -> Option<bool> {
        use rquickjs::qjs;
        // SAFETY (caller): `v` is a live value of this context, borrowed for the call.
        unsafe {
            match qjs::JS_VALUE_GET_TAG(v) {
                qjs::JS_TAG_INT => {
                    use std::fmt::Write as _;
                    let _ = write!(self.out, "{}", qjs::JS_VALUE_GET_INT(v));
                }
                qjs::JS_TAG_FLOAT64 => {
                    let d = qjs::JS_VALUE_GET_FLOAT64(v);
                    if !d.is_finite() {
                        self.out.push_str("null");
                    } else if d.fract() == 0.0 && d.abs() < 9_007_199_254_740_992.0 {
                        use std::fmt::Write as _;
                        // -0 is written as 0, as by JSON.stringify.
                        let _ = write!(self.out, "{}", d as i64);
                    } else {
                        // QuickJS's own Number-to-String (no JavaScript runs for a number).
                        let s = qjs::JS_ToString(self.raw, v);
                        if qjs::JS_IsException(s) {
                            return None;
                        }
                        let mut len = 0;
                        let p = qjs::JS_ToCStringLen2(self.raw, &mut len, s, false);
                        qjs::JS_FreeValue(self.raw, s);
                        if p.is_null() {
                            return None;
                        }
                        let bytes = std::slice::from_raw_parts(p.cast::<u8>(), len as usize);
                        let ok = match std::str::from_utf8(bytes) {
                            Ok(t) => {
                                self.out.push_str(t);
                                true
                            }
                            Err(_) => false,
                        };
                        qjs::JS_FreeCString(self.raw, p);
                        if !ok {
                            return None;
                        }
                    }
                }
                qjs::JS_TAG_BOOL => self.out.push_str(if qjs::JS_VALUE_GET_BOOL(v) {
                    "true"
                } else {
                    "false"
                }),
                qjs::JS_TAG_NULL => self.out.push_str("null"),
                qjs::JS_TAG_UNDEFINED | qjs::JS_TAG_SYMBOL => return Some(false),
                qjs::JS_TAG_STRING => {
                    let mut len = 0;
                    let p = qjs::JS_ToCStringLen2(self.raw, &mut len, v, false);
                    if !self.quote_c(p, len as usize) {
                        return None;
                    }
                }
                qjs::JS_TAG_OBJECT => {
                    if depth >= 64 || qjs::JS_IsFunction(self.raw, v) {
                        return None;
                    }
                    // Class ids 1 and 2: JS_CLASS_OBJECT and JS_CLASS_ARRAY (ordinary objects and
                    // arrays; proxies, boxed primitives, dates, ... have other classes).
                    match qjs::JS_GetClassID(v) {
                        1 if self.proto_is(v, self.object_proto) && !self.has_own_to_json(v) => {
                            self.object(v, depth)?
                        }
                        2 if self.proto_is(v, self.array_proto) && !self.has_own_to_json(v) => {
                            self.array(v, depth)?
                        }
                        _ => return None,
                    }
                }
                _ => return None,
            }
        }
        if self.full() { None } else { Some(true) }
    }

    /// The own data value of `obj[atom]`: `None` if absent, an accessor, or the lookup failed.
    unsafe fn own_data(
        &self,
        obj: rquickjs::qjs::JSValue,
        atom: rquickjs::qjs::JSAtom,
    ) -> Option<rquickjs::qjs::JSValue> {
        use rquickjs::qjs;
        // SAFETY (caller): `obj` is a live ordinary object or array; the descriptor's three
        // values are references we own after a successful lookup.
        unsafe {
            let mut desc = std::mem::MaybeUninit::<qjs::JSPropertyDescriptor>::uninit();
            if qjs::JS_GetOwnProperty(self.raw, desc.as_mut_ptr(), obj, atom) <= 0 {
                return None;
            }
            let desc = desc.assume_init();
            qjs::JS_FreeValue(self.raw, desc.getter);
            qjs::JS_FreeValue(self.raw, desc.setter);
            if desc.flags & qjs::JS_PROP_GETSET as i32 != 0 {
                qjs::JS_FreeValue(self.raw, desc.value);
                return None;
            }
            Some(desc.value)
        }
    }

    unsafe fn object(&mut self, obj: rquickjs::qjs::JSValue, depth: u32) -> Option<()> {
        use rquickjs::qjs;
        // SAFETY (caller): `obj` is a live ordinary object; the enumeration is ours to free.
        unsafe {
            let mut tab: *mut qjs::JSPropertyEnum = std::ptr::null_mut();
            let mut len: u32 = 0;
            let flags = (qjs::JS_GPN_STRING_MASK | qjs::JS_GPN_ENUM_ONLY) as i32;
            if qjs::JS_GetOwnPropertyNames(self.raw, &mut tab, &mut len, obj, flags) < 0 {
                return None;
            }
            let mut ok = true;
            let mut first = true;
            self.out.push('{');
            for i in 0..len as usize {
                let atom = (*tab.add(i)).atom;
                let Some(v) = self.own_data(obj, atom) else {
                    ok = false;
                    break;
                };
                let mark = self.out.len();
                if !first {
                    self.out.push(',');
                }
                let mut klen = 0;
                let kp = qjs::JS_AtomToCStringLen(self.raw, &mut klen, atom);
                let r = if self.quote_c(kp, klen as usize) {
                    self.out.push(':');
                    self.value(v, depth + 1)
                } else {
                    None
                };
                qjs::JS_FreeValue(self.raw, v);
                match r {
                    Some(true) => first = false,
                    Some(false) => self.out.truncate(mark),
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
            qjs::JS_FreePropertyEnum(self.raw, tab, len);
            self.out.push('}');
            ok.then_some(())
        }
    }

    unsafe fn array(&mut self, arr: rquickjs::qjs::JSValue, depth: u32) -> Option<()> {
        use rquickjs::qjs;
        // SAFETY (caller): `arr` is a live array (class Array, not a proxy): its `length` is an
        // own data property, read without running JavaScript.
        unsafe {
            let mut len: i64 = 0;
            if qjs::JS_GetLength(self.raw, arr, &mut len) < 0 {
                return None;
            }
            self.out.push('[');
            for i in 0..len {
                if i > 0 {
                    self.out.push(',');
                }
                let atom = qjs::JS_NewAtomUInt32(self.raw, u32::try_from(i).ok()?);
                if atom == qjs::JS_ATOM_NULL as qjs::JSAtom {
                    return None;
                }
                // A hole would be looked up on the prototypes: give up.
                let v = self.own_data(arr, atom);
                qjs::JS_FreeAtom(self.raw, atom);
                let v = v?;
                let r = self.value(v, depth + 1);
                qjs::JS_FreeValue(self.raw, v);
                if !r? {
                    self.out.push_str("null");
                }
                if self.full() {
                    return None;
                }
            }
            self.out.push(']');
            Some(())
        }
    }
}

/// The position of the first byte of `s` that a JSON string cannot hold as it is (and that
/// `JSON.stringify` escapes): `"`, `\\` or a control character below 0x20.
///
/// Eight bytes at a time: in each word a byte is flagged by the usual "has a zero byte" test on
/// `w ^ "…"`, on `w ^ \\…` and on `w - 0x20…`. A flag can be wrong only in a byte above a rightly
/// flagged one (the borrow of that one's subtraction), so the lowest flag of a little-endian
/// word is always right.
pub(super) fn find_special(s: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    let flags = |w: u64| {
        let q = w ^ (ONES * u64::from(b'"'));
        let b = w ^ (ONES * u64::from(b'\\'));
        (q.wrapping_sub(ONES) & !q)
            | (b.wrapping_sub(ONES) & !b)
            | (w.wrapping_sub(ONES * 0x20) & !w)
    };
    let mut chunks = s.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let f = flags(u64::from_le_bytes(w)) & HIGH;
        if f != 0 {
            return Some(at + (f.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| at + p)
}
