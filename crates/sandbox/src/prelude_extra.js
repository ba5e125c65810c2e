// clave-sandbox prelude chunk `extra`: the rarely used parts of the core prelude
// (`Response.redirect`/`error`/`clone`, describing a bad return value, Headers iteration), kept
// out of every context's core to make a fresh context cheaper. It defines no globals: the core
// loads it on first use of one of these paths. Compiled to bytecode once per process; everything
// it needs from the core prelude comes in `core`, captured before any user code ran.
export function init(core) {
  const { Response, responseState, responseSet, lazyURL, headerPairs } = core;

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

  return { redirect, error, responseClone, describe, headersForEach, headersIterate };
}
