// clave-sandbox prelude chunk `timers`: setTimeout, setInterval, clearTimeout, clearInterval.
// Compiled to bytecode once per process; loaded into a context only when the program
// first touches one of its globals (see the lazy globals in prelude.js). Everything it
// needs from the core prelude comes in `core`, captured before any user code ran. The core's
// `runTimers` entry point (called by the host's job loop) forwards here once this is loaded.
export function init(core) {
  const now = core.H.now;
  const ObjectCreate = Object.create;
  const NumberIsInteger = Number.isInteger;
  const MathFloor = Math.floor;

  // id -> { cb, args, at, every }; integer keys iterate in ascending (= creation) order.
  const timers = ObjectCreate(null);
  let timerCount = 0;
  const MAX_TIMERS = 10000;
  let timerSeq = 0;
  function addTimer(cb, ms, args, repeat) {
    if (typeof cb !== 'function') throw new TypeError('The "callback" argument must be of type function');
    if (timerCount >= MAX_TIMERS) throw new RangeError(`too many pending timers (limit ${MAX_TIMERS})`);
    let delay = Number(ms);
    if (!(delay >= 1 && delay <= 2147483647)) delay = repeat ? 1 : 0;
    delay = MathFloor(delay);
    const id = ++timerSeq;
    timers[id] = { cb, args, at: now() + delay, every: repeat ? delay : 0 };
    timerCount++;
    return id;
  }
  function setTimeout(cb, ms = 0, ...args) { return addTimer(cb, ms, args, false); }
  function setInterval(cb, ms = 0, ...args) { return addTimer(cb, ms, args, true); }
  function clearTimer(id) {
    const n = typeof id === 'number' ? id : Number(id);
    if (NumberIsInteger(n) && n > 0 && timers[n] !== undefined) {
      delete timers[n];
      timerCount--;
    }
  }

  // Runs the earliest due timer. Returns 0 if a timer ran, the delay in ms to the next timer, or
  // -1 if none is pending.
  function runTimers() {
    if (timerCount === 0) return -1;
    let bestId = 0;
    let best = null;
    for (const id in timers) {
      const t = timers[id];
      if (best === null || t.at < best.at) { best = t; bestId = id; }
    }
    const t = now();
    if (best.at > t) return best.at - t;
    if (best.every) best.at = t + best.every;
    else {
      delete timers[bestId];
      timerCount--;
    }
    best.cb(...best.args);
    return 0;
  }

  return { setTimeout, setInterval, clearTimeout: clearTimer, clearInterval: clearTimer, runTimers };
}
