// Attestation policies (the RATS reference values), in the same JSON file format as the Rust
// crate clave-attest (`Policy::from_json`), with the same normalisation, validation and
// canonical form (key spec ids hash it), and the appraisal checks of `clave_attest::verify`.
import { equal, toHex } from "./bytes.js";
/** TEE kinds, in canonical order. */
export const TEE_KINDS = ["insecure_simulated", "sev_snp", "tdx", "sgx_dcap", "nitro"];
/** A policy that is invalid or not in the file format. */
export class PolicyError extends Error {
    constructor(message) {
        super(`invalid policy: ${message}`);
        this.name = "PolicyError";
    }
}
const TCB_STATUSES = [
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
];
function isObj(v) {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}
function onlyKeys(o, keys, what) {
    for (const k of Object.keys(o))
        if (!keys.includes(k))
            throw new PolicyError(`unknown field ${what}${k}`);
}
function uint(v, what, max = Number.MAX_SAFE_INTEGER) {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max)
        throw new PolicyError(`${what} must be an integer in 0..=${max}`);
    return v;
}
function kind(v) {
    if (typeof v !== "string" || !TEE_KINDS.includes(v))
        throw new PolicyError(`unknown TEE kind ${JSON.stringify(v)}`);
    return v;
}
function digest(v, what) {
    if (typeof v !== "string" || v.length % 2 || !/^[0-9a-fA-F]*$/.test(v) || v.length < 2 || v.length > 128) {
        throw new PolicyError(`${what} must be 1 to 64 bytes of hex`);
    }
    return v.toLowerCase();
}
const kindOrder = (a, b) => TEE_KINDS.indexOf(a) - TEE_KINDS.indexOf(b);
const byteOrder = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
function sortedUnique(xs, cmp) {
    const s = [...xs].sort(cmp);
    return s.filter((x, i) => i === 0 || cmp(s[i - 1], x) !== 0);
}
/** Parses a policy from its JSON value (or text), normalises and validates it. */
export function parsePolicy(input) {
    let v = input;
    if (typeof v === "string") {
        try {
            v = JSON.parse(v);
        }
        catch (e) {
            throw new PolicyError(`not JSON: ${e.message}`);
        }
    }
    if (!isObj(v))
        throw new PolicyError("not a JSON object");
    onlyKeys(v, ["accepted_kinds", "measurements", "signer", "min_tcb", "allow_insecure_simulated", "max_evidence_age_secs", "registers", "snp", "dcap"], "");
    if (!Array.isArray(v.accepted_kinds))
        throw new PolicyError("accepted_kinds must be a list");
    const p = {
        accepted_kinds: sortedUnique(v.accepted_kinds.map(kind), kindOrder),
        min_tcb: {},
        allow_insecure_simulated: false,
        registers: {},
        snp: { max_vmpl: 0, revocation: "if_present" },
        dcap: { accepted_tcb_statuses: ["UpToDate"], allow_dynamic_platform: true, allow_cached_keys: true, allow_smt: true },
    };
    if (v.measurements !== undefined && v.measurements !== null) {
        if (!Array.isArray(v.measurements))
            throw new PolicyError("measurements must be a list");
        p.measurements = sortedUnique(v.measurements.map((m) => digest(m, "a measurement")), byteOrder);
    }
    if (v.signer !== undefined && v.signer !== null) {
        if (!isObj(v.signer))
            throw new PolicyError("signer must be an object");
        onlyKeys(v.signer, ["id", "product_id", "min_svn"], "signer.");
        p.signer = { id: digest(v.signer.id, "signer.id"), min_svn: v.signer.min_svn === undefined ? 0 : uint(v.signer.min_svn, "signer.min_svn", 0xffffffff) };
        if (v.signer.product_id !== undefined && v.signer.product_id !== null)
            p.signer.product_id = uint(v.signer.product_id, "signer.product_id", 0xffff);
    }
    if (v.min_tcb !== undefined) {
        if (!isObj(v.min_tcb))
            throw new PolicyError("min_tcb must be an object");
        for (const [k, t] of Object.entries(v.min_tcb)) {
            if (!Array.isArray(t))
                throw new PolicyError("min_tcb values must be lists");
            p.min_tcb[kind(k)] = t.map((c) => uint(c, "a TCB component", 0xffff));
        }
    }
    if (v.allow_insecure_simulated !== undefined) {
        if (typeof v.allow_insecure_simulated !== "boolean")
            throw new PolicyError("allow_insecure_simulated must be a boolean");
        p.allow_insecure_simulated = v.allow_insecure_simulated;
    }
    if (v.max_evidence_age_secs !== undefined && v.max_evidence_age_secs !== null)
        p.max_evidence_age_secs = uint(v.max_evidence_age_secs, "max_evidence_age_secs");
    if (v.registers !== undefined) {
        if (!isObj(v.registers))
            throw new PolicyError("registers must be an object");
        for (const [k, regs] of Object.entries(v.registers)) {
            if (!isObj(regs))
                throw new PolicyError("registers values must be objects");
            const out = {};
            for (const [n, val] of Object.entries(regs))
                out[n] = digest(val, `register ${n}`);
            p.registers[kind(k)] = out;
        }
    }
    if (v.snp !== undefined) {
        if (!isObj(v.snp))
            throw new PolicyError("snp must be an object");
        onlyKeys(v.snp, ["max_vmpl", "revocation"], "snp.");
        if (v.snp.max_vmpl !== undefined)
            p.snp.max_vmpl = uint(v.snp.max_vmpl, "snp.max_vmpl", 0xffffffff);
        if (v.snp.revocation !== undefined) {
            if (v.snp.revocation !== "if_present" && v.snp.revocation !== "required")
                throw new PolicyError("snp.revocation must be if_present or required");
            p.snp.revocation = v.snp.revocation;
        }
    }
    if (v.dcap !== undefined) {
        if (!isObj(v.dcap))
            throw new PolicyError("dcap must be an object");
        onlyKeys(v.dcap, ["accepted_tcb_statuses", "allow_dynamic_platform", "allow_cached_keys", "allow_smt"], "dcap.");
        const d = v.dcap;
        if (d.accepted_tcb_statuses !== undefined) {
            if (!Array.isArray(d.accepted_tcb_statuses))
                throw new PolicyError("dcap.accepted_tcb_statuses must be a list");
            for (const s of d.accepted_tcb_statuses)
                if (!TCB_STATUSES.includes(s))
                    throw new PolicyError(`unknown TCB status ${JSON.stringify(s)}`);
            p.dcap.accepted_tcb_statuses = sortedUnique(d.accepted_tcb_statuses, (a, b) => TCB_STATUSES.indexOf(a) - TCB_STATUSES.indexOf(b));
        }
        for (const f of ["allow_dynamic_platform", "allow_cached_keys", "allow_smt"]) {
            if (d[f] !== undefined) {
                if (typeof d[f] !== "boolean")
                    throw new PolicyError(`dcap.${f} must be a boolean`);
                p.dcap[f] = d[f];
            }
        }
    }
    validatePolicy(p);
    return p;
}
const TCB_COMPONENTS = { insecure_simulated: null, sev_snp: 4, tdx: 16, sgx_dcap: 17, nitro: 0 };
function registerAllowed(k, name) {
    if (k === "nitro")
        return /^pcr(0|[1-9][0-9]?)$/.test(name) && Number(name.slice(3)) < 32;
    if (k === "tdx")
        return ["rtmr0", "rtmr1", "rtmr2", "rtmr3", "mr_config_id", "mr_owner", "mr_owner_config", "mr_seam"].includes(name);
    if (k === "sev_snp")
        return ["host_data", "family_id", "image_id", "id_key_digest", "author_key_digest"].includes(name);
    return false;
}
/** Checks that a policy is consistent and could accept something (clave-attest `Policy::validate`). */
export function validatePolicy(p) {
    if (!p.accepted_kinds.length)
        throw new PolicyError("accepted_kinds is empty");
    if (p.measurements && p.signer)
        throw new PolicyError("give either `measurements` or `signer`, not both");
    if (!p.measurements && !p.signer)
        throw new PolicyError("the policy names no identity: give `measurements` or `signer`");
    if (p.measurements && !p.measurements.length)
        throw new PolicyError("measurements is empty");
    const lists = p.accepted_kinds.includes("insecure_simulated");
    if (lists && !p.allow_insecure_simulated)
        throw new PolicyError("accepted_kinds lists insecure_simulated but allow_insecure_simulated is false");
    if (!lists && p.allow_insecure_simulated)
        throw new PolicyError("allow_insecure_simulated is true but accepted_kinds lacks insecure_simulated");
    for (const [k, t] of Object.entries(p.min_tcb)) {
        if (!p.accepted_kinds.includes(k))
            throw new PolicyError(`min_tcb names ${k}, which accepted_kinds does not list`);
        const n = TCB_COMPONENTS[k];
        if (n === 0)
            throw new PolicyError(`min_tcb names ${k}, which has no TCB version`);
        if (n !== null && t.length !== n)
            throw new PolicyError(`min_tcb for ${k} has ${t.length} components; ${k} TCBs have ${n}`);
        if (n === null && (t.length === 0 || t.length > 16))
            throw new PolicyError(`min_tcb for ${k} has ${t.length} components`);
    }
    if (p.max_evidence_age_secs === 0)
        throw new PolicyError("max_evidence_age_secs is 0");
    for (const [k, regs] of Object.entries(p.registers)) {
        if (!p.accepted_kinds.includes(k))
            throw new PolicyError(`registers names ${k}, which accepted_kinds does not list`);
        for (const n of Object.keys(regs))
            if (!registerAllowed(k, n))
                throw new PolicyError(`registers: ${k} has no register ${JSON.stringify(n)}`);
    }
    if (!p.dcap.accepted_tcb_statuses.length)
        throw new PolicyError("dcap.accepted_tcb_statuses is empty");
    if (p.snp.max_vmpl > 3)
        throw new PolicyError(`snp.max_vmpl ${p.snp.max_vmpl} is above 3`);
}
/** The policy's canonical JSON value (as clave-attest serialises it: defaults omitted). */
export function policyToJsonValue(p) {
    const out = { accepted_kinds: p.accepted_kinds };
    if (p.measurements)
        out.measurements = p.measurements;
    if (p.signer) {
        const s = { id: p.signer.id };
        if (p.signer.product_id !== undefined)
            s.product_id = p.signer.product_id;
        s.min_svn = p.signer.min_svn;
        out.signer = s;
    }
    if (Object.keys(p.min_tcb).length)
        out.min_tcb = p.min_tcb;
    out.allow_insecure_simulated = p.allow_insecure_simulated;
    if (p.max_evidence_age_secs !== undefined)
        out.max_evidence_age_secs = p.max_evidence_age_secs;
    if (Object.keys(p.registers).length)
        out.registers = p.registers;
    if (p.snp.max_vmpl !== 0 || p.snp.revocation !== "if_present") {
        const s = {};
        if (p.snp.max_vmpl !== 0)
            s.max_vmpl = p.snp.max_vmpl;
        if (p.snp.revocation !== "if_present")
            s.revocation = p.snp.revocation;
        out.snp = s;
    }
    const d = p.dcap;
    const dd = {};
    if (!(d.accepted_tcb_statuses.length === 1 && d.accepted_tcb_statuses[0] === "UpToDate"))
        dd.accepted_tcb_statuses = d.accepted_tcb_statuses;
    if (!d.allow_dynamic_platform)
        dd.allow_dynamic_platform = false;
    if (!d.allow_cached_keys)
        dd.allow_cached_keys = false;
    if (!d.allow_smt)
        dd.allow_smt = false;
    if (Object.keys(dd).length)
        out.dcap = dd;
    return out;
}
/** Canonical JSON text: members sorted by key, no whitespace (clave-proto `canonical`). */
export function canonicalJson(v) {
    if (Array.isArray(v))
        return `[${v.map(canonicalJson).join(",")}]`;
    if (isObj(v)) {
        const keys = Object.keys(v).sort(byteOrder);
        return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`).join(",")}}`;
    }
    if (typeof v === "number" && !Number.isSafeInteger(v))
        throw new RangeError("canonical JSON holds integers only");
    return JSON.stringify(v);
}
/** The development policy: only the INSECURE simulated TEE, exactly these measurements. */
export function insecureDevPolicy(measurements) {
    return parsePolicy({ accepted_kinds: ["insecure_simulated"], measurements, allow_insecure_simulated: true });
}
/** Why appraisal refused claims (the variant names of clave-attest's errors). */
export class AppraisalError extends Error {
    check;
    constructor(check, message) {
        super(message);
        this.check = check;
        this.name = "AppraisalError";
    }
}
function tcbMeets(t, min) {
    return t.length === min.length && t.every((c, i) => c >= min[i]);
}
/**
 * The policy checks of `clave_attest::appraise`, in its order: kind, insecure, debug, identity,
 * TCB, platform, registers, report data, age.
 */
export function appraise(c, p, expected, now) {
    validatePolicy(p);
    if (!p.accepted_kinds.includes(c.kind))
        throw new AppraisalError("kind", `the policy does not accept TEE kind ${c.kind}`);
    const insecure = c.insecure || c.kind === "insecure_simulated";
    if (insecure && !(p.allow_insecure_simulated && p.accepted_kinds.includes(c.kind))) {
        throw new AppraisalError("insecure", "the insecure simulated TEE is not allowed by the policy");
    }
    if (c.debug)
        throw new AppraisalError("debug", "the TEE runs in debug mode");
    if (p.measurements) {
        if (!p.measurements.includes(c.measurement))
            throw new AppraisalError("measurement", `measurement ${c.measurement} is not in the policy`);
    }
    else if (p.signer) {
        const s = p.signer;
        if (c.signer !== s.id || (s.product_id !== undefined && c.product_id !== s.product_id)) {
            throw new AppraisalError("signer", `signer ${c.signer ?? "(none)"} / product ${c.product_id ?? "(none)"} is not allowed`);
        }
        if (c.svn < s.min_svn)
            throw new AppraisalError("svn", `security version ${c.svn} is below the minimum ${s.min_svn}`);
    }
    const min = p.min_tcb[c.kind];
    if (min && !tcbMeets(c.tcb, min))
        throw new AppraisalError("tcb", `TCB [${c.tcb}] is below the minimum [${min}]`);
    if (c.kind === "sev_snp") {
        const vmpl = c.platform.vmpl ?? Infinity;
        if (vmpl > p.snp.max_vmpl)
            throw new AppraisalError("vmpl", `VMPL ${vmpl} is above the allowed ${p.snp.max_vmpl}`);
        if (p.snp.revocation === "required" && !c.platform.crl)
            throw new AppraisalError("revocation", "the chain was not checked against a CRL");
    }
    if (c.kind === "tdx" || c.kind === "sgx_dcap") {
        const status = c.platform.tcb_status ?? "missing";
        if (!p.dcap.accepted_tcb_statuses.includes(status))
            throw new AppraisalError("tcb-status", `TCB status ${status} is not accepted`);
    }
    const regs = p.registers[c.kind];
    if (regs) {
        for (const [n, want] of Object.entries(regs)) {
            const got = c.platform.registers[n];
            if (got !== want)
                throw new AppraisalError("register", `register ${n} is ${got ?? "missing"}, the policy wants ${want}`);
        }
    }
    if (!equal(c.report_data, expected))
        throw new AppraisalError("report-data", "the report data does not bind the expected nonce and key");
    if (c.issued_at === undefined) {
        if (p.max_evidence_age_secs !== undefined && (c.kind === "insecure_simulated" || c.kind === "nitro")) {
            throw new AppraisalError("timestamp", "the evidence has no timestamp but the policy limits its age");
        }
        return;
    }
    if (c.issued_at > now + 60)
        throw new AppraisalError("future", `the evidence was issued in the future (${c.issued_at} > ${now})`);
    if (p.max_evidence_age_secs !== undefined && now - c.issued_at > p.max_evidence_age_secs) {
        throw new AppraisalError("expired", `the evidence is ${now - c.issued_at} s old (limit ${p.max_evidence_age_secs} s)`);
    }
}
export { toHex };
