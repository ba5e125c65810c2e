//! The KDS as an axum service (`clave kds`). Handlers only translate HTTP to the library calls
//! of [`Kds`], so the in-process API and the service share one code path.
//!
//! Errors are RFC 9457 problem JSON with `type = urn:clave:kds:<slug>` ([`Error::slug`]); the
//! body never holds key material, and internal failures say no more than their slug.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clave_proto::kds_api::{
    self, PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX, Problem, ReleaseLogResponse, ReleaseRequest,
    ReplicaJoinRequest, paths,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Kds};

/// A clock returning unix seconds (the service's only source of time).
pub use clave_attest::{Clock, system_clock};

#[derive(Clone)]
struct AppState {
    kds: Arc<Kds>,
    clock: Clock,
}

/// The KDS routes with the system clock.
pub fn router(kds: Arc<Kds>) -> Router {
    router_with_clock(kds, system_clock())
}

/// The KDS routes with an explicit clock (tests, simulations).
pub fn router_with_clock(kds: Arc<Kds>, clock: Clock) -> Router {
    Router::new()
        .route(paths::ATTESTATION, get(attestation))
        .route(paths::KEYS, get(keys))
        .route(OHTTP_KEYS_PATH, get(ohttp_keys))
        .route(paths::NONCE, post(nonce))
        .route(paths::RELEASE, post(release))
        .route(paths::LOG, get(log))
        .route(paths::REPLICA_NONCE, post(replica_nonce))
        .route(paths::REPLICA_JOIN, post(replica_join))
        .with_state(AppState { kds, clock })
}

/// An error as an HTTP response.
#[derive(Debug)]
pub struct ApiError(Problem);

impl ApiError {
    fn new(status: StatusCode, slug: &str, title: &str, detail: Option<String>) -> Self {
        ApiError(Problem {
            type_: format!("{PROBLEM_TYPE_PREFIX}{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
        })
    }

    fn malformed_request(detail: &'static str) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed-request",
            "malformed request",
            Some(detail.to_owned()),
        )
    }
}

/// The HTTP status of an error.
pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::MalformedSpec
        | Error::MalformedEvidence(_)
        | Error::BadEphemeralKey
        | Error::BadCallerNonce => StatusCode::BAD_REQUEST,
        Error::UnknownSpec => StatusCode::NOT_FOUND,
        Error::NonceStoreFull => StatusCode::SERVICE_UNAVAILABLE,
        Error::NonceUnknown | Error::NonceExpired | Error::NonceReused | Error::Attestation(_) => {
            StatusCode::FORBIDDEN
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = status_of(&e);
        if e.is_refusal() {
            // Refusal details describe the requester's own input (its measurement, TCB…).
            ApiError::new(status, e.slug(), "request refused", Some(e.to_string()))
        } else {
            tracing::error!(error = %e, "KDS internal error");
            ApiError::new(status, e.slug(), "KDS internal error", None)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.0).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        resp
    }
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut resp = (StatusCode::OK, body).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(_) => ApiError::from(Error::Internal("response encoding")).into_response(),
    }
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|_| ApiError::malformed_request("body is not the expected JSON object"))
}

async fn attestation(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let raw = q
        .get("nonce")
        .ok_or_else(|| ApiError::from(Error::BadCallerNonce))?;
    let nonce = kds_api::parse_caller_nonce(raw).map_err(|_| Error::BadCallerNonce)?;
    Ok(json(&st.kds.attestation(&nonce)?))
}

/// `GET`: the current invoke key configs as an `application/ohttp-keys` list (RFC 9540), taken
/// from the signed bundles (the gateway proxies it; clients still verify the bundles).
pub const OHTTP_KEYS_PATH: &str = "/.well-known/ohttp-gateway";

async fn ohttp_keys(State(st): State<AppState>) -> Result<Response, ApiError> {
    let keys = st.kds.keys((st.clock)())?;
    let configs: Vec<clave_proto::KeyConfig> = keys
        .bundles
        .iter()
        .filter_map(|b| {
            let payload = kds_api::b64::decode(&b.payload).ok()?;
            clave_proto::bundle::KeyBundle::from_payload(&payload).ok()
        })
        .filter(|b| b.spec.purpose == clave_proto::spec::KeyPurpose::Invoke)
        .map(|b| b.key_config)
        .collect();
    let mut resp = (
        StatusCode::OK,
        clave_proto::KeyConfig::encode_list(&configs),
    )
        .into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/ohttp-keys"),
    );
    Ok(resp)
}

async fn keys(State(st): State<AppState>) -> Result<Response, ApiError> {
    Ok(json(&st.kds.keys((st.clock)())?))
}

async fn nonce(State(st): State<AppState>) -> Response {
    json(&st.kds.new_nonce((st.clock)()))
}

async fn release(State(st): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let req: ReleaseRequest = parse(&body)?;
    Ok(json(&st.kds.release(&req, (st.clock)())?))
}

async fn log(State(st): State<AppState>) -> Result<Response, ApiError> {
    Ok(json(&ReleaseLogResponse {
        entries: st.kds.release_log()?,
    }))
}

async fn replica_nonce(State(st): State<AppState>) -> Response {
    json(&st.kds.replica_nonce((st.clock)()))
}

async fn replica_join(State(st): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let req: ReplicaJoinRequest = parse(&body)?;
    Ok(json(&st.kds.admit_replica(&req, (st.clock)())?))
}
