import { type Policy } from "./policy.js";
/** What a caller is willing to trust, fixed before talking to any gateway. */
export interface TrustPolicy {
    /** Reference values the KDS evidence must satisfy. */
    kds: Policy;
    /** The engines the caller accepts: every key bundle's policy must be no broader. */
    engines: Policy;
    /** The master switch for the INSECURE simulated TEE (off unless asked for). */
    allowInsecureSimulated: boolean;
    /** How long a verified attestation is reused, in seconds (default 300). */
    maxAgeSecs: number;
}
export declare const DEFAULT_MAX_AGE_SECS = 300;
/** Builders of trust policies. */
export declare const TrustPolicy: {
    /** Real hardware: the two policies as given (JSON text, value or parsed), simulated TEE refused. */
    of(kds: Policy | string | object, engines: Policy | string | object, options?: {
        maxAgeSecs?: number;
    }): TrustPolicy;
    /**
     * The development policy: accepts the INSECURE simulated TEE, with the KDS pinned to
     * `kdsMeasurement` and engines to `engineMeasurements` (hex). Anyone can forge simulated
     * evidence: use it only against `clave dev`.
     */
    insecureDev(kdsMeasurement: string, engineMeasurements: string[] | string, options?: {
        maxAgeSecs?: number;
    }): TrustPolicy;
};
/**
 * Whether `spec` (a key bundle's policy: who may receive the private key) admits nothing that
 * `accepted` (the caller's engine policy) does not. Returns `undefined` when it is within, else
 * the first reason it is broader.
 */
export declare function policyWithin(spec: Policy, accepted: Policy, allowInsecureSimulated: boolean): string | undefined;
