//! Problem details (RFC 9457) of the engine's errors, as carried inside the encryption.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::PROBLEM_TYPE_PREFIX;
use crate::error::{Error, Result};

/// Kinds of errors the engine reports inside the encryption (RFC 9457 `type` slugs).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The code's hash differs from the request's `clave-code-hash` (`code-hash-mismatch`).
    CodeHashMismatch,
    /// The function threw (`script-error`).
    ScriptError,
    /// CPU time limit hit (`timeout`).
    Timeout,
    /// Heap limit hit (`out-of-memory`).
    OutOfMemory,
    /// Another limit hit: stack, request, response or console size (`limit-exceeded`).
    LimitExceeded,
    /// `date` outside the accepted window (`stale-date`).
    StaleDate,
    /// The encapsulated request was seen before (`replay`).
    Replay,
    /// The inner path names another project or function than the one routed (`wrong-function`).
    WrongFunction,
    /// The inner request is malformed (`bad-request`).
    BadRequest,
    /// The engine failed (`internal`).
    Internal,
    /// A slug this version does not know.
    Other(String),
}

impl ProblemKind {
    /// The slug used in `type` (after [`PROBLEM_TYPE_PREFIX`]) and in the `clave-error` header.
    #[must_use]
    pub fn slug(&self) -> &str {
        match self {
            Self::CodeHashMismatch => "code-hash-mismatch",
            Self::ScriptError => "script-error",
            Self::Timeout => "timeout",
            Self::OutOfMemory => "out-of-memory",
            Self::LimitExceeded => "limit-exceeded",
            Self::StaleDate => "stale-date",
            Self::Replay => "replay",
            Self::WrongFunction => "wrong-function",
            Self::BadRequest => "bad-request",
            Self::Internal => "internal",
            Self::Other(s) => s,
        }
    }

    /// Parse a slug; unknown slugs become [`ProblemKind::Other`].
    #[must_use]
    pub fn from_slug(slug: &str) -> Self {
        match slug {
            "code-hash-mismatch" => Self::CodeHashMismatch,
            "script-error" => Self::ScriptError,
            "timeout" => Self::Timeout,
            "out-of-memory" => Self::OutOfMemory,
            "limit-exceeded" => Self::LimitExceeded,
            "stale-date" => Self::StaleDate,
            "replay" => Self::Replay,
            "wrong-function" => Self::WrongFunction,
            "bad-request" => Self::BadRequest,
            "internal" => Self::Internal,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The default inner status and title.
    #[must_use]
    pub fn defaults(&self) -> (u16, &'static str) {
        match self {
            Self::CodeHashMismatch => (409, "code hash mismatch"),
            Self::ScriptError => (500, "function threw an exception"),
            Self::Timeout => (504, "CPU time limit exceeded"),
            Self::OutOfMemory => (507, "memory limit exceeded"),
            Self::LimitExceeded => (413, "limit exceeded"),
            Self::StaleDate => (400, "request date outside the accepted window"),
            Self::Replay => (409, "replayed request"),
            Self::WrongFunction => (400, "request names another function"),
            Self::BadRequest => (400, "malformed request"),
            Self::Internal => (500, "internal engine error"),
            Self::Other(_) => (500, "error"),
        }
    }
}

/// An engine error as the user sees it: decrypted problem details (RFC 9457).
#[derive(Clone, PartialEq, Eq)]
pub struct InvokeError {
    /// Which error.
    pub kind: ProblemKind,
    /// Inner HTTP status.
    pub status: u16,
    /// Short summary.
    pub title: String,
    /// Details (e.g. the exception message), if any.
    pub detail: Option<String>,
}

impl fmt::Debug for InvokeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvokeError")
            .field("kind", &self.kind)
            .field("status", &self.status)
            .field("title", &self.title)
            .field("detail_len", &self.detail.as_ref().map(String::len))
            .finish()
    }
}

impl fmt::Display for InvokeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.title, self.kind.slug(), self.status)?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InvokeError {}

#[derive(Serialize, Deserialize)]
struct ProblemJson {
    #[serde(rename = "type")]
    type_: String,
    title: String,
    status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

impl InvokeError {
    /// An error of `kind` with its default status and title.
    #[must_use]
    pub fn new(kind: ProblemKind, detail: Option<String>) -> Self {
        let (status, title) = kind.defaults();
        Self {
            kind,
            status,
            title: title.to_owned(),
            detail,
        }
    }

    /// Problem JSON (`application/problem+json`).
    #[must_use]
    pub fn to_problem_json(&self) -> Vec<u8> {
        let p = ProblemJson {
            type_: format!("{PROBLEM_TYPE_PREFIX}{}", self.kind.slug()),
            title: self.title.clone(),
            status: self.status,
            detail: self.detail.clone(),
        };
        serde_json::to_vec(&p).unwrap_or_default()
    }

    /// Parse problem JSON whose `type` is a clave problem URI. Unknown members are ignored
    /// (RFC 9457 §3.2 allows extensions).
    pub fn from_problem_json(bytes: &[u8]) -> Result<Self> {
        let p: ProblemJson = serde_json::from_slice(bytes).map_err(|e| Error::InvalidJson {
            what: "problem details",
            reason: e.to_string(),
        })?;
        let slug = p
            .type_
            .strip_prefix(PROBLEM_TYPE_PREFIX)
            .ok_or(Error::InvalidJson {
                what: "problem details",
                reason: "type is not a clave problem".to_owned(),
            })?;
        Ok(Self {
            kind: ProblemKind::from_slug(slug),
            status: p.status,
            title: p.title,
            detail: p.detail,
        })
    }
}
