//! Storage: projects, functions, immutable versions (manifest + ciphertext), hashed deploy tokens and
//! usage records, in SQLite or PostgreSQL chosen by URL.
//!
//! Both backends run the same SQL text (`$n` placeholders work in both); [`with_db!`] expands each body once
//! per pool type. The store never sees plaintext code or requests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clave_proto::gateway_api::{
    ActivateResponse, DeployResponse, FunctionDetail, FunctionList, FunctionSummary, Problem,
    VersionInfo,
};
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::Error;
use crate::usage::{BatchSink, UsageWriter};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

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

/// What a deploy stores (already decoded and size-checked by the caller).
#[derive(Clone, PartialEq, Eq)]
pub struct NewVersion<'a> {
    /// Exact manifest bytes.
    pub manifest: &'a [u8],
    /// Sealed code (opaque).
    pub sealed_code: &'a [u8],
    /// Code hash as the manifest spells it.
    pub code_hash: &'a str,
    /// Limits JSON from the manifest (kept for listing).
    pub limits_json: &'a str,
    /// Make it the active version.
    pub activate: bool,
}

impl std::fmt::Debug for NewVersion<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewVersion")
            .field("manifest_len", &self.manifest.len())
            .field("sealed_code_len", &self.sealed_code.len())
            .field("code_hash", &self.code_hash)
            .field("activate", &self.activate)
            .finish()
    }
}

/// The active version of a function, ready to dispatch. The bytes are shared with the store's
/// cache (cloning is a reference count, not a copy).
#[derive(Clone, PartialEq, Eq)]
pub struct ActiveArtifact {
    /// Version number.
    pub version: i64,
    /// Exact manifest bytes.
    pub manifest: bytes::Bytes,
    /// Sealed code (opaque).
    pub sealed_code: bytes::Bytes,
}

impl std::fmt::Debug for ActiveArtifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveArtifact")
            .field("version", &self.version)
            .field("manifest_len", &self.manifest.len())
            .field("sealed_code_len", &self.sealed_code.len())
            .finish()
    }
}

/// One metered call: metadata only, never content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRecord {
    /// Project name.
    pub project: String,
    /// Function name.
    pub function: String,
    /// Version that was dispatched.
    pub version: i64,
    /// Outcome label (`ok`, `rejected`, `overloaded`, `timeout`, `unavailable`, `failed`).
    pub outcome: String,
    /// Wall time in milliseconds.
    pub duration_ms: i64,
    /// Size of the encapsulated request.
    pub request_bytes: i64,
    /// Size of the encapsulated response (0 on error).
    pub response_bytes: i64,
    /// Unix seconds.
    pub created: i64,
}

/// Where an asynchronous call stands.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResultState {
    /// Accepted, not finished.
    Pending,
    /// Finished: the sealed `message/ohttp-res` body (opaque).
    Done(Vec<u8>),
    /// Ended with a gateway-visible problem (HTTP status + problem document; never content).
    Failed(Problem),
}

impl std::fmt::Debug for ResultState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pending => f.write_str("Pending"),
            Self::Done(r) => f.debug_struct("Done").field("len", &r.len()).finish(),
            Self::Failed(p) => f.debug_tuple("Failed").field(p).finish(),
        }
    }
}

/// A stored asynchronous result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResult {
    /// Result id.
    pub id: String,
    /// Project.
    pub project: String,
    /// Function.
    pub function: String,
    /// Version the call was pinned to when accepted.
    pub version: i64,
    /// Where it stands.
    pub state: ResultState,
    /// Unix seconds when accepted.
    pub created: i64,
    /// Unix seconds when completed.
    pub completed: Option<i64>,
}

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

/// Most artifacts (manifest + sealed code of one version) kept in memory per store.
const ARTIFACT_CACHE_ENTRIES: usize = 1024;
/// Most bytes of artifacts kept in memory per store.
const ARTIFACT_CACHE_BYTES: usize = 64 << 20;

/// The bytes of one immutable version (shared with every job that dispatches it, not copied).
#[derive(Debug)]
struct CachedArtifact {
    manifest: bytes::Bytes,
    sealed_code: bytes::Bytes,
    last_used: u64,
}

impl CachedArtifact {
    fn size(&self) -> usize {
        self.manifest.len() + self.sealed_code.len()
    }
}

/// (function id, active version, remembered at).
type ActiveEntry = (i64, i64, Instant);

/// Artifact bytes by (function row id, version), least recently used out first. Both halves of
/// the key are never reused: function ids come from an autoincrement/identity column (a deleted
/// and re-created function gets a new id) and version rows are never updated, so an entry can
/// never go stale.
///
/// Which version is active is remembered too, exactly as long as the store can vouch that it
/// learns of every change ([`ChangeSource`]): each change of any function of the database moves
/// the *change stamp*, and a moved stamp forgets every remembered active version at once. When
/// the store cannot vouch (PostgreSQL with its LISTEN connection down), the active version is
/// read from the database on every call, or, with the opt-in `active_ttl` > 0, remembered for at
/// most that long. Every deploy, activate, rollback and delete through this store also forgets
/// all of it at once (and a lookup that raced with one is not remembered: `generation`).
#[derive(Debug)]
struct ArtifactCache {
    max_entries: usize,
    max_bytes: usize,
    bytes: usize,
    tick: u64,
    entries: HashMap<(i64, i64), CachedArtifact>,
    active_ttl: Duration,
    generation: u64,
    /// The change stamp the remembered active versions were read under.
    stamp: Option<u64>,
    /// project → function → active entry (looked up without allocating).
    active: HashMap<String, HashMap<String, ActiveEntry>>,
    active_len: usize,
}

impl ArtifactCache {
    fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            max_entries,
            max_bytes,
            bytes: 0,
            tick: 0,
            entries: HashMap::new(),
            active_ttl: Duration::ZERO,
            generation: 0,
            stamp: None,
            active: HashMap::new(),
            active_len: 0,
        }
    }

    /// Bring the cache to the current change stamp (`None`: unknown, nothing exact).
    fn observe(&mut self, stamp: Option<u64>) {
        if stamp != self.stamp {
            self.stamp = stamp;
            self.invalidate_active();
        }
    }

    /// A remembered active version: exact while the stamp is known (see [`Self::observe`]),
    /// else only younger than the TTL.
    fn active(&self, project: &str, function: &str) -> Option<(i64, i64)> {
        if self.stamp.is_none() && self.active_ttl.is_zero() {
            return None;
        }
        let (fid, version, at) = self.active.get(project)?.get(function)?;
        (self.stamp.is_some() || at.elapsed() < self.active_ttl).then_some((*fid, *version))
    }

    /// Remember an active version looked up while the generation was `generation`.
    fn remember_active(
        &mut self,
        generation: u64,
        project: &str,
        function: &str,
        fid: i64,
        version: i64,
    ) {
        if (self.stamp.is_none() && self.active_ttl.is_zero()) || generation != self.generation {
            return;
        }
        if self.active_len >= self.max_entries.max(1) * 4 {
            self.active.clear();
            self.active_len = 0;
        }
        let functions = self.active.entry(project.to_owned()).or_default();
        if functions
            .insert(function.to_owned(), (fid, version, Instant::now()))
            .is_none()
        {
            self.active_len += 1;
        }
    }

    /// Something changed which version is active: forget every remembered one.
    fn invalidate_active(&mut self) {
        self.generation += 1;
        self.active.clear();
        self.active_len = 0;
    }

    fn get(&mut self, key: (i64, i64)) -> Option<(bytes::Bytes, bytes::Bytes)> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(&key).map(|e| {
            e.last_used = tick;
            (e.manifest.clone(), e.sealed_code.clone())
        })
    }

    fn insert(&mut self, key: (i64, i64), manifest: &bytes::Bytes, sealed_code: &bytes::Bytes) {
        let size = manifest.len() + sealed_code.len();
        if self.max_entries == 0 || size > self.max_bytes / 4 {
            return;
        }
        self.tick += 1;
        if let Some(old) = self.entries.remove(&key) {
            self.bytes -= old.size();
        }
        while !self.entries.is_empty()
            && (self.entries.len() >= self.max_entries || self.bytes + size > self.max_bytes)
        {
            let Some(victim) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(e) = self.entries.remove(&victim) {
                self.bytes -= e.size();
            }
        }
        self.bytes += size;
        self.entries.insert(
            key,
            CachedArtifact {
                manifest: manifest.clone(),
                sealed_code: sealed_code.clone(),
                last_used: self.tick,
            },
        );
    }

    fn remove_function(&mut self, function_id: i64) {
        let bytes = &mut self.bytes;
        self.entries.retain(|(fid, _), e| {
            if *fid == function_id {
                *bytes -= e.size();
                false
            } else {
                true
            }
        });
    }
}

/// Inserts batches of usage rows for the background writer.
struct UsageSink {
    db: Db,
}

impl BatchSink for UsageSink {
    async fn write(&mut self, batch: &[UsageRecord]) -> Result<(), String> {
        self.insert(batch).await.map_err(|e| e.to_string())
    }
}

/// Rows per `INSERT` statement of a batch (8 parameters each: far below SQLite's and PostgreSQL's
/// limits). One statement per chunk, not per row: each statement is a round trip to the
/// database (for SQLite, to sqlx's worker thread and back).
const USAGE_ROWS_PER_STATEMENT: usize = 128;

impl UsageSink {
    async fn insert(&self, batch: &[UsageRecord]) -> Result<(), Error> {
        with_db!(self, |pool, begin| {
            let mut tx = pool.begin_with(begin).await?;
            for chunk in batch.chunks(USAGE_ROWS_PER_STATEMENT) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO usage_records (project, function, version, outcome, duration_ms, \
                     request_bytes, response_bytes, created) ",
                );
                q.push_values(chunk, |mut row, r| {
                    row.push_bind(&r.project)
                        .push_bind(&r.function)
                        .push_bind(r.version)
                        .push_bind(&r.outcome)
                        .push_bind(r.duration_ms)
                        .push_bind(r.request_bytes)
                        .push_bind(r.response_bytes)
                        .push_bind(r.created);
                });
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

/// PostgreSQL channel on which every store announces a change of which versions exist or are
/// active (inside the changing transaction, so it is delivered on commit).
const CHANGES_CHANNEL: &str = "clave_function_changes";

/// How a store learns that a writer (itself, another store, another gateway) changed which
/// version of a function is active, without a database round trip per call. Its *stamp* moves
/// on every such change; `None` means it cannot vouch right now.
#[derive(Clone, Debug)]
enum ChangeSource {
    /// In-memory SQLite: no other pool can reach it; this store's own writes invalidate.
    InProcess,
    /// A SQLite file: after every change each store appends one byte to this file beside the
    /// database; its length is the stamp (one `stat` per call).
    File(Arc<PathBuf>),
    /// PostgreSQL: every store NOTIFYs [`CHANGES_CHANNEL`] in each changing transaction and a
    /// LISTEN connection counts the notifications; while it is down the stamp is unknown.
    Listener(Arc<ListenerHandle>),
}

#[derive(Debug, Default)]
struct ListenerShared {
    live: AtomicBool,
    count: AtomicU64,
    stop: tokio::sync::Notify,
}

/// The store's end of the listener task; dropping the last clone stops the task.
#[derive(Debug)]
struct ListenerHandle(Arc<ListenerShared>);

impl Drop for ListenerHandle {
    fn drop(&mut self) {
        self.0.stop.notify_one();
    }
}

impl ChangeSource {
    fn stamp(&self) -> Option<u64> {
        match self {
            Self::InProcess => Some(0),
            Self::File(path) => std::fs::metadata(path.as_path()).ok().map(|m| m.len()),
            Self::Listener(h) => {
                h.0.live
                    .load(Ordering::Acquire)
                    .then(|| h.0.count.load(Ordering::Acquire))
            }
        }
    }

    /// After a change through this store: tell the other stores over the same SQLite file.
    fn announce(&self) {
        if let Self::File(path) = self {
            use std::io::Write as _;
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
    fn notifies(&self) -> bool {
        matches!(self, Self::Listener(_))
    }

    fn stop(&self) {
        if let Self::Listener(h) = self {
            h.0.live.store(false, Ordering::Release);
            h.0.stop.notify_one();
        }
    }
}

/// LISTEN for changes until stopped; count notifications, and mark the stamp unknown (and
/// moved) whenever the connection is down, since notifications may be missed then.
fn spawn_listener(pool: PgPool, shared: Arc<ListenerShared>) {
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

/// The gateway's database. Cheap to clone (clones share the artifact cache and the usage writer).
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    artifacts: Arc<Mutex<ArtifactCache>>,
    usage: Arc<UsageWriter>,
    changes: ChangeSource,
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
            let path = PathBuf::from(name);
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(Error::DataDir)?;
            ChangeSource::File(Arc::new(path))
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await?;
        SQLITE_MIGRATIONS.run(&pool).await?;
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
            db,
        }
    }

    fn artifacts(&self) -> std::sync::MutexGuard<'_, ArtifactCache> {
        // The cache is consistent between statements; a poisoned lock is usable.
        self.artifacts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
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

    /// Create a project. Returns `false` when it already existed.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::Database`].
    pub async fn create_project(&self, project: &str) -> Result<bool, Error> {
        check_name(project)?;
        let created = now();
        let done = with_db!(self, |pool| sqlx::query(
            "INSERT INTO projects (name, created) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING"
        )
        .bind(project)
        .bind(created)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// Whether a project exists.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn project_exists(&self, project: &str) -> Result<bool, Error> {
        let row: Option<(i64,)> = with_db!(self, |pool| sqlx::query_as(
            "SELECT id FROM projects WHERE name = $1"
        )
        .bind(project)
        .fetch_optional(pool)
        .await?);
        Ok(row.is_some())
    }

    /// Create a deploy token for `project`; returns the plaintext token, which is not stored (only its
    /// SHA-256 is) and cannot be shown again.
    ///
    /// # Errors
    /// [`Error::UnknownProject`], [`Error::Random`], [`Error::Database`].
    pub async fn create_token(&self, project: &str) -> Result<String, Error> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|_| Error::Random)?;
        let token = format!("cdt_{}", hex::encode(raw));
        let hash = token_hash(&token);
        let created = now();
        let done = with_db!(self, |pool| sqlx::query(
            "INSERT INTO deploy_tokens (token_hash, project_id, created) \
             SELECT $1, id, $2 FROM projects WHERE name = $3"
        )
        .bind(&hash)
        .bind(created)
        .bind(project)
        .execute(pool)
        .await?
        .rows_affected());
        if done == 1 {
            Ok(token)
        } else {
            Err(Error::UnknownProject)
        }
    }

    /// The project a plaintext deploy token belongs to, if any.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn project_for_token(&self, token: &str) -> Result<Option<String>, Error> {
        let hash = token_hash(token);
        let row: Option<(String,)> = with_db!(self, |pool| sqlx::query_as(
            "SELECT p.name FROM deploy_tokens t JOIN projects p ON p.id = t.project_id \
             WHERE t.token_hash = $1"
        )
        .bind(&hash)
        .fetch_optional(pool)
        .await?);
        Ok(row.map(|r| r.0))
    }

    /// Store a new immutable version of `project/function` (creating the function if needed, within
    /// `max_functions` per project). Concurrent deploys of one name get distinct versions.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::UnknownProject`], [`Error::FunctionLimit`], [`Error::Contention`],
    /// [`Error::Database`].
    pub async fn deploy(
        &self,
        project: &str,
        function: &str,
        new: &NewVersion<'_>,
        max_functions: u32,
    ) -> Result<DeployResponse, Error> {
        check_name(project)?;
        check_name(function)?;
        let mut backoff = Duration::from_millis(2);
        for _ in 0..16 {
            match self.try_deploy(project, function, new, max_functions).await {
                Err(e) if is_retryable(&e) => {
                    tracing::debug!("deploy conflicted, retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(100));
                }
                other => return other,
            }
        }
        Err(Error::Contention)
    }

    async fn try_deploy(
        &self,
        project: &str,
        function: &str,
        new: &NewVersion<'_>,
        max_functions: u32,
    ) -> Result<DeployResponse, Error> {
        let result = self
            .try_deploy_tx(project, function, new, max_functions)
            .await;
        // Also on error: a failed commit may still have committed.
        self.artifacts().invalidate_active();
        self.changes.announce();
        result
    }

    async fn try_deploy_tx(
        &self,
        project: &str,
        function: &str,
        new: &NewVersion<'_>,
        max_functions: u32,
    ) -> Result<DeployResponse, Error> {
        let created = now();
        let manifest_len = i64::try_from(new.manifest.len()).unwrap_or(i64::MAX);
        let code_len = i64::try_from(new.sealed_code.len()).unwrap_or(i64::MAX);
        with_db!(self, |pool, begin| {
            let mut tx = pool.begin_with(begin).await?;
            let pid: Option<(i64,)> = sqlx::query_as("SELECT id FROM projects WHERE name = $1")
                .bind(project)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((pid,)) = pid else {
                return Err(Error::UnknownProject);
            };
            let fid: Option<(i64,)> =
                sqlx::query_as("SELECT id FROM functions WHERE project_id = $1 AND name = $2")
                    .bind(pid)
                    .bind(function)
                    .fetch_optional(&mut *tx)
                    .await?;
            let fid = match fid {
                Some((fid,)) => fid,
                None => {
                    let (count,): (i64,) =
                        sqlx::query_as("SELECT COUNT(*) FROM functions WHERE project_id = $1")
                            .bind(pid)
                            .fetch_one(&mut *tx)
                            .await?;
                    if count >= i64::from(max_functions) {
                        return Err(Error::FunctionLimit {
                            limit: max_functions,
                        });
                    }
                    let (fid,): (i64,) = sqlx::query_as(
                        "INSERT INTO functions (project_id, name, active_version, latest_version, created) \
                         VALUES ($1, $2, NULL, 0, $3) RETURNING id",
                    )
                    .bind(pid)
                    .bind(function)
                    .bind(created)
                    .fetch_one(&mut *tx)
                    .await?;
                    fid
                }
            };
            // The counter row serialises concurrent deploys of one function (row lock / write lock).
            let (version,): (i64,) = sqlx::query_as(
                "UPDATE functions SET latest_version = latest_version + 1 WHERE id = $1 \
                 RETURNING latest_version",
            )
            .bind(fid)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO versions (function_id, version, manifest, sealed_code, code_hash, limits, \
                 manifest_bytes, sealed_code_bytes, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(fid)
            .bind(version)
            .bind(new.manifest)
            .bind(new.sealed_code)
            .bind(new.code_hash)
            .bind(new.limits_json)
            .bind(manifest_len)
            .bind(code_len)
            .bind(created)
            .execute(&mut *tx)
            .await?;
            if new.activate {
                sqlx::query("UPDATE functions SET active_version = $1 WHERE id = $2")
                    .bind(version)
                    .bind(fid)
                    .execute(&mut *tx)
                    .await?;
            }
            let (active_version,): (Option<i64>,) =
                sqlx::query_as("SELECT active_version FROM functions WHERE id = $1")
                    .bind(fid)
                    .fetch_one(&mut *tx)
                    .await?;
            if self.changes.notifies() {
                sqlx::query("SELECT pg_notify($1, '')")
                    .bind(CHANGES_CHANNEL)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(DeployResponse {
                project: project.to_owned(),
                function: function.to_owned(),
                version,
                code_hash: new.code_hash.to_owned(),
                active_version,
            })
        })
    }

    /// Functions of a project, sorted by name.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn list_functions(&self, project: &str) -> Result<FunctionList, Error> {
        type Row = (String, Option<i64>, i64, i64, i64, Option<String>);
        let rows: Vec<Row> = with_db!(self, |pool| sqlx::query_as(
            "SELECT f.name, f.active_version, f.latest_version, f.created, \
               (SELECT COUNT(*) FROM versions v WHERE v.function_id = f.id), \
               (SELECT v.code_hash FROM versions v WHERE v.function_id = f.id \
                  AND v.version = f.active_version) \
             FROM functions f JOIN projects p ON p.id = f.project_id \
             WHERE p.name = $1 ORDER BY f.name"
        )
        .bind(project)
        .fetch_all(pool)
        .await?);
        Ok(FunctionList {
            project: project.to_owned(),
            functions: rows
                .into_iter()
                .map(
                    |(name, active_version, latest_version, created, versions, hash)| {
                        FunctionSummary {
                            name,
                            active_version,
                            latest_version,
                            active_code_hash: hash,
                            versions,
                            created,
                        }
                    },
                )
                .collect(),
        })
    }

    /// One function with all its versions.
    ///
    /// # Errors
    /// [`Error::UnknownFunction`], [`Error::Database`].
    pub async fn function(&self, project: &str, function: &str) -> Result<FunctionDetail, Error> {
        let head: Option<(i64, Option<i64>)> = with_db!(self, |pool| {
            sqlx::query_as(
            "SELECT f.id, f.active_version FROM functions f JOIN projects p ON p.id = f.project_id \
             WHERE p.name = $1 AND f.name = $2"
        )
        .bind(project)
        .bind(function)
        .fetch_optional(pool)
        .await?
        });
        let Some((fid, active_version)) = head else {
            return Err(Error::UnknownFunction);
        };
        type Row = (i64, String, i64, i64, String, i64, Vec<u8>);
        let rows: Vec<Row> = with_db!(self, |pool| {
            sqlx::query_as(
            "SELECT version, code_hash, manifest_bytes, sealed_code_bytes, limits, created, manifest \
             FROM versions WHERE function_id = $1 ORDER BY version"
        )
        .bind(fid)
        .fetch_all(pool)
        .await?
        });
        Ok(FunctionDetail {
            project: project.to_owned(),
            name: function.to_owned(),
            active_version,
            versions: rows
                .into_iter()
                .map(
                    |(
                        version,
                        code_hash,
                        manifest_bytes,
                        sealed_code_bytes,
                        limits,
                        created,
                        manifest,
                    )| {
                        VersionInfo {
                            version,
                            code_hash,
                            manifest_bytes,
                            sealed_code_bytes,
                            limits: serde_json::from_str(&limits)
                                .unwrap_or(serde_json::Value::Null),
                            outbound: clave_proto::Manifest::from_bytes(&manifest)
                                .map(|m| m.outbound.into_iter().map(String::from).collect())
                                .unwrap_or_default(),
                            created,
                            active: Some(version) == active_version,
                        }
                    },
                )
                .collect(),
        })
    }

    /// Make `version` the active version.
    ///
    /// # Errors
    /// [`Error::UnknownFunction`], [`Error::UnknownVersion`], [`Error::Database`].
    pub async fn activate(
        &self,
        project: &str,
        function: &str,
        version: i64,
    ) -> Result<ActivateResponse, Error> {
        self.set_active(project, function, Some(version)).await
    }

    /// Make the highest version below the active one active.
    ///
    /// # Errors
    /// [`Error::UnknownFunction`], [`Error::NoPreviousVersion`], [`Error::Database`].
    pub async fn rollback(&self, project: &str, function: &str) -> Result<ActivateResponse, Error> {
        self.set_active(project, function, None).await
    }

    async fn set_active(
        &self,
        project: &str,
        function: &str,
        target: Option<i64>,
    ) -> Result<ActivateResponse, Error> {
        let result = self.set_active_tx(project, function, target).await;
        self.artifacts().invalidate_active();
        self.changes.announce();
        result
    }

    async fn set_active_tx(
        &self,
        project: &str,
        function: &str,
        target: Option<i64>,
    ) -> Result<ActivateResponse, Error> {
        with_db!(self, |pool, begin| {
            let mut tx = pool.begin_with(begin).await?;
            let head: Option<(i64, Option<i64>)> = sqlx::query_as(
                "SELECT f.id, f.active_version FROM functions f JOIN projects p ON p.id = f.project_id \
                 WHERE p.name = $1 AND f.name = $2",
            )
            .bind(project)
            .bind(function)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((fid, previous)) = head else {
                return Err(Error::UnknownFunction);
            };
            let version = match target {
                Some(v) => {
                    let found: Option<(i64,)> = sqlx::query_as(
                        "SELECT version FROM versions WHERE function_id = $1 AND version = $2",
                    )
                    .bind(fid)
                    .bind(v)
                    .fetch_optional(&mut *tx)
                    .await?;
                    found.ok_or(Error::UnknownVersion)?.0
                }
                None => {
                    let active = previous.ok_or(Error::NoPreviousVersion)?;
                    let (found,): (Option<i64>,) = sqlx::query_as(
                        "SELECT MAX(version) FROM versions WHERE function_id = $1 AND version < $2",
                    )
                    .bind(fid)
                    .bind(active)
                    .fetch_one(&mut *tx)
                    .await?;
                    found.ok_or(Error::NoPreviousVersion)?
                }
            };
            sqlx::query("UPDATE functions SET active_version = $1 WHERE id = $2")
                .bind(version)
                .bind(fid)
                .execute(&mut *tx)
                .await?;
            if self.changes.notifies() {
                sqlx::query("SELECT pg_notify($1, '')")
                    .bind(CHANGES_CHANNEL)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(ActivateResponse {
                project: project.to_owned(),
                function: function.to_owned(),
                active_version: version,
                previous_version: previous,
            })
        })
    }

    /// Delete a function and all its versions. Returns `false` if it did not exist.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn delete_function(&self, project: &str, function: &str) -> Result<bool, Error> {
        let result = self.delete_function_tx(project, function).await;
        self.artifacts().invalidate_active();
        self.changes.announce();
        result
    }

    async fn delete_function_tx(&self, project: &str, function: &str) -> Result<bool, Error> {
        with_db!(self, |pool, begin| {
            let mut tx = pool.begin_with(begin).await?;
            let fid: Option<(i64,)> = sqlx::query_as(
                "SELECT f.id FROM functions f JOIN projects p ON p.id = f.project_id \
                 WHERE p.name = $1 AND f.name = $2",
            )
            .bind(project)
            .bind(function)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((fid,)) = fid else {
                return Ok(false);
            };
            sqlx::query("DELETE FROM versions WHERE function_id = $1")
                .bind(fid)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM functions WHERE id = $1")
                .bind(fid)
                .execute(&mut *tx)
                .await?;
            if self.changes.notifies() {
                sqlx::query("SELECT pg_notify($1, '')")
                    .bind(CHANGES_CHANNEL)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            self.artifacts().remove_function(fid);
            Ok(true)
        })
    }

    /// The active version's manifest and sealed code, for dispatch.
    ///
    /// Which version is active comes from memory while the store can vouch that it learns of
    /// every change: over a SQLite file, every store over that file announces its changes in a
    /// file beside it (`<db>-clave-changes`, checked with one `stat` per call); over PostgreSQL,
    /// every store NOTIFYs its changes and a LISTEN connection receives them (while that
    /// connection is down, the active version is read from the database on every call). So a
    /// deploy, activate, rollback or delete through any gateway over the same database takes
    /// effect on the next call once it is committed and announced. The bytes of that immutable
    /// version come from a bounded in-memory cache when present, shared, not copied.
    ///
    /// Writers that bypass [`Store`] (hand-written SQL) are not seen until the next announced
    /// change.
    ///
    /// # Errors
    /// [`Error::UnknownFunction`] (also when no version is active), [`Error::Database`].
    pub async fn active_artifact(
        &self,
        project: &str,
        function: &str,
    ) -> Result<ActiveArtifact, Error> {
        // The stamp is read before the database: a change announced after this read moves it
        // again, and a lookup that raced with a change is not remembered (`generation`).
        let stamp = self.changes.stamp();
        let (remembered, generation) = {
            let mut cache = self.artifacts();
            cache.observe(stamp);
            (cache.active(project, function), cache.generation)
        };
        let (fid, version) = match remembered {
            Some(head) => head,
            None => {
                let head: Option<(i64, Option<i64>)> = with_db!(self, |pool| sqlx::query_as(
                    "SELECT f.id, f.active_version FROM functions f \
                     JOIN projects p ON p.id = f.project_id WHERE p.name = $1 AND f.name = $2"
                )
                .bind(project)
                .bind(function)
                .fetch_optional(pool)
                .await?);
                let Some((fid, Some(version))) = head else {
                    return Err(Error::UnknownFunction);
                };
                self.artifacts()
                    .remember_active(generation, project, function, fid, version);
                (fid, version)
            }
        };
        if let Some((manifest, sealed_code)) = self.artifacts().get((fid, version)) {
            return Ok(ActiveArtifact {
                version,
                manifest,
                sealed_code,
            });
        }
        let row: Option<(Vec<u8>, Vec<u8>)> = with_db!(self, |pool| sqlx::query_as(
            "SELECT manifest, sealed_code FROM versions WHERE function_id = $1 AND version = $2"
        )
        .bind(fid)
        .bind(version)
        .fetch_optional(pool)
        .await?);
        // Gone in between: the function was deleted.
        let (manifest, sealed_code) = row.ok_or(Error::UnknownFunction)?;
        let (manifest, sealed_code) = (
            bytes::Bytes::from(manifest),
            bytes::Bytes::from(sealed_code),
        );
        self.artifacts()
            .insert((fid, version), &manifest, &sealed_code);
        Ok(ActiveArtifact {
            version,
            manifest,
            sealed_code,
        })
    }

    /// While the store cannot vouch for the active versions (see [`Store::active_artifact`]:
    /// PostgreSQL with its LISTEN connection down), let it reuse which version is active for up
    /// to `ttl` instead of reading it from the database on every call (`Duration::ZERO`, the
    /// default, reads it every time then). A deploy, activate, rollback or delete through this store (or a clone) takes effect
    /// on the next call regardless; one made through ANOTHER gateway (another store over the same
    /// database) may be seen only up to `ttl` later — in that window this gateway keeps
    /// dispatching the version it last read, including a function another gateway deleted.
    pub fn set_active_version_ttl(&self, ttl: Duration) {
        let mut cache = self.artifacts();
        cache.active_ttl = ttl;
        cache.invalidate_active();
    }

    /// Artifacts held in the in-memory cache (operators' and tests' view).
    pub fn cached_artifacts(&self) -> usize {
        self.artifacts().entries.len()
    }

    /// The active version number of a function (no artifact bytes).
    ///
    /// # Errors
    /// [`Error::UnknownFunction`] (also when no version is active), [`Error::Database`].
    pub async fn active_version(&self, project: &str, function: &str) -> Result<i64, Error> {
        let row: Option<(Option<i64>,)> = with_db!(self, |pool| sqlx::query_as(
            "SELECT f.active_version FROM functions f JOIN projects p ON p.id = f.project_id \
             WHERE p.name = $1 AND f.name = $2"
        )
        .bind(project)
        .bind(function)
        .fetch_optional(pool)
        .await?);
        row.and_then(|r| r.0).ok_or(Error::UnknownFunction)
    }

    /// The manifest and sealed code of one version (the one an asynchronous call was pinned to).
    ///
    /// # Errors
    /// [`Error::UnknownVersion`] (also when the function is gone), [`Error::Database`].
    pub async fn version_artifact(
        &self,
        project: &str,
        function: &str,
        version: i64,
    ) -> Result<ActiveArtifact, Error> {
        let row: Option<(Vec<u8>, Vec<u8>)> = with_db!(self, |pool| sqlx::query_as(
            "SELECT v.manifest, v.sealed_code FROM functions f \
             JOIN projects p ON p.id = f.project_id \
             JOIN versions v ON v.function_id = f.id \
             WHERE p.name = $1 AND f.name = $2 AND v.version = $3"
        )
        .bind(project)
        .bind(function)
        .bind(version)
        .fetch_optional(pool)
        .await?);
        let (manifest, sealed_code) = row.ok_or(Error::UnknownVersion)?;
        Ok(ActiveArtifact {
            version,
            manifest: manifest.into(),
            sealed_code: sealed_code.into(),
        })
    }

    /// Record an accepted asynchronous call as pending. Returns `false` if the id already exists.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn create_result(
        &self,
        id: &str,
        project: &str,
        function: &str,
        version: i64,
    ) -> Result<bool, Error> {
        let created = now();
        let done = with_db!(self, |pool| sqlx::query(
            "INSERT INTO results (id, project, function, version, status, created) \
             VALUES ($1, $2, $3, $4, 'pending', $5) ON CONFLICT (id) DO NOTHING"
        )
        .bind(id)
        .bind(project)
        .bind(function)
        .bind(version)
        .bind(created)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// Forget a pending result whose call was never queued.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn delete_pending_result(&self, id: &str) -> Result<(), Error> {
        with_db!(self, |pool| sqlx::query(
            "DELETE FROM results WHERE id = $1 AND status = 'pending'"
        )
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Store the outcome of an asynchronous call, once: inserted if absent, completed if pending, left
    /// alone if already completed. Returns whether this call wrote it.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn complete_result(
        &self,
        id: &str,
        project: &str,
        function: &str,
        version: i64,
        state: &ResultState,
    ) -> Result<bool, Error> {
        let (status, http_status, problem, response): (
            &str,
            Option<i32>,
            Option<String>,
            Option<&[u8]>,
        ) = match state {
            ResultState::Pending => return Ok(false),
            ResultState::Done(r) => ("ok", None, None, Some(r.as_slice())),
            ResultState::Failed(p) => (
                "error",
                Some(i32::from(p.status)),
                Some(serde_json::to_string(p).unwrap_or_default()),
                None,
            ),
        };
        let at = now();
        let done = with_db!(self, |pool| {
            sqlx::query(
            "INSERT INTO results (id, project, function, version, status, http_status, problem, \
             response, created, completed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, \
             http_status = excluded.http_status, problem = excluded.problem, \
             response = excluded.response, completed = excluded.completed \
             WHERE results.status = 'pending'"
        )
        .bind(id)
        .bind(project)
        .bind(function)
        .bind(version)
        .bind(status)
        .bind(http_status)
        .bind(problem)
        .bind(response)
        .bind(at)
        .execute(pool)
        .await?
        .rows_affected()
        });
        Ok(done == 1)
    }

    /// An asynchronous result by id.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn result(&self, id: &str) -> Result<Option<StoredResult>, Error> {
        type Row = (
            String,
            String,
            i64,
            String,
            Option<String>,
            Option<Vec<u8>>,
            i64,
            Option<i64>,
        );
        let row: Option<Row> = with_db!(self, |pool| sqlx::query_as(
            "SELECT project, function, version, status, problem, response, created, completed \
             FROM results WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(pool)
        .await?);
        Ok(row.map(
            |(project, function, version, status, problem, response, created, completed)| {
                let state = match status.as_str() {
                    "ok" => ResultState::Done(response.unwrap_or_default()),
                    "error" => ResultState::Failed(
                        problem
                            .and_then(|p| serde_json::from_str(&p).ok())
                            .unwrap_or_else(|| crate::ApiError::Internal.problem()),
                    ),
                    _ => ResultState::Pending,
                };
                StoredResult {
                    id: id.to_owned(),
                    project,
                    function,
                    version,
                    state,
                    created,
                    completed,
                }
            },
        ))
    }

    /// Results of a project as `(pending, completed)` counts (operators' and tests' view).
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn count_results(&self, project: &str) -> Result<(i64, i64), Error> {
        let (pending, done): (i64, i64) = with_db!(self, |pool| sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN status <> 'pending' THEN 1 ELSE 0 END), 0) \
             FROM results WHERE project = $1"
        )
        .bind(project)
        .fetch_one(pool)
        .await?);
        Ok((pending, done))
    }

    /// Delete results accepted before `before_unix` (any state). Returns how many went.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn purge_results(&self, before_unix: i64) -> Result<u64, Error> {
        let n = with_db!(self, |pool| sqlx::query(
            "DELETE FROM results WHERE created < $1"
        )
        .bind(before_unix)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(n)
    }

    /// Queue a usage record for the background writer (batched transactions, written within about
    /// 50 ms, on [`Store::flush_usage`] and on [`Store::close`]). Never waits: when the queue is
    /// full the record is dropped and counted ([`Store::usage_dropped`],
    /// `clave_gateway_usage_dropped_total`).
    pub fn record_usage_later(&self, r: UsageRecord) {
        self.usage.record(r);
    }

    /// Wait until every usage record queued through this store (or a clone) before the call is
    /// written.
    pub async fn flush_usage(&self) {
        self.usage.flush().await;
    }

    /// Usage records this store dropped: queue full, or a batch the database refused three times.
    pub fn usage_dropped(&self) -> u64 {
        self.usage.dropped()
    }

    /// Append a usage record now.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn record_usage(&self, r: &UsageRecord) -> Result<(), Error> {
        with_db!(self, |pool| sqlx::query(
            "INSERT INTO usage_records (project, function, version, outcome, duration_ms, \
             request_bytes, response_bytes, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )
        .bind(&r.project)
        .bind(&r.function)
        .bind(r.version)
        .bind(&r.outcome)
        .bind(r.duration_ms)
        .bind(r.request_bytes)
        .bind(r.response_bytes)
        .bind(r.created)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Usage records of a project, oldest first (at most `limit`). Writes the records queued
    /// through this store first, so it sees its own calls.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn usage(&self, project: &str, limit: i64) -> Result<Vec<UsageRecord>, Error> {
        self.flush_usage().await;
        type Row = (String, String, i64, String, i64, i64, i64, i64);
        let rows: Vec<Row> = with_db!(self, |pool| sqlx::query_as(
            "SELECT project, function, version, outcome, duration_ms, request_bytes, \
             response_bytes, created FROM usage_records WHERE project = $1 ORDER BY id LIMIT $2"
        )
        .bind(project)
        .bind(limit)
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(
                |(project, function, version, outcome, duration_ms, rq, rs, created)| UsageRecord {
                    project,
                    function,
                    version,
                    outcome,
                    duration_ms,
                    request_bytes: rq,
                    response_bytes: rs,
                    created,
                },
            )
            .collect())
    }
}

#[cfg(test)]
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

    #[test]
    fn artifact_cache_is_bounded_lru() {
        let b = bytes::Bytes::copy_from_slice;
        let mut c = ArtifactCache::new(2, 40);
        c.insert((1, 1), &b(b"m"), &b(b"aaaa"));
        c.insert((1, 2), &b(b"m"), &b(b"bbbb"));
        assert!(c.get((1, 1)).is_some());
        c.insert((2, 1), &b(b"m"), &b(b"cccc"));
        assert!(c.get((1, 2)).is_none(), "least recently used evicted");
        assert_eq!(c.entries.len(), 2);
        c.insert((3, 1), &b(b"m"), &b(&[0u8; 11]));
        assert!(c.get((3, 1)).is_none(), "larger than a quarter: not kept");
        c.insert((3, 2), &b(b""), &b(&[0u8; 10]));
        assert!(c.bytes <= 40);
        c.remove_function(3);
        assert!(c.get((3, 2)).is_none());
        assert_eq!(
            c.bytes,
            c.entries.values().map(CachedArtifact::size).sum::<usize>()
        );
        // Shared, not copied.
        let code = b(b"sealed");
        c.insert((4, 1), &b(b"m"), &code);
        assert_eq!(c.get((4, 1)).expect("cached").1.as_ptr(), code.as_ptr());
    }

    #[test]
    fn active_versions_live_exactly_as_long_as_the_change_stamp() {
        let mut c = ArtifactCache::new(8, 1 << 20);
        // Unknown stamp, no TTL: nothing is remembered.
        c.observe(None);
        let g = c.generation;
        c.remember_active(g, "p", "f", 1, 1);
        assert_eq!(c.active("p", "f"), None);
        // Known stamp: remembered until the stamp moves.
        c.observe(Some(5));
        let g = c.generation;
        c.remember_active(g, "p", "f", 1, 2);
        c.remember_active(g, "p", "g", 2, 7);
        assert_eq!(c.active("p", "f"), Some((1, 2)));
        assert_eq!(c.active("p", "g"), Some((2, 7)));
        assert_eq!(c.active("q", "f"), None);
        c.observe(Some(5));
        assert_eq!(c.active("p", "f"), Some((1, 2)));
        c.observe(Some(6));
        assert_eq!(c.active("p", "f"), None, "a moved stamp forgets everything");
        assert_eq!(c.active("p", "g"), None);
        // A lookup that started before the stamp moved is not remembered.
        c.remember_active(g, "p", "f", 1, 1);
        assert_eq!(c.active("p", "f"), None);
        // A local change forgets too.
        let g = c.generation;
        c.remember_active(g, "p", "f", 1, 3);
        c.invalidate_active();
        assert_eq!(c.active("p", "f"), None);
        // Losing the stamp forgets, and then only the TTL applies.
        let g = c.generation;
        c.remember_active(g, "p", "f", 1, 3);
        c.observe(None);
        assert_eq!(c.active("p", "f"), None);
        c.active_ttl = Duration::from_secs(60);
        let g = c.generation;
        c.remember_active(g, "p", "f", 1, 4);
        assert_eq!(c.active("p", "f"), Some((1, 4)));
        // Bounded: never more than four times the artifact entries.
        c.observe(Some(9));
        let g = c.generation;
        for i in 0..100 {
            c.remember_active(g, "p", &format!("f{i}"), i, 1);
            assert!(c.active_len <= 32);
        }
    }

    #[test]
    fn token_hash_is_sha256_hex() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
