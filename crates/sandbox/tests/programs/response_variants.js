export default {
  async fetch(request) {
    const r1 = new Response(new Uint8Array([104, 105]));
    const r2 = new Response(null, { status: 204 });
    const r3 = Response.redirect('https://example.com/next', 307);
    const r4 = new Response('abc', { status: 404, statusText: 'Nope' });
    const c = r4.clone();
    const errs = [];
    try { new Response('x', { status: 204 }); } catch (e) { errs.push(e.name); }
    try { new Response('x', { status: 99 }); } catch (e) { errs.push(e.name); }
    try { Response.json(undefined); } catch (e) { errs.push(e.name); }
    const t4 = await r4.text();
    try { await r4.text(); } catch (e) { errs.push(e.name); }
    const buf = await request.clone().arrayBuffer();
    const j = await Response.json({ a: 1 }, { status: 202, headers: { 'x-y': 'z' } });
    return new Response(new TextEncoder().encode(JSON.stringify({
      r1: [await r1.text(), r1.headers.get('content-type'), r1.ok, r1.status, r1.statusText],
      r2: [r2.status, r2.ok, await r2.text()],
      r3: [r3.status, r3.headers.get('location')],
      r4: [t4, r4.status, r4.statusText, r4.ok, r4.bodyUsed, await c.text()],
      j: [j.status, [...j.headers], await j.json()],
      errs, buflen: buf.byteLength, bodyUsed: request.bodyUsed,
      type: new Response().type, err: [Response.error().status, Response.error().type],
    })).buffer, { status: 200, headers: [['content-type', 'application/json'], ['x-multi', 'a'], ['X-Multi', 'b']] });
  },
};
