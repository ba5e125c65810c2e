//! The crate error and the HTTP error ([`ApiError`]).

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use clave_proto::gateway_api::{PROBLEM_CONTENT_TYPE, Problem, problem_type};

/// Errors of the gateway library (storage, configuration, remote clients).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The storage URL names neither `sqlite:` nor `postgres:`.
    #[error("storage URL must start with sqlite: or postgres:")]
    UnsupportedUrl,
    /// The storage URL did not parse.
    #[error("invalid storage URL")]
    BadUrl(#[source] sqlx::Error),
    /// The SQLite data directory could not be created.
    #[error("cannot create the data directory")]
    DataDir(#[source] std::io::Error),
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A project or function name is not `[a-z0-9][a-z0-9-]{0,62}`.
    #[error("invalid project or function name")]
    InvalidName,
    /// The project does not exist.
    #[error("unknown project")]
    UnknownProject,
    /// The function does not exist in the project.
    #[error("unknown function")]
    UnknownFunction,
    /// The version does not exist for the function.
    #[error("unknown version")]
    UnknownVersion,
    /// Rollback without an active version or without an earlier one.
    #[error("no earlier version to roll back to")]
    NoPreviousVersion,
    /// The project already has the maximum number of functions.
    #[error("function limit of {limit} reached")]
    FunctionLimit {
        /// The configured limit.
        limit: u32,
    },
    /// A secret name is not 1..=64 characters of `A-Z a-z 0-9 _` (not starting with a digit).
    #[error("invalid secret name")]
    InvalidSecretName,
    /// A secret was sealed for another version than the next one.
    #[error("the secret's next version is {expected}")]
    SecretVersion {
        /// The version the secret must be sealed for.
        expected: i64,
    },
    /// The project (or function) already has the maximum number of secrets.
    #[error("secret limit of {limit} reached")]
    SecretLimit {
        /// The limit.
        limit: usize,
    },
    /// Concurrent writers kept conflicting; the caller may retry.
    #[error("storage contention, retry")]
    Contention,
    /// The operating system random generator failed.
    #[error("random generator failed")]
    Random,
    /// An HTTP client could not be built.
    #[error("HTTP client setup failed")]
    HttpClient(#[source] reqwest::Error),
    /// An engine or KDS URL is invalid.
    #[error("invalid remote URL")]
    BadRemoteUrl,
    /// The engine pool already holds its maximum number of engines.
    #[error("engine limit of {limit} reached")]
    TooManyEngines {
        /// The configured limit.
        limit: usize,
    },
    /// The message queue (NATS JetStream) failed; `what` names the operation, the source the cause.
    #[error("queue error: {what}")]
    Queue {
        /// The operation that failed.
        what: &'static str,
        /// The cause (for logs).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The process configuration is unusable; the text names the setting.
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    /// The listen socket could not be bound or served.
    #[error("listener failed")]
    Listen(#[source] std::io::Error),
}

/// An HTTP error answered as an RFC 9457 problem document (`application/problem+json`).
///
/// Bodies are coarse and static: they never contain request content. Details go to tracing where the error
/// is created.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiError {
    /// 400: malformed request; the detail is a fixed text.
    BadRequest(&'static str),
    /// 400: the engine could not open the outer envelope (tampered, truncated, unknown key).
    EnvelopeRejected,
    /// 401: missing or unknown bearer token.
    Unauthorized,
    /// 403: token of another project, or not the admin token.
    Forbidden,
    /// 404: unknown project, function or version.
    NotFound(&'static str),
    /// 409: the current state does not allow the change.
    Conflict(&'static str),
    /// 409: a secret was sealed for another version than the next one (`expected`).
    SecretVersion {
        /// The version to seal for.
        expected: i64,
    },
    /// 413: body or code larger than `limit` bytes.
    PayloadTooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// 415: wrong content type; `expected` is the one accepted.
    UnsupportedMediaType {
        /// The accepted media type.
        expected: &'static str,
    },
    /// 503 + `Retry-After`: queue full or concurrency cap reached; nothing ran.
    Overloaded {
        /// Suggested wait.
        retry_after: Duration,
    },
    /// 503 + `Retry-After`: no engine reachable or shutting down; nothing ran.
    Unavailable {
        /// Suggested wait.
        retry_after: Duration,
    },
    /// 504: the call did not finish in time (it may have run).
    Timeout,
    /// 502: the engine failed after the function may have run.
    EngineFailed,
    /// 502: the KDS could not answer.
    Upstream,
    /// 500: storage failure or bug.
    Internal,
    /// 501: the feature is not enabled on this gateway (e.g. asynchronous invocation without a queue).
    NotEnabled(&'static str),
}

impl ApiError {
    /// HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::EnvelopeRejected => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) | Self::SecretVersion { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Overloaded { .. } | Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::EngineFailed | Self::Upstream => StatusCode::BAD_GATEWAY,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::NotEnabled(_) => StatusCode::NOT_IMPLEMENTED,
        }
    }

    /// The problem document sent for this error.
    pub fn problem(&self) -> Problem {
        let (type_, title, detail): (&str, &str, Option<String>) = match self {
            Self::BadRequest(d) => (problem_type::BAD_REQUEST, "Bad request", Some((*d).into())),
            Self::EnvelopeRejected => (
                problem_type::ENGINE_REJECTED,
                "Encapsulated request rejected",
                Some("the engine could not open the encapsulated request".into()),
            ),
            Self::Unauthorized => (
                problem_type::UNAUTHORIZED,
                "Unauthorized",
                Some("a valid bearer token is required".into()),
            ),
            Self::Forbidden => (
                problem_type::FORBIDDEN,
                "Forbidden",
                Some("the token does not grant access to this project".into()),
            ),
            Self::NotFound(d) => (problem_type::NOT_FOUND, "Not found", Some((*d).into())),
            Self::Conflict(d) => (problem_type::CONFLICT, "Conflict", Some((*d).into())),
            Self::SecretVersion { expected } => (
                problem_type::CONFLICT,
                "Conflict",
                Some(format!(
                    "the secret changed meanwhile: seal it for version {expected} and retry"
                )),
            ),
            Self::PayloadTooLarge { limit } => (
                problem_type::TOO_LARGE,
                "Payload too large",
                Some(format!("the limit is {limit} bytes")),
            ),
            Self::UnsupportedMediaType { expected } => (
                problem_type::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported media type",
                Some(format!("expected content-type {expected}")),
            ),
            Self::Overloaded { .. } => (
                problem_type::OVERLOADED,
                "Overloaded",
                Some("too many calls in flight; retry later".into()),
            ),
            Self::Unavailable { .. } => (
                problem_type::UNAVAILABLE,
                "Unavailable",
                Some("no engine is available; retry later".into()),
            ),
            Self::Timeout => (
                problem_type::TIMEOUT,
                "Timeout",
                Some("the call did not finish in time".into()),
            ),
            Self::EngineFailed => (
                problem_type::ENGINE_FAILED,
                "Engine failed",
                Some("the engine failed; the function may have run".into()),
            ),
            Self::Upstream => (
                problem_type::UPSTREAM,
                "Key service unavailable",
                Some("the key service did not answer".into()),
            ),
            Self::Internal => (problem_type::INTERNAL, "Internal error", None),
            Self::NotEnabled(d) => (problem_type::NOT_ENABLED, "Not enabled", Some((*d).into())),
        };
        Problem {
            type_: type_.into(),
            title: title.into(),
            status: self.status().as_u16(),
            detail,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut resp = (self.status(), body).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        match &self {
            Self::Overloaded { retry_after } | Self::Unavailable { retry_after } => {
                let secs = retry_after.as_secs().max(1);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            Self::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        resp
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidName => Self::BadRequest("invalid project or function name"),
            Error::UnknownProject => Self::NotFound("unknown project"),
            Error::UnknownFunction => Self::NotFound("unknown function"),
            Error::UnknownVersion => Self::NotFound("unknown version"),
            Error::NoPreviousVersion => Self::Conflict("no earlier version to roll back to"),
            Error::FunctionLimit { .. } => {
                Self::Conflict("the project has reached its function limit")
            }
            Error::Contention => Self::Unavailable {
                retry_after: Duration::from_secs(1),
            },
            Error::InvalidSecretName => Self::BadRequest(
                "invalid secret name: 1 to 64 characters of A-Z, a-z, 0-9 and _, not starting with a digit",
            ),
            Error::SecretVersion { expected } => Self::SecretVersion { expected },
            Error::SecretLimit { .. } => Self::Conflict("the secret limit is reached"),
            Error::TooManyEngines { .. } => Self::Conflict("the engine pool is full"),
            Error::BadRemoteUrl => Self::BadRequest("the URL must be http(s)://host[:port]"),
            other => {
                tracing::error!(error = %other, source = ?std::error::Error::source(&other), "gateway storage failure");
                Self::Internal
            }
        }
    }
}
