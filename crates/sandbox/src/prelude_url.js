// clave-sandbox prelude chunk `url`: URL and URLSearchParams (WHATWG parsing in Rust).
// Compiled to bytecode once per process; loaded into a context only when the program
// first touches one of its globals (see the lazy globals in prelude.js). Everything it
// needs from the core prelude comes in `core`, captured before any user code ran.
export function init(core) {
  const { H, tag, wellFormed, utf8Decode, SymbolIterator } = core;

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
    [SymbolIterator]() { return this.entries(); }
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

  return { URL, URLSearchParams };
}
