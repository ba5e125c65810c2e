// `stack` is a string that names the functions an error went through, also for errors the
// engine throws (the prelude's use of `Error.prepareStackTrace` must not leak into user code).
// QuickJS's `stack` has no `Name: message` first line, so that line is not compared.
function inner() { return new Error('deep'); }
function outer() { return inner(); }
export default {
  async fetch() {
    const e = outer();
    const lines = String(e.stack).split('\n');
    let thrown;
    try { null.x; } catch (err) { thrown = typeof err.stack; }
    return Response.json({
      type: typeof e.stack,
      inner: lines.some((l) => /\bat inner\b/.test(l)),
      outer: lines.some((l) => /\bat outer\b/.test(l)),
      thrown,
    });
  },
};
