const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export default {
  async fetch() {
    const order = [];
    setTimeout(() => order.push('timeout0'), 0);
    queueMicrotask(() => order.push('micro'));
    Promise.resolve().then(() => order.push('then'));
    order.push('sync');
    await sleep(5);
    const t = setTimeout(() => order.push('cancelled'), 1);
    clearTimeout(t);
    let ticks = 0;
    await new Promise((resolve) => {
      const i = setInterval(() => { ticks++; if (ticks === 3) { clearInterval(i); resolve(); } }, 1);
    });
    const all = await Promise.all([1, sleep(2).then(() => 2), (async () => 3)()]);
    const settled = await Promise.allSettled([Promise.reject(new Error('no')), 1]);
    const race = await Promise.race([sleep(20).then(() => 'slow'), sleep(1).then(() => 'fast')]);
    let fetchErr;
    try { await fetch('https://example.com/'); } catch (e) { fetchErr = e.name; }
    await sleep(3);
    return Response.json({ order, ticks, all, settled: settled.map((s) => s.status), race, fetchErr });
  },
};
