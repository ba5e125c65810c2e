export type CborValue = {
    t: "uint";
    v: number;
} | {
    t: "neg";
    v: number;
} | {
    t: "bytes";
    v: Uint8Array;
} | {
    t: "text";
    v: string;
} | {
    t: "array";
    v: CborValue[];
} | {
    t: "map";
    v: [CborValue, CborValue][];
} | {
    t: "tag";
    tag: number;
    v: CborValue;
} | {
    t: "bool";
    v: boolean;
} | {
    t: "null";
};
/** Decodes exactly one CBOR item filling `bytes`. */
export declare function decodeCbor(bytes: Uint8Array): CborValue;
/** The value of text key `k` in a map. */
export declare function mapGet(m: CborValue, k: string): CborValue | undefined;
/** CBOR encoding of a byte string (for the COSE Sig_structure). */
export declare function cborBytes(b: Uint8Array): Uint8Array;
/** CBOR encoding of a text string. */
export declare function cborText(s: string): Uint8Array;
/** CBOR head of an array of `n` items. */
export declare function cborArrayHead(n: number): Uint8Array;
