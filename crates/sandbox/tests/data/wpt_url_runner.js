// Runs the web-platform-tests URL data (urltestdata.json, setters_tests.json) through `new URL()`
// the way WPT's url-constructor, url-origin and url-setters tests do. The request body is
// `{"parsing": [...], "setters": {...}}`; the answer lists the name of every case that failed and
// counts the cases run. Names follow WPT's test titles.
function parsingCase(t) {
  const base = t.base !== null ? t.base : undefined;
  const name = `Parsing: <${t.input}> ${base !== undefined ? `against <${base}>` : 'without base'}`;
  let url;
  try {
    url = new URL(t.input, base);
  } catch (e) {
    if (t.failure && e instanceof TypeError) return [name, null];
    return [name, t.failure ? `threw ${e}, not a TypeError` : `threw ${e}`];
  }
  if (t.failure) return [name, `parsed as ${url.href}, expected a failure`];
  for (const k of ['href', 'protocol', 'username', 'password', 'host', 'hostname', 'port',
    'pathname', 'search', 'hash', 'origin']) {
    if (k in t && url[k] !== t[k]) return [name, `${k} is ${JSON.stringify(url[k])}, expected ${JSON.stringify(t[k])}`];
  }
  if ('searchParams' in t && url.searchParams.toString() !== t.searchParams) {
    return [name, `searchParams is ${JSON.stringify(url.searchParams.toString())}`];
  }
  return [name, null];
}

function setterCase(attr, t) {
  const name = `Setting <${t.href}>.${attr} = '${t.new_value}'${t.comment ? ' ' + t.comment : ''}`;
  try {
    const url = new URL(t.href);
    url[attr] = t.new_value;
    for (const k in t.expected) {
      if (url[k] !== t.expected[k]) return [name, `${k} is ${JSON.stringify(url[k])}, expected ${JSON.stringify(t.expected[k])}`];
    }
  } catch (e) {
    return [name, `threw ${e}`];
  }
  return [name, null];
}

export default {
  async fetch(request) {
    const data = JSON.parse(await request.text());
    const failures = [];
    let parsing = 0;
    let setters = 0;
    for (const t of data.parsing) {
      if (typeof t === 'string') continue;
      parsing++;
      const [name, why] = parsingCase(t);
      if (why !== null) failures.push({ name, why });
    }
    for (const attr of Object.keys(data.setters)) {
      if (attr === 'comment') continue;
      for (const t of data.setters[attr]) {
        setters++;
        const [name, why] = setterCase(attr, t);
        if (why !== null) failures.push({ name, why });
      }
    }
    return Response.json({ parsing, setters, failures });
  },
};
