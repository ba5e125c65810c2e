//! The engine as an axum service (`clave engine`). Handlers only translate HTTP to
//! [`Engine`] calls; bodies of errors are coarse problem documents without request content.
//!
//! | method + path | in | out |
//! |---|---|---|
//! | `POST /v1/engine/invoke` | `application/vnd.clave.engine-job` ([`EngineJob`] framing) | `200 message/ohttp-res` (`message/bhttp` for the INSECURE plaintext benchmark path, when enabled); `400` engine-rejected; `503` overloaded; `500` engine-failed |
//! | `GET /v1/engine/attestation?nonce=N` | – | [`crate::EngineAttestation`] JSON; `N` is hex or base64url, 1–64 bytes |
//! | `GET /v1/engine/ready` | – | `200` once keys are held, else `503` |
//! | `GET /healthz` | – | `200 ok` |

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clave_proto::gateway_api::{
    ENGINE_INVOKE_PATH, ENGINE_JOB_CONTENT_TYPE, ENGINE_READY_PATH, EngineJob,
    OHTTP_RESPONSE_CONTENT_TYPE, PROBLEM_CONTENT_TYPE, Problem, problem_type,
};

use crate::{Engine, Error};

/// Path of the engine's own attestation.
pub const ENGINE_ATTESTATION_PATH: &str = "/v1/engine/attestation";
/// Path of the liveness probe.
pub const HEALTHZ_PATH: &str = "/healthz";

/// The engine routes. The engine's clock ([`Engine::with_clock`]) gives `now`.
pub fn router(engine: Arc<Engine>) -> Router {
    let limit = engine.config().max_job_bytes;
    Router::new()
        .route(ENGINE_INVOKE_PATH, post(invoke))
        .route(ENGINE_ATTESTATION_PATH, get(attestation))
        .route(ENGINE_READY_PATH, get(ready))
        .route(HEALTHZ_PATH, get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(engine)
}

fn problem(status: StatusCode, type_: &str, title: &str) -> Response {
    let body = serde_json::to_vec(&Problem {
        type_: type_.to_owned(),
        title: title.to_owned(),
        status: status.as_u16(),
        detail: None,
    })
    .unwrap_or_default();
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
    );
    resp
}

/// The HTTP answer for an invoke error (none carries request content).
fn error_response(e: &Error) -> Response {
    if e.is_rejected() {
        return problem(
            StatusCode::BAD_REQUEST,
            problem_type::ENGINE_REJECTED,
            "the engine could not open the request",
        );
    }
    if e.is_retryable() {
        let mut resp = problem(
            StatusCode::SERVICE_UNAVAILABLE,
            problem_type::OVERLOADED,
            "the engine cannot take work now",
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return resp;
    }
    problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        problem_type::ENGINE_FAILED,
        "the engine failed",
    )
}

async fn invoke(State(engine): State<Arc<Engine>>, headers: HeaderMap, body: Bytes) -> Response {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if !ct.is_some_and(|ct| ct.eq_ignore_ascii_case(ENGINE_JOB_CONTENT_TYPE)) {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            problem_type::UNSUPPORTED_MEDIA_TYPE,
            "expected application/vnd.clave.engine-job",
        );
    }
    let job = match EngineJob::decode_shared(&body) {
        Ok(j) => j,
        Err(e) => return error_response(&Error::BadJob(e)),
    };
    let plaintext = job.flags.is_insecure_plaintext_bench();
    let started = std::time::Instant::now();
    match engine.invoke(job, engine.now()).await {
        Ok(sealed) => {
            let mut resp = (StatusCode::OK, sealed).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(if plaintext {
                    "message/bhttp"
                } else {
                    OHTTP_RESPONSE_CONTENT_TYPE
                }),
            );
            // A short job's answer waits for the worker's other ready jobs, so that answers
            // leave in bursts: one wake-up of a waiting gateway per burst instead of one per
            // answer (`EngineConfig::answer_burst_below`, decision 0010). A longer job, or a
            // refusal, answers at once.
            if started.elapsed() < engine.config().answer_burst_below {
                tokio::task::yield_now().await;
            }
            resp
        }
        Err(e) => {
            tracing::info!(error = %e, "invoke refused in the clear");
            error_response(&e)
        }
    }
}

async fn attestation(
    State(engine): State<Arc<Engine>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let nonce = q
        .get("nonce")
        .and_then(|n| clave_proto::kds_api::parse_caller_nonce(n).ok());
    let Some(nonce) = nonce else {
        return problem(
            StatusCode::BAD_REQUEST,
            problem_type::BAD_REQUEST,
            "nonce must be 1 to 64 bytes of hex or base64url",
        );
    };
    match engine.evidence(&nonce) {
        Ok(att) => axum::Json(att).into_response(),
        Err(Error::BadNonce) => problem(
            StatusCode::BAD_REQUEST,
            problem_type::BAD_REQUEST,
            "nonce must be 1 to 64 bytes",
        ),
        Err(e) => {
            tracing::error!(error = %e, "engine attestation failed");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                problem_type::ENGINE_FAILED,
                "attestation failed",
            )
        }
    }
}

async fn ready(State(engine): State<Arc<Engine>>) -> Response {
    if engine.is_ready() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no keys yet").into_response()
    }
}
