// clave-sandbox prelude chunk `fetch`: the global `fetch(input, init)`, loaded on its first call.
// The request is normalised by `new Request(input, init)` (method, headers, body, redirect mode),
// then the host function `H.fetch` performs the HTTPS exchange(s) synchronously (hosts checked
// against the manifest, redirects followed or not, limits applied) and answers
// [status, statusText, flatHeaders, ArrayBuffer | null, url, redirected], or throws a TypeError.
// Compiled to bytecode once per process; everything it needs from the core comes in `core`.
export function init(core) {
  const { H, Headers, Request, Response, responseSet, requestBody, headerFlat, markFetched, intrinsic, PromiseResolve, PromiseReject } = core;
  const hostFetch = H.fetch;
  const REDIRECT_MODES = ['follow', 'manual', 'error'];
  const NULL_BODY_STATUS = [101, 103, 204, 205, 304];

  function request(input, init) {
    const req = new Request(input, init);
    const redirect = req.redirect;
    if (!REDIRECT_MODES.includes(redirect)) {
      throw new TypeError(`fetch(): redirect must be "follow", "manual" or "error", not "${redirect}"`);
    }
    const flat = headerFlat(req.headers);
    const state = requestBody(req);
    const body = state.bytes === null ? null : state.take();
    return [req.method, req.url, flat, body, redirect];
  }

  function response(r, method) {
    const [status, statusText, flat, buffer, url, redirected] = r;
    const headers = new Headers();
    for (let i = 0; i + 1 < flat.length; i += 2) {
      try { headers.append(flat[i], flat[i + 1]); } catch (e) { /* skip a field Headers refuses */ }
    }
    const res = new Response(null, { status, statusText, headers });
    const empty = buffer === null || method === 'HEAD' || NULL_BODY_STATUS.includes(status);
    responseSet(res, status, 'default', empty ? null : new intrinsic.Uint8Array(buffer));
    markFetched(res, url, redirected);
    return res;
  }

  function fetch(input, init) {
    try {
      if (arguments.length < 1) throw new TypeError('fetch() requires at least 1 argument');
      const [method, url, flat, body, redirect] = request(input, init);
      return PromiseResolve(response(hostFetch(method, url, flat, body, redirect), method));
    } catch (e) {
      return PromiseReject(e);
    }
  }

  return { fetch };
}
