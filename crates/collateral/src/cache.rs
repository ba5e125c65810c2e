//! The on-disk cache: one JSON file per resource, written atomically (temporary file in the
//! same directory, then rename). An entry that does not parse is never used: online it is
//! refetched and overwritten, offline it is an error. Entries are not trusted either way: what
//! they hold is verified by `clave-attest` like a fresh response.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::Error;

/// Format version of a cache file.
const ENTRY_VERSION: u32 = 1;

/// One cached response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Entry {
    /// [`ENTRY_VERSION`].
    pub v: u32,
    /// Where it was fetched from (informational).
    pub url: String,
    /// When it was fetched (unix seconds).
    pub fetched_at: u64,
    /// Until when it may be served without refetching (unix seconds).
    pub expires_at: u64,
    /// The issuer-chain header (Intel PCS), percent-decoded PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_chain: Option<String>,
    /// The response body, hex.
    pub body: String,
}

impl Entry {
    pub(crate) fn new(
        url: &str,
        fetched_at: u64,
        expires_at: u64,
        issuer_chain: Option<String>,
        body: &[u8],
    ) -> Entry {
        Entry {
            v: ENTRY_VERSION,
            url: url.to_owned(),
            fetched_at,
            expires_at,
            issuer_chain,
            body: hex::encode(body),
        }
    }

    pub(crate) fn body(&self) -> Option<Vec<u8>> {
        hex::decode(&self.body).ok()
    }
}

/// What reading a cache file found.
pub(crate) enum Lookup {
    /// No file.
    Missing,
    /// A file that is not a usable entry (reason).
    Corrupt(String),
    /// An entry.
    Found(Entry),
}

/// The cache directory.
#[derive(Clone, Debug)]
pub(crate) struct Cache {
    dir: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Cache {
    pub(crate) fn new(dir: PathBuf) -> Cache {
        Cache { dir }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub(crate) async fn read(&self, name: &str) -> Result<Lookup, Error> {
        let path = self.path(name);
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Lookup::Missing),
            Err(source) => return Err(Error::CacheIo { path, source }),
        };
        Ok(match serde_json::from_slice::<Entry>(&bytes) {
            Ok(e) if e.v != ENTRY_VERSION => Lookup::Corrupt(format!("entry version {}", e.v)),
            Ok(e) if e.body().is_none() => Lookup::Corrupt("body is not hex".into()),
            Ok(e) => Lookup::Found(e),
            Err(e) => Lookup::Corrupt(e.to_string()),
        })
    }

    /// Writes `entry` under `name`: temporary file, then rename, so that readers see the old
    /// entry or the new one, never half of one.
    pub(crate) async fn write(&self, name: &str, entry: &Entry) -> Result<(), Error> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::CacheIo { path, source }
        };
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(io(&self.dir))?;
        let json = serde_json::to_vec_pretty(entry).map_err(|e| Error::CacheIo {
            path: self.path(name),
            source: std::io::Error::other(e),
        })?;
        let tmp = self.dir.join(format!(
            ".{name}.tmp.{}.{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let dest = self.path(name);
        if let Err(e) = tokio::fs::write(&tmp, &json).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io(&tmp)(e));
        }
        if let Err(e) = tokio::fs::rename(&tmp, &dest).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io(&dest)(e));
        }
        Ok(())
    }
}
