import { toHex } from "./bytes.js";
/** TEE kinds, in canonical order. */
export declare const TEE_KINDS: readonly ["insecure_simulated", "sev_snp", "tdx", "sgx_dcap", "nitro"];
export type TeeKind = (typeof TEE_KINDS)[number];
/** A signer identity with a minimum security version. */
export interface SignerPolicy {
    id: string;
    product_id?: number;
    min_svn: number;
}
/** An attestation policy (the file format of clave-attest, normalised). */
export interface Policy {
    accepted_kinds: TeeKind[];
    /** Exactly one of `measurements` (lowercase hex) and `signer`. */
    measurements?: string[];
    signer?: SignerPolicy;
    min_tcb: Partial<Record<TeeKind, number[]>>;
    allow_insecure_simulated: boolean;
    max_evidence_age_secs?: number;
    registers: Partial<Record<TeeKind, Record<string, string>>>;
    snp: {
        max_vmpl: number;
        revocation: "if_present" | "required";
    };
    dcap: {
        accepted_tcb_statuses: string[];
        allow_dynamic_platform: boolean;
        allow_cached_keys: boolean;
        allow_smt: boolean;
    };
}
/** Verified claims of a piece of evidence (what clave-attest's `Claims` holds). */
export interface Claims {
    kind: TeeKind;
    /** Launch measurement, lowercase hex. */
    measurement: string;
    signer?: string;
    product_id?: number;
    svn: number;
    tcb: number[];
    debug: boolean;
    report_data: Uint8Array;
    issued_at?: number;
    insecure: boolean;
    platform: {
        registers: Record<string, string>;
        vmpl?: number;
        crl?: {
            this_update: number;
            next_update: number;
        };
        tcb_status?: string;
        platform_flags?: string[];
    };
}
/** A policy that is invalid or not in the file format. */
export declare class PolicyError extends Error {
    constructor(message: string);
}
/** Parses a policy from its JSON value (or text), normalises and validates it. */
export declare function parsePolicy(input: unknown): Policy;
/** Checks that a policy is consistent and could accept something (clave-attest `Policy::validate`). */
export declare function validatePolicy(p: Policy): void;
/** The policy's canonical JSON value (as clave-attest serialises it: defaults omitted). */
export declare function policyToJsonValue(p: Policy): Record<string, unknown>;
/** Canonical JSON text: members sorted by key, no whitespace (clave-proto `canonical`). */
export declare function canonicalJson(v: unknown): string;
/** The development policy: only the INSECURE simulated TEE, exactly these measurements. */
export declare function insecureDevPolicy(measurements: string[]): Policy;
/** Why appraisal refused claims (the variant names of clave-attest's errors). */
export declare class AppraisalError extends Error {
    readonly check: string;
    constructor(check: string, message: string);
}
/**
 * The policy checks of `clave_attest::appraise`, in its order: kind, insecure, debug, identity,
 * TCB, platform, registers, report data, age.
 */
export declare function appraise(c: Claims, p: Policy, expected: Uint8Array, now: number): void;
export { toHex };
