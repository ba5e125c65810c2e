//! Several gateways over one PostgreSQL database (`CLAVE_TEST_POSTGRES_URL`; skipped with a printed reason
//! when unset): any gateway serves any function, deploys are visible everywhere (a gateway that cached
//! the active version follows once the change's NOTIFY arrives), concurrent deploys of one name
//! through different gateways get distinct versions and none is lost.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use clave_gateway::GatewayConfig;
use common::{FakeEngine, Harness, TestDb};

/// What gateway `h` answers to a call of `hello` once it heard of a change made through the
/// other gateway: its cached active version follows the NOTIFY, which arrives a moment after
/// the changing transaction commits (polled here, 5 s at most; `crates/gateway/tests/hot_path.rs`
/// checks the same for every kind of change). `body` is compared only when not empty.
async fn heard(h: &Harness, status: StatusCode, body: &[u8]) -> (StatusCode, Vec<u8>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let r = h.invoke("/v1/functions/hello/invoke", b"abcdefgh").await;
        let got = (r.status, r.body.to_vec());
        if (got.0 == status && (body.is_empty() || got.1 == body))
            || std::time::Instant::now() > deadline
        {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_one_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    // Two independent gateways: separate pools, separate dispatchers, one database.
    let a = Arc::new(
        Harness::new(
            db.store().await,
            Arc::new(FakeEngine::default()),
            GatewayConfig::default(),
        )
        .await,
    );
    let b = Arc::new(
        Harness::new(
            db.store().await,
            Arc::new(FakeEngine::default()),
            GatewayConfig::default(),
        )
        .await,
    );

    // A deploy through A is visible and invocable through B at once, and the other way round.
    let r = a.deploy("hello", b"v1").await;
    assert_eq!(r.status, StatusCode::CREATED);
    let detail = b.get("/v1/functions/hello").await;
    assert_eq!(detail.status, StatusCode::OK);
    assert_eq!(detail.json()["active_version"], 1);
    let r = b.invoke("/v1/functions/hello/invoke", b"abcdefgh").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], b"default/hello@1|v1|hgfedcba");
    b.deploy("hello", b"v2").await;
    let r = a.invoke("/v1/functions/hello/invoke", b"abcdefgh").await;
    assert_eq!(&r.body[..], b"default/hello@2|v2|hgfedcba");
    // Tokens minted through one gateway work on the other.
    let r = b
        .send(Method::GET, "/v1/functions", Some(&a.token), None, vec![])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = a
        .send(
            Method::POST,
            "/v1/functions/hello/rollback",
            Some(&b.token),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let (status, body) = heard(&b, StatusCode::OK, b"default/hello@1|v1|hgfedcba").await;
    assert_eq!(
        (status, &body[..]),
        (StatusCode::OK, &b"default/hello@1|v1|hgfedcba"[..])
    );
    a.send(
        Method::DELETE,
        "/v1/functions/hello",
        Some(&a.token),
        None,
        vec![],
    )
    .await;
    assert_eq!(
        heard(&b, StatusCode::NOT_FOUND, b"").await.0,
        StatusCode::NOT_FOUND
    );

    // Concurrent deploys of one new name through both gateways: distinct versions, none lost.
    const PER_GATEWAY: usize = 10;
    let mut tasks = Vec::new();
    for i in 0..PER_GATEWAY {
        for (g, h) in [("a", a.clone()), ("b", b.clone())] {
            tasks.push(tokio::spawn(async move {
                let r = h.deploy("race", format!("code-{g}-{i}").as_bytes()).await;
                assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
                r.json()["version"].as_i64().unwrap()
            }));
        }
    }
    let mut versions = BTreeSet::new();
    for t in tasks {
        assert!(
            versions.insert(t.await.unwrap()),
            "a version was handed out twice"
        );
    }
    let n = i64::try_from(2 * PER_GATEWAY).unwrap();
    assert_eq!(versions, (1..=n).collect::<BTreeSet<i64>>());
    for h in [&a, &b] {
        let detail = h.get("/v1/functions/race").await.json();
        let stored = detail["versions"].as_array().unwrap();
        assert_eq!(stored.len(), 2 * PER_GATEWAY);
        // Every deployed body is stored under exactly one version.
        let sizes: BTreeSet<i64> = stored
            .iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect();
        assert_eq!(sizes.len(), 2 * PER_GATEWAY);
    }
    let r = b.invoke("/v1/functions/race/invoke", b"12345678").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body
            .starts_with(format!("default/race@{n}|code-").as_bytes())
    );

    a.state.store().close().await;
    b.state.store().close().await;
    db.cleanup().await;
}
