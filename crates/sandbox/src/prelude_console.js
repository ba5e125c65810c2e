// clave-sandbox prelude chunk `console`: console (captured per call, never printed).
// Compiled to bytecode once per process; loaded into a context only when the program
// first touches one of its globals (see the lazy globals in prelude.js). Everything it
// needs from the core prelude comes in `core`, captured before any user code ran.
export function init(core) {
  const { H, ArrayIsArray, isView, Headers, loadedURL } = core;

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
    const u = loadedURL();
    if (u !== null && v instanceof u.URL) return `URL '${v.href}'`;
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

  return { console };
}
