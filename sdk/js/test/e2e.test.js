// The SDK against a real `clave dev`: connect (verify), invoke, and every refusal the issue asks
// for (a tampered bundle, a wrong measurement, a simulated TEE it was not told to accept).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import {
  AttestationError,
  Clave,
  FunctionThrewError,
  GatewayError,
  HashRefusedError,
  InvalidInputError,
  TrustPolicy,
  b64urlDecode,
  b64urlEncode,
  decodeKeyConfig,
  decodeResponse,
  encapsulateRequest,
  encodeRequest,
} from "../dist/index.js";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { REPO, recordSkip } from "./helpers.js";
import { CLAVE_BIN, devMeasurements, missingBinary, startDev } from "./platform.js";

const run = promisify(execFile);

const skip = recordSkip("SDK against a real clave dev (sdk/js)", missingBinary());

describe("SDK against a real clave dev", { skip }, () => {
  let dev, m, hello, trust;

  before(async () => {
    dev = await startDev();
    m = await devMeasurements();
    trust = TrustPolicy.insecureDev(m.kds, [m.engine]);
    hello = await dev.deploy(path.join(REPO, "examples/hello.js"), "hello");
  });

  after(async () => {
    await dev?.stop();
  });

  test("connect verifies the simulated platform and says it is insecure", async () => {
    const clave = await Clave.connect(dev.url, { trust });
    const a = clave.attestation();
    assert.equal(a.kind, "insecure_simulated");
    assert.equal(a.insecure, true);
    assert.equal(a.measurement, m.kds);
    assert.equal(a.codeKey.policy.measurements[0], m.engine);
    assert.ok(a.invokeKeys.length >= 1);
    assert.match(a.describe()[0], /INSECURE/);
  });

  test("cross-check: the SDK's verification says what the Rust SDK's says (`clave attest --json`)", async () => {
    const { stdout } = await run(CLAVE_BIN, ["attest", "--json"], { env: dev.env });
    const rust = JSON.parse(stdout);
    const a = (await Clave.connect(dev.url, { trust })).attestation();
    assert.equal(a.kind, rust.kds.kind);
    assert.equal(a.measurement, rust.kds.measurement);
    assert.deepEqual(a.tcb, rust.kds.tcb);
    assert.equal(a.insecure, rust.insecure);
    assert.equal(a.identityPublicKey, rust.identity_public_key);
    // The same sentences, spec ids included (so canonical key specs hash alike), but for the nonces.
    const noNonce = (lines, nonce) => lines.map((l) => l.replace(nonce, "<nonce>"));
    assert.deepEqual(noNonce(a.describe(), a.nonce), noNonce(rust.statements, rust.nonce));
  });

  test("invoke returns the decrypted answer as a standard Response", async () => {
    const clave = await Clave.connect(dev.url, { trust });
    const t0 = performance.now();
    const resp = await clave.invoke("default", "hello", { json: { name: "Ada" }, codeHash: hello.code_hash });
    assert.ok(resp instanceof Response);
    assert.equal(resp.status, 200);
    const body = await resp.json();
    assert.equal(body.greeting, "Hello, Ada!");
    console.log(`invoke round trip: ${(performance.now() - t0).toFixed(1)} ms`);
    // A second call reuses the verified keys (and the encapsulation prepared during the first).
    const again = await clave.invoke("default", "hello", { body: '{"name":"Grace"}', codeHash: hello.code_hash });
    assert.equal((await again.json()).greeting, "Hello, Grace!");
    // Calls made at once share nothing: each seals its own request (one of them the spare) and
    // opens its own answer. A shared context would be refused ("seals one message only") or would
    // be refused by the engine as a replay.
    const names = ["Lin", "Mae", "Ola", "Per", "Qiu"];
    const answers = await Promise.all(
      names.map((name) => clave.invoke("default", "hello", { json: { name }, codeHash: hello.code_hash })),
    );
    assert.deepEqual(
      await Promise.all(answers.map(async (r) => (await r.json()).greeting)),
      names.map((n) => `Hello, ${n}!`),
    );
  });

  // Interop: a client that builds the RFC 9458 + RFC 9292 request itself, from the gateway's
  // RFC 9540 key list, and writes the inner `date` header the way HTTP clients do (an RFC 9110
  // IMF-fixdate, `Date.prototype.toUTCString()`), not as unix seconds.
  async function invokeWithDate(date) {
    const list = new Uint8Array(await (await fetch(`${dev.url}/.well-known/ohttp-gateway`)).arrayBuffer());
    const len = (list[0] << 8) | list[1];
    const config = decodeKeyConfig(list.subarray(2, 2 + len));
    const request = encodeRequest({
      method: "POST",
      scheme: "https",
      authority: "clave",
      path: "/default/hello",
      headers: [["clave-code-hash", hello.code_hash], ["date", date], ["content-type", "application/json"]],
      body: new TextEncoder().encode('{"name":"Ada"}'),
    });
    const { encRequest, opener } = await encapsulateRequest(config, request);
    const resp = await fetch(`${dev.url}/v1/projects/default/functions/hello/invoke`, {
      method: "POST",
      headers: { "content-type": "message/ohttp-req" },
      body: encRequest,
    });
    assert.equal(resp.status, 200, "the gateway relays the sealed answer");
    const answer = decodeResponse(await opener.open(new Uint8Array(await resp.arrayBuffer())));
    return { status: answer.status, headers: answer.headers, body: new TextDecoder().decode(answer.body) };
  }

  test("interop: the inner `date` as an RFC 9110 IMF-fixdate is accepted", async () => {
    const date = new Date().toUTCString();
    assert.match(date, /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    const answer = await invokeWithDate(date);
    assert.equal(answer.status, 200, answer.body);
    assert.equal(JSON.parse(answer.body).greeting, "Hello, Ada!");
  });

  test("interop: an IMF-fixdate an hour old is refused as stale (so it was read, not ignored)", async () => {
    const answer = await invokeWithDate(new Date(Date.now() - 3_600_000).toUTCString());
    assert.ok(answer.headers.some(([n]) => n === "clave-error"), answer.body);
    assert.equal(JSON.parse(answer.body).type, "urn:clave:error:stale-date");
  });

  test("a simulated TEE is refused unless the trust policy asks for it", async () => {
    const real = TrustPolicy.of(
      { accepted_kinds: ["sev_snp"], measurements: [m.kds] },
      { accepted_kinds: ["sev_snp"], measurements: [m.engine] },
    );
    await assert.rejects(Clave.connect(dev.url, { trust: real }), (e) => {
      assert.ok(e instanceof AttestationError);
      assert.equal(e.reason, "insecure-refused");
      assert.match(e.message, /INSECURE simulated TEE/);
      assert.match(e.hint, /insecureDev/);
      return true;
    });
  });

  test("a wrong KDS measurement is refused", async () => {
    const wrong = TrustPolicy.insecureDev("00".repeat(32), [m.engine]);
    await assert.rejects(Clave.connect(dev.url, { trust: wrong }), (e) => {
      assert.ok(e instanceof AttestationError);
      assert.equal(e.reason, "evidence");
      assert.match(e.message, /measurement .* is not in the policy/);
      return true;
    });
  });

  test("bundles that admit engines the caller does not accept are refused", async () => {
    const narrow = TrustPolicy.insecureDev(m.kds, ["11".repeat(32)]);
    await assert.rejects(Clave.connect(dev.url, { trust: narrow }), (e) => {
      assert.ok(e instanceof AttestationError);
      assert.equal(e.reason, "spec-too-broad");
      assert.match(e.message, /engine measurement/);
      return true;
    });
  });

  /** A fetch that lets `edit` rewrite the JSON answer of one path. */
  const tamper = (suffix, edit) => async (url, init) => {
    const resp = await fetch(url, init);
    if (!String(url).includes(suffix)) return resp;
    const json = await resp.json();
    edit(json);
    return new Response(JSON.stringify(json), { status: resp.status, headers: { "content-type": "application/json" } });
  };

  test("a tampered key bundle is refused (payload or signature)", async () => {
    for (const field of ["payload", "signature"]) {
      const f = tamper("/v1/keys", (keys) => {
        const b = b64urlDecode(keys.bundles[keys.bundles.length - 1][field]);
        b[b.length >> 1] ^= 1;
        keys.bundles[keys.bundles.length - 1][field] = b64urlEncode(b);
      });
      await assert.rejects(Clave.connect(dev.url, { trust, fetch: f }), (e) => {
        assert.ok(e instanceof AttestationError, String(e));
        assert.equal(e.reason, "bundle");
        assert.match(e.message, /signature does not verify/);
        return true;
      });
    }
  });

  test("evidence for another nonce and a swapped identity key are refused", async () => {
    const replay = tamper("/v1/attestation", (att) => {
      att.nonce = "ab".repeat(32);
    });
    await assert.rejects(Clave.connect(dev.url, { trust, fetch: replay }), (e) => e instanceof AttestationError && e.reason === "nonce-mismatch");
    const flipped = tamper("/v1/attestation", (att) => {
      const ev = b64urlDecode(att.evidence);
      ev[ev.length - 100] ^= 1;
      att.evidence = b64urlEncode(ev);
    });
    await assert.rejects(Clave.connect(dev.url, { trust, fetch: flipped }), (e) => e instanceof AttestationError && e.reason === "evidence");
    const otherKey = tamper("/v1/keys", (keys) => {
      keys.identity_public_key = b64urlEncode(new Uint8Array(32).fill(7));
    });
    await assert.rejects(Clave.connect(dev.url, { trust, fetch: otherKey }), (e) => e instanceof AttestationError && e.reason === "identity-mismatch");
  });

  test("engine and gateway refusals are typed", async () => {
    const clave = await Clave.connect(dev.url, { trust });
    await assert.rejects(clave.invoke("default", "hello", { json: {}, codeHash: "0".repeat(64) }), HashRefusedError);
    await assert.rejects(clave.invoke("default", "nope", { json: {}, codeHash: hello.code_hash }), (e) => e instanceof GatewayError && e.status === 404);
    await assert.rejects(clave.invoke("default", "hello", { json: {}, codeHash: "XYZ" }), InvalidInputError);
    await assert.rejects(clave.invoke("default", "hello", { json: {}, codeHash: hello.code_hash, headers: { "clave-mode": "async" } }), InvalidInputError);
    const throws = await dev.deploySource('export default { async fetch() { throw new Error("boom"); } };\n', "throws");
    await assert.rejects(clave.invoke("default", "throws", { codeHash: throws.code_hash }), (e) => {
      assert.ok(e instanceof FunctionThrewError, String(e));
      assert.match(e.message, /boom/);
      return true;
    });
  });

  test("the function's status and headers reach the Response", async () => {
    const src = 'export default { async fetch(req) { return new Response(await req.text() + "!", { status: 201, headers: { "x-echo": req.headers.get("x-in") ?? "none" } }); } };\n';
    const echo = await dev.deploySource(src, "echo");
    const clave = await Clave.connect(dev.url, { trust });
    const resp = await clave.invoke("default", "echo", { body: "hi", headers: { "X-In": "yes" }, codeHash: echo.code_hash });
    assert.equal(resp.status, 201);
    assert.equal(resp.headers.get("x-echo"), "yes");
    assert.equal(await resp.text(), "hi!");
  });

  test("method, path and query reach request.method and request.url", async () => {
    const src = "export default { fetch(req) { const u = new URL(req.url); return Response.json({ m: req.method, p: u.pathname, id: u.searchParams.get(\"id\") }); } };\n";
    const route = await dev.deploySource(src, "route");
    const clave = await Clave.connect(dev.url, { trust });
    const resp = await clave.invoke("default", "route", { method: "get", path: "/items?id=3", codeHash: route.code_hash });
    assert.deepEqual(await resp.json(), { m: "GET", p: "/default/route/items", id: "3" });
    const plain = await clave.invoke("default", "route", { codeHash: route.code_hash });
    assert.deepEqual(await plain.json(), { m: "POST", p: "/default/route", id: null });
    await assert.rejects(clave.invoke("default", "route", { path: "items", codeHash: route.code_hash }), InvalidInputError);
    await assert.rejects(clave.invoke("default", "route", { path: "/a#b", codeHash: route.code_hash }), InvalidInputError);
    await assert.rejects(clave.invoke("default", "route", { method: "GE T", codeHash: route.code_hash }), InvalidInputError);
  });
});

if (skip) test(`platform tests skipped: ${skip}`, { skip }, () => {});
