//! The admin endpoints (admin token): engine registration, projects and deploy tokens.

use super::*;

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

pub(super) async fn admin_register_engine(
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

pub(super) async fn admin_deregister_engine(
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

pub(super) async fn admin_list_engines(
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

pub(super) async fn admin_create_project(
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

pub(super) async fn admin_create_token(
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
