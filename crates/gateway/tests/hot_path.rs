//! The invoke hot path: artifact bytes cached in memory never outlive the active version they belong to
//! (activate, rollback, delete and re-deploy take effect at once, also through another gateway over the same
//! database), and usage rows written off the request path are in the database after a flush and after a
//! graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use clave_gateway::GatewayConfig;
use common::{FakeEngine, Harness, TestDb};

async fn harness(db: &TestDb) -> Harness {
    Harness::new(
        db.store().await,
        Arc::new(FakeEngine::default()),
        GatewayConfig::default(),
    )
    .await
}

async fn call(h: &Harness) -> (StatusCode, Vec<u8>) {
    let r = h.invoke("/v1/functions/hello/invoke", b"abcdefgh").await;
    (r.status, r.body.to_vec())
}

async fn post(h: &Harness, uri: &str, body: &[u8]) -> StatusCode {
    h.send(
        Method::POST,
        uri,
        Some(&h.token),
        Some("application/json"),
        body.to_vec(),
    )
    .await
    .status
}

#[tokio::test]
async fn cached_artifacts_follow_the_active_version_everywhere() {
    for db in common::test_dbs().await {
        let a = harness(&db).await;
        let b = harness(&db).await;
        let ok = |body: &str| (StatusCode::OK, body.as_bytes().to_vec());

        a.deploy("hello", b"v1").await;
        assert_eq!(call(&a).await, ok("default/hello@1|v1|hgfedcba"));
        assert_eq!(call(&b).await, ok("default/hello@1|v1|hgfedcba"));
        a.deploy("hello", b"v2").await;
        assert_eq!(call(&a).await, ok("default/hello@2|v2|hgfedcba"));
        assert_eq!(call(&b).await, ok("default/hello@2|v2|hgfedcba"));

        // Rollback and activate, through either gateway: the next call of both uses it.
        assert_eq!(
            post(&a, "/v1/functions/hello/rollback", b"").await,
            StatusCode::OK
        );
        assert_eq!(call(&a).await, ok("default/hello@1|v1|hgfedcba"));
        assert_eq!(call(&b).await, ok("default/hello@1|v1|hgfedcba"));
        assert_eq!(
            post(&b, "/v1/functions/hello/activate", br#"{"version":2}"#).await,
            StatusCode::OK
        );
        assert_eq!(call(&a).await, ok("default/hello@2|v2|hgfedcba"));
        assert_eq!(call(&b).await, ok("default/hello@2|v2|hgfedcba"));
        assert!(a.state.store().cached_artifacts() >= 1);
        assert!(b.state.store().cached_artifacts() >= 1);

        // Delete and re-deploy the name: version numbers restart at 1 with other bytes, and no
        // gateway serves the old version 1 from its cache.
        let r = a
            .send(
                Method::DELETE,
                "/v1/functions/hello",
                Some(&a.token),
                None,
                vec![],
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(call(&a).await.0, StatusCode::NOT_FOUND);
        assert_eq!(call(&b).await.0, StatusCode::NOT_FOUND);
        let r = a.deploy("hello", b"new").await;
        assert_eq!(r.json()["version"], 1);
        assert_eq!(call(&a).await, ok("default/hello@1|new|hgfedcba"));
        assert_eq!(call(&b).await, ok("default/hello@1|new|hgfedcba"));

        a.state.store().close().await;
        b.state.store().close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn usage_rows_appear_after_flush_and_after_shutdown() {
    for db in common::test_dbs().await {
        let h = harness(&db).await;
        h.deploy("hello", b"v1").await;
        for _ in 0..20 {
            assert_eq!(call(&h).await.0, StatusCode::OK);
        }
        // Another store over the same database sees the rows once the writer has flushed.
        h.state.store().flush_usage().await;
        let reader = db.store().await;
        let rows = reader.usage("default", 1000).await.unwrap();
        assert_eq!(rows.len(), 20);
        assert!(rows.iter().all(|r| r.outcome == "ok" && r.version == 1));
        assert_eq!(h.state.store().usage_dropped(), 0);

        // Calls made just before a graceful shutdown are written by the time `serve` returns.
        for _ in 0..7 {
            assert_eq!(call(&h).await.0, StatusCode::OK);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        clave_gateway::serve(listener, h.state.clone(), async {})
            .await
            .unwrap();
        assert_eq!(reader.usage("default", 1000).await.unwrap().len(), 27);

        // And by the time the store is closed (another gateway: this one stopped dispatching).
        h.state.store().close().await;
        let h = harness(&db).await;
        for _ in 0..3 {
            assert_eq!(call(&h).await.0, StatusCode::OK);
        }
        h.state.store().close().await;
        assert_eq!(reader.usage("default", 1000).await.unwrap().len(), 30);
        reader.close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn active_version_ttl_never_hides_changes_made_through_the_same_gateway() {
    let db = TestDb::sqlite();
    let a = harness(&db).await;
    let b = harness(&db).await;
    let long = std::time::Duration::from_secs(3600);
    a.state.store().set_active_version_ttl(long);
    b.state.store().set_active_version_ttl(long);
    let ok = |body: &str| (StatusCode::OK, body.as_bytes().to_vec());

    a.deploy("hello", b"v1").await;
    assert_eq!(call(&a).await, ok("default/hello@1|v1|hgfedcba"));
    assert_eq!(call(&b).await, ok("default/hello@1|v1|hgfedcba"));
    a.deploy("hello", b"v2").await;
    assert_eq!(call(&a).await, ok("default/hello@2|v2|hgfedcba"));
    // Documented: another gateway keeps the version it read until its TTL passes.
    assert_eq!(call(&b).await, ok("default/hello@1|v1|hgfedcba"));
    assert_eq!(
        post(&a, "/v1/functions/hello/rollback", b"").await,
        StatusCode::OK
    );
    assert_eq!(call(&a).await, ok("default/hello@1|v1|hgfedcba"));
    assert_eq!(
        post(&a, "/v1/functions/hello/activate", br#"{"version":2}"#).await,
        StatusCode::OK
    );
    assert_eq!(call(&a).await, ok("default/hello@2|v2|hgfedcba"));
    // A change through b itself is seen by b at once.
    assert_eq!(
        post(&b, "/v1/functions/hello/activate", br#"{"version":2}"#).await,
        StatusCode::OK
    );
    assert_eq!(call(&b).await, ok("default/hello@2|v2|hgfedcba"));
    let r = a
        .send(
            Method::DELETE,
            "/v1/functions/hello",
            Some(&a.token),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(call(&a).await.0, StatusCode::NOT_FOUND);
    a.deploy("hello", b"new").await;
    assert_eq!(call(&a).await, ok("default/hello@1|new|hgfedcba"));
    // Turning the TTL off reads the database again.
    b.state
        .store()
        .set_active_version_ttl(std::time::Duration::ZERO);
    assert_eq!(call(&b).await, ok("default/hello@1|new|hgfedcba"));
}
