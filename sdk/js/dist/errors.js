// Typed errors. Each says whose fault it is (`fault`) and what to do about it (`hint`).
/** The base class of every error the SDK throws. */
export class ClaveError extends Error {
    /** Whose fault it is. */
    fault;
    /** What to do about it, in one sentence. */
    hint;
    constructor(message, fault, hint, options) {
        super(`${message}. ${hint}`, options);
        this.name = "ClaveError";
        this.fault = fault;
        this.hint = hint;
    }
}
/** The caller gave something unusable: a bad name, URL, code hash, header or body. */
export class InvalidInputError extends ClaveError {
    constructor(message, hint = "Fix the argument and try again") {
        super(message, "caller", hint);
        this.name = "InvalidInputError";
    }
}
/** The gateway could not be reached. */
export class TransportError extends ClaveError {
    url;
    constructor(url, reason, options) {
        super(`cannot reach the gateway at ${url}: ${reason}`, "network", "Check the URL and that the platform is running (`clave dev` locally)", options);
        this.url = url;
        this.name = "TransportError";
    }
}
/** The untrusted gateway refused the request (its error travelled in the clear). */
export class GatewayError extends ClaveError {
    status;
    problem;
    constructor(status, problem) {
        const what = problem ? `: ${problem.title}${problem.detail ? `: ${problem.detail}` : ""}` : "";
        super(`the gateway refused the request (${status})${what}`, "gateway", GatewayError.hintFor(status));
        this.status = status;
        this.problem = problem;
        this.name = "GatewayError";
    }
    static hintFor(status) {
        if (status === 404)
            return "Check the project and function names (`clave functions list`)";
        if (status === 401 || status === 403)
            return "Check the deploy token";
        if (status === 413)
            return "Send a smaller body";
        if (status === 429 || status === 503)
            return "The platform is busy: retry after a short pause";
        return "Retry later, or ask the platform's operator";
    }
}
/** The platform's attestation or key bundles did not satisfy the trust policy; nothing was sealed. */
export class AttestationError extends ClaveError {
    reason;
    constructor(reason, message, hint, options) {
        super(`attestation failed: ${message}`, "attestation", hint ?? AttestationError.hintFor(reason), options);
        this.reason = reason;
        this.name = "AttestationError";
    }
    static hintFor(reason) {
        switch (reason) {
            case "insecure-refused":
                return "Pass { trust: TrustPolicy.insecureDev(...) } only against `clave dev`; never for real data";
            case "evidence":
                return "Do not send anything to this platform; check that your pinned measurements match the release you expect";
            case "spec-too-broad":
                return "Do not send anything: the key may reach engines you did not pin; update your engine policy only if you trust them";
            case "unsupported":
                return "Verify this TEE kind with the Rust SDK or the clave CLI for now";
            default:
                return "Do not send anything to this platform; report it to the operator";
        }
    }
}
/** The engine refused to run the code because its hash differs from the pinned one. */
export class HashRefusedError extends ClaveError {
    detail;
    constructor(detail) {
        super(`the engine refused: the deployed code does not have the pinned hash${detail ? `: ${detail}` : ""}`, "engine", "Pin the code hash of the version you reviewed (`clave functions list` shows the active one)");
        this.detail = detail;
        this.name = "HashRefusedError";
    }
}
/** The function threw an exception (the message was decrypted; only you see it). */
export class FunctionThrewError extends ClaveError {
    functionMessage;
    constructor(functionMessage) {
        super(`the function threw: ${functionMessage}`, "function", "Fix the function or the input you gave it");
        this.functionMessage = functionMessage;
        this.name = "FunctionThrewError";
    }
}
/** The function hit a limit (`cpu-time`, `memory`, or another size limit). */
export class LimitHitError extends ClaveError {
    limit;
    detail;
    constructor(limit, detail) {
        const words = limit === "cpu-time" ? "CPU time limit" : limit === "memory" ? "memory limit" : detail ? `limit (${detail})` : "size limit";
        super(`the function hit its ${words}`, "function", "Send less input, or deploy with higher limits");
        this.limit = limit;
        this.detail = detail;
        this.name = "LimitHitError";
    }
}
/** The engine refused for another reason (stale date, replay, malformed request, internal). */
export class EngineRefusedError extends ClaveError {
    slug;
    status;
    title;
    detail;
    constructor(slug, status, title, detail) {
        super(`the engine refused the call: ${title} (${slug})${detail ? `: ${detail}` : ""}`, "engine", slug === "stale-date" ? "Check this machine's clock (it must be within 60 s of real time)" : "Retry; if it persists, report it");
        this.slug = slug;
        this.status = status;
        this.title = title;
        this.detail = detail;
        this.name = "EngineRefusedError";
    }
}
/** A protocol step failed (sealing, opening the answer, unexpected bytes). */
export class ProtocolError extends ClaveError {
    constructor(message, options) {
        super(`protocol error: ${message}`, "engine", "Retry; if it persists, the platform is misbehaving: report it", options);
        this.name = "ProtocolError";
    }
}
