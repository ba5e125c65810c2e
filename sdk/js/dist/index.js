// @clave/sdk: verify a clave platform's attestation, seal requests to its attested keys, open
// the answers locally. Runs unchanged in current browsers and Node >= 20 (WebCrypto only).
export { Clave, probe, verifyPlatform, nowUnix, policyWords } from "./client.js";
export { TrustPolicy, policyWithin, DEFAULT_MAX_AGE_SECS } from "./trust.js";
export { parsePolicy, insecureDevPolicy, appraise, canonicalJson, policyToJsonValue, AppraisalError, PolicyError, TEE_KINDS } from "./policy.js";
export { ClaveError, InvalidInputError, TransportError, GatewayError, AttestationError, HashRefusedError, FunctionThrewError, LimitHitError, EngineRefusedError, ProtocolError, } from "./errors.js";
export { decodeEvidence, verifyEvidence, verify, verifySimulatedReport, kdsAttestationReportData, reportDataHashOf, EvidenceError } from "./evidence.js";
export { decodeKeyConfig, encodeKeyConfig, encapsulateRequest, encapsulatePrepared, prepareRequest, preparedFor } from "./ohttp.js";
export { encodeRequest, decodeResponse } from "./bhttp.js";
export { parseBundlePayload, parseKeySpec, verifySigned, BundleError } from "./bundle.js";
export { toHex, fromHex, b64urlEncode, b64urlDecode } from "./bytes.js";
export { verifySnpReport, parseSnpReport, parseCertTable } from "./snp.js";
export { verifyNitroDocument, parseNitroDocument, nitroBinding } from "./nitro.js";
