// Oblivious HTTP (RFC 9458) client side: key configurations, request encapsulation, response
// decapsulation, on the WebCrypto HPKE of ./hpke.ts.

import { Reader, be, concat, toHex, utf8 } from "./bytes.js";
import {
  AEAD_AES_128_GCM,
  AEAD_AES_256_GCM,
  KDF_HKDF_SHA256,
  KEM_X25519_HKDF_SHA256,
  aeadSizes,
  aesGcmOpen,
  hkdfExpand,
  hkdfExtract,
  setupBaseS,
  type SenderContext,
} from "./hpke.js";

export const LABEL_REQUEST = "message/bhttp request";
export const LABEL_RESPONSE = "message/bhttp response";

/** A symmetric suite of a key configuration. */
export interface Suite {
  kdf: number;
  aead: number;
}

/** An OHTTP key configuration (RFC 9458 §3.1). */
export interface KeyConfig {
  keyId: number;
  kem: number;
  publicKey: Uint8Array;
  suites: Suite[];
}

const X_WING = 0x647a;

function npk(kem: number): number {
  if (kem === KEM_X25519_HKDF_SHA256) return 32;
  if (kem === X_WING) return 1216;
  throw new RangeError(`unsupported KEM 0x${kem.toString(16)}`);
}

/**
 * The X25519 points of small order (0, 1, the two points of order 8, p - 1) and the non-canonical
 * encodings p and p + 1, as listed by RFC 7748 implementations; compared with the ignored top bit
 * cleared, so every encoding is caught.
 */
const LOW_ORDER = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
  "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];

function lowOrderX25519(pk: Uint8Array): boolean {
  const masked = pk.slice();
  masked[31]! &= 0x7f;
  return LOW_ORDER.includes(toHex(masked));
}

/** Whether this SDK can seal with `suite`. */
function supported(s: Suite): boolean {
  return s.kdf === KDF_HKDF_SHA256 && (s.aead === AEAD_AES_128_GCM || s.aead === AEAD_AES_256_GCM);
}

/**
 * Decodes one key configuration: `key_id (1) || kem_id (2) || public_key || suites_len (2) ||
 * suites`. Unknown suites are kept; a configuration with no suite this SDK supports, or a KEM
 * other than DHKEM(X25519, HKDF-SHA256), is refused with a `RangeError` that says so.
 */
export function decodeKeyConfig(bytes: Uint8Array): KeyConfig {
  const r = new Reader(bytes, "OHTTP key configuration");
  const keyId = r.u8();
  const kem = r.u16();
  const publicKey = r.take(npk(kem)).slice();
  const slen = r.u16();
  if (slen === 0 || slen % 4 !== 0) throw new RangeError("OHTTP key configuration: bad suites length");
  const suites: Suite[] = [];
  for (let i = 0; i < slen / 4; i++) suites.push({ kdf: r.u16(), aead: r.u16() });
  r.finish();
  if (kem !== KEM_X25519_HKDF_SHA256) throw new RangeError("the key uses the X-Wing KEM, which this SDK does not implement yet");
  if (!suites.some(supported)) throw new RangeError("OHTTP key configuration: no supported suite");
  if (lowOrderX25519(publicKey)) throw new RangeError("OHTTP key configuration: all-zero or low-order X25519 public key");
  return { keyId, kem, publicKey, suites };
}

/** Encodes a key configuration. */
export function encodeKeyConfig(c: KeyConfig): Uint8Array {
  return concat(
    new Uint8Array([c.keyId]),
    be(c.kem, 2),
    c.publicKey,
    be(c.suites.length * 4, 2),
    ...c.suites.map((s) => concat(be(s.kdf, 2), be(s.aead, 2))),
  );
}

/** What opens the answer to one encapsulated request. Holds the request's HPKE context. */
export interface ResponseOpener {
  /** Opens `response_nonce || ct` (RFC 9458 §4.4); rejects when it does not authenticate. */
  open(encResponse: Uint8Array): Promise<Uint8Array>;
}

/**
 * A request encapsulation made before its request is known (RFC 9458 §4.3): a fresh ephemeral
 * key, its agreement with `config`'s public key and the HPKE key schedule. That is a request's
 * X25519 work, which a client can do while its previous call is in flight;
 * {@link encapsulatePrepared} then only seals. It serves one request (its context seals once)
 * and only the key configuration it was made for ({@link preparedFor}).
 */
export interface PreparedRequest {
  /** The key configuration it was made for. */
  readonly config: KeyConfig;
  /** @internal */ readonly hdr: Uint8Array;
  /** @internal */ readonly aead: number;
  /** @internal */ readonly ctx: SenderContext;
}

/**
 * Prepares the encapsulation of one request to `config` with the first supported suite.
 * `testing.ephemeral` fixes the ephemeral private key to reproduce published bytes; never use it
 * otherwise.
 */
export async function prepareRequest(config: KeyConfig, testing?: { ephemeral?: Uint8Array }): Promise<PreparedRequest> {
  const suite = config.suites.find(supported);
  if (!suite) throw new RangeError("no supported suite");
  const hdr = concat(new Uint8Array([config.keyId]), be(config.kem, 2), be(suite.kdf, 2), be(suite.aead, 2));
  const info = concat(utf8(LABEL_REQUEST), new Uint8Array([0]), hdr);
  const ctx = await setupBaseS(config.publicKey, info, suite.aead, testing?.ephemeral);
  // A copy: a caller that changes its configuration object afterwards cannot make this one
  // look prepared for another key.
  const own: KeyConfig = {
    keyId: config.keyId,
    kem: config.kem,
    publicKey: config.publicKey.slice(),
    suites: config.suites.map((s) => ({ ...s })),
  };
  return { config: own, hdr, aead: suite.aead, ctx };
}

/** Whether `prepared` was made for `config` (same key id, KEM, public key and suites). */
export function preparedFor(prepared: PreparedRequest, config: KeyConfig): boolean {
  return sameKeyConfig(prepared.config, config);
}

/** Whether two key configurations are the same (key id, KEM, public key and suites). */
export function sameKeyConfig(a: KeyConfig, b: KeyConfig): boolean {
  return (
    a === b ||
    (a.keyId === b.keyId &&
      a.kem === b.kem &&
      a.publicKey.length === b.publicKey.length &&
      a.publicKey.every((x, i) => x === b.publicKey[i]) &&
      a.suites.length === b.suites.length &&
      a.suites.every((s, i) => s.kdf === b.suites[i]!.kdf && s.aead === b.suites[i]!.aead))
  );
}

/**
 * Encapsulates `request` (BHTTP bytes) with an encapsulation prepared by {@link prepareRequest};
 * rejects when that encapsulation has sealed a request already.
 */
export async function encapsulatePrepared(
  prepared: PreparedRequest,
  request: Uint8Array,
): Promise<{ encRequest: Uint8Array; opener: ResponseOpener }> {
  const { hdr, aead, ctx } = prepared;
  const ct = await ctx.seal(new Uint8Array(0), request);
  const enc = ctx.enc;
  const { nk, nn } = aeadSizes(aead);
  const nonceLen = Math.max(nk, nn);
  const secret = await ctx.export(utf8(LABEL_RESPONSE), nonceLen);
  return {
    encRequest: concat(hdr, enc, ct),
    opener: {
      async open(encResponse) {
        if (encResponse.length < nonceLen + 16) throw new RangeError("encapsulated response: truncated");
        const responseNonce = encResponse.subarray(0, nonceLen);
        const prk = await hkdfExtract(concat(enc, responseNonce), secret);
        const key = await hkdfExpand(prk, utf8("key"), nk);
        const nonce = await hkdfExpand(prk, utf8("nonce"), nn);
        return aesGcmOpen(key, nonce, new Uint8Array(0), encResponse.subarray(nonceLen));
      },
    },
  };
}

/**
 * Encapsulates `request` (BHTTP bytes) to `config` (RFC 9458 §4.3) with the first supported
 * suite: {@link prepareRequest}, then {@link encapsulatePrepared}. `testing.ephemeral` fixes the
 * ephemeral private key to reproduce published bytes; never use it otherwise.
 */
export async function encapsulateRequest(
  config: KeyConfig,
  request: Uint8Array,
  testing?: { ephemeral?: Uint8Array },
): Promise<{ encRequest: Uint8Array; opener: ResponseOpener }> {
  return encapsulatePrepared(await prepareRequest(config, testing), request);
}
