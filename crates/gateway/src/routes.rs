//! HTTP handlers. Order inside each handler: names → auth → content type → declared size → body (bounded)
//! → parse → storage/dispatch, so that nothing expensive happens for a request that will be refused.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{
    DefaultBodyLimit, FromRequest, FromRequestParts, RawPathParams, Request, State,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use clave_proto::gateway_api::{
    ActivateRequest, AsyncAccepted, AsyncPending, CreateTokenResponse, DEFAULT_PROJECT,
    DeployRequest, EngineList, EngineLogAccepted, EngineLogBatch, EngineRegisterRequest,
    EngineRegisterResponse, JobFlags, MAX_ENGINE_LOG_BATCH, MAX_ENGINE_LOG_BODY,
    MAX_SEALED_LOG_RECORD, ManifestMeta, OHTTP_KEYS_CONTENT_TYPE, OHTTP_REQUEST_CONTENT_TYPE,
    OHTTP_RESPONSE_CONTENT_TYPE, b64url_decoded_len_upper_bound, is_valid_result_id,
};

use crate::engine::{DispatchError, InvokeJob};
use crate::kds_proxy::{KeySource, KeySourceError};
use crate::queue::{QueuedCall, new_result_id};
use crate::store::{NewVersion, ResultState, UsageRecord, is_valid_name};
use crate::{ApiError, AppState, Error, metrics};

/// Body limit for routes that take small JSON bodies (activate, admin).
mod admin;
mod invoke;

use admin::{
    admin_create_project, admin_create_token, admin_deregister_engine, admin_engine_logs,
    admin_list_engines, admin_register_engine,
};
pub(crate) use invoke::dispatch_error;
use invoke::{async_result, invoke};

const SMALL_BODY: usize = 16 << 10;
/// Shortest possible RFC 9458 request: key id + KEM + KDF + AEAD ids, plus at least one byte.
const MIN_OHTTP_REQUEST: usize = 8;

pub(crate) fn router(state: AppState) -> Router {
    let limits = state.config().limits.clone();
    let deploy_limit = DefaultBodyLimit::max(limits.max_deploy_body_bytes());
    let invoke_limit = DefaultBodyLimit::max(limits.max_request_bytes);

    // Project-scoped routes; mounted both under /v1/projects/{project} and (default project) under /v1.
    let scoped = || {
        Router::<AppState>::new()
            .route("/functions", get(list_functions))
            .route(
                "/functions/{name}",
                put(deploy)
                    .get(function_detail)
                    .delete(delete_function)
                    .layer(deploy_limit),
            )
            .route("/functions/{name}/activate", post(activate))
            .route("/functions/{name}/rollback", post(rollback))
            .route("/functions/{name}/invoke", post(invoke).layer(invoke_limit))
            .route("/results/{id}", get(async_result))
            .merge(crate::devloop_routes::scoped())
    };

    key_routes(Router::new())
        .route("/v1/projects/{project}", put(admin_create_project))
        .route("/v1/projects/{project}/tokens", post(admin_create_token))
        .route("/v1/engines", get(admin_list_engines))
        .route("/v1/engines/register", post(admin_register_engine))
        .route("/v1/engines/deregister", post(admin_deregister_engine))
        .route(
            clave_proto::gateway_api::ENGINE_LOGS_PATH,
            post(admin_engine_logs).layer(DefaultBodyLimit::max(MAX_ENGINE_LOG_BODY)),
        )
        .nest("/v1/projects/{project}", scoped())
        .nest("/v1", scoped())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .fallback(|| async { ApiError::NotFound("no such route") })
        .layer(DefaultBodyLimit::max(SMALL_BODY))
        .with_state(state)
}

/// `{project}` (or the default project) from the path.
pub(crate) struct ProjectTarget {
    pub(crate) project: String,
}

/// `{project}` (or the default project) and `{name}` from the path.
struct FunctionTarget {
    project: String,
    name: String,
}

/// Path parameters of the matched route (none for routes without parameters).
async fn params<S: Send + Sync>(parts: &mut Parts, state: &S) -> Vec<(String, String)> {
    RawPathParams::from_request_parts(parts, state)
        .await
        .map(|p| {
            p.iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn param(params: &[(String, String)], key: &str) -> Option<String> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

fn project_from(params: &[(String, String)]) -> Result<String, ApiError> {
    let project = param(params, "project").unwrap_or_else(|| DEFAULT_PROJECT.to_owned());
    if is_valid_name(&project) {
        Ok(project)
    } else {
        Err(ApiError::BadRequest("invalid project name"))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ProjectTarget {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = params(parts, state).await;
        Ok(Self {
            project: project_from(&params)?,
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for FunctionTarget {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = params(parts, state).await;
        let project = project_from(&params)?;
        let name = param(&params, "name").unwrap_or_default();
        if !is_valid_name(&name) {
            return Err(ApiError::BadRequest("invalid function name"));
        }
        Ok(Self { project, name })
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty() && token.len() <= 256).then_some(token)
}

/// The request's deploy token must belong to `project`.
pub(crate) async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    project: &str,
) -> Result<(), ApiError> {
    let Some(token) = bearer(headers) else {
        return Err(ApiError::Unauthorized);
    };
    match state.store().project_for_token(token).await? {
        None => {
            tracing::info!(project, "rejected unknown deploy token");
            Err(ApiError::Unauthorized)
        }
        Some(owner) if owner == project => Ok(()),
        Some(owner) => {
            tracing::warn!(project, token_project = %owner, "deploy token used on another project");
            Err(ApiError::Forbidden)
        }
    }
}

fn authorize_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = bearer(headers) else {
        return Err(ApiError::Unauthorized);
    };
    if state.config().is_admin_token(token) {
        Ok(())
    } else {
        tracing::warn!("admin API called without the admin token");
        Err(ApiError::Forbidden)
    }
}

fn require_content_type(headers: &HeaderMap, expected: &'static str) -> Result<(), ApiError> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(expected));
    if ok {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType { expected })
    }
}

fn check_declared_length(headers: &HeaderMap, limit: usize) -> Result<(), ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > limit as u64 => Err(ApiError::PayloadTooLarge { limit }),
        _ => Ok(()),
    }
}

/// Read the body within the route's [`DefaultBodyLimit`].
async fn read_body(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    match Bytes::from_request(req, &()).await {
        Ok(b) => Ok(b),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(ApiError::PayloadTooLarge { limit })
        }
        Err(_) => Err(ApiError::BadRequest("could not read the request body")),
    }
}

fn upstream(e: KeySourceError) -> ApiError {
    tracing::warn!(error = %e, "key service request failed");
    ApiError::Upstream
}

/// The KDS material the gateway passes on: all that its key routes need (no database), so they
/// can answer while the rest of the gateway starts ([`key_router`]).
#[derive(Clone)]
pub(crate) struct Keys(pub(crate) Arc<dyn KeySource>);

impl axum::extract::FromRef<AppState> for Keys {
    fn from_ref(state: &AppState) -> Self {
        Self(state.inner.keys.clone())
    }
}

/// Paths of [`key_router`]'s routes.
pub(crate) const KEY_PATHS: [&str; 3] =
    ["/.well-known/ohttp-gateway", "/v1/keys", "/v1/attestation"];

/// The key routes alone (exactly as [`router`] serves them), for a gateway that is still
/// opening its database: clients verify the platform meanwhile.
pub(crate) fn key_router(keys: Arc<dyn KeySource>) -> Router {
    key_routes(Router::new())
        .layer(DefaultBodyLimit::max(SMALL_BODY))
        .with_state(Keys(keys))
}

fn key_routes<S>(router: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Keys: axum::extract::FromRef<S>,
{
    router
        .route(KEY_PATHS[0], get(ohttp_keys))
        .route(KEY_PATHS[1], get(key_bundles))
        .route(KEY_PATHS[2], get(attestation))
}

async fn ohttp_keys(State(Keys(keys)): State<Keys>) -> Result<Response, ApiError> {
    let body = keys.key_configs().await.map_err(upstream)?;
    Ok((
        [
            (header::CONTENT_TYPE, OHTTP_KEYS_CONTENT_TYPE),
            (header::CACHE_CONTROL, "max-age=60"),
        ],
        body,
    )
        .into_response())
}

async fn key_bundles(State(Keys(keys)): State<Keys>) -> Result<Response, ApiError> {
    let body = keys.bundles().await.map_err(upstream)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "max-age=60"),
        ],
        body,
    )
        .into_response())
}

fn valid_nonce(nonce: &str) -> bool {
    (16..=128).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

async fn attestation(
    State(Keys(keys)): State<Keys>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, ApiError> {
    let nonce = query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("nonce="))
        .filter(|n| valid_nonce(n))
        .ok_or(ApiError::BadRequest(
            "nonce must be 16-128 characters of [A-Za-z0-9_-]",
        ))?;
    let body = keys.attestation(nonce.to_owned()).await.map_err(upstream)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}

/// The manifest's code hash must be what `clave_proto::types::CodeHash` accepts (64 lowercase hex).
fn valid_code_hash(h: &str) -> bool {
    h.parse::<clave_proto::types::CodeHash>().is_ok()
}

async fn deploy(
    State(state): State<AppState>,
    target: FunctionTarget,
    req: Request,
) -> Result<Response, ApiError> {
    let result = deploy_inner(&state, &target, req).await;
    let outcome = if result.is_ok() { "ok" } else { "refused" };
    ::metrics::counter!(metrics::DEPLOYS, "outcome" => outcome).increment(1);
    result
}

async fn deploy_inner(
    state: &AppState,
    target: &FunctionTarget,
    req: Request,
) -> Result<Response, ApiError> {
    let limits = &state.config().limits;
    let body_limit = limits.max_deploy_body_bytes();
    authorize(state, req.headers(), &target.project).await?;
    require_content_type(req.headers(), "application/json")?;
    check_declared_length(req.headers(), body_limit)?;
    let body = read_body(req, body_limit).await?;
    let request: DeployRequest = serde_json::from_slice(&body)
        .map_err(|_| ApiError::BadRequest("body must be {manifest, sealed_code} JSON"))?;
    drop(body);
    // Bound the decoded sizes before decoding.
    if b64url_decoded_len_upper_bound(request.sealed_code.len()) > limits.max_sealed_code_bytes + 3
    {
        return Err(ApiError::PayloadTooLarge {
            limit: limits.max_sealed_code_bytes,
        });
    }
    if b64url_decoded_len_upper_bound(request.manifest.len()) > limits.max_manifest_bytes + 3 {
        return Err(ApiError::PayloadTooLarge {
            limit: limits.max_manifest_bytes,
        });
    }
    let (manifest, sealed_code) = request
        .decode()
        .map_err(|_| ApiError::BadRequest("manifest and sealed_code must be base64url"))?;
    if sealed_code.len() > limits.max_sealed_code_bytes {
        return Err(ApiError::PayloadTooLarge {
            limit: limits.max_sealed_code_bytes,
        });
    }
    if manifest.len() > limits.max_manifest_bytes {
        return Err(ApiError::PayloadTooLarge {
            limit: limits.max_manifest_bytes,
        });
    }
    if sealed_code.is_empty() {
        return Err(ApiError::BadRequest("sealed_code is empty"));
    }
    let meta: ManifestMeta = serde_json::from_slice(&manifest).map_err(|_| {
        ApiError::BadRequest("manifest must be JSON with name, code_hash and limits")
    })?;
    if meta.name != target.name {
        return Err(ApiError::BadRequest(
            "manifest name does not match the function name in the URL",
        ));
    }
    if !valid_code_hash(&meta.code_hash) {
        return Err(ApiError::BadRequest("manifest code_hash is malformed"));
    }
    let limits_json = serde_json::to_string(&meta.limits).unwrap_or_else(|_| "null".into());
    let new = NewVersion {
        manifest: &manifest,
        sealed_code: &sealed_code,
        code_hash: &meta.code_hash,
        limits_json: &limits_json,
        activate: request.activate.unwrap_or(true),
    };
    let deployed = state
        .store()
        .deploy(
            &target.project,
            &target.name,
            &new,
            limits.max_functions_per_project,
        )
        .await?;
    tracing::info!(
        project = %target.project,
        function = %target.name,
        version = deployed.version,
        sealed_code_bytes = sealed_code.len(),
        "deployed new version"
    );
    Ok((StatusCode::CREATED, axum::Json(deployed)).into_response())
}

async fn list_functions(
    State(state): State<AppState>,
    target: ProjectTarget,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, &target.project).await?;
    let list = state.store().list_functions(&target.project).await?;
    Ok(axum::Json(list).into_response())
}

async fn function_detail(
    State(state): State<AppState>,
    target: FunctionTarget,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, &target.project).await?;
    let detail = state
        .store()
        .function(&target.project, &target.name)
        .await?;
    Ok(axum::Json(detail).into_response())
}

async fn activate(
    State(state): State<AppState>,
    target: FunctionTarget,
    req: Request,
) -> Result<Response, ApiError> {
    authorize(&state, req.headers(), &target.project).await?;
    require_content_type(req.headers(), "application/json")?;
    check_declared_length(req.headers(), SMALL_BODY)?;
    let body = read_body(req, SMALL_BODY).await?;
    let request: ActivateRequest = serde_json::from_slice(&body)
        .map_err(|_| ApiError::BadRequest("body must be {\"version\": n}"))?;
    let done = state
        .store()
        .activate(&target.project, &target.name, request.version)
        .await?;
    tracing::info!(project = %target.project, function = %target.name, version = done.active_version, "activated");
    Ok(axum::Json(done).into_response())
}

async fn rollback(
    State(state): State<AppState>,
    target: FunctionTarget,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, &target.project).await?;
    let done = state
        .store()
        .rollback(&target.project, &target.name)
        .await?;
    tracing::info!(project = %target.project, function = %target.name, version = done.active_version, "rolled back");
    Ok(axum::Json(done).into_response())
}

async fn delete_function(
    State(state): State<AppState>,
    target: FunctionTarget,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, &target.project).await?;
    if state
        .store()
        .delete_function(&target.project, &target.name)
        .await?
    {
        tracing::info!(project = %target.project, function = %target.name, "deleted");
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::NotFound("unknown function"))
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    let retry_after = state.config().dispatch.retry_after;
    if state.dispatcher().stats().closed {
        return Err(ApiError::Unavailable { retry_after });
    }
    if !state.store().ping().await {
        tracing::warn!("readyz: database unreachable");
        return Err(ApiError::Unavailable { retry_after });
    }
    if !state.dispatcher().engine().ready().await {
        tracing::warn!("readyz: engine pool not ready");
        return Err(ApiError::Unavailable { retry_after });
    }
    Ok("ready")
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    let handle = &state.inner.metrics;
    handle.run_upkeep();
    let stats = state.dispatcher().stats();
    ::metrics::gauge!(metrics::QUEUE_DEPTH).set(stats.queued as f64);
    ::metrics::gauge!(metrics::ENGINE_IN_USE).set(stats.running as f64);
    if let Some(pool) = state.dispatcher().engine().as_pool() {
        ::metrics::gauge!(metrics::ENGINES_HEALTHY).set(pool.healthy_count() as f64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}
