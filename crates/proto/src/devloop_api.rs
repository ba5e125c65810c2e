//! JSON bodies of the gateway's developer-loop routes: sealed secrets and sealed developer logs.
//! The gateway only ever holds ciphertext here.
//!
//! | Route (under `/v1/projects/{project}`, deploy token) | Body | Answer |
//! |---|---|---|
//! | `GET /secrets` | — | [`SecretList`] (names, versions, times; never values) |
//! | `GET /secrets/{name}?function=F` | — | [`SecretEntry`] (version 0: never set) |
//! | `PUT /secrets/{name}` | [`PutSecretRequest`] | [`SecretEntry`]; `409` when `version` is not the next one |
//! | `DELETE /secrets/{name}?function=F` | — | `204`; `404` when there is no value |
//! | `PUT /log-key` | [`LogKeyBody`] | [`LogKeyBody`] |
//! | `GET /log-key` | — | [`LogKeyBody`]; `404` when none is registered |
//! | `GET /logs?function=F&after=ID&since=UNIX&limit=N&wait=SECS` | — | [`LogPage`]; with `wait`, answers as soon as a record arrives (long poll, at most 30 s) |

use serde::{Deserialize, Serialize};

/// `PUT /v1/projects/{project}/secrets/{name}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutSecretRequest {
    /// The function it belongs to; absent for a project-wide secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// The version it was sealed for (the stored version plus one).
    pub version: i64,
    /// The sealed value ([`crate::secret::seal_secret`]), unpadded base64url.
    #[serde(with = "crate::kds_api::b64")]
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for PutSecretRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutSecretRequest")
            .field("function", &self.function)
            .field("version", &self.version)
            .field("sealed_len", &self.sealed.len())
            .finish()
    }
}

/// A secret as the gateway lists it: never its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretEntry {
    /// The function it belongs to; absent for a project-wide secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Name.
    pub name: String,
    /// Current version (0: never set).
    pub version: i64,
    /// Unix seconds of the last change (0: never set).
    pub updated: i64,
    /// Whether its value was deleted.
    #[serde(default)]
    pub deleted: bool,
}

/// `GET /v1/projects/{project}/secrets`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretList {
    /// Project.
    pub project: String,
    /// Secrets with a value, by function (project-wide first) then name.
    pub secrets: Vec<SecretEntry>,
}

/// The developer log public key of a project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogKeyBody {
    /// X25519 public key, 64 lowercase hex digits.
    pub public_key: String,
}

/// One stored sealed log record.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntryJson {
    /// Increasing id (pass the last one as `after` to read on).
    pub id: i64,
    /// The function it is filed under.
    pub function: String,
    /// Unix seconds when the gateway stored it.
    pub created: i64,
    /// The sealed record ([`crate::devlog`]), unpadded base64url.
    #[serde(with = "crate::kds_api::b64")]
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for LogEntryJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogEntryJson")
            .field("id", &self.id)
            .field("function", &self.function)
            .field("sealed_len", &self.sealed.len())
            .finish()
    }
}

/// `GET /v1/projects/{project}/logs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPage {
    /// Records, oldest first.
    pub entries: Vec<LogEntryJson>,
    /// The id to pass as `after` for the next page (the last entry's, or the request's `after`).
    pub next: i64,
}
