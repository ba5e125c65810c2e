/** QUIC variable-length integer (RFC 9000 §16). */
export declare function varint(n: number): Uint8Array;
/** A header field: lowercase name, value. */
export type Field = [name: string, value: string];
/** A known-length BHTTP request. */
export declare function encodeRequest(req: {
    method: string;
    scheme: string;
    authority: string;
    path: string;
    headers: Field[];
    body: Uint8Array;
}): Uint8Array;
/** A decoded BHTTP response. */
export interface BhttpResponse {
    status: number;
    headers: Field[];
    body: Uint8Array;
}
/** Decodes a known-length BHTTP response (informational responses are skipped). */
export declare function decodeResponse(bytes: Uint8Array): BhttpResponse;
