//! Engine balancing: fake engine servers on 127.0.0.1 ephemeral ports, each on its own runtime so that
//! killing one closes every socket it holds (as a crashed process would).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use clave_gateway::{
    AppState, DispatchError, EngineClient, EnginePool, EnginePoolConfig, GatewayConfig, InvokeJob,
};
use clave_proto::gateway_api::{
    ENGINE_INVOKE_PATH, ENGINE_READY_PATH, EngineJob, JobFlags, Problem, problem_type,
};
use common::{ADMIN_TOKEN, FakeEngine, FakeKeys, TestDb, send, wait_until};

#[derive(Default)]
struct Counters {
    /// Invoke requests received (counted before answering).
    received: AtomicUsize,
    /// `HANG` requests received.
    hanging: AtomicUsize,
    /// Readiness answer.
    not_ready: AtomicBool,
    /// Answer every call as overloaded.
    busy: AtomicBool,
}

/// A fake engine: answers like `FakeEngine::transform`; `HANG…` never answers; `HOLD…` answers when
/// `release` gets a permit.
struct EngineServer {
    addr: SocketAddr,
    counters: Arc<Counters>,
    release: Arc<tokio::sync::Semaphore>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EngineServer {
    fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), Arc::default())
    }

    fn start_on(addr: SocketAddr, counters: Arc<Counters>) -> Self {
        let release = Arc::new(tokio::sync::Semaphore::new(0));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let (c, r) = (counters.clone(), release.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let (c1, c2) = (c.clone(), c.clone());
                let app = axum::Router::new()
                    .route(
                        ENGINE_INVOKE_PATH,
                        post(move |body: Bytes| {
                            let c = c1.clone();
                            let r = r.clone();
                            async move { engine_invoke(&c, &r, body).await }
                        }),
                    )
                    .route(
                        ENGINE_READY_PATH,
                        get(move || {
                            let c = c2.clone();
                            async move {
                                if c.not_ready.load(Ordering::SeqCst) {
                                    StatusCode::SERVICE_UNAVAILABLE
                                } else {
                                    StatusCode::OK
                                }
                            }
                        }),
                    );
                tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
                // Park until told to stop; then the runtime (and every connection task) is dropped.
                tokio::task::spawn_blocking(move || {
                    let _ = stop_rx.recv();
                })
                .await
                .unwrap();
            });
            rt.shutdown_background();
        });
        let addr = addr_rx.recv().unwrap();
        Self {
            addr,
            counters,
            release,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn received(&self) -> usize {
        self.counters.received.load(Ordering::SeqCst)
    }

    /// Kill the engine: its listener and every open connection close.
    fn kill(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    /// Start again on the same port with the same counters.
    fn restart(&mut self) {
        self.kill();
        *self = Self::start_on(self.addr, self.counters.clone());
    }
}

impl Drop for EngineServer {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn engine_invoke(
    c: &Counters,
    release: &tokio::sync::Semaphore,
    body: Bytes,
) -> axum::response::Response {
    let job = EngineJob::decode(&body).unwrap();
    c.received.fetch_add(1, Ordering::SeqCst);
    if c.busy.load(Ordering::SeqCst) {
        let p = Problem {
            type_: problem_type::OVERLOADED.into(),
            title: "busy".into(),
            status: 503,
            detail: None,
        };
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "application/problem+json")],
            serde_json::to_vec(&p).unwrap(),
        )
            .into_response();
    }
    if job.request.starts_with(b"HANG") {
        c.hanging.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<()>().await;
    }
    if job.request.starts_with(b"HOLD") {
        release.acquire().await.unwrap().forget();
    }
    if job.request.starts_with(b"FAIL500") {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(header::CONTENT_TYPE, "message/ohttp-res")],
        FakeEngine::transform(&job),
    )
        .into_response()
}

fn job(request: &[u8]) -> InvokeJob {
    InvokeJob {
        secrets: bytes::Bytes::new(),
        project: "default".into(),
        function: "f".into(),
        version: 1,
        manifest: b"{}".to_vec().into(),
        sealed_code: b"code".to_vec().into(),
        request: request.to_vec().into(),
        flags: JobFlags::NONE,
    }
}

fn pool(engines: &[&EngineServer]) -> Arc<EnginePool> {
    pool_with(engines, 16)
}

fn pool_with(engines: &[&EngineServer], max_idle_per_engine: usize) -> Arc<EnginePool> {
    Arc::new(
        EnginePool::with_config(EnginePoolConfig {
            max_idle_per_engine,
            engines: engines.iter().map(|e| e.url()).collect(),
            health_interval: Duration::from_millis(50),
            connect_timeout: Duration::from_secs(2),
            ..EnginePoolConfig::default()
        })
        .unwrap(),
    )
}

fn healthy(pool: &EnginePool, e: &EngineServer) -> bool {
    pool.engines()
        .iter()
        .find(|i| i.url == e.url())
        .unwrap()
        .healthy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_outstanding_spreads_held_calls() {
    let engines = [
        EngineServer::start(),
        EngineServer::start(),
        EngineServer::start(),
    ];
    let pool = pool(&engines.iter().collect::<Vec<_>>());
    let mut calls = Vec::new();
    for i in 1..=3 {
        let p = pool.clone();
        calls.push(tokio::spawn(
            async move { p.invoke(job(b"HOLD-req")).await },
        ));
        wait_until(|| engines.iter().map(EngineServer::received).sum::<usize>() == i).await;
    }
    // One held call on each engine: the pool never stacked a second call on a busy engine.
    for e in &engines {
        assert_eq!(e.received(), 1);
    }
    assert_eq!(pool.engines().iter().map(|e| e.outstanding).sum::<u64>(), 3);
    for e in &engines {
        e.release.add_permits(1);
    }
    for c in calls {
        let out = c.await.unwrap().unwrap();
        assert!(out.ends_with(b"qer-DLOH"));
    }
    assert!(pool.engines().iter().all(|e| e.outstanding == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_engine_is_skipped_ejected_and_readmitted() {
    let mut engines = [
        EngineServer::start(),
        EngineServer::start(),
        EngineServer::start(),
    ];
    // No kept connections: a call to the killed engine is refused before sending (with keep-alive, one
    // racing the crash would fail as "may have run", which is correct but not what this test is about).
    let pool = pool_with(&engines.iter().collect::<Vec<_>>(), 0);
    for i in 0..30u32 {
        if i == 10 {
            engines[1].kill();
        }
        let req = format!("req-{i:04}");
        let out = pool.invoke(job(req.as_bytes())).await.unwrap();
        let expected: Vec<u8> = req.bytes().rev().collect();
        assert!(out.ends_with(&expected), "call {i}");
    }
    let after_kill = engines[1].received();
    assert!(after_kill <= 10);
    assert_eq!(
        engines[0].received() + engines[2].received() + after_kill,
        30
    );
    assert!(!healthy(&pool, &engines[1]));
    assert!(healthy(&pool, &engines[0]) && healthy(&pool, &engines[2]));

    // Back on the same port: the health checker re-admits it and it takes calls again.
    engines[1].restart();
    let checker = pool.spawn_health_checker();
    wait_until(|| healthy(&pool, &engines[1])).await;
    checker.abort();
    for i in 0..9 {
        pool.invoke(job(format!("again-{i}").as_bytes()))
            .await
            .unwrap();
    }
    assert!(engines[1].received() > after_kill);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_reached_a_dying_engine_is_not_retried() {
    let mut engines = [EngineServer::start(), EngineServer::start()];
    let pool = pool(&engines.iter().collect::<Vec<_>>());
    let p = pool.clone();
    let call = tokio::spawn(async move { p.invoke(job(b"HANG-forever")).await });
    wait_until(|| {
        engines
            .iter()
            .map(|e| e.counters.hanging.load(Ordering::SeqCst))
            .sum::<usize>()
            == 1
    })
    .await;
    let victim = usize::from(engines[0].counters.hanging.load(Ordering::SeqCst) == 0);
    engines[victim].kill();
    let result = tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .expect("the call ends when its engine dies")
        .unwrap();
    assert!(
        matches!(result, Err(DispatchError::Failed { .. })),
        "{result:?}"
    );
    assert!(!result.unwrap_err().is_retryable());
    let other = 1 - victim;
    assert_eq!(
        engines[other].received(),
        0,
        "the call may have run on the dead engine: it must not be sent again"
    );
    // A 500 after sending is final as well.
    let r = pool.invoke(job(b"FAIL500")).await;
    assert!(matches!(r, Err(DispatchError::Failed { .. })), "{r:?}");
    assert_eq!(engines[other].received(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overloaded_engine_passes_the_call_on_and_health_checks_eject() {
    let engines = [EngineServer::start(), EngineServer::start()];
    let pool = pool(&engines.iter().collect::<Vec<_>>());
    engines[0].counters.busy.store(true, Ordering::SeqCst);
    for i in 0..6 {
        pool.invoke(job(format!("x-{i}").as_bytes())).await.unwrap();
    }
    assert_eq!(
        engines[1].received(),
        6,
        "every call ended on the free engine"
    );
    engines[1].counters.busy.store(true, Ordering::SeqCst);
    let r = pool.invoke(job(b"both-busy")).await;
    assert!(matches!(r, Err(DispatchError::Overloaded { .. })), "{r:?}");
    engines[0].counters.busy.store(false, Ordering::SeqCst);
    engines[1].counters.busy.store(false, Ordering::SeqCst);

    // A reachable engine that says it is not ready is ejected by health checks, then re-admitted.
    engines[0].counters.not_ready.store(true, Ordering::SeqCst);
    pool.check_now().await;
    pool.check_now().await;
    assert!(!healthy(&pool, &engines[0]));
    let before = engines[0].received();
    for i in 0..4 {
        pool.invoke(job(format!("y-{i}").as_bytes())).await.unwrap();
    }
    assert_eq!(
        engines[0].received(),
        before,
        "ejected engines get no calls"
    );
    engines[0].counters.not_ready.store(false, Ordering::SeqCst);
    pool.check_now().await;
    assert!(healthy(&pool, &engines[0]));
    assert!(pool.ready().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engines_register_with_the_admin_token_and_heartbeat() {
    let engine = EngineServer::start();
    let pool = Arc::new(
        EnginePool::with_config(EnginePoolConfig {
            registration_ttl: Duration::from_secs(60),
            ..EnginePoolConfig::default()
        })
        .unwrap(),
    );
    let db = TestDb::sqlite();
    let h = common::Harness::new(
        db.store().await,
        Arc::new(FakeEngine::default()),
        GatewayConfig::default(),
    )
    .await;
    h.deploy("f", b"sealed").await;
    let state = AppState::new(
        h.state.store().clone(),
        pool.clone(),
        Arc::new(FakeKeys),
        GatewayConfig::default().with_admin_token(ADMIN_TOKEN),
    );
    let app = clave_gateway::app(state);
    let invoke = || {
        send(
            &app,
            Method::POST,
            "/v1/functions/f/invoke",
            None,
            Some("message/ohttp-req"),
            b"12345678".to_vec(),
        )
    };
    // No engine yet: unavailable (nothing ran).
    assert_eq!(invoke().await.status, StatusCode::SERVICE_UNAVAILABLE);
    let body = |url: &str| serde_json::to_vec(&serde_json::json!({ "url": url })).unwrap();
    let register = |token: Option<&'static str>, b: Vec<u8>| {
        send(
            &app,
            Method::POST,
            "/v1/engines/register",
            token,
            Some("application/json"),
            b,
        )
    };
    assert_eq!(
        register(None, body(&engine.url())).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        register(Some("wrong"), body(&engine.url())).await.status,
        StatusCode::FORBIDDEN
    );
    for bad in [
        b"{}".to_vec(),
        b"not json".to_vec(),
        body("ftp://x"),
        body("http://x/?q=1"),
    ] {
        let r = register(Some(ADMIN_TOKEN), bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    let r = register(Some(ADMIN_TOKEN), body(&format!("{}/", engine.url()))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let j = r.json();
    assert_eq!(j["url"], engine.url());
    assert_eq!(j["healthy"], true);
    assert_eq!(j["ttl_secs"], 60);
    // Heartbeat: registering again keeps one entry.
    register(Some(ADMIN_TOKEN), body(&engine.url())).await;
    let r = invoke().await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], b"default/f@1|sealed|87654321");
    let list = send(
        &app,
        Method::GET,
        "/v1/engines",
        Some(ADMIN_TOKEN),
        None,
        vec![],
    )
    .await
    .json();
    let engines = list["engines"].as_array().unwrap();
    assert_eq!(engines.len(), 1);
    assert_eq!(engines[0]["registered"], true);
    assert_eq!(engines[0]["calls"], 1);
    assert_eq!(
        send(&app, Method::GET, "/v1/engines", None, None, vec![])
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let dereg = |b: Vec<u8>| {
        send(
            &app,
            Method::POST,
            "/v1/engines/deregister",
            Some(ADMIN_TOKEN),
            Some("application/json"),
            b,
        )
    };
    assert_eq!(
        dereg(body(&engine.url())).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        dereg(body(&engine.url())).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(invoke().await.status, StatusCode::SERVICE_UNAVAILABLE);

    // A gateway with in-process engines has no pool to register with.
    let r = h
        .send(
            Method::POST,
            "/v1/engines/register",
            Some(ADMIN_TOKEN),
            Some("application/json"),
            body(&engine.url()),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(r.problem().type_, problem_type::NOT_ENABLED);
}
