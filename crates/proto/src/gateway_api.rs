//! Wire types of the untrusted gateway's HTTP API (owned by `clave-gateway`).
//!
//! Everything here is routing metadata or opaque bytes: the gateway never sees plaintext code, input or
//! output, and none of these types carries any. Shared by the gateway (server), the client/CLI and the
//! engine (which serves [`ENGINE_INVOKE_PATH`]).
//!
//! # Public API (gateway)
//!
//! | method + path | body in | body out |
//! |---|---|---|
//! | `GET /.well-known/ohttp-gateway` | – | `application/ohttp-keys` (RFC 9540) |
//! | `GET /v1/keys` | – | signed key bundles (JSON, proxied from the KDS unchanged) |
//! | `GET /v1/attestation?nonce=N` | – | KDS evidence (JSON, proxied unchanged); `N` is 16–128 chars of `[A-Za-z0-9_-]` |
//! | `PUT /v1/projects/{project}/functions/{name}` | [`DeployRequest`] (`application/json`) | [`DeployResponse`] (201) |
//! | `GET /v1/projects/{project}/functions` | – | [`FunctionList`] |
//! | `GET /v1/projects/{project}/functions/{name}` | – | [`FunctionDetail`] |
//! | `POST /v1/projects/{project}/functions/{name}/activate` | [`ActivateRequest`] | [`ActivateResponse`] |
//! | `POST /v1/projects/{project}/functions/{name}/rollback` | – | [`ActivateResponse`] |
//! | `DELETE /v1/projects/{project}/functions/{name}` | – | 204 |
//! | `POST /v1/projects/{project}/functions/{name}/invoke` | `message/ohttp-req` | `message/ohttp-res` |
//! | `POST /v1/projects/{project}/functions/{name}/invoke?mode=async` | `message/ohttp-req` | [`AsyncAccepted`] (202) |
//! | `GET /v1/projects/{project}/results/{id}` | – | 202 [`AsyncPending`] / 200 `message/ohttp-res` / problem |
//! | `POST /v1/projects/{project}/tokens` (admin token) | – | [`CreateTokenResponse`] (201) |
//! | `POST /v1/engines/register` (admin token) | [`EngineRegisterRequest`] | [`EngineRegisterResponse`] |
//! | `POST /v1/engines/deregister` (admin token) | [`EngineRegisterRequest`] | 204 / 404 |
//! | `POST /v1/engines/logs` (admin token) | [`EngineLogBatch`] | [`EngineLogAccepted`] |
//! | `GET /v1/engines` (admin token) | – | [`EngineList`] |
//! | `GET /healthz`, `GET /readyz`, `GET /metrics` | – | text |
//!
//! Every `/v1/projects/{project}/...` route also exists as `/v1/...` for the default project
//! ([`DEFAULT_PROJECT`]). Management routes take `Authorization: Bearer <deploy token>`; the token belongs to
//! one project. Invocation needs no token (the user's authority travels inside the encrypted request).
//! Gateway errors are RFC 9457 [`Problem`] documents (`application/problem+json`) and never contain request
//! content; errors inside the trust boundary travel encrypted inside `message/ohttp-res`.
//!
//! An asynchronous call (`?mode=async`) is accepted with `202` and an id; the sealed request waits in a
//! durable queue and the sealed response (readable only by the caller, like a synchronous one) is fetched
//! with `GET .../results/{id}`: `202` while pending, `200` `message/ohttp-res` when done, or the problem
//! the call ended with. Ids are 32 lowercase hex characters (128 random bits).
//!
//! # Engine API (served by each engine, called by the gateway)
//!
//! `POST /v1/engine/invoke` with `content-type: application/vnd.clave.engine-job` and an [`EngineJob`]
//! in its binary framing (see [`EngineJob::encode`]). A job with [`JobFlags::ASYNC`] comes from the durable
//! queue and may be a redelivery of a request the engine has already run (see [`JobFlags::ASYNC`]).
//! Answers:
//! * `200` `message/ohttp-res`: the encapsulated response (also for errors inside the trust boundary);
//! * `400` problem of type [`problem_type::ENGINE_REJECTED`]: the outer envelope could not be opened
//!   (tampered/truncated/unknown key) — nothing ran;
//! * `503` problem of type [`problem_type::OVERLOADED`] (+ optional `Retry-After`): busy, nothing ran;
//! * `504`: the engine gave up on time; anything else: a failure after the function may have run.
//!
//! `GET /v1/engine/ready` answers `200` when the engine can take work.

use serde::{Deserialize, Serialize};

/// Project used by the bare (`/v1/functions/...`) routes.
pub const DEFAULT_PROJECT: &str = "default";
/// RFC 9458 encapsulated request media type.
pub const OHTTP_REQUEST_CONTENT_TYPE: &str = "message/ohttp-req";
/// RFC 9458 encapsulated response media type.
pub const OHTTP_RESPONSE_CONTENT_TYPE: &str = "message/ohttp-res";
/// RFC 9540 key configuration list media type.
pub const OHTTP_KEYS_CONTENT_TYPE: &str = "application/ohttp-keys";
/// RFC 9457 problem document media type.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";
/// Media type of an [`EngineJob`] in its binary framing.
pub const ENGINE_JOB_CONTENT_TYPE: &str = "application/vnd.clave.engine-job";
/// Path of the engine's invoke endpoint.
pub const ENGINE_INVOKE_PATH: &str = "/v1/engine/invoke";
/// Path of the engine's readiness endpoint.
pub const ENGINE_READY_PATH: &str = "/v1/engine/ready";

/// `type` URIs of the problems the gateway (and an engine's outer endpoint) returns.
pub mod problem_type {
    /// The request is malformed (bad JSON, bad base64, bad name, manifest mismatch…).
    pub const BAD_REQUEST: &str = "urn:clave:problem:bad-request";
    /// No or unknown bearer token.
    pub const UNAUTHORIZED: &str = "urn:clave:problem:unauthorized";
    /// The token belongs to another project (or is not an admin token).
    pub const FORBIDDEN: &str = "urn:clave:problem:forbidden";
    /// Unknown project, function or version.
    pub const NOT_FOUND: &str = "urn:clave:problem:not-found";
    /// The state does not allow the change (e.g. nothing to roll back to, function limit reached).
    pub const CONFLICT: &str = "urn:clave:problem:conflict";
    /// Body or code larger than the configured limit.
    pub const TOO_LARGE: &str = "urn:clave:problem:too-large";
    /// Wrong `content-type`.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "urn:clave:problem:unsupported-media-type";
    /// The engine could not open the outer envelope (tampered, truncated or for an unknown key).
    pub const ENGINE_REJECTED: &str = "urn:clave:problem:engine-rejected";
    /// Queue full / concurrency cap reached: retry after `Retry-After` seconds; nothing ran.
    pub const OVERLOADED: &str = "urn:clave:problem:overloaded";
    /// No engine could be reached or the gateway is shutting down; nothing ran, retry is safe.
    pub const UNAVAILABLE: &str = "urn:clave:problem:unavailable";
    /// The call did not finish in time; it may have run.
    pub const TIMEOUT: &str = "urn:clave:problem:timeout";
    /// The engine failed after the function may have run.
    pub const ENGINE_FAILED: &str = "urn:clave:problem:engine-failed";
    /// An upstream (KDS) could not answer.
    pub const UPSTREAM: &str = "urn:clave:problem:upstream";
    /// A gateway bug or storage failure.
    pub const INTERNAL: &str = "urn:clave:problem:internal";
    /// The feature (e.g. asynchronous invocation) is not enabled on this gateway.
    pub const NOT_ENABLED: &str = "urn:clave:problem:not-enabled";
}

/// Errors decoding gateway wire types.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// A base64url field did not decode.
    #[error("field `{field}` is not base64url")]
    BadBase64 {
        /// Name of the field.
        field: &'static str,
    },
    /// The engine job framing is shorter than its headers say.
    #[error("engine job truncated")]
    Truncated,
    /// The engine job does not start with the magic/version this code speaks.
    #[error("engine job has an unknown magic or version")]
    BadMagic,
    /// A text field of the engine job is not UTF-8.
    #[error("engine job field `{field}` is not UTF-8")]
    BadUtf8 {
        /// Name of the field.
        field: &'static str,
    },
    /// Bytes follow the last field of the engine job.
    #[error("engine job has trailing bytes")]
    TrailingBytes,
    /// A field is longer than the framing allows.
    #[error("engine job field `{field}` too long")]
    TooLong {
        /// Name of the field.
        field: &'static str,
    },
    /// The engine job sets flag bits this code does not know.
    #[error("engine job has unknown flags {0:#04x}")]
    UnknownFlags(u8),
}

/// base64url without padding (decoding accepts padding too).
pub fn b64url_encode(bytes: &[u8]) -> String {
    crate::b64::encode(bytes)
}

/// Decode base64url (padded or not); `field` names the field in the error.
pub fn b64url_decode(text: &str, field: &'static str) -> Result<Vec<u8>, WireError> {
    crate::b64::decode_padding_optional(text).map_err(|_| WireError::BadBase64 { field })
}

/// Length in bytes of the data that a base64url text of `encoded_len` characters decodes to (at most).
pub fn b64url_decoded_len_upper_bound(encoded_len: usize) -> usize {
    encoded_len / 4 * 3 + 3
}

/// Body of `PUT .../functions/{name}` (`application/json`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// base64url of the exact manifest JSON bytes (the AAD of the sealed code is SHA-256 of these bytes).
    pub manifest: String,
    /// base64url of the sealed code (opaque to the gateway).
    pub sealed_code: String,
    /// Make the new version active (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activate: Option<bool>,
}

impl DeployRequest {
    /// Build a request from raw manifest bytes and sealed code.
    pub fn new(manifest: &[u8], sealed_code: &[u8]) -> Self {
        Self {
            manifest: b64url_encode(manifest),
            sealed_code: b64url_encode(sealed_code),
            activate: None,
        }
    }

    /// Decode the two byte fields: `(manifest, sealed_code)`.
    pub fn decode(&self) -> Result<(Vec<u8>, Vec<u8>), WireError> {
        Ok((
            b64url_decode(&self.manifest, "manifest")?,
            b64url_decode(&self.sealed_code, "sealed_code")?,
        ))
    }
}

impl core::fmt::Debug for DeployRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DeployRequest")
            .field("manifest_len", &self.manifest.len())
            .field("sealed_code_len", &self.sealed_code.len())
            .field("activate", &self.activate)
            .finish()
    }
}

/// What the gateway reads from a manifest: routing and listing metadata only. Unknown fields are ignored
/// (the manifest's owner is `clave-proto::code`); the gateway stores the exact bytes it received.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestMeta {
    /// Function name; must equal the name in the URL.
    pub name: String,
    /// Code hash as the manifest spells it (64 lowercase hex: SHA-256 of the code).
    pub code_hash: String,
    /// Limits, kept as given for listing.
    #[serde(default)]
    pub limits: serde_json::Value,
}

/// Answer to a deploy (201).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployResponse {
    /// Project name.
    pub project: String,
    /// Function name.
    pub function: String,
    /// The new immutable version (1, 2, …).
    pub version: i64,
    /// Code hash from the manifest.
    pub code_hash: String,
    /// Active version after the deploy.
    pub active_version: Option<i64>,
}

/// One function in a listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionSummary {
    /// Function name.
    pub name: String,
    /// Active version, if any.
    pub active_version: Option<i64>,
    /// Highest version.
    pub latest_version: i64,
    /// Code hash of the active version.
    pub active_code_hash: Option<String>,
    /// Number of stored versions.
    pub versions: i64,
    /// Unix seconds when the function was first deployed.
    pub created: i64,
}

/// `GET .../functions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionList {
    /// Project name.
    pub project: String,
    /// Functions, sorted by name.
    pub functions: Vec<FunctionSummary>,
}

/// One stored version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// Version number.
    pub version: i64,
    /// Code hash from the manifest.
    pub code_hash: String,
    /// Size of the manifest bytes.
    pub manifest_bytes: i64,
    /// Size of the sealed code.
    pub sealed_code_bytes: i64,
    /// Limits from the manifest, as given.
    pub limits: serde_json::Value,
    /// The hosts the function's `fetch()` may reach (the manifest's `outbound` list, sealed
    /// with the code); absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outbound: Vec<String>,
    /// Unix seconds of the deploy.
    pub created: i64,
    /// Whether this is the active version.
    pub active: bool,
}

/// `GET .../functions/{name}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionDetail {
    /// Project name.
    pub project: String,
    /// Function name.
    pub name: String,
    /// Active version, if any.
    pub active_version: Option<i64>,
    /// Versions, ascending.
    pub versions: Vec<VersionInfo>,
}

/// Body of `POST .../activate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    /// Version to activate.
    pub version: i64,
}

/// Answer to activate / rollback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivateResponse {
    /// Project name.
    pub project: String,
    /// Function name.
    pub function: String,
    /// Now active.
    pub active_version: i64,
    /// Active before.
    pub previous_version: Option<i64>,
}

/// Answer to `POST /v1/projects/{project}/tokens` (admin): the plaintext token, shown once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTokenResponse {
    /// Project the token belongs to.
    pub project: String,
    /// The deploy token (only its SHA-256 is stored).
    pub token: String,
}

impl core::fmt::Debug for CreateTokenResponse {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CreateTokenResponse")
            .field("project", &self.project)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// RFC 9457 problem document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// A URI from [`problem_type`].
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// Explanation (never request content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Flags of an [`EngineJob`] (carried by framing version 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct JobFlags(u8);

impl JobFlags {
    /// No flag: an ordinary synchronous call.
    pub const NONE: Self = Self(0);
    /// The job comes from the durable asynchronous queue. The queue delivers at least once, so the same
    /// encapsulated request may arrive again after the engine already ran it (a gateway or engine restart
    /// mid-flight). An engine MUST NOT refuse such a repeat as a replay when it still holds the sealed
    /// response of the first run: it MUST answer with exactly those bytes (the response is sealed to the
    /// caller, so repeating it reveals nothing). The flag never relaxes anything for synchronous calls:
    /// an engine MUST refuse a job whose flag disagrees with the mode sealed inside its request
    /// (`clave-mode: async`, [`crate::InvokeMode`]), so the host cannot relabel a request.
    pub const ASYNC: Self = Self(1);
    /// INSECURE, for benchmarks only: the job's `request` is a plain BHTTP request and the engine answers
    /// with a plain BHTTP response (no OHTTP). An engine MUST refuse it unless its operator explicitly
    /// enabled the plaintext benchmark path; a gateway MUST NOT set it unless likewise enabled.
    pub const INSECURE_PLAINTEXT_BENCH: Self = Self(0x80);
    const KNOWN: u8 = 1 | 0x80;

    /// The raw bits.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Flags from raw bits; `None` when an unknown bit is set.
    pub fn from_bits(bits: u8) -> Option<Self> {
        (bits & !Self::KNOWN == 0).then_some(Self(bits))
    }

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether [`JobFlags::ASYNC`] is set.
    pub fn is_async(self) -> bool {
        self.contains(Self::ASYNC)
    }

    /// Whether [`JobFlags::INSECURE_PLAINTEXT_BENCH`] is set.
    pub fn is_insecure_plaintext_bench(self) -> bool {
        self.contains(Self::INSECURE_PLAINTEXT_BENCH)
    }
}

impl core::ops::BitOr for JobFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// A job handed from the gateway to an engine: routing metadata plus three opaque byte strings.
///
/// Binary framing (all integers big-endian), version 1 (no flags; still decoded, and still written when no
/// flag is set so that older engines keep working):
/// `"CLVJ" | 0x01 | u16 len | project | u16 len | function | i64 version |
///  u32 len | manifest | u32 len | sealed_code | u32 len | request`.
///
/// Version 2 adds one flags byte ([`JobFlags`]) after the version byte:
/// `"CLVJ" | 0x02 | u8 flags | ...the fields of version 1...`. Unknown flag bits are rejected.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EngineJob {
    /// Project name.
    pub project: String,
    /// Function name.
    pub function: String,
    /// Version being run.
    pub version: i64,
    /// Exact manifest bytes (shared, not copied, between the gateway's cache and its jobs).
    pub manifest: bytes::Bytes,
    /// Sealed code (opaque; shared like `manifest`).
    pub sealed_code: bytes::Bytes,
    /// `message/ohttp-req` body (opaque; in `clave dev` the very buffer the gateway received).
    pub request: bytes::Bytes,
    /// Flags ([`JobFlags::ASYNC`] for jobs from the durable queue).
    pub flags: JobFlags,
    /// The function's sealed secrets, a [`crate::secret::SecretSet`] encoding (opaque to the
    /// gateway; empty: none). Carried by framing version 3.
    pub secrets: bytes::Bytes,
}

impl core::fmt::Debug for EngineJob {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EngineJob")
            .field("project", &self.project)
            .field("function", &self.function)
            .field("version", &self.version)
            .field("manifest_len", &self.manifest.len())
            .field("sealed_code_len", &self.sealed_code.len())
            .field("request_len", &self.request.len())
            .field("flags", &self.flags)
            .field("secrets_len", &self.secrets.len())
            .finish()
    }
}

const ENGINE_JOB_MAGIC: &[u8; 4] = b"CLVJ";

impl EngineJob {
    /// Encode in the binary framing (version 1 without flags or secrets, version 2 with flags,
    /// version 3 with flags and a secrets blob after the request).
    ///
    /// # Errors
    /// [`WireError::TooLong`] when a name exceeds 65535 bytes or a blob 4 GiB.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::with_capacity(
            ENGINE_JOB_MAGIC.len()
                + 2
                + 4
                + self.project.len()
                + self.function.len()
                + 8
                + 12
                + self.manifest.len()
                + self.sealed_code.len()
                + self.request.len()
                + 4
                + self.secrets.len(),
        );
        out.extend_from_slice(ENGINE_JOB_MAGIC);
        if !self.secrets.is_empty() {
            out.push(3);
            out.push(self.flags.bits());
        } else if self.flags == JobFlags::NONE {
            out.push(1);
        } else {
            out.push(2);
            out.push(self.flags.bits());
        }
        put_u16_field(&mut out, self.project.as_bytes(), "project")?;
        put_u16_field(&mut out, self.function.as_bytes(), "function")?;
        out.extend_from_slice(&self.version.to_be_bytes());
        put_u32_field(&mut out, &self.manifest, "manifest")?;
        put_u32_field(&mut out, &self.sealed_code, "sealed_code")?;
        put_u32_field(&mut out, &self.request, "request")?;
        if !self.secrets.is_empty() {
            put_u32_field(&mut out, &self.secrets, "secrets")?;
        }
        Ok(out)
    }

    /// Decode the binary framing (versions 1, 2 and 3); rejects truncation, trailing bytes, unknown flags,
    /// an empty secrets blob in version 3 (not canonical) and non-UTF-8 names. The blobs are copied out of `bytes`; see [`EngineJob::decode_shared`].
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        Self::decode_with(bytes, bytes::Bytes::copy_from_slice)
    }

    /// [`EngineJob::decode`] of a frame held in [`bytes::Bytes`]: the blobs are slices of it, not copies.
    pub fn decode_shared(frame: &bytes::Bytes) -> Result<Self, WireError> {
        Self::decode_with(frame, |blob| frame.slice_ref(blob))
    }

    fn decode_with(bytes: &[u8], blob: impl Fn(&[u8]) -> bytes::Bytes) -> Result<Self, WireError> {
        let mut r = Reader { rest: bytes };
        if r.take(ENGINE_JOB_MAGIC.len())? != ENGINE_JOB_MAGIC {
            return Err(WireError::BadMagic);
        }
        let framing = r.array::<1>()?[0];
        let flags = match framing {
            1 => JobFlags::NONE,
            2 | 3 => {
                let [bits] = r.array::<1>()?;
                JobFlags::from_bits(bits).ok_or(WireError::UnknownFlags(bits))?
            }
            _ => return Err(WireError::BadMagic),
        };
        let project = r.utf8_u16("project")?;
        let function = r.utf8_u16("function")?;
        let version = i64::from_be_bytes(r.array::<8>()?);
        let manifest = r.blob_u32()?;
        let sealed_code = r.blob_u32()?;
        let request = r.blob_u32()?;
        let secrets = if framing == 3 {
            let s = r.blob_u32()?;
            if s.is_empty() {
                return Err(WireError::BadMagic);
            }
            blob(s)
        } else {
            bytes::Bytes::new()
        };
        if !r.rest.is_empty() {
            return Err(WireError::TrailingBytes);
        }
        Ok(Self {
            project,
            function,
            version,
            manifest: blob(manifest),
            sealed_code: blob(sealed_code),
            request: blob(request),
            flags,
            secrets,
        })
    }
}

/// Body of `POST /v1/engines/register` and `/v1/engines/deregister` (admin token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineRegisterRequest {
    /// Base URL the gateway reaches the engine at, e.g. `http://10.0.0.5:7001`.
    pub url: String,
}

/// Answer to a registration: re-register (heartbeat) well within `ttl_secs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineRegisterResponse {
    /// The normalised URL.
    pub url: String,
    /// Seconds the registration lasts without a heartbeat.
    pub ttl_secs: u64,
    /// Whether the engine answered its readiness probe and takes calls now.
    pub healthy: bool,
}

/// Path where an engine delivers sealed developer log records ([`EngineLogBatch`], admin token).
pub const ENGINE_LOGS_PATH: &str = "/v1/engines/logs";
/// Most records in one [`EngineLogBatch`].
pub const MAX_ENGINE_LOG_BATCH: usize = 256;
/// Largest sealed record a gateway stores (bytes; a record holds at most the function's console
/// limit of text, the error message and stack, and fixed fields).
pub const MAX_SEALED_LOG_RECORD: usize = 1 << 20;
/// Largest body of `POST /v1/engines/logs` (JSON, records in base64url).
pub const MAX_ENGINE_LOG_BODY: usize = 12 << 20;

/// Body of `POST /v1/engines/logs`: sealed developer log records from an engine, each sealed
/// inside the engine to the log key of the function's manifest (the gateway cannot read them).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineLogBatch {
    /// At most [`MAX_ENGINE_LOG_BATCH`] records.
    pub records: Vec<EngineLogRecord>,
    /// Records this engine dropped since its previous batch (queue full, gateways unreachable).
    #[serde(default)]
    pub dropped: u64,
}

impl std::fmt::Debug for EngineLogBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineLogBatch")
            .field("records", &self.records.len())
            .field("dropped", &self.dropped)
            .finish()
    }
}

/// One sealed developer log record, filed under its project and function (the record's AAD
/// binds both: filed under another name, it does not open).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineLogRecord {
    /// Project.
    pub project: String,
    /// Function.
    pub function: String,
    /// The sealed record ([`crate::devlog`]), unpadded base64url.
    #[serde(with = "crate::kds_api::b64")]
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for EngineLogRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineLogRecord")
            .field("project", &self.project)
            .field("function", &self.function)
            .field("sealed_len", &self.sealed.len())
            .finish()
    }
}

/// Answer to `POST /v1/engines/logs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineLogAccepted {
    /// Records stored.
    pub stored: u64,
    /// Records refused (unknown project, invalid name, too large or too small to be a record).
    pub refused: u64,
}

/// One engine as a gateway sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineInfo {
    /// Base URL.
    pub url: String,
    /// Whether it takes calls (not ejected).
    pub healthy: bool,
    /// Calls running on it now through this gateway.
    pub outstanding: u64,
    /// Calls sent to it by this gateway since start.
    pub calls: u64,
    /// Whether it registered itself (rather than coming from configuration).
    pub registered: bool,
    /// Seconds until its registration lapses (registered engines only).
    pub expires_in_secs: Option<u64>,
}

/// `GET /v1/engines` (admin token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineList {
    /// Engines in pool order.
    pub engines: Vec<EngineInfo>,
}

/// Answer (202) to an asynchronous invocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsyncAccepted {
    /// Result id (32 lowercase hex characters).
    pub id: String,
    /// Where to fetch the result.
    pub result_url: String,
}

/// Answer (202) to `GET .../results/{id}` while the call has not finished.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsyncPending {
    /// Result id.
    pub id: String,
    /// Always `"pending"`.
    pub status: String,
}

/// Whether `id` has the shape of a result id (32 lowercase hex characters).
pub fn is_valid_result_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

fn put_u16_field(out: &mut Vec<u8>, data: &[u8], field: &'static str) -> Result<(), WireError> {
    let len = u16::try_from(data.len()).map_err(|_| WireError::TooLong { field })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    Ok(())
}

fn put_u32_field(out: &mut Vec<u8>, data: &[u8], field: &'static str) -> Result<(), WireError> {
    let len = u32::try_from(data.len()).map_err(|_| WireError::TooLong { field })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    Ok(())
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.rest.len() < n {
            return Err(WireError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn utf8_u16(&mut self, field: &'static str) -> Result<String, WireError> {
        let len = u16::from_be_bytes(self.array::<2>()?);
        let data = self.take(usize::from(len))?;
        String::from_utf8(data.to_vec()).map_err(|_| WireError::BadUtf8 { field })
    }

    fn blob_u32(&mut self) -> Result<&'a [u8], WireError> {
        let len = u32::from_be_bytes(self.array::<4>()?);
        let len = usize::try_from(len).map_err(|_| WireError::Truncated)?;
        self.take(len)
    }
}

#[cfg(test)]
mod tests;
