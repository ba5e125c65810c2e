// Starts a real `clave dev` (the built binary) on a free loopback port, with a temporary data
// directory and CLAVE_CONFIG_DIR, and deploys functions with the `clave` CLI.
import { spawn, execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { REPO, SDK_DIR } from "./helpers.js";

const run = promisify(execFile);

/** The `clave` binary: $CLAVE_BIN, else target/debug/clave of this checkout. */
export const CLAVE_BIN = process.env.CLAVE_BIN ? path.resolve(process.env.CLAVE_BIN) : path.join(REPO, "target/debug/clave");

/** Why the platform tests cannot run (undefined: they can). Fails instead when CLAVE_BIN was given explicitly. */
export function missingBinary() {
  if (existsSync(CLAVE_BIN)) return undefined;
  if (process.env.CLAVE_BIN) throw new Error(`CLAVE_BIN=${process.env.CLAVE_BIN} does not exist`);
  return `no clave binary at ${CLAVE_BIN}: build it with \`cargo build -p clave-cli\` or set CLAVE_BIN`;
}

/** The published dev measurements (SHA-256 of their labels, as crates/cli/src/platform.rs defines them). */
export async function devMeasurements() {
  const h = async (s) => Buffer.from(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s))).toString("hex");
  return {
    kds: await h("clave/dev/insecure-simulated-measurement/v1"),
    engine: await h("clave/dev/insecure-simulated-engine-measurement/v1"),
  };
}

/** Starts `clave dev`; resolves to { url, deploy(file, name), stop() }. */
export async function startDev() {
  const dir = mkdtempSync(path.join(tmpdir(), "clave-sdk-test-"));
  const env = { ...process.env, CLAVE_CONFIG_DIR: path.join(dir, "config"), NO_COLOR: "1", RUST_LOG: "warn" };
  const child = spawn(CLAVE_BIN, ["dev", "--listen", "127.0.0.1:0", "--data-dir", path.join(dir, "data"), "--json"], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const url = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`clave dev did not start in 60 s: ${stderr}`)), 60_000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/"gateway":\s*"([^"]+)"/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      reject(new Error(`clave dev exited (${code}): ${stderr}`));
    });
  });
  return {
    url,
    dir,
    env,
    async deploy(file, name) {
      const { stdout } = await run(CLAVE_BIN, ["deploy", file, "--name", name, "--json"], { env, cwd: REPO });
      return JSON.parse(stdout);
    },
    /** Writes `source` to a temporary .js file and deploys it. */
    async deploySource(source, name) {
      const file = path.join(dir, `${name}.js`);
      writeFileSync(file, source);
      return this.deploy(file, name);
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGINT");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export { SDK_DIR };
