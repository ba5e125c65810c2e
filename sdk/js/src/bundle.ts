// Signed objects and key bundles (clave-proto §4): Ed25519 over the exact payload bytes, then
// the canonical key spec, the key configuration and the validity window.

import { b64urlDecode, fromUtf8, utf8 } from "./bytes.js";
import { ed25519Verify } from "./evidence.js";
import { sha256 } from "./hpke.js";
import { decodeKeyConfig, type KeyConfig } from "./ohttp.js";
import { canonicalJson, parsePolicy, policyToJsonValue, type Policy } from "./policy.js";
import { toHex } from "./bytes.js";

/** `{payload, signature}` as the KDS signs it. */
export interface SignedObject {
  payload: string;
  signature: string;
}

/** A key spec: purpose, policy (who may receive the key), epoch. */
export interface KeySpec {
  purpose: "code" | "invoke";
  policy: Policy;
  epoch: number;
  /** SHA-256 of the canonical spec bytes, lowercase hex. */
  id: string;
}

/** A verified key bundle. */
export interface KeyBundle {
  spec: KeySpec;
  keyConfig: KeyConfig;
  notBefore: number;
  notAfter: number;
}

/** Why a bundle was refused (`reason` mirrors clave-proto's error names). */
export class BundleError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = "BundleError";
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function exactKeys(o: Record<string, unknown>, keys: string[], what: string) {
  const got = Object.keys(o).sort();
  if (got.join(",") !== [...keys].sort().join(",")) throw new BundleError("invalid-json", `${what}: fields must be exactly ${keys.join(", ")}`);
}

function u64(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new BundleError("invalid-json", `${what} must be an unsigned integer`);
  return v;
}

function field(s: unknown, what: string): Uint8Array {
  if (typeof s !== "string") throw new BundleError("invalid-json", `${what} must be a string`);
  try {
    return b64urlDecode(s);
  } catch {
    throw new BundleError("invalid-base64", `${what} is not unpadded base64url`);
  }
}

/** Verifies a signed object's Ed25519 signature and returns the exact payload bytes. */
export async function verifySigned(signed: unknown, identity: Uint8Array): Promise<Uint8Array> {
  if (!isObj(signed)) throw new BundleError("invalid-json", "a signed object must be a JSON object");
  exactKeys(signed, ["payload", "signature"], "signed object");
  const payload = field(signed.payload, "payload");
  const sig = field(signed.signature, "signature");
  if (!(await ed25519Verify(identity, payload, sig))) throw new BundleError("bad-signature", "the signature does not verify under the attested KDS identity key");
  return payload;
}

/** Parses canonical key spec bytes; anything not canonical is refused. */
export async function parseKeySpec(bytes: Uint8Array): Promise<KeySpec> {
  let v: unknown;
  try {
    v = JSON.parse(fromUtf8(bytes));
  } catch (e) {
    throw new BundleError("invalid-json", `key spec: ${(e as Error).message}`);
  }
  if (!isObj(v)) throw new BundleError("invalid-json", "key spec: not an object");
  exactKeys(v, ["purpose", "policy", "epoch"], "key spec");
  if (v.purpose !== "code" && v.purpose !== "invoke") throw new BundleError("invalid-json", "key spec: unknown purpose");
  const epoch = u64(v.epoch, "key spec epoch");
  let policy: Policy;
  try {
    policy = parsePolicy(v.policy);
  } catch (e) {
    throw new BundleError("invalid-json", `key spec: ${(e as Error).message}`);
  }
  const canonical = canonicalJson({ purpose: v.purpose, policy: policyToJsonValue(policy), epoch });
  if (canonical !== fromUtf8(bytes)) throw new BundleError("non-canonical", "key spec: not in canonical form");
  return { purpose: v.purpose, policy, epoch, id: toHex(await sha256(utf8(canonical))) };
}

/** Parses a bundle payload (after its signature was verified) and checks its internal consistency. */
export async function parseBundlePayload(payload: Uint8Array): Promise<KeyBundle> {
  let v: unknown;
  try {
    v = JSON.parse(fromUtf8(payload));
  } catch (e) {
    throw new BundleError("invalid-json", `key bundle: ${(e as Error).message}`);
  }
  if (!isObj(v)) throw new BundleError("invalid-json", "key bundle: not an object");
  exactKeys(v, ["spec", "key_config", "not_before", "not_after"], "key bundle");
  const spec = await parseKeySpec(field(v.spec, "spec"));
  let keyConfig: KeyConfig;
  try {
    keyConfig = decodeKeyConfig(field(v.key_config, "key_config"));
  } catch (e) {
    throw new BundleError("key-config", `key bundle: ${(e as Error).message}`);
  }
  const expected = parseInt(spec.id.slice(0, 2), 16);
  if (keyConfig.keyId !== expected) throw new BundleError("key-id-mismatch", `key bundle: key id ${keyConfig.keyId} is not the spec's ${expected}`);
  const notBefore = u64(v.not_before, "not_before");
  const notAfter = u64(v.not_after, "not_after");
  if (notBefore > notAfter) throw new BundleError("invalid-validity", "key bundle: not_before is after not_after");
  return { spec, keyConfig, notBefore, notAfter };
}

/** Whether a bundle is valid at `now`. */
export function checkValidity(b: KeyBundle, now: number): void {
  if (now < b.notBefore) throw new BundleError("not-yet-valid", `key bundle not valid before ${b.notBefore} (now ${now})`);
  if (now > b.notAfter) throw new BundleError("expired", `key bundle expired at ${b.notAfter} (now ${now})`);
}
