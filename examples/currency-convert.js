// Converts an amount with the day's reference rates fetched over HTTPS (the European Central
// Bank's rates, served by frankfurter.dev). The TLS connection ends inside the engine: the host
// sees only that the function connected to api.frankfurter.dev, never the amount or the result.
//
// Deploy with the host it may reach:  clave deploy examples/currency-convert.js --outbound api.frankfurter.dev
// Input: {"amount": 120, "from": "EUR", "to": "USD"}   (optional "rates_url": another rates API
// answering {"rates": {...}}, which must also be in the manifest's outbound list)
const RATES_URL = 'https://api.frankfurter.dev/v1/latest';
const CURRENCY = /^[A-Z]{3}$/;

export default {
  async fetch(request) {
    let input;
    try {
      input = await request.json();
    } catch {
      return Response.json({ error: 'send JSON: {"amount": 120, "from": "EUR", "to": "USD"}' }, { status: 400 });
    }
    const { amount, from = 'EUR', to = 'USD', rates_url = RATES_URL } = input ?? {};
    if (typeof amount !== 'number' || !Number.isFinite(amount) || !CURRENCY.test(from) || !CURRENCY.test(to)) {
      return Response.json({ error: 'amount must be a number, from and to three-letter currency codes' }, { status: 400 });
    }
    const url = new URL(rates_url);
    url.searchParams.set('base', from);
    url.searchParams.set('symbols', to);
    let data;
    try {
      const r = await fetch(url, { headers: { accept: 'application/json' } });
      if (!r.ok) return Response.json({ error: `the rates API answered ${r.status}` }, { status: 502 });
      data = await r.json();
    } catch (e) {
      // Refused hosts, TLS failures, limits: a TypeError the function can handle.
      return Response.json({ error: `cannot reach the rates API: ${e.message}` }, { status: 502 });
    }
    const rate = data?.rates?.[to];
    if (typeof rate !== 'number') return Response.json({ error: `no rate for ${to}` }, { status: 502 });
    return Response.json({
      amount, from, to, rate,
      converted: Math.round(amount * rate * 100) / 100,
      date: data.date ?? null,
    });
  },
};
