// Differential test runner: node tests/node_runner.mjs <request.json> <module.js>...
// Prints one JSON line per module: {status, headers, body (base64)} or {error} or {bad}.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const req = JSON.parse(readFileSync(process.argv[2], 'utf8'));
for (const path of process.argv.slice(3)) {
  let out;
  try {
    const mod = await import(pathToFileURL(resolve(path)).href);
    const hasBody = req.body.length > 0 && req.method !== 'GET' && req.method !== 'HEAD';
    const request = new Request(req.url, {
      method: req.method,
      headers: req.headers,
      body: hasBody ? Buffer.from(req.body, 'utf8') : null,
    });
    let res;
    try {
      res = await mod.default.fetch(request, {}, { waitUntil() {}, passThroughOnException() {} });
    } catch (e) {
      out = { error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
    }
    if (!out) {
      if (!(res instanceof Response)) out = { bad: true };
      else {
        const body = Buffer.from(await res.arrayBuffer()).toString('base64');
        out = { status: res.status, headers: [...res.headers], body };
      }
    }
  } catch (e) {
    out = { error: `runner: ${e && e.stack}` };
  }
  console.log(JSON.stringify(out));
}
