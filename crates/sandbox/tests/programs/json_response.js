// Response.json of plain data (serialized natively in the sandbox) and of everything that
// needs the generic JSON.stringify (toJSON, getters, proxies, class instances, holes, cycles,
// deep nesting, lone surrogates, BigInt): the text must be exactly Node's.
const texts = async (values) => {
  const out = [];
  for (const v of values) {
    try { out.push(await Response.json(v).text()); } catch (e) { out.push(`${e.name}`); }
  }
  return out;
};
export default {
  async fetch(request) {
    const data = await request.json();
    const deep = []; let d = deep; for (let i = 0; i < 80; i++) { const n = []; d.push(n); d = n; }
    const cyc = { a: 1 }; cyc.self = cyc;
    const withGetter = { a: 1, get b() { return 2; }, c: 3 };
    const hidden = Object.defineProperty({ a: 1 }, 'h', { value: 2, enumerable: false });
    const ownToJSON = { a: 1, toJSON() { return 'own'; } };
    const hiddenToJSON = Object.defineProperty({ a: 1 }, 'toJSON', { value: () => 'hidden', enumerable: false });
    class Point { constructor() { this.x = 1; this.y = 2; } }
    const holes = [1, , 3];
    const sparse = []; sparse[3] = 'x';
    const numbers = [0, -0, 1, -1, 1.5, -2.25, 0.1, 1e21, 1e-7, 123456789012, 2 ** 53, 2 ** 53 + 2, -(2 ** 31), 2 ** 31,
      NaN, Infinity, -Infinity, Number.MAX_VALUE, Number.MIN_VALUE, 5e-324, 1 / 3];
    const strings = ['', 'plain', 'quote " back \\ slash', '\b\f\n\r\t', '\u0000\u0001\u001f\u007f', 'é ü ß €', '😀 pair',
      '\u2028\u2029', 'lone \ud800 hi', 'lone \udc00 lo', '\ud83d', 'end \ud83d'];
    const values = [
      data, null, true, false, 1, 'x', [], {}, [undefined, () => 1, Symbol('s'), null],
      { u: undefined, f() {}, s: Symbol('t'), n: null, k: 'v' },
      { 2: 'b', 1: 'a', z: 1, a: 2, '-1': 3, '01': 4 },
      numbers, strings, { [Symbol('k')]: 1, ok: 1 },
      deep, cyc, withGetter, hidden, ownToJSON, hiddenToJSON, new Point(), holes, sparse,
      Object.create(null), Object.assign(Object.create(null), { a: 1 }),
      new Proxy({ a: 1 }, {}), new Proxy([1, 2], {}), [new Date(0)], { d: new Date(0) },
      [new Number(1), new String('s'), new Boolean(false)], [1n].length, { big: 1 }, [[[[{ a: [{ b: {} }] }]]]],
      new Array(3), Object.assign([1, 2], { extra: 'x' }), { nested: { arr: [1, { x: [2, 3] }], s: 'é' } },
    ];
    const out = await texts(values);
    try { Response.json({ b: 1n }); out.push('no error'); } catch (e) { out.push(e.name); }
    // A toJSON added to the prototypes (after plain values were serialized natively) is honoured.
    Object.prototype.toJSON = function () { return 'proto'; };
    out.push(await Response.json({ a: 1 }).text());
    delete Object.prototype.toJSON;
    Array.prototype.toJSON = function () { return 'array'; };
    out.push(await Response.json([1, { a: [2] }]).text());
    delete Array.prototype.toJSON;
    Object.defineProperty(Array.prototype, '1', { get() { return 'from proto'; }, configurable: true });
    out.push(await Response.json([0, , 2]).text());
    delete Array.prototype[1];
    const r = Response.json(data, { status: 201, headers: { 'x-a': 'b' } });
    const s = Response.json('text', { headers: { 'content-type': 'text/custom' } });
    let nullStatus;
    try { Response.json({}, { status: 204 }); } catch (e) { nullStatus = e.name; }
    return Response.json({ out, status: r.status, type: r.headers.get('content-type'), xa: r.headers.get('x-a'),
      custom: s.headers.get('content-type'), ctext: await s.text(), nullStatus });
  },
};
