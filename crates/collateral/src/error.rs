//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while fetching or reading endorsements.
///
/// Groups: the server answered something unusable (`NotFound`, `HttpStatus`, `Malformed`,
/// `Truncated`, `MissingHeader`, `TooLarge`), the network failed (`Transport`), the cache or
/// offline files (`OfflineMissing`, `CacheCorrupt`, `CacheIo`), and caller input
/// (`InvalidRequest`, `InvalidConfig`, `Evidence`). Nothing here is a trust decision: that is
/// `clave-attest`'s.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server has no such resource (HTTP 404): wrong product, chip id, TCB or FMSPC.
    #[error("{url}: not found (HTTP 404)")]
    NotFound {
        /// The URL requested.
        url: String,
    },
    /// The server answered with another non-success status (429 rate limit, 5xx, ...).
    #[error("{url}: HTTP {status}")]
    HttpStatus {
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The request did not complete (connection, TLS, timeout, body read).
    #[error("{url}: {reason}")]
    Transport {
        /// The URL requested.
        url: String,
        /// What failed.
        reason: String,
    },
    /// A response (or cache entry) is not the expected format.
    #[error("{what} from {source_name}: {reason}")]
    Malformed {
        /// The resource (`VCEK certificate`, `TCB info`, ...).
        what: &'static str,
        /// Where it came from (URL or cache file).
        source_name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A response ended before its structure was complete.
    #[error("{what} from {source_name} is truncated")]
    Truncated {
        /// The resource.
        what: &'static str,
        /// Where it came from (URL or cache file).
        source_name: String,
    },
    /// A required response header is absent or unreadable.
    #[error("{url}: missing or malformed header {header}")]
    MissingHeader {
        /// The URL requested.
        url: String,
        /// The header name.
        header: &'static str,
    },
    /// A response body is larger than this crate accepts.
    #[error("{url}: response larger than {max} bytes")]
    TooLarge {
        /// The URL requested.
        url: String,
        /// The limit.
        max: usize,
    },
    /// Offline mode: the file for a resource is not in the cache directory.
    #[error("offline: {what} is not cached (expected {})", path.display())]
    OfflineMissing {
        /// The resource.
        what: String,
        /// The file that was looked for.
        path: PathBuf,
    },
    /// Offline mode: a cache file exists but does not hold a usable entry.
    #[error("offline: cache file {} is corrupt: {reason}", path.display())]
    CacheCorrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing the cache directory failed.
    #[error("cache {}: {source}", path.display())]
    CacheIo {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The caller asked for something that cannot be fetched (bad FMSPC, masked chip id,
    /// unknown product, evidence kind without endorsements).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The configuration cannot be used (bad base URL, offline without a cache directory).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The evidence does not parse far enough to tell what to fetch.
    #[error("evidence: {0}")]
    Evidence(#[from] clave_attest::Error),
}
