//! The INSECURE plaintext benchmark path: `message/bhttp` on the invoke routes is refused with `415` unless
//! `GatewayConfig::insecure_plaintext_bench` is set, and then reaches the engine flagged
//! `JobFlags::INSECURE_PLAINTEXT_BENCH` (and only then).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clave_gateway::{
    AppState, BoxFuture, DispatchError, EngineClient, GatewayConfig, InvokeJob, KeySource,
    KeySourceError, Store,
};
use clave_proto::gateway_api::{DeployRequest, JobFlags};
use tower::ServiceExt as _;

/// Records the flags of every job and echoes the request.
#[derive(Default)]
struct FlagEngine {
    flags: Mutex<Vec<JobFlags>>,
}

impl EngineClient for FlagEngine {
    fn invoke(&self, job: InvokeJob) -> BoxFuture<'_, Result<Vec<u8>, DispatchError>> {
        Box::pin(async move {
            self.flags.lock().unwrap().push(job.flags);
            Ok(job.request.to_vec())
        })
    }
}

struct NoKeys;

impl KeySource for NoKeys {
    fn key_configs(&self) -> BoxFuture<'_, Result<Vec<u8>, KeySourceError>> {
        Box::pin(async { Err(KeySourceError::Upstream { status: 503 }) })
    }
    fn bundles(&self) -> BoxFuture<'_, Result<Vec<u8>, KeySourceError>> {
        Box::pin(async { Err(KeySourceError::Upstream { status: 503 }) })
    }
    fn attestation(&self, _nonce: String) -> BoxFuture<'_, Result<Vec<u8>, KeySourceError>> {
        Box::pin(async { Err(KeySourceError::Upstream { status: 503 }) })
    }
}

async fn post(app: &axum::Router, uri: &str, ct: &str, body: &[u8]) -> (StatusCode, Vec<u8>) {
    let req = Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", ct);
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_vec())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, body.to_vec())
}

async fn gateway(plaintext: bool) -> (tempfile::TempDir, axum::Router, Arc<FlagEngine>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).await.unwrap();
    store.create_project("default").await.unwrap();
    let token = store.create_token("default").await.unwrap();
    let engine = Arc::new(FlagEngine::default());
    let mut config = GatewayConfig::default();
    config.insecure_plaintext_bench = plaintext;
    let app = clave_gateway::app(AppState::new(
        store,
        engine.clone(),
        Arc::new(NoKeys),
        config,
    ));
    let manifest = serde_json::to_vec(&serde_json::json!({
        "name": "echo",
        "code_hash": "00".repeat(32),
        "entry": "index.js",
        "limits": { "cpu_ms": 50, "heap_bytes": 1048576 },
        "created": 1_700_000_000u64,
    }))
    .unwrap();
    let body = serde_json::to_vec(&DeployRequest::new(&manifest, b"sealed code")).unwrap();
    let resp = app
        .clone()
        .oneshot(
            Request::builder()
                .method("PUT")
                .uri("/v1/functions/echo")
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(resp.status().is_success(), "deploy: {}", resp.status());
    (dir, app, engine)
}

const URI: &str = "/v1/functions/echo/invoke";

#[tokio::test]
async fn plaintext_is_refused_unless_enabled() {
    let (_dir, app, engine) = gateway(false).await;
    let (status, _) = post(&app, URI, "message/bhttp", b"plain bhttp request").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        engine.flags.lock().unwrap().is_empty(),
        "nothing dispatched"
    );
    // The confidential path is unchanged.
    let (status, _) = post(&app, URI, "message/ohttp-req", b"sealed request").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(*engine.flags.lock().unwrap(), vec![JobFlags::NONE]);
}

#[tokio::test]
async fn plaintext_is_flagged_when_enabled_and_only_for_bhttp() {
    let (_dir, app, engine) = gateway(true).await;
    let (status, body) = post(&app, URI, "message/bhttp", b"plain bhttp request").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"plain bhttp request");
    let (status, _) = post(&app, URI, "message/ohttp-req", b"sealed request").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post(&app, URI, "text/plain", b"other request").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        *engine.flags.lock().unwrap(),
        vec![JobFlags::INSECURE_PLAINTEXT_BENCH, JobFlags::NONE]
    );
}
