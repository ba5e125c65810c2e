import { type KeyConfig } from "./ohttp.js";
import { type Policy } from "./policy.js";
/** `{payload, signature}` as the KDS signs it. */
export interface SignedObject {
    payload: string;
    signature: string;
}
/** A key spec: purpose, policy (who may receive the key), epoch. */
export interface KeySpec {
    purpose: "code" | "invoke";
    policy: Policy;
    epoch: number;
    /** SHA-256 of the canonical spec bytes, lowercase hex. */
    id: string;
}
/** A verified key bundle. */
export interface KeyBundle {
    spec: KeySpec;
    keyConfig: KeyConfig;
    notBefore: number;
    notAfter: number;
}
/** Why a bundle was refused (`reason` mirrors clave-proto's error names). */
export declare class BundleError extends Error {
    readonly reason: string;
    constructor(reason: string, message: string);
}
/** Verifies a signed object's Ed25519 signature and returns the exact payload bytes. */
export declare function verifySigned(signed: unknown, identity: Uint8Array): Promise<Uint8Array>;
/** Parses canonical key spec bytes; anything not canonical is refused. */
export declare function parseKeySpec(bytes: Uint8Array): Promise<KeySpec>;
/** Parses a bundle payload (after its signature was verified) and checks its internal consistency. */
export declare function parseBundlePayload(payload: Uint8Array): Promise<KeyBundle>;
/** Whether a bundle is valid at `now`. */
export declare function checkValidity(b: KeyBundle, now: number): void;
