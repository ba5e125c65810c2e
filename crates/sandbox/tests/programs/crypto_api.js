const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
export default {
  async fetch(request) {
    const body = new Uint8Array(await request.arrayBuffer());
    const d = {};
    for (const alg of ['SHA-256', 'SHA-384', 'SHA-512', 'sha-256']) d[alg] = hex(await crypto.subtle.digest(alg, body));
    d.obj = hex(await crypto.subtle.digest({ name: 'SHA-256' }, new TextEncoder().encode('')));
    d.view = hex(await crypto.subtle.digest('SHA-256', new DataView(body.buffer, 2, 5)));
    const arr = crypto.getRandomValues(new Uint32Array(8));
    const errs = [];
    try { crypto.getRandomValues(new Float64Array(2)); } catch (e) { errs.push(e.name); }
    try { crypto.getRandomValues(new Uint8Array(70000)); } catch (e) { errs.push(e.name); }
    try { await crypto.subtle.digest('MD5', body); } catch (e) { errs.push(e.name); }
    const uuid = crypto.randomUUID();
    return Response.json({
      d, randLen: arr.length, same: arr === crypto.getRandomValues(arr), errs,
      uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(uuid),
      differ: crypto.randomUUID() !== uuid,
    });
  },
};
