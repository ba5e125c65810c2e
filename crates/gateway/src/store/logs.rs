//! Developer log keys and sealed developer log records.
//!
//! Records arrive sealed by the engine to the project's developer log key; the store keeps them
//! as ciphertext, at most [`LogRetention::max_entries`] per project and none older than
//! [`LogRetention::max_age`] (pruned as records arrive and by [`Store::spawn_log_pruner`]'s
//! sweep of all projects; reads never return an expired record), and wakes waiting readers
//! ([`Store::wait_for_logs`]) when one is appended.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Db, Store, now};
use crate::Error;

/// How long and how many log records a store keeps per project.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogRetention {
    /// Most records kept per project (the oldest go first).
    pub max_entries: u64,
    /// Records older than this are deleted.
    pub max_age: Duration,
}

impl Default for LogRetention {
    /// 10 000 records per project, 7 days.
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_age: Duration::from_secs(7 * 86_400),
        }
    }
}

/// Prune a project's records every this many appends through one store.
const PRUNE_EVERY: u64 = 64;

/// How long after [`Store::spawn_log_pruner`] its first sweep runs.
const FIRST_LOG_SWEEP_AFTER: Duration = Duration::from_secs(2);

/// Shared between clones of a store: retention, the append counter, the wake-up for readers.
#[derive(Debug, Default)]
pub(super) struct LogState {
    pub(super) retention: std::sync::Mutex<LogRetention>,
    appended: AtomicU64,
    notify: tokio::sync::Notify,
}

/// One stored record (opaque ciphertext).
#[derive(Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Its id: increasing in the order records were stored.
    pub id: i64,
    /// The function it is filed under.
    pub function: String,
    /// Unix seconds when stored.
    pub created: i64,
    /// The sealed record.
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for LogEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogEntry")
            .field("id", &self.id)
            .field("function", &self.function)
            .field("created", &self.created)
            .field("sealed_len", &self.sealed.len())
            .finish()
    }
}

/// Which records to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Only this function's.
    pub function: Option<String>,
    /// Only records with a larger id.
    pub after: i64,
    /// Only records stored at or after this unix second.
    pub since: i64,
    /// At most this many (oldest first).
    pub limit: i64,
}

impl Store {
    /// Set how many records and how old ones are kept (per project).
    pub fn set_log_retention(&self, retention: LogRetention) {
        *self
            .log_state
            .retention
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = retention;
    }

    fn log_retention(&self) -> LogRetention {
        *self
            .log_state
            .retention
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Register (or replace) the project's developer log public key (64 hex digits, checked by
    /// the caller).
    ///
    /// # Errors
    /// [`Error::UnknownProject`], [`Error::Database`].
    pub async fn set_log_key(&self, project: &str, public_key: &str) -> Result<(), Error> {
        if !self.project_exists(project).await? {
            return Err(Error::UnknownProject);
        }
        let at = now();
        with_db!(self, |pool| sqlx::query(
            "INSERT INTO log_keys (project, public_key, updated) VALUES ($1, $2, $3) \
             ON CONFLICT (project) DO UPDATE SET public_key = excluded.public_key, \
             updated = excluded.updated"
        )
        .bind(project)
        .bind(public_key)
        .bind(at)
        .execute(pool)
        .await
        .map(drop))?;
        Ok(())
    }

    /// The project's registered developer log public key, if any.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn log_key(&self, project: &str) -> Result<Option<String>, Error> {
        let row: Option<(String,)> = with_db!(self, |pool| sqlx::query_as(
            "SELECT public_key FROM log_keys WHERE project = $1"
        )
        .bind(project)
        .fetch_optional(pool)
        .await?);
        Ok(row.map(|r| r.0))
    }

    /// Store one sealed record and wake waiting readers; every `PRUNE_EVERY` appends, apply
    /// the retention to the project.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn append_log(
        &self,
        project: &str,
        function: &str,
        sealed: &[u8],
    ) -> Result<(), Error> {
        let at = now();
        with_db!(self, |pool| sqlx::query(
            "INSERT INTO logs (project, function, sealed, created) VALUES ($1, $2, $3, $4)"
        )
        .bind(project)
        .bind(function)
        .bind(sealed)
        .bind(at)
        .execute(pool)
        .await
        .map(drop))?;
        self.log_state.notify.notify_waiters();
        if self
            .log_state
            .appended
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY)
        {
            self.prune_logs(project).await?;
        }
        Ok(())
    }

    /// Apply the retention to one project now. Returns how many records went.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn prune_logs(&self, project: &str) -> Result<u64, Error> {
        let r = self.log_retention();
        let oldest = self.oldest_kept();
        let keep = i64::try_from(r.max_entries).unwrap_or(i64::MAX);
        let n = with_db!(self, |pool| {
            let by_age = sqlx::query("DELETE FROM logs WHERE project = $1 AND created < $2")
                .bind(project)
                .bind(oldest)
                .execute(pool)
                .await?
                .rows_affected();
            let by_count = sqlx::query(
                "DELETE FROM logs WHERE project = $1 AND id <= \
                 (SELECT id FROM logs WHERE project = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
            )
            .bind(project)
            .bind(keep)
            .execute(pool)
            .await?
            .rows_affected();
            by_age + by_count
        });
        Ok(n)
    }

    /// Apply the retention to every project now (the age limit in one statement, the count
    /// limit per project that holds records). Returns how many records went.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn prune_all_logs(&self) -> Result<u64, Error> {
        let oldest = self.oldest_kept();
        let by_age = with_db!(self, |pool| sqlx::query(
            "DELETE FROM logs WHERE created < $1"
        )
        .bind(oldest)
        .execute(pool)
        .await?
        .rows_affected());
        let projects: Vec<(String,)> = with_db!(self, |pool| sqlx::query_as(
            "SELECT DISTINCT project FROM logs"
        )
        .fetch_all(pool)
        .await?);
        let mut n = by_age;
        for (project,) in projects {
            n += self.prune_logs(&project).await?;
        }
        Ok(n)
    }

    /// Sweep every project with [`Store::prune_all_logs`] a moment after the start and then
    /// every tenth of the retention age (between 1 s and 10 min), until aborted, so that a
    /// project whose functions stopped logging loses its old records too.
    ///
    /// The first sweep waits two seconds: it opens a database connection of its
    /// own and would compete with the start for the CPU, and nothing needs it earlier (records
    /// are pruned as they arrive, and no read returns one older than the retention).
    pub fn spawn_log_pruner(&self) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(FIRST_LOG_SWEEP_AFTER).await;
            loop {
                match store.prune_all_logs().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(n, "pruned sealed developer log records"),
                    Err(e) => tracing::warn!(error = %e, "could not prune developer log records"),
                }
                let every = (store.log_retention().max_age / 10)
                    .clamp(Duration::from_secs(1), Duration::from_secs(600));
                tokio::time::sleep(every).await;
            }
        })
    }

    /// Unix second of the oldest record the retention keeps.
    fn oldest_kept(&self) -> i64 {
        now().saturating_sub(
            i64::try_from(self.log_retention().max_age.as_secs()).unwrap_or(i64::MAX),
        )
    }

    /// Records of a project matching `q`, oldest first (never one older than the retention).
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn logs(&self, project: &str, q: &LogQuery) -> Result<Vec<LogEntry>, Error> {
        let rows: Vec<(i64, String, i64, Vec<u8>)> = with_db!(self, |pool| sqlx::query_as(
            "SELECT id, function, created, sealed FROM logs WHERE project = $1 AND id > $2 \
             AND created >= $3 AND ($4 = '' OR function = $4) ORDER BY id LIMIT $5"
        )
        .bind(project)
        .bind(q.after)
        .bind(q.since.max(self.oldest_kept()))
        .bind(q.function.as_deref().unwrap_or(""))
        .bind(q.limit.clamp(1, 1000))
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(id, function, created, sealed)| LogEntry {
                id,
                function,
                created,
                sealed,
            })
            .collect())
    }

    /// Wait until a record is appended through this store (or a clone), or `max` passes.
    /// Records appended through another gateway over the same database do not wake this one:
    /// readers poll at most every `max`.
    pub async fn wait_for_logs(&self, max: Duration) {
        let _ = tokio::time::timeout(max, self.log_state.notify.notified()).await;
    }

    /// A handle that appends sealed records in the background (for an in-process engine's
    /// log sink, which must not block).
    pub fn log_writer(&self) -> Arc<dyn Fn(String, String, Vec<u8>) + Send + Sync> {
        let store = self.clone();
        Arc::new(move |project, function, sealed| {
            let store = store.clone();
            tokio::spawn(async move {
                if let Err(e) = store.append_log(&project, &function, &sealed).await {
                    tracing::warn!(error = %e, "cannot store a sealed log record");
                }
            });
        })
    }
}
