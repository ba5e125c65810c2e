export default {
  fetch(request) {
    const u = new URL(request.url);
    return new Response(`sync ${request.method} ${u.pathname} ${u.searchParams.get('y')}`);
  },
};
