/** Lowercase hex of `b`. */
export declare function toHex(b: Uint8Array): string;
/** Bytes of a hex string (either case); throws on odd length or a non-hex digit. */
export declare function fromHex(s: string): Uint8Array;
/** Unpadded base64url (RFC 4648 §5). */
export declare function b64urlEncode(b: Uint8Array): string;
/**
 * Decodes unpadded base64url strictly, as clave's decoders do: no padding, no other alphabet,
 * no non-canonical trailing bits. Throws `TypeError` otherwise.
 */
export declare function b64urlDecode(s: string): Uint8Array;
/** The concatenation of `parts`. */
export declare function concat(...parts: Uint8Array[]): Uint8Array;
/** Whether two byte strings are equal (not constant time: use only on public values). */
export declare function equal(a: Uint8Array, b: Uint8Array): boolean;
/** Big-endian `n` in `len` bytes (n < 2^53). */
export declare function be(n: number, len: number): Uint8Array;
/** UTF-8 bytes of `s`. */
export declare function utf8(s: string): Uint8Array;
/** Strict UTF-8 decoding: throws `TypeError` on invalid bytes. */
export declare function fromUtf8(b: Uint8Array): string;
/** A copy of `b` in a fresh ArrayBuffer (WebCrypto wants `BufferSource`s it can read). */
export declare function buf(b: Uint8Array): ArrayBuffer;
/** A bounds-checked reader over bytes. `what` names the structure in errors. */
export declare class Reader {
    readonly bytes: Uint8Array;
    readonly what: string;
    pos: number;
    constructor(bytes: Uint8Array, what: string);
    remaining(): number;
    take(n: number): Uint8Array;
    u8(): number;
    u16(): number;
    u32(): number;
    /** Big-endian u64 as a number; throws above 2^53. */
    u64(): number;
    finish(): void;
}
