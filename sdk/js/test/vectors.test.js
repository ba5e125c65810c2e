// Known-answer tests against the published RFC bytes (the same files the Rust crate tests with:
// crates/proto/tests/data, copied from RFC 9180 Appendix A.1.1, RFC 9458 Appendix A and RFC 9292 §5).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  decodeKeyConfig,
  encodeKeyConfig,
  encapsulateRequest,
  encapsulatePrepared,
  prepareRequest,
  preparedFor,
  encodeRequest,
  decodeResponse,
} from "../dist/index.js";
import { setupBaseS } from "../dist/hpke.js";
import { hex, rfc9180Fields, rfc9292Figures, rfc9458Blocks, unhex } from "./helpers.js";

test("RFC 9458 Appendix A: key configuration decodes and re-encodes", () => {
  const b = rfc9458Blocks();
  assert.equal(b.length, 14);
  const config = decodeKeyConfig(b[1]);
  assert.equal(config.keyId, 1);
  assert.equal(config.kem, 0x20);
  assert.deepEqual(config.suites, [
    { kdf: 1, aead: 1 },
    { kdf: 1, aead: 3 },
  ]);
  assert.equal(hex(encodeKeyConfig(config)), hex(b[1]));
});

test("RFC 9458 Appendix A: the encapsulated request is reproduced byte for byte and the published response opens", async () => {
  const [, configBytes, request, skE, pkE, , encRequest, response, , , , , , encResponse] = rfc9458Blocks();
  const config = decodeKeyConfig(configBytes);
  const { encRequest: got, opener } = await encapsulateRequest(config, request, { ephemeral: skE });
  assert.equal(hex(got.subarray(7, 39)), hex(pkE));
  assert.equal(hex(got), hex(encRequest));
  assert.equal(hex(await opener.open(encResponse)), hex(response));
  // One flipped bit anywhere in the response is refused.
  for (const i of [0, 15, 16, encResponse.length - 1]) {
    const bad = encResponse.slice();
    bad[i] ^= 1;
    await assert.rejects(opener.open(bad));
  }
  await assert.rejects(opener.open(encResponse.subarray(0, 20)));
});

test("a prepared encapsulation reproduces the RFC 9458 request, seals once and knows its key", async () => {
  const [, configBytes, request, skE, , , encRequest] = rfc9458Blocks();
  const config = decodeKeyConfig(configBytes);
  const prepared = await prepareRequest(config, { ephemeral: skE });
  assert.ok(preparedFor(prepared, config));
  assert.ok(preparedFor(prepared, decodeKeyConfig(configBytes)), "an equal configuration decoded again");
  const other = { ...config, publicKey: config.publicKey.map((b, i) => (i === 0 ? b ^ 1 : b)) };
  assert.ok(!preparedFor(prepared, other), "same key id, another public key");
  assert.ok(!preparedFor(prepared, { ...config, keyId: config.keyId + 1 }));
  assert.ok(!preparedFor(prepared, { ...config, kem: 0x647a }));
  assert.ok(!preparedFor(prepared, { ...config, suites: config.suites.slice(1) }));
  // It keeps its own copy: changing the caller's object afterwards does not change what it matches.
  config.publicKey[0] ^= 1;
  assert.ok(!preparedFor(prepared, config));
  config.publicKey[0] ^= 1;
  const { encRequest: got } = await encapsulatePrepared(prepared, request);
  assert.equal(hex(got), hex(encRequest));
  // Its context seals one message only: a second request is refused, not sealed under the same nonce.
  await assert.rejects(encapsulatePrepared(prepared, request), /one message only/);
  // Fresh preparations use fresh ephemeral keys.
  const a = await encapsulatePrepared(await prepareRequest(config), request);
  const b = await encapsulatePrepared(await prepareRequest(config), request);
  assert.notEqual(hex(a.encRequest.subarray(7, 39)), hex(b.encRequest.subarray(7, 39)));
});

test("RFC 9180 A.1.1: DHKEM(X25519)/HKDF-SHA256/AES-128-GCM base mode, sequence 0 and exports", async () => {
  const f = rfc9180Fields();
  const get = (k, n = 0) => f.filter(([key]) => key === k)[n][1];
  const ctx = await setupBaseS(unhex(get("pkRm")), unhex(get("info")), 1, unhex(get("skEm")));
  assert.equal(hex(ctx.enc), get("enc"));
  assert.equal(get("sequence number"), "0");
  assert.equal(hex(await ctx.seal(unhex(get("aad")), unhex(get("pt")))), get("ct"));
  const exports = f.filter(([k]) => k === "exporter_context").length;
  assert.ok(exports >= 3);
  for (let i = 0; i < exports; i++) {
    const ctxBytes = unhex(get("exporter_context", i));
    const len = Number(get("L", i));
    assert.equal(hex(await ctx.export(ctxBytes, len)), get("exported_value", i));
  }
});

test("RFC 9292 Figure 8: known-length request encodes byte for byte", () => {
  const fig = rfc9292Figures().get("Figure 8: Known-Length Binary Encoding of Request (135 bytes)");
  assert.equal(fig.length, 135);
  const got = encodeRequest({
    method: "GET",
    scheme: "https",
    authority: "",
    path: "/hello.txt",
    headers: [
      ["user-agent", "curl/7.16.3 libcurl/7.16.3 OpenSSL/0.9.7l zlib/1.2.3"],
      ["host", "www.example.com"],
      ["accept-language", "en, mi"],
    ],
    body: new Uint8Array(0),
  });
  assert.equal(hex(got), hex(fig));
});

test("RFC 9292 Figure 13: known-length response with trailer decodes; truncation and junk refused", () => {
  const fig = rfc9292Figures().get("Figure 13: Known-Length Encoding of Response (48 bytes)");
  const r = decodeResponse(fig);
  assert.equal(r.status, 200);
  assert.deepEqual(r.headers, []);
  assert.equal(Buffer.from(r.body).toString(), "This content contains CRLF.\r\n");
  // Zero padding is allowed, anything else after the message is not.
  decodeResponse(new Uint8Array([...fig, 0, 0]));
  assert.throws(() => decodeResponse(new Uint8Array([...fig, 1])));
  assert.throws(() => decodeResponse(fig.subarray(0, 10)));
});

test("key configurations with low-order X25519 keys, unknown KEMs or no supported suite are refused", async () => {
  const config = rfc9458Blocks()[1];
  const withKey = (hexKey, top = false) => {
    const c = config.slice();
    c.set(unhex(hexKey), 3);
    if (top) c[34] |= 0x80;
    return c;
  };
  for (const k of [
    "00".repeat(32),
    "01" + "00".repeat(31),
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ec" + "ff".repeat(30) + "7f",
  ]) {
    assert.throws(() => decodeKeyConfig(withKey(k)), /low-order/, k);
    assert.throws(() => decodeKeyConfig(withKey(k, true)), /low-order/, `${k} with the top bit`);
  }
  const noSuite = config.slice();
  noSuite[noSuite.length - 3] = 9; // both suites' AEADs become unknown
  noSuite[noSuite.length - 7] = 9;
  assert.throws(() => decodeKeyConfig(noSuite), /no supported suite/);
  assert.throws(() => decodeKeyConfig(config.subarray(0, config.length - 1)), /truncated|suites/);
  assert.throws(() => decodeKeyConfig(new Uint8Array([...config, 0])), /trailing/);
});
