//! A gateway served while it starts (`Starting`, `serve_starting`): the key routes answer at
//! once, everything else waits for the whole gateway (or is refused when it does not come).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use clave_gateway::{GatewayConfig, Starting};
use common::{FakeEngine, FakeKeys, Harness, TestDb};

async fn serve(starting: &Starting) -> (String, tokio::sync::oneshot::Sender<()>) {
    clave_proto::rt::ensure_rustls_provider();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(clave_gateway::serve_starting(
        listener,
        starting.clone(),
        async move {
            let _ = rx.await;
        },
    ));
    (url, tx)
}

async fn get(url: &str) -> (u16, Option<String>, String) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, r.text().await.unwrap())
}

#[tokio::test]
async fn key_routes_answer_before_the_rest_and_the_rest_waits_for_it() {
    let starting = Starting::new(Arc::new(FakeKeys));
    let (url, _stop) = serve(&starting).await;

    let (status, _, keys_early) = get(&format!("{url}/v1/keys")).await;
    assert_eq!(status, 200);
    let nonce = "n0nce-of-sixteen-chars";
    let (status, _, att) = get(&format!("{url}/v1/attestation?nonce={nonce}")).await;
    assert_eq!(status, 200);
    assert!(att.contains(nonce), "{att}");
    let (status, _, _) = get(&format!("{url}/v1/attestation?nonce=short")).await;
    assert_eq!(
        status, 400,
        "the early key routes check the nonce as the gateway does"
    );
    let (status, _, _) = get(&format!("{url}/.well-known/ohttp-gateway")).await;
    assert_eq!(status, 200);

    // Anything else is held until the gateway is ready, then answered by it.
    let held = tokio::spawn({
        let url = url.clone();
        async move { get(&format!("{url}/v1/functions")).await }
    });
    let health = tokio::spawn({
        let url = url.clone();
        async move { get(&format!("{url}/healthz")).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !held.is_finished() && !health.is_finished(),
        "answered before the gateway was ready"
    );

    let db = TestDb::sqlite();
    let h = Harness::new(
        db.store().await,
        Arc::new(FakeEngine::default()),
        GatewayConfig::default(),
    )
    .await;
    starting.ready(h.state.clone(), axum::Router::new());
    let (status, _, body) = health.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, _, _) = held.await.unwrap();
    assert_eq!(status, 401, "the gateway itself answered (no token)");

    // Ready: the same key routes, now through the whole gateway.
    let (status, _, keys_late) = get(&format!("{url}/v1/keys")).await;
    assert_eq!((status, &keys_late), (200, &keys_early));
    let (status, _, _) = get(&format!("{url}/no/such/route")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn held_requests_are_refused_with_retry_after_when_the_gateway_does_not_come() {
    let starting = Starting::new(Arc::new(FakeKeys));
    let (url, stop) = serve(&starting).await;
    let held = tokio::spawn({
        let url = url.clone();
        async move { get(&format!("{url}/healthz")).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!held.is_finished());
    starting.stop();
    let (status, retry, _) = held.await.unwrap();
    assert_eq!((status, retry.as_deref()), (503, Some("1")));
    // Key routes still answer until the server stops; then the port is closed.
    let (status, _, _) = get(&format!("{url}/v1/keys")).await;
    assert_eq!(status, 200);
    stop.send(()).unwrap();
    let mut closed = false;
    for _ in 0..100 {
        if reqwest::get(format!("{url}/v1/keys")).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(closed, "the server kept serving after shutdown");
}
