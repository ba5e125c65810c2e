//! Projects and hashed deploy tokens.

use super::{Db, Store, check_name, now, token_hash};
use crate::Error;

impl Store {
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
        // The connection is back in the pool when this returns (`hand_back`): this is the
        // query of every authenticated request and of a `clave dev` restart, and a call right
        // after it would otherwise open a second SQLite connection.
        let row: Option<(String,)> = with_db!(self, |pool| {
            let mut conn = pool.acquire().await?;
            let row = sqlx::query_as(
                "SELECT p.name FROM deploy_tokens t JOIN projects p ON p.id = t.project_id \
                 WHERE t.token_hash = $1",
            )
            .bind(&hash)
            .fetch_optional(&mut *conn)
            .await;
            super::hand_back(conn).await;
            row?
        });
        Ok(row.map(|r| r.0))
    }
}
