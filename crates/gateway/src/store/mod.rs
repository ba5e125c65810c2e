//! Storage: projects, functions, immutable versions (manifest + ciphertext), hashed deploy tokens and
//! usage records, in SQLite or PostgreSQL chosen by URL.
//!
//! Both backends run the same SQL text (`$n` placeholders work in both); [`with_db!`] expands each body once
//! per pool type. The store never sees plaintext code or requests.
//!
//! One file per table group: [`projects`] (projects and deploy tokens), [`functions`] (functions and
//! their versions, dispatch lookups), [`results`] (asynchronous results), [`usage_records`],
//! [`secrets`] (sealed secrets) and [`logs`] (sealed developer logs, log keys); [`cache`] holds the
//! in-memory artifact cache and [`changes`] how a store learns of other writers' changes.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::Error;
use crate::usage::UsageWriter;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Waits (at most a millisecond) until `pool` has an idle connection again. sqlx hands a
/// connection back to its pool in a task of its own, after a round trip to the connection's
/// thread; a query issued before that opens another connection, which for SQLite means parsing
/// the whole schema again (~0.4 ms of CPU, measured). Used once, after the migrator ran (its
/// connections are not ours to hand back).
async fn settle(pool: &SqlitePool) {
    let started = std::time::Instant::now();
    while pool.num_idle() == 0 && pool.size() > 0 && started.elapsed() < Duration::from_millis(1) {
        tokio::task::yield_now().await;
    }
}

/// Hands a connection taken with `acquire` back to its pool. For SQLite eagerly: sqlx's drop
/// handler does it in a task of its own, after a round trip to the connection's thread, so a
/// query right after this one (the next call's, the next statement of a start) would otherwise
/// find no idle connection and open a second one, parsing the schema again. For PostgreSQL the
/// drop handler's way is kept: its check is a network round trip the caller need not wait for.
///
/// `return_to_pool` is sqlx's eager form of that drop handler (public, hidden from its docs;
/// sqlx is pinned by Cargo.lock). `a_cold_dispatch_lookup_reads_on_one_connection` fails if it
/// stops handing the connection back.
async fn hand_back<DB: sqlx::Database>(mut conn: sqlx::pool::PoolConnection<DB>) {
    if DB::NAME == <sqlx::Sqlite as sqlx::Database>::NAME {
        conn.return_to_pool().await;
    }
}

/// Whether `pool`'s `_sqlx_migrations` table records exactly the up migrations of `migrator`,
/// each applied successfully with its checksum: [`sqlx::migrate::Migrator::run`] would then
/// change nothing, and this costs one query where it costs three (creating the table if
/// missing, looking for a failed migration, listing the applied ones), each a round trip to
/// SQLite's thread on the critical path of a start. Anything else (no table yet, a migration
/// to apply, a failed or unknown one, a checksum that differs) is left to `run`, which applies
/// or reports it. Equivalent to a no-op `run` only because SQLite's migration lock is a no-op:
/// not for PostgreSQL as it stands.
async fn migrations_current(pool: &SqlitePool, migrator: &sqlx::migrate::Migrator) -> bool {
    let mut conn = match pool.acquire().await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "migration check: no connection; the migrator decides");
            return false;
        }
    };
    let sql = format!(
        "SELECT version, checksum, success FROM {} ORDER BY version",
        migrator.table_name
    );
    let applied: Result<Vec<(i64, Vec<u8>, bool)>, _> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await;
    hand_back(conn).await;
    let applied = match applied {
        Ok(rows) => rows,
        Err(e) => {
            // No table yet on a new database.
            tracing::debug!(error = %e, "migration check: unreadable; the migrator decides");
            return false;
        }
    };
    let mut expected: Vec<(i64, &[u8])> = migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| (m.version, &*m.checksum))
        .collect();
    expected.sort_unstable_by_key(|(v, _)| *v);
    applied.len() == expected.len()
        && applied
            .iter()
            .zip(&expected)
            .all(|((v, sum, ok), (ev, esum))| *ok && v == ev && sum.as_slice() == *esum)
}

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// Embedded SQLite (WAL).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

#[derive(Clone, Debug)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Run `$body` against whichever pool the store holds. `$begin` names the statement that opens a write
/// transaction (SQLite takes the write lock up front so that concurrent writers queue instead of failing).
macro_rules! with_db {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
    ($store:expr, |$pool:ident, $begin:ident| $body:expr) => {
        match &$store.db {
            Db::Sqlite($pool) => {
                let $begin: &'static str = "BEGIN IMMEDIATE";
                $body
            }
            Db::Postgres($pool) => {
                let $begin: &'static str = "BEGIN";
                $body
            }
        }
    };
}

/// Inside the write transaction `$tx` of `$store`: NOTIFY [`CHANGES_CHANNEL`] when the store
/// announces changes that way (PostgreSQL), so that every store learns of the change on commit.
macro_rules! notify_changes {
    ($store:expr, $tx:expr) => {
        if $store.changes.notifies() {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind($crate::store::CHANGES_CHANNEL)
                .execute(&mut *$tx)
                .await?;
        }
    };
}

mod cache;
mod changes;
mod functions;
mod logs;
mod projects;
mod results;
mod secrets;
mod usage_records;

use cache::{ARTIFACT_CACHE_BYTES, ARTIFACT_CACHE_ENTRIES, ArtifactCache};
use changes::{
    CHANGES_CHANNEL, ChangeFile, ChangeSource, ListenerHandle, ListenerShared, spawn_listener,
};
pub use functions::{ActiveArtifact, NewVersion};
use logs::LogState;
pub use logs::{LogEntry, LogQuery, LogRetention};
pub use results::{ResultState, StoredResult};
pub use secrets::{NewSecret, SecretInfo};
pub use usage_records::UsageRecord;
use usage_records::UsageSink;

/// Project and function names: `[a-z0-9][a-z0-9-]{0,62}` (the rules of `clave_proto::types::FunctionName`
/// and `ProjectName`, which are the same).
pub fn is_valid_name(name: &str) -> bool {
    name.parse::<clave_proto::types::FunctionName>().is_ok()
        && name.parse::<clave_proto::types::ProjectName>().is_ok()
}

fn check_name(name: &str) -> Result<(), Error> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(Error::InvalidName)
    }
}

/// SHA-256 of a token, hex.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn is_retryable(e: &Error) -> bool {
    let Error::Database(sqlx::Error::Database(db)) = e else {
        return false;
    };
    if db.is_unique_violation() {
        return true;
    }
    // SQLite busy/locked; PostgreSQL serialization failure / deadlock.
    matches!(
        db.code().as_deref(),
        Some("5" | "6" | "517" | "261" | "40001" | "40P01")
    )
}

/// The gateway's database. Cheap to clone (clones share the artifact cache and the usage writer).
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    artifacts: Arc<Mutex<ArtifactCache>>,
    usage: Arc<UsageWriter>,
    changes: ChangeSource,
    log_state: Arc<LogState>,
}

impl Store {
    /// Open the database at `url` and run migrations.
    ///
    /// `sqlite://path/to/file.db` (file and parent directories created if missing; WAL) or
    /// `postgres://user@host/db`.
    ///
    /// # Errors
    /// [`Error::UnsupportedUrl`], [`Error::BadUrl`], [`Error::DataDir`], [`Error::Database`],
    /// [`Error::Migrate`].
    pub async fn connect(url: &str) -> Result<Self, Error> {
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url).map_err(Error::BadUrl)?;
            Self::open_sqlite(opts).await
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts = PgConnectOptions::from_str(url).map_err(Error::BadUrl)?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .connect_with(opts)
                .await?;
            POSTGRES_MIGRATIONS.run(&pool).await?;
            let shared = Arc::new(ListenerShared::default());
            spawn_listener(pool.clone(), shared.clone());
            let changes = ChangeSource::Listener(Arc::new(ListenerHandle(shared)));
            Ok(Self::with_db(Db::Postgres(pool), changes))
        } else {
            Err(Error::UnsupportedUrl)
        }
    }

    /// Open (creating) `dir/gateway.db` as SQLite, e.g. `./.clave`.
    ///
    /// # Errors
    /// As [`Store::connect`].
    pub async fn open_dir(dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(Error::DataDir)?;
        Self::open_sqlite(SqliteConnectOptions::new().filename(dir.join("gateway.db"))).await
    }

    async fn open_sqlite(opts: SqliteConnectOptions) -> Result<Self, Error> {
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let file = opts.get_filename();
        if let Some(parent) = file.parent()
            && !parent.as_os_str().is_empty()
            && file.as_os_str() != ":memory:"
        {
            std::fs::create_dir_all(parent).map_err(Error::DataDir)?;
        }
        let changes = if file.as_os_str() == ":memory:" || file.as_os_str().is_empty() {
            ChangeSource::InProcess
        } else {
            let mut name = file.as_os_str().to_owned();
            name.push("-clave-changes");
            ChangeSource::File(Arc::new(
                ChangeFile::open(PathBuf::from(name)).map_err(Error::DataDir)?,
            ))
        };
        // Lazily: the migrations open the first connection (`connect_with` would open one, hand
        // it back and open another while the first is still being returned).
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_lazy_with(opts);
        if !migrations_current(&pool, &SQLITE_MIGRATIONS).await {
            SQLITE_MIGRATIONS.run(&pool).await?;
            settle(&pool).await;
        }
        Ok(Self::with_db(Db::Sqlite(pool), changes))
    }

    /// Needs a tokio runtime (it starts the usage writer).
    fn with_db(db: Db, changes: ChangeSource) -> Self {
        Self {
            changes,
            usage: Arc::new(UsageWriter::spawn(UsageSink { db: db.clone() })),
            artifacts: Arc::new(Mutex::new(ArtifactCache::new(
                ARTIFACT_CACHE_ENTRIES,
                ARTIFACT_CACHE_BYTES,
            ))),
            log_state: Arc::default(),
            db,
        }
    }

    fn artifacts(&self) -> std::sync::MutexGuard<'_, ArtifactCache> {
        // The cache is consistent between statements; a poisoned lock is usable.
        self.artifacts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Awaits `change`, a write that may change what is active (its transaction NOTIFYs, see
    /// [`notify_changes!`]), then drops the cached active versions and wakes this store's waiters:
    /// also on error, as a failed commit may still have committed.
    async fn after_change<T>(
        &self,
        change: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let result = change.await;
        self.artifacts().invalidate_active();
        self.changes.announce();
        result
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Connections the store's pool holds open, and how many of them are idle (diagnostics and
    /// tests: a SQLite store works on one connection unless calls overlap).
    #[doc(hidden)]
    #[must_use]
    pub fn connections(&self) -> (u32, usize) {
        with_db!(self, |pool| (pool.size(), pool.num_idle()))
    }

    /// Write the queued usage records, then close the pool (waits for connections to return).
    pub async fn close(&self) {
        self.flush_usage().await;
        self.changes.stop();
        with_db!(self, |pool| pool.close().await)
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        with_db!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .is_ok())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "default", "hello-world", "0x", &"a".repeat(63)] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "A",
            "a_b",
            "a b",
            "a/b",
            "ä",
            &"a".repeat(64),
            "..",
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    /// A SQLite pool over a fresh file in `dir`, migrated when `migrate`.
    async fn sqlite(dir: &Path, migrate: bool) -> SqlitePool {
        let opts = SqliteConnectOptions::new()
            .filename(dir.join("m.db"))
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new().connect_with(opts).await.unwrap();
        if migrate {
            SQLITE_MIGRATIONS.run(&pool).await.unwrap();
        }
        pool
    }

    #[tokio::test]
    async fn migrations_are_current_only_when_all_are_applied_as_shipped() {
        let dir = tempfile::tempdir().unwrap();
        let pool = sqlite(dir.path(), false).await;
        // No table yet: left to the migrator.
        assert!(!migrations_current(&pool, &SQLITE_MIGRATIONS).await);
        SQLITE_MIGRATIONS.run(&pool).await.unwrap();
        assert!(migrations_current(&pool, &SQLITE_MIGRATIONS).await);
        pool.close().await;

        // Each departure from "all applied, as shipped" is left to the migrator, on a freshly
        // migrated database each.
        let last = SQLITE_MIGRATIONS.iter().map(|m| m.version).max().unwrap();
        for change in [
            "UPDATE _sqlx_migrations SET checksum = X'00' WHERE version = $1",
            "UPDATE _sqlx_migrations SET success = false WHERE version = $1",
            "DELETE FROM _sqlx_migrations WHERE version = $1",
            "UPDATE _sqlx_migrations SET version = version + 100 WHERE version = $1",
            // An applied migration this build does not know.
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1 + 1, 'from a later build', true, X'00', 0)",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let pool = sqlite(dir.path(), true).await;
            assert!(migrations_current(&pool, &SQLITE_MIGRATIONS).await);
            sqlx::query(change).bind(last).execute(&pool).await.unwrap();
            assert!(
                !migrations_current(&pool, &SQLITE_MIGRATIONS).await,
                "{change}"
            );
            pool.close().await;
        }
    }

    #[tokio::test]
    async fn a_store_refuses_a_database_whose_migration_differs() {
        // The fast path must not hide what the migrator reports: a changed checksum.
        let dir = tempfile::tempdir().unwrap();
        let pool = sqlite(dir.path(), true).await;
        sqlx::query("UPDATE _sqlx_migrations SET checksum = X'00' WHERE version = (SELECT MIN(version) FROM _sqlx_migrations)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let opened =
            Store::open_sqlite(SqliteConnectOptions::new().filename(dir.path().join("m.db"))).await;
        assert!(
            matches!(opened, Err(Error::Migrate(_))),
            "{:?}",
            opened.err()
        );
    }

    #[test]
    fn token_hash_is_sha256_hex() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
