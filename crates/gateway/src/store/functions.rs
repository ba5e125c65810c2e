//! Functions and their immutable versions: deploy, list, activate, roll back, delete, and the
//! dispatch lookups.

use std::time::Duration;

use clave_proto::gateway_api::{
    ActivateResponse, DeployResponse, FunctionDetail, FunctionList, FunctionSummary, VersionInfo,
};

use super::{Db, Store, check_name, is_retryable, now};
use crate::Error;

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
    /// The function's sealed secrets (its own and the project-wide ones), a
    /// `clave_proto::secret::SecretSet` encoding; empty when there are none.
    pub secrets: bytes::Bytes,
}

impl std::fmt::Debug for ActiveArtifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveArtifact")
            .field("version", &self.version)
            .field("manifest_len", &self.manifest.len())
            .field("sealed_code_len", &self.sealed_code.len())
            .field("secrets_len", &self.secrets.len())
            .finish()
    }
}

impl Store {
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
        self.after_change(self.try_deploy_tx(project, function, new, max_functions))
            .await
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
            notify_changes!(self, tx);
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
        let rows: Vec<Row> = with_db!(self, |pool| sqlx::query_as(
            "SELECT version, code_hash, manifest_bytes, sealed_code_bytes, limits, created, \
             manifest FROM versions WHERE function_id = $1 ORDER BY version"
        )
        .bind(fid)
        .fetch_all(pool)
        .await?);
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
        self.after_change(self.set_active_tx(project, function, target))
            .await
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
            notify_changes!(self, tx);
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
        self.after_change(self.delete_function_tx(project, function))
            .await
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
            notify_changes!(self, tx);
            tx.commit().await?;
            self.artifacts().remove_function(fid);
            Ok(true)
        })
    }

    /// The active version's manifest and sealed code, and the function's sealed secrets, for
    /// dispatch (secrets are remembered under the same rules as the active version, and every
    /// secret put or delete through any store moves the change stamp too).
    ///
    /// Which version is active comes from memory while the store can vouch that it learns of
    /// every change: over a SQLite file, every store over that file announces its changes in a
    /// file beside it (`<db>-clave-changes`, checked with one `fstat` of the open file per call); over PostgreSQL,
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
        let (remembered, secrets, generation) = {
            let mut cache = self.artifacts();
            cache.observe(stamp);
            (
                cache.active(project, function),
                cache.secrets(project, function),
                cache.generation,
            )
        };
        // Everything from memory: the path of nearly every call.
        let secrets = match (remembered, secrets) {
            (Some((fid, version)), Some(secrets)) => {
                let cached = self.artifacts().get((fid, version));
                match cached {
                    Some((manifest, sealed_code)) => {
                        return Ok(ActiveArtifact {
                            version,
                            manifest,
                            sealed_code,
                            secrets,
                        });
                    }
                    None => Some(secrets),
                }
            }
            (_, secrets) => secrets,
        };
        // What memory lacks is read on ONE connection, handed back before this returns
        // (`hand_back`): consecutive queries on the pool, or a call right after this one, would
        // otherwise open a second SQLite connection (~0.5 ms of schema parsing, on the first
        // call after a start).
        with_db!(self, |pool| {
            let mut conn = pool.acquire().await?;
            let found: Result<ActiveArtifact, Error> = async {
                let (fid, version) = match remembered {
                    Some(head) => head,
                    None => {
                        let head: Option<(i64, Option<i64>)> = sqlx::query_as(
                            "SELECT f.id, f.active_version FROM functions f JOIN projects p \
                             ON p.id = f.project_id WHERE p.name = $1 AND f.name = $2",
                        )
                        .bind(project)
                        .bind(function)
                        .fetch_optional(&mut *conn)
                        .await?;
                        let Some((fid, Some(version))) = head else {
                            return Err(Error::UnknownFunction);
                        };
                        self.artifacts()
                            .remember_active(generation, project, function, fid, version);
                        (fid, version)
                    }
                };
                let secrets = match secrets {
                    Some(s) => s,
                    None => {
                        let rows: Vec<super::secrets::SecretRow> =
                            sqlx::query_as(super::secrets::SECRET_SET_SQL)
                                .bind(project)
                                .bind(function)
                                .fetch_all(&mut *conn)
                                .await?;
                        let set = super::secrets::secret_set_from_rows(rows)?;
                        self.artifacts().remember_secrets(
                            generation,
                            project,
                            function,
                            set.clone(),
                        );
                        set
                    }
                };
                let cached = self.artifacts().get((fid, version));
                let (manifest, sealed_code) = match cached {
                    Some(bytes) => bytes,
                    None => {
                        let row: Option<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
                            "SELECT manifest, sealed_code FROM versions \
                             WHERE function_id = $1 AND version = $2",
                        )
                        .bind(fid)
                        .bind(version)
                        .fetch_optional(&mut *conn)
                        .await?;
                        // Gone in between: the function was deleted.
                        let (manifest, sealed_code) = row.ok_or(Error::UnknownFunction)?;
                        let (manifest, sealed_code) = (
                            bytes::Bytes::from(manifest),
                            bytes::Bytes::from(sealed_code),
                        );
                        self.artifacts()
                            .insert((fid, version), &manifest, &sealed_code);
                        (manifest, sealed_code)
                    }
                };
                Ok(ActiveArtifact {
                    version,
                    manifest,
                    sealed_code,
                    secrets,
                })
            }
            .await;
            super::hand_back(conn).await;
            found
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
            secrets: self.load_secret_set(project, function).await?,
        })
    }
}
