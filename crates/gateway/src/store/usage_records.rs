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

/// Most rows per `INSERT` statement of a batch (8 parameters each: far below SQLite's and
/// PostgreSQL's limits). One statement per chunk, not per row: each statement is a round trip to
/// the database (for SQLite, to sqlx's worker thread and back).
const USAGE_ROWS_PER_STATEMENT: usize = 128;

/// Splits `rows` rows into statement sizes that are powers of two (largest first, at most
/// [`USAGE_ROWS_PER_STATEMENT`]): a batch takes at most one statement per set bit of its size, and
/// there are only eight statement texts, which the connection prepares once and keeps. With one
/// text per batch size, nearly every batch was a new text: SQLite parsed and planned a
/// statement of up to 1 024 parameters each time, ~10 k instructions per recorded call.
fn statement_sizes(rows: usize) -> impl Iterator<Item = usize> {
    let mut left = rows;
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let n = if left >= USAGE_ROWS_PER_STATEMENT {
            USAGE_ROWS_PER_STATEMENT
        } else {
            1 << left.ilog2()
        };
        left -= n;
        Some(n)
    })
}

impl UsageSink {
    async fn insert(&self, batch: &[UsageRecord]) -> Result<(), Error> {
        with_db!(self, |pool, begin| {
            let mut tx = pool.begin_with(begin).await?;
            let mut rest = batch;
            for n in statement_sizes(batch.len()) {
                let (chunk, tail) = rest.split_at(n);
                rest = tail;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_sizes_cover_a_batch_with_few_distinct_statements() {
        let mut texts = std::collections::BTreeSet::new();
        for rows in 0..=600 {
            let sizes: Vec<usize> = statement_sizes(rows).collect();
            assert_eq!(sizes.iter().sum::<usize>(), rows, "{rows}");
            assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{rows}: {sizes:?}");
            assert!(
                sizes
                    .iter()
                    .all(|n| n.is_power_of_two() && *n <= USAGE_ROWS_PER_STATEMENT),
                "{rows}: {sizes:?}"
            );
            // At most one statement per set bit below the cap, plus the full ones.
            let full = rows / USAGE_ROWS_PER_STATEMENT;
            let bits = (rows % USAGE_ROWS_PER_STATEMENT).count_ones() as usize;
            assert_eq!(sizes.len(), full + bits, "{rows}: {sizes:?}");
            texts.extend(sizes);
        }
        assert_eq!(texts.len(), 8, "{texts:?}");
    }
}
