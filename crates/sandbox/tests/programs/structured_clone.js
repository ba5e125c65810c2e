export default {
  async fetch() {
    const a = { n: 1, s: 'x', d: new Date(0), m: new Map([[1, { k: 'v' }]]), set: new Set([1, 2]), arr: [1, [2, 3]], u8: new Uint8Array([1, 2, 3]), re: /ab+c/gi };
    a.self = a;
    const b = structuredClone(a);
    const errs = [];
    try { structuredClone(() => 1); } catch (e) { errs.push(e.name); }
    try { structuredClone({ f: Symbol('x') }); } catch (e) { errs.push(e.name); }
    const e2 = structuredClone(new RangeError('bad'));
    return Response.json({
      distinct: b !== a && b.m !== a.m && b.arr[1] !== a.arr[1],
      cycle: b.self === b, date: b.d.toISOString(), map: [...b.m], set: [...b.set], arr: b.arr,
      u8: Array.from(b.u8), u8type: b.u8.constructor.name, re: [b.re.source, b.re.flags],
      err: [e2.name, e2.message, e2 instanceof RangeError], errs,
      prim: [structuredClone(5), structuredClone('s'), structuredClone(null), structuredClone(undefined) === undefined],
    });
  },
};
