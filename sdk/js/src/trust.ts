// The caller's trust policy and the check that a key spec's policy is no broader than it
// (clave-client `TrustPolicy` and `policy_within`, rule for rule).

import { insecureDevPolicy, parsePolicy, type Policy, type TeeKind } from "./policy.js";

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

export const DEFAULT_MAX_AGE_SECS = 300;

/** Builders of trust policies. */
export const TrustPolicy = {
  /** Real hardware: the two policies as given (JSON text, value or parsed), simulated TEE refused. */
  of(kds: Policy | string | object, engines: Policy | string | object, options?: { maxAgeSecs?: number }): TrustPolicy {
    return {
      kds: parsePolicy(kds),
      engines: parsePolicy(engines),
      allowInsecureSimulated: false,
      maxAgeSecs: options?.maxAgeSecs ?? DEFAULT_MAX_AGE_SECS,
    };
  },
  /**
   * The development policy: accepts the INSECURE simulated TEE, with the KDS pinned to
   * `kdsMeasurement` and engines to `engineMeasurements` (hex). Anyone can forge simulated
   * evidence: use it only against `clave dev`.
   */
  insecureDev(kdsMeasurement: string, engineMeasurements: string[] | string, options?: { maxAgeSecs?: number }): TrustPolicy {
    return {
      kds: insecureDevPolicy([kdsMeasurement]),
      engines: insecureDevPolicy(Array.isArray(engineMeasurements) ? engineMeasurements : [engineMeasurements]),
      allowInsecureSimulated: true,
      maxAgeSecs: options?.maxAgeSecs ?? DEFAULT_MAX_AGE_SECS,
    };
  },
};

function tcbMeets(t: number[], min: number[]): boolean {
  return t.length === min.length && t.every((c, i) => c >= min[i]!);
}

/**
 * Whether `spec` (a key bundle's policy: who may receive the private key) admits nothing that
 * `accepted` (the caller's engine policy) does not. Returns `undefined` when it is within, else
 * the first reason it is broader.
 */
export function policyWithin(spec: Policy, accepted: Policy, allowInsecureSimulated: boolean): string | undefined {
  for (const k of spec.accepted_kinds) {
    if (!accepted.accepted_kinds.includes(k)) return `it admits TEE kind ${k}, which you do not accept`;
    if (k === "insecure_simulated" && !allowInsecureSimulated) return "it admits the insecure simulated TEE, which you do not accept";
  }
  if (spec.allow_insecure_simulated && !(accepted.allow_insecure_simulated && allowInsecureSimulated)) {
    return "it admits the insecure simulated TEE, which you do not accept";
  }
  if (spec.measurements && accepted.measurements) {
    const m = spec.measurements.find((x) => !accepted.measurements!.includes(x));
    if (m) return `it admits engine measurement ${m}, which you do not accept`;
  } else if (spec.signer && accepted.signer) {
    const [t, o] = [spec.signer, accepted.signer];
    if (t.id !== o.id) return `it admits engines signed by ${t.id}, you accept only ${o.id}`;
    if (o.product_id !== undefined && t.product_id !== o.product_id) return "it admits another product id than the one you accept";
    if (t.min_svn < o.min_svn) return `it admits engines with security version ${t.min_svn} (you require at least ${o.min_svn})`;
  } else if (spec.signer) {
    return "it admits any engine of a signer, you accept only pinned measurements";
  } else {
    return `it pins ${spec.measurements!.length} engine measurement(s), you accept engines by signer; pin measurements instead`;
  }
  for (const [k, ours] of Object.entries(accepted.min_tcb) as [TeeKind, number[]][]) {
    if (!spec.accepted_kinds.includes(k)) continue;
    const theirs = spec.min_tcb[k];
    if (!theirs || !tcbMeets(theirs, ours)) return `its TCB floor for ${k} is lower than the one you require ([${ours}])`;
  }
  if (accepted.max_evidence_age_secs !== undefined) {
    const theirs = spec.max_evidence_age_secs;
    if (theirs === undefined || theirs > accepted.max_evidence_age_secs) {
      return `it accepts engine evidence older than your limit of ${accepted.max_evidence_age_secs} s`;
    }
  }
  return undefined;
}
