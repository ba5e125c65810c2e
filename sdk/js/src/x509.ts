// Just enough DER and X.509 for the SEV-SNP and Nitro verifiers: strict TLV reading, PEM, the
// raw TBS bytes (signatures are checked over them, never over a re-encoding), names, validity,
// public keys and extensions. Signatures go through WebCrypto: RSA-PSS (AMD ARK/ASK/VCEK) and
// ECDSA P-384 (AWS Nitro, SNP reports).

import { Reader, buf, concat, equal, toHex } from "./bytes.js";

/** One DER element. */
export interface Tlv {
  tag: number;
  /** The whole element (header and content). */
  raw: Uint8Array;
  /** The content. */
  content: Uint8Array;
}

/** Reads one DER element at the reader's position (definite lengths only, minimal length encoding). */
export function readTlv(r: Reader): Tlv {
  const start = r.pos;
  const tag = r.u8();
  if ((tag & 0x1f) === 0x1f) throw new RangeError("DER: multi-byte tags are not supported");
  const first = r.u8();
  let len = first;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 3) throw new RangeError("DER: bad length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + r.u8();
    if (len < 0x80 || (n > 1 && len < 1 << (8 * (n - 1)))) throw new RangeError("DER: non-minimal length");
  }
  const content = r.take(len);
  return { tag, raw: r.bytes.subarray(start, r.pos), content };
}

/** The elements inside a constructed element's content. */
export function children(t: Tlv | Uint8Array): Tlv[] {
  const r = new Reader(t instanceof Uint8Array ? t : t.content, "DER");
  const out: Tlv[] = [];
  while (r.remaining()) out.push(readTlv(r));
  return out;
}

/** Parses exactly one element filling `bytes`. */
export function parseDer(bytes: Uint8Array): Tlv {
  const r = new Reader(bytes, "DER");
  const t = readTlv(r);
  r.finish();
  return t;
}

/** Dotted text of an OBJECT IDENTIFIER's content. */
export function oidText(content: Uint8Array): string {
  const parts: number[] = [];
  let v = 0;
  for (const b of content) {
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  const first = parts.shift() ?? 0;
  const a = first < 80 ? Math.floor(first / 40) : 2;
  return [a, first - a * 40, ...parts].join(".");
}

/** The DER blocks of PEM text (label `CERTIFICATE` unless given). */
export function pemBlocks(text: string, label = "CERTIFICATE"): Uint8Array[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, "g");
  const out: Uint8Array[] = [];
  for (const m of text.matchAll(re)) {
    const b64 = m[1]!.replace(/\s+/g, "");
    const bin = atob(b64);
    out.push(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  }
  return out;
}

/** A parsed certificate. */
export interface Cert {
  der: Uint8Array;
  tbs: Uint8Array;
  sigAlg: string;
  sigAlgParams?: Uint8Array;
  signature: Uint8Array;
  issuer: Uint8Array;
  subject: Uint8Array;
  notBefore: number;
  notAfter: number;
  /** The SubjectPublicKeyInfo, raw. */
  spki: Uint8Array;
  /** The public key algorithm OID. */
  keyAlg: string;
  /** Extension OID -> extnValue content (the OCTET STRING's bytes). */
  extensions: Map<string, Uint8Array>;
  /** basicConstraints cA, if the extension is present. */
  ca?: boolean;
  /** A name for error messages. */
  name: string;
}

function time(t: Tlv): number {
  const s = new TextDecoder().decode(t.content);
  let m: RegExpMatchArray | null;
  if (t.tag === 0x17 && (m = s.match(/^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/))) {
    const y = Number(m[1]);
    return Date.UTC(y < 50 ? 2000 + y : 1900 + y, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])) / 1000;
  }
  if (t.tag === 0x18 && (m = s.match(/^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/))) {
    return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])) / 1000;
  }
  throw new RangeError("X.509: bad time");
}

/** The common name of a raw Name, for messages. */
function commonName(name: Uint8Array): string {
  try {
    for (const rdn of children(parseDer(name))) {
      for (const atv of children(rdn)) {
        const [oid, val] = children(atv);
        if (oid && val && oidText(oid.content) === "2.5.4.3") return new TextDecoder().decode(val.content);
      }
    }
  } catch {
    // fall through
  }
  return "?";
}

/** Parses a DER certificate strictly (nothing may follow it). */
export function parseCert(der: Uint8Array, role: string): Cert {
  try {
    if (der.length > 16 * 1024) throw new RangeError("larger than 16 KiB");
    const top = parseDer(der);
    const [tbsT, algT, sigT, ...rest] = children(top);
    if (!tbsT || !algT || !sigT || rest.length || top.tag !== 0x30) throw new RangeError("not a certificate");
    const tbsParts = children(tbsT);
    let i = 0;
    if (tbsParts[0]?.tag === 0xa0) i++; // version
    const [, sigInner, issuer, validity, subject, spki] = tbsParts.slice(i);
    if (!sigInner || !issuer || !validity || !subject || !spki) throw new RangeError("truncated TBS");
    const [nb, na] = children(validity);
    const alg = children(algT);
    if (!equal(algT.raw, sigInner.raw)) throw new RangeError("signature algorithms of TBS and certificate differ");
    if (sigT.tag !== 0x03 || sigT.content[0] !== 0) throw new RangeError("signature is not a BIT STRING");
    const keyAlg = oidText(children(children(spki)[0]!)[0]!.content);
    const extensions = new Map<string, Uint8Array>();
    let ca: boolean | undefined;
    for (const t of tbsParts.slice(i + 6)) {
      if (t.tag !== 0xa3) continue;
      for (const ext of children(children(t)[0]!)) {
        const parts = children(ext);
        const oid = oidText(parts[0]!.content);
        const value = parts[parts.length - 1]!;
        if (value.tag !== 0x04) throw new RangeError("extension value is not an OCTET STRING");
        if (extensions.has(oid)) throw new RangeError(`duplicate extension ${oid}`);
        extensions.set(oid, value.content);
        if (oid === "2.5.29.19") {
          const bc = children(parseDer(value.content));
          ca = bc[0]?.tag === 0x01 ? bc[0].content[0] !== 0 : false;
        }
      }
    }
    const cert: Cert = {
      der,
      tbs: tbsT.raw,
      sigAlg: oidText(alg[0]!.content),
      signature: sigT.content.subarray(1),
      issuer: issuer.raw,
      subject: subject.raw,
      notBefore: time(nb!),
      notAfter: time(na!),
      spki: spki.raw,
      keyAlg,
      extensions,
      name: `${role} (CN=${commonName(subject.raw)})`,
    };
    if (alg[1]) cert.sigAlgParams = alg[1].raw;
    if (ca !== undefined) cert.ca = ca;
    return cert;
  } catch (e) {
    throw new RangeError(`${role}: not a valid certificate: ${(e as Error).message}`);
  }
}

/** SHA-256 fingerprint of DER bytes, hex. */
export async function fingerprint(der: Uint8Array): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", buf(der))));
}

const OID_RSA_ENCRYPTION = new Uint8Array([0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]);
export const OID_RSASSA_PSS = "1.2.840.113549.1.1.10";
export const OID_ECDSA_SHA384 = "1.2.840.10045.4.3.3";
export const OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1";

function derLen(n: number): Uint8Array {
  if (n < 0x80) return new Uint8Array([n]);
  if (n < 0x100) return new Uint8Array([0x81, n]);
  return new Uint8Array([0x82, n >> 8, n & 255]);
}
function derSeq(...parts: Uint8Array[]): Uint8Array {
  const body = concat(...parts);
  return concat(new Uint8Array([0x30]), derLen(body.length), body);
}

/** An RSA public key for RSA-PSS/SHA-384 from an SPKI (rsaEncryption or id-RSASSA-PSS). */
async function rsaPssKey(spki: Uint8Array): Promise<CryptoKey> {
  const [alg, bits] = children(parseDer(spki));
  let der = spki;
  if (oidText(children(alg!)[0]!.content) === OID_RSASSA_PSS) {
    // WebCrypto imports rsaEncryption SPKIs only: re-wrap the same key bits.
    der = derSeq(derSeq(OID_RSA_ENCRYPTION, new Uint8Array([0x05, 0x00])), bits!.raw);
  }
  return crypto.subtle.importKey("spki", buf(der), { name: "RSA-PSS", hash: "SHA-384" }, false, ["verify"]);
}

/** An ECDSA P-384 public key from an SPKI. */
export async function p384Key(c: Cert): Promise<CryptoKey> {
  if (c.keyAlg !== OID_EC_PUBLIC_KEY) throw new RangeError(`${c.name}: the key is not an EC key`);
  return crypto.subtle.importKey("spki", buf(c.spki), { name: "ECDSA", namedCurve: "P-384" }, false, ["verify"]);
}

/** A DER ECDSA-Sig-Value as the fixed-width r||s WebCrypto wants (48-byte halves for P-384). */
export function ecdsaDerToP1363(der: Uint8Array, half = 48): Uint8Array {
  const [r, s, ...rest] = children(parseDer(der));
  if (!r || !s || rest.length || r.tag !== 2 || s.tag !== 2) throw new RangeError("bad ECDSA signature");
  const fix = (x: Uint8Array) => {
    let v = x;
    while (v.length > 1 && v[0] === 0) v = v.subarray(1);
    if (v.length > half) throw new RangeError("bad ECDSA signature");
    const out = new Uint8Array(half);
    out.set(v, half - v.length);
    return out;
  };
  return concat(fix(r.content), fix(s.content));
}

/** The expected RSASSA-PSS parameters: SHA-384, MGF1 with SHA-384, salt 48, trailer 1. */
const PSS_SHA384 = "a00f300d06096086480165030402020500a11c301a06092a864886f70d010108300d06096086480165030402020500a203020130";
const PSS_SHA384_PARAMS = [`3034${PSS_SHA384}`, `3039${PSS_SHA384}a303020101`];

/** Whether `issuer` signed `subject` (RSA-PSS/SHA-384 or ECDSA/SHA-384 over the raw TBS). */
export async function verifyCertSignature(issuer: Cert, subject: Cert): Promise<boolean> {
  try {
    if (subject.sigAlg === OID_RSASSA_PSS) {
      if (!subject.sigAlgParams || !PSS_SHA384_PARAMS.includes(toHex(subject.sigAlgParams))) return false;
      const key = await rsaPssKey(issuer.spki);
      return await crypto.subtle.verify({ name: "RSA-PSS", saltLength: 48 }, key, buf(subject.signature), buf(subject.tbs));
    }
    if (subject.sigAlg === OID_ECDSA_SHA384) {
      const key = await p384Key(issuer);
      return await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-384" }, key, buf(ecdsaDerToP1363(subject.signature)), buf(subject.tbs));
    }
    return false;
  } catch {
    return false;
  }
}

/** Whether `c` is valid at `now` (unix seconds). */
export function validAt(c: Cert, now: number): boolean {
  return c.notBefore <= now && now <= c.notAfter;
}
