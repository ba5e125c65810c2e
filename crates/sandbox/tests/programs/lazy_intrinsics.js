// Globals whose intrinsics are added on first use behave like ordinary built-ins.
const NAMES = ['Date', 'Map', 'Set', 'WeakMap', 'WeakSet', 'ArrayBuffer', 'Uint8Array', 'DataView',
  'Float64Array', 'BigInt64Array', 'Atomics', 'DOMException', 'WeakRef', 'FinalizationRegistry'];
export default {
  async fetch(request) {
    const r = {};
    r.inBefore = NAMES.map((n) => n in globalThis);
    r.ownBefore = NAMES.map((n) => Object.getOwnPropertyNames(globalThis).includes(n));
    r.enumerable = Object.keys(globalThis).filter((k) => NAMES.includes(k));
    r.types = NAMES.map((n) => typeof globalThis[n]);
    const d = Object.getOwnPropertyDescriptor(globalThis, 'Uint8Array');
    r.desc = [typeof d.value, d.writable, d.configurable, d.enumerable];
    r.date = new Date(0).toISOString();
    r.map = [...new Map([[1, 'a'], [2, 'b']]).entries()];
    r.u8 = Array.from(new Uint8Array([1, 2, 300]));
    r.dv = new DataView(new ArrayBuffer(4)).byteLength;
    r.dom = new DOMException('m', 'NotFoundError').code;
    r.bytes = Array.from(await request.clone().bytes()).slice(0, 4);
    r.ab = (await request.clone().arrayBuffer()).byteLength;
    r.text = (await request.text()).length;
    r.bom = await new Response('\ufeffhi').text();
    r.bomBytes = Array.from(await new Response('\ufeffhi').bytes());
    r.lone = Array.from(await new Response('a\ud800b').bytes());
    r.res = await new Response(new Uint8Array([104, 105])).text();
    return Response.json(r);
  },
};
