//! TEST-ONLY instrumentation, compiled only with the `test-hooks` cargo feature (which only
//! `clave-cli`'s dev-dependencies enable, so `cargo build`/`cargo install` never contain it) and
//! active only when `CLAVE_TEST_ONLY_RUN_LOG` names a file.
//!
//! Every run of a function appends two lines to that file — `start <sha256(body)> <pid>
//! <unix-ms>` when the sandbox is entered and `done <sha256(body)> <pid> <unix-ms>` when it
//! returns — so that a multi-process test can count exactly which calls ran, and how often.
//! Only a digest of the request body is written, never the body.

use std::io::Write as _;
use std::sync::Arc;

use sha2::Digest as _;

use crate::kds_client::BoxFuture;
use crate::runner::{RunReport, RunRequest, Runner};

/// The variable naming the run log.
pub(crate) const RUN_LOG_VAR: &str = "CLAVE_TEST_ONLY_RUN_LOG";

/// `runner`, recording into the run log when `CLAVE_TEST_ONLY_RUN_LOG` is set.
pub(crate) fn wrap(runner: Arc<dyn Runner>) -> Arc<dyn Runner> {
    match std::env::var_os(RUN_LOG_VAR) {
        Some(path) => {
            eprintln!(
                "WARNING: TEST-ONLY build: recording which calls run into {}",
                std::path::Path::new(&path).display()
            );
            Arc::new(Recording {
                inner: runner,
                path: path.into(),
            })
        }
        None => runner,
    }
}

struct Recording {
    inner: Arc<dyn Runner>,
    path: std::path::PathBuf,
}

impl Recording {
    /// One line in one `write` on an `O_APPEND` file: lines of concurrent processes never mix.
    fn record(&self, what: &str, digest: &str) {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let line = format!("{what} {digest} {} {ms}\n", std::process::id());
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            // A test relying on the log must not pass on a partial one.
            eprintln!("TEST-ONLY run log {} unwritable: {e}", self.path.display());
            std::process::abort();
        }
    }
}

impl Runner for Recording {
    fn run(&self, call: RunRequest) -> BoxFuture<'_, RunReport> {
        let digest = hex::encode(sha2::Sha256::digest(&call.request.body));
        Box::pin(async move {
            self.record("start", &digest);
            let out = self.inner.run(call).await;
            self.record("done", &digest);
            out
        })
    }

    fn prepare_thread(&self) {
        self.inner.prepare_thread();
    }
}
