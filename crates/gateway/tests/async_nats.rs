//! Asynchronous invocation through a real NATS JetStream server (`CLAVE_TEST_NATS_URL`, e.g.
//! `nats://127.0.0.1:4222`; skipped with a recorded reason only when unset, failed when set but NATS
//! does not answer). Each test uses its own stream, subject prefix and consumer, and deletes the
//! stream at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use clave_gateway::{AppState, GatewayConfig, JobQueue, QueueConfig, ResultState};
use clave_proto::gateway_api::problem_type;
use common::{ADMIN_TOKEN, FakeEngine, FakeKeys, Reply, TestDb, send, wait_until};

/// `CLAVE_TEST_NATS_URL`; `None` (skip recorded) when unset, a panic when set but NATS is down.
fn nats_url() -> Option<String> {
    common::services::require(common::services::NATS, "gateway async tests on NATS")
}

fn unique_queue(url: &str, ack_wait: Duration) -> QueueConfig {
    let mut raw = [0u8; 6];
    getrandom::fill(&mut raw).unwrap();
    let tag = hex::encode(raw);
    QueueConfig {
        stream: format!("CLAVE_TEST_{tag}"),
        subject_prefix: format!("clavetest.{tag}"),
        consumer: format!("workers-{tag}"),
        max_in_flight: 2,
        ack_wait,
        retry_delay: Duration::from_millis(100),
        ..QueueConfig::new(url)
    }
}

/// `JobQueue::connect`, retried a few times when JetStream fails to create the stream's storage:
/// the tests here run in parallel and each deletes its stream at the end, and the server can race
/// the removal of its now-empty account directory against another test's stream creation
/// ("could not create storage directory ... no such file or directory", seen once). Anything
/// else fails at once.
async fn connect(config: QueueConfig) -> JobQueue {
    let mut tries = 0;
    loop {
        match JobQueue::connect(config.clone()).await {
            Ok(q) => return q,
            Err(e) if tries < 5 && format!("{e:?}").contains("error creating store for stream") => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("connect the queue: {e:?}"),
        }
    }
}

struct AsyncGateway {
    app: Router,
    state: AppState,
    queue: JobQueue,
    engine: Arc<FakeEngine>,
    _db: TestDb,
}

async fn gateway(engine: Arc<FakeEngine>, queue: QueueConfig) -> (AsyncGateway, common::Harness) {
    let db = TestDb::sqlite();
    let store = db.store().await;
    // The harness deploys and owns the token; the async gateway shares its store.
    let h = common::Harness::new(store.clone(), engine.clone(), GatewayConfig::default()).await;
    let queue = connect(queue).await;
    let state = AppState::new(
        store,
        engine.clone(),
        Arc::new(FakeKeys),
        GatewayConfig::default().with_admin_token(ADMIN_TOKEN),
    )
    .with_queue(queue.clone());
    (
        AsyncGateway {
            app: clave_gateway::app(state.clone()),
            state,
            queue,
            engine,
            _db: db,
        },
        h,
    )
}

impl AsyncGateway {
    async fn submit(&self, uri: &str, body: &[u8]) -> Reply {
        send(
            &self.app,
            Method::POST,
            uri,
            None,
            Some("message/ohttp-req"),
            body.to_vec(),
        )
        .await
    }

    async fn accept(&self, body: &[u8]) -> String {
        let r = self.submit("/v1/functions/f/invoke?mode=async", body).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
        let id = r.json()["id"].as_str().unwrap().to_owned();
        assert_eq!(
            r.headers.get("location").unwrap().to_str().unwrap(),
            format!("/v1/results/{id}")
        );
        id
    }

    async fn result(&self, id: &str) -> Reply {
        send(
            &self.app,
            Method::GET,
            &format!("/v1/results/{id}"),
            None,
            None,
            vec![],
        )
        .await
    }

    fn start_worker(
        &self,
    ) -> (
        tokio::task::JoinHandle<()>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = self.state.clone();
        let queue = self.queue.clone();
        let task = tokio::spawn(async move {
            clave_gateway::run_worker(state, queue, async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        (task, tx)
    }

    async fn wait_done(&self, ids: &[String]) {
        for _ in 0..6000 {
            let mut all = true;
            for id in ids {
                if self.result(id).await.status == StatusCode::ACCEPTED {
                    all = false;
                    break;
                }
            }
            if all {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("async results never completed");
    }
}

fn expected(version: i64, sealed: &str, request: &[u8]) -> Vec<u8> {
    let mut out = format!("default/f@{version}|{sealed}|").into_bytes();
    out.extend(request.iter().rev());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_call_is_queued_run_and_fetched() {
    let Some(url) = nats_url() else { return };
    let (g, h) = gateway(
        Arc::new(FakeEngine::default()),
        unique_queue(&url, Duration::from_secs(5)),
    )
    .await;
    h.deploy("f", b"one").await;

    let id = g.accept(b"request-1").await;
    // Pending until a worker runs it.
    let r = g.result(&id).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.json()["status"], "pending");
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(g.queue.depth().await.unwrap(), 1);
    // A new version deployed meanwhile does not change what the accepted call runs.
    h.deploy("f", b"two").await;

    let (worker, stop) = g.start_worker();
    g.wait_done(std::slice::from_ref(&id)).await;
    let r = g.result(&id).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "message/ohttp-res");
    assert_eq!(&r.body[..], &expected(1, "one", b"request-1")[..]);
    assert_eq!(g.engine.async_calls.load(Ordering::SeqCst), 1);

    // Project-scoped form, wrong project, bad id, unknown id.
    let other = send(
        &g.app,
        Method::GET,
        &format!("/v1/projects/other/results/{id}"),
        None,
        None,
        vec![],
    )
    .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    let scoped = send(
        &g.app,
        Method::GET,
        &format!("/v1/projects/default/results/{id}"),
        None,
        None,
        vec![],
    )
    .await;
    assert_eq!(scoped.status, StatusCode::OK);
    assert_eq!(g.result("not-an-id").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        g.result(&"0".repeat(32)).await.status,
        StatusCode::NOT_FOUND
    );

    // A failing call ends as its problem; a refused envelope as engine-rejected.
    let failed = g.accept(b"BADENV-x").await;
    g.wait_done(std::slice::from_ref(&failed)).await;
    let r = g.result(&failed).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.problem().type_, problem_type::ENGINE_REJECTED);

    // Bad modes and unknown functions are refused before queueing.
    let r = g
        .submit("/v1/functions/f/invoke?mode=later", b"12345678")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = g
        .submit("/v1/functions/f/invoke?mode=async&mode=sync", b"12345678")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Other parameters are ignored.
    let r = g.submit("/v1/functions/f/invoke?x=1", b"12345678").await;
    assert_eq!(r.status, StatusCode::OK);
    let r = g
        .submit("/v1/functions/nope/invoke?mode=async", b"12345678")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // mode=sync is the ordinary call.
    let r = g
        .submit("/v1/functions/f/invoke?mode=sync", b"12345678")
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // A gateway without a queue says so.
    let r = h
        .invoke("/v1/functions/f/invoke?mode=async", b"12345678")
        .await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(r.problem().type_, problem_type::NOT_ENABLED);
    let r = h.get(&format!("/v1/results/{id}")).await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);

    stop.send(()).unwrap();
    worker.await.unwrap();
    assert_eq!(g.queue.depth().await.unwrap(), 0);
    g.queue.delete_stream().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_of_a_stored_result_is_acked_without_running() {
    let Some(url) = nats_url() else { return };
    let (g, h) = gateway(
        Arc::new(FakeEngine::default()),
        unique_queue(&url, Duration::from_secs(5)),
    )
    .await;
    h.deploy("f", b"one").await;
    let id = g.accept(b"request-x").await;
    // A previous worker stored the result and died before acknowledging.
    let store = g.state.store();
    assert!(
        store
            .complete_result(
                &id,
                "default",
                "f",
                1,
                &ResultState::Done(b"first".to_vec())
            )
            .await
            .unwrap()
    );
    // Written once: a second completion changes nothing.
    assert!(
        !store
            .complete_result(
                &id,
                "default",
                "f",
                1,
                &ResultState::Done(b"second".to_vec())
            )
            .await
            .unwrap()
    );
    let (worker, stop) = g.start_worker();
    for _ in 0..2000 {
        if g.queue.depth().await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        g.queue.depth().await.unwrap(),
        0,
        "the redelivery was acked"
    );
    assert_eq!(g.engine.started.load(Ordering::SeqCst), 0, "nothing ran");
    assert_eq!(&g.result(&id).await.body[..], b"first");
    stop.send(()).unwrap();
    worker.await.unwrap();
    g.queue.delete_stream().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_restart_mid_flight_loses_nothing_and_stores_nothing_twice() {
    let Some(url) = nats_url() else { return };
    let (engine, gate) = FakeEngine::gated();
    // Short ack wait so that calls held by the killed worker come back quickly.
    let (g, h) = gateway(engine, unique_queue(&url, Duration::from_secs(1))).await;
    h.deploy("f", b"one").await;
    const N: usize = 8;
    let mut ids = BTreeMap::new();
    for i in 0..N {
        let body = format!("call-{i:03}");
        ids.insert(g.accept(body.as_bytes()).await, body);
    }
    assert_eq!(g.queue.depth().await.unwrap(), N as u64);

    // Worker 1 takes two calls (its in-flight bound) and is killed while the engine holds them.
    let (worker1, _stop1) = g.start_worker();
    wait_until(|| g.engine.started.load(Ordering::SeqCst) >= 2).await;
    worker1.abort();
    let _ = worker1.await;
    assert_eq!(
        g.state.store().count_results("default").await.unwrap(),
        (N as i64, 0)
    );

    // Worker 2 (a restarted gateway) finishes everything, including the two interrupted calls.
    gate.add_permits(10 * N);
    let (worker2, stop2) = g.start_worker();
    let all: Vec<String> = ids.keys().cloned().collect();
    g.wait_done(&all).await;
    for (id, body) in &ids {
        let r = g.result(id).await;
        assert_eq!(r.status, StatusCode::OK, "{id}");
        assert_eq!(
            &r.body[..],
            &expected(1, "one", body.as_bytes())[..],
            "{id}"
        );
    }
    assert_eq!(
        g.state.store().count_results("default").await.unwrap(),
        (0, N as i64),
        "one completed row per accepted call"
    );
    // Every call ran (the two interrupted ones twice: harmless, functions have no side effects).
    let started = g.engine.started.load(Ordering::SeqCst);
    println!("engine runs: {started} for {N} accepted calls");
    assert!(started >= N + 2, "started {started}");
    for _ in 0..2000 {
        if g.queue.depth().await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(g.queue.depth().await.unwrap(), 0, "every call acknowledged");
    stop2.send(()).unwrap();
    worker2.await.unwrap();
    g.queue.delete_stream().await.unwrap();
}
