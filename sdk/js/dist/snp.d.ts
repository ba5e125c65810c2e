import type { Claims } from "./policy.js";
import { children } from "./x509.js";
export declare const SNP_REPORT_LEN = 1184;
/** The fields of a report that matter for appraisal (unverified until `verifySnpReport`). */
export interface SnpReport {
    version: number;
    guestSvn: number;
    /** The guest policy, as a bigint (bit 19: debug). */
    policy: bigint;
    familyId: Uint8Array;
    imageId: Uint8Array;
    vmpl: number;
    /** REPORTED_TCB, 8 raw bytes (little-endian TCB_VERSION). */
    reportedTcb: Uint8Array;
    authorKeyEn: boolean;
    signingKey: number;
    reportData: Uint8Array;
    measurement: Uint8Array;
    hostData: Uint8Array;
    idKeyDigest: Uint8Array;
    authorKeyDigest: Uint8Array;
    chipId: Uint8Array;
}
/** Parses a raw report: length, version 2..5, signature algorithm 1, VMPL <= 3. */
export declare function parseSnpReport(b: Uint8Array): SnpReport;
/** The certificates of a host certificate table (GUID, offset u32 LE, length u32 LE; all-zero entry ends it). */
export declare function parseCertTable(b: Uint8Array): {
    vcek?: Uint8Array;
    ask?: Uint8Array;
    ark?: Uint8Array;
};
/** Options of {@link verifySnpReport}. */
export interface SnpEndorsements {
    /** AMD's cert_chain (PEM: ASK then ARK) or the ASK alone; the built-in ASK otherwise. */
    chain?: Uint8Array;
    /** An ARK found in the host's certificate table (must equal the pinned one). */
    tableArk?: Uint8Array;
}
/** Verifies an SEV-SNP report against its VCEK (DER or PEM) at `now`; returns its claims (no policy). */
export declare function verifySnpReport(report: Uint8Array, vcekBytes: Uint8Array, now: number, e?: SnpEndorsements): Promise<Claims>;
export { children };
