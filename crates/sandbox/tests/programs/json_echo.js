export default {
  async fetch(request, env, ctx) {
    const data = await request.json();
    return Response.json({
      method: request.method,
      url: request.url,
      contentType: request.headers.get('content-type'),
      got: data,
      keys: Object.keys(data).sort(),
      env: typeof env,
      waitUntil: typeof ctx.waitUntil,
    });
  },
};
