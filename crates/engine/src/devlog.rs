//! Sealed developer logs: one record per call (console output, outcome, timing, sizes), sealed
//! inside the engine to the developer log key named by the function's manifest and handed to a
//! [`LogSink`] (the gateway stores it as ciphertext). Nothing is produced when the manifest names
//! no log key or no sink is set.
//!
//! The log key is trusted only from a manifest the engine has authenticated for the call: its
//! project and function are the request's and its sealed code opened with a code key (so it was
//! sealed by someone who had the code). The caller's input and output are never recorded, only
//! their sizes; what the function prints is.

use std::sync::Arc;

use clave_proto::devlog::{LogLine, LogPublicKey, LogRecord, seal_log};
use clave_proto::{InvokeError, InvokeResponse};

/// One sealed log record, filed under its project and function (the AAD binds both).
#[derive(Clone, PartialEq, Eq)]
pub struct SealedLog {
    /// Project.
    pub project: String,
    /// Function.
    pub function: String,
    /// The sealed record (opaque).
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for SealedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedLog")
            .field("project", &self.project)
            .field("function", &self.function)
            .field("sealed_len", &self.sealed.len())
            .finish()
    }
}

/// Most bytes of an error message, and of a stack, kept in a record: the rest is cut (at a
/// character boundary) and marked, so that a record stays far below what a gateway stores
/// (`clave_proto::gateway_api::MAX_SEALED_LOG_RECORD`) whatever a function throws.
pub const MAX_ERROR_TEXT_BYTES: usize = 16 << 10;

/// `text` cut to [`MAX_ERROR_TEXT_BYTES`], with a marker when it was longer.
fn clip(mut text: String) -> String {
    if text.len() <= MAX_ERROR_TEXT_BYTES {
        return text;
    }
    let mut cut = MAX_ERROR_TEXT_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.push_str(" [truncated]");
    text
}

/// Where sealed log records go (must not block: queue and return).
pub type LogSink = Arc<dyn Fn(SealedLog) + Send + Sync>;

/// What one call collects for its log record while it runs.
#[derive(Default)]
pub(crate) struct CallLog {
    /// The authenticated manifest's log key, once known.
    pub(crate) key: Option<LogPublicKey>,
    /// The function name the record is filed under.
    pub(crate) function: String,
    /// The project.
    pub(crate) project: String,
    /// Code hash (hex) that ran or was asked for.
    pub(crate) code_hash: String,
    /// Request body size.
    pub(crate) request_bytes: u64,
    /// Console lines.
    pub(crate) console: Vec<(&'static str, String)>,
    /// Console dropped beyond the limit.
    pub(crate) console_truncated: bool,
    /// Stack of an uncaught exception.
    pub(crate) stack: Option<String>,
}

impl std::fmt::Debug for CallLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallLog")
            .field("key", &self.key.is_some())
            .field("console_lines", &self.console.len())
            .finish_non_exhaustive()
    }
}

impl CallLog {
    /// The call's request, and the authenticated manifest whose log key (if any) to seal to.
    pub(crate) fn note_request(
        &mut self,
        req: &clave_proto::InvokeRequest,
        manifest: &clave_proto::Manifest,
    ) {
        self.key = manifest
            .log_key
            .as_deref()
            .and_then(|k| LogPublicKey::from_hex(k).ok());
        self.project = req.project.as_str().to_owned();
        self.function = req.function.as_str().to_owned();
        self.code_hash = req.code_hash.to_string();
        self.request_bytes = req.body.len() as u64;
    }

    /// The record of a finished call (not sealed yet), if a key is known.
    pub(crate) fn finish(
        self,
        result: &Result<InvokeResponse, InvokeError>,
        ts_ms: u64,
        duration_us: u64,
    ) -> Option<PendingLog> {
        let key = self.key?;
        let (outcome, status, message, response_bytes) = match result {
            Ok(r) => ("ok".to_owned(), r.status, None, r.body.len() as u64),
            Err(p) => (
                p.kind.slug().to_owned(),
                p.status,
                p.detail.clone().map(clip),
                0,
            ),
        };
        let record = LogRecord {
            ts_ms,
            function: self.function.clone(),
            code_hash: self.code_hash,
            outcome,
            status,
            message,
            stack: self.stack.map(clip),
            duration_us,
            request_bytes: self.request_bytes,
            response_bytes,
            console: self
                .console
                .into_iter()
                .map(|(level, text)| LogLine {
                    level: level.to_owned(),
                    text,
                })
                .collect(),
            console_truncated: self.console_truncated,
        };
        Some(PendingLog {
            key,
            project: self.project,
            function: self.function,
            record,
        })
    }
}

/// A finished call's record, to be sealed (off the call's path: sealing costs two X25519
/// operations). Plaintext: it never leaves the engine unsealed.
pub(crate) struct PendingLog {
    key: LogPublicKey,
    project: String,
    function: String,
    record: LogRecord,
}

impl PendingLog {
    /// Seal it.
    pub(crate) fn seal(self) -> Option<SealedLog> {
        let PendingLog {
            key,
            project,
            function,
            record,
        } = self;
        let sealed = seal_log(&key, &project, &function, &record, &mut rand::rng()).ok()?;
        Some(SealedLog {
            project,
            function,
            sealed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_error_texts_are_clipped_at_a_character_boundary() {
        assert_eq!(clip("short".into()), "short");
        let exact = "a".repeat(MAX_ERROR_TEXT_BYTES);
        assert_eq!(clip(exact.clone()), exact);
        // A two-byte character straddles the limit: cut before it.
        let long = format!(
            "{}é{}",
            "a".repeat(MAX_ERROR_TEXT_BYTES - 1),
            "b".repeat(100)
        );
        let clipped = clip(long);
        assert_eq!(
            clipped,
            format!("{} [truncated]", "a".repeat(MAX_ERROR_TEXT_BYTES - 1))
        );
    }
}
