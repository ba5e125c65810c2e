export default {
  async fetch() {
    const names = [];
    const tries = [
      () => null.x,
      () => undefinedVariable,
      () => { throw new RangeError('r'); },
      () => JSON.parse('{bad'),
      () => new Array(-1),
      () => decodeURIComponent('%'),
      () => { class A { #p; static get(o) { return o.#p; } } return A.get({}); },
    ];
    for (const t of tries) {
      try { t(); names.push('none'); } catch (e) { names.push(e.name + ':' + (e instanceof Error)); }
    }
    let rejected;
    try { await Promise.reject(new SyntaxError('s')); } catch (e) { rejected = e.message; }
    const err = new Error('outer', { cause: new Error('inner') });
    return Response.json({ names, rejected, cause: err.cause.message, custom: Object.prototype.toString.call(err) });
  },
};
