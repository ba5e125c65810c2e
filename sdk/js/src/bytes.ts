// Byte helpers shared by the SDK: hex, unpadded base64url, concatenation, big-endian integers.

/** Lowercase hex of `b`. */
export function toHex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/** Bytes of a hex string (either case); throws on odd length or a non-hex digit. */
export function fromHex(s: string): Uint8Array {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) {
    throw new TypeError("not a hex string");
  }
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** Unpadded base64url (RFC 4648 §5). */
export function b64urlEncode(b: Uint8Array): string {
  let s = "";
  let i = 0;
  for (; i + 3 <= b.length; i += 3) {
    const n = (b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!;
    s += B64[n >> 18]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]! + B64[n & 63]!;
  }
  const rest = b.length - i;
  if (rest === 1) {
    const n = b[i]! << 16;
    s += B64[n >> 18]! + B64[(n >> 12) & 63]!;
  } else if (rest === 2) {
    const n = (b[i]! << 16) | (b[i + 1]! << 8);
    s += B64[n >> 18]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]!;
  }
  return s;
}

/**
 * Decodes unpadded base64url strictly, as clave's decoders do: no padding, no other alphabet,
 * no non-canonical trailing bits. Throws `TypeError` otherwise.
 */
export function b64urlDecode(s: string): Uint8Array {
  if (s.length % 4 === 1) throw new TypeError("invalid base64url length");
  const vals: number[] = [];
  for (const c of s) {
    const v = B64.indexOf(c);
    if (v < 0) throw new TypeError("invalid base64url character");
    vals.push(v);
  }
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  let o = 0;
  let i = 0;
  for (; i + 4 <= vals.length; i += 4) {
    const n = (vals[i]! << 18) | (vals[i + 1]! << 12) | (vals[i + 2]! << 6) | vals[i + 3]!;
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 255;
    out[o++] = n & 255;
  }
  const rest = vals.length - i;
  if (rest === 2) {
    if (vals[i + 1]! & 15) throw new TypeError("non-canonical base64url");
    out[o++] = (vals[i]! << 2) | (vals[i + 1]! >> 4);
  } else if (rest === 3) {
    if (vals[i + 2]! & 3) throw new TypeError("non-canonical base64url");
    const n = (vals[i]! << 10) | (vals[i + 1]! << 4) | (vals[i + 2]! >> 2);
    out[o++] = n >> 8;
    out[o++] = n & 255;
  }
  return out;
}

/** The concatenation of `parts`. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Whether two byte strings are equal (not constant time: use only on public values). */
export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/** Big-endian `n` in `len` bytes (n < 2^53). */
export function be(n: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  let v = n;
  for (let i = len - 1; i >= 0; i--) {
    out[i] = v % 256;
    v = Math.floor(v / 256);
  }
  return out;
}

const enc = new TextEncoder();
const decStrict = new TextDecoder("utf-8", { fatal: true });

/** UTF-8 bytes of `s`. */
export function utf8(s: string): Uint8Array {
  return enc.encode(s);
}

/** Strict UTF-8 decoding: throws `TypeError` on invalid bytes. */
export function fromUtf8(b: Uint8Array): string {
  return decStrict.decode(b);
}

/** A copy of `b` in a fresh ArrayBuffer (WebCrypto wants `BufferSource`s it can read). */
export function buf(b: Uint8Array): ArrayBuffer {
  return b.slice().buffer as ArrayBuffer;
}

/** A bounds-checked reader over bytes. `what` names the structure in errors. */
export class Reader {
  pos = 0;
  constructor(
    readonly bytes: Uint8Array,
    readonly what: string,
  ) {}
  remaining(): number {
    return this.bytes.length - this.pos;
  }
  take(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.bytes.length) throw new RangeError(`${this.what}: truncated`);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  u8(): number {
    return this.take(1)[0]!;
  }
  u16(): number {
    const b = this.take(2);
    return (b[0]! << 8) | b[1]!;
  }
  u32(): number {
    const b = this.take(4);
    return ((b[0]! << 24) >>> 0) + (b[1]! << 16) + (b[2]! << 8) + b[3]!;
  }
  /** Big-endian u64 as a number; throws above 2^53. */
  u64(): number {
    const hi = this.u32();
    const lo = this.u32();
    if (hi >= 0x200000) throw new RangeError(`${this.what}: 64-bit value too large`);
    return hi * 0x100000000 + lo;
  }
  finish(): void {
    if (this.pos !== this.bytes.length) throw new RangeError(`${this.what}: trailing bytes`);
  }
}
