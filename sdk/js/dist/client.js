// The client: connect (verify attestation and key bundles under a pinned trust policy), invoke
// (seal with OHTTP/BHTTP to the verified invoke key, open the answer locally), attestation().
// Mirrors clave-client's `Client::verify` / `verify_platform` / `invoke` step by step.
import { b64urlDecode, equal, fromHex, fromUtf8, toHex, utf8 } from "./bytes.js";
import { decodeResponse, encodeRequest } from "./bhttp.js";
import { BundleError, checkValidity, parseBundlePayload, verifySigned } from "./bundle.js";
import { AttestationError, ClaveError, EngineRefusedError, FunctionThrewError, GatewayError, HashRefusedError, InvalidInputError, LimitHitError, ProtocolError, TransportError, } from "./errors.js";
import { EvidenceError, decodeEvidence, kdsAttestationReportData, verify, verifyEvidence } from "./evidence.js";
import { encapsulatePrepared, prepareRequest, sameKeyConfig } from "./ohttp.js";
import { AppraisalError } from "./policy.js";
import { policyWithin } from "./trust.js";
const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const HASH = /^[0-9a-f]{64}$/;
const MAX_ANSWER = 16 << 20;
/** Current unix seconds. */
export function nowUnix() {
    return Math.floor(Date.now() / 1000);
}
const KIND_WORDS = {
    insecure_simulated: "simulated (INSECURE)",
    sev_snp: "AMD SEV-SNP",
    tdx: "Intel TDX",
    sgx_dcap: "Intel SGX",
    nitro: "AWS Nitro",
};
/** A policy in words. */
export function policyWords(p) {
    const kinds = p.accepted_kinds.map((k) => KIND_WORDS[k]).join(" or ");
    const ident = p.measurements
        ? `measurement ${p.measurements.join(" or ")}`
        : `images signed by ${p.signer.id} with security version >= ${p.signer.min_svn}`;
    return `${kinds} TEEs with ${ident}`;
}
function summary(b) {
    return { purpose: b.spec.purpose, epoch: b.spec.epoch, specId: b.spec.id, notBefore: b.notBefore, notAfter: b.notAfter, policy: b.spec.policy };
}
function invokeKeyAt(keys, now) {
    let best;
    for (const k of keys) {
        if (now < k.notBefore || now > k.notAfter)
            continue;
        if (!best || k.spec.epoch > best.spec.epoch)
            best = k;
    }
    return best;
}
function bytesOf(x, what) {
    if (typeof x !== "string")
        throw new AttestationError("malformed", `${what} is missing`);
    try {
        return b64urlDecode(x);
    }
    catch {
        throw new AttestationError("malformed", `${what} is not unpadded base64url`);
    }
}
/**
 * Verify an attestation answer and a key list against `trust`, for our `nonce`, at `now`
 * (clave-client `verify_platform`): the evidence decodes; simulated evidence only if allowed;
 * the echoed nonce is ours; the evidence satisfies the KDS policy with report data binding the
 * identity key and the nonce; the key list names the same identity key; every bundle's
 * signature verifies under it; each bundle's policy is no broader than the engine policy; there
 * is a valid code key and a current invoke key.
 */
export async function verifyPlatform(trust, nonce, attestation, keys, now) {
    if (typeof attestation !== "object" || attestation === null)
        throw new AttestationError("malformed", "the attestation answer is not a JSON object");
    if (typeof keys !== "object" || keys === null || !Array.isArray(keys.bundles))
        throw new AttestationError("malformed", "the key answer is not a key list");
    let evidence;
    try {
        evidence = decodeEvidence(bytesOf(attestation.evidence, "evidence"));
    }
    catch (e) {
        if (e instanceof ClaveError)
            throw e;
        throw new AttestationError("evidence", `the KDS evidence was refused: ${e.message}`, undefined, { cause: e });
    }
    if (evidence.kind === "insecure_simulated" && !trust.allowInsecureSimulated) {
        throw new AttestationError("insecure-refused", "the platform runs on the INSECURE simulated TEE, which your trust policy refuses");
    }
    const identity = bytesOf(attestation.identity_public_key, "identity_public_key");
    if (identity.length !== 32)
        throw new AttestationError("malformed", "identity_public_key is not 32 bytes");
    let echoed;
    try {
        echoed = fromHex(String(attestation.nonce));
    }
    catch {
        throw new AttestationError("malformed", "the echoed nonce is not hex");
    }
    if (!equal(echoed, nonce))
        throw new AttestationError("nonce-mismatch", "the KDS evidence was made for another nonce (possible replay)");
    // A KDS that also admits replicas under an admission policy binds that policy's hash into its
    // evidence; this SDK does not appraise admission policies yet, so it refuses such a KDS.
    if (attestation.admission_policy !== undefined && attestation.admission_policy !== null) {
        throw new AttestationError("unsupported", "the KDS admits replicas under an admission policy, which this SDK cannot check yet: use the Rust SDK or `clave attest` with --kds-admission-policy");
    }
    const expected = await kdsAttestationReportData(identity, nonce);
    let claims;
    try {
        claims = await verify(evidence, trust.kds, expected, now);
    }
    catch (e) {
        if (e instanceof EvidenceError && e.check === "unsupported")
            throw new AttestationError("unsupported", e.message, undefined, { cause: e });
        if (e instanceof EvidenceError || e instanceof AppraisalError) {
            throw new AttestationError("evidence", `the KDS evidence was refused: ${e.message}`, undefined, { cause: e });
        }
        throw e;
    }
    if (claims.insecure && !trust.allowInsecureSimulated) {
        throw new AttestationError("insecure-refused", "the platform runs on the INSECURE simulated TEE, which your trust policy refuses");
    }
    if (!equal(bytesOf(keys.identity_public_key, "identity_public_key of the key list"), identity)) {
        throw new AttestationError("identity-mismatch", "the key bundles are signed by another key than the attested KDS identity");
    }
    let codeKey;
    const invokeKeys = [];
    for (const signed of keys.bundles) {
        let bundle;
        try {
            bundle = await parseBundlePayload(await verifySigned(signed, identity));
        }
        catch (e) {
            if (e instanceof BundleError)
                throw new AttestationError("bundle", `a key bundle was refused: ${e.message}`, undefined, { cause: e });
            throw e;
        }
        const reason = policyWithin(bundle.spec.policy, trust.engines, trust.allowInsecureSimulated);
        if (reason)
            throw new AttestationError("spec-too-broad", `the ${bundle.spec.purpose} key may be released to engines you do not trust: ${reason}`);
        if (now > bundle.notAfter)
            continue;
        if (bundle.spec.purpose === "code") {
            try {
                checkValidity(bundle, now);
            }
            catch (e) {
                throw new AttestationError("bundle", `a key bundle was refused: ${e.message}`);
            }
            codeKey = bundle;
        }
        else {
            invokeKeys.push(bundle);
        }
    }
    invokeKeys.sort((a, b) => a.spec.epoch - b.spec.epoch);
    if (!codeKey)
        throw new AttestationError("missing-key", "the platform publishes no valid code key");
    if (!invokeKeyAt(invokeKeys, now))
        throw new AttestationError("missing-key", "the platform publishes no valid invoke key");
    const epoch = typeof keys.epoch === "number" ? keys.epoch : 0;
    const ck = codeKey;
    const att = {
        kind: claims.kind,
        insecure: claims.insecure || claims.kind === "insecure_simulated",
        measurement: claims.measurement,
        svn: claims.svn,
        tcb: claims.tcb,
        verifiedAt: now,
        nonce: toHex(nonce),
        identityPublicKey: toHex(identity),
        epoch,
        codeKey: summary(ck),
        invokeKeys: invokeKeys.map(summary),
        claims,
        describe() {
            const out = [];
            if (this.insecure)
                out.push("WARNING: the KDS runs on the INSECURE simulated TEE: anyone can forge this evidence, nothing is confidential.");
            out.push(`The key service (KDS) proved it runs in a ${KIND_WORDS[this.kind]} TEE with measurement ${this.measurement}, which your trust policy pins.`);
            if (this.tcb.length)
                out.push(`Its platform TCB is [${this.tcb.join(",")}].`);
            out.push("Debug mode is off.");
            out.push(`The evidence binds your fresh nonce ${this.nonce} and the KDS identity key ${this.identityPublicKey}.`);
            out.push("The KDS hands its master secret only to replicas proving the same TEE kind and measurement as itself (no admission policy).");
            out.push(`That identity key signed ${1 + this.invokeKeys.length} key bundle(s); each signature and validity window checked out.`);
            out.push(`The code key (spec ${this.codeKey.specId}) is released only to engines your engine policy accepts: ${policyWords(this.codeKey.policy)}.`);
            for (const k of this.invokeKeys) {
                out.push(`The invoke key of epoch ${k.epoch} (spec ${k.specId}, valid ${k.notBefore}..${k.notAfter}) is released only to: ${policyWords(k.policy)}.`);
            }
            return out;
        },
    };
    if (claims.signer !== undefined)
        att.signer = claims.signer;
    if (claims.issued_at !== undefined)
        att.issuedAt = claims.issued_at;
    return { att, codeKey: ck, invokeKeys };
}
/** A clave client bound to one gateway and one trust policy. Nothing is sealed to a key it has not verified. */
export class Clave {
    #base;
    #trust;
    #fetch;
    #verified;
    /**
     * The next call's request encapsulation, prepared while the previous call was in flight (its
     * X25519 work is then off the call's path). Taken by exactly one call.
     */
    #spare;
    constructor(base, trust, f, v) {
        this.#base = base;
        this.#trust = trust;
        this.#fetch = f;
        this.#verified = v;
    }
    /**
     * Connect to the gateway at `gatewayUrl`: fetch the KDS evidence for a fresh nonce and the
     * signed key bundles, and verify both under `trust`. Throws {@link AttestationError} (nothing
     * was sent) when anything fails to verify.
     */
    static async connect(gatewayUrl, options) {
        if (!options || !options.trust)
            throw new InvalidInputError("Clave.connect needs { trust }", "Pass a trust policy: TrustPolicy.of(kds, engines) or, for `clave dev` only, TrustPolicy.insecureDev(...)");
        let url;
        try {
            url = new URL(String(gatewayUrl));
        }
        catch {
            throw new InvalidInputError(`the gateway URL ${JSON.stringify(String(gatewayUrl))} is invalid`, "Give a URL such as http://127.0.0.1:8787");
        }
        if (url.protocol !== "http:" && url.protocol !== "https:") {
            throw new InvalidInputError(`the gateway URL ${JSON.stringify(String(gatewayUrl))} must start with http:// or https://`);
        }
        const base = url.href.replace(/\/+$/, "");
        const f = options.fetch ?? globalThis.fetch.bind(globalThis);
        const v = await Clave.#verify(base, options.trust, f);
        return new Clave(base, options.trust, f, v);
    }
    static async #verify(base, trust, f) {
        const nonce = crypto.getRandomValues(new Uint8Array(32));
        // Both at once: the bundles are checked against the attested identity afterwards.
        const [att, keys] = await Promise.all([
            getJson(f, base, `/v1/attestation?nonce=${toHex(nonce)}`),
            getJson(f, base, "/v1/keys"),
        ]);
        return verifyPlatform(trust, nonce, att, keys, nowUnix());
    }
    /** The gateway URL. */
    get gatewayUrl() {
        return this.#base;
    }
    /** What was verified (KDS TEE kind, measurement, keys and who may receive them). */
    attestation() {
        return this.#verified.att;
    }
    /** Fetch and verify the attestation again now. */
    async refresh() {
        this.#verified = await Clave.#verify(this.#base, this.#trust, this.#fetch);
        return this.#verified.att;
    }
    async #current(now) {
        const v = this.#verified;
        const usable = Math.min(v.att.verifiedAt + this.#trust.maxAgeSecs, v.codeKey.notAfter);
        if (now >= v.att.verifiedAt && now <= usable && invokeKeyAt(v.invokeKeys, now))
            return v;
        return this.refresh().then(() => this.#verified);
    }
    /**
     * Invoke `project/name`, pinned to `codeHash`: seal the request to the verified invoke key,
     * post it, and open the answer locally. Resolves to a standard `Response` (any status the
     * function chose); throws typed errors for the gateway's and the engine's refusals.
     */
    async invoke(project, name, options) {
        if (!NAME.test(project))
            throw new InvalidInputError(`${JSON.stringify(project)} is not a valid project name`, "Names are 1-63 of a-z, 0-9 and -, not starting with -");
        if (!NAME.test(name))
            throw new InvalidInputError(`${JSON.stringify(name)} is not a valid function name`, "Names are 1-63 of a-z, 0-9 and -, not starting with -");
        const codeHash = options?.codeHash;
        if (typeof codeHash !== "string" || !HASH.test(codeHash)) {
            throw new InvalidInputError("codeHash must be 64 lowercase hex digits", "Pin the SHA-256 of the code you expect (`clave functions list` shows it)");
        }
        const method = (options.method ?? "POST").toUpperCase();
        if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/.test(method)) {
            throw new InvalidInputError(`method ${JSON.stringify(options.method)} is not an HTTP method token`);
        }
        const subpath = options.path ?? "";
        if (subpath.length > 8192 || !/^([/?][\x21-\x22\x24-\x7e]*)?$/.test(subpath)) {
            throw new InvalidInputError(`path ${JSON.stringify(subpath)} is not a path and query`, "Give it as /items?id=3 (or ?q=1): visible ASCII without #, percent-encode the rest");
        }
        const headers = [];
        const given = options.headers instanceof Headers ? [...options.headers.entries()] : Array.isArray(options.headers) ? options.headers : Object.entries(options.headers ?? {});
        for (const [n, v] of given) {
            const lower = String(n).toLowerCase();
            if (lower === "date" || lower.startsWith("clave-"))
                throw new InvalidInputError(`header ${JSON.stringify(n)} is reserved`, "Leave out `date` and `clave-*` headers: the SDK sets them inside the sealed request");
            if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(lower))
                throw new InvalidInputError(`header name ${JSON.stringify(n)} is invalid`);
            headers.push([lower, String(v)]);
        }
        let body;
        if (options.json !== undefined) {
            if (options.body !== undefined)
                throw new InvalidInputError("give either body or json, not both");
            body = utf8(JSON.stringify(options.json));
            if (!headers.some(([n]) => n === "content-type"))
                headers.push(["content-type", "application/json"]);
        }
        else if (typeof options.body === "string")
            body = utf8(options.body);
        else if (options.body instanceof Uint8Array)
            body = options.body;
        else if (options.body instanceof ArrayBuffer)
            body = new Uint8Array(options.body);
        else if (options.body === undefined || options.body === null)
            body = new Uint8Array(0);
        else
            throw new InvalidInputError("body must be a string, Uint8Array or ArrayBuffer");
        const now = nowUnix();
        const v = await this.#current(now);
        const key = invokeKeyAt(v.invokeKeys, now);
        if (!key)
            throw new AttestationError("missing-key", "the platform publishes no valid invoke key");
        const request = encodeRequest({
            method,
            scheme: "https",
            authority: "clave",
            path: `/${project}/${name}${subpath}`,
            headers: [["clave-code-hash", codeHash], ["date", String(now)], ...headers],
            body,
        });
        // Taken synchronously, so two calls never share one.
        const spare = this.#spare;
        this.#spare = undefined;
        let sealed;
        try {
            const prepared = spare && sameKeyConfig(spare.config, key.keyConfig)
                ? await spare.prepared.catch(() => prepareRequest(key.keyConfig))
                : await prepareRequest(key.keyConfig);
            sealed = await encapsulatePrepared(prepared, request);
        }
        catch (e) {
            throw new ProtocolError(`cannot seal the request: ${e.message}`, { cause: e });
        }
        // The next call's encapsulation, while this one is in flight (one spare: calls made at once
        // do not each prepare one to replace the last).
        if (!this.#spare) {
            const next = prepareRequest(key.keyConfig);
            next.catch(() => undefined);
            this.#spare = { config: key.keyConfig, prepared: next };
        }
        const init = {
            method: "POST",
            headers: { "content-type": "message/ohttp-req" },
            body: sealed.encRequest,
        };
        if (options.signal)
            init.signal = options.signal;
        const answer = await send(this.#fetch, this.#base, `/v1/projects/${project}/functions/${name}/invoke`, init);
        let plain;
        try {
            plain = await sealed.opener.open(answer);
        }
        catch (e) {
            throw new ProtocolError("the encrypted answer does not open", { cause: e });
        }
        return openAnswer(plain);
    }
}
/** Turn the decrypted BHTTP answer into a `Response`, or a typed error for an engine problem. */
function openAnswer(plain) {
    let m;
    try {
        m = decodeResponse(plain);
    }
    catch (e) {
        throw new ProtocolError(`the decrypted answer is malformed: ${e.message}`, { cause: e });
    }
    if (m.headers.some(([n]) => n === "clave-error")) {
        let p;
        try {
            p = JSON.parse(fromUtf8(m.body));
        }
        catch (e) {
            throw new ProtocolError("the engine's problem document is malformed", { cause: e });
        }
        const prefix = "urn:clave:error:";
        if (typeof p.type !== "string" || !p.type.startsWith(prefix))
            throw new ProtocolError("the engine's problem document has a foreign type");
        const slug = p.type.slice(prefix.length);
        switch (slug) {
            case "code-hash-mismatch":
                throw new HashRefusedError(p.detail);
            case "script-error":
                throw new FunctionThrewError(p.detail ?? p.title);
            case "timeout":
                throw new LimitHitError("cpu-time", p.detail);
            case "out-of-memory":
                throw new LimitHitError("memory", p.detail);
            case "limit-exceeded":
                throw new LimitHitError("other", p.detail);
            default:
                throw new EngineRefusedError(slug, p.status, p.title, p.detail);
        }
    }
    const headers = new Headers();
    for (const [n, v] of m.headers) {
        try {
            headers.append(n, v);
        }
        catch {
            // A header value a Response cannot carry is dropped (it was the function's).
        }
    }
    const nullBody = m.status === 204 || m.status === 205 || m.status === 304;
    return new Response(nullBody ? null : m.body, { status: m.status, headers });
}
async function send(f, base, path, init) {
    let resp;
    try {
        resp = await f(base + path, init);
    }
    catch (e) {
        if (e?.name === "AbortError")
            throw e;
        throw new TransportError(base, e?.message ?? String(e), { cause: e });
    }
    const declared = Number(resp.headers.get("content-length") ?? "0");
    if (declared > MAX_ANSWER)
        throw new ProtocolError("the gateway's answer is too large");
    let body;
    try {
        body = new Uint8Array(await resp.arrayBuffer());
    }
    catch (e) {
        throw new TransportError(base, e?.message ?? String(e), { cause: e });
    }
    if (body.length > MAX_ANSWER)
        throw new ProtocolError("the gateway's answer is too large");
    if (resp.status < 200 || resp.status > 299) {
        let problem;
        try {
            problem = JSON.parse(fromUtf8(body));
        }
        catch {
            problem = undefined;
        }
        throw new GatewayError(resp.status, problem);
    }
    return body;
}
async function getJson(f, base, path) {
    const body = await send(f, base, path);
    try {
        return JSON.parse(fromUtf8(body));
    }
    catch {
        throw new AttestationError("malformed", `unexpected answer to ${path}: not JSON`);
    }
}
/** What the platform's evidence *claims*, without verifying anything: for explaining a refusal, never for trust. */
export async function probe(gatewayUrl, f = globalThis.fetch.bind(globalThis)) {
    const base = String(gatewayUrl).replace(/\/+$/, "");
    const nonce = crypto.getRandomValues(new Uint8Array(32));
    const att = (await getJson(f, base, `/v1/attestation?nonce=${toHex(nonce)}`));
    const ev = decodeEvidence(bytesOf(att.evidence, "evidence"));
    try {
        return { kind: ev.kind, measurement: (await verifyEvidence(ev, nowUnix())).measurement };
    }
    catch {
        return { kind: ev.kind };
    }
}
