// Shared test helpers: repository paths and the published test vectors kept by the Rust crates.
import { appendFileSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

export const SDK_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const REPO = path.resolve(SDK_DIR, "../..");

/**
 * Records that test group `group` was skipped: `reason` is printed as `CLAVE-SKIPPED: <group>: <reason>`
 * and, when CLAVE_TEST_SKIP_LOG names a file (`.ci/run` sets it), appended there, so the summary at the
 * end of `.ci/run` lists it beside the Rust test groups that were skipped. Returns `reason` (for
 * `{ skip }`), or undefined when there is no reason.
 */
export function recordSkip(group, reason) {
  if (reason === undefined) return undefined;
  const line = `CLAVE-SKIPPED: ${group}: ${reason}\n`;
  process.stderr.write(line);
  if (process.env.CLAVE_TEST_SKIP_LOG) appendFileSync(process.env.CLAVE_TEST_SKIP_LOG, line);
  return reason;
}

export function repoFile(rel, enc) {
  return readFileSync(path.join(REPO, rel), enc);
}

export function unhex(s) {
  return new Uint8Array(Buffer.from(s, "hex"));
}

export function hex(b) {
  return Buffer.from(b).toString("hex");
}

/** The hex blocks of crates/proto/tests/data/rfc9458-appendix-a.txt (RFC 9458 Appendix A), in order. */
export function rfc9458Blocks() {
  const blocks = [];
  let cur = "";
  for (const line of repoFile("crates/proto/tests/data/rfc9458-appendix-a.txt", "utf8").split("\n").map((l) => l.trim())) {
    if (line && /^[0-9a-fA-F]+$/.test(line)) cur += line;
    else if (cur) {
      blocks.push(unhex(cur));
      cur = "";
    }
  }
  if (cur) blocks.push(unhex(cur));
  return blocks;
}

/** The figures of crates/proto/tests/data/rfc9292-examples.txt (RFC 9292 §5), by title. */
export function rfc9292Figures() {
  const out = new Map();
  let name;
  for (const line of repoFile("crates/proto/tests/data/rfc9292-examples.txt", "utf8").split("\n")) {
    if (line.startsWith("# ")) {
      name = line.slice(2);
      out.set(name, "");
    } else if (name) {
      out.set(name, out.get(name) + line.slice(0, 35).replace(/\s/g, ""));
    }
  }
  return new Map([...out].map(([k, v]) => [k, unhex(v)]));
}

/** `key: value` fields of crates/proto/tests/data/rfc9180-a.1.1.txt, continuation lines appended. */
export function rfc9180Fields() {
  const out = [];
  for (const line of repoFile("crates/proto/tests/data/rfc9180-a.1.1.txt", "utf8").split("\n").map((l) => l.trim())) {
    if (!line || line.startsWith("A.1")) continue;
    const i = line.indexOf(":");
    if (i >= 0) out.push([line.slice(0, i).trim(), line.slice(i + 1).trim()]);
    else if (out.length) out[out.length - 1][1] += line;
  }
  return out;
}
