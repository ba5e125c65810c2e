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
const ObjectGetOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
const ObjectCreate = Object.create;
const ObjectKeys = Object.keys;
// The built-in `Promise.resolve` and `Promise.reject`, captured before any program code runs: a
// program may replace the global `Promise` or its methods (a polyfill, say), and the host needs a
// native promise from `dispatch`.
const PromiseResolve = Promise.resolve.bind(Promise);
const PromiseReject = Promise.reject.bind(Promise);
// Every host function lives on `H` (made once per sandbox slot, before its base image is taken).
function host() {
  return H;
}
// V8-style stack traces: `CallSite.getFunction()` answers undefined, as V8 does for strict-mode
// frames (all module code is strict), so that user code cannot reach the prelude's functions or the
// host functions on the stack through `Error.prepareStackTrace`.
{
  const had = Object.getOwnPropertyDescriptor(Error, 'prepareStackTrace');
  const before = Error.prepareStackTrace;
  Error.prepareStackTrace = (e, sites) => sites;
  const sites = new Error().stack;
  // Put the previous hook back through the setter: QuickJS keeps it in an internal slot that
  // redefining the property does not reset (every `stack` would stay an array of CallSites).
  Error.prepareStackTrace = before;
  if (had) Object.defineProperty(Error, 'prepareStackTrace', had); else delete Error.prepareStackTrace;
  if (Array.isArray(sites) && sites.length > 0) {
    Object.defineProperty(Object.getPrototypeOf(sites[0]), 'getFunction', {
      value: function getFunction() { return undefined; }, writable: true, configurable: true, enumerable: false,
    });
  }
}
// Math.random from the host: the context's own generator state would be the same in every call
// restored from a snapshot image.
Object.defineProperty(Math, 'random', { value: H.mathRandom, writable: true, configurable: true, enumerable: false });
const ReflectDefineProperty = Reflect.defineProperty;
const ArrayIsArray = Array.isArray;
const SymbolIterator = Symbol.iterator;
const SymbolToStringTag = Symbol.toStringTag;
const now = H.now;
const jsonFast = H.jsonFast;
const jsonParse = H.jsonParse;
// Longer texts go to JSON.parse directly (the host would copy them first to find out).
const JSON_PARSE_FAST_UNITS = 1 << 20;

function defineGlobal(name, value) {
  ObjectDefineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
}

function tag(cls, name) {
  ObjectDefineProperty(cls.prototype, SymbolToStringTag, { value: name, configurable: true });
}

// ---------------------------------------------------------------- intrinsics
// The ECMAScript constructors the prelude uses, captured before any program code runs (the
// program may later replace or delete the globals; the prelude keeps using the originals). All
// are in the context from its creation (src/invoke.rs `RunIntrinsics`); the names are checked by
// a unit test there.
const INTRINSIC_GLOBALS = [
  ['Date'],
  ['Map', 'Set', 'WeakMap', 'WeakSet'],
  ['ArrayBuffer', 'SharedArrayBuffer', 'Uint8ClampedArray', 'Int8Array', 'Uint8Array', 'Int16Array',
    'Uint16Array', 'Int32Array', 'Uint32Array', 'BigInt64Array', 'BigUint64Array', 'Float16Array',
    'Float32Array', 'Float64Array', 'DataView', 'Atomics'],
  ['DOMException'],
  ['WeakRef', 'FinalizationRegistry'],
];
const intrinsic = ObjectCreate(null);
for (let i = 0; i < INTRINSIC_GLOBALS.length; i++) {
  const names = INTRINSIC_GLOBALS[i];
  for (let k = 0; k < names.length; k++) intrinsic[names[k]] = globalThis[names[k]];
}
function typedArrays() {
  return intrinsic;
}

// ---------------------------------------------------------------- DOMException
function domError(message, name) {
  const D = intrinsic.DOMException;
  if (typeof D === 'function') return new D(message, name);
  const e = new Error(message);
  e.name = name;
  return e;
}

// ---------------------------------------------------------------- bytes helpers
function isArrayBuffer(v) {
  return v instanceof intrinsic.ArrayBuffer;
}
function isView(v) {
  return intrinsic.ArrayBuffer.isView(v);
}
function toU8(source, what) {
  const T = typedArrays();
  if (source instanceof T.ArrayBuffer) return new T.Uint8Array(source);
  if (T.ArrayBuffer.isView(source)) return new T.Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  throw new TypeError(`${what}: argument must be an ArrayBuffer or ArrayBufferView`);
}
function copyU8(source) {
  const v = toU8(source, 'body');
  const out = new intrinsic.Uint8Array(v.byteLength);
  out.set(v);
  return out;
}
function wellFormed(s) {
  return typeof s.toWellFormed === 'function' ? s.toWellFormed() : s;
}
function utf8Encode(s) {
  const T = typedArrays();
  const w = wellFormed(s);
  return new T.Uint8Array(host().utf8Encode(w, w.length));
}
function utf8Decode(u8) {
  return host().utf8Decode(u8, false, false);
}
// Bodies are kept as a well-formed string (from a string body, or a request body that is valid
// UTF-8) or a Uint8Array, and encoded only when bytes are asked for.
function bodyText(b) {
  if (typeof b === 'string') return b.charCodeAt(0) === 0xfeff ? b.slice(1) : b;
  return utf8Decode(b);
}
function bodyBytes(b) {
  return typeof b === 'string' ? utf8Encode(b) : b.slice();
}

// ---------------------------------------------------------------- Headers
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Valid names seen in this call -> lower case (a call uses few names, often repeatedly).
const headerNames = ObjectCreate(null);
let headerNamesLeft = 256;
function headerName(name) {
  const n = String(name);
  const known = headerNames[n];
  if (known !== undefined) return known;
  if (!TOKEN.test(n)) throw new TypeError(`Headers: "${n}" is an invalid header name.`);
  const lower = n.toLowerCase();
  if (headerNamesLeft > 0) {
    headerNamesLeft--;
    headerNames[n] = lower;
  }
  return lower;
}
const HTTP_WS_EDGES = /^[\t\n\r ]+|[\t\n\r ]+$/g;
function isHttpWs(c) {
  return c === 32 || c === 9 || c === 10 || c === 13;
}
function headerValue(value) {
  let v = String(value);
  const n = v.length;
  if (n !== 0 && (isHttpWs(v.charCodeAt(0)) || isHttpWs(v.charCodeAt(n - 1)))) v = v.replace(HTTP_WS_EDGES, '');
  if (v.indexOf('\n') !== -1 || v.indexOf('\r') !== -1 || v.indexOf('\0') !== -1) {
    throw new TypeError(`Headers: "${v}" is an invalid header value.`);
  }
  return v;
}

class Headers {
  #m = ObjectCreate(null); // lower-case name -> [values]
  constructor(init = undefined) {
    if (init === undefined || init === null) return;
    if (init instanceof Headers) {
      const m = init.#m;
      for (const k in m) this.#m[k] = m[k].slice();
    } else if (typeof init === 'object' || typeof init === 'function') {
      if (typeof init[Symbol.iterator] === 'function') {
        for (const pair of init) {
          const p = [...pair];
          if (p.length !== 2) throw new TypeError('Headers constructor: expected name/value pair to be length 2');
          this.append(p[0], p[1]);
        }
      } else {
        for (const k of ObjectKeys(init)) this.append(k, init[k]);
      }
    } else {
      throw new TypeError('Headers constructor: init must be an object');
    }
  }
  append(name, value) {
    const n = headerName(name);
    const v = headerValue(value);
    const vs = this.#m[n];
    if (vs) vs.push(v);
    else this.#m[n] = [v];
  }
  delete(name) { delete this.#m[headerName(name)]; }
  get(name) {
    const vs = this.#m[headerName(name)];
    return vs ? vs.join(', ') : null;
  }
  getSetCookie() {
    const vs = this.#m['set-cookie'];
    return vs ? vs.slice() : [];
  }
  has(name) { return this.#m[headerName(name)] !== undefined; }
  set(name, value) {
    const n = headerName(name);
    this.#m[n] = [headerValue(value)];
  }
  #sorted() {
    const out = [];
    const names = ObjectKeys(this.#m).sort();
    for (const n of names) {
      const vs = this.#m[n];
      if (n === 'set-cookie') for (const v of vs) out.push([n, v]);
      else out.push([n, vs.join(', ')]);
    }
    return out;
  }
  // Iteration lives in the `extra` chunk.
  forEach(callback, thisArg) { return lazy(CHUNK_EXTRA).headersForEach(this, callback, thisArg); }
  entries() { return lazy(CHUNK_EXTRA).headersIterate(this, 0); }
  keys() { return lazy(CHUNK_EXTRA).headersIterate(this, 1); }
  values() { return lazy(CHUNK_EXTRA).headersIterate(this, 2); }
  [Symbol.iterator]() { return this.entries(); }
  static pairs(h) { return h.#sorted(); }
  // As `pairs`, flattened to [name, value, name, value, ...] (what the host takes).
  static flat(h) {
    const m = h.#m;
    const names = ObjectKeys(m);
    if (names.length > 1) names.sort();
    const out = [];
    for (let i = 0; i < names.length; i++) {
      const n = names[i];
      const vs = m[n];
      if (n === 'set-cookie') for (let k = 0; k < vs.length; k++) out.push(n, vs[k]);
      else out.push(n, vs.length === 1 && typeof vs[0] === 'string' ? vs[0] : vs.join(', '));
    }
    return out;
  }
}
tag(Headers, 'Headers');
const headerPairs = Headers.pairs;
const headerFlat = Headers.flat;
delete Headers.pairs;
delete Headers.flat;

// ---------------------------------------------------------------- Body (shared by Request and Response)
function extractBody(body) {
  if (body === null || body === undefined) return [null, null];
  if (typeof body === 'string') return [wellFormed(body), 'text/plain;charset=UTF-8'];
  if (isArrayBuffer(body) || isView(body)) return [copyU8(body), null];
  const u = loaded[CHUNK_URL];
  if (u !== null && body instanceof u.URLSearchParams) return [wellFormed(body.toString()), 'application/x-www-form-urlencoded;charset=UTF-8'];
  if (typeof body === 'object' && typeof body.getReader === 'function') {
    throw new TypeError('ReadableStream bodies are not supported in the clave sandbox');
  }
  return [wellFormed(String(body)), 'text/plain;charset=UTF-8'];
}
class BodyState {
  // `bytes`: null, a well-formed string or a Uint8Array.
  constructor(bytes) { this.bytes = bytes; this.used = false; }
  take() {
    if (this.used) throw new TypeError('Body is unusable: Body has already been read');
    this.used = true;
    return this.bytes === null ? '' : this.bytes;
  }
  copy() {
    const b = this.bytes;
    return b === null || typeof b === 'string' ? b : b.slice();
  }
}
// The body methods of Request and Response (written in each class body, which is cheaper than
// defining them on the prototypes afterwards): `get(self)` gives the body state (and throws for
// another object), `kind` 0 text, 1 json, 2 arrayBuffer, 3 bytes.
function readBody(get, self, kind) {
  try {
    const b = get(self).take();
    if (kind === 0) return PromiseResolve(bodyText(b));
    if (kind === 1) {
      // Natively parsed unless the text is invalid or unusual (then the generic JSON.parse).
      const t = bodyText(b);
      const v = t.length <= JSON_PARSE_FAST_UNITS ? jsonParse(t) : undefined;
      return PromiseResolve(v !== undefined ? v : JSON.parse(t));
    }
    if (kind === 2) {
      const u = typeof b === 'string' ? utf8Encode(b) : b;
      return PromiseResolve(typeof b === 'string' ? u.buffer : u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength));
    }
    return PromiseResolve(bodyBytes(b));
  } catch (e) {
    return PromiseReject(e);
  }
}
function noBlob() { return PromiseReject(new TypeError('Blob is not supported in the clave sandbox')); }
function noFormData() { return PromiseReject(new TypeError('FormData is not supported in the clave sandbox')); }

// ---------------------------------------------------------------- Request
const METHOD_NORMALIZE = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT'];
const FORBIDDEN_METHODS = ['CONNECT', 'TRACE', 'TRACK'];
// Methods already in their normalized form (each passes every check below unchanged).
const KNOWN_METHODS = ObjectCreate(null);
for (const m of ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH']) KNOWN_METHODS[m] = m;
function normalizeMethod(m) {
  m = String(m);
  const known = KNOWN_METHODS[m];
  if (known !== undefined) return known;
  if (!TOKEN.test(m)) throw new TypeError(`'${m}' is not a valid HTTP method.`);
  const up = m.toUpperCase();
  if (FORBIDDEN_METHODS.includes(up)) throw new TypeError(`'${m}' HTTP method is unsupported.`);
  return METHOD_NORMALIZE.includes(up) ? up : m;
}

// The href of a Request's URL, through the URL parser behind `new URL` without loading the `url`
// chunk (the host answers null if the URL does not parse, false if it has credentials).
function requestHref(input) {
  let href;
  try { href = H.requestHref(String(input)); } catch (e) { href = null; }
  if (href === null) throw new TypeError(`Failed to parse URL from ${String(input)}`);
  if (href === false) throw new TypeError(`Request cannot be constructed from a URL that includes credentials: ${String(input)}`);
  return href;
}
// Set by `dispatch` for the one `new Request` that follows: the request as it came from the host
// (URL already parsed, headers adopted, not copied). Null at every other time.
let adoptUrl = null;
let adoptMethod = null;
let adoptHeaders = null;
let adoptBody = null;
class Request {
  #method = 'GET';
  #url;
  #headers;
  #body;
  #redirect = 'follow';
  constructor(input, init = undefined) {
    if (arguments.length < 1) throw new TypeError('Request constructor requires 1 argument');
    if (adoptUrl !== null) {
      // Taken and cleared before anything that could run program code (a setter the program
      // put on Object.prototype runs inside `new BodyState`).
      const url = adoptUrl, method = adoptMethod, headers = adoptHeaders, body = adoptBody;
      adoptUrl = adoptMethod = adoptHeaders = adoptBody = null;
      this.#url = url;
      this.#method = method;
      this.#headers = headers;
      this.#body = new BodyState(body);
      return;
    }
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
      this.#url = requestHref(input);
    }
    if (init.method !== undefined) this.#method = normalizeMethod(init.method);
    if (init.headers !== undefined) this.#headers = new Headers(init.headers);
    else if (this.#headers === undefined) this.#headers = new Headers();
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
  clone() {
    if (this.#body.used) throw new TypeError('Request.clone: Body has already been consumed.');
    const r = new Request(this.#url, {
      method: this.#method, headers: this.#headers, redirect: this.#redirect,
    });
    r.#body = new BodyState(this.#body.copy());
    return r;
  }
  static state(r) { return r.#body; }
  text() { return readBody(requestBody, this, 0); }
  json() { return readBody(requestBody, this, 1); }
  arrayBuffer() { return readBody(requestBody, this, 2); }
  bytes() { return readBody(requestBody, this, 3); }
  blob() { return noBlob(); }
  formData() { return noFormData(); }
  get bodyUsed() { return this.#body.used; }
}
tag(Request, 'Request');
const requestBody = Request.state;
delete Request.state;

// ---------------------------------------------------------------- Response
const NULL_BODY_STATUS = [101, 103, 204, 205, 304];
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
    // Plain data is serialized natively (the same text, without the generic walk).
    let s = jsonFast(data);
    if (s === undefined) s = JSON.stringify(data);
    if (s === undefined) throw new TypeError('Value is not JSON serializable');
    // As the Fetch standard's "initialize a response": status, statusText and headers from
    // `init`, then the body (JSON text is always well-formed) with its default content type.
    const r = new Response(null, init);
    if (NULL_BODY_STATUS.includes(r.#status)) throw new TypeError('Response constructor: Invalid response status code ' + r.#status);
    if (!r.#headers.has('content-type')) r.#headers.set('content-type', 'application/json');
    r.#body.bytes = s;
    return r;
  }
  static redirect(url, status = 302) { return lazy(CHUNK_EXTRA).redirect(url, status); }
  static error() { return lazy(CHUNK_EXTRA).error(); }
  get status() { return this.#status; }
  get statusText() { return this.#statusText; }
  get ok() { return this.#status >= 200 && this.#status <= 299; }
  get headers() { return this.#headers; }
  get type() { return this.#type; }
  get url() { return fetchedInfo(this, 0, ''); }
  get redirected() { return fetchedInfo(this, 1, false); }
  clone() { return lazy(CHUNK_EXTRA).responseClone(this); }
  static state(r) { return [r.#status, r.#headers, r.#body, r.#statusText, r.#type]; }
  static set(r, status, type, bytes) {
    r.#status = status;
    r.#type = type;
    r.#body = new BodyState(bytes);
  }
  static body(r) { return r.#body; }
  text() { return readBody(responseBody, this, 0); }
  json() { return readBody(responseBody, this, 1); }
  arrayBuffer() { return readBody(responseBody, this, 2); }
  bytes() { return readBody(responseBody, this, 3); }
  blob() { return noBlob(); }
  formData() { return noFormData(); }
  get bodyUsed() { return this.#body.used; }
}
tag(Response, 'Response');
const responseState = Response.state;
const responseBody = Response.body;
const responseSet = Response.set;
delete Response.state;
delete Response.body;
delete Response.set;

function integerArrays() {
  const T = typedArrays();
  return [T.Int8Array, T.Uint8Array, T.Uint8ClampedArray, T.Int16Array, T.Uint16Array, T.Int32Array, T.Uint32Array,
    T.BigInt64Array, T.BigUint64Array];
}

// ---------------------------------------------------------------- timers
// setTimeout & co. live in the `timers` chunk (lazy globals, see below).
// Called by the host when no microtask is pending: runs the earliest due timer.
// Returns 0 if a timer ran, the delay in ms to the next timer, or -1 if none is pending.
export function runTimers() {
  const t = loaded[CHUNK_TIMERS];
  return t === null ? -1 : t.runTimers();
}

// ---------------------------------------------------------------- fetch
// HTTPS to the hosts of the function's manifest, through the host function `H.fetch` (the
// `fetch` chunk). A fetched Response's `url` and `redirected` live in `fetchedMeta`.
function fetch(input, init) {
  return lazy(CHUNK_FETCH).fetch(...arguments);
}
let fetchedMeta = null;
function markFetched(r, url, redirected) {
  if (fetchedMeta === null) fetchedMeta = new intrinsic.WeakMap();
  fetchedMeta.set(r, [url, redirected]);
}
function fetchedInfo(r, i, none) {
  const m = fetchedMeta === null ? undefined : fetchedMeta.get(r);
  return m === undefined ? none : m[i];
}

// ---------------------------------------------------------------- performance (1 ms resolution)
let timeOrigin = now();
// Called by the host when an instance prepared ahead of its call starts serving it.
export function begin() { timeOrigin = now(); }
const performance = {
  now() { return now() - timeOrigin; },
  get timeOrigin() { return timeOrigin; },
};

// ---------------------------------------------------------------- lazily loaded chunks
// Indices of the chunks in the host's table (src/invoke.rs, `CHUNKS`).
const CHUNK_TEXT = 0;
const CHUNK_URL = 1;
const CHUNK_CRYPTO = 2;
const CHUNK_CLONE = 3;
const CHUNK_CONSOLE = 4;
const CHUNK_TIMERS = 5;
const CHUNK_EXTRA = 6;
const CHUNK_FETCH = 7;
const loadChunk = H.load;
const loaded = [null, null, null, null, null, null, null, null];
const CORE = {
  get H() { return host(); }, tag, toU8, wellFormed, utf8Encode, utf8Decode, domError, ArrayIsArray, isView, SymbolIterator,
  get INTEGER_ARRAYS() { return integerArrays(); }, Headers, Request, Response, loadedURL: () => loaded[CHUNK_URL],
  intrinsic,
  responseState, responseSet, lazyURL: () => lazy(CHUNK_URL), headerPairs, headerFlat,
  requestBody, markFetched, PromiseResolve, PromiseReject,
};
function lazy(i) {
  let e = loaded[i];
  if (e === null) {
    e = loadChunk(i).init(CORE);
    loaded[i] = e;
  }
  return e;
}
function loadChunkGlobal(name, i, ...v) {
  if (v.length !== 0) return defineGlobal(name, v[0]);
  const value = lazy(i)[name];
  // Becomes a plain data property; on a frozen global the accessor stays and keeps answering.
  ReflectDefineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
  return value;
}

// ---------------------------------------------------------------- globals
// In the order of the CHUNK_* indices.
H.lazyGlobals([
  ['TextEncoder', 'TextDecoder', 'atob', 'btoa'],
  ['URL', 'URLSearchParams'],
  ['crypto'],
  ['structuredClone'],
  ['console'],
  ['setTimeout', 'setInterval', 'clearTimeout', 'clearInterval'],
], loadChunkGlobal);
defineGlobal('Headers', Headers);
defineGlobal('Request', Request);
defineGlobal('Response', Response);
defineGlobal('fetch', fetch);
defineGlobal('performance', performance);
defineGlobal('self', globalThis);

// ---------------------------------------------------------------- built-in methods, instantiated ahead
// QuickJS creates the function object of a built-in method when a context first reads it. Every
// call starts from an image taken after this prelude ran, so a method first read during a call is
// created again in every call (3 % of an echo call's instructions): the methods that the
// request/response path and typical handlers read are read here once, into the image.
{
  const read = (o, names) => { for (let i = 0; i < names.length; i++) void o[names[i]]; };
  const I = intrinsic;
  read(Function.prototype, ['call', 'apply', 'bind', 'toString', Symbol.hasInstance]);
  read(Object, ['keys', 'values', 'entries', 'assign', 'freeze', 'create', 'defineProperty',
    'getPrototypeOf', 'fromEntries', 'hasOwn', 'is']);
  read(Object.prototype, ['hasOwnProperty', 'toString', 'valueOf', 'isPrototypeOf']);
  read(Array, ['isArray', 'from', 'of']);
  read(Array.prototype, ['push', 'pop', 'shift', 'unshift', 'slice', 'splice', 'concat', 'join',
    'indexOf', 'includes', 'find', 'findIndex', 'map', 'filter', 'forEach', 'reduce', 'some',
    'every', 'sort', 'reverse', 'keys', 'values', 'entries', 'fill', 'flat', 'flatMap', 'at',
    Symbol.iterator]);
  read(Object.getPrototypeOf([][Symbol.iterator]()), ['next']);
  read(String, ['fromCharCode', 'raw']);
  read(String.prototype, ['charCodeAt', 'charAt', 'codePointAt', 'indexOf', 'lastIndexOf',
    'includes', 'startsWith', 'endsWith', 'slice', 'substring', 'split', 'replace', 'replaceAll',
    'toLowerCase', 'toUpperCase', 'trim', 'trimStart', 'trimEnd', 'padStart', 'padEnd', 'repeat',
    'concat', 'at', 'match', 'toWellFormed', 'isWellFormed', 'normalize', 'localeCompare', 'toString',
    'valueOf', Symbol.iterator]);
  read(Object.getPrototypeOf(''[Symbol.iterator]()), ['next']);
  read(RegExp.prototype, ['exec', 'test', 'toString', Symbol.replace, Symbol.split, Symbol.match]);
  read(Number, ['isInteger', 'isFinite', 'isNaN', 'isSafeInteger', 'parseFloat', 'parseInt']);
  read(Number.prototype, ['toString', 'toFixed', 'valueOf']);
  read(Math, ['floor', 'ceil', 'round', 'trunc', 'min', 'max', 'abs', 'sqrt', 'pow', 'sign']);
  read(JSON, ['parse', 'stringify']);
  read(Promise, ['resolve', 'reject', 'all', 'allSettled', 'race', 'any']);
  read(Promise.prototype, ['then', 'catch', 'finally']);
  read(globalThis, ['parseInt', 'parseFloat', 'isNaN', 'isFinite', 'encodeURIComponent',
    'decodeURIComponent']);
  read(Symbol.prototype, ['toString']);
  read(I.Map.prototype, ['get', 'set', 'has', 'delete', 'forEach', 'keys', 'values', 'entries', Symbol.iterator]);
  read(I.Set.prototype, ['add', 'has', 'delete', 'forEach', 'values', Symbol.iterator]);
  read(I.ArrayBuffer.prototype, ['slice']);
  read(I.ArrayBuffer, ['isView']);
  read(Object.getPrototypeOf(I.Uint8Array.prototype), ['set', 'subarray', 'slice', 'fill', 'indexOf',
    'includes', 'join', Symbol.iterator]);
  read(I.Date, ['now']);
  read(I.Date.prototype, ['getTime', 'toISOString', 'valueOf']);
}

// ---------------------------------------------------------------- entry points used by the host
export function checkHandler(ns) {
  const d = ns.default;
  if (d === null || (typeof d !== 'object' && typeof d !== 'function')) return 'the module has no default export object';
  if (typeof d.fetch !== 'function') return 'the default export has no fetch(request, env, ctx) function';
  return null;
}

// Builds the Request and calls fetch: returns a native promise of what fetch returned (the promise
// fetch returned itself when it is a built-in one), which `finish` flattens once it settled. A
// throw becomes a rejection, as in an async function, so that the jobs queued before it still run
// (the host drives every job until the promise settles). Not an async function: awaiting fetch's
// promise here would only add an async frame and a job per call.
// `body` is null (empty), the body as a string (valid UTF-8) or true (other bytes: H.requestBytes()).
// `env` is a fresh plain object of string properties (vars and opened secrets) made by the host.
// The `ctx` argument of every call (a call starts from the image, so nothing set on it by one
// call is seen by the next).
const CALL_CTX = {
  waitUntil(p) { PromiseResolve(p).catch(() => {}); },
  passThroughOnException() {},
};
export function dispatch(ns, method, url, rawHeaders, body, env) {
  try {
    const headers = new Headers();
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      try { headers.append(rawHeaders[i], rawHeaders[i + 1]); } catch (e) { /* skip an invalid header */ }
    }
    // As `new Request(url)` parses it (with the same errors).
    const href = requestHref(url);
    // The body as it came (no default content-type, no copy); ignored for GET and HEAD.
    const m = normalizeMethod(method);
    const rb = body === null || m === 'GET' || m === 'HEAD' ? null
      : body === true ? new (typedArrays().Uint8Array)(host().requestBytes()) : body;
    adoptUrl = href;
    adoptMethod = m;
    adoptHeaders = headers;
    adoptBody = rb;
    const request = new Request(href);
    return PromiseResolve(ns.default.fetch(request, env, CALL_CTX));
  } catch (e) {
    return PromiseReject(e);
  }
}

// What fetch's promise settled to, flattened: [status, [name, value, name, value, ...],
// Uint8Array | string | null], or a string naming a bad return value. Runs after the last job
// (a job that program code running here queues, from a proxy's trap say, never runs).
export function finish(res) {
  if (!(res instanceof Response)) return lazy(CHUNK_EXTRA).describe(res);
  const st = responseState(res);
  return [st[0], headerFlat(st[1]), st[2].bytes];
}
