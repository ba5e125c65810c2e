async function inner() {
  await null;
  throw new TypeError('boom from inner');
}
export default {
  async fetch() {
    await inner();
    return new Response('unreachable');
  },
};
