//! The admin endpoints (admin token): engine registration, sealed developer log records from
//! engines, projects and deploy tokens.

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

/// Smallest sealed log record: the header, the X25519 encapsulated key and the AEAD tag.
const MIN_SEALED_LOG_RECORD: usize = 7 + 32 + 16;

/// `POST /v1/engines/logs`: store a batch of sealed developer log records from a remote engine.
/// Each record is checked for what the gateway can check (names, size, that the project
/// exists); its content is ciphertext it cannot read or verify.
pub(super) async fn admin_engine_logs(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    authorize_admin(&state, req.headers())?;
    require_content_type(req.headers(), "application/json")?;
    check_declared_length(req.headers(), MAX_ENGINE_LOG_BODY)?;
    let body = read_body(req, MAX_ENGINE_LOG_BODY).await?;
    let batch: EngineLogBatch = serde_json::from_slice(&body).map_err(|_| {
        ApiError::BadRequest(
            "body must be {\"records\": [{\"project\", \"function\", \"sealed\"}], \"dropped\": N}",
        )
    })?;
    if batch.records.len() > MAX_ENGINE_LOG_BATCH {
        return Err(ApiError::BadRequest("at most 256 records per batch"));
    }
    let mut known = std::collections::HashMap::<String, bool>::new();
    let (mut stored, mut refused) = (0u64, 0u64);
    for r in &batch.records {
        let plausible = is_valid_name(&r.project)
            && is_valid_name(&r.function)
            && (MIN_SEALED_LOG_RECORD..=MAX_SEALED_LOG_RECORD).contains(&r.sealed.len());
        let exists = if !plausible {
            false
        } else if let Some(e) = known.get(&r.project) {
            *e
        } else {
            let e = state.store().project_exists(&r.project).await?;
            known.insert(r.project.clone(), e);
            e
        };
        if exists {
            state
                .store()
                .append_log(&r.project, &r.function, &r.sealed)
                .await?;
            stored += 1;
        } else {
            refused += 1;
        }
    }
    ::metrics::counter!(metrics::LOG_RECORDS, "outcome" => "stored").increment(stored);
    ::metrics::counter!(metrics::LOG_RECORDS, "outcome" => "refused").increment(refused);
    ::metrics::counter!(metrics::LOG_RECORDS_DROPPED).increment(batch.dropped);
    if refused > 0 || batch.dropped > 0 {
        tracing::warn!(
            stored,
            refused,
            dropped_by_engine = batch.dropped,
            "developer log records not stored"
        );
    }
    Ok(axum::Json(EngineLogAccepted { stored, refused }).into_response())
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
