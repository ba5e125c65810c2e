// clave-sandbox prelude chunk `extra`: the rarely used parts of the core prelude (adding an
// intrinsic group, `Response.redirect`/`error`/`clone`, describing a bad return value), kept
// out of every context's core to make a fresh context cheaper. It defines no globals: the core
// loads it on first use of one of these paths. Compiled to bytecode once per process; everything
// it needs from the core prelude comes in `core`, captured before any user code ran.
export function init(core) {
  const {
    INTRINSIC_GLOBALS, addIntrinsic, intrinsic, ObjectGetOwnPropertyDescriptor, ObjectDefineProperty,
    ReflectDeleteProperty, Response, responseState, responseSet, lazyURL, headerPairs,
  } = core;

  // Our lazy accessors use one native function as getter and setter (`H.lazyGlobals`).
  function isLazyAccessor(d) {
    return d !== undefined && d.get !== undefined && d.get === d.set;
  }
  // Adds intrinsic group `i` (once: the core checks and records it).
  function ensureIntrinsic(i) {
    const names = INTRINSIC_GLOBALS[i];
    // QuickJS defines the globals afresh (and refuses to add `Atomics` over an existing property):
    // remove them first, and put back what the program defined (or deleted) afterwards.
    const kept = [];
    for (let k = 0; k < names.length; k++) {
      const d = ObjectGetOwnPropertyDescriptor(globalThis, names[k]);
      if (!isLazyAccessor(d)) kept.push(names[k], d);
      ReflectDeleteProperty(globalThis, names[k]);
    }
    try {
      addIntrinsic(i);
      for (let k = 0; k < names.length; k++) {
        const d = ObjectGetOwnPropertyDescriptor(globalThis, names[k]);
        intrinsic[names[k]] = d !== undefined && d.get === undefined ? d.value : undefined;
      }
    } finally {
      for (let k = 0; k < kept.length; k += 2) {
        if (kept[k + 1] === undefined) ReflectDeleteProperty(globalThis, kept[k]);
        else if (ObjectGetOwnPropertyDescriptor(globalThis, kept[k])?.configurable !== false) ObjectDefineProperty(globalThis, kept[k], kept[k + 1]);
      }
    }
  }

  const REDIRECT_STATUS = [301, 302, 303, 307, 308];
  function redirect(url, status) {
    const u = new (lazyURL().URL)(String(url)).href;
    if (!REDIRECT_STATUS.includes(status)) throw new RangeError(`Invalid status code ${status}`);
    return new Response(null, { status, headers: { location: u } });
  }
  function error() {
    const r = new Response(null, { status: 200 });
    responseSet(r, 0, 'error', null);
    return r;
  }
  function responseClone(self) {
    const [status, headers, body, statusText, type] = responseState(self);
    if (body.used) throw new TypeError('Response.clone: Body has already been consumed.');
    const r = new Response(null, { status: status === 0 ? 200 : status, statusText, headers });
    responseSet(r, status, type, body.copy());
    return r;
  }

  // Headers iteration: sorted pairs, `set-cookie` values separately.
  function headersForEach(h, callback, thisArg) {
    if (typeof callback !== 'function') throw new TypeError('Headers.forEach: callback must be a function');
    for (const [k, v] of headerPairs(h)) callback.call(thisArg, v, k, h);
  }
  // `which`: 0 entries, 1 keys, 2 values.
  function* headersIterate(h, which) {
    for (const p of headerPairs(h)) yield which === 0 ? p : p[which - 1];
  }

  function describe(v) {
    if (v === null) return 'null';
    if (typeof v !== 'object') return typeof v;
    const p = Object.getPrototypeOf(v);
    return p && p.constructor && typeof p.constructor.name === 'string' ? `object (${p.constructor.name})` : 'object';
  }

  return { ensureIntrinsic, redirect, error, responseClone, describe, headersForEach, headersIterate };
}
