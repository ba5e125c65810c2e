/** Whose fault an error is (the same split as the Rust SDK's `Fault`). */
export type Fault = "caller" | "network" | "attestation" | "gateway" | "engine" | "function";
/** The base class of every error the SDK throws. */
export declare class ClaveError extends Error {
    /** Whose fault it is. */
    readonly fault: Fault;
    /** What to do about it, in one sentence. */
    readonly hint: string;
    constructor(message: string, fault: Fault, hint: string, options?: {
        cause?: unknown;
    });
}
/** The caller gave something unusable: a bad name, URL, code hash, header or body. */
export declare class InvalidInputError extends ClaveError {
    constructor(message: string, hint?: string);
}
/** The gateway could not be reached. */
export declare class TransportError extends ClaveError {
    readonly url: string;
    constructor(url: string, reason: string, options?: {
        cause?: unknown;
    });
}
/** An RFC 9457 problem document as the gateway sends it. */
export interface Problem {
    type: string;
    title: string;
    status: number;
    detail?: string;
}
/** The untrusted gateway refused the request (its error travelled in the clear). */
export declare class GatewayError extends ClaveError {
    readonly status: number;
    readonly problem: Problem | undefined;
    constructor(status: number, problem: Problem | undefined);
    private static hintFor;
}
/** Why the attestation or the key bundles were refused. Nothing was sealed. */
export type AttestationReason = "insecure-refused" | "evidence" | "nonce-mismatch" | "identity-mismatch" | "bundle" | "spec-too-broad" | "missing-key" | "malformed" | "unsupported";
/** The platform's attestation or key bundles did not satisfy the trust policy; nothing was sealed. */
export declare class AttestationError extends ClaveError {
    readonly reason: AttestationReason;
    constructor(reason: AttestationReason, message: string, hint?: string, options?: {
        cause?: unknown;
    });
    private static hintFor;
}
/** The engine refused to run the code because its hash differs from the pinned one. */
export declare class HashRefusedError extends ClaveError {
    readonly detail: string | undefined;
    constructor(detail: string | undefined);
}
/** The function threw an exception (the message was decrypted; only you see it). */
export declare class FunctionThrewError extends ClaveError {
    readonly functionMessage: string;
    constructor(functionMessage: string);
}
/** The function hit a limit (`cpu-time`, `memory`, or another size limit). */
export declare class LimitHitError extends ClaveError {
    readonly limit: "cpu-time" | "memory" | "other";
    readonly detail: string | undefined;
    constructor(limit: "cpu-time" | "memory" | "other", detail: string | undefined);
}
/** The engine refused for another reason (stale date, replay, malformed request, internal). */
export declare class EngineRefusedError extends ClaveError {
    readonly slug: string;
    readonly status: number;
    readonly title: string;
    readonly detail: string | undefined;
    constructor(slug: string, status: number, title: string, detail: string | undefined);
}
/** A protocol step failed (sealing, opening the answer, unexpected bytes). */
export declare class ProtocolError extends ClaveError {
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
