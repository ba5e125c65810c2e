//! Delivery of sealed developer log records to gateways (`clave_engine::log_ship`), against
//! small HTTP servers standing in for gateways: records arrive in batches with the admin token at
//! the first gateway that takes them (an unreachable one is skipped); a gateway that refuses them
//! gets no retries; with no gateway reachable the records are dropped and counted, the sink never
//! waits, and the count travels with the next batch that is delivered.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use clave_engine::{LogShipConfig, SealedLog, spawn_log_shipper};
use clave_proto::gateway_api::{ENGINE_LOGS_PATH, EngineLogBatch};

type Seen = Arc<Mutex<Vec<(Option<String>, EngineLogBatch)>>>;

/// A stand-in gateway answering `status`; returns its base URL and what it received.
async fn gateway(status: StatusCode) -> (String, Seen) {
    let (url, seen, _) = switchable(status).await;
    (url, seen)
}

/// A stand-in gateway whose answer can be changed while it runs.
async fn switchable(status: StatusCode) -> (String, Seen, Arc<AtomicU16>) {
    let answer = Arc::new(AtomicU16::new(status.as_u16()));
    let a = answer.clone();
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let app = Router::new().route(
        ENGINE_LOGS_PATH,
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let s = s.clone();
            let status = StatusCode::from_u16(a.load(Ordering::Relaxed)).expect("status");
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let batch: EngineLogBatch = serde_json::from_slice(&body).expect("a batch");
                s.lock().expect("lock").push((auth, batch));
                (status, "{\"stored\":0,\"refused\":0}")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen, answer)
}

/// A URL nothing listens on.
fn dead() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    format!("http://{}", l.local_addr().expect("addr"))
}

fn record(i: usize) -> SealedLog {
    SealedLog {
        project: "p".into(),
        function: format!("f{i}"),
        sealed: vec![u8::try_from(i % 256).expect("byte"); 64],
    }
}

fn config(gateways: Vec<String>) -> LogShipConfig {
    let mut c = LogShipConfig::new(gateways, "admin-t0k");
    c.linger = Duration::from_millis(50);
    c.retry_for = Duration::from_millis(300);
    c
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_reach_the_first_gateway_that_takes_them_in_batches() {
    let (live, seen) = gateway(StatusCode::OK).await;
    let shipper = spawn_log_shipper(config(vec![dead(), live]));
    let sink = shipper.sink();
    for i in 0..20 {
        sink(record(i));
    }
    let stats = shipper.stats();
    until("20 records are delivered", || {
        stats.delivered.load(Ordering::Relaxed) == 20
    })
    .await;
    let got = seen.lock().expect("lock").clone();
    assert!(got.len() < 20, "batched: {} requests", got.len());
    let functions: Vec<String> = got
        .iter()
        .flat_map(|(_, b)| b.records.iter().map(|r| r.function.clone()))
        .collect();
    assert_eq!(
        functions,
        (0..20).map(|i| format!("f{i}")).collect::<Vec<_>>(),
        "all, in order"
    );
    for (auth, b) in &got {
        assert_eq!(auth.as_deref(), Some("Bearer admin-t0k"));
        assert_eq!(b.dropped, 0);
        assert_eq!(b.records[0].project, "p");
    }
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    // Records queued at shutdown are still delivered.
    sink(record(20));
    shipper.shutdown(Duration::from_secs(5)).await;
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_gateway_records_are_dropped_and_counted() {
    let mut c = config(vec![dead()]);
    c.queue = 4;
    c.batch = 2;
    let shipper = spawn_log_shipper(c);
    let sink = shipper.sink();
    let stats = shipper.stats();
    // The sink takes 100 records whatever the queue holds (beyond it they are dropped at once).
    for i in 0..100 {
        sink(record(i));
    }
    until("all 100 are dropped", || {
        stats.dropped.load(Ordering::Relaxed) == 100
    })
    .await;
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 0);
    // A record too large for a gateway is dropped at once.
    sink(SealedLog {
        sealed: vec![0; clave_proto::gateway_api::MAX_SEALED_LOG_RECORD + 1],
        ..record(0)
    });
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 101);
    shipper.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_count_of_dropped_records_travels_with_the_next_delivered_batch() {
    // A gateway that fails (503: worth retrying) until it is switched on.
    let (url, seen, answer) = switchable(StatusCode::SERVICE_UNAVAILABLE).await;
    let mut c = config(vec![url]);
    c.retry_for = Duration::from_secs(1);
    let shipper = spawn_log_shipper(c);
    let sink = shipper.sink();
    let stats = shipper.stats();
    for i in 0..3 {
        sink(record(i));
    }
    until("the failing batch is dropped", || {
        stats.dropped.load(Ordering::Relaxed) == 3
    })
    .await;
    assert!(seen.lock().expect("lock").len() > 1, "a 503 is retried");
    answer.store(200, Ordering::Relaxed);
    sink(record(3));
    until("the next record is delivered", || {
        stats.delivered.load(Ordering::Relaxed) == 1
    })
    .await;
    let got = seen.lock().expect("lock").clone();
    let (_, last) = got.last().expect("a batch");
    assert_eq!(last.records.len(), 1);
    assert_eq!(last.records[0].function, "f3");
    assert_eq!(last.dropped, 3, "the three dropped before");
    sink(record(4));
    until("one more is delivered", || {
        stats.delivered.load(Ordering::Relaxed) == 2
    })
    .await;
    let got = seen.lock().expect("lock").clone();
    assert_eq!(got.last().expect("a batch").1.dropped, 0, "reported once");
    shipper.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_gateway_gets_no_retries() {
    let (refusing, seen) = gateway(StatusCode::FORBIDDEN).await;
    let shipper = spawn_log_shipper(config(vec![refusing]));
    let stats = shipper.stats();
    (shipper.sink())(record(0));
    until("the record is dropped", || {
        stats.dropped.load(Ordering::Relaxed) == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(seen.lock().expect("lock").len(), 1, "asked once");
    shipper.shutdown(Duration::from_secs(2)).await;
}

/// A stand-in gateway with the real route's body limit (`MAX_ENGINE_LOG_BODY`: 413 beyond).
async fn limited_gateway() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let app = Router::new().route(
        ENGINE_LOGS_PATH,
        post(move |body: axum::body::Bytes| {
            let s = s.clone();
            async move {
                let batch: EngineLogBatch = serde_json::from_slice(&body).expect("a batch");
                s.lock().expect("lock").push((None, batch));
                (StatusCode::OK, "{\"stored\":0,\"refused\":0}")
            }
        })
        .layer(axum::extract::DefaultBodyLimit::max(
            clave_proto::gateway_api::MAX_ENGINE_LOG_BODY,
        )),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_records_of_one_function_do_not_sink_the_batch_of_others() {
    // Records each within MAX_SEALED_LOG_RECORD, that together exceed the gateway's body limit:
    // another project's small record in the same batch must still be delivered.
    let (url, seen) = limited_gateway().await;
    let shipper = spawn_log_shipper(config(vec![url]));
    let sink = shipper.sink();
    let stats = shipper.stats();
    sink(SealedLog {
        project: "victim".into(),
        ..record(0)
    });
    for i in 1..=20 {
        sink(SealedLog {
            project: "noisy".into(),
            sealed: vec![7; 700 << 10],
            ..record(i)
        });
    }
    until("every record is delivered or dropped", || {
        stats.delivered.load(Ordering::Relaxed) + stats.dropped.load(Ordering::Relaxed) == 21
    })
    .await;
    let got = seen.lock().expect("lock").clone();
    assert!(
        got.iter()
            .any(|(_, b)| b.records.iter().any(|r| r.project == "victim")),
        "the victim's record was lost with the oversized batch"
    );
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    shipper.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_is_bounded_in_bytes_not_only_in_records() {
    // No gateway answers: with the defaults, 200 records of 900 KiB (each within
    // MAX_SEALED_LOG_RECORD) must not all be held (180 MB), only up to the byte bound.
    let mut c = config(vec![dead()]);
    c.retry_for = Duration::from_secs(60);
    let shipper = spawn_log_shipper(c);
    let sink = shipper.sink();
    let stats = shipper.stats();
    for i in 0..200 {
        sink(SealedLog {
            sealed: vec![1; 900 << 10],
            ..record(i)
        });
    }
    let dropped = stats.dropped.load(Ordering::Relaxed);
    assert!(
        dropped >= 100,
        "only {dropped} of 200 records of 900 KiB dropped: the queue holds them all"
    );
    shipper.shutdown(Duration::from_secs(2)).await;
}
