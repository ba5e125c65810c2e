//! The invoke endpoints: synchronous calls, asynchronous calls through the queue, their results,
//! and the mapping of dispatch failures to API errors.

use super::*;

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

pub(super) async fn invoke(
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
    // A short call's answer waits for the worker's other ready calls, so that answers leave in
    // bursts: one wake-up of a waiting client per burst instead of one per answer
    // (`GatewayConfig::answer_burst_below`, decision 0010). A longer call, or a refusal, answers
    // at once: a wake-up (~20 µs where it costs most) is small beside it.
    if result.is_ok() && elapsed < state.config().answer_burst_below {
        let held = Instant::now();
        tokio::task::yield_now().await;
        ::metrics::histogram!(metrics::ANSWER_HOLD).record(held.elapsed().as_secs_f64());
    }
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

pub(super) async fn async_result(
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
