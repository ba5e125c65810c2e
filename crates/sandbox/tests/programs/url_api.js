export default {
  async fetch(request) {
    const u = new URL(request.url);
    const parts = {};
    for (const k of ['href', 'origin', 'protocol', 'username', 'password', 'host', 'hostname', 'port', 'pathname', 'search', 'hash']) parts[k] = u[k];
    const rel = new URL('../a/./b?q=1#frag', 'https://user:pw@Example.COM:8443/x/y/z').href;
    const v = new URL('http://example.com:80/p');
    v.pathname = '/new path/ü';
    v.search = 'a=1&b= 2';
    v.hash = 'top';
    v.port = '8080';
    v.hostname = 'other.example';
    const sp = v.searchParams;
    sp.append('c', 'x y&z');
    sp.set('a', '9');
    const invalid = [];
    for (const s of ['not a url', 'http://[::1', '//no-scheme']) {
      try { new URL(s); invalid.push('ok'); } catch (e) { invalid.push(e.name + ':' + e.code); }
    }
    return Response.json({
      parts, rel, v: v.href, vs: v.search, spGet: sp.get('c'), json: JSON.stringify({ u: v }),
      idn: new URL('https://münchen.de/').hostname,
      file: new URL('file:///tmp/x').href,
      canParse: [URL.canParse('https://a.b'), URL.canParse('nope')],
      ip: new URL('http://0x7f.1/').hostname,
      invalid,
      str: String(new URL('HTTPS://EXAMPLE.com/%7Efoo')),
    });
  },
};
