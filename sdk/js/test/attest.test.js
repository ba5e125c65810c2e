// Attestation verification in JavaScript against the published samples the Rust verifiers test
// with, and bit flips of them; the simulated TEE with reports signed by the published insecure
// root; the policy appraisal.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import {
  appraise,
  decodeEvidence,
  parsePolicy,
  verifyNitroDocument,
  verifySimulatedReport,
  verifySnpReport,
  verify,
  canonicalJson,
  policyToJsonValue,
} from "../dist/index.js";
import * as roots from "../dist/roots.js";
import { REPO } from "./helpers.js";
import { NITRO_AT, NITRO_DOC, SNP_AT, SNP_FLIPS, SNP_SAMPLES, flip, pemDer } from "./samples.js";

test("the SDK pins the same vendor roots as the Rust verifier (crates/attest/roots)", () => {
  for (const [name, b64] of Object.entries(roots)) {
    const der = readFileSync(path.join(REPO, "crates/attest/roots", `${name.toLowerCase()}.der`));
    assert.equal(Buffer.from(b64, "base64").toString("hex"), der.toString("hex"), name);
  }
  const nitro = createHash("sha256").update(Buffer.from(roots.AWS_NITRO_ROOT_G1, "base64")).digest("hex");
  assert.equal(nitro, "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b");
});

const EXPECTED = {
  milan_azure: { measurement: "5feee30d6d7e1a29f403d70a4198237ddfb13051a2d6976439487c609388ed7f98189887920ab2fa0096903a0c23fca1", tcb: [4, 0, 24, 219], svn: 2 },
  milan_gcp: { measurement: "b747d55452e0b9e9079770a49e397c5e6d9573581e246da7baac4f28b5cdc5b1b6d19251b8ee600fd16a3708f58406f3", tcb: [4, 0, 27, 222], svn: 0 },
  genoa_azure: { measurement: "f57dc09a507c6ecd82369bffb600f0003792f4d99bc26e985ec0c266fc34faf3706faf814c9e61065768a6ff917c89ae", tcb: [10, 0, 23, 84], svn: 65547 },
};

for (const s of SNP_SAMPLES) {
  test(`SEV-SNP ${s.name}: verifies with the values its README documents`, async () => {
    const c = await verifySnpReport(s.report, s.vcek, SNP_AT);
    const e = EXPECTED[s.name];
    assert.equal(c.kind, "sev_snp");
    assert.equal(c.measurement, e.measurement);
    assert.deepEqual(c.tcb, e.tcb);
    assert.equal(c.svn, e.svn);
    assert.equal(c.debug, false);
    assert.equal(c.platform.vmpl, 0);
    // DER works as well as PEM; appraisal with the right measurement and report data passes.
    await verifySnpReport(s.report, pemDer(s.vcek), SNP_AT);
    const policy = parsePolicy({ accepted_kinds: ["sev_snp"], measurements: [e.measurement], min_tcb: { sev_snp: e.tcb } });
    appraise(c, policy, c.report_data, SNP_AT);
    assert.throws(() => appraise(c, parsePolicy({ accepted_kinds: ["sev_snp"], measurements: ["00".repeat(48)] }), c.report_data, SNP_AT), /measurement/);
    const higher = [...e.tcb];
    higher[3] += 1;
    assert.throws(() => appraise(c, parsePolicy({ accepted_kinds: ["sev_snp"], measurements: [e.measurement], min_tcb: { sev_snp: higher } }), c.report_data, SNP_AT), /TCB/);
    assert.throws(() => appraise(c, policy, new Uint8Array(64).fill(1), SNP_AT), /report data/);
  });

  test(`SEV-SNP ${s.name}: every bit flip of the report or the VCEK is refused`, async () => {
    for (const [i, bit] of SNP_FLIPS) {
      await assert.rejects(verifySnpReport(flip(s.report, i, bit), s.vcek, SNP_AT), `report byte 0x${i.toString(16)} bit ${bit}`);
    }
    const der = pemDer(s.vcek);
    for (const i of [10, 200, 400, der.length - 200, der.length - 40, der.length - 1]) {
      await assert.rejects(verifySnpReport(s.report, flip(der, i), SNP_AT), `VCEK byte ${i}`);
    }
    // Outside the VCEK's validity; a truncated report; a report with bytes after it.
    await assert.rejects(verifySnpReport(s.report, s.vcek, 1600000000), /not valid at/);
    await assert.rejects(verifySnpReport(s.report.subarray(0, 1000), s.vcek, SNP_AT), /truncated/);
    await assert.rejects(verifySnpReport(new Uint8Array([...s.report, 0]), s.vcek, SNP_AT), /trailing/);
  });
}

test("SEV-SNP: a VCEK of another chip is refused", async () => {
  const [a, b] = SNP_SAMPLES;
  await assert.rejects(verifySnpReport(a.report, b.vcek, SNP_AT), /hwID|SPL|signature/);
});

test("AWS Nitro: the published document verifies at its time, is a debug enclave, and appraisal refuses it", async () => {
  const c = await verifyNitroDocument(NITRO_DOC, NITRO_AT);
  assert.equal(c.kind, "nitro");
  assert.equal(c.measurement, "00".repeat(48));
  assert.equal(c.debug, true);
  assert.equal(c.issued_at, 1694102161);
  assert.equal(Object.keys(c.platform.registers).length, 16);
  assert.throws(() => appraise(c, parsePolicy({ accepted_kinds: ["nitro"], measurements: [c.measurement] }), c.report_data, NITRO_AT), /debug/);
  await assert.rejects(verifyNitroDocument(NITRO_DOC, NITRO_AT + 86400), /not valid at/);
});

test("AWS Nitro: bit flips in the payload, the certificates and the signature are refused", async () => {
  const n = NITRO_DOC.length;
  const positions = [20, 100, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, n - 200, n - 97, n - 50, n - 1];
  for (const i of positions) {
    await assert.rejects(verifyNitroDocument(flip(NITRO_DOC, i), NITRO_AT), `byte ${i}`);
  }
});

/** Signs a simulated report with the published insecure root seed (as clave-attest's attester does). */
async function simulatedReport({ measurement, reportData, timestamp, debug = false, tcb = [] }) {
  const seed = new TextEncoder().encode("clave-insecure-simulated-root-01");
  const pkcs8 = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]);
  const key = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);
  const parts = [Buffer.from([0, 1, (debug ? 1 : 0) | (timestamp !== undefined ? 2 : 0), measurement.length]), measurement, Buffer.from([0, 0, 0, 0, 0, 0, 0, tcb.length])];
  for (const c of tcb) parts.push(Buffer.from([c >> 8, c & 255]));
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(BigInt(timestamp ?? 0));
  parts.push(reportData, ts);
  const body = Buffer.concat(parts);
  const sig = await crypto.subtle.sign("Ed25519", key, Buffer.concat([Buffer.from("clave/v1/insecure-simulated-report\0"), body]));
  return new Uint8Array(Buffer.concat([body, Buffer.from(sig)]));
}

test("simulated TEE: claims are insecure, refused unless the policy asks, bit flips refused", async () => {
  const m = new Uint8Array(32).fill(7);
  const rd = new Uint8Array(64).fill(9);
  const now = 1_800_000_000;
  const report = await simulatedReport({ measurement: m, reportData: rd, timestamp: now, tcb: [1, 2] });
  const c = await verifySimulatedReport(report);
  assert.equal(c.insecure, true);
  assert.equal(c.kind, "insecure_simulated");
  assert.deepEqual(c.tcb, [1, 2]);
  assert.equal(c.issued_at, now);
  const dev = parsePolicy({ accepted_kinds: ["insecure_simulated"], measurements: [Buffer.from(m).toString("hex")], allow_insecure_simulated: true, max_evidence_age_secs: 60 });
  appraise(c, dev, rd, now);
  assert.throws(() => appraise(c, dev, rd, now + 61), /old/);
  assert.throws(() => appraise(c, dev, rd, now - 61), /future/);
  // A policy for real hardware never accepts it, whatever it pins.
  assert.throws(() => appraise(c, parsePolicy({ accepted_kinds: ["sev_snp"], measurements: [Buffer.from(m).toString("hex")] }), rd, now), /kind/);
  for (let i = 0; i < report.length; i += 7) await assert.rejects(verifySimulatedReport(flip(report, i)), `byte ${i}`);
  const debug = await verifySimulatedReport(await simulatedReport({ measurement: m, reportData: rd, debug: true }));
  assert.throws(() => appraise(debug, dev, rd, now), /debug/);
  // The envelope: "CLEV" 01 01 || u32 length || report.
  const env = new Uint8Array([...Buffer.from("CLEV"), 1, 1, 0, 0, report.length >> 8, report.length & 255, ...report]);
  assert.equal((await verify(decodeEvidence(env), dev, rd, now)).measurement, Buffer.from(m).toString("hex"));
  assert.throws(() => decodeEvidence(env.subarray(0, env.length - 1)));
  assert.throws(() => decodeEvidence(new Uint8Array([...env, 0])));
});

test("policies: file format, normalisation, canonical form as clave-attest writes it", () => {
  const p = parsePolicy('{"accepted_kinds":["sev_snp","sev_snp"],"measurements":["BB","aa"]}');
  assert.deepEqual(p.accepted_kinds, ["sev_snp"]);
  assert.deepEqual(p.measurements, ["aa", "bb"]);
  assert.equal(canonicalJson(policyToJsonValue(p)), '{"accepted_kinds":["sev_snp"],"allow_insecure_simulated":false,"measurements":["aa","bb"]}');
  for (const bad of [
    '{"accepted_kinds":[],"measurements":["aa"]}',
    '{"accepted_kinds":["tdx"]}',
    '{"accepted_kinds":["insecure_simulated"],"measurements":["aa"]}',
    '{"accepted_kinds":["tdx"],"measurements":["aa"],"extra":1}',
    '{"accepted_kinds":["nitro"],"measurements":["aa"],"min_tcb":{"nitro":[1]}}',
  ]) {
    assert.throws(() => parsePolicy(bad), /invalid policy/, bad);
  }
  // The repository's policy files parse (the same files the Rust tests read).
  for (const f of ["dev-policy.json", "snp-tdx-policy.json", "sgx-signer-policy.json"]) {
    parsePolicy(readFileSync(path.join(REPO, "crates/attest/tests/data", f), "utf8"));
  }
});

test("evidence envelopes: SEV-SNP with its certificate table verifies; TDX and SGX say they are not supported yet", async () => {
  const s = SNP_SAMPLES[0];
  const vcek = pemDer(s.vcek);
  const entry = Buffer.alloc(24);
  Buffer.from("8d75da6364e66445adc5f4b93be8accd", "hex").copy(entry);
  entry.writeUInt32LE(48, 16);
  entry.writeUInt32LE(vcek.length, 20);
  const table = Buffer.concat([entry, Buffer.alloc(24), vcek]);
  const u32 = (n) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const env = Buffer.concat([Buffer.from("CLEV"), Buffer.from([1, 2]), u32(s.report.length), s.report, Buffer.from([1]), u32(table.length), table]);
  const claims = await verify(decodeEvidence(new Uint8Array(env)), parsePolicy({ accepted_kinds: ["sev_snp"], measurements: [EXPECTED[s.name].measurement] }), new Uint8Array(64), SNP_AT);
  assert.equal(claims.measurement, EXPECTED[s.name].measurement);
  // Without the certificate table there is no VCEK to check against.
  const bare = Buffer.concat([Buffer.from("CLEV"), Buffer.from([1, 2]), u32(s.report.length), s.report, Buffer.from([0])]);
  await assert.rejects(verify(decodeEvidence(new Uint8Array(bare)), parsePolicy({ accepted_kinds: ["sev_snp"], measurements: ["aa"] }), new Uint8Array(64), SNP_AT), /VCEK/);
  for (const tag of [3, 4]) {
    const q = Buffer.concat([Buffer.from("CLEV"), Buffer.from([1, tag]), u32(4), Buffer.from([1, 2, 3, 4])]);
    await assert.rejects(verify(decodeEvidence(new Uint8Array(q)), parsePolicy({ accepted_kinds: ["tdx"], measurements: ["aa"] }), new Uint8Array(64), SNP_AT), /not be verified by this SDK yet/);
  }
});
