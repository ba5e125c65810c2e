// Cross-check: the JavaScript verifiers and the Rust verifier (`clave evidence verify`, the
// built binary) reach the same verdict, with the same claims, on every published sample and on
// bit flips of each. Both sides appraise as `clave evidence verify` does without flags: the
// claimed measurement pinned, debug refused, report data as reported.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { appraise, parsePolicy, verifyNitroDocument, verifySnpReport } from "../dist/index.js";
import { recordSkip } from "./helpers.js";
import { CLAVE_BIN, missingBinary } from "./platform.js";
import { NITRO_AT, NITRO_DOC, SNP_AT, SNP_FLIPS, SNP_SAMPLES, flip, pemDer } from "./samples.js";

const run = promisify(execFile);
const skip = recordSkip("SDK cross-check against the Rust verifier (sdk/js)", missingBinary());

/** `clave evidence verify`: { ok, claims | refusal }. */
async function rust(args) {
  try {
    const { stdout } = await run(CLAVE_BIN, ["evidence", "verify", ...args], { env: { ...process.env, NO_COLOR: "1" } });
    return { ok: true, out: JSON.parse(stdout) };
  } catch (e) {
    // Exit code 3: the attestation was refused (`clave -h`: the same scheme as `clave attest`).
    if (e.code === 3) return { ok: false, why: e.stderr.trim() };
    throw new Error(`clave evidence verify ${args.join(" ")} failed unexpectedly (${e.code}): ${e.stderr}`);
  }
}

/** The JS verdict, appraised like the CLI. */
async function js(verifyFn, now) {
  try {
    const c = await verifyFn();
    appraise(c, parsePolicy({ accepted_kinds: [c.kind], measurements: [c.measurement] }), c.report_data, now);
    return { ok: true, claims: c };
  } catch (e) {
    return { ok: false, why: e.message };
  }
}

function sameClaims(r, c, label) {
  assert.equal(r.kind, c.kind, label);
  assert.equal(r.measurement, c.measurement, label);
  assert.deepEqual(r.tcb, c.tcb, label);
  assert.equal(r.debug, c.debug, label);
  assert.equal(r.report_data, Buffer.from(c.report_data).toString("hex"), label);
  assert.equal(r.signer, c.signer, label);
  if (r.signer !== undefined) assert.equal(r.svn, c.svn, label);
  assert.equal(r.vmpl, c.platform.vmpl, label);
  assert.deepEqual(r.registers ?? {}, c.platform.registers, label);
}

describe("JS and Rust verifiers agree", { skip }, () => {
  let dir;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "clave-sdk-xcheck-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("SEV-SNP: every sample and bit flips of its report and VCEK", async () => {
    let n = 0;
    let accepted = 0;
    for (const s of SNP_SAMPLES) {
      const der = pemDer(s.vcek);
      const cases = [{ label: `${s.name}`, report: s.report, vcek: der }];
      for (const [i, bit] of SNP_FLIPS) cases.push({ label: `${s.name} report 0x${i.toString(16)}.${bit}`, report: flip(s.report, i, bit), vcek: der });
      for (const i of [10, 200, 400, der.length - 200, der.length - 40, der.length - 1]) cases.push({ label: `${s.name} VCEK ${i}`, report: s.report, vcek: flip(der, i) });
      for (const c of cases) {
        const rf = path.join(dir, "report.hex");
        const vf = path.join(dir, "vcek.pem");
        writeFileSync(rf, Buffer.from(c.report).toString("hex"));
        writeFileSync(vf, `-----BEGIN CERTIFICATE-----\n${Buffer.from(c.vcek).toString("base64").replace(/.{64}/g, "$&\n")}\n-----END CERTIFICATE-----\n`);
        const r = await rust(["--tee", "snp", "--evidence", rf, "--vcek", vf, "--at", "2026-01-01T00:00:00Z"]);
        const j = await js(() => verifySnpReport(c.report, c.vcek, SNP_AT), SNP_AT);
        assert.equal(j.ok, r.ok, `${c.label}: JS ${j.ok ? "accepts" : `refuses (${j.why})`}, Rust ${r.ok ? "accepts" : `refuses (${r.why})`}`);
        if (r.ok) {
          sameClaims(r.out, j.claims, c.label);
          accepted++;
        }
        n++;
      }
    }
    assert.equal(accepted, SNP_SAMPLES.length);
    console.log(`SEV-SNP: ${n} cases, ${accepted} accepted by both, ${n - accepted} refused by both`);
  });

  test("AWS Nitro: the sample and bit flips", async () => {
    const cases = [{ label: "evervault", doc: NITRO_DOC, at: NITRO_AT, atText: "2023-09-07T16:00:00Z" }];
    cases.push({ label: "evervault a day later", doc: NITRO_DOC, at: NITRO_AT + 86400, atText: "2023-09-08T16:00:00Z" });
    const n = NITRO_DOC.length;
    for (const i of [20, 100, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, n - 200, n - 97, n - 50, n - 1]) {
      cases.push({ label: `evervault byte ${i}`, doc: flip(NITRO_DOC, i), at: NITRO_AT, atText: "2023-09-07T16:00:00Z" });
    }
    for (const c of cases) {
      const f = path.join(dir, "doc.b64");
      writeFileSync(f, Buffer.from(c.doc).toString("base64"));
      const r = await rust(["--tee", "nitro", "--evidence", f, "--at", c.atText]);
      const j = await js(() => verifyNitroDocument(c.doc, c.at), c.at);
      assert.equal(j.ok, r.ok, `${c.label}: JS ${j.ok ? "accepts" : `refuses (${j.why})`}, Rust ${r.ok ? "accepts" : `refuses (${r.why})`}`);
      if (r.ok) sameClaims(r.out, j.claims, c.label);
    }
    // The sample is a debug enclave: both refuse it for that reason.
    const r = await rust(["--tee", "nitro", "--evidence", (writeFileSync(path.join(dir, "d.b64"), Buffer.from(NITRO_DOC).toString("base64")), path.join(dir, "d.b64")), "--at", "2023-09-07T16:00:00Z"]);
    assert.match(r.why, /debug/i);
    const j = await js(() => verifyNitroDocument(NITRO_DOC, NITRO_AT), NITRO_AT);
    assert.match(j.why, /debug/i);
  });
});

if (skip) test(`cross-check skipped: ${skip}`, { skip }, () => {});
