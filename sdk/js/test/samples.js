// The published evidence samples the Rust verifiers test with (crates/attest/tests/data/real,
// sources and fixed verification times in its README.md), and bit-flip variants.
import { readFileSync } from "node:fs";
import path from "node:path";
import { REPO } from "./helpers.js";

export const REAL = path.join(REPO, "crates/attest/tests/data/real");

/** 2026-01-01T00:00:00Z and 2023-09-07T16:00:00Z: the README's suggested verification times. */
export const SNP_AT = 1767225600;
export const NITRO_AT = 1694102400;

export const SNP_SAMPLES = ["milan_azure", "milan_gcp", "genoa_azure"].map((name) => ({
  name,
  reportFile: path.join(REAL, `snp/${name}_report.hex`),
  vcekFile: path.join(REAL, `snp/${name}_vcek.pem`),
  report: new Uint8Array(Buffer.from(readFileSync(path.join(REAL, `snp/${name}_report.hex`), "utf8").replace(/\s/g, ""), "hex")),
  vcek: new Uint8Array(readFileSync(path.join(REAL, `snp/${name}_vcek.pem`))),
}));

export const NITRO_FILE = path.join(REAL, "nitro/evervault_attestation_doc.b64");
export const NITRO_DOC = new Uint8Array(Buffer.from(readFileSync(NITRO_FILE, "utf8").trim(), "base64"));

/** DER of the first PEM block. */
export function pemDer(pem) {
  const text = Buffer.from(pem).toString("utf8");
  return new Uint8Array(Buffer.from(text.split("-----")[2].replace(/\s/g, ""), "base64"));
}

/** A copy of `b` with bit `bit` of byte `i` flipped. */
export function flip(b, i, bit = 0) {
  const c = b.slice();
  c[i] ^= 1 << bit;
  return c;
}

/** Positions to flip in an SNP report: version, policy (debug bit), VMPL, TCB, report data, measurement, host data, ID key digest, reported TCB, chip id, signature R and S, reserved signature tail. */
export const SNP_FLIPS = [
  [0x00, 0],
  [0x0a, 3],
  [0x30, 0],
  [0x38, 0],
  [0x50, 0],
  [0x8f, 7],
  [0x90, 0],
  [0xbf, 7],
  [0xc0, 1],
  [0xe0, 2],
  [0x180, 0],
  [0x186, 0],
  [0x1a0, 0],
  [0x2a0, 0],
  [0x2c7, 7],
  [0x2e8, 0],
  [0x2f0, 4],
  [0x330, 0],
  [0x49f, 7],
];
