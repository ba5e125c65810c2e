//! The `clave gateway` process entry point on real sockets: a fake KDS and fake engines on 127.0.0.1, SQLite
//! (and PostgreSQL when `CLAVE_TEST_POSTGRES_URL` is set) and NATS for async calls when
//! `CLAVE_TEST_NATS_URL` is set (required then; the async part is skipped, and recorded, when unset).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use clave_gateway::{GatewayProcess, GatewayProcessConfig, QueueConfig};
use clave_proto::gateway_api::{ENGINE_INVOKE_PATH, ENGINE_READY_PATH, EngineJob};
use common::{FakeEngine, TestDb, deploy_body, manifest};

async fn spawn(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn fake_engine() -> String {
    spawn(
        axum::Router::new()
            .route(
                ENGINE_INVOKE_PATH,
                post(|body: Bytes| async move {
                    let job = EngineJob::decode(&body).unwrap();
                    (
                        [(header::CONTENT_TYPE, "message/ohttp-res")],
                        FakeEngine::transform(&job),
                    )
                        .into_response()
                }),
            )
            .route(ENGINE_READY_PATH, get(|| async { "ready" })),
    )
    .await
}

async fn fake_kds() -> String {
    spawn(axum::Router::new().route(
        "/.well-known/ohttp-gateway",
        get(|| async {
            (
                [(header::CONTENT_TYPE, "application/ohttp-keys")],
                vec![0u8, 1, 2],
            )
        }),
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_process_serves_balances_and_shuts_down() {
    let dbs = common::test_dbs().await;
    for db in dbs {
        run_once(&db).await;
        db.cleanup().await;
    }
}

async fn run_once(db: &TestDb) {
    let engines = [fake_engine().await, fake_engine().await];
    let mut cfg =
        GatewayProcessConfig::new(db.url(), fake_kds().await).with_admin_token(common::ADMIN_TOKEN);
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.pool.engines = engines.to_vec();
    let nats = match common::services::require(common::services::NATS, "gateway process async part")
    {
        Some(url) => {
            let mut raw = [0u8; 6];
            getrandom::fill(&mut raw).unwrap();
            let tag = hex::encode(raw);
            let q = QueueConfig {
                stream: format!("CLAVE_PTEST_{tag}"),
                subject_prefix: format!("claveptest.{tag}"),
                consumer: format!("w-{tag}"),
                ..QueueConfig::new(url)
            };
            cfg.queue = Some(q);
            true
        }
        None => false,
    };
    let process = GatewayProcess::start(cfg).await.unwrap();
    let base = format!("http://{}", process.local_addr().unwrap());
    let pool = process.pool().clone();
    let queue = process.state().queue().cloned();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(process.run(async move {
        let _ = rx.await;
    }));

    let http = reqwest::Client::new();
    let r = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .get(format!("{base}/.well-known/ohttp-gateway"))
        .send()
        .await
        .unwrap();
    assert_eq!(&r.bytes().await.unwrap()[..], &[0, 1, 2]);
    let token: serde_json::Value = http
        .post(format!("{base}/v1/projects/default/tokens"))
        .bearer_auth(common::ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    let r = http
        .put(format!("{base}/v1/functions/f"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(deploy_body(&manifest("f", b"code"), b"code"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for i in 0..10 {
        let r = http
            .post(format!("{base}/v1/functions/f/invoke"))
            .header("content-type", "message/ohttp-req")
            .body(format!("request-{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body = r.bytes().await.unwrap();
        let expected: Vec<u8> = format!("request-{i}").bytes().rev().collect();
        assert!(body.ends_with(&expected));
    }
    // Both engines took calls.
    assert!(
        pool.engines().iter().all(|e| e.calls > 0),
        "{:?}",
        pool.engines()
    );

    if nats {
        let r: serde_json::Value = http
            .post(format!("{base}/v1/functions/f/invoke?mode=async"))
            .header("content-type", "message/ohttp-req")
            .body("async-request")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let url = format!("{base}{}", r["result_url"].as_str().unwrap());
        let mut done = None;
        for _ in 0..3000 {
            let r = http.get(&url).send().await.unwrap();
            if r.status() == 200 {
                done = Some(r.bytes().await.unwrap());
                break;
            }
            assert_eq!(r.status(), 202);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let body = done.expect("async result");
        assert!(body.ends_with(b"tseuqer-cnysa"));
    }

    tx.send(()).unwrap();
    server.await.unwrap().unwrap();
    if let Some(q) = queue {
        q.delete_stream().await.unwrap();
    }
}

#[tokio::test]
async fn services_accept_connections_without_nagle_delay() {
    use axum::serve::Listener as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_addr = plain.local_addr().unwrap();
    let mut listener = clave_gateway::no_delay(listener);
    let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (accepted, _) = listener.accept().await;
    assert!(accepted.nodelay().unwrap(), "TCP_NODELAY set on accept");
    // The check can fail: a listener that is not wrapped accepts with Nagle's algorithm on.
    let _client = tokio::net::TcpStream::connect(plain_addr).await.unwrap();
    let (accepted, _) = axum::serve::Listener::accept(&mut plain).await;
    assert!(!accepted.nodelay().unwrap());
}
