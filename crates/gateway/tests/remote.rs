//! Remote engines over HTTP (`HttpEngineClient` against a fake engine server speaking the
//! `gateway_api` engine wire shape) and `serve()` with graceful shutdown on a real socket.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use clave_gateway::{AppState, EngineClient, GatewayConfig, HttpEngineClient};
use clave_proto::gateway_api::{
    ENGINE_INVOKE_PATH, ENGINE_JOB_CONTENT_TYPE, ENGINE_READY_PATH, EngineJob, Problem,
    problem_type,
};
use common::{FakeEngine, FakeKeys, TestDb, send};

/// A minimal engine server: decodes the job framing and answers like `FakeEngine`.
async fn fake_engine_server() -> String {
    async fn invoke(headers: HeaderMap, body: Bytes) -> axum::response::Response {
        if headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            != Some(ENGINE_JOB_CONTENT_TYPE)
        {
            return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
        }
        let Ok(job) = EngineJob::decode(&body) else {
            return StatusCode::UNPROCESSABLE_ENTITY.into_response();
        };
        let problem = |status: StatusCode, type_: &str| {
            let p = Problem {
                type_: type_.into(),
                title: "x".into(),
                status: status.as_u16(),
                detail: None,
            };
            (
                status,
                [(header::CONTENT_TYPE, "application/problem+json")],
                serde_json::to_vec(&p).unwrap(),
            )
                .into_response()
        };
        if job.request.starts_with(b"BADENV") {
            return problem(StatusCode::BAD_REQUEST, problem_type::ENGINE_REJECTED);
        }
        if job.request.starts_with(b"BUSY") {
            return problem(StatusCode::SERVICE_UNAVAILABLE, problem_type::OVERLOADED);
        }
        (
            [(header::CONTENT_TYPE, "message/ohttp-res")],
            FakeEngine::transform(&job),
        )
            .into_response()
    }
    let app = axum::Router::new()
        .route(ENGINE_INVOKE_PATH, post(invoke))
        .route(ENGINE_READY_PATH, get(|| async { "ready" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// An address nothing listens on.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn http_engine_client_round_trip_and_errors() {
    let engine_url = fake_engine_server().await;
    let dead = closed_port().await;
    // The dead engine is skipped (connection refused: nothing ran there).
    let client = HttpEngineClient::new(vec![dead.clone(), engine_url], 1 << 20).unwrap();
    assert!(client.ready().await);
    let db = TestDb::sqlite();
    let h = common::Harness::new(
        db.store().await,
        Arc::new(FakeEngine::default()),
        GatewayConfig::default(),
    )
    .await;
    // Same store, remote engine.
    let state = AppState::new(
        h.state.store().clone(),
        Arc::new(client),
        Arc::new(FakeKeys),
        GatewayConfig::default(),
    );
    let app = clave_gateway::app(state);
    h.deploy("f", b"sealed").await;
    for _ in 0..3 {
        let r = send(
            &app,
            Method::POST,
            "/v1/functions/f/invoke",
            None,
            Some("message/ohttp-req"),
            b"12345678".to_vec(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(&r.body[..], b"default/f@1|sealed|87654321");
    }
    let r = send(
        &app,
        Method::POST,
        "/v1/functions/f/invoke",
        None,
        Some("message/ohttp-req"),
        b"BADENV-x".to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.problem().type_, problem_type::ENGINE_REJECTED);
    let r = send(
        &app,
        Method::POST,
        "/v1/functions/f/invoke",
        None,
        Some("message/ohttp-req"),
        b"BUSY-now".to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers.contains_key("retry-after"));

    // Only dead engines: unavailable (retryable, nothing ran), readyz fails.
    let state = AppState::new(
        h.state.store().clone(),
        Arc::new(HttpEngineClient::new(vec![dead], 1 << 20).unwrap()),
        Arc::new(FakeKeys),
        GatewayConfig::default(),
    );
    let app = clave_gateway::app(state);
    let r = send(
        &app,
        Method::POST,
        "/v1/functions/f/invoke",
        None,
        Some("message/ohttp-req"),
        b"12345678".to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.problem().type_, problem_type::UNAVAILABLE);
    let r = send(&app, Method::GET, "/readyz", None, None, vec![]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[test]
fn http_engine_client_rejects_bad_urls() {
    assert!(matches!(
        HttpEngineClient::new(vec![], 1),
        Err(clave_gateway::Error::BadRemoteUrl)
    ));
    assert!(matches!(
        HttpEngineClient::new(vec!["ftp://x".into()], 1),
        Err(clave_gateway::Error::BadRemoteUrl)
    ));
}

#[tokio::test]
async fn serve_answers_and_shuts_down_gracefully() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    let state = AppState::new(
        store,
        Arc::new(FakeEngine::default()),
        Arc::new(FakeKeys),
        GatewayConfig::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(clave_gateway::serve(listener, state.clone(), async move {
        let _ = rx.await;
    }));
    // reqwest needs a rustls provider; HttpEngineClient::new installs one.
    let _ = HttpEngineClient::new(vec![format!("http://{addr}")], 1);
    let client = reqwest::Client::new();
    let r = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .get(format!("http://{addr}/.well-known/ohttp-gateway"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/ohttp-keys");
    drop(client);
    tx.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(state.dispatcher().stats().closed);
}
