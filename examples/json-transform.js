// A JSON transform: normalise an order and compute its totals.
//
//   clave deploy examples/json-transform.js --name json-transform
//   clave invoke json-transform --data '{"customer":" Ada Lovelace ","items":[{"sku":"a-1","qty":2,"price":"9.50"},{"sku":"b-2","qty":1,"price":12}],"currency":"eur"}'
export default {
  async fetch(request) {
    let order;
    try {
      order = await request.json();
    } catch {
      return Response.json({ error: "send an order as JSON" }, { status: 400 });
    }
    const items = Array.isArray(order.items) ? order.items : [];
    const lines = items.map((it) => {
      const qty = Math.max(0, Math.trunc(Number(it.qty) || 0));
      const cents = Math.round(Number(it.price) * 100) || 0;
      return { sku: String(it.sku ?? "").toUpperCase(), qty, unit_cents: cents, total_cents: qty * cents };
    });
    const subtotal = lines.reduce((s, l) => s + l.total_cents, 0);
    return Response.json({
      customer: String(order.customer ?? "").trim().replace(/\s+/g, " "),
      currency: String(order.currency ?? "usd").toUpperCase(),
      lines,
      item_count: lines.reduce((s, l) => s + l.qty, 0),
      subtotal_cents: subtotal,
    });
  },
};
