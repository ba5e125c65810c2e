// Differential program for fetch(): run under Node 20 and in the engine against the same local
// HTTPS server (crates/engine/src/egress/node_tests.rs). The request body is the server's base URL.
export default {
  async fetch(request) {
    const base = (await request.text()).trim();
    const r = await fetch(`${base}/rates`, { headers: { accept: 'application/json' } });
    const rates = await r.json();
    const e = await fetch(new Request(`${base}/echo?x=1`, {
      method: 'POST',
      body: JSON.stringify({ a: 1 }),
      headers: { 'content-type': 'application/json', 'x-k': 'v' },
    }));
    const echo = await e.json();
    const bytes = await fetch(`${base}/echo`, { method: 'PUT', body: new Uint8Array([104, 105]) });
    const chunked = await fetch(`${base}/chunked`);
    const followed = await fetch(`${base}/to-rates`);
    const manual = await fetch(`${base}/to-rates`, { redirect: 'manual' });
    const seeOther = await fetch(`${base}/see-other`, { method: 'POST', body: 'dropped' });
    const missing = await fetch(`${base}/nothing`);
    let loop;
    try { await fetch(`${base}/loop`); loop = 'followed forever'; } catch (err) { loop = err.name; }
    let modeError;
    try { await fetch(`${base}/to-rates`, { redirect: 'error' }); modeError = 'no error'; } catch (err) { modeError = err.name; }
    return Response.json({
      rates: [r.status, r.ok, r.statusText, r.headers.get('content-type'), rates.rates, r.redirected, r.url === `${base}/rates`],
      echo: [e.status, e.statusText, e.headers.get('x-multi'), echo.method, echo.target, echo.body],
      bytes: [bytes.status, (await bytes.json()).body],
      chunked: [chunked.status, await chunked.text()],
      followed: [followed.status, followed.redirected, followed.url === `${base}/rates`, (await followed.json()).base],
      manual: [manual.status, manual.redirected, manual.headers.get('location'), await manual.text()],
      seeOther: [seeOther.status, (await seeOther.json()).method],
      missing: [missing.status, missing.ok, await missing.text()],
      loop,
      modeError,
    });
  },
};
