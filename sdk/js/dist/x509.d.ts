import { Reader } from "./bytes.js";
/** One DER element. */
export interface Tlv {
    tag: number;
    /** The whole element (header and content). */
    raw: Uint8Array;
    /** The content. */
    content: Uint8Array;
}
/** Reads one DER element at the reader's position (definite lengths only, minimal length encoding). */
export declare function readTlv(r: Reader): Tlv;
/** The elements inside a constructed element's content. */
export declare function children(t: Tlv | Uint8Array): Tlv[];
/** Parses exactly one element filling `bytes`. */
export declare function parseDer(bytes: Uint8Array): Tlv;
/** Dotted text of an OBJECT IDENTIFIER's content. */
export declare function oidText(content: Uint8Array): string;
/** The DER blocks of PEM text (label `CERTIFICATE` unless given). */
export declare function pemBlocks(text: string, label?: string): Uint8Array[];
/** A parsed certificate. */
export interface Cert {
    der: Uint8Array;
    tbs: Uint8Array;
    sigAlg: string;
    sigAlgParams?: Uint8Array;
    signature: Uint8Array;
    issuer: Uint8Array;
    subject: Uint8Array;
    notBefore: number;
    notAfter: number;
    /** The SubjectPublicKeyInfo, raw. */
    spki: Uint8Array;
    /** The public key algorithm OID. */
    keyAlg: string;
    /** Extension OID -> extnValue content (the OCTET STRING's bytes). */
    extensions: Map<string, Uint8Array>;
    /** basicConstraints cA, if the extension is present. */
    ca?: boolean;
    /** A name for error messages. */
    name: string;
}
/** Parses a DER certificate strictly (nothing may follow it). */
export declare function parseCert(der: Uint8Array, role: string): Cert;
/** SHA-256 fingerprint of DER bytes, hex. */
export declare function fingerprint(der: Uint8Array): Promise<string>;
export declare const OID_RSASSA_PSS = "1.2.840.113549.1.1.10";
export declare const OID_ECDSA_SHA384 = "1.2.840.10045.4.3.3";
export declare const OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1";
/** An ECDSA P-384 public key from an SPKI. */
export declare function p384Key(c: Cert): Promise<CryptoKey>;
/** A DER ECDSA-Sig-Value as the fixed-width r||s WebCrypto wants (48-byte halves for P-384). */
export declare function ecdsaDerToP1363(der: Uint8Array, half?: number): Uint8Array;
/** Whether `issuer` signed `subject` (RSA-PSS/SHA-384 or ECDSA/SHA-384 over the raw TBS). */
export declare function verifyCertSignature(issuer: Cert, subject: Cert): Promise<boolean>;
/** Whether `c` is valid at `now` (unix seconds). */
export declare function validAt(c: Cert, now: number): boolean;
