import { be } from "./bytes.js";
import type { Claims } from "./policy.js";
/** A parsed (unverified) document. */
export interface NitroDocument {
    moduleId: string;
    timestampMs: number;
    pcrs: Map<number, Uint8Array>;
    certificate: Uint8Array;
    cabundle: Uint8Array[];
    publicKey?: Uint8Array;
    userData?: Uint8Array;
    nonce?: Uint8Array;
    protected: Uint8Array;
    payload: Uint8Array;
    signature: Uint8Array;
}
/** Parses a document (tagged or untagged COSE_Sign1). */
export declare function parseNitroDocument(bytes: Uint8Array): NitroDocument;
/** The report data of a document whose user_data is not 64 bytes (clave-attest `nitro_binding`). */
export declare function nitroBinding(publicKey?: Uint8Array, userData?: Uint8Array, nonce?: Uint8Array): Promise<Uint8Array>;
/** Verifies a Nitro attestation document at `now` and returns its claims (no policy). */
export declare function verifyNitroDocument(bytes: Uint8Array, now: number): Promise<Claims>;
export { be };
