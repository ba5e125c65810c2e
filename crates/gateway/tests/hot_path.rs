//! The invoke hot path: the active version and its artifact bytes come from memory, and never outlive
//! a change (activate, rollback, delete and re-deploy take effect on the next call, also through another
//! gateway over the same database: at once over SQLite, once the notification arrived over PostgreSQL),
//! and usage rows written off the request path are in the database after a flush and after a graceful
//! shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

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

/// What another gateway answers once it heard of a change: at once over SQLite (the change file is
/// checked on every call); over PostgreSQL after the NOTIFY arrived (polled here, 5 s at most).
async fn call_other(
    db: &TestDb,
    h: &Harness,
    expected: &(StatusCode, Vec<u8>),
) -> (StatusCode, Vec<u8>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let got = call(h).await;
        if &got == expected
            || matches!(db, TestDb::Sqlite { .. })
            || std::time::Instant::now() > deadline
        {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
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
        assert_eq!(
            call_other(&db, &b, &ok("default/hello@1|v1|hgfedcba")).await,
            ok("default/hello@1|v1|hgfedcba")
        );
        a.deploy("hello", b"v2").await;
        assert_eq!(call(&a).await, ok("default/hello@2|v2|hgfedcba"));
        let want = ok("default/hello@2|v2|hgfedcba");
        assert_eq!(call_other(&db, &b, &want).await, want);

        // Rollback and activate, through either gateway: the next call of both uses it.
        assert_eq!(
            post(&a, "/v1/functions/hello/rollback", b"").await,
            StatusCode::OK
        );
        assert_eq!(call(&a).await, ok("default/hello@1|v1|hgfedcba"));
        let want = ok("default/hello@1|v1|hgfedcba");
        assert_eq!(call_other(&db, &b, &want).await, want);
        assert_eq!(
            post(&b, "/v1/functions/hello/activate", br#"{"version":2}"#).await,
            StatusCode::OK
        );
        let want = ok("default/hello@2|v2|hgfedcba");
        assert_eq!(call_other(&db, &a, &want).await, want);
        assert_eq!(call(&b).await, want);
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
        let gone = call(&a).await;
        assert_eq!(call_other(&db, &b, &gone).await.0, StatusCode::NOT_FOUND);
        let r = a.deploy("hello", b"new").await;
        assert_eq!(r.json()["version"], 1);
        assert_eq!(call(&a).await, ok("default/hello@1|new|hgfedcba"));
        let want = ok("default/hello@1|new|hgfedcba");
        assert_eq!(call_other(&db, &b, &want).await, want);

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
        // More than one multi-row INSERT's worth (128 rows per statement).
        for _ in 0..300 {
            assert_eq!(call(&h).await.0, StatusCode::OK);
        }
        // Another store over the same database sees the rows once the writer has flushed.
        h.state.store().flush_usage().await;
        let reader = db.store().await;
        let rows = reader.usage("default", 1000).await.unwrap();
        assert_eq!(rows.len(), 300);
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
        assert_eq!(reader.usage("default", 1000).await.unwrap().len(), 307);

        // And by the time the store is closed (another gateway: this one stopped dispatching).
        h.state.store().close().await;
        let h = harness(&db).await;
        for _ in 0..3 {
            assert_eq!(call(&h).await.0, StatusCode::OK);
        }
        h.state.store().close().await;
        assert_eq!(reader.usage("default", 1000).await.unwrap().len(), 310);
        reader.close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn active_versions_come_from_memory_and_follow_every_announced_change() {
    let db = TestDb::sqlite();
    let a = harness(&db).await;
    let b = harness(&db).await;
    // The opt-in TTL only matters while a store cannot vouch for its active versions; over a
    // SQLite file it always can, so even a long TTL hides nothing.
    a.state
        .store()
        .set_active_version_ttl(std::time::Duration::from_secs(3600));
    let ok = |body: &str| (StatusCode::OK, body.as_bytes().to_vec());

    a.deploy("hello", b"v1").await;
    a.deploy("hello", b"v2").await;
    assert_eq!(call(&a).await, ok("default/hello@2|v2|hgfedcba"));
    assert_eq!(call(&b).await, ok("default/hello@2|v2|hgfedcba"));

    // Hand-written SQL that bypasses the store is not seen: the active version came from memory,
    // not from a database read per call.
    let raw = sqlx::SqlitePool::connect(&db.url()).await.unwrap();
    sqlx::query("UPDATE functions SET active_version = 1")
        .execute(&raw)
        .await
        .unwrap();
    assert_eq!(call(&a).await, ok("default/hello@2|v2|hgfedcba"));
    assert_eq!(call(&b).await, ok("default/hello@2|v2|hgfedcba"));

    // Any change announced through a store (here an unrelated function, through b) makes both
    // read the database again on their next call.
    b.deploy("other", b"x").await;
    assert_eq!(call(&a).await, ok("default/hello@1|v1|hgfedcba"));
    assert_eq!(call(&b).await, ok("default/hello@1|v1|hgfedcba"));

    // Changes through either gateway are seen by both at once.
    assert_eq!(
        post(&a, "/v1/functions/hello/activate", br#"{"version":2}"#).await,
        StatusCode::OK
    );
    assert_eq!(call(&b).await, ok("default/hello@2|v2|hgfedcba"));
    assert_eq!(
        post(&b, "/v1/functions/hello/rollback", b"").await,
        StatusCode::OK
    );
    assert_eq!(call(&a).await, ok("default/hello@1|v1|hgfedcba"));
    let r = b
        .send(
            Method::DELETE,
            "/v1/functions/hello",
            Some(&b.token),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(call(&a).await.0, StatusCode::NOT_FOUND);
    b.deploy("hello", b"new").await;
    assert_eq!(call(&a).await, ok("default/hello@1|new|hgfedcba"));

    // A change file that cannot be read: nothing is vouched for, every call reads the database
    // (here: sees hand-written SQL at once).
    let changes = format!("{}-clave-changes", db.url().trim_start_matches("sqlite://"));
    std::fs::remove_file(&changes).unwrap();
    a.state
        .store()
        .set_active_version_ttl(std::time::Duration::ZERO);
    b.deploy("hello", b"newer").await;
    assert_eq!(call(&a).await, ok("default/hello@2|newer|hgfedcba"));
    sqlx::query("UPDATE functions SET active_version = 1 WHERE name = 'hello'")
        .execute(&raw)
        .await
        .unwrap();
    assert_eq!(call(&a).await, ok("default/hello@1|new|hgfedcba"));
    raw.close().await;
}

/// A short call's answer waits until the calls its worker already holds have run (decision
/// 0010: answers leave in bursts, so a sleeping client is woken once per burst). Two calls taken
/// by one worker together: both have run before either answer is complete. A call that took
/// `answer_burst_below` or more (the default 1 ms; here 3 ms at least) answers at once, and so
/// does every call when it is zero.
#[tokio::test(flavor = "current_thread")]
async fn answers_of_short_calls_taken_together_leave_together() {
    let mut every_call_short = GatewayConfig::default();
    // No call of this test is "long", however slow the machine.
    every_call_short.answer_burst_below = Duration::from_secs(3600);
    let mut off = GatewayConfig::default();
    off.answer_burst_below = Duration::ZERO;
    for (busy, config, want) in [
        (None, every_call_short, (2, 2)),
        (None, off, (1, 2)),
        (
            Some(Duration::from_millis(3)),
            GatewayConfig::default(),
            (1, 2),
        ),
    ] {
        let db = TestDb::sqlite();
        let engine = Arc::new(FakeEngine {
            busy,
            ..FakeEngine::default()
        });
        let h = Arc::new(Harness::new(db.store().await, engine, config).await);
        h.deploy("hello", b"v1").await;
        // Warm: the active version and its bytes are in memory, so a call runs without waiting.
        assert_eq!(call(&h).await.0, StatusCode::OK);
        let before = h.engine.finished.load(Ordering::SeqCst);
        let answered = |h: Arc<Harness>| async move {
            let (status, _) = call(&h).await;
            (status, h.engine.finished.load(Ordering::SeqCst))
        };
        let first = tokio::spawn(answered(h.clone()));
        let second = tokio::spawn(answered(h.clone()));
        let (first, second) = (first.await.expect("first"), second.await.expect("second"));
        assert_eq!((first.0, second.0), (StatusCode::OK, StatusCode::OK));
        assert_eq!(
            (first.1 - before, second.1 - before),
            want,
            "calls that ran for {busy:?}: how many calls had run when each answer was complete"
        );
        h.state.store().close().await;
        db.cleanup().await;
    }
}
