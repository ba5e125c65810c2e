//! How a store learns that another writer changed which version of a function is active (or
//! which secrets exist, or where logs go).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::postgres::PgPool;

/// PostgreSQL channel on which every store announces a change of which versions exist or are
/// active (inside the changing transaction, so it is delivered on commit).
pub(super) const CHANGES_CHANNEL: &str = "clave_function_changes";

/// How a store learns that a writer (itself, another store, another gateway) changed which
/// version of a function is active, without a database round trip per call. Its *stamp* moves
/// on every such change; `None` means it cannot vouch right now.
#[derive(Clone, Debug)]
pub(super) enum ChangeSource {
    /// In-memory SQLite: no other pool can reach it; this store's own writes invalidate.
    InProcess,
    /// A SQLite file: after every change each store appends one byte to this file beside the
    /// database; its length is the stamp (one `fstat` of the open file per call).
    File(Arc<ChangeFile>),
    /// PostgreSQL: every store NOTIFYs [`CHANGES_CHANNEL`] in each changing transaction and a
    /// LISTEN connection counts the notifications; while it is down the stamp is unknown.
    Listener(Arc<ListenerHandle>),
}

/// The change file beside a SQLite database, kept open: its stamp is read with `fstat` on the
/// descriptor (no path lookup per call). The open file must still be the one at the path: a file
/// deleted or replaced since it was opened has no links left (checked on every read), and one
/// moved away (its directory renamed, say) is caught by comparing the path's device and inode with
/// the descriptor's at most every [`ChangeFile::PATH_CHECK`]. Either way it cannot vouch for
/// anything again: the stamp is unknown for good, and the store reads the database on every call,
/// as it does when the file is missing.
#[derive(Debug)]
pub(super) struct ChangeFile {
    path: PathBuf,
    file: std::fs::File,
    /// (device, inode) of the open file.
    id: (u64, u64),
    opened: std::time::Instant,
    /// Milliseconds after `opened` of the last path check.
    checked_ms: AtomicU64,
    lost: AtomicBool,
}

impl ChangeFile {
    /// How long a moved-away change file can go unnoticed.
    pub(super) const PATH_CHECK: Duration = Duration::from_secs(1);

    /// Open (creating it if needed) the change file at `path`.
    pub(super) fn open(path: PathBuf) -> std::io::Result<Self> {
        use std::os::unix::fs::MetadataExt as _;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let m = file.metadata()?;
        Ok(Self {
            path,
            file,
            id: (m.dev(), m.ino()),
            opened: std::time::Instant::now(),
            checked_ms: AtomicU64::new(0),
            lost: AtomicBool::new(false),
        })
    }

    fn stamp(&self) -> Option<u64> {
        use std::os::unix::fs::MetadataExt as _;
        if self.lost.load(Ordering::Acquire) {
            return None;
        }
        let m = self.file.metadata().ok()?;
        if m.nlink() == 0 {
            self.lost.store(true, Ordering::Release);
            return None;
        }
        let now_ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.checked_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) >= Self::PATH_CHECK.as_millis() as u64
            && self
                .checked_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let same = std::fs::metadata(&self.path)
                .map(|p| (p.dev(), p.ino()) == self.id)
                .unwrap_or(false);
            if !same {
                self.lost.store(true, Ordering::Release);
                return None;
            }
        }
        Some(m.len())
    }
}

#[derive(Debug, Default)]
pub(super) struct ListenerShared {
    pub(super) live: AtomicBool,
    pub(super) count: AtomicU64,
    pub(super) stop: tokio::sync::Notify,
}

/// The store's end of the listener task; dropping the last clone stops the task.
#[derive(Debug)]
pub(super) struct ListenerHandle(pub(super) Arc<ListenerShared>);

impl Drop for ListenerHandle {
    fn drop(&mut self) {
        self.0.stop.notify_one();
    }
}

impl ChangeSource {
    pub(super) fn stamp(&self) -> Option<u64> {
        match self {
            Self::InProcess => Some(0),
            Self::File(f) => f.stamp(),
            Self::Listener(h) => {
                h.0.live
                    .load(Ordering::Acquire)
                    .then(|| h.0.count.load(Ordering::Acquire))
            }
        }
    }

    /// After a change through this store: tell the other stores over the same SQLite file.
    pub(super) fn announce(&self) {
        if let Self::File(f) = self {
            use std::io::Write as _;
            let path = &f.path;
            // Never re-created here: a store that found it missing reads the database on every
            // call until restarted, and must keep doing so.
            let done = std::fs::OpenOptions::new()
                .append(true)
                .open(path.as_path())
                .and_then(|mut f| f.write_all(b"."));
            if let Err(e) = done {
                // Other stores over this file keep their remembered versions until the next
                // announced change: say so loudly.
                tracing::error!(error = %e, path = %path.display(), "cannot announce a function change");
            }
        }
    }

    /// Whether changing transactions must NOTIFY.
    pub(super) fn notifies(&self) -> bool {
        matches!(self, Self::Listener(_))
    }

    pub(super) fn stop(&self) {
        if let Self::Listener(h) = self {
            h.0.live.store(false, Ordering::Release);
            h.0.stop.notify_one();
        }
    }
}

/// LISTEN for changes until stopped; count notifications, and mark the stamp unknown (and
/// moved) whenever the connection is down, since notifications may be missed then.
pub(super) fn spawn_listener(pool: PgPool, shared: Arc<ListenerShared>) {
    tokio::spawn(async move {
        loop {
            if pool.is_closed() {
                return;
            }
            let listener = tokio::select! {
                l = sqlx::postgres::PgListener::connect_with(&pool) => l,
                () = shared.stop.notified() => return,
            };
            match listener {
                Ok(mut l) => {
                    let listening = tokio::select! {
                        r = l.listen(CHANGES_CHANNEL) => r,
                        () = shared.stop.notified() => return,
                    };
                    if listening.is_ok() {
                        shared.count.fetch_add(1, Ordering::AcqRel);
                        shared.live.store(true, Ordering::Release);
                        loop {
                            let got = tokio::select! {
                                r = l.try_recv() => r,
                                () = shared.stop.notified() => {
                                    shared.live.store(false, Ordering::Release);
                                    return;
                                }
                            };
                            match got {
                                Ok(Some(_)) => {
                                    shared.count.fetch_add(1, Ordering::AcqRel);
                                }
                                Ok(None) | Err(_) => break,
                            }
                        }
                    }
                    shared.live.store(false, Ordering::Release);
                    shared.count.fetch_add(1, Ordering::AcqRel);
                    tracing::warn!(
                        "lost the function-change listener: reading active versions from the database until it is back"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "cannot listen for function changes"),
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = shared.stop.notified() => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_file_stamp_follows_appends_and_stops_vouching_once_replaced() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("db-clave-changes");
        let source = ChangeSource::File(Arc::new(ChangeFile::open(path.clone()).expect("open")));
        assert_eq!(source.stamp(), Some(0));
        source.announce();
        source.announce();
        assert_eq!(source.stamp(), Some(2));
        // Replaced by another file (rename over it): the open file has no links left.
        let other = dir.path().join("other");
        std::fs::write(&other, b"...").expect("write");
        std::fs::rename(&other, &path).expect("rename");
        assert_eq!(source.stamp(), None);
        // Deleted outright: the same.
        let again = ChangeSource::File(Arc::new(ChangeFile::open(path.clone()).expect("open")));
        assert_eq!(again.stamp(), Some(3));
        std::fs::remove_file(&path).expect("remove");
        assert_eq!(again.stamp(), None);
        // Moved away (still linked, at another path), and a new file made in its place: noticed
        // by the next path check, after which it vouches for nothing.
        let moved = ChangeFile::open(path.clone()).expect("open");
        std::fs::rename(&path, dir.path().join("moved")).expect("rename");
        std::fs::write(&path, b"").expect("recreate");
        moved
            .checked_ms
            .store(0, std::sync::atomic::Ordering::Relaxed);
        let moved = ChangeSource::File(Arc::new(ChangeFile {
            opened: std::time::Instant::now() - ChangeFile::PATH_CHECK,
            ..moved
        }));
        assert_eq!(moved.stamp(), None);
        assert_eq!(moved.stamp(), None, "stays unknown");
    }
}
