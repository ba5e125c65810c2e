//! HTTP handlers of the developer loop: sealed secrets, the developer log key, sealed logs (the
//! table of routes is in `clave_proto::devloop_api`). Every route needs the project's deploy
//! token; every body holds ciphertext or metadata only.

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use clave_proto::devlog::LogPublicKey;
use clave_proto::devloop_api::{
    LogEntryJson, LogKeyBody, LogPage, PutSecretRequest, SecretEntry, SecretList,
};
use clave_proto::secret::{MAX_SECRET_VALUE, is_valid_secret_name};
use serde::Deserialize;

use crate::routes::{ProjectTarget, authorize};
use crate::store::{LogQuery, NewSecret, SecretInfo, is_valid_name};
use crate::{ApiError, AppState};

/// Longest long poll of `GET /logs?wait=`.
const MAX_WAIT_SECS: u64 = 30;
/// Largest sealed secret accepted (the value limit plus the envelope).
const MAX_SEALED_SECRET: usize = MAX_SECRET_VALUE + 256;

/// The project-scoped routes (mounted next to `/functions`).
pub(crate) fn scoped() -> Router<AppState> {
    Router::new()
        .route("/secrets", get(list_secrets))
        .route(
            "/secrets/{secret}",
            get(get_secret)
                .put(put_secret)
                .delete(delete_secret)
                .layer(DefaultBodyLimit::max(2 * MAX_SEALED_SECRET)),
        )
        .route("/log-key", put(put_log_key).get(get_log_key))
        .route("/logs", get(read_logs))
}

fn entry(s: SecretInfo) -> SecretEntry {
    SecretEntry {
        function: s.function,
        name: s.name,
        version: s.version,
        updated: s.updated,
        deleted: s.deleted,
    }
}

fn secret_name(params: &[(String, String)]) -> Result<String, ApiError> {
    let name = params
        .iter()
        .find(|(k, _)| k == "secret")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    if is_valid_secret_name(&name) {
        Ok(name)
    } else {
        Err(ApiError::BadRequest(
            "invalid secret name: 1 to 64 characters of A-Z, a-z, 0-9 and _, not starting with a digit",
        ))
    }
}

fn function_param(function: Option<&str>) -> Result<Option<&str>, ApiError> {
    match function {
        None | Some("") => Ok(None),
        Some(f) if is_valid_name(f) => Ok(Some(f)),
        Some(_) => Err(ApiError::BadRequest("invalid function name")),
    }
}

#[derive(Debug, Default, Deserialize)]
struct FunctionQuery {
    function: Option<String>,
    #[serde(default)]
    deleted: Option<String>,
}

async fn list_secrets(
    State(state): State<AppState>,
    target: ProjectTarget,
    headers: HeaderMap,
    Query(q): Query<FunctionQuery>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, &target.project).await?;
    let all = state
        .store()
        .list_secrets(&target.project, q.deleted.is_some())
        .await?;
    Ok(axum::Json(SecretList {
        project: target.project,
        secrets: all.into_iter().map(entry).collect(),
    })
    .into_response())
}

async fn get_secret(
    State(state): State<AppState>,
    target: ProjectTarget,
    headers: HeaderMap,
    params: SecretPath,
    Query(q): Query<FunctionQuery>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, &target.project).await?;
    let function = function_param(q.function.as_deref())?;
    let found = state
        .store()
        .list_secrets(&target.project, true)
        .await?
        .into_iter()
        .find(|s| s.name == params.0 && s.function.as_deref() == function);
    let e = found.map_or_else(
        || SecretEntry {
            function: function.map(str::to_owned),
            name: params.0.clone(),
            version: 0,
            updated: 0,
            deleted: false,
        },
        entry,
    );
    Ok(axum::Json(e).into_response())
}

/// The `{secret}` path parameter, validated.
struct SecretPath(String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for SecretPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let params = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map(|p| {
                p.iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        secret_name(&params).map(Self)
    }
}

async fn put_secret(
    State(state): State<AppState>,
    target: ProjectTarget,
    name: SecretPath,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, &target.project).await?;
    let req: PutSecretRequest = serde_json::from_slice(&body)
        .map_err(|_| ApiError::BadRequest("the body is not a secret put request"))?;
    let function = function_param(req.function.as_deref())?;
    if req.sealed.len() > MAX_SEALED_SECRET {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_SEALED_SECRET,
        });
    }
    // Structure only: the gateway cannot (and does not try to) open it.
    if req.sealed.len() < 7 + 32 + 16 {
        return Err(ApiError::BadRequest("the sealed secret is too short"));
    }
    if req.version < 1 {
        return Err(ApiError::BadRequest("the version must be at least 1"));
    }
    state
        .store()
        .put_secret(&NewSecret {
            project: &target.project,
            function,
            name: &name.0,
            version: req.version,
            sealed: &req.sealed,
        })
        .await?;
    tracing::info!(project = %target.project, secret = %name.0, version = req.version, "secret stored (sealed)");
    Ok(axum::Json(SecretEntry {
        function: function.map(str::to_owned),
        name: name.0,
        version: req.version,
        updated: 0,
        deleted: false,
    })
    .into_response())
}

async fn delete_secret(
    State(state): State<AppState>,
    target: ProjectTarget,
    name: SecretPath,
    headers: HeaderMap,
    Query(q): Query<FunctionQuery>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, &target.project).await?;
    let function = function_param(q.function.as_deref())?;
    if state
        .store()
        .delete_secret(&target.project, function, &name.0)
        .await?
    {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::NotFound("unknown secret"))
    }
}

async fn put_log_key(
    State(state): State<AppState>,
    target: ProjectTarget,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, &target.project).await?;
    let req: LogKeyBody = serde_json::from_slice(&body)
        .map_err(|_| ApiError::BadRequest("the body is not a log key"))?;
    let key = LogPublicKey::from_hex(&req.public_key)
        .ok()
        .filter(|k| k.validate().is_ok() && req.public_key == k.to_hex())
        .ok_or(ApiError::BadRequest(
            "public_key must be an X25519 public key in 64 lowercase hex digits",
        ))?;
    state
        .store()
        .set_log_key(&target.project, &key.to_hex())
        .await?;
    Ok(axum::Json(LogKeyBody {
        public_key: key.to_hex(),
    })
    .into_response())
}

async fn get_log_key(
    State(state): State<AppState>,
    target: ProjectTarget,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, &target.project).await?;
    match state.store().log_key(&target.project).await? {
        Some(public_key) => Ok(axum::Json(LogKeyBody { public_key }).into_response()),
        None => Err(ApiError::NotFound("no developer log key is registered")),
    }
}

#[derive(Debug, Default, Deserialize)]
struct LogsQuery {
    function: Option<String>,
    after: Option<i64>,
    since: Option<i64>,
    limit: Option<i64>,
    wait: Option<u64>,
}

async fn read_logs(
    State(state): State<AppState>,
    target: ProjectTarget,
    headers: HeaderMap,
    Query(q): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, &target.project).await?;
    let function = function_param(q.function.as_deref())?.map(str::to_owned);
    let query = LogQuery {
        function,
        after: q.after.unwrap_or(0),
        since: q.since.unwrap_or(0),
        limit: q.limit.unwrap_or(100),
    };
    let wait = Duration::from_secs(q.wait.unwrap_or(0).min(MAX_WAIT_SECS));
    let deadline = tokio::time::Instant::now() + wait;
    let entries = loop {
        let entries = state.store().logs(&target.project, &query).await?;
        let now = tokio::time::Instant::now();
        if !entries.is_empty() || now >= deadline {
            break entries;
        }
        // Woken by an append through this gateway; records stored through another gateway
        // over the same database are seen within a second.
        state
            .store()
            .wait_for_logs((deadline - now).min(Duration::from_secs(1)))
            .await;
    };
    let next = entries.last().map_or(query.after, |e| e.id);
    Ok(axum::Json(LogPage {
        entries: entries
            .into_iter()
            .map(|e| LogEntryJson {
                id: e.id,
                function: e.function,
                created: e.created,
                sealed: e.sealed,
            })
            .collect(),
        next,
    })
    .into_response())
}
