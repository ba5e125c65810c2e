//! Sealed secrets: ciphertext the developer's client sealed to the attested code key, stored per
//! project (project-wide, `function = ''`) or per function, with a version that only grows.
//! Dispatch reads the sealed set of a function from memory while the store can vouch that it
//! learns of every change (the same change stamp as the active versions; see
//! [`Store::active_artifact`]).

use clave_proto::secret::{MAX_SECRETS, SealedSecret, SecretSet};

use super::{Db, Store, check_name, now};
use crate::Error;

/// A secret as listed: never its value (the store does not have it), not even its ciphertext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretInfo {
    /// The function it belongs to, `None` for project-wide.
    pub function: Option<String>,
    /// Its name.
    pub name: String,
    /// Current version (for a deleted secret, the last one it had).
    pub version: i64,
    /// Unix seconds of the last change.
    pub updated: i64,
    /// Whether it was deleted (no value is stored).
    pub deleted: bool,
}

/// A secret to store (already decoded and size-checked by the caller).
#[derive(Clone, PartialEq, Eq)]
pub struct NewSecret<'a> {
    /// Project.
    pub project: &'a str,
    /// Function, `None` for project-wide.
    pub function: Option<&'a str>,
    /// Name.
    pub name: &'a str,
    /// The version it was sealed for: exactly one more than the stored one (1 for a new name).
    pub version: i64,
    /// The sealed value (opaque).
    pub sealed: &'a [u8],
}

impl std::fmt::Debug for NewSecret<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecret")
            .field("project", &self.project)
            .field("function", &self.function)
            .field("name", &self.name)
            .field("version", &self.version)
            .field("sealed_len", &self.sealed.len())
            .finish()
    }
}

type Row = (String, String, i64, i64, bool);

fn info((function, name, version, updated, deleted): Row) -> SecretInfo {
    SecretInfo {
        function: (!function.is_empty()).then_some(function),
        name,
        version,
        updated,
        deleted,
    }
}

impl Store {
    /// Store a new version of a secret. Refuses a version that is not the stored one plus one
    /// ([`Error::SecretVersion`]): the client seals the version number into the ciphertext.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::UnknownProject`], [`Error::SecretVersion`],
    /// [`Error::SecretLimit`], [`Error::Database`].
    pub async fn put_secret(&self, new: &NewSecret<'_>) -> Result<(), Error> {
        check_name(new.project)?;
        if let Some(f) = new.function {
            check_name(f)?;
        }
        if !clave_proto::secret::is_valid_secret_name(new.name) {
            return Err(Error::InvalidSecretName);
        }
        self.after_change(self.put_secret_tx(new)).await
    }

    async fn put_secret_tx(&self, new: &NewSecret<'_>) -> Result<(), Error> {
        let function = new.function.unwrap_or("");
        let at = now();
        with_db!(self, |pool, begin| {
            let mut tx = pool.begin_with(begin).await?;
            let project: Option<(i64,)> = sqlx::query_as("SELECT id FROM projects WHERE name = $1")
                .bind(new.project)
                .fetch_optional(&mut *tx)
                .await?;
            if project.is_none() {
                return Err(Error::UnknownProject);
            }
            let current: Option<(i64,)> = sqlx::query_as(
                "SELECT version FROM secrets WHERE project = $1 AND function = $2 AND name = $3",
            )
            .bind(new.project)
            .bind(function)
            .bind(new.name)
            .fetch_optional(&mut *tx)
            .await?;
            let expected = current.map_or(1, |(v,)| v + 1);
            if new.version != expected {
                return Err(Error::SecretVersion { expected });
            }
            if current.is_none() {
                let (count,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM secrets WHERE project = $1 AND function = $2",
                )
                .bind(new.project)
                .bind(function)
                .fetch_one(&mut *tx)
                .await?;
                if count >= MAX_SECRETS as i64 / 2 {
                    return Err(Error::SecretLimit {
                        limit: MAX_SECRETS / 2,
                    });
                }
            }
            sqlx::query(
                "INSERT INTO secrets (project, function, name, version, sealed, updated) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (project, function, name) \
                 DO UPDATE SET version = excluded.version, sealed = excluded.sealed, \
                 updated = excluded.updated",
            )
            .bind(new.project)
            .bind(function)
            .bind(new.name)
            .bind(new.version)
            .bind(new.sealed)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            notify_changes!(self, tx);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Delete a secret's value (its version number is kept). Returns `false` if there was none.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn delete_secret(
        &self,
        project: &str,
        function: Option<&str>,
        name: &str,
    ) -> Result<bool, Error> {
        let at = now();
        self.after_change(async {
            with_db!(self, |pool, begin| {
                let mut tx = pool.begin_with(begin).await?;
                let n = sqlx::query(
                    "UPDATE secrets SET sealed = NULL, updated = $4 \
                     WHERE project = $1 AND function = $2 AND name = $3 AND sealed IS NOT NULL",
                )
                .bind(project)
                .bind(function.unwrap_or(""))
                .bind(name)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                notify_changes!(self, tx);
                tx.commit().await?;
                Ok::<_, Error>(n == 1)
            })
        })
        .await
    }

    /// Secrets of a project (names, versions, times; never values), by function then name.
    /// Deleted ones are included only with `deleted`.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn list_secrets(
        &self,
        project: &str,
        deleted: bool,
    ) -> Result<Vec<SecretInfo>, Error> {
        let rows: Vec<Row> = with_db!(self, |pool| sqlx::query_as(
            "SELECT function, name, version, updated, sealed IS NULL FROM secrets \
             WHERE project = $1 ORDER BY function, name"
        )
        .bind(project)
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(info)
            .filter(|s| deleted || !s.deleted)
            .collect())
    }

    /// The sealed secrets a call of `project/function` gets: its own and the project-wide ones,
    /// encoded as a [`SecretSet`] (empty when there are none).
    pub(super) async fn load_secret_set(
        &self,
        project: &str,
        function: &str,
    ) -> Result<bytes::Bytes, Error> {
        let rows: Vec<SecretRow> = with_db!(self, |pool| sqlx::query_as(SECRET_SET_SQL)
            .bind(project)
            .bind(function)
            .fetch_all(pool)
            .await?);
        secret_set_from_rows(rows)
    }
}

/// The sealed secrets a call of function `$2` in project `$1` gets: its own and the project-wide
/// ones (bound as `project`, `function`; rows are [`SecretRow`]), in a fixed order (which ones
/// `MAX_SECRETS` keeps, and the encoded bytes, do not depend on the query plan).
pub(super) const SECRET_SET_SQL: &str = "SELECT function, name, version, sealed FROM secrets \
     WHERE project = $1 AND (function = $2 OR function = '') AND sealed IS NOT NULL \
     ORDER BY function, name";

/// A row of [`SECRET_SET_SQL`]: function ('' for project-wide), name, version, sealed value.
pub(super) type SecretRow = (String, String, i64, Vec<u8>);

/// The [`SecretSet`] encoding of [`SECRET_SET_SQL`]'s rows (empty when there are none).
pub(super) fn secret_set_from_rows(rows: Vec<SecretRow>) -> Result<bytes::Bytes, Error> {
    if rows.is_empty() {
        return Ok(bytes::Bytes::new());
    }
    let set = SecretSet {
        secrets: rows
            .into_iter()
            .take(MAX_SECRETS)
            .map(|(f, name, version, sealed)| SealedSecret {
                function_scoped: !f.is_empty(),
                name,
                version: u64::try_from(version).unwrap_or(0),
                sealed,
            })
            .collect(),
    };
    set.encode()
        .map(bytes::Bytes::from)
        .map_err(|_| Error::InvalidSecretName)
}
