//! The append-only release log: one JSON line per release, refusal, genesis or join.
//!
//! The entry type ([`ReleaseLogEntry`]) has no field that could hold key material; the file is
//! opened in append mode and never rewritten.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use clave_proto::kds_api::ReleaseLogEntry;

use crate::Error;

/// File name of the release log inside the KDS data directory.
pub const RELEASE_LOG_FILE: &str = "release-log.jsonl";

#[derive(Debug)]
pub(crate) struct ReleaseLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl ReleaseLog {
    pub(crate) fn open(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(RELEASE_LOG_FILE);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(ReleaseLog {
            path,
            file: Mutex::new(file),
        })
    }

    pub(crate) fn append(&self, entry: &ReleaseLogEntry) -> Result<(), Error> {
        let mut line = serde_json::to_vec(entry).map_err(|_| Error::Internal("log encoding"))?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(&line)
            .and_then(|()| file.flush())
            .map_err(|e| Error::io(&self.path, e))
    }

    pub(crate) fn read_all(&self) -> Result<Vec<ReleaseLogEntry>, Error> {
        // Hold the lock so that no half-written line is read.
        let _guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let text = std::fs::read_to_string(&self.path).map_err(|e| Error::io(&self.path, e))?;
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| serde_json::from_str(l).map_err(|_| Error::LogCorrupt { line: i + 1 }))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clave_proto::kds_api::{LogEvent, Outcome};

    #[test]
    fn append_and_read_back_across_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = ReleaseLogEntry {
            time: 5,
            event: LogEvent::KeyRelease,
            spec_id: Some("ab".into()),
            tee_kind: None,
            measurement: None,
            outcome: Outcome::Refused,
            reason: Some("nonce-unknown".into()),
        };
        ReleaseLog::open(dir.path())
            .expect("open")
            .append(&e)
            .expect("append");
        let log = ReleaseLog::open(dir.path()).expect("reopen");
        log.append(&e).expect("append");
        assert_eq!(log.read_all().expect("read"), vec![e.clone(), e]);
        std::fs::write(dir.path().join(RELEASE_LOG_FILE), b"{bad\n").expect("write");
        assert!(matches!(log.read_all(), Err(Error::LogCorrupt { line: 1 })));
    }
}
