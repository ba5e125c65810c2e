export default {
  async fetch(request) {
    const r = new Request('https://example.com/a?b=c', { method: 'post', headers: { 'X-A': '1' }, body: 'payload' });
    const p = new Request('https://example.com/', { method: 'patch', body: 'x' });
    const c = r.clone();
    const errs = [];
    try { new Request('/relative'); } catch (e) { errs.push(e.name); }
    try { new Request('https://example.com/', { method: 'GET', body: 'x' }); } catch (e) { errs.push(e.name); }
    try { new Request('https://example.com/', { method: 'CONNECT' }); } catch (e) { errs.push(e.name); }
    const copy = new Request(r, { headers: { 'x-b': '2' } });
    const first = await request.json();
    try { await request.text(); } catch (e) { errs.push(e.name); }
    return Response.json({
      r: [r.method, r.url, r.headers.get('content-type'), r.redirect],
      p: p.method, c: await c.text(), copy: [copy.method, copy.url, [...copy.headers], await copy.text()],
      rUsed: r.bodyUsed, errs, first: first.hello, used: request.bodyUsed,
      tags: [String(request), String(new Headers()), String(new Response())],
      form: await new Request('https://x.y/', { method: 'POST', body: new URLSearchParams('a=1&b=x y') }).text(),
      formType: new Request('https://x.y/', { method: 'POST', body: new URLSearchParams('a=1') }).headers.get('content-type'),
    });
  },
};
