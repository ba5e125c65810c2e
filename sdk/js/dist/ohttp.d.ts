import { type SenderContext } from "./hpke.js";
export declare const LABEL_REQUEST = "message/bhttp request";
export declare const LABEL_RESPONSE = "message/bhttp response";
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
/**
 * Decodes one key configuration: `key_id (1) || kem_id (2) || public_key || suites_len (2) ||
 * suites`. Unknown suites are kept; a configuration with no suite this SDK supports, or a KEM
 * other than DHKEM(X25519, HKDF-SHA256), is refused with a `RangeError` that says so.
 */
export declare function decodeKeyConfig(bytes: Uint8Array): KeyConfig;
/** Encodes a key configuration. */
export declare function encodeKeyConfig(c: KeyConfig): Uint8Array;
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
export declare function prepareRequest(config: KeyConfig, testing?: {
    ephemeral?: Uint8Array;
}): Promise<PreparedRequest>;
/** Whether `prepared` was made for `config` (same key id, KEM, public key and suites). */
export declare function preparedFor(prepared: PreparedRequest, config: KeyConfig): boolean;
/** Whether two key configurations are the same (key id, KEM, public key and suites). */
export declare function sameKeyConfig(a: KeyConfig, b: KeyConfig): boolean;
/**
 * Encapsulates `request` (BHTTP bytes) with an encapsulation prepared by {@link prepareRequest};
 * rejects when that encapsulation has sealed a request already.
 */
export declare function encapsulatePrepared(prepared: PreparedRequest, request: Uint8Array): Promise<{
    encRequest: Uint8Array;
    opener: ResponseOpener;
}>;
/**
 * Encapsulates `request` (BHTTP bytes) to `config` (RFC 9458 §4.3) with the first supported
 * suite: {@link prepareRequest}, then {@link encapsulatePrepared}. `testing.ephemeral` fixes the
 * ephemeral private key to reproduce published bytes; never use it otherwise.
 */
export declare function encapsulateRequest(config: KeyConfig, request: Uint8Array, testing?: {
    ephemeral?: Uint8Array;
}): Promise<{
    encRequest: Uint8Array;
    opener: ResponseOpener;
}>;
