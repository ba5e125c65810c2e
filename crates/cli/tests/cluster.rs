//! Multi-process cluster on loopback, from the real `clave` binary: 2 KDS replicas (the second
//! joins the first by mutual attestation), 3 engines (two on one replica, one on the other), 2
//! gateways over one PostgreSQL database and one NATS JetStream stream. A fixed load of sealed
//! calls (300 synchronous, alternating gateways, and 50 asynchronous) runs while one engine and
//! one gateway are killed (SIGKILL) and restarted.
//!
//! Exact accounting. Every call carries a unique body; the engines of this test are built with the
//! TEST-ONLY `test-hooks` feature of clave-engine (enabled by this package's dev-dependencies,
//! absent from `cargo build`) and append the SHA-256 of every body they run to a run log
//! (`CLAVE_TEST_ONLY_RUN_LOG`). Asserted against that log ([`audit`]): every call answered OK
//! ran exactly once, with its own result; every call refused as "not run" (503, connection
//! refused) did not run; every ambiguous call (502/504, a connection broken mid-flight) ran at most
//! once, and there are no more of them than calls in flight at the kills; every accepted
//! asynchronous call ran and completed, and ran again only across a kill (a run cut short is
//! redelivered by design); nothing ran that was not sent. At the end the JetStream stream (read
//! through a core NATS subscription on its subjects and its stream/consumer state) and the
//! `results` table agree: every published call has exactly one completed row, nothing is left
//! unacknowledged, no row is pending.
//!
//! Confidentiality sweep (after the load): markers planted in the code, the input and the output
//! are searched — as text, base64, base64url, hex and JSON-escaped — in a dump of every
//! PostgreSQL table, every NATS payload, `/metrics` and the admin endpoints of both gateways, and
//! the logs of every process (see `common/leaks.rs`).
//!
//! Needs `CLAVE_TEST_POSTGRES_URL` (a fresh database is created and dropped) and
//! `CLAVE_TEST_NATS_URL` (a unique stream is created and deleted): skipped, and recorded as skipped,
//! only when one is unset; failed when one is set and the service does not answer.
//!
//! `throughput_by_engine_count` (ignored; run in release) measures calls/s with 1, 2 and 3
//! engines behind one gateway: see docs/scaling.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;
#[path = "../../gateway/tests/common/services.rs"]
mod services;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clave_cli::platform::{dev_engine_measurement, dev_kds_measurement};
use clave_client::{Client, ClientError, CodeHash, Limits, TrustPolicy, now_unix};
use clave_proto::invoke::{InvokeRequest, InvokeResponseOpener, seal_invoke};
use clave_proto::{FunctionName, ProjectName};
use common::leaks;
use common::procs::{Proc, free_ports, http_client, wait_ok};
use sha2::Digest as _;

const ADMIN: &str = "cat_cluster-test-admin-token";
const PROJECT: &str = "cluster";
const FUNCTION: &str = "square";
// Markers for the confidentiality sweep: the code's is in the code, the input's in every body, the
// output's is assembled at run time (its text is in neither the code nor the input).
const CODE_MARKER: &str = "CODEMARKER-5e0b7c31-cluster-secret-algorithm";
const INPUT_MARKER: &str = "INPUTMARKER-2d9f61a4-cluster-patient-record";
const OUTPUT_MARKER: &str = "OUTPUTMARKER-a7c4e210-cluster-diagnosis";
const CODE: &str = r#"
// CODEMARKER-5e0b7c31-cluster-secret-algorithm
const secret = "CODEMARKER-5e0b7c31-cluster-secret-algorithm";
export default {
  async fetch(request) {
    const b = await request.json();
    const tag = ["OUTPUTMARKER-", "a7c4e210-", "cluster-diagnosis"].join("");
    console.log("sees", b.record, secret);
    return Response.json({ id: b.id, sq: b.n * b.n + 7, tag, seen: b.record.length + secret.length });
  },
};
"#;

/// The body of call `id` (unique per call: the run log identifies calls by its SHA-256).
fn call_body(id: &str, n: u64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "id": id, "n": n, "record": INPUT_MARKER })).unwrap()
}

fn digest(body: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(body))
}

fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

async fn healthy_engines(http: &reqwest::Client, gateway: &str) -> usize {
    let Ok(r) = http
        .get(format!("{gateway}/v1/engines"))
        .bearer_auth(ADMIN)
        .send()
        .await
    else {
        return 0;
    };
    let Ok(v) = r.json::<serde_json::Value>().await else {
        return 0;
    };
    v["engines"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|e| e["healthy"] == true).count())
}

async fn wait_engines(http: &reqwest::Client, gateway: &str, n: usize, limit: Duration) {
    let started = Instant::now();
    while healthy_engines(http, gateway).await < n {
        assert!(
            started.elapsed() < limit,
            "{gateway} did not see {n} healthy engines"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A fresh PostgreSQL database for one run; dropped by [`Db::drop_db`].
struct Db {
    admin_url: String,
    name: String,
    url: String,
}

impl Db {
    async fn create(admin_url: &str, tag: &str) -> Result<Self, String> {
        use sqlx::Connection as _;
        let name = format!(
            "clave_{tag}_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
        );
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", services::host_port(admin_url)))?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("cannot create a database: {e}"))?;
        let _ = conn.close().await;
        let (base, query) = match admin_url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (admin_url, String::new()),
        };
        let prefix = base.rsplit_once('/').map_or(base, |(p, _)| p);
        Ok(Self {
            admin_url: admin_url.to_owned(),
            url: format!("{prefix}/{name}{query}"),
            name,
        })
    }

    async fn drop_db(&self) {
        use sqlx::Connection as _;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin_url).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await;
            let _ = conn.close().await;
        }
    }
}

async fn delete_stream(nats_url: &str, stream: &str) {
    if let Ok(client) = async_nats::connect(nats_url).await {
        let js = async_nats::jetstream::new(client);
        let _ = js.delete_stream(stream).await;
    }
}

fn trust() -> TrustPolicy {
    TrustPolicy::insecure_dev(dev_kds_measurement(), [dev_engine_measurement()]).expect("trust")
}

fn s(v: &str) -> String {
    v.to_owned()
}

fn kds_proc(name: &str, port: u16, dir: &Path, join: Option<u16>, logs: &Path) -> Proc {
    let mut args = vec![
        s("kds"),
        s("--listen"),
        format!("127.0.0.1:{port}"),
        s("--data-dir"),
        dir.display().to_string(),
    ];
    if let Some(j) = join {
        args.extend([s("--join"), format!("http://127.0.0.1:{j}")]);
    }
    Proc::new(
        name,
        &args,
        &[("CLAVE_INSECURE_SIMULATED_TEE", s("1"))],
        logs,
    )
}

/// An engine; with `run_log`, its TEST-ONLY run log (see the module documentation).
fn engine_proc(
    name: &str,
    port: u16,
    kds: u16,
    register: &[String],
    logs: &Path,
    run_log: Option<&Path>,
) -> Proc {
    let mut args = vec![
        s("engine"),
        s("--insecure-simulated-tee"),
        s("--listen"),
        format!("127.0.0.1:{port}"),
        s("--kds"),
        format!("http://127.0.0.1:{kds}"),
        s("--heartbeat-secs"),
        s("1"),
        s("--workers"),
        s("2"),
    ];
    for g in register {
        args.extend([s("--register-with"), g.clone()]);
    }
    let mut env = vec![("CLAVE_ADMIN_TOKEN", s(ADMIN))];
    if let Some(path) = run_log {
        env.push(("CLAVE_TEST_ONLY_RUN_LOG", path.display().to_string()));
    }
    Proc::new(name, &args, &env, logs)
}

struct GatewayEnv<'a> {
    db: &'a str,
    nats: Option<(&'a str, &'a str)>,
    engines: Option<String>,
}

fn gateway_proc(name: &str, port: u16, kds: u16, g: &GatewayEnv<'_>, logs: &Path) -> Proc {
    let mut env = vec![
        ("CLAVE_DATABASE_URL", g.db.to_owned()),
        ("CLAVE_KDS_URL", format!("http://127.0.0.1:{kds}")),
        ("CLAVE_ADMIN_TOKEN", s(ADMIN)),
        ("CLAVE_GATEWAY_LISTEN", format!("127.0.0.1:{port}")),
        ("CLAVE_GATEWAY_SLOTS", s("8")),
        ("CLAVE_GATEWAY_QUEUE_LIMIT", s("256")),
    ];
    if let Some((url, stream)) = g.nats {
        env.push(("CLAVE_NATS_URL", url.to_owned()));
        env.push(("CLAVE_NATS_STREAM", stream.to_owned()));
        env.push(("CLAVE_NATS_SUBJECT_PREFIX", stream.to_ascii_lowercase()));
        env.push(("CLAVE_NATS_ACK_WAIT_SECS", s("3")));
    }
    if let Some(e) = &g.engines {
        env.push(("CLAVE_ENGINES", e.clone()));
    }
    Proc::new(name, &[s("gateway")], &env, logs)
}

/// What happened to one call.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Correct,
    /// 503 or connection refused: certainly did not run (the run log must agree).
    NotRun(String),
    /// 502/504 or a connection broken after sending ("connection closed before message
    /// completed", "connection reset"): may have run, at most once (only around a kill).
    MayHaveRun(String),
    /// Anything else: a failure of the test.
    Wrong(String),
}

fn classify(e: &ClientError) -> Outcome {
    match e {
        ClientError::Gateway { status: 503, .. } => Outcome::NotRun(s("503")),
        ClientError::Gateway {
            status: s @ (502 | 504),
            ..
        } => Outcome::MayHaveRun(format!("{s}")),
        // Only a refused connection is certain: nothing was sent. A connection that broke after
        // the request went out may have run it.
        ClientError::Transport { reason, .. }
            if reason.to_ascii_lowercase().contains("connection refused") =>
        {
            Outcome::NotRun(s("connection refused"))
        }
        ClientError::Transport { reason, .. } => {
            Outcome::MayHaveRun(format!("transport: {reason}"))
        }
        other => Outcome::Wrong(other.to_string()),
    }
}

fn check_body(body: &[u8], id: &str, n: u64) -> Outcome {
    let v: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Outcome::Wrong(format!("not JSON: {e}")),
    };
    if v["id"] == id && v["sq"] == n * n + 7 && v["tag"] == OUTPUT_MARKER {
        Outcome::Correct
    } else {
        Outcome::Wrong(format!("wrong result for {id}/{n}: {v}"))
    }
}

/// Runs of one body in the run log: start instants (unix ms, ascending) and completed runs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Runs {
    starts: Vec<u128>,
    done: usize,
}

/// Parse the run log (`start|done <sha256> <pid> <unix-ms>` lines) into runs by body digest.
fn parse_run_log(text: &str) -> BTreeMap<String, Runs> {
    let mut runs: BTreeMap<String, Runs> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        assert!(
            f.len() == 4 && f[1].len() == 64,
            "malformed run log line {line:?}"
        );
        let ms: u128 = f[3].parse().expect("run log time");
        let r = runs.entry(f[1].to_owned()).or_default();
        match f[0] {
            "start" => r.starts.push(ms),
            "done" => r.done += 1,
            other => panic!("run log kind {other:?}"),
        }
    }
    for r in runs.values_mut() {
        r.starts.sort_unstable();
    }
    runs
}

/// How a call was made, for [`audit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Sync,
    Async,
}

/// One call the test made: its name, body digest, mode and outcome (for an asynchronous call,
/// `Correct` means accepted and its result fetched and checked).
#[derive(Debug, Clone)]
struct Sent {
    name: String,
    digest: String,
    mode: Mode,
    outcome: Outcome,
}

/// Exact accounting of the calls against the engines' run log; `kills` are the instants (unix
/// ms, taken after the process was gone) of every SIGKILL. Returns counts by category, or every
/// violation.
fn audit(
    sent: &[Sent],
    runs: &BTreeMap<String, Runs>,
    kills: &[u128],
) -> Result<BTreeMap<&'static str, usize>, Vec<String>> {
    let mut bad = Vec::new();
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let by_digest: BTreeMap<&str, &Sent> = sent.iter().map(|c| (c.digest.as_str(), c)).collect();
    assert_eq!(by_digest.len(), sent.len(), "every call has a unique body");
    for (d, r) in runs {
        if !by_digest.contains_key(d.as_str()) {
            bad.push(format!("a body that was never sent ran {r:?} (sha256 {d})"));
        }
    }
    let none = Runs::default();
    // Consecutive runs of one call must be separated by a kill (the first was cut short).
    let rerun_across_kill = |r: &Runs| {
        r.starts
            .windows(2)
            .all(|w| kills.iter().any(|k| w[0] <= *k && *k <= w[1]))
    };
    for c in sent {
        let r = runs.get(&c.digest).unwrap_or(&none);
        let starts = r.starts.len();
        let what = |s: &str| {
            format!(
                "{} ({:?}, {:?}): {s}; runs {r:?}",
                c.name, c.mode, c.outcome
            )
        };
        match (&c.outcome, c.mode) {
            (Outcome::Correct, Mode::Sync) => {
                *counts.entry("sync ok, ran once").or_default() += 1;
                if starts != 1 || r.done != 1 {
                    bad.push(what("answered OK but did not run exactly once"));
                }
            }
            (Outcome::NotRun(_), _) => {
                *counts.entry("refused as not run, did not run").or_default() += 1;
                if starts != 0 {
                    bad.push(what("refused as \"not run\" but ran"));
                }
            }
            (Outcome::MayHaveRun(_), Mode::Sync) => {
                *counts
                    .entry(if starts == 0 {
                        "sync ambiguous, did not run"
                    } else {
                        "sync ambiguous, ran once"
                    })
                    .or_default() += 1;
                if starts > 1 {
                    bad.push(what("ambiguous but ran more than once"));
                }
            }
            (Outcome::Correct, Mode::Async) => {
                *counts.entry("async accepted, completed").or_default() += 1;
                if starts > 1 {
                    *counts
                        .entry("async accepted, re-run after a kill")
                        .or_default() += 1;
                }
                if starts == 0 || r.done == 0 {
                    bad.push(what("accepted but never ran to completion (lost)"));
                } else if !rerun_across_kill(r) {
                    bad.push(what("accepted and ran twice without a kill in between"));
                }
            }
            (Outcome::MayHaveRun(_), Mode::Async) => {
                *counts.entry("async submit ambiguous").or_default() += 1;
                if !rerun_across_kill(r) {
                    bad.push(what("ambiguous submit ran twice without a kill in between"));
                }
            }
            (Outcome::Wrong(_), _) => bad.push(what("wrong outcome")),
        }
    }
    if bad.is_empty() { Ok(counts) } else { Err(bad) }
}

struct AsyncCall {
    id: String,
    call: String,
    n: u64,
    opener: InvokeResponseOpener,
}

async fn submit_async(
    http: &reqwest::Client,
    client: &Client,
    gateway: &str,
    hash: &CodeHash,
    call: &str,
    n: u64,
) -> Result<AsyncCall, Outcome> {
    let now = now_unix();
    let verified = client.verified(now).await.map_err(|e| classify(&e))?;
    let key = verified
        .invoke_key(now)
        .ok_or_else(|| Outcome::Wrong(s("no invoke key")))?;
    let body = call_body(call, n);
    let req = InvokeRequest::new(
        PROJECT.parse::<ProjectName>().unwrap(),
        FUNCTION.parse::<FunctionName>().unwrap(),
        *hash,
        now,
        body,
    )
    .asynchronous();
    let (enc, opener) = seal_invoke(
        &key.key_config,
        &req,
        &mut rand::rand_core::UnwrapErr(rand::rngs::SysRng),
    )
    .unwrap();
    let resp = http
        .post(format!(
            "{gateway}/v1/projects/{PROJECT}/functions/{FUNCTION}/invoke?mode=async"
        ))
        .header("content-type", "message/ohttp-req")
        .body(enc)
        .send()
        .await;
    match resp {
        // Connect phase: nothing was sent.
        Err(e) if e.is_connect() => Err(Outcome::NotRun(s("connection refused"))),
        Err(e) => Err(Outcome::MayHaveRun(format!("transport: {e}"))),
        Ok(r) if r.status().as_u16() == 202 => {
            let v: serde_json::Value = r.json().await.map_err(|e| Outcome::Wrong(e.to_string()))?;
            Ok(AsyncCall {
                id: v["id"].as_str().unwrap_or_default().to_owned(),
                call: call.to_owned(),
                n,
                opener,
            })
        }
        Ok(r) if r.status().as_u16() == 503 => Err(Outcome::NotRun(s("503"))),
        Ok(r) => Err(Outcome::Wrong(format!(
            "async submit answered {}",
            r.status()
        ))),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_survives_killed_engine_and_gateway() {
    const GROUP: &str = "cluster kill/restart test";
    let Some(pg) = services::require(services::POSTGRES, GROUP) else {
        return;
    };
    let Some(nats) = services::require(services::NATS, GROUP) else {
        return;
    };
    let test_started = Instant::now();
    let db = Db::create(&pg, "cluster")
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL ({}): {e}", services::POSTGRES.var));
    let stream = format!("CLAVE_TEST_{}_{}", std::process::id(), now_unix());
    let tmp = tempfile::tempdir().expect("tmp");
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    // A spawned task turns a panic into a JoinError, so cleanup below always runs.
    let outcome = tokio::spawn(run_cluster(
        tmp.path().to_path_buf(),
        logs,
        db.url.clone(),
        nats.clone(),
        stream.clone(),
    ))
    .await;
    db.drop_db().await;
    delete_stream(&nats, &stream).await;
    eprintln!("cluster test took {:?}", test_started.elapsed());
    if let Err(e) = outcome {
        // Keep the logs for the failure report.
        let kept = tmp.keep();
        eprintln!("process logs kept in {}", kept.display());
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("cluster task failed: {e}"),
        }
    }
}

async fn run_cluster(dir: PathBuf, logs: PathBuf, db_url: String, nats: String, stream: String) {
    let (dir, logs, db_url, nats, stream) = (&dir, &logs, &db_url, &nats, &stream);
    assert!(CODE.contains(CODE_MARKER) && !CODE.contains(OUTPUT_MARKER));
    let p = free_ports(7);
    let (k1, k2, e_ports, g1, g2) = (p[0], p[1], [p[2], p[3], p[4]], p[5], p[6]);
    let g_urls = [
        format!("http://127.0.0.1:{g1}"),
        format!("http://127.0.0.1:{g2}"),
    ];
    let http = http_client();
    let limit = Duration::from_secs(60);
    let run_log = dir.join("engine-runs.log");

    // Every message published on the stream's subjects, duplicates included (a core subscription
    // sees each publish; JetStream's work queue deletes messages once acknowledged).
    let nats_client = async_nats::connect(nats.as_str())
        .await
        .unwrap_or_else(|e| panic!("NATS at {nats}: {e}"));
    let mut subscription = nats_client
        .subscribe(format!("{}.>", stream.to_ascii_lowercase()))
        .await
        .expect("subscribe");
    nats_client.flush().await.expect("flush");
    let published = Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    let collector = {
        let published = published.clone();
        tokio::spawn(async move {
            use futures_util::StreamExt as _;
            while let Some(m) = subscription.next().await {
                published.lock().unwrap().push(m.payload.to_vec());
            }
        })
    };

    // KDS replicas: the second joins the first.
    let mut kds1 = kds_proc("kds1", k1, &dir.join("kds1"), None, logs);
    kds1.start();
    wait_ok(
        &http,
        &format!("http://127.0.0.1:{k1}/v1/kds/keys"),
        &mut kds1,
        limit,
    )
    .await;
    let mut kds2 = kds_proc("kds2", k2, &dir.join("kds2"), Some(k1), logs);
    kds2.start();
    wait_ok(
        &http,
        &format!("http://127.0.0.1:{k2}/v1/kds/keys"),
        &mut kds2,
        limit,
    )
    .await;
    assert!(kds2.stdout().contains("joined"), "{}", kds2.stdout());
    let identity = |out: String| {
        out.split("identity ")
            .nth(1)
            .map(|r| r.chars().take(64).collect::<String>())
            .unwrap_or_default()
    };
    assert_eq!(
        identity(kds1.stdout()),
        identity(kds2.stdout()),
        "replicas share M"
    );
    assert!(kds1.stderr().contains("INSECURE"), "says INSECURE");

    // Engines: e1, e2 on replica 1, e3 on replica 2; all register with both gateways.
    let mut engines: Vec<Proc> = e_ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let kds = if i == 2 { k2 } else { k1 };
            engine_proc(
                &format!("engine{}", i + 1),
                *port,
                kds,
                &g_urls,
                logs,
                Some(&run_log),
            )
        })
        .collect();
    for e in &mut engines {
        e.start();
    }
    for (e, port) in engines.iter_mut().zip(e_ports) {
        wait_ok(
            &http,
            &format!("http://127.0.0.1:{port}/v1/engine/ready"),
            e,
            limit,
        )
        .await;
        assert!(
            e.stderr().contains("TEST-ONLY build: recording"),
            "the engine of this test records its runs (clave-engine feature test-hooks): {}",
            e.stderr()
        );
    }

    // Gateways: g1 knows the engines from configuration, g2 only through registration; g1 uses
    // replica 1, g2 replica 2.
    let engine_list = e_ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut gw1 = gateway_proc(
        "gateway1",
        g1,
        k1,
        &GatewayEnv {
            db: db_url,
            nats: Some((nats, stream)),
            engines: Some(engine_list),
        },
        logs,
    );
    let mut gw2 = gateway_proc(
        "gateway2",
        g2,
        k2,
        &GatewayEnv {
            db: db_url,
            nats: Some((nats, stream)),
            engines: None,
        },
        logs,
    );
    gw1.start();
    wait_ok(&http, &format!("{}/healthz", g_urls[0]), &mut gw1, limit).await;
    gw2.start();
    wait_ok(&http, &format!("{}/healthz", g_urls[1]), &mut gw2, limit).await;
    wait_engines(&http, &g_urls[0], 3, limit).await;
    wait_engines(&http, &g_urls[1], 3, limit).await;
    eprintln!("cluster up: gateways {g_urls:?}");

    // Project, token, deploy through gateway 1 (visible through gateway 2 at once).
    let r = http
        .put(format!("{}/v1/projects/{PROJECT}", g_urls[0]))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "create project: {}", r.status());
    let clients = [
        Client::new(&g_urls[0], trust()).unwrap(),
        Client::new(&g_urls[1], trust()).unwrap(),
    ];
    let token = clients[0].create_token(PROJECT, ADMIN).await.unwrap().token;
    let deployed = clients[0]
        .deploy(
            PROJECT,
            FUNCTION,
            "index.js",
            CODE.as_bytes(),
            Limits::default(),
            &token,
        )
        .await
        .expect("deploy");
    let hash = deployed.code_hash;
    // Every call of the test, for the audit against the run log.
    let mut sent: Vec<Sent> = Vec::new();
    for (k, c) in clients.iter().enumerate() {
        let name = format!("warm-{k}");
        let body = call_body(&name, 3);
        let r = c
            .invoke(PROJECT, FUNCTION, &body, &[], &hash)
            .await
            .expect("first call");
        assert_eq!(check_body(&r.body, &name, 3), Outcome::Correct);
        sent.push(Sent {
            name,
            digest: digest(&body),
            mode: Mode::Sync,
            outcome: Outcome::Correct,
        });
    }

    // The load: calls 0..350; every 7th is asynchronous (50), the rest synchronous (300).
    const TOTAL: usize = 350;
    const CONCURRENCY: usize = 6;
    const PACE: Duration = Duration::from_millis(20);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let clients = Arc::new(clients);
    let g_urls = Arc::new(g_urls);
    let sync_outcomes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let async_calls = Arc::new(tokio::sync::Mutex::new(Vec::<AsyncCall>::new()));
    let async_rejected = Arc::new(std::sync::Mutex::new(Vec::new()));

    let load_started = Instant::now();
    // Chaos, on a thread of its own: kill engine 2 at 60 calls, restart it at 120, kill gateway 2
    // at 180, restart it at 240. Every wait is bounded. The instant of each kill (after the
    // process is gone) bounds which re-runs the audit accepts.
    let chaos = {
        let done = done.clone();
        let mut e2 = engines.remove(1);
        let mut gw2 = gw2;
        std::thread::spawn(move || {
            let wait_for = |n: usize| {
                let started = Instant::now();
                while done.load(Ordering::SeqCst) < n && started.elapsed() < Duration::from_secs(60)
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
            };
            let mut events = Vec::new();
            let mut kills = Vec::new();
            wait_for(60);
            e2.kill();
            kills.push(unix_ms());
            events.push((done.load(Ordering::SeqCst), "engine2 killed"));
            wait_for(120);
            e2.start();
            events.push((done.load(Ordering::SeqCst), "engine2 restarted"));
            wait_for(180);
            gw2.kill();
            kills.push(unix_ms());
            events.push((done.load(Ordering::SeqCst), "gateway2 killed"));
            wait_for(240);
            gw2.start();
            events.push((done.load(Ordering::SeqCst), "gateway2 restarted"));
            (e2, gw2, events, kills)
        })
    };

    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (next, done, clients, g_urls) =
            (next.clone(), done.clone(), clients.clone(), g_urls.clone());
        let (sync_outcomes, async_calls, async_rejected) = (
            sync_outcomes.clone(),
            async_calls.clone(),
            async_rejected.clone(),
        );
        let http = http.clone();
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= TOTAL {
                    break;
                }
                // Paced (one call per 20 ms overall) so that the load spans the chaos.
                tokio::time::sleep_until(tokio::time::Instant::from_std(
                    load_started + PACE * u32::try_from(i).unwrap(),
                ))
                .await;
                let g = i % 2;
                let call = format!("call-{i}");
                let n = i as u64 + 1;
                let body = call_body(&call, n);
                if i % 7 == 3 {
                    let r = tokio::time::timeout(
                        Duration::from_secs(20),
                        submit_async(&http, &clients[g], &g_urls[g], &hash, &call, n),
                    )
                    .await
                    .unwrap_or_else(|_| Err(Outcome::Wrong(s("async submit timed out"))));
                    match r {
                        Ok(a) => async_calls.lock().await.push(a),
                        Err(o) => async_rejected.lock().unwrap().push((i, digest(&body), o)),
                    }
                } else {
                    let r = tokio::time::timeout(
                        Duration::from_secs(20),
                        clients[g].invoke(PROJECT, FUNCTION, &body, &[], &hash),
                    )
                    .await;
                    let o = match r {
                        Err(_) => Outcome::Wrong(s("timed out after 20 s")),
                        Ok(Ok(resp)) => check_body(&resp.body, &call, n),
                        Ok(Err(e)) => classify(&e),
                    };
                    sync_outcomes.lock().unwrap().push((i, g, digest(&body), o));
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for w in workers {
        w.await.expect("load worker");
    }
    let load_time = load_started.elapsed();
    let (mut e2, mut gw2, events, kills) = chaos.join().expect("chaos thread");
    eprintln!("chaos: {events:?}");

    // Synchronous calls.
    let sync_outcomes = sync_outcomes.lock().unwrap().clone();
    assert_eq!(sync_outcomes.len(), 300);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (_, g, _, o) in &sync_outcomes {
        let key = match o {
            Outcome::Correct => format!("gateway{} correct", g + 1),
            Outcome::NotRun(w) => format!("gateway{} not run {w}", g + 1),
            Outcome::MayHaveRun(w) => format!("gateway{} may-have-run {w}", g + 1),
            Outcome::Wrong(w) => format!("WRONG {w}"),
        };
        *counts.entry(key).or_default() += 1;
    }
    eprintln!("sync outcomes in {load_time:?}: {counts:#?}");
    let wrong: Vec<_> = sync_outcomes
        .iter()
        .filter(|(_, _, _, o)| matches!(o, Outcome::Wrong(_)))
        .collect();
    assert!(wrong.is_empty(), "wrong results: {wrong:?}");
    let may_have_run = sync_outcomes
        .iter()
        .filter(|(_, _, _, o)| matches!(o, Outcome::MayHaveRun(_)))
        .count();
    let correct = sync_outcomes
        .iter()
        .filter(|(_, _, _, o)| *o == Outcome::Correct)
        .count();
    assert!(
        correct >= 200,
        "only {correct} of 300 synchronous calls succeeded"
    );
    let after_restart: Vec<_> = sync_outcomes
        .iter()
        .filter(|(i, g, _, _)| *g == 0 && *i >= 300)
        .collect();
    assert!(
        after_restart
            .iter()
            .all(|(_, _, _, o)| *o == Outcome::Correct),
        "gateway 1 kept serving: {after_restart:?}"
    );
    for (i, _, d, o) in &sync_outcomes {
        sent.push(Sent {
            name: format!("call-{i}"),
            digest: d.clone(),
            mode: Mode::Sync,
            outcome: o.clone(),
        });
    }

    // Asynchronous calls: every accepted one completes exactly once with its own result.
    let rejected = async_rejected.lock().unwrap().clone();
    assert!(
        rejected
            .iter()
            .all(|(_, _, o)| matches!(o, Outcome::NotRun(_) | Outcome::MayHaveRun(_))),
        "async submissions must be accepted or cleanly refused: {rejected:?}"
    );
    let ambiguous_submits = rejected
        .iter()
        .filter(|(_, _, o)| matches!(o, Outcome::MayHaveRun(_)))
        .count();
    let ambiguous = may_have_run + ambiguous_submits;
    // Only calls in flight at one of the two kills may end "may have run".
    assert!(
        ambiguous <= 2 * CONCURRENCY,
        "{ambiguous} calls ended ambiguously: more than were in flight at the kills"
    );
    for (i, d, o) in &rejected {
        sent.push(Sent {
            name: format!("call-{i} (async submit)"),
            digest: d.clone(),
            mode: Mode::Async,
            outcome: o.clone(),
        });
    }
    // Gateway 2 is back: wait for it (and its engines) before fetching through it too.
    wait_ok(&http, &format!("{}/healthz", g_urls[1]), &mut gw2, limit).await;
    let accepted = std::mem::take(&mut *async_calls.lock().await);
    eprintln!(
        "async: {} accepted, {} cleanly refused",
        accepted.len(),
        rejected.len()
    );
    assert!(accepted.len() >= 40, "too few async calls accepted");
    let ids: HashSet<_> = accepted.iter().map(|a| a.id.clone()).collect();
    assert_eq!(ids.len(), accepted.len(), "result ids are unique");
    let mut results = BTreeMap::new();
    let started = Instant::now();
    while results.len() < accepted.len() {
        assert!(
            started.elapsed() < Duration::from_secs(45),
            "async calls not completed: {} of {}",
            results.len(),
            accepted.len()
        );
        for (k, a) in accepted.iter().enumerate() {
            if results.contains_key(&a.id) {
                continue;
            }
            let g = &g_urls[k % 2];
            let Ok(r) = http
                .get(format!("{g}/v1/projects/{PROJECT}/results/{}", a.id))
                .send()
                .await
            else {
                continue;
            };
            match r.status().as_u16() {
                202 => {}
                200 => {
                    let bytes = r.bytes().await.unwrap();
                    let opened = a
                        .opener
                        .open(&bytes)
                        .expect("a sealed response to this call");
                    let resp = opened.unwrap_or_else(|p| panic!("async call failed: {p:?}"));
                    assert_eq!(check_body(&resp.body, &a.call, a.n), Outcome::Correct);
                    results.insert(a.id.clone(), bytes);
                }
                other => panic!("GET result {} answered {other}", a.id),
            }
        }
        // Polling a result the queue completes on its own schedule: a bounded poll, not a wait
        // standing in for synchronisation.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Both gateways serve the same stored bytes.
    for (k, a) in accepted.iter().enumerate() {
        let g = &g_urls[(k + 1) % 2];
        let r = http
            .get(format!("{g}/v1/projects/{PROJECT}/results/{}", a.id))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(
            &r.bytes().await.unwrap(),
            &results[&a.id],
            "one stored result per call"
        );
        sent.push(Sent {
            name: a.call.clone(),
            digest: digest(&call_body(&a.call, a.n)),
            mode: Mode::Async,
            outcome: Outcome::Correct,
        });
    }
    let mut accepted_ids: HashSet<String> = ids;

    // After the chaos both gateways see all three engines again and serve.
    wait_engines(&http, &g_urls[0], 3, limit).await;
    wait_engines(&http, &g_urls[1], 3, limit).await;
    for (k, c) in clients.iter().enumerate() {
        let name = format!("after-{k}");
        let body = call_body(&name, 5);
        let r = c
            .invoke(PROJECT, FUNCTION, &body, &[], &hash)
            .await
            .expect("call after the chaos");
        assert_eq!(check_body(&r.body, &name, 5), Outcome::Correct);
        sent.push(Sent {
            name,
            digest: digest(&body),
            mode: Mode::Sync,
            outcome: Outcome::Correct,
        });
    }
    // The SDK's asynchronous call: sealed with `clave-mode: async`, queued, polled, opened.
    let body = call_body("sdk-async", 6);
    let pending = clients[0]
        .invoke_async(PROJECT, FUNCTION, &body, &[], &hash)
        .await
        .expect("async submit");
    let r = clients[0]
        .wait_result(&pending, limit, Duration::from_millis(100))
        .await
        .expect("async result");
    assert_eq!(check_body(&r.body, "sdk-async", 6), Outcome::Correct);
    accepted_ids.insert(pending.id().to_owned());
    sent.push(Sent {
        name: s("sdk-async"),
        digest: digest(&body),
        mode: Mode::Async,
        outcome: Outcome::Correct,
    });

    // The queue settles: nothing left in the work-queue stream, nothing unacknowledged.
    let js = async_nats::jetstream::new(nats_client.clone());
    let consumer_name = clave_gateway::QueueConfig::new("").consumer;
    let started = Instant::now();
    let stored = loop {
        let mut st = js.get_stream(stream).await.expect("the stream");
        let info = st.info().await.expect("stream info").clone();
        let mut consumer: async_nats::jetstream::consumer::PullConsumer = st
            .get_consumer(&consumer_name)
            .await
            .expect("the shared consumer");
        let c = consumer.info().await.expect("consumer info").clone();
        if info.state.messages == 0 && c.num_pending == 0 && c.num_ack_pending == 0 {
            break info.state.last_sequence;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the queue did not settle: {} messages, {} pending, {} unacknowledged",
            info.state.messages,
            c.num_pending,
            c.num_ack_pending
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Exact accounting against the engines' run log.
    let runs = parse_run_log(&std::fs::read_to_string(&run_log).expect("the run log"));
    match audit(&sent, &runs, &kills) {
        Ok(counts) => eprintln!("audit ({} calls): {counts:#?}", sent.len()),
        Err(bad) => panic!(
            "{} calls violate the accounting:\n  {}",
            bad.len(),
            bad.join("\n  ")
        ),
    }

    // The stream and the results table agree.
    let payloads = published.lock().unwrap().clone();
    let published_ids: Vec<String> = payloads
        .iter()
        .map(|p| {
            assert!(p.len() > 21 && p.starts_with(b"CLVA\x01"), "a queued call");
            hex::encode(&p[5..21])
        })
        .collect();
    let published_set: HashSet<String> = published_ids.iter().cloned().collect();
    assert_eq!(
        u64::try_from(published_set.len()).unwrap(),
        stored,
        "the stream stored each published call once (duplicates dropped)"
    );
    let rows: Vec<(String, String)> = {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(db_url).await.unwrap();
        sqlx::query_as("SELECT id, status FROM results WHERE project = $1")
            .bind(PROJECT)
            .fetch_all(&mut conn)
            .await
            .unwrap()
    };
    let completed: HashSet<String> = rows
        .iter()
        .filter(|(_, st)| st != "pending")
        .map(|(id, _)| id.clone())
        .collect();
    let pending: Vec<&String> = rows
        .iter()
        .filter(|(_, st)| st == "pending")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        completed, published_set,
        "every published call has a completed result row, and every completed row was published"
    );
    for id in &accepted_ids {
        assert!(
            rows.iter().any(|(r, st)| r == id && st == "ok"),
            "accepted call {id} has a completed (\"ok\") row"
        );
    }
    // A pending row can only be a submit cut short by the gateway kill (row written, not published).
    assert!(
        pending.len() <= ambiguous_submits && pending.iter().all(|id| !accepted_ids.contains(*id)),
        "pending rows left: {pending:?} ({ambiguous_submits} ambiguous submits)"
    );
    eprintln!(
        "queue: {} publishes of {} calls, {stored} stored, {} rows ({} pending)",
        published_ids.len(),
        published_set.len(),
        rows.len(),
        pending.len()
    );

    // Confidentiality sweep, part 1: what the HTTP endpoints show (before the processes stop).
    let mut channels: Vec<(String, Vec<u8>)> = Vec::new();
    let mut endpoints = Vec::new();
    for g in g_urls.iter() {
        for path in [
            "/metrics",
            "/v1/engines",
            "/healthz",
            "/readyz",
            "/v1/keys",
            "/v1/attestation",
            "/.well-known/ohttp-gateway",
        ] {
            endpoints.push((format!("{g}{path}"), Some(ADMIN)));
        }
        endpoints.push((
            format!("{g}/v1/projects/{PROJECT}/functions"),
            Some(&*token),
        ));
        for id in &accepted_ids {
            endpoints.push((format!("{g}/v1/projects/{PROJECT}/results/{id}"), None));
        }
    }
    for port in [e_ports[0], e_ports[2]] {
        for path in ["/v1/engine/ready", "/healthz"] {
            endpoints.push((format!("http://127.0.0.1:{port}{path}"), None));
        }
    }
    for port in [k1, k2] {
        endpoints.push((format!("http://127.0.0.1:{port}/v1/kds/keys"), None));
    }
    let mut metrics_seen = false;
    for (url, auth) in endpoints {
        let mut req = http.get(&url);
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = r.status();
        let bytes = r.bytes().await.unwrap().to_vec();
        if url.ends_with("/metrics") {
            assert!(status.is_success(), "GET {url}: {status}");
            metrics_seen |= !bytes.is_empty();
        }
        channels.push((format!("GET {url} ({status})"), bytes));
    }
    assert!(metrics_seen, "the gateways export metrics");

    // Graceful shutdown on SIGTERM.
    for p in [&mut gw1, &mut gw2, &mut e2]
        .into_iter()
        .chain(engines.iter_mut())
        .chain([&mut kds2, &mut kds1])
    {
        let name = p.name.clone();
        assert!(p.terminate(), "{name} did not stop on SIGTERM");
        assert!(p.stdout().contains("stopped"), "{name}: {}", p.stdout());
    }
    collector.abort();

    // Confidentiality sweep, part 2: every PostgreSQL table (the results table included), every
    // NATS payload, the logs of every process and the KDS data directories.
    let tables = leaks::postgres_tables(db_url).await;
    assert!(
        tables
            .iter()
            .any(|(t, rows)| t.ends_with(" results") && !rows.is_empty()),
        "the dump holds the results table"
    );
    channels.extend(tables);
    for (k, p) in payloads.iter().enumerate() {
        channels.push((format!("NATS message {k}"), p.clone()));
    }
    let log_files = leaks::files_under(logs);
    assert!(
        log_files
            .iter()
            .any(|(_, text)| String::from_utf8_lossy(text).contains(FUNCTION)),
        "the logs captured the platform's activity"
    );
    channels.extend(log_files);
    channels.extend(leaks::files_under(&dir.join("kds1")));
    channels.extend(leaks::files_under(&dir.join("kds2")));
    let needles = leaks::needles(&[CODE_MARKER, INPUT_MARKER, OUTPUT_MARKER]);
    leaks::assert_none(&needles, &channels);
    eprintln!("confidentiality sweep: {} channels clean", channels.len());

    // The sweep can fail: a marker stored base64-encoded in a table is found.
    {
        use base64::Engine as _;
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(db_url).await.unwrap();
        sqlx::query(
            "INSERT INTO usage_records (project, function, version, outcome, duration_ms, \
             request_bytes, response_bytes, created) VALUES ('p', 'f', 1, $1, 0, 0, 0, 0)",
        )
        .bind(format!(
            "x{}",
            base64::engine::general_purpose::STANDARD.encode(INPUT_MARKER)
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        let _ = conn.close().await;
        let hits = leaks::find(&needles, &leaks::postgres_tables(db_url).await);
        assert!(
            hits.iter()
                .any(|h| h.contains("(base64) in PostgreSQL table usage_records")),
            "the sweep must see a base64 marker in a table: {hits:?}"
        );
    }
}

/// Calls/s through one gateway with 1, 2 and 3 engines. Release build:
/// `cargo test --release -p clave-cli --test cluster -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
async fn throughput_by_engine_count() {
    let tmp = tempfile::tempdir().expect("tmp");
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let seconds: u64 = std::env::var("CLAVE_THROUGHPUT_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let concurrency: usize = std::env::var("CLAVE_THROUGHPUT_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let pg = std::env::var("CLAVE_TEST_POSTGRES_URL").ok();
    let http = http_client();
    let mut table = Vec::new();
    for engines_n in 1..=3usize {
        let db = match &pg {
            Some(pg) if services::check(services::POSTGRES, pg).is_ok() => {
                Some(Db::create(pg, "tput").await.expect("db"))
            }
            _ => None,
        };
        let db_url = db.as_ref().map_or_else(
            || format!("sqlite://{}/gw-{engines_n}.db", tmp.path().display()),
            |d| d.url.clone(),
        );
        let p = free_ports(2 + engines_n);
        let mut kds = kds_proc(
            "kds",
            p[0],
            &tmp.path().join(format!("kds{engines_n}")),
            None,
            &logs,
        );
        kds.start();
        wait_ok(
            &http,
            &format!("http://127.0.0.1:{}/v1/kds/keys", p[0]),
            &mut kds,
            Duration::from_secs(60),
        )
        .await;
        let mut engines: Vec<Proc> = (0..engines_n)
            .map(|i| {
                engine_proc(
                    &format!("e{engines_n}-{i}"),
                    p[2 + i],
                    p[0],
                    &[],
                    &logs,
                    None,
                )
            })
            .collect();
        for e in &mut engines {
            e.start();
        }
        for (i, e) in engines.iter_mut().enumerate() {
            wait_ok(
                &http,
                &format!("http://127.0.0.1:{}/v1/engine/ready", p[2 + i]),
                e,
                Duration::from_secs(60),
            )
            .await;
        }
        let list = (0..engines_n)
            .map(|i| format!("http://127.0.0.1:{}", p[2 + i]))
            .collect::<Vec<_>>()
            .join(",");
        let gw_url = format!("http://127.0.0.1:{}", p[1]);
        let mut gw = gateway_proc(
            "gw",
            p[1],
            p[0],
            &GatewayEnv {
                db: &db_url,
                nats: None,
                engines: Some(list),
            },
            &logs,
        );
        gw.env
            .push((s("CLAVE_GATEWAY_SLOTS"), (4 * engines_n).to_string()));
        gw.start();
        wait_ok(
            &http,
            &format!("{gw_url}/healthz"),
            &mut gw,
            Duration::from_secs(60),
        )
        .await;
        wait_engines(&http, &gw_url, engines_n, Duration::from_secs(30)).await;
        http.put(format!("{gw_url}/v1/projects/{PROJECT}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        let client = Arc::new(Client::new(&gw_url, trust()).unwrap());
        let token = client.create_token(PROJECT, ADMIN).await.unwrap().token;
        let hash = client
            .deploy(
                PROJECT,
                FUNCTION,
                "index.js",
                CODE.as_bytes(),
                Limits::default(),
                &token,
            )
            .await
            .unwrap()
            .code_hash;
        // Warm up every engine's code cache, then measure.
        for _ in 0..(4 * engines_n) {
            client
                .invoke(PROJECT, FUNCTION, &call_body("w", 1), &[], &hash)
                .await
                .unwrap();
        }
        let ok = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(AtomicUsize::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for t in 0..concurrency {
            let (client, ok, errors) = (client.clone(), ok.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = 0u64;
                while Instant::now() < deadline {
                    i += 1;
                    let id = format!("{t}-{i}");
                    let body = call_body(&id, i);
                    match client.invoke(PROJECT, FUNCTION, &body, &[], &hash).await {
                        Ok(r) if check_body(&r.body, &id, i) == Outcome::Correct => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let elapsed = started.elapsed().as_secs_f64();
        let rate = ok.load(Ordering::Relaxed) as f64 / elapsed;
        eprintln!(
            "{engines_n} engine(s): {rate:.0} calls/s ({} ok, {} errors, {elapsed:.1} s, {concurrency} clients, database {})",
            ok.load(Ordering::Relaxed),
            errors.load(Ordering::Relaxed),
            db_url.split(':').next().unwrap_or("?"),
        );
        table.push((engines_n, rate, errors.load(Ordering::Relaxed)));
        gw.terminate();
        for e in &mut engines {
            e.terminate();
        }
        kds.terminate();
        if let Some(db) = db {
            db.drop_db().await;
        }
    }
    eprintln!("engines  calls/s  errors");
    for (n, rate, errors) in table {
        eprintln!("{n:>7}  {rate:>7.0}  {errors:>6}");
    }
}

/// The audit itself can fail: each kind of miscount is caught (no services needed).
#[test]
fn audit_catches_double_lost_and_unexplained_runs() {
    let call = |name: &str, mode, outcome| Sent {
        name: name.to_owned(),
        digest: digest(name.as_bytes()),
        mode,
        outcome,
    };
    let sent = vec![
        call("ok", Mode::Sync, Outcome::Correct),
        call("refused", Mode::Sync, Outcome::NotRun(s("503"))),
        call("broken", Mode::Sync, Outcome::MayHaveRun(s("reset"))),
        call("queued", Mode::Async, Outcome::Correct),
    ];
    let line =
        |kind: &str, name: &str, ms: u64| format!("{kind} {} 1 {ms}\n", digest(name.as_bytes()));
    let run = |name: &str, at: u64| line("start", name, at) + &line("done", name, at + 1);
    let good = run("ok", 10) + &run("broken", 20) + &run("queued", 30);
    let kills = [100u128];
    let counts = audit(&sent, &parse_run_log(&good), &kills).expect("a correct log passes");
    assert_eq!(counts["sync ok, ran once"], 1);
    // An async call cut short by a kill and run again is fine.
    let rerun = good.clone() + &run("queued", 200);
    assert!(audit(&sent, &parse_run_log(&rerun), &kills).is_ok());
    // Each bad log is refused for its own miscount:
    // (log, whom the complaint names first, the problem, what the case models).
    for (bad, who, problem, why) in [
        (
            good.clone() + &run("ok", 40),
            "ok (",
            "answered OK but did not run exactly once",
            "double execution of an OK call",
        ),
        (
            run("ok", 10) + &run("broken", 20),
            "queued (",
            "accepted but never ran to completion (lost)",
            "lost async call",
        ),
        (
            good.clone() + &run("queued", 40),
            "queued (",
            "accepted and ran twice without a kill in between",
            "async run twice with no kill between",
        ),
        (
            good.clone() + &run("refused", 40),
            "refused (",
            "refused as \"not run\" but ran",
            "a \"not run\" refusal that ran",
        ),
        (
            good.clone() + &run("broken", 40),
            "broken (",
            "ambiguous but ran more than once",
            "an ambiguous call run twice",
        ),
        (
            good.clone() + &run("never-sent", 40),
            "a body that was never sent ran",
            "",
            "a run nobody sent",
        ),
        (
            good.replace("done", "start"),
            "ok (",
            "answered OK but did not run exactly once",
            "an OK call that never completed",
        ),
    ] {
        let Err(errs) = audit(&sent, &parse_run_log(&bad), &kills) else {
            panic!("not caught: {why}");
        };
        assert!(
            errs.iter()
                .any(|e| e.starts_with(who) && e.contains(problem)),
            "{why}: wanted {who}…{problem}, got {errs:#?}"
        );
    }
}

/// The confidentiality search finds markers in every encoding and alignment.
#[test]
fn leak_search_finds_every_encoding() {
    leaks::self_check();
}
