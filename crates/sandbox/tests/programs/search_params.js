export default {
  async fetch() {
    const p = new URLSearchParams('?a=1&b=2&a=3&c=%F0%9F%98%80&d=x+y&e=%zz&&f');
    const out = {
      all: [...p], a: p.getAll('a'), size: p.size, c: p.get('c'), d: p.get('d'), e: p.get('e'),
      has: [p.has('f'), p.has('a', '3'), p.has('a', '4')],
    };
    p.delete('a', '1');
    p.sort();
    out.sorted = p.toString();
    const q = new URLSearchParams({ x: '1 2', 'y!': "'()~*-._" });
    out.q = q.toString();
    const r = new URLSearchParams([['k', 'v'], ['k', 'w']]);
    r.set('k', 'z');
    out.r = r.toString();
    const keys = [];
    new URLSearchParams('z=1&y=2').forEach((v, k) => keys.push(k + v));
    out.keys = keys;
    return new Response(new URLSearchParams({ done: 'yes', list: out.all.join('|') }), {
      headers: { 'x-out': JSON.stringify(out).slice(0, 0) || 'x' },
    }).text().then((t) => Response.json({ t, out }));
  },
};
