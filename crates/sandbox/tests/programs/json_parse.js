// body.json() (parsed natively in the sandbox unless the text is invalid or unusual): values,
// key order, duplicate keys, __proto__, numbers, escapes, surrogates, nesting and errors must be
// exactly Node's.
const texts = [
  '{"a":1,"b":[true,false,null],"c":{"d":"e"}}', ' \t\n\r[1 , 2 ]\n', '"str"', '0', '-0', '1', '-1', '1.5', '1e3',
  '1E+2', '1e-7', '2.5e-324', '1e400', '-1e400', '123456789012345678901234567890', '0.1', '0.30000000000000004',
  '9007199254740993', '4.35', '17976931348623157e292', '[0, -0.0, 1.0, 100, 2147483647, 2147483648, -2147483648, -2147483649]',
  '{"2":"b","1":"a","z":1,"a":2,"-1":3,"01":4,"4294967295":5,"4294967294":6}', '{"a":1,"a":2,"b":3,"a":4}',
  '{"__proto__":{"x":1},"y":2}', '{"é":1,"Ã©":2,"\\u00e9":3}', '"\\u0041\\n\\t\\"\\\\\\/\\b\\f\\r"', '"😀 \\ud83d\\ude00"',
  '"\\ud800"', '"x\\udc00y"', '"\\ud83dx"', '"\\u00"', '"\\x41"', '"tab\there"', '[1,]', '{"a":1,}', '01', '1.', '.5',
  '+1', '-', 'tru', 'nul', '[', '{', '{"a"}', '{"a":}', '{1:2}', "{'a':1}", '', ' ', 'null x', '[1] [2]', 'NaN',
  '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]',
  '{"k":"' + 'x'.repeat(5000) + '"}', '\ufeff{"bom":true}', '{"a":[{"b":[{"c":[]}]}],"e":{}}', '"\u2028\u2029"',
];
const describe = (v) => {
  if (v === null || typeof v !== 'object') return [typeof v, Object.is(v, -0) ? '-0' : typeof v === 'string' ? v.length : v];
  if (Array.isArray(v)) return ['array', v.length, ...v.map(describe)];
  return ['object', Object.getPrototypeOf(v) === Object.prototype, ...Object.keys(v).map((k) => [k, describe(v[k])])];
};
export default {
  async fetch() {
    const out = [];
    for (const t of texts) {
      try {
        const v = await new Response(t).json();
        out.push([JSON.stringify(v), describe(v)]);
      } catch (e) {
        out.push(e.name);
      }
    }
    const r = new Request('https://a.test/', { method: 'POST', body: '{"via":"request","n":[1,2]}' });
    out.push(await r.json());
    return Response.json(out);
  },
};
