// AMD SEV-SNP: report parsing and verification, the same steps as clave-attest's `snp` module:
// structure; signature field; VCEK -> ASK -> ARK with the ARK pinned per product (Milan, Genoa,
// Turin; RSA-PSS/SHA-384); validity at `now`; the VCEK's hwID and TCB extensions match the
// report; the report's ECDSA P-384/SHA-384 signature by the VCEK. Claims: measurement, TCB
// [bl, tee, snp, ucode], debug (policy bit 19), VMPL, report data, signer, registers.
// No CRL support here yet: `snp.revocation: required` policies refuse these claims.

import { b64urlDecode, buf, concat, equal, toHex } from "./bytes.js";
import { EvidenceError, hardwareVerifiers, type Evidence } from "./evidence.js";
import type { Claims } from "./policy.js";
import { AMD_GENOA_ARK, AMD_GENOA_ASK, AMD_MILAN_ARK, AMD_MILAN_ASK, AMD_TURIN_ARK, AMD_TURIN_ASK } from "./roots.js";
import { children, p384Key, parseCert, parseDer, pemBlocks, validAt, verifyCertSignature, type Cert } from "./x509.js";

export const SNP_REPORT_LEN = 0x4a0;
const SIG_OFF = 0x2a0;

function b64(s: string): Uint8Array {
  return b64urlDecode(s.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""));
}

type Product = "Milan" | "Genoa" | "Turin";
const PRODUCTS: { name: Product; ark: Uint8Array; ask: Uint8Array }[] = [
  { name: "Milan", ark: b64(AMD_MILAN_ARK), ask: b64(AMD_MILAN_ASK) },
  { name: "Genoa", ark: b64(AMD_GENOA_ARK), ask: b64(AMD_GENOA_ASK) },
  { name: "Turin", ark: b64(AMD_TURIN_ARK), ask: b64(AMD_TURIN_ASK) },
];

const OID = {
  blSpl: "1.3.6.1.4.1.3704.1.3.1",
  teeSpl: "1.3.6.1.4.1.3704.1.3.2",
  snpSpl: "1.3.6.1.4.1.3704.1.3.3",
  ucodeSpl: "1.3.6.1.4.1.3704.1.3.8",
  fmcSpl: "1.3.6.1.4.1.3704.1.3.9",
  hwId: "1.3.6.1.4.1.3704.1.4",
};

const u32 = (b: Uint8Array, o: number) => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16)) + b[o + 3]! * 0x1000000;

/** The fields of a report that matter for appraisal (unverified until `verifySnpReport`). */
export interface SnpReport {
  version: number;
  guestSvn: number;
  /** The guest policy, as a bigint (bit 19: debug). */
  policy: bigint;
  familyId: Uint8Array;
  imageId: Uint8Array;
  vmpl: number;
  /** REPORTED_TCB, 8 raw bytes (little-endian TCB_VERSION). */
  reportedTcb: Uint8Array;
  authorKeyEn: boolean;
  signingKey: number;
  reportData: Uint8Array;
  measurement: Uint8Array;
  hostData: Uint8Array;
  idKeyDigest: Uint8Array;
  authorKeyDigest: Uint8Array;
  chipId: Uint8Array;
}

/** Parses a raw report: length, version 2..5, signature algorithm 1, VMPL <= 3. */
export function parseSnpReport(b: Uint8Array): SnpReport {
  if (b.length < SNP_REPORT_LEN) throw new EvidenceError("malformed", "SEV-SNP report: truncated");
  if (b.length > SNP_REPORT_LEN) throw new EvidenceError("malformed", "SEV-SNP report: trailing bytes");
  const version = u32(b, 0);
  if (version < 2 || version > 5) throw new EvidenceError("malformed", `SEV-SNP report: unsupported version ${version}`);
  if (u32(b, 0x34) !== 1) throw new EvidenceError("malformed", "SEV-SNP report: unknown signature algorithm");
  const vmpl = u32(b, 0x30);
  if (vmpl > 3) throw new EvidenceError("malformed", "SEV-SNP report: VMPL above 3");
  const keyInfo = u32(b, 0x48);
  let policy = 0n;
  for (let i = 7; i >= 0; i--) policy = (policy << 8n) | BigInt(b[8 + i]!);
  return {
    version,
    guestSvn: u32(b, 4),
    policy,
    familyId: b.slice(0x10, 0x20),
    imageId: b.slice(0x20, 0x30),
    vmpl,
    reportedTcb: b.slice(0x180, 0x188),
    authorKeyEn: (keyInfo & 1) === 1,
    signingKey: (keyInfo >>> 2) & 7,
    reportData: b.slice(0x50, 0x90),
    measurement: b.slice(0x90, 0xc0),
    hostData: b.slice(0xc0, 0xe0),
    idKeyDigest: b.slice(0xe0, 0x110),
    authorKeyDigest: b.slice(0x110, 0x140),
    chipId: b.slice(0x1a0, 0x1e0),
  };
}

const GUID_VCEK = "8d75da6364e66445adc5f4b93be8accd";
const GUID_ASK = "79b3b74aacbbe44fa02f05aef327c782";
const GUID_ARK = "a406b4c003a8524997433fb6014cd0ae";

/** The certificates of a host certificate table (GUID, offset u32 LE, length u32 LE; all-zero entry ends it). */
export function parseCertTable(b: Uint8Array): { vcek?: Uint8Array; ask?: Uint8Array; ark?: Uint8Array } {
  const t: { vcek?: Uint8Array; ask?: Uint8Array; ark?: Uint8Array } = {};
  for (let i = 0, pos = 0; i < 64; i++, pos += 24) {
    if (pos + 24 > b.length) throw new EvidenceError("malformed", "SEV-SNP certificate table: truncated");
    const e = b.subarray(pos, pos + 24);
    if (e.every((x) => x === 0)) return t;
    const off = u32(e, 16);
    const len = u32(e, 20);
    if (off + len > b.length) throw new EvidenceError("malformed", "SEV-SNP certificate table: entry points outside the table");
    const guid = toHex(e.subarray(0, 16));
    const slot = guid === GUID_VCEK ? "vcek" : guid === GUID_ASK ? "ask" : guid === GUID_ARK ? "ark" : undefined;
    if (!slot) continue;
    if (t[slot]) throw new EvidenceError("malformed", "SEV-SNP certificate table: duplicate entry");
    t[slot] = b.slice(off, off + len);
  }
  throw new EvidenceError("malformed", "SEV-SNP certificate table: more than 64 entries");
}

/** DER from DER or PEM bytes (all blocks). */
function certsOf(bytes: Uint8Array): Uint8Array[] {
  const text = new TextDecoder().decode(bytes.subarray(0, 64));
  if (text.includes("-----BEGIN")) return pemBlocks(new TextDecoder().decode(bytes));
  return [bytes];
}

function cert(der: Uint8Array, role: string): Cert {
  try {
    return parseCert(der, role);
  } catch (e) {
    throw new EvidenceError("certificate", (e as Error).message);
  }
}

/** An SPL extension: a DER INTEGER 0..=255. */
function spl(vcek: Cert, oid: string): number {
  const raw = vcek.extensions.get(oid);
  if (!raw) throw new EvidenceError("endorsement", "VCEK lacks a TCB (SPL) extension");
  const t = (() => {
    try {
      return parseDer(raw);
    } catch {
      return undefined;
    }
  })();
  const c = t?.content;
  const ok = t && t.tag === 2 && c && ((c.length === 1 && c[0]! < 0x80) || (c.length === 2 && c[0] === 0 && c[1]! >= 0x80));
  if (!ok) throw new EvidenceError("certificate", `${vcek.name}: SPL extension is not an INTEGER 0..=255`);
  return c[c.length - 1]!;
}

/** Options of {@link verifySnpReport}. */
export interface SnpEndorsements {
  /** AMD's cert_chain (PEM: ASK then ARK) or the ASK alone; the built-in ASK otherwise. */
  chain?: Uint8Array;
  /** An ARK found in the host's certificate table (must equal the pinned one). */
  tableArk?: Uint8Array;
}

/** Verifies an SEV-SNP report against its VCEK (DER or PEM) at `now`; returns its claims (no policy). */
export async function verifySnpReport(report: Uint8Array, vcekBytes: Uint8Array, now: number, e: SnpEndorsements = {}): Promise<Claims> {
  const r = parseSnpReport(report);
  if (r.signingKey === 1) throw new EvidenceError("unsupported", "VLEK-signed report (only VCEK-signed reports are supported)");
  if (r.signingKey !== 0) throw new EvidenceError("unsupported", "report signing key (not VCEK)");
  const sig = report.subarray(SIG_OFF);
  const [rLe, sLe, reserved] = [sig.subarray(0, 72), sig.subarray(72, 144), sig.subarray(144)];
  if (rLe.subarray(48).some((x) => x) || sLe.subarray(48).some((x) => x)) throw new EvidenceError("malformed", "SEV-SNP report signature: R or S padding (bytes 48..72) is not zero");
  if (reserved.some((x) => x)) throw new EvidenceError("malformed", "SEV-SNP report signature: reserved bytes after R and S are not zero");
  const p1363 = concat(rLe.slice(0, 48).reverse(), sLe.slice(0, 48).reverse());
  const vcekDers = certsOf(vcekBytes);
  if (vcekDers.length !== 1) throw new EvidenceError("certificate", "VCEK: expected one certificate");
  const vcek = cert(vcekDers[0]!, "VCEK");

  // VCEK -> ASK -> ARK, the ARK pinned per product.
  const supplied = e.chain ? certsOf(e.chain).map((d, i) => cert(d, i ? "ARK" : "ASK")) : [];
  if (supplied.length > 2) throw new EvidenceError("certificate", "ASK/ARK chain: more than two certificates (expected ASK, then ARK)");
  const product = PRODUCTS.find((p) => equal(cert(p.ask, "ASK").subject, vcek.issuer));
  if (!product) throw new EvidenceError("certificate", `${vcek.name}: issuer is not the ASK of Milan, Genoa or Turin`);
  const ark = cert(product.ark, "ARK");
  for (const given of [supplied[1]?.der, e.tableArk]) {
    if (given && !equal(given, ark.der)) throw new EvidenceError("untrusted-root", "the supplied ARK is not the pinned one");
  }
  const ask = supplied[0] ?? cert(product.ask, "ASK");
  for (const [signer, signee] of [
    [ark, ark],
    [ark, ask],
    [ask, vcek],
  ] as const) {
    if (!(await verifyCertSignature(signer, signee))) throw new EvidenceError("certificate-signature", `${signee.name}: the certificate signature does not verify`);
  }
  for (const c of [ark, ask, vcek]) {
    if (!validAt(c, now)) throw new EvidenceError("certificate-validity", `${c.name}: not valid at ${now}`);
  }

  // The VCEK belongs to this chip and this TCB.
  if (r.chipId.every((x) => x === 0)) throw new EvidenceError("chip-id-masked", "the report's CHIP_ID is masked: the VCEK cannot be matched");
  let hwid = vcek.extensions.get(OID.hwId);
  if (!hwid) throw new EvidenceError("endorsement", "VCEK lacks the hwID extension");
  if (hwid.length !== 64 && hwid.length !== 8) {
    try {
      const t = parseDer(hwid);
      if (t.tag !== 4) throw new Error();
      hwid = t.content;
    } catch {
      throw new EvidenceError("endorsement", "VCEK hwID is neither 8 nor 64 bytes");
    }
  }
  const chipOk = hwid.length === 64 ? equal(hwid, r.chipId) : product.name === "Turin" && hwid.length === 8 && equal(hwid, r.chipId.subarray(0, 8));
  if (!chipOk) throw new EvidenceError("endorsement", "VCEK hwID differs from the report's CHIP_ID");
  const t = r.reportedTcb;
  const [bl, tee, snp, ucode] = product.name === "Turin" ? [t[1]!, t[2]!, t[3]!, t[7]!] : [t[0]!, t[1]!, t[6]!, t[7]!];
  const checks: [string, number, string][] = [
    [OID.blSpl, bl, "VCEK boot loader SPL differs from REPORTED_TCB"],
    [OID.teeSpl, tee, "VCEK TEE SPL differs from REPORTED_TCB"],
    [OID.snpSpl, snp, "VCEK SNP SPL differs from REPORTED_TCB"],
    [OID.ucodeSpl, ucode, "VCEK microcode SPL differs from REPORTED_TCB"],
  ];
  if (product.name === "Turin") checks.push([OID.fmcSpl, t[0]!, "VCEK FMC SPL differs from REPORTED_TCB"]);
  for (const [oid, want, what] of checks) if (spl(vcek, oid) !== want) throw new EvidenceError("endorsement", what);

  // The report signature, by the VCEK, over the raw signed bytes.
  let ok = false;
  try {
    ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-384" }, await p384Key(vcek), buf(p1363), buf(report.subarray(0, SIG_OFF)));
  } catch {
    ok = false;
  }
  if (!ok) throw new EvidenceError("signature", "the SEV-SNP report signature does not verify under the VCEK");

  const signer = r.authorKeyEn ? r.authorKeyDigest : r.idKeyDigest.some((x) => x) ? r.idKeyDigest : undefined;
  const claims: Claims = {
    kind: "sev_snp",
    measurement: toHex(r.measurement),
    svn: r.guestSvn,
    tcb: [bl, tee, snp, ucode],
    debug: (r.policy & (1n << 19n)) !== 0n,
    report_data: r.reportData,
    insecure: false,
    platform: {
      vmpl: r.vmpl,
      registers: {
        author_key_digest: toHex(r.authorKeyDigest),
        family_id: toHex(r.familyId),
        host_data: toHex(r.hostData),
        id_key_digest: toHex(r.idKeyDigest),
        image_id: toHex(r.imageId),
      },
    },
  };
  if (signer) claims.signer = toHex(signer);
  return claims;
}

hardwareVerifiers.sev_snp = async (ev: Evidence, now: number) => {
  if (ev.kind !== "sev_snp") throw new EvidenceError("malformed", "not SEV-SNP evidence");
  const table = ev.certs && ev.certs.length ? parseCertTable(ev.certs) : {};
  if (!table.vcek) {
    parseSnpReport(ev.report);
    throw new EvidenceError("missing-endorsement", "SEV-SNP evidence without a VCEK certificate (fetching it from AMD's KDS is not implemented in this SDK)");
  }
  const e: SnpEndorsements = {};
  if (table.ask) e.chain = table.ask;
  if (table.ark) e.tableArk = table.ark;
  return verifySnpReport(ev.report, table.vcek, now, e);
};

export { children };
