import { fromHex } from "./bytes.js";
import { type Claims, type Policy, type TeeKind } from "./policy.js";
/** Largest evidence envelope accepted (1 MiB). */
export declare const MAX_EVIDENCE_LEN: number;
/** Decoded (still unverified) evidence. */
export type Evidence = {
    kind: "insecure_simulated";
    report: Uint8Array;
} | {
    kind: "sev_snp";
    report: Uint8Array;
    certs?: Uint8Array;
} | {
    kind: "tdx";
    quote: Uint8Array;
} | {
    kind: "sgx_dcap";
    quote: Uint8Array;
} | {
    kind: "nitro";
    document: Uint8Array;
};
/** An evidence or claims error: `check` names what failed. */
export declare class EvidenceError extends Error {
    readonly check: string;
    constructor(check: string, message: string);
}
/** Decodes the binary envelope strictly. */
export declare function decodeEvidence(bytes: Uint8Array): Evidence;
/** The seed of the simulated TEE's insecure root key: public on purpose (clave-attest `INSECURE_ROOT_SEED`). */
export declare const INSECURE_ROOT_SEED: Uint8Array<ArrayBufferLike>;
/** Prefix of every message the simulated root signs. */
export declare const SIMULATED_SIGNING_DOMAIN: Uint8Array<ArrayBufferLike>;
/** The public key of the insecure simulated root (derived from the published seed). */
export declare function insecureRootPublicKey(): Promise<Uint8Array>;
/** Ed25519 signature verification through WebCrypto. */
export declare function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
/** Verifies a simulated report against the insecure root and parses it strictly. Always `insecure: true`. */
export declare function verifySimulatedReport(report: Uint8Array, root?: Uint8Array): Promise<Claims>;
/** Verifier hooks for the hardware kinds, registered by ./snp.js and ./nitro.js. */
export declare const hardwareVerifiers: Partial<Record<TeeKind, (ev: Evidence, now: number) => Promise<Claims>>>;
/** Cryptographic verification of `ev` at `now` (certificate validity); applies no policy. */
export declare function verifyEvidence(ev: Evidence, now: number): Promise<Claims>;
/** Verifies `ev` and appraises it against `policy` for the `expected` report data at `now`. */
export declare function verify(ev: Evidence, policy: Policy, expected: Uint8Array, now: number): Promise<Claims>;
/** `ReportData::hash_of`: SHA-512(len(label) || label || len(a) || a || ...), u64 big-endian lengths. */
export declare function reportDataHashOf(label: Uint8Array, parts: Uint8Array[]): Promise<Uint8Array>;
/** The report data of a KDS attestation: binds the KDS identity key and the caller's nonce. */
export declare function kdsAttestationReportData(identityPk: Uint8Array, nonce: Uint8Array): Promise<Uint8Array>;
export { fromHex };
