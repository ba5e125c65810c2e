//! Results of asynchronous calls (sealed responses or gateway-visible problems).

use clave_proto::gateway_api::Problem;

use super::{Db, Store, now};
use crate::Error;

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

impl Store {
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
}
