// AWS Nitro Enclaves attestation documents: COSE_Sign1 (ES384) by a leaf certificate that
// chains (ECDSA P-384/SHA-384) to the pinned AWS Nitro Enclaves root G1, every certificate valid
// at `now`; the same steps and claims as clave-attest's `nitro` module (PCR0 is the
// measurement, PCR8 the signer, all-zero PCR0/1/2 means debug, the timestamp is issued_at).
import { b64urlDecode, be, buf, concat, equal, toHex, utf8 } from "./bytes.js";
import { cborArrayHead, cborBytes, cborText, decodeCbor, mapGet } from "./cbor.js";
import { EvidenceError, hardwareVerifiers, reportDataHashOf } from "./evidence.js";
import { AWS_NITRO_ROOT_G1 } from "./roots.js";
import { p384Key, parseCert, validAt, verifyCertSignature } from "./x509.js";
const ROOT = b64urlDecode(AWS_NITRO_ROOT_G1.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""));
const ROOT_SHA256 = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b";
const bad = (reason) => new EvidenceError("malformed", `Nitro attestation document: ${reason}`);
function optBytes(doc, k) {
    const v = mapGet(doc, k);
    if (!v || v.t === "null")
        return undefined;
    if (v.t !== "bytes")
        throw bad("optional field is neither bytes nor null");
    return v.v;
}
/** Parses a document (tagged or untagged COSE_Sign1). */
export function parseNitroDocument(bytes) {
    let top;
    try {
        top = decodeCbor(bytes);
    }
    catch (e) {
        throw bad(e.message);
    }
    if (top.t === "tag") {
        if (top.tag !== 18)
            throw bad("unexpected CBOR tag");
        top = top.v;
    }
    if (top.t !== "array" || top.v.length !== 4)
        throw bad("not a COSE_Sign1 array of 4 elements");
    const [p, u, pl, s] = top.v;
    if (p.t !== "bytes" || u.t !== "map" || pl.t !== "bytes" || s.t !== "bytes")
        throw bad("COSE_Sign1 element of the wrong type");
    let doc;
    try {
        doc = decodeCbor(pl.v);
    }
    catch (e) {
        throw bad(e.message);
    }
    if (doc.t !== "map")
        throw bad("payload is not a map");
    const text = (k) => {
        const v = mapGet(doc, k);
        if (!v || v.t !== "text")
            throw bad("missing or non-text field");
        return v.v;
    };
    const moduleId = text("module_id");
    if (text("digest") !== "SHA384")
        throw bad("digest is not SHA384");
    const ts = mapGet(doc, "timestamp");
    if (!ts || ts.t !== "uint")
        throw bad("missing or non-integer timestamp");
    const pcrsV = mapGet(doc, "pcrs");
    if (!pcrsV || pcrsV.t !== "map")
        throw bad("missing pcrs map");
    const pcrs = new Map();
    for (const [k, v] of pcrsV.v) {
        if (k.t !== "uint" || v.t !== "bytes")
            throw bad("pcr entry of the wrong type");
        if (k.v >= 32)
            throw bad("pcr index out of range");
        if (![32, 48, 64].includes(v.v.length))
            throw bad("pcr length is not 32, 48 or 64");
        if (pcrs.has(k.v))
            throw bad("duplicate pcr index");
        pcrs.set(k.v, v.v);
    }
    const certV = mapGet(doc, "certificate");
    if (!certV || certV.t !== "bytes")
        throw bad("missing certificate");
    const cab = mapGet(doc, "cabundle");
    if (!cab || cab.t !== "array" || !cab.v.length)
        throw bad("missing or empty cabundle");
    const cabundle = cab.v.map((c) => {
        if (c.t !== "bytes")
            throw bad("cabundle entry is not bytes");
        return c.v;
    });
    const out = { moduleId, timestampMs: ts.v, pcrs, certificate: certV.v, cabundle, protected: p.v, payload: pl.v, signature: s.v };
    const pk = optBytes(doc, "public_key");
    const ud = optBytes(doc, "user_data");
    const nn = optBytes(doc, "nonce");
    if (pk)
        out.publicKey = pk;
    if (ud)
        out.userData = ud;
    if (nn)
        out.nonce = nn;
    return out;
}
/** The report data of a document whose user_data is not 64 bytes (clave-attest `nitro_binding`). */
export function nitroBinding(publicKey, userData, nonce) {
    const part = (b) => (b ? concat(new Uint8Array([1]), b) : new Uint8Array([0]));
    return reportDataHashOf(utf8("clave/v1/nitro-binding"), [part(publicKey), part(userData), part(nonce)]);
}
function cert(der, role) {
    try {
        return parseCert(der, role);
    }
    catch (e) {
        throw new EvidenceError("certificate", e.message);
    }
}
/** The protected header must say ES384 (-35) and carry no critical headers. */
function checkProtected(p) {
    let h;
    try {
        h = p.length ? decodeCbor(p) : { t: "map", v: [] };
    }
    catch (e) {
        throw bad(e.message);
    }
    if (h.t !== "map")
        throw bad("protected header is not a map");
    const alg = h.v.find(([k]) => k.t === "uint" && k.v === 1)?.[1];
    if (!alg || alg.t !== "neg" || alg.v !== 34)
        throw new EvidenceError("unsupported", "COSE algorithm (only ES384)");
    if (h.v.some(([k]) => k.t === "uint" && k.v === 2))
        throw new EvidenceError("unsupported", "COSE critical headers");
}
/** Verifies a Nitro attestation document at `now` and returns its claims (no policy). */
export async function verifyNitroDocument(bytes, now) {
    const doc = parseNitroDocument(bytes);
    checkProtected(doc.protected);
    if (doc.cabundle.length > 8)
        throw bad("cabundle has more than 8 certificates");
    const chain = doc.cabundle.map((d, i) => cert(d, i ? `cabundle[${i}]` : "root"));
    chain.push(cert(doc.certificate, "leaf"));
    const root = chain[0];
    const fp = toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", buf(root.der))));
    if (fp !== ROOT_SHA256 || !equal(root.der, ROOT))
        throw new EvidenceError("untrusted-root", `the document's root (SHA-256 ${fp}) is not the pinned AWS Nitro root`);
    for (const c of chain)
        if (!validAt(c, now))
            throw new EvidenceError("certificate-validity", `${c.name}: not valid at ${now}`);
    for (let i = 1; i < chain.length; i++) {
        const [parent, child] = [chain[i - 1], chain[i]];
        if (!parent.ca)
            throw new EvidenceError("certificate", `${parent.name}: issues certificates but is not a CA`);
        if (!(await verifyCertSignature(parent, child)))
            throw new EvidenceError("certificate-signature", `${child.name}: the certificate signature does not verify`);
    }
    if (doc.signature.length !== 96)
        throw bad("ES384 signature is not 96 bytes");
    // Sig_structure = ["Signature1", protected, external_aad = h'', payload] (RFC 9052 §4.4).
    const tbs = concat(cborArrayHead(4), cborText("Signature1"), cborBytes(doc.protected), cborBytes(new Uint8Array(0)), cborBytes(doc.payload));
    let ok = false;
    try {
        ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-384" }, await p384Key(chain[chain.length - 1]), buf(doc.signature), buf(tbs));
    }
    catch {
        ok = false;
    }
    if (!ok)
        throw new EvidenceError("signature", "the COSE_Sign1 signature does not verify under the leaf certificate");
    const pcr0 = doc.pcrs.get(0);
    if (!pcr0)
        throw bad("PCR0 missing");
    const pcr8 = doc.pcrs.get(8);
    const reportData = doc.userData?.length === 64 ? doc.userData : await nitroBinding(doc.publicKey, doc.userData, doc.nonce);
    const registers = {};
    for (const [i, p] of [...doc.pcrs].sort((a, b) => a[0] - b[0]))
        registers[`pcr${i}`] = toHex(p);
    const claims = {
        kind: "nitro",
        measurement: toHex(pcr0),
        svn: 0,
        tcb: [],
        debug: [0, 1, 2].some((i) => doc.pcrs.get(i)?.every((x) => x === 0)),
        report_data: reportData,
        issued_at: Math.floor(doc.timestampMs / 1000),
        insecure: false,
        platform: { registers },
    };
    if (pcr8 && pcr8.some((x) => x))
        claims.signer = toHex(pcr8);
    return claims;
}
hardwareVerifiers.nitro = (ev, now) => {
    if (ev.kind !== "nitro")
        throw new EvidenceError("malformed", "not Nitro evidence");
    return verifyNitroDocument(ev.document, now);
};
export { be };
