export default {
  async fetch() {
    return { status: 200, body: 'not a Response' };
  },
};
