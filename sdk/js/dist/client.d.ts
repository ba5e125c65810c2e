import { type KeyBundle } from "./bundle.js";
import { type Claims, type Policy, type TeeKind } from "./policy.js";
import { type TrustPolicy } from "./trust.js";
/** Current unix seconds. */
export declare function nowUnix(): number;
/** What was verified, for display. Every field comes from checked evidence or signed bundles. */
export interface Attestation {
    /** The KDS's TEE kind. */
    kind: TeeKind;
    /** True for the INSECURE simulated TEE: anyone can forge this evidence. */
    insecure: boolean;
    /** The KDS launch measurement (hex). */
    measurement: string;
    signer?: string;
    svn: number;
    tcb: number[];
    /** When the evidence was made, if the format says (unix seconds). */
    issuedAt?: number;
    /** Unix seconds of this verification. */
    verifiedAt: number;
    /** Our fresh nonce that the evidence binds (hex). */
    nonce: string;
    /** The attested KDS identity key that signed the bundles (hex). */
    identityPublicKey: string;
    /** The current invoke epoch. */
    epoch: number;
    /** The code key: who may receive it. */
    codeKey: KeySummary;
    /** Invoke keys valid now or later, ascending epoch. */
    invokeKeys: KeySummary[];
    /** The KDS claims as verified. */
    claims: Claims;
    /** The same, as sentences for people. */
    describe(): string[];
}
/** One key bundle, for display. */
export interface KeySummary {
    purpose: "code" | "invoke";
    epoch: number;
    specId: string;
    notBefore: number;
    notAfter: number;
    /** Who may receive the private key (an attestation policy). */
    policy: Policy;
}
/** Options of {@link Clave.connect}. */
export interface ConnectOptions {
    /** The pinned trust policy (see `TrustPolicy.of`, `TrustPolicy.insecureDev`). */
    trust: TrustPolicy;
    /** A `fetch` to use (default: the global one). */
    fetch?: typeof fetch;
}
/** Options of {@link Clave.invoke}. */
export interface InvokeOptions {
    /** The request body (a string is sent as UTF-8). */
    body?: string | Uint8Array | ArrayBuffer;
    /** A JSON value to send as the body (sets `content-type: application/json` unless given). */
    json?: unknown;
    /** Request headers for the function (`date` and `clave-*` are reserved). */
    headers?: Record<string, string> | [string, string][] | Headers;
    /** The SHA-256 of the code you expect (64 lowercase hex): the engine runs nothing else. */
    codeHash: string;
    /** The HTTP method the function sees as `request.method` (default `POST`). */
    method?: string;
    /**
     * The path and query the function sees after `https://clave/{project}/{function}` in
     * `request.url`, e.g. `/items?id=3` (empty, or starting with `/` or `?`; visible ASCII without `#`).
     */
    path?: string;
    /** Aborts the HTTP exchange. */
    signal?: AbortSignal;
}
interface Verified {
    att: Attestation;
    codeKey: KeyBundle;
    invokeKeys: KeyBundle[];
}
/** A policy in words. */
export declare function policyWords(p: Policy): string;
/**
 * Verify an attestation answer and a key list against `trust`, for our `nonce`, at `now`
 * (clave-client `verify_platform`): the evidence decodes; simulated evidence only if allowed;
 * the echoed nonce is ours; the evidence satisfies the KDS policy with report data binding the
 * identity key and the nonce; the key list names the same identity key; every bundle's
 * signature verifies under it; each bundle's policy is no broader than the engine policy; there
 * is a valid code key and a current invoke key.
 */
export declare function verifyPlatform(trust: TrustPolicy, nonce: Uint8Array, attestation: any, keys: any, now: number): Promise<Verified>;
/** A clave client bound to one gateway and one trust policy. Nothing is sealed to a key it has not verified. */
export declare class Clave {
    #private;
    private constructor();
    /**
     * Connect to the gateway at `gatewayUrl`: fetch the KDS evidence for a fresh nonce and the
     * signed key bundles, and verify both under `trust`. Throws {@link AttestationError} (nothing
     * was sent) when anything fails to verify.
     */
    static connect(gatewayUrl: string | URL, options: ConnectOptions): Promise<Clave>;
    /** The gateway URL. */
    get gatewayUrl(): string;
    /** What was verified (KDS TEE kind, measurement, keys and who may receive them). */
    attestation(): Attestation;
    /** Fetch and verify the attestation again now. */
    refresh(): Promise<Attestation>;
    /**
     * Invoke `project/name`, pinned to `codeHash`: seal the request to the verified invoke key,
     * post it, and open the answer locally. Resolves to a standard `Response` (any status the
     * function chose); throws typed errors for the gateway's and the engine's refusals.
     */
    invoke(project: string, name: string, options: InvokeOptions): Promise<Response>;
}
/** What the platform's evidence *claims*, without verifying anything: for explaining a refusal, never for trust. */
export declare function probe(gatewayUrl: string, f?: typeof fetch): Promise<{
    kind: TeeKind;
    measurement?: string;
}>;
export {};
