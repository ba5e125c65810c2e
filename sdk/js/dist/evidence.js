// Evidence envelope (clave-attest `Evidence::to_bytes`), the simulated TEE verifier, the report
// data binding, and `verifyEvidence` / `verify` dispatching on the kind.
//
// Envelope: "CLEV" || 0x01 || kind tag || body; body fields are u32-length-prefixed, SEV-SNP has
// an optional certificate table (presence byte 0/1). Tags: 01 insecure_simulated, 02 sev_snp,
// 03 tdx, 04 sgx_dcap, 05 nitro.
import { Reader, b64urlDecode, buf, concat, be, fromHex, toHex, utf8 } from "./bytes.js";
import { sha512 } from "./hpke.js";
import { appraise } from "./policy.js";
/** Largest evidence envelope accepted (1 MiB). */
export const MAX_EVIDENCE_LEN = 1 << 20;
const TAGS = ["insecure_simulated", "sev_snp", "tdx", "sgx_dcap", "nitro"];
/** An evidence or claims error: `check` names what failed. */
export class EvidenceError extends Error {
    check;
    constructor(check, message) {
        super(message);
        this.check = check;
        this.name = "EvidenceError";
    }
}
function bytesU32(r) {
    return r.take(r.u32()).slice();
}
/** Decodes the binary envelope strictly. */
export function decodeEvidence(bytes) {
    if (bytes.length > MAX_EVIDENCE_LEN)
        throw new EvidenceError("malformed", "evidence too large");
    try {
        const r = new Reader(bytes, "evidence envelope");
        const magic = r.take(4);
        if (toHex(magic) !== toHex(utf8("CLEV")))
            throw new EvidenceError("malformed", "evidence: bad magic");
        const version = r.u8();
        if (version !== 1)
            throw new EvidenceError("malformed", `evidence: unsupported version ${version}`);
        const tag = r.u8();
        const kind = TAGS[tag - 1];
        if (!kind)
            throw new EvidenceError("malformed", `evidence: unknown kind tag ${tag}`);
        let ev;
        switch (kind) {
            case "insecure_simulated":
                ev = { kind, report: bytesU32(r) };
                break;
            case "sev_snp": {
                const report = bytesU32(r);
                const p = r.u8();
                if (p > 1)
                    throw new EvidenceError("malformed", "evidence: presence byte is neither 0 nor 1");
                ev = p ? { kind, report, certs: bytesU32(r) } : { kind, report };
                break;
            }
            case "tdx":
            case "sgx_dcap":
                ev = { kind, quote: bytesU32(r) };
                break;
            case "nitro":
                ev = { kind, document: bytesU32(r) };
                break;
        }
        r.finish();
        return ev;
    }
    catch (e) {
        if (e instanceof EvidenceError)
            throw e;
        throw new EvidenceError("malformed", e.message);
    }
}
/** The seed of the simulated TEE's insecure root key: public on purpose (clave-attest `INSECURE_ROOT_SEED`). */
export const INSECURE_ROOT_SEED = utf8("clave-insecure-simulated-root-01");
/** Prefix of every message the simulated root signs. */
export const SIMULATED_SIGNING_DOMAIN = utf8("clave/v1/insecure-simulated-report\0");
const ED25519_PKCS8_PREFIX = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
let rootKey;
/** The public key of the insecure simulated root (derived from the published seed). */
export function insecureRootPublicKey() {
    rootKey ??= (async () => {
        const sk = await crypto.subtle.importKey("pkcs8", buf(concat(ED25519_PKCS8_PREFIX, INSECURE_ROOT_SEED)), { name: "Ed25519" }, true, ["sign"]);
        const jwk = await crypto.subtle.exportKey("jwk", sk);
        return b64urlDecode(jwk.x);
    })();
    return rootKey;
}
/** Ed25519 signature verification through WebCrypto. */
export async function ed25519Verify(publicKey, message, signature) {
    if (publicKey.length !== 32 || signature.length !== 64)
        return false;
    try {
        const k = await crypto.subtle.importKey("raw", buf(publicKey), { name: "Ed25519" }, false, ["verify"]);
        return await crypto.subtle.verify({ name: "Ed25519" }, k, buf(signature), buf(message));
    }
    catch {
        return false;
    }
}
/** Verifies a simulated report against the insecure root and parses it strictly. Always `insecure: true`. */
export async function verifySimulatedReport(report, root) {
    if (report.length < 64)
        throw new EvidenceError("malformed", "simulated report: truncated");
    const body = report.subarray(0, report.length - 64);
    const sig = report.subarray(report.length - 64);
    if (!(await ed25519Verify(root ?? (await insecureRootPublicKey()), concat(SIMULATED_SIGNING_DOMAIN, body), sig))) {
        throw new EvidenceError("signature", "the simulated report's signature does not verify");
    }
    try {
        const r = new Reader(body, "simulated report");
        const version = r.u16();
        if (version !== 1)
            throw new EvidenceError("malformed", `simulated report: unsupported version ${version}`);
        const flags = r.u8();
        if (flags & ~3)
            throw new EvidenceError("malformed", "simulated report: unknown flag bits set");
        const mlen = r.u8();
        if (mlen === 0 || mlen > 64)
            throw new EvidenceError("malformed", "simulated report: measurement length not in 1..=64");
        const measurement = toHex(r.take(mlen));
        const slen = r.u8();
        if (slen > 64)
            throw new EvidenceError("malformed", "simulated report: signer length over 64");
        const signer = slen ? toHex(r.take(slen)) : undefined;
        const productId = r.u16();
        const svn = r.u32();
        const n = r.u8();
        if (n > 16)
            throw new EvidenceError("malformed", "simulated report: more than 16 TCB components");
        const tcb = [];
        for (let i = 0; i < n; i++)
            tcb.push(r.u16());
        const reportData = r.take(64).slice();
        const ts = r.u64();
        r.finish();
        let issued;
        if (flags & 2)
            issued = ts;
        else if (ts !== 0)
            throw new EvidenceError("malformed", "simulated report: timestamp set without its flag");
        const claims = {
            kind: "insecure_simulated",
            measurement,
            product_id: productId,
            svn,
            tcb,
            debug: (flags & 1) !== 0,
            report_data: reportData,
            insecure: true,
            platform: { registers: {} },
        };
        if (signer !== undefined)
            claims.signer = signer;
        if (issued !== undefined)
            claims.issued_at = issued;
        return claims;
    }
    catch (e) {
        if (e instanceof EvidenceError)
            throw e;
        throw new EvidenceError("malformed", e.message);
    }
}
/** Verifier hooks for the hardware kinds, registered by ./snp.js and ./nitro.js. */
export const hardwareVerifiers = {};
/** Cryptographic verification of `ev` at `now` (certificate validity); applies no policy. */
export async function verifyEvidence(ev, now) {
    if (ev.kind === "insecure_simulated")
        return verifySimulatedReport(ev.report);
    const v = hardwareVerifiers[ev.kind];
    if (!v)
        throw new EvidenceError("unsupported", `${ev.kind} evidence cannot be verified by this SDK yet (TDX and SGX come later)`);
    return v(ev, now);
}
/** Verifies `ev` and appraises it against `policy` for the `expected` report data at `now`. */
export async function verify(ev, policy, expected, now) {
    const claims = await verifyEvidence(ev, now);
    appraise(claims, policy, expected, now);
    return claims;
}
/** `ReportData::hash_of`: SHA-512(len(label) || label || len(a) || a || ...), u64 big-endian lengths. */
export function reportDataHashOf(label, parts) {
    const chunks = [be(label.length, 8), label];
    for (const p of parts)
        chunks.push(be(p.length, 8), p);
    return sha512(concat(...chunks));
}
/** The report data of a KDS attestation: binds the KDS identity key and the caller's nonce. */
export function kdsAttestationReportData(identityPk, nonce) {
    return reportDataHashOf(utf8("clave/v1/kds-attestation"), [identityPk, nonce]);
}
export { fromHex };
