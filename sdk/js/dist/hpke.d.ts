export declare const KEM_X25519_HKDF_SHA256 = 32;
export declare const KDF_HKDF_SHA256 = 1;
export declare const AEAD_AES_128_GCM = 1;
export declare const AEAD_AES_256_GCM = 2;
/** HMAC-SHA256(key, data). */
export declare function hmacSha256(key: Uint8Array, data: Uint8Array): Promise<Uint8Array>;
/** HKDF-Extract (RFC 5869) with SHA-256. */
export declare function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Promise<Uint8Array>;
/** HKDF-Expand (RFC 5869) with SHA-256. */
export declare function hkdfExpand(prk: Uint8Array, info: Uint8Array, len: number): Promise<Uint8Array>;
/** SHA-256 of `data`. */
export declare function sha256(data: Uint8Array): Promise<Uint8Array>;
/** SHA-512 of `data`. */
export declare function sha512(data: Uint8Array): Promise<Uint8Array>;
/** Key and nonce lengths of a supported AEAD. */
export declare function aeadSizes(aead: number): {
    nk: number;
    nn: number;
};
/** AES-GCM encryption (128-bit tag). */
export declare function aesGcmSeal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array): Promise<Uint8Array>;
/** AES-GCM decryption; rejects on a failed tag. */
export declare function aesGcmOpen(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, ct: Uint8Array): Promise<Uint8Array>;
/** An HPKE sender context after `SetupBaseS` (sequence number 0 only: OHTTP seals once). */
export interface SenderContext {
    /** The encapsulated key. */
    enc: Uint8Array;
    /** Seal the (single) message. */
    seal(aad: Uint8Array, pt: Uint8Array): Promise<Uint8Array>;
    /** The exporter (RFC 9180 §5.3). */
    export(context: Uint8Array, len: number): Promise<Uint8Array>;
}
/**
 * `SetupBaseS(pkR, info)` for DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and `aead`.
 * `fixedEphemeral` (32 raw bytes) exists for known-answer tests only.
 */
export declare function setupBaseS(pkR: Uint8Array, info: Uint8Array, aead: number, fixedEphemeral?: Uint8Array): Promise<SenderContext>;
