export default {
  async fetch(request) {
    const seen = [];
    for (const [k, v] of request.headers) seen.push(`${k}=${v}`);
    const h = new Headers([['X-B', ' two '], ['x-a', 'one']]);
    h.append('X-A', 'uno');
    h.set('x-c', '3');
    h.delete('x-b');
    const list = [];
    h.forEach((v, k) => list.push([k, v]));
    const bad = [];
    try { h.set('bad name', 'x'); } catch (e) { bad.push(e.name); }
    try { new Headers([['only-one']]); } catch (e) { bad.push(e.name); }
    const out = new Headers({ 'content-type': 'application/json', 'X-Custom': 'yes' });
    out.append('Set-Cookie', 'a=1');
    out.append('Set-Cookie', 'b=2');
    return new Response(JSON.stringify({
      seen, list, bad,
      has: [h.has('X-A'), h.has('x-b')],
      get: [h.get('x-a'), h.get('missing')],
      keys: [...h.keys()], values: [...h.values()],
      cookies: out.getSetCookie(),
      tag: Object.prototype.toString.call(h),
    }), { headers: out });
  },
};
