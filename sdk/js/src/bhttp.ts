// Binary HTTP (RFC 9292), known-length messages: what clave's invoke envelope needs (encode a
// request, decode a response). Decoding is strict: truncation inside a field, a bad framing
// indicator and non-zero bytes after the message are errors.

import { Reader, concat, fromUtf8, utf8 } from "./bytes.js";

/** QUIC variable-length integer (RFC 9000 §16). */
export function varint(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError("varint out of range");
  if (n < 64) return new Uint8Array([n]);
  if (n < 16384) return new Uint8Array([0x40 | (n >> 8), n & 255]);
  if (n < 2 ** 30) return new Uint8Array([0x80 | (n >>> 24), (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
  const out = new Uint8Array(8);
  let v = n;
  for (let i = 7; i >= 0; i--) {
    out[i] = v % 256;
    v = Math.floor(v / 256);
  }
  out[0]! |= 0xc0;
  return out;
}

function readVarint(r: Reader): number {
  const first = r.u8();
  const len = 1 << (first >> 6);
  let v = first & 0x3f;
  for (let i = 1; i < len; i++) v = v * 256 + r.u8();
  if (!Number.isSafeInteger(v)) throw new RangeError("varint too large");
  return v;
}

function lp(b: Uint8Array): Uint8Array {
  return concat(varint(b.length), b);
}

/** A header field: lowercase name, value. */
export type Field = [name: string, value: string];

function fieldSection(fields: Field[]): Uint8Array {
  const body = concat(...fields.map(([n, v]) => concat(lp(utf8(n)), lp(utf8(v)))));
  return lp(body);
}

/** A known-length BHTTP request. */
export function encodeRequest(req: {
  method: string;
  scheme: string;
  authority: string;
  path: string;
  headers: Field[];
  body: Uint8Array;
}): Uint8Array {
  return concat(
    varint(0),
    lp(utf8(req.method)),
    lp(utf8(req.scheme)),
    lp(utf8(req.authority)),
    lp(utf8(req.path)),
    fieldSection(req.headers),
    lp(req.body),
    varint(0),
  );
}

/** A decoded BHTTP response. */
export interface BhttpResponse {
  status: number;
  headers: Field[];
  body: Uint8Array;
}

function readFields(r: Reader): Field[] {
  const len = readVarint(r);
  const section = new Reader(r.take(len), "binary HTTP field section");
  const out: Field[] = [];
  while (section.remaining() > 0) {
    const name = fromUtf8(section.take(readVarint(section)));
    const value = fromUtf8(section.take(readVarint(section)));
    out.push([name, value]);
  }
  return out;
}

/** Decodes a known-length BHTTP response (informational responses are skipped). */
export function decodeResponse(bytes: Uint8Array): BhttpResponse {
  const r = new Reader(bytes, "binary HTTP response");
  if (readVarint(r) !== 1) throw new RangeError("binary HTTP: not a known-length response");
  let status: number;
  for (;;) {
    status = readVarint(r);
    if (status >= 100 && status <= 199) {
      readFields(r);
      continue;
    }
    break;
  }
  if (status < 200 || status > 599) throw new RangeError(`binary HTTP: invalid status ${status}`);
  // RFC 9292 §3.8: a message may be truncated after the header section (empty content, no trailers).
  const headers = r.remaining() ? readFields(r) : [];
  const body = r.remaining() ? r.take(readVarint(r)).slice() : new Uint8Array(0);
  if (r.remaining()) readFields(r);
  while (r.remaining()) {
    if (r.u8() !== 0) throw new RangeError("binary HTTP: trailing bytes");
  }
  return { status, headers, body };
}
