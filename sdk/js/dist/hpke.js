// HPKE (RFC 9180), mode base, for DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-128-GCM or
// AES-256-GCM, on WebCrypto alone (X25519, HMAC-SHA256 and AES-GCM are in every current browser
// and in Node >= 20). Only what clave's OHTTP client needs: the sender side, single sequence
// number, and the exporter.
import { b64urlDecode, be, buf, concat, utf8 } from "./bytes.js";
export const KEM_X25519_HKDF_SHA256 = 0x0020;
export const KDF_HKDF_SHA256 = 0x0001;
export const AEAD_AES_128_GCM = 0x0001;
export const AEAD_AES_256_GCM = 0x0002;
const subtle = () => {
    const s = globalThis.crypto?.subtle;
    if (!s)
        throw new Error("WebCrypto (crypto.subtle) is not available: use a secure context (https or localhost) or Node >= 20");
    return s;
};
/** HMAC-SHA256(key, data). */
export async function hmacSha256(key, data) {
    // An empty HMAC key equals 32 zero bytes (keys are zero-padded to the block size); WebCrypto
    // refuses empty keys.
    const k = await subtle().importKey("raw", buf(key.length ? key : new Uint8Array(32)), { name: "HMAC", hash: "SHA-256" }, false, [
        "sign",
    ]);
    return new Uint8Array(await subtle().sign("HMAC", k, buf(data)));
}
/** HKDF-Extract (RFC 5869) with SHA-256. */
export function hkdfExtract(salt, ikm) {
    return hmacSha256(salt, ikm);
}
/** HKDF-Expand (RFC 5869) with SHA-256. */
export async function hkdfExpand(prk, info, len) {
    if (len > 255 * 32)
        throw new RangeError("HKDF-Expand length too large");
    const out = new Uint8Array(len);
    let t = new Uint8Array(0);
    let o = 0;
    for (let i = 1; o < len; i++) {
        t = await hmacSha256(prk, concat(t, info, new Uint8Array([i])));
        const n = Math.min(t.length, len - o);
        out.set(t.subarray(0, n), o);
        o += n;
    }
    return out;
}
/** SHA-256 of `data`. */
export async function sha256(data) {
    return new Uint8Array(await subtle().digest("SHA-256", buf(data)));
}
/** SHA-512 of `data`. */
export async function sha512(data) {
    return new Uint8Array(await subtle().digest("SHA-512", buf(data)));
}
const HPKE_V1 = utf8("HPKE-v1");
function labeledExtract(suite, salt, label, ikm) {
    return hkdfExtract(salt, concat(HPKE_V1, suite, utf8(label), ikm));
}
function labeledExpand(suite, prk, label, info, len) {
    return hkdfExpand(prk, concat(be(len, 2), HPKE_V1, suite, utf8(label), info), len);
}
/** Key and nonce lengths of a supported AEAD. */
export function aeadSizes(aead) {
    if (aead === AEAD_AES_128_GCM)
        return { nk: 16, nn: 12 };
    if (aead === AEAD_AES_256_GCM)
        return { nk: 32, nn: 12 };
    throw new RangeError(`unsupported AEAD ${aead}`);
}
/** AES-GCM encryption (128-bit tag). */
export async function aesGcmSeal(key, nonce, aad, pt) {
    const k = await subtle().importKey("raw", buf(key), "AES-GCM", false, ["encrypt"]);
    return new Uint8Array(await subtle().encrypt({ name: "AES-GCM", iv: buf(nonce), additionalData: buf(aad) }, k, buf(pt)));
}
/** AES-GCM decryption; rejects on a failed tag. */
export async function aesGcmOpen(key, nonce, aad, ct) {
    const k = await subtle().importKey("raw", buf(key), "AES-GCM", false, ["decrypt"]);
    return new Uint8Array(await subtle().decrypt({ name: "AES-GCM", iv: buf(nonce), additionalData: buf(aad) }, k, buf(ct)));
}
/** PKCS#8 prefix of an X25519 private key (RFC 8410): the raw 32-byte key follows. */
const X25519_PKCS8_PREFIX = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);
async function ephemeral(fixed) {
    if (fixed) {
        // Test hook: reproduce published bytes from a given ephemeral private key.
        const sk = await subtle().importKey("pkcs8", buf(concat(X25519_PKCS8_PREFIX, fixed)), { name: "X25519" }, true, ["deriveBits"]);
        const jwk = await subtle().exportKey("jwk", sk);
        return { sk, pk: b64urlDecode(jwk.x) };
    }
    const pair = (await subtle().generateKey({ name: "X25519" }, false, ["deriveBits"]));
    const pk = new Uint8Array(await subtle().exportKey("raw", pair.publicKey));
    return { sk: pair.privateKey, pk };
}
/**
 * `SetupBaseS(pkR, info)` for DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and `aead`.
 * `fixedEphemeral` (32 raw bytes) exists for known-answer tests only.
 */
export async function setupBaseS(pkR, info, aead, fixedEphemeral) {
    const { nk, nn } = aeadSizes(aead);
    const kemSuite = concat(utf8("KEM"), be(KEM_X25519_HKDF_SHA256, 2));
    const suite = concat(utf8("HPKE"), be(KEM_X25519_HKDF_SHA256, 2), be(KDF_HKDF_SHA256, 2), be(aead, 2));
    const e = await ephemeral(fixedEphemeral);
    const peer = await subtle().importKey("raw", buf(pkR), { name: "X25519" }, false, []);
    let dh;
    try {
        dh = new Uint8Array(await subtle().deriveBits({ name: "X25519", public: peer }, e.sk, 256));
    }
    catch (cause) {
        throw new RangeError("X25519 failed (a low-order public key?)", { cause });
    }
    if (dh.every((x) => x === 0))
        throw new RangeError("X25519 produced the all-zero secret (low-order public key)");
    const kemContext = concat(e.pk, pkR);
    const eaePrk = await labeledExtract(kemSuite, new Uint8Array(0), "eae_prk", dh);
    const shared = await labeledExpand(kemSuite, eaePrk, "shared_secret", kemContext, 32);
    const empty = new Uint8Array(0);
    const pskIdHash = await labeledExtract(suite, empty, "psk_id_hash", empty);
    const infoHash = await labeledExtract(suite, empty, "info_hash", info);
    const ksc = concat(new Uint8Array([0]), pskIdHash, infoHash);
    const secret = await labeledExtract(suite, shared, "secret", empty);
    const key = await labeledExpand(suite, secret, "key", ksc, nk);
    const baseNonce = await labeledExpand(suite, secret, "base_nonce", ksc, nn);
    const exporterSecret = await labeledExpand(suite, secret, "exp", ksc, 32);
    let used = false;
    return {
        enc: e.pk,
        async seal(aad, pt) {
            if (used)
                throw new Error("this HPKE context seals one message only");
            used = true;
            return aesGcmSeal(key, baseNonce, aad, pt);
        },
        export(context, len) {
            return labeledExpand(suite, exporterSecret, "sec", context, len);
        },
    };
}
