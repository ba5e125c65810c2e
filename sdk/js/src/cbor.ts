// A minimal, strict CBOR (RFC 8949) reader for Nitro attestation documents: definite lengths,
// bounded nesting, no floats, integers up to 2^53.

import { Reader, fromUtf8 } from "./bytes.js";

export type CborValue =
  | { t: "uint"; v: number }
  | { t: "neg"; v: number }
  | { t: "bytes"; v: Uint8Array }
  | { t: "text"; v: string }
  | { t: "array"; v: CborValue[] }
  | { t: "map"; v: [CborValue, CborValue][] }
  | { t: "tag"; tag: number; v: CborValue }
  | { t: "bool"; v: boolean }
  | { t: "null" };

function arg(r: Reader, info: number): number {
  if (info < 24) return info;
  if (info === 24) return r.u8();
  if (info === 25) return r.u16();
  if (info === 26) return r.u32();
  if (info === 27) return r.u64();
  throw new RangeError("CBOR: indefinite lengths and reserved values are not supported");
}

function item(r: Reader, depth: number): CborValue {
  if (depth > 16) throw new RangeError("CBOR: nested too deeply");
  const b = r.u8();
  const major = b >> 5;
  const info = b & 31;
  switch (major) {
    case 0:
      return { t: "uint", v: arg(r, info) };
    case 1:
      return { t: "neg", v: arg(r, info) };
    case 2:
      return { t: "bytes", v: r.take(arg(r, info)).slice() };
    case 3:
      return { t: "text", v: fromUtf8(r.take(arg(r, info))) };
    case 4: {
      const n = arg(r, info);
      if (n > r.remaining()) throw new RangeError("CBOR: truncated");
      const v: CborValue[] = [];
      for (let i = 0; i < n; i++) v.push(item(r, depth + 1));
      return { t: "array", v };
    }
    case 5: {
      const n = arg(r, info);
      if (n * 2 > r.remaining()) throw new RangeError("CBOR: truncated");
      const v: [CborValue, CborValue][] = [];
      for (let i = 0; i < n; i++) v.push([item(r, depth + 1), item(r, depth + 1)]);
      return { t: "map", v };
    }
    case 6:
      return { t: "tag", tag: arg(r, info), v: item(r, depth + 1) };
    default:
      if (info === 20 || info === 21) return { t: "bool", v: info === 21 };
      if (info === 22) return { t: "null" };
      throw new RangeError("CBOR: floats and other simple values are not supported");
  }
}

/** Decodes exactly one CBOR item filling `bytes`. */
export function decodeCbor(bytes: Uint8Array): CborValue {
  const r = new Reader(bytes, "CBOR");
  const v = item(r, 0);
  r.finish();
  return v;
}

/** The value of text key `k` in a map. */
export function mapGet(m: CborValue, k: string): CborValue | undefined {
  if (m.t !== "map") return undefined;
  return m.v.find(([key]) => key.t === "text" && key.v === k)?.[1];
}

function head(major: number, n: number): number[] {
  if (n < 24) return [(major << 5) | n];
  if (n < 256) return [(major << 5) | 24, n];
  if (n < 65536) return [(major << 5) | 25, n >> 8, n & 255];
  return [(major << 5) | 26, (n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
}

/** CBOR encoding of a byte string (for the COSE Sig_structure). */
export function cborBytes(b: Uint8Array): Uint8Array {
  const h = head(2, b.length);
  const out = new Uint8Array(h.length + b.length);
  out.set(h);
  out.set(b, h.length);
  return out;
}

/** CBOR encoding of a text string. */
export function cborText(s: string): Uint8Array {
  return cborBytes(new TextEncoder().encode(s)).map((x, i) => (i === 0 ? (x & 0x1f) | 0x60 : x));
}

/** CBOR head of an array of `n` items. */
export function cborArrayHead(n: number): Uint8Array {
  return new Uint8Array(head(4, n));
}
