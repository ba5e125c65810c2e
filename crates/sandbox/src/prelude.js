// clave-sandbox prelude: the Web API surface, written in JavaScript on top of a
// handful of Rust host functions. Compiled to bytecode once per process and
// evaluated into every fresh context before the user's module.
//
// The host object is removed from the global scope before any user code runs;
// only the closures below keep a reference to it.
const H = globalThis.__clave_host;
delete globalThis.__clave_host;

const ObjectDefineProperty = Object.defineProperty;
const ArrayIsArray = Array.isArray;
const isView = ArrayBuffer.isView;

function defineGlobal(name, value) {
  ObjectDefineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
}

function tag(cls, name) {
  ObjectDefineProperty(cls.prototype, Symbol.toStringTag, { value: name, configurable: true });
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

// ---------------------------------------------------------------- TextEncoder / TextDecoder
class TextEncoder {
  get encoding() { return 'utf-8'; }
  encode(input = '') {
    return utf8Encode(String(input));
  }
  encodeInto(source, destination) {
    if (!(destination instanceof Uint8Array)) throw new TypeError('TextEncoder.encodeInto: destination must be a Uint8Array');
    const s = wellFormed(String(source));
    let read = 0;
    let written = 0;
    const cap = destination.length;
    for (const ch of s) {
      const cp = ch.codePointAt(0);
      const n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
      if (written + n > cap) break;
      if (n === 1) destination[written] = cp;
      else if (n === 2) {
        destination[written] = 0xc0 | (cp >> 6);
        destination[written + 1] = 0x80 | (cp & 63);
      } else if (n === 3) {
        destination[written] = 0xe0 | (cp >> 12);
        destination[written + 1] = 0x80 | ((cp >> 6) & 63);
        destination[written + 2] = 0x80 | (cp & 63);
      } else {
        destination[written] = 0xf0 | (cp >> 18);
        destination[written + 1] = 0x80 | ((cp >> 12) & 63);
        destination[written + 2] = 0x80 | ((cp >> 6) & 63);
        destination[written + 3] = 0x80 | (cp & 63);
      }
      written += n;
      read += ch.length;
    }
    return { read, written };
  }
}
tag(TextEncoder, 'TextEncoder');

const UTF8_LABELS = ['utf-8', 'utf8', 'unicode-1-1-utf-8', 'unicode11utf8', 'unicode20utf8', 'x-unicode20utf8'];
class TextDecoder {
  #fatal;
  #ignoreBOM;
  #pending = null;
  #bomSeen = false;
  constructor(label = 'utf-8', options = {}) {
    const l = String(label).trim().toLowerCase();
    if (!UTF8_LABELS.includes(l)) throw new RangeError(`The "${label}" encoding is not supported`);
    this.#fatal = Boolean(options && options.fatal);
    this.#ignoreBOM = Boolean(options && options.ignoreBOM);
  }
  get encoding() { return 'utf-8'; }
  get fatal() { return this.#fatal; }
  get ignoreBOM() { return this.#ignoreBOM; }
  decode(input, options = {}) {
    const stream = Boolean(options && options.stream);
    let bytes = input === undefined ? new Uint8Array(0) : toU8(input, 'TextDecoder.decode');
    if (this.#pending) {
      const joined = new Uint8Array(this.#pending.length + bytes.length);
      joined.set(this.#pending);
      joined.set(bytes, this.#pending.length);
      bytes = joined;
      this.#pending = null;
    }
    if (stream) {
      // keep an incomplete trailing sequence for the next call
      let i = bytes.length - 1;
      let back = 0;
      while (i >= 0 && back < 3 && (bytes[i] & 0xc0) === 0x80) { i--; back++; }
      if (i >= 0) {
        const b = bytes[i];
        const need = b >= 0xf0 && b < 0xf8 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
        if (need > 1 && bytes.length - i < need) {
          this.#pending = bytes.slice(i);
          bytes = bytes.subarray(0, i);
        }
      }
    }
    const skipBOM = !this.#ignoreBOM && !this.#bomSeen;
    const out = H.utf8Decode(bytes, this.#fatal, !skipBOM);
    if (bytes.length > 0) this.#bomSeen = stream;
    if (!stream) { this.#bomSeen = false; this.#pending = null; }
    return out;
  }
}
tag(TextDecoder, 'TextDecoder');

// ---------------------------------------------------------------- atob / btoa
function btoa(data) {
  if (arguments.length < 1) throw new TypeError('btoa requires 1 argument');
  const s = String(data);
  return H.btoa(s, s.length);
}
function atob(data) {
  if (arguments.length < 1) throw new TypeError('atob requires 1 argument');
  const s = String(data);
  const r = H.atob(s, s.length);
  if (r === null) throw domError('The string to be decoded is not correctly encoded.', 'InvalidCharacterError');
  return r;
}

// ---------------------------------------------------------------- URLSearchParams
function formEncode(s) {
  return encodeURIComponent(wellFormed(s)).replace(/[!'()~]|%20/g, (c) =>
    c === '%20' ? '+' : '%' + c.charCodeAt(0).toString(16).toUpperCase());
}
function percentDecode(s) {
  return s.replace(/(?:%[0-9A-Fa-f]{2})+/g, (m) => {
    const bytes = new Uint8Array(m.length / 3);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(m.substr(i * 3 + 1, 2), 16);
    return utf8Decode(bytes);
  });
}
function parseForm(input) {
  const list = [];
  for (const part of input.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq === -1 ? part : part.slice(0, eq);
    const value = eq === -1 ? '' : part.slice(eq + 1);
    list.push([percentDecode(name.replace(/\+/g, ' ')), percentDecode(value.replace(/\+/g, ' '))]);
  }
  return list;
}

let setSearchFromParams; // (url, serialized) => void, assigned by URL
class URLSearchParams {
  #list = [];
  #url = null;
  constructor(init = '') {
    if (init instanceof URLSearchParams) {
      this.#list = init.#list.map(([k, v]) => [k, v]);
    } else if (init !== null && typeof init === 'object' || typeof init === 'function') {
      if (typeof init[Symbol.iterator] === 'function') {
        for (const pair of init) {
          const p = [...pair];
          if (p.length !== 2) throw new TypeError('Each query pair must be an iterable [name, value] tuple');
          this.#list.push([wellFormed(String(p[0])), wellFormed(String(p[1]))]);
        }
      } else {
        for (const k of Object.keys(init)) this.#list.push([wellFormed(k), wellFormed(String(init[k]))]);
      }
    } else {
      let s = String(init);
      if (s.startsWith('?')) s = s.slice(1);
      this.#list = parseForm(s);
    }
  }
  static attach(params, url) { params.#url = url; }
  static reset(params, query) { params.#list = parseForm(query); }
  #update() {
    if (this.#url) setSearchFromParams(this.#url, this.toString());
  }
  get size() { return this.#list.length; }
  append(name, value) {
    this.#list.push([wellFormed(String(name)), wellFormed(String(value))]);
    this.#update();
  }
  delete(name, value) {
    name = String(name);
    if (value === undefined) this.#list = this.#list.filter(([k]) => k !== name);
    else { value = String(value); this.#list = this.#list.filter(([k, v]) => !(k === name && v === value)); }
    this.#update();
  }
  get(name) {
    name = String(name);
    const e = this.#list.find(([k]) => k === name);
    return e ? e[1] : null;
  }
  getAll(name) {
    name = String(name);
    return this.#list.filter(([k]) => k === name).map(([, v]) => v);
  }
  has(name, value) {
    name = String(name);
    if (value === undefined) return this.#list.some(([k]) => k === name);
    value = String(value);
    return this.#list.some(([k, v]) => k === name && v === value);
  }
  set(name, value) {
    name = wellFormed(String(name));
    value = wellFormed(String(value));
    const i = this.#list.findIndex(([k]) => k === name);
    if (i === -1) this.#list.push([name, value]);
    else {
      this.#list[i][1] = value;
      this.#list = this.#list.filter(([k], j) => j <= i || k !== name);
    }
    this.#update();
  }
  sort() {
    const indexed = this.#list.map((e, i) => [e, i]);
    indexed.sort((a, b) => (a[0][0] < b[0][0] ? -1 : a[0][0] > b[0][0] ? 1 : a[1] - b[1]));
    this.#list = indexed.map(([e]) => e);
    this.#update();
  }
  forEach(callback, thisArg) {
    if (typeof callback !== 'function') throw new TypeError('callback must be a function');
    for (let i = 0; i < this.#list.length; i++) {
      const [k, v] = this.#list[i];
      callback.call(thisArg, v, k, this);
    }
  }
  *entries() { for (let i = 0; i < this.#list.length; i++) yield [this.#list[i][0], this.#list[i][1]]; }
  *keys() { for (const [k] of this.entries()) yield k; }
  *values() { for (const [, v] of this.entries()) yield v; }
  [Symbol.iterator]() { return this.entries(); }
  toString() {
    return this.#list.map(([k, v]) => formEncode(k) + '=' + formEncode(v)).join('&');
  }
}
tag(URLSearchParams, 'URLSearchParams');
const attachParams = URLSearchParams.attach;
const resetParams = URLSearchParams.reset;
delete URLSearchParams.attach;
delete URLSearchParams.reset;

// ---------------------------------------------------------------- URL
function parseURL(url, base) {
  return base === undefined ? H.urlParse(String(url)) : H.urlParse(String(url), String(base));
}
// components: [href, origin, protocol, username, password, host, hostname, port, pathname, search, hash]
class URL {
  #c;
  #params = null;
  constructor(url, base) {
    if (arguments.length < 1) throw new TypeError('URL constructor requires 1 argument');
    const c = parseURL(url, base);
    if (c == null) {
      const e = new TypeError('Invalid URL');
      e.code = 'ERR_INVALID_URL';
      e.input = String(url);
      throw e;
    }
    this.#c = c;
  }
  static canParse(url, base) {
    return parseURL(url, base) != null;
  }
  static setSearch(u, s) {
    u.#c = H.urlSet(u.#c[0], 'search', s);
  }
  #set(which, value) {
    this.#c = H.urlSet(this.#c[0], which, String(value));
    if (which === 'search' || which === 'href') this.#syncParams();
  }
  #syncParams() {
    if (this.#params) resetParams(this.#params, this.#c[9].slice(1));
  }
  get href() { return this.#c[0]; }
  set href(v) {
    const c = parseURL(v, undefined);
    if (c == null) throw new TypeError('Invalid URL');
    this.#c = c;
    this.#syncParams();
  }
  get origin() { return this.#c[1]; }
  get protocol() { return this.#c[2]; }
  set protocol(v) { this.#set('protocol', v); }
  get username() { return this.#c[3]; }
  set username(v) { this.#set('username', v); }
  get password() { return this.#c[4]; }
  set password(v) { this.#set('password', v); }
  get host() { return this.#c[5]; }
  set host(v) { this.#set('host', v); }
  get hostname() { return this.#c[6]; }
  set hostname(v) { this.#set('hostname', v); }
  get port() { return this.#c[7]; }
  set port(v) { this.#set('port', v); }
  get pathname() { return this.#c[8]; }
  set pathname(v) { this.#set('pathname', v); }
  get search() { return this.#c[9]; }
  set search(v) { this.#set('search', v); }
  get hash() { return this.#c[10]; }
  set hash(v) { this.#set('hash', v); }
  get searchParams() {
    if (!this.#params) {
      this.#params = new URLSearchParams(this.#c[9]);
      attachParams(this.#params, this);
    }
    return this.#params;
  }
  toString() { return this.#c[0]; }
  toJSON() { return this.#c[0]; }
}
tag(URL, 'URL');
setSearchFromParams = URL.setSearch;
delete URL.setSearch;

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
  if (body instanceof URLSearchParams) return [utf8Encode(body.toString()), 'application/x-www-form-urlencoded;charset=UTF-8'];
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
      let u;
      try { u = new URL(String(input)); } catch (e) { throw new TypeError(`Failed to parse URL from ${String(input)}`); }
      if (u.username || u.password) throw new TypeError(`Request cannot be constructed from a URL that includes credentials: ${String(input)}`);
      this.#url = u.href;
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
    const u = new URL(String(url)).href;
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

// ---------------------------------------------------------------- crypto
const INTEGER_ARRAYS = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
  typeof BigInt64Array === 'function' ? BigInt64Array : Int8Array, typeof BigUint64Array === 'function' ? BigUint64Array : Uint8Array];
const DIGESTS = { 'SHA-256': 'SHA-256', 'SHA-384': 'SHA-384', 'SHA-512': 'SHA-512' };
const subtle = {
  digest(algorithm, data) {
    try {
      const name = typeof algorithm === 'string' ? algorithm : algorithm && algorithm.name;
      const alg = DIGESTS[String(name).toUpperCase()];
      if (!alg) return Promise.reject(domError('Unrecognized algorithm name', 'NotSupportedError'));
      const view = toU8(data, 'crypto.subtle.digest');
      return Promise.resolve(H.digest(alg, view));
    } catch (e) {
      return Promise.reject(e);
    }
  },
};
const crypto = {
  getRandomValues(array) {
    if (!INTEGER_ARRAYS.some((C) => array instanceof C)) {
      throw domError("The data argument must be an integer-type TypedArray", 'TypeMismatchError');
    }
    if (array.byteLength > 65536) {
      throw domError(`The ArrayBufferView's byte length (${array.byteLength}) exceeds the number of bytes of entropy available via this API (65536)`, 'QuotaExceededError');
    }
    new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(new Uint8Array(H.random(array.byteLength)));
    return array;
  },
  randomUUID() {
    const b = new Uint8Array(H.random(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = '';
    for (let i = 0; i < 16; i++) {
      h += (b[i] < 16 ? '0' : '') + b[i].toString(16);
      if (i === 3 || i === 5 || i === 7 || i === 9) h += '-';
    }
    return h;
  },
  subtle,
};

// ---------------------------------------------------------------- structuredClone
function structuredClone(value, options) {
  const seen = new Map();
  const clone = (v) => {
    if (v === null || (typeof v !== 'object' && typeof v !== 'function' && typeof v !== 'symbol')) return v;
    if (typeof v === 'symbol') throw domError(`${String(v)} could not be cloned.`, 'DataCloneError');
    if (typeof v === 'function') throw domError(`${v.toString().slice(0, 60)} could not be cloned.`, 'DataCloneError');
    if (seen.has(v)) return seen.get(v);
    let out;
    if (ArrayIsArray(v)) {
      out = new Array(v.length);
      seen.set(v, out);
      for (const k of Object.keys(v)) out[k] = clone(v[k]);
      return out;
    }
    if (v instanceof Date) { out = new Date(v.getTime()); seen.set(v, out); return out; }
    if (v instanceof RegExp) { out = new RegExp(v.source, v.flags); seen.set(v, out); return out; }
    if (v instanceof Boolean) { out = new Boolean(v.valueOf()); seen.set(v, out); return out; }
    if (v instanceof Number) { out = new Number(v.valueOf()); seen.set(v, out); return out; }
    if (v instanceof String) { out = new String(v.valueOf()); seen.set(v, out); return out; }
    if (v instanceof ArrayBuffer) { out = v.slice(0); seen.set(v, out); return out; }
    if (isView(v)) {
      const buf = clone(v.buffer);
      const C = v.constructor;
      out = v instanceof DataView ? new DataView(buf, v.byteOffset, v.byteLength)
        : new C(buf, v.byteOffset, v.length);
      seen.set(v, out);
      return out;
    }
    if (v instanceof Map) {
      out = new Map();
      seen.set(v, out);
      for (const [k, x] of v) out.set(clone(k), clone(x));
      return out;
    }
    if (v instanceof Set) {
      out = new Set();
      seen.set(v, out);
      for (const x of v) out.add(clone(x));
      return out;
    }
    if (v instanceof Error) {
      const ctors = { EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError };
      const C = ctors[v.name] || Error;
      out = new C(v.message);
      seen.set(v, out);
      if (v.stack !== undefined) out.stack = String(v.stack);
      if ('cause' in v) out.cause = clone(v.cause);
      return out;
    }
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) {
      if (v instanceof Promise || v instanceof WeakMap || v instanceof WeakSet ||
        v instanceof Request || v instanceof Response || v instanceof Headers ||
        v instanceof URL || v instanceof URLSearchParams) {
        throw domError(`#<${proto.constructor && proto.constructor.name}> could not be cloned.`, 'DataCloneError');
      }
    }
    out = {};
    seen.set(v, out);
    for (const k of Object.keys(v)) out[k] = clone(v[k]);
    return out;
  };
  if (arguments.length < 1) throw new TypeError('structuredClone requires 1 argument');
  return clone(value);
}

// ---------------------------------------------------------------- console
function inspect(v, depth, seen) {
  switch (typeof v) {
    case 'string': return depth === 0 ? v : "'" + v.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n') + "'";
    case 'number': return Object.is(v, -0) ? '-0' : String(v);
    case 'bigint': return String(v) + 'n';
    case 'undefined': return 'undefined';
    case 'boolean': return String(v);
    case 'symbol': return v.toString();
    case 'function': return `[Function: ${v.name || '(anonymous)'}]`;
  }
  if (v === null) return 'null';
  if (seen.includes(v)) return '[Circular]';
  if (v instanceof Error) return v.stack ? `${v.name}: ${v.message}\n${v.stack}`.trimEnd() : `${v.name}: ${v.message}`;
  if (v instanceof Date) return isNaN(v) ? 'Invalid Date' : v.toISOString();
  if (v instanceof RegExp) return String(v);
  if (depth > 2) return ArrayIsArray(v) ? '[Array]' : '[Object]';
  const next = seen.concat([v]);
  const MAX = 100;
  if (ArrayIsArray(v) || isView(v)) {
    const items = [];
    for (let i = 0; i < Math.min(v.length, MAX); i++) items.push(inspect(v[i], depth + 1, next));
    if (v.length > MAX) items.push(`... ${v.length - MAX} more items`);
    const prefix = ArrayIsArray(v) ? '' : `${v.constructor.name}(${v.length}) `;
    return items.length ? `${prefix}[ ${items.join(', ')} ]` : `${prefix}[]`;
  }
  if (v instanceof Map) {
    const items = [];
    for (const [k, x] of v) { if (items.length >= MAX) break; items.push(`${inspect(k, depth + 1, next)} => ${inspect(x, depth + 1, next)}`); }
    return `Map(${v.size}) {${items.length ? ' ' + items.join(', ') + ' ' : ''}}`;
  }
  if (v instanceof Set) {
    const items = [];
    for (const x of v) { if (items.length >= MAX) break; items.push(inspect(x, depth + 1, next)); }
    return `Set(${v.size}) {${items.length ? ' ' + items.join(', ') + ' ' : ''}}`;
  }
  if (v instanceof URL) return `URL '${v.href}'`;
  if (v instanceof Headers) return `Headers { ${[...v].map(([k, x]) => `'${k}': '${x}'`).join(', ')} }`;
  const keys = Object.keys(v);
  const items = [];
  for (const k of keys.slice(0, MAX)) {
    const key = /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(k) ? k : inspect(k, 1, next);
    let val;
    try { val = inspect(v[k], depth + 1, next); } catch (e) { val = '[Getter threw]'; }
    items.push(`${key}: ${val}`);
  }
  if (keys.length > MAX) items.push(`... ${keys.length - MAX} more items`);
  const proto = Object.getPrototypeOf(v);
  const name = proto === null ? '[Object: null prototype] ' :
    proto !== Object.prototype && proto.constructor && proto.constructor.name ? proto.constructor.name + ' ' : '';
  return items.length ? `${name}{ ${items.join(', ')} }` : `${name}{}`;
}
function format(args) {
  let out = '';
  let i = 0;
  if (typeof args[0] === 'string' && args.length > 1 && args[0].includes('%')) {
    i = 1;
    out = args[0].replace(/%[sdifjoOc%]/g, (m) => {
      if (m === '%%') return '%';
      if (i >= args.length) return m;
      const a = args[i++];
      switch (m) {
        case '%s': return typeof a === 'string' ? a : inspect(a, 1, []);
        case '%d': case '%i': return typeof a === 'bigint' ? `${a}n` : String(m === '%i' ? parseInt(a) : Number(a));
        case '%f': return String(parseFloat(a));
        case '%j': try { return JSON.stringify(a); } catch (e) { return '[Circular]'; }
        case '%c': return '';
        default: return inspect(a, 1, []);
      }
    });
  } else if (args.length > 0) {
    out = inspect(args[0], 0, []);
    i = 1;
  }
  for (; i < args.length; i++) out += ' ' + inspect(args[i], 0, []);
  return out;
}
const counts = new Map();
const timersStarted = new Map();
let groupIndent = '';
function emit(level, args) {
  const left = H.consoleLeft();
  if (left <= 0) return;
  let text = format(args);
  if (groupIndent) text = text.split('\n').map((l) => groupIndent + l).join('\n');
  H.log(level, text.length > left ? text.slice(0, left) : text);
}
const console = {
  log(...a) { emit('log', a); },
  info(...a) { emit('info', a); },
  debug(...a) { emit('debug', a); },
  warn(...a) { emit('warn', a); },
  error(...a) { emit('error', a); },
  trace(...a) { emit('trace', ['Trace:' + (a.length ? ' ' + format(a) : ''), new Error().stack || '']); },
  dir(v) { emit('log', [v]); },
  table(v) { emit('log', [v]); },
  assert(cond, ...a) { if (!cond) emit('error', ['Assertion failed' + (a.length ? ': ' + format(a) : '')]); },
  count(label = 'default') { const n = (counts.get(label) || 0) + 1; counts.set(label, n); emit('info', [`${label}: ${n}`]); },
  countReset(label = 'default') { counts.delete(label); },
  group(...a) { if (a.length) emit('log', a); groupIndent += '  '; },
  groupCollapsed(...a) { if (a.length) emit('log', a); groupIndent += '  '; },
  groupEnd() { groupIndent = groupIndent.slice(2); },
  time(label = 'default') { timersStarted.set(label, Date.now()); },
  timeLog(label = 'default', ...a) { const t = timersStarted.get(label); if (t !== undefined) emit('info', [`${label}: ${Date.now() - t}ms`, ...a]); },
  timeEnd(label = 'default') { const t = timersStarted.get(label); if (t !== undefined) { timersStarted.delete(label); emit('info', [`${label}: ${Date.now() - t}ms`]); } },
};

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
const timeOrigin = Date.now();
const performance = {
  now() { return Date.now() - timeOrigin; },
  get timeOrigin() { return timeOrigin; },
};

// ---------------------------------------------------------------- globals
defineGlobal('TextEncoder', TextEncoder);
defineGlobal('TextDecoder', TextDecoder);
defineGlobal('atob', atob);
defineGlobal('btoa', btoa);
defineGlobal('URL', URL);
defineGlobal('URLSearchParams', URLSearchParams);
defineGlobal('Headers', Headers);
defineGlobal('Request', Request);
defineGlobal('Response', Response);
defineGlobal('crypto', crypto);
defineGlobal('structuredClone', structuredClone);
defineGlobal('console', console);
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
