//! Usage records: metadata of metered calls, never content.

use super::{Db, Store};
use crate::Error;
use crate::usage::BatchSink;

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

/// Inserts batches of usage rows for the background writer.
pub(super) struct UsageSink {
    pub(super) db: Db,
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

impl Store {
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
