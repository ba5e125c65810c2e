export default {
  async fetch(request) {
    const text = await request.text();
    const out = text.toUpperCase().split('').reverse().join('') + '\nünïcödé ✓ 😀';
    return new Response(out, {
      status: 201,
      statusText: 'Created',
      headers: { 'X-Length': String(text.length), 'Content-Type': 'text/plain; charset=utf-8' },
    });
  },
};
