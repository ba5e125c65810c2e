//! HTTP handlers. Order inside each handler: names → auth → content type → declared size → body (bounded)
//! → parse → storage/dispatch, so that nothing expensive happens for a request that will be refused.

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
    DeployRequest, EngineList, EngineRegisterRequest, EngineRegisterResponse, JobFlags,
    ManifestMeta, OHTTP_KEYS_CONTENT_TYPE, OHTTP_REQUEST_CONTENT_TYPE, OHTTP_RESPONSE_CONTENT_TYPE,
    b64url_decoded_len_upper_bound, is_valid_result_id,
};

use crate::engine::{DispatchError, InvokeJob};
use crate::kds_proxy::KeySourceError;
use crate::queue::{QueuedCall, new_result_id};
use crate::store::{NewVersion, ResultState, UsageRecord, is_valid_name};
use crate::{ApiError, AppState, Error, metrics};

/// Body limit for routes that take small JSON bodies (activate, admin).
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

    Router::new()
        .route("/.well-known/ohttp-gateway", get(ohttp_keys))
        .route("/v1/keys", get(key_bundles))
        .route("/v1/attestation", get(attestation))
        .route("/v1/projects/{project}", put(admin_create_project))
        .route("/v1/projects/{project}/tokens", post(admin_create_token))
        .route("/v1/engines", get(admin_list_engines))
        .route("/v1/engines/register", post(admin_register_engine))
        .route("/v1/engines/deregister", post(admin_deregister_engine))
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

async fn ohttp_keys(State(state): State<AppState>) -> Result<Response, ApiError> {
    let body = state.inner.keys.key_configs().await.map_err(upstream)?;
    Ok((
        [
            (header::CONTENT_TYPE, OHTTP_KEYS_CONTENT_TYPE),
            (header::CACHE_CONTROL, "max-age=60"),
        ],
        body,
    )
        .into_response())
}

async fn key_bundles(State(state): State<AppState>) -> Result<Response, ApiError> {
    let body = state.inner.keys.bundles().await.map_err(upstream)?;
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
    State(state): State<AppState>,
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
    let body = state
        .inner
        .keys
        .attestation(nonce.to_owned())
        .await
        .map_err(upstream)?;
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

pub(crate) fn dispatch_error(state: &AppState, e: &DispatchError) -> ApiError {
    let retry_after = state.config().dispatch.retry_after;
    match e {
        DispatchError::Rejected => ApiError::EnvelopeRejected,
        DispatchError::Overloaded { retry_after: r } => ApiError::Overloaded {
            retry_after: r.unwrap_or(retry_after),
        },
        DispatchError::Timeout => ApiError::Timeout,
        DispatchError::Unavailable => ApiError::Unavailable { retry_after },
        DispatchError::Failed { reason } => {
            tracing::warn!(%reason, "engine failed");
            ApiError::EngineFailed
        }
        // DispatchError is non_exhaustive for downstream crates only; keep a safe default.
        #[allow(unreachable_patterns)]
        _ => ApiError::EngineFailed,
    }
}

/// `?mode=sync` (default) or `?mode=async`; other parameters are ignored, a repeated or unknown mode is
/// refused.
fn async_mode(query: Option<&str>) -> Result<bool, ApiError> {
    let mut modes = query
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.strip_prefix("mode="));
    let mode = modes.next();
    if modes.next().is_some() {
        return Err(ApiError::BadRequest("mode may be given once"));
    }
    match mode {
        None | Some("sync") => Ok(false),
        Some("async") => Ok(true),
        Some(_) => Err(ApiError::BadRequest("mode must be sync or async")),
    }
}

async fn invoke(
    State(state): State<AppState>,
    target: FunctionTarget,
    req: Request,
) -> Result<Response, ApiError> {
    let limit = state.config().limits.max_request_bytes;
    let is_async = async_mode(req.uri().query())?;
    if is_async && state.queue().is_none() {
        return Err(ApiError::NotEnabled(
            "asynchronous invocation is not enabled on this gateway",
        ));
    }
    // INSECURE benchmark path (`GatewayConfig::insecure_plaintext_bench`): a plain BHTTP request.
    let plaintext = !is_async
        && state.config().insecure_plaintext_bench
        && require_content_type(req.headers(), "message/bhttp").is_ok();
    if !plaintext {
        require_content_type(req.headers(), OHTTP_REQUEST_CONTENT_TYPE)?;
    }
    check_declared_length(req.headers(), limit)?;
    let body = read_body(req, limit).await?;
    if body.len() < MIN_OHTTP_REQUEST {
        return Err(ApiError::BadRequest("encapsulated request is truncated"));
    }
    if is_async {
        return invoke_async(&state, &target, body.to_vec()).await;
    }
    let artifact = match state
        .store()
        .active_artifact(&target.project, &target.name)
        .await
    {
        Ok(a) => a,
        Err(Error::UnknownFunction) => {
            ::metrics::counter!(metrics::INVOCATIONS, "outcome" => "not_found").increment(1);
            return Err(ApiError::NotFound("unknown function"));
        }
        Err(e) => return Err(e.into()),
    };
    let request_bytes = body.len();
    let version = artifact.version;
    let job = InvokeJob {
        project: target.project.clone(),
        function: target.name.clone(),
        version,
        manifest: artifact.manifest,
        sealed_code: artifact.sealed_code,
        secrets: artifact.secrets,
        // The received buffer itself: no copy on the way to an in-process engine.
        request: body,
        flags: if plaintext {
            JobFlags::INSECURE_PLAINTEXT_BENCH
        } else {
            JobFlags::NONE
        },
    };
    let started = Instant::now();
    let result = state.dispatcher().dispatch(job).await;
    let elapsed = started.elapsed();
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.outcome(),
    };
    ::metrics::counter!(metrics::INVOCATIONS, "outcome" => outcome).increment(1);
    ::metrics::histogram!(metrics::INVOKE_DURATION).record(elapsed.as_secs_f64());
    let record = UsageRecord {
        project: target.project.clone(),
        function: target.name.clone(),
        version,
        outcome: outcome.to_owned(),
        duration_ms: i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
        request_bytes: i64::try_from(request_bytes).unwrap_or(i64::MAX),
        response_bytes: result
            .as_ref()
            .map_or(0, |r| i64::try_from(r.len()).unwrap_or(i64::MAX)),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
    };
    tracing::debug!(
        project = %target.project,
        function = %target.name,
        version,
        outcome,
        request_bytes,
        elapsed_ms = record.duration_ms,
        "invocation"
    );
    // Off the request path: batched by the store's background writer.
    state.store().record_usage_later(record);
    match result {
        Ok(response) => Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(if plaintext {
                    "message/bhttp"
                } else {
                    OHTTP_RESPONSE_CONTENT_TYPE
                }),
            )],
            response,
        )
            .into_response()),
        Err(e) => Err(dispatch_error(&state, &e)),
    }
}

async fn invoke_async(
    state: &AppState,
    target: &FunctionTarget,
    request: Vec<u8>,
) -> Result<Response, ApiError> {
    let Some(queue) = state.queue() else {
        return Err(ApiError::NotEnabled(
            "asynchronous invocation is not enabled on this gateway",
        ));
    };
    let version = match state
        .store()
        .active_version(&target.project, &target.name)
        .await
    {
        Ok(v) => v,
        Err(Error::UnknownFunction) => {
            ::metrics::counter!(metrics::INVOCATIONS, "outcome" => "not_found").increment(1);
            return Err(ApiError::NotFound("unknown function"));
        }
        Err(e) => return Err(e.into()),
    };
    let call = QueuedCall {
        id: new_result_id()?,
        project: target.project.clone(),
        function: target.name.clone(),
        version,
        request,
    };
    let id = call.id_hex();
    if !state
        .store()
        .create_result(&id, &call.project, &call.function, version)
        .await?
    {
        // 128 random bits collided: a broken random generator.
        return Err(Error::Random.into());
    }
    if let Err(e) = queue.publish(&call).await {
        tracing::warn!(error = %e, source = ?std::error::Error::source(&e), "could not queue an asynchronous call");
        if let Err(e) = state.store().delete_pending_result(&id).await {
            tracing::warn!(error = %e, "could not forget the unqueued call");
        }
        return Err(ApiError::Unavailable {
            retry_after: state.config().dispatch.retry_after,
        });
    }
    ::metrics::counter!(metrics::ASYNC_ACCEPTED).increment(1);
    let result_url = if target.project == DEFAULT_PROJECT {
        format!("/v1/results/{id}")
    } else {
        format!("/v1/projects/{}/results/{id}", target.project)
    };
    tracing::debug!(project = %target.project, function = %target.name, version, "queued an asynchronous call");
    let mut resp = (
        StatusCode::ACCEPTED,
        axum::Json(AsyncAccepted {
            id,
            result_url: result_url.clone(),
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&result_url) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

async fn async_result(
    State(state): State<AppState>,
    target: ProjectTarget,
    axum::extract::Path(params): axum::extract::Path<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    if state.queue().is_none() {
        return Err(ApiError::NotEnabled(
            "asynchronous invocation is not enabled on this gateway",
        ));
    }
    let id = param(&params, "id").unwrap_or_default();
    if !is_valid_result_id(&id) {
        return Err(ApiError::BadRequest(
            "a result id is 32 lowercase hex characters",
        ));
    }
    let found = state.store().result(&id).await?;
    let Some(result) = found.filter(|r| r.project == target.project) else {
        return Err(ApiError::NotFound("unknown result"));
    };
    match result.state {
        ResultState::Done(response) => Ok((
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(OHTTP_RESPONSE_CONTENT_TYPE),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            response,
        )
            .into_response()),
        ResultState::Failed(problem) => {
            let status =
                StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = serde_json::to_vec(&problem).unwrap_or_default();
            Ok((
                status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(clave_proto::gateway_api::PROBLEM_CONTENT_TYPE),
                )],
                body,
            )
                .into_response())
        }
        _ => Ok((
            StatusCode::ACCEPTED,
            [
                (header::RETRY_AFTER, HeaderValue::from_static("1")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            axum::Json(AsyncPending {
                id,
                status: "pending".into(),
            }),
        )
            .into_response()),
    }
}

fn engine_pool(state: &AppState) -> Result<&crate::EnginePool, ApiError> {
    state
        .dispatcher()
        .engine()
        .as_pool()
        .ok_or(ApiError::NotEnabled(
            "this gateway runs engines in-process; there is no pool to register with",
        ))
}

async fn read_register_request(req: Request) -> Result<EngineRegisterRequest, ApiError> {
    require_content_type(req.headers(), "application/json")?;
    check_declared_length(req.headers(), SMALL_BODY)?;
    let body = read_body(req, SMALL_BODY).await?;
    serde_json::from_slice(&body)
        .map_err(|_| ApiError::BadRequest("body must be {\"url\": \"http(s)://host:port\"}"))
}

async fn admin_register_engine(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    authorize_admin(&state, req.headers())?;
    let pool = engine_pool(&state)?;
    let request = read_register_request(req).await?;
    let url = crate::normalize_engine_url(&request.url)?;
    let ttl = pool.register(&url).await?;
    let healthy = pool.engines().iter().any(|e| e.url == url && e.healthy);
    ::metrics::gauge!(metrics::ENGINES_HEALTHY).set(pool.healthy_count() as f64);
    Ok(axum::Json(EngineRegisterResponse {
        url,
        ttl_secs: ttl.as_secs().max(1),
        healthy,
    })
    .into_response())
}

async fn admin_deregister_engine(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    authorize_admin(&state, req.headers())?;
    let pool = engine_pool(&state)?;
    let request = read_register_request(req).await?;
    if pool.deregister(&request.url) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::NotFound("no such registered engine"))
    }
}

async fn admin_list_engines(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize_admin(&state, &headers)?;
    let pool = engine_pool(&state)?;
    Ok(axum::Json(EngineList {
        engines: pool.engines(),
    })
    .into_response())
}

async fn admin_create_project(
    State(state): State<AppState>,
    target: ProjectTarget,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize_admin(&state, &headers)?;
    let created = state.store().create_project(&target.project).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        axum::Json(serde_json::json!({ "project": target.project })),
    )
        .into_response())
}

async fn admin_create_token(
    State(state): State<AppState>,
    target: ProjectTarget,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize_admin(&state, &headers)?;
    state.store().create_project(&target.project).await?;
    let token = state.store().create_token(&target.project).await?;
    tracing::info!(project = %target.project, "created deploy token");
    Ok((
        StatusCode::CREATED,
        axum::Json(CreateTokenResponse {
            project: target.project,
            token,
        }),
    )
        .into_response())
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
