// clave-sandbox prelude chunk `clone`: structuredClone.
// Compiled to bytecode once per process; loaded into a context only when the program
// first touches one of its globals (see the lazy globals in prelude.js). Everything it
// needs from the core prelude comes in `core`, captured before any user code ran.
export function init(core) {
  const { domError, ArrayIsArray, isView, Request, Response, Headers, loadedURL } = core;

  // ---------------------------------------------------------------- structuredClone
  // URL objects exist only once the `url` chunk is loaded.
  function isURLObject(v) {
    const u = loadedURL();
    return u !== null && (v instanceof u.URL || v instanceof u.URLSearchParams);
  }
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
          isURLObject(v)) {
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

  return { structuredClone };
}
