// clave-sandbox prelude (core): the Web API surface every call needs, written in JavaScript on
// top of a handful of Rust host functions. Compiled to bytecode once per process and evaluated
// into every fresh context before the user's module.
//
// To keep a fresh context cheap, APIs that the request/response path does not need live in
// separate chunks (prelude_*.js), each compiled once per process and loaded into a context only
// when the program first reads one of its globals: those globals start as configurable accessors
// that load the chunk and replace themselves with the plain data property. Everything a chunk
// needs from here is captured in `CORE` before any user code runs.
//
// The host object is removed from the global scope before any user code runs;
// only the closures below keep a reference to it.

const H = globalThis.__clave_host;
delete globalThis.__clave_host;

const ObjectDefineProperty = Object.defineProperty;
const ArrayIsArray = Array.isArray;
const isView = ArrayBuffer.isView;
const SymbolIterator = Symbol.iterator;
const SymbolToStringTag = Symbol.toStringTag;

function defineGlobal(name, value) {
  ObjectDefineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
}

function tag(cls, name) {
  ObjectDefineProperty(cls.prototype, SymbolToStringTag, { value: name, configurable: true });
}

// ---------------------------------------------------------------- DOMException
const DOMExceptionCtor = globalThis.DOMException;
function domError(message, name) {
  if (typeof DOMExceptionCtor === 'function') return new DOMExceptionCtor(message, name);
  const e = new Error(message);
  e.name = name;
  return e;
}

// ---------------------------------------------------------------- bytes helpers
function toU8(source, what) {
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (isView(source)) return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  throw new TypeError(`${what}: argument must be an ArrayBuffer or ArrayBufferView`);
}
function copyU8(source) {
  const v = toU8(source, 'body');
  const out = new Uint8Array(v.byteLength);
  out.set(v);
  return out;
}
function wellFormed(s) {
  return typeof s.toWellFormed === 'function' ? s.toWellFormed() : s;
}
function utf8Encode(s) {
  const w = wellFormed(s);
  return new Uint8Array(H.utf8Encode(w, w.length));
}
function utf8Decode(u8) {
  return H.utf8Decode(u8, false, false);
}

// ---------------------------------------------------------------- Headers
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
function headerName(name) {
  const n = String(name);
  if (!TOKEN.test(n)) throw new TypeError(`Headers: "${n}" is an invalid header name.`);
  return n.toLowerCase();
}
function headerValue(value) {
  const v = String(value).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, '');
  if (/[\0\r\n]/.test(v)) throw new TypeError(`Headers: "${v}" is an invalid header value.`);
  return v;
}

class Headers {
  #m = new Map(); // lower-case name -> [values]
  constructor(init = undefined) {
    if (init === undefined || init === null) return;
    if (init instanceof Headers) {
      for (const [k, vs] of init.#m) this.#m.set(k, vs.slice());
    } else if (typeof init === 'object' || typeof init === 'function') {
      if (typeof init[Symbol.iterator] === 'function') {
        for (const pair of init) {
          const p = [...pair];
          if (p.length !== 2) throw new TypeError('Headers constructor: expected name/value pair to be length 2');
          this.append(p[0], p[1]);
        }
      } else {
        for (const k of Object.keys(init)) this.append(k, init[k]);
      }
    } else {
      throw new TypeError('Headers constructor: init must be an object');
    }
  }
  append(name, value) {
    const n = headerName(name);
    const v = headerValue(value);
    const vs = this.#m.get(n);
    if (vs) vs.push(v);
    else this.#m.set(n, [v]);
  }
  delete(name) { this.#m.delete(headerName(name)); }
  get(name) {
    const vs = this.#m.get(headerName(name));
    return vs ? vs.join(', ') : null;
  }
  getSetCookie() {
    const vs = this.#m.get('set-cookie');
    return vs ? vs.slice() : [];
  }
  has(name) { return this.#m.has(headerName(name)); }
  set(name, value) { this.#m.set(headerName(name), [headerValue(value)]); }
  #sorted() {
    const out = [];
    const names = [...this.#m.keys()].sort();
    for (const n of names) {
      const vs = this.#m.get(n);
      if (n === 'set-cookie') for (const v of vs) out.push([n, v]);
      else out.push([n, vs.join(', ')]);
    }
    return out;
  }
  forEach(callback, thisArg) {
    if (typeof callback !== 'function') throw new TypeError('Headers.forEach: callback must be a function');
    for (const [k, v] of this.#sorted()) callback.call(thisArg, v, k, this);
  }
  *entries() { yield* this.#sorted(); }
  *keys() { for (const [k] of this.#sorted()) yield k; }
  *values() { for (const [, v] of this.#sorted()) yield v; }
  [Symbol.iterator]() { return this.entries(); }
  static pairs(h) { return h.#sorted(); }
}
tag(Headers, 'Headers');
const headerPairs = Headers.pairs;
delete Headers.pairs;

// ---------------------------------------------------------------- Body (shared by Request and Response)
function extractBody(body) {
  if (body === null || body === undefined) return [null, null];
  if (typeof body === 'string') return [utf8Encode(body), 'text/plain;charset=UTF-8'];
  if (body instanceof ArrayBuffer || isView(body)) return [copyU8(body), null];
  const u = loaded[CHUNK_URL];
  if (u !== null && body instanceof u.URLSearchParams) return [utf8Encode(body.toString()), 'application/x-www-form-urlencoded;charset=UTF-8'];
  if (typeof body === 'object' && typeof body.getReader === 'function') {
    throw new TypeError('ReadableStream bodies are not supported in the clave sandbox');
  }
  return [utf8Encode(String(body)), 'text/plain;charset=UTF-8'];
}
class BodyState {
  constructor(bytes) { this.bytes = bytes; this.used = false; }
  take() {
    if (this.used) throw new TypeError('Body is unusable: Body has already been read');
    this.used = true;
    return this.bytes || new Uint8Array(0);
  }
}
function bodyMethods(cls, get) {
  const p = cls.prototype;
  const defs = {
    text() { try { return Promise.resolve(utf8Decode(get(this).take())); } catch (e) { return Promise.reject(e); } },
    json() { try { return Promise.resolve(JSON.parse(utf8Decode(get(this).take()))); } catch (e) { return Promise.reject(e); } },
    arrayBuffer() {
      try {
        const b = get(this).take();
        return Promise.resolve(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
      } catch (e) { return Promise.reject(e); }
    },
    bytes() { try { return Promise.resolve(get(this).take().slice()); } catch (e) { return Promise.reject(e); } },
    blob() { return Promise.reject(new TypeError('Blob is not supported in the clave sandbox')); },
    formData() { return Promise.reject(new TypeError('FormData is not supported in the clave sandbox')); },
  };
  for (const k of Object.keys(defs)) {
    ObjectDefineProperty(p, k, { value: defs[k], writable: true, configurable: true, enumerable: false });
  }
  ObjectDefineProperty(p, 'bodyUsed', { get() { return get(this).used; }, configurable: true });
}

// ---------------------------------------------------------------- Request
const METHOD_NORMALIZE = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT'];
const FORBIDDEN_METHODS = ['CONNECT', 'TRACE', 'TRACK'];
function normalizeMethod(m) {
  m = String(m);
  if (!TOKEN.test(m)) throw new TypeError(`'${m}' is not a valid HTTP method.`);
  const up = m.toUpperCase();
  if (FORBIDDEN_METHODS.includes(up)) throw new TypeError(`'${m}' HTTP method is unsupported.`);
  return METHOD_NORMALIZE.includes(up) ? up : m;
}

class Request {
  #method = 'GET';
  #url;
  #headers;
  #body;
  #redirect = 'follow';
  constructor(input, init = {}) {
    if (arguments.length < 1) throw new TypeError('Request constructor requires 1 argument');
    init = init ?? {};
    let bodyBytes = null;
    if (input instanceof Request) {
      this.#url = input.#url;
      this.#method = input.#method;
      this.#headers = new Headers(input.#headers);
      this.#redirect = input.#redirect;
      if (input.#body.bytes !== null && init.body === undefined) {
        bodyBytes = input.#body.take();
      }
    } else {
      // The URL parser behind `new URL` (components: href, origin, protocol, username, password, ...),
      // without loading the `url` chunk.
      let c;
      try { c = H.urlParse(String(input)); } catch (e) { c = null; }
      if (c == null) throw new TypeError(`Failed to parse URL from ${String(input)}`);
      if (c[3] || c[4]) throw new TypeError(`Request cannot be constructed from a URL that includes credentials: ${String(input)}`);
      this.#url = c[0];
      this.#headers = new Headers();
    }
    if (init.method !== undefined) this.#method = normalizeMethod(init.method);
    if (init.headers !== undefined) this.#headers = new Headers(init.headers);
    if (init.redirect !== undefined) this.#redirect = String(init.redirect);
    if (init.body !== undefined && init.body !== null) {
      if (this.#method === 'GET' || this.#method === 'HEAD') throw new TypeError('Request with GET/HEAD method cannot have body.');
      const [bytes, type] = extractBody(init.body);
      bodyBytes = bytes;
      if (type && !this.#headers.has('content-type')) this.#headers.set('content-type', type);
    }
    this.#body = new BodyState(bodyBytes);
  }
  get method() { return this.#method; }
  get url() { return this.#url; }
  get headers() { return this.#headers; }
  get redirect() { return this.#redirect; }
  get body() { return null; }
  clone() {
    if (this.#body.used) throw new TypeError('Request.clone: Body has already been consumed.');
    const b = this.#body.bytes;
    return new Request(this.#url, {
      method: this.#method, headers: this.#headers, redirect: this.#redirect,
      body: b === null ? null : b.slice(),
    });
  }
  static state(r) { return r.#body; }
}
tag(Request, 'Request');
{
  const st = Request.state;
  delete Request.state;
  bodyMethods(Request, (r) => st(r));
  // `body` streams are not supported; hide the placeholder getter
  delete Request.prototype.body;
}

// ---------------------------------------------------------------- Response
const NULL_BODY_STATUS = [101, 103, 204, 205, 304];
const REDIRECT_STATUS = [301, 302, 303, 307, 308];
const REASON_PHRASE = /^[\t\x20-\x7e\x80-\xff]*$/;
class Response {
  #status = 200;
  #statusText = '';
  #headers;
  #body;
  #type = 'default';
  constructor(body = null, init = {}) {
    init = init ?? {};
    if (init.status !== undefined) {
      const s = Number(init.status);
      if (!Number.isInteger(s) || s < 200 || s > 599) throw new RangeError(`init["status"] must be in the range of 200 to 599, inclusive.`);
      this.#status = s;
    }
    if (init.statusText !== undefined) {
      const t = String(init.statusText);
      if (!REASON_PHRASE.test(t)) throw new TypeError('Invalid statusText');
      this.#statusText = t;
    }
    this.#headers = new Headers(init.headers);
    let bytes = null;
    if (body !== null && body !== undefined) {
      if (NULL_BODY_STATUS.includes(this.#status)) throw new TypeError('Response constructor: Invalid response status code ' + this.#status);
      const [b, type] = extractBody(body);
      bytes = b;
      if (type && !this.#headers.has('content-type')) this.#headers.set('content-type', type);
    }
    this.#body = new BodyState(bytes);
  }
  static json(data, init = {}) {
    const s = JSON.stringify(data);
    if (s === undefined) throw new TypeError('Value is not JSON serializable');
    const headers = new Headers(init && init.headers);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    return new Response(s, { ...(init ?? {}), headers });
  }
  static redirect(url, status = 302) {
    const u = new (lazy(CHUNK_URL).URL)(String(url)).href;
    if (!REDIRECT_STATUS.includes(status)) throw new RangeError(`Invalid status code ${status}`);
    const r = new Response(null, { status, headers: { location: u } });
    return r;
  }
  static error() {
    const r = new Response(null, { status: 200 });
    r.#status = 0;
    r.#type = 'error';
    return r;
  }
  get status() { return this.#status; }
  get statusText() { return this.#statusText; }
  get ok() { return this.#status >= 200 && this.#status <= 299; }
  get headers() { return this.#headers; }
  get type() { return this.#type; }
  get url() { return ''; }
  get redirected() { return false; }
  get body() { return null; }
  clone() {
    if (this.#body.used) throw new TypeError('Response.clone: Body has already been consumed.');
    const r = new Response(null, { status: this.#status === 0 ? 200 : this.#status, statusText: this.#statusText, headers: this.#headers });
    r.#status = this.#status;
    r.#type = this.#type;
    r.#body = new BodyState(this.#body.bytes === null ? null : this.#body.bytes.slice());
    return r;
  }
  static state(r) { return [r.#status, r.#headers, r.#body]; }
}
tag(Response, 'Response');
const responseState = Response.state;
delete Response.state;
bodyMethods(Response, (r) => responseState(r)[2]);
delete Response.prototype.body;

const INTEGER_ARRAYS = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
  typeof BigInt64Array === 'function' ? BigInt64Array : Int8Array, typeof BigUint64Array === 'function' ? BigUint64Array : Uint8Array];

// ---------------------------------------------------------------- timers
const timers = new Map(); // id -> { cb, args, at, every }
const MAX_TIMERS = 10000;
let timerSeq = 0;
function addTimer(cb, ms, args, repeat) {
  if (typeof cb !== 'function') throw new TypeError('The "callback" argument must be of type function');
  if (timers.size >= MAX_TIMERS) throw new RangeError(`too many pending timers (limit ${MAX_TIMERS})`);
  let delay = Number(ms);
  if (!(delay >= 1 && delay <= 2147483647)) delay = repeat ? 1 : 0;
  delay = Math.floor(delay);
  const id = ++timerSeq;
  timers.set(id, { cb, args, at: Date.now() + delay, every: repeat ? delay : 0 });
  return id;
}
function setTimeout(cb, ms = 0, ...args) { return addTimer(cb, ms, args, false); }
function setInterval(cb, ms = 0, ...args) { return addTimer(cb, ms, args, true); }
function clearTimer(id) { timers.delete(typeof id === 'number' ? id : Number(id)); }

// Called by the host when no microtask is pending: runs the earliest due timer.
// Returns 0 if a timer ran, the delay in ms to the next timer, or -1 if none is pending.
export function runTimers() {
  if (timers.size === 0) return -1;
  let bestId = 0;
  let best = null;
  for (const [id, t] of timers) {
    if (best === null || t.at < best.at) { best = t; bestId = id; }
  }
  const now = Date.now();
  if (best.at > now) return best.at - now;
  if (best.every) best.at = now + best.every;
  else timers.delete(bestId);
  best.cb(...best.args);
  return 0;
}

// ---------------------------------------------------------------- fetch (no network)
function fetch() {
  return Promise.reject(new TypeError('fetch() is not available in the clave sandbox: functions have no network access'));
}

// ---------------------------------------------------------------- performance (1 ms resolution)
let timeOrigin = Date.now();
// Called by the host when an instance prepared ahead of its call starts serving it.
export function begin() { timeOrigin = Date.now(); }
const performance = {
  now() { return Date.now() - timeOrigin; },
  get timeOrigin() { return timeOrigin; },
};

// ---------------------------------------------------------------- lazily loaded chunks
// Indices of the chunks in the host's table (src/invoke.rs, `CHUNKS`).
const CHUNK_TEXT = 0;
const CHUNK_URL = 1;
const CHUNK_CRYPTO = 2;
const CHUNK_CLONE = 3;
const CHUNK_CONSOLE = 4;
const loadChunk = H.load;
const loaded = [null, null, null, null, null];
const CORE = {
  H, tag, toU8, wellFormed, utf8Encode, utf8Decode, domError, ArrayIsArray, isView, SymbolIterator,
  INTEGER_ARRAYS, Headers, Request, Response, loadedURL: () => loaded[CHUNK_URL],
};
function lazy(i) {
  let e = loaded[i];
  if (e === null) {
    e = loadChunk(i).init(CORE);
    loaded[i] = e;
  }
  return e;
}
function lazyGlobal(name, i) {
  ObjectDefineProperty(globalThis, name, {
    get() { const v = lazy(i)[name]; defineGlobal(name, v); return v; },
    set(v) { defineGlobal(name, v); },
    configurable: true,
    enumerable: false,
  });
}

// ---------------------------------------------------------------- globals
lazyGlobal('TextEncoder', CHUNK_TEXT);
lazyGlobal('TextDecoder', CHUNK_TEXT);
lazyGlobal('atob', CHUNK_TEXT);
lazyGlobal('btoa', CHUNK_TEXT);
lazyGlobal('URL', CHUNK_URL);
lazyGlobal('URLSearchParams', CHUNK_URL);
defineGlobal('Headers', Headers);
defineGlobal('Request', Request);
defineGlobal('Response', Response);
lazyGlobal('crypto', CHUNK_CRYPTO);
lazyGlobal('structuredClone', CHUNK_CLONE);
lazyGlobal('console', CHUNK_CONSOLE);
defineGlobal('setTimeout', setTimeout);
defineGlobal('setInterval', setInterval);
defineGlobal('clearTimeout', clearTimer);
defineGlobal('clearInterval', clearTimer);
defineGlobal('fetch', fetch);
defineGlobal('performance', performance);
defineGlobal('self', globalThis);

// ---------------------------------------------------------------- entry points used by the host
export function checkHandler(ns) {
  const d = ns.default;
  if (d === null || (typeof d !== 'object' && typeof d !== 'function')) return 'the module has no default export object';
  if (typeof d.fetch !== 'function') return 'the default export has no fetch(request, env, ctx) function';
  return null;
}

function describe(v) {
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v;
  const p = Object.getPrototypeOf(v);
  return p && p.constructor && typeof p.constructor.name === 'string' ? `object (${p.constructor.name})` : 'object';
}

// Builds the Request, calls fetch and flattens the Response:
// resolves to [status, [name, value, name, value, ...], Uint8Array | null] or to a string naming a bad return value.
export async function dispatch(ns, method, url, rawHeaders, body) {
  const headers = new Headers();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    try { headers.append(rawHeaders[i], rawHeaders[i + 1]); } catch (e) { /* skip an invalid header */ }
  }
  const hasBody = body.byteLength > 0 && method !== 'GET' && method !== 'HEAD';
  const request = new Request(url, { method, headers, body: hasBody ? body : null });
  const ctx = {
    waitUntil(p) { Promise.resolve(p).catch(() => {}); },
    passThroughOnException() {},
  };
  const res = await ns.default.fetch(request, {}, ctx);
  if (!(res instanceof Response)) return describe(res);
  const [status, h, b] = responseState(res);
  const flat = [];
  for (const [k, v] of headerPairs(h)) flat.push(k, v);
  return [status, flat, b.bytes];
}
