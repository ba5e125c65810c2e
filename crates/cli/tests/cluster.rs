//! Multi-process cluster on loopback, from the real `clave` binary: 2 KDS replicas (the second
//! joins the first by mutual attestation), 3 engines (two on one replica, one on the other), 2
//! gateways over one PostgreSQL database and one NATS JetStream stream. A fixed load of sealed
//! calls (300 synchronous, alternating gateways, and 50 asynchronous) runs while one engine and
//! one gateway are killed (SIGKILL) and restarted.
//!
//! Asserted: every synchronous call returns the correct decrypted result, or a clean retryable
//! error (503 / connection refused), or — only for calls in flight on a process at the moment it
//! was killed — the gateway's "may have run" answer (502/504) or a broken connection, bounded by
//! the number of calls in flight; every accepted asynchronous call completes exactly once, with
//! its own result (each output echoes a per-call id).
//!
//! Needs `CLAVE_TEST_POSTGRES_URL` (a fresh database is created and dropped) and NATS on
//! 127.0.0.1:4222 (`CLAVE_TEST_NATS_URL` overrides; a unique stream is created and deleted);
//! skipped with a printed reason otherwise.
//!
//! `throughput_by_engine_count` (ignored; run in release) measures calls/s with 1, 2 and 3
//! engines behind one gateway: see docs/scaling.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clave_cli::platform::{dev_engine_measurement, dev_kds_measurement};
use clave_client::{Client, ClientError, CodeHash, Limits, TrustPolicy, now_unix};
use clave_proto::invoke::{InvokeRequest, InvokeResponseOpener, seal_invoke};
use clave_proto::{FunctionName, ProjectName};

const ADMIN: &str = "cat_cluster-test-admin-token";
const PROJECT: &str = "cluster";
const FUNCTION: &str = "square";
const CODE: &str = r#"
export default {
  async fetch(request) {
    const b = await request.json();
    return Response.json({ id: b.id, sq: b.n * b.n + 7 });
  },
};
"#;

/// One `clave` child process that can be killed and started again with the same arguments.
struct Proc {
    name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    logs: PathBuf,
    starts: usize,
    child: Option<Child>,
}

impl Proc {
    fn new(name: &str, args: &[String], env: &[(&str, String)], logs: &Path) -> Self {
        Self {
            name: name.to_owned(),
            args: args.to_vec(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            logs: logs.to_path_buf(),
            starts: 0,
            child: None,
        }
    }

    fn start(&mut self) {
        self.starts += 1;
        let log = |ext: &str| {
            std::fs::File::create(
                self.logs
                    .join(format!("{}-{}.{ext}", self.name, self.starts)),
            )
            .expect("log file")
        };
        let mut cmd = Command::new(common::bin());
        cmd.args(&self.args)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .env_remove("CLAVE_CONFIG_FILE")
            .stdin(Stdio::null())
            .stdout(log("stdout"))
            .stderr(log("stderr"));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn clave"));
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(
            self.logs
                .join(format!("{}-{}.stderr", self.name, self.starts)),
        )
        .unwrap_or_default()
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(
            self.logs
                .join(format!("{}-{}.stdout", self.name, self.starts)),
        )
        .unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Some(status) = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().expect("wait"))
        {
            panic!("{} exited ({status}): {}", self.name, self.stderr());
        }
    }

    /// SIGKILL, as a crash.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (bounded); returns whether it exited by itself.
    fn terminate(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if c.try_wait().ok().flatten().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

fn reachable(addr: &str) -> bool {
    use std::net::ToSocketAddrs as _;
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

fn host_port(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

async fn wait_ok(http: &reqwest::Client, url: &str, proc_: &mut Proc, limit: Duration) {
    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        proc_.assert_running();
        assert!(
            started.elapsed() < limit,
            "{} did not answer {url} within {limit:?}: {}",
            proc_.name,
            proc_.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
            .map_err(|e| format!("cannot connect to {}: {e}", host_port(admin_url)))?;
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

fn engine_proc(name: &str, port: u16, kds: u16, register: &[String], logs: &Path) -> Proc {
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
    Proc::new(name, &args, &[("CLAVE_ADMIN_TOKEN", s(ADMIN))], logs)
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
    /// 503 or connection refused: certainly did not run.
    Retryable(String),
    /// 502/504 or a connection broken after sending: may have run (only around a kill).
    MayHaveRun(String),
    /// Anything else: a failure of the test.
    Wrong(String),
}

fn classify(e: &ClientError) -> Outcome {
    match e {
        ClientError::Gateway { status: 503, .. } => Outcome::Retryable(s("503")),
        ClientError::Gateway {
            status: s @ (502 | 504),
            ..
        } => Outcome::MayHaveRun(format!("{s}")),
        ClientError::Transport { reason, .. } => {
            let r = reason.to_ascii_lowercase();
            if r.contains("refused") || r.contains("connect") {
                Outcome::Retryable(s("connection refused"))
            } else {
                Outcome::MayHaveRun(format!("transport: {reason}"))
            }
        }
        other => Outcome::Wrong(other.to_string()),
    }
}

fn check_body(body: &[u8], id: &str, n: u64) -> Outcome {
    let v: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Outcome::Wrong(format!("not JSON: {e}")),
    };
    if v["id"] == id && v["sq"] == n * n + 7 {
        Outcome::Correct
    } else {
        Outcome::Wrong(format!("wrong result for {id}/{n}: {v}"))
    }
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
    let body = serde_json::to_vec(&serde_json::json!({ "id": call, "n": n })).unwrap();
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
        Err(e) if e.is_connect() => Err(Outcome::Retryable(s("connection refused"))),
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
        Ok(r) if r.status().as_u16() == 503 => Err(Outcome::Retryable(s("503"))),
        Ok(r) => Err(Outcome::Wrong(format!(
            "async submit answered {}",
            r.status()
        ))),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_survives_killed_engine_and_gateway() {
    let Ok(pg) = std::env::var("CLAVE_TEST_POSTGRES_URL") else {
        eprintln!("skipped: CLAVE_TEST_POSTGRES_URL is not set");
        return;
    };
    let nats = std::env::var("CLAVE_TEST_NATS_URL").unwrap_or_else(|_| s("nats://127.0.0.1:4222"));
    if !reachable(&host_port(&pg)) {
        eprintln!("skipped: PostgreSQL at {} is unreachable", host_port(&pg));
        return;
    }
    if !reachable(&host_port(&nats)) {
        eprintln!("skipped: NATS at {} is unreachable", host_port(&nats));
        return;
    }
    let test_started = Instant::now();
    let db = match Db::create(&pg, "cluster").await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
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
    let p = free_ports(7);
    let (k1, k2, e_ports, g1, g2) = (p[0], p[1], [p[2], p[3], p[4]], p[5], p[6]);
    let g_urls = [
        format!("http://127.0.0.1:{g1}"),
        format!("http://127.0.0.1:{g2}"),
    ];
    let http = http_client();
    let limit = Duration::from_secs(60);

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
            engine_proc(&format!("engine{}", i + 1), *port, kds, &g_urls, logs)
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
    for c in &clients {
        let r = c
            .invoke(PROJECT, FUNCTION, br#"{"id":"warm","n":3}"#, &[], &hash)
            .await
            .expect("first call");
        assert_eq!(check_body(&r.body, "warm", 3), Outcome::Correct);
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
    // at 180, restart it at 240. Every wait is bounded.
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
            wait_for(60);
            e2.kill();
            events.push((done.load(Ordering::SeqCst), "engine2 killed"));
            wait_for(120);
            e2.start();
            events.push((done.load(Ordering::SeqCst), "engine2 restarted"));
            wait_for(180);
            gw2.kill();
            events.push((done.load(Ordering::SeqCst), "gateway2 killed"));
            wait_for(240);
            gw2.start();
            events.push((done.load(Ordering::SeqCst), "gateway2 restarted"));
            (e2, gw2, events)
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
                if i % 7 == 3 {
                    let r = tokio::time::timeout(
                        Duration::from_secs(20),
                        submit_async(&http, &clients[g], &g_urls[g], &hash, &call, n),
                    )
                    .await
                    .unwrap_or_else(|_| Err(Outcome::Wrong(s("async submit timed out"))));
                    match r {
                        Ok(a) => async_calls.lock().await.push(a),
                        Err(o) => async_rejected.lock().unwrap().push((i, o)),
                    }
                } else {
                    let body =
                        serde_json::to_vec(&serde_json::json!({ "id": call, "n": n })).unwrap();
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
                    sync_outcomes.lock().unwrap().push((i, g, o));
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for w in workers {
        w.await.expect("load worker");
    }
    let load_time = load_started.elapsed();
    let (mut e2, mut gw2, events) = chaos.join().expect("chaos thread");
    eprintln!("chaos: {events:?}");

    // Synchronous calls.
    let sync_outcomes = sync_outcomes.lock().unwrap().clone();
    assert_eq!(sync_outcomes.len(), 300);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (_, g, o) in &sync_outcomes {
        let key = match o {
            Outcome::Correct => format!("gateway{} correct", g + 1),
            Outcome::Retryable(w) => format!("gateway{} retryable {w}", g + 1),
            Outcome::MayHaveRun(w) => format!("gateway{} may-have-run {w}", g + 1),
            Outcome::Wrong(w) => format!("WRONG {w}"),
        };
        *counts.entry(key).or_default() += 1;
    }
    eprintln!("sync outcomes in {load_time:?}: {counts:#?}");
    let wrong: Vec<_> = sync_outcomes
        .iter()
        .filter(|(_, _, o)| matches!(o, Outcome::Wrong(_)))
        .collect();
    assert!(wrong.is_empty(), "wrong results: {wrong:?}");
    let may_have_run = sync_outcomes
        .iter()
        .filter(|(_, _, o)| matches!(o, Outcome::MayHaveRun(_)))
        .count();
    let correct = sync_outcomes
        .iter()
        .filter(|(_, _, o)| *o == Outcome::Correct)
        .count();
    assert!(
        correct >= 200,
        "only {correct} of 300 synchronous calls succeeded"
    );
    let after_restart: Vec<_> = sync_outcomes
        .iter()
        .filter(|(i, g, _)| *g == 0 && *i >= 300)
        .collect();
    assert!(
        after_restart.iter().all(|(_, _, o)| *o == Outcome::Correct),
        "gateway 1 kept serving: {after_restart:?}"
    );

    // Asynchronous calls: every accepted one completes exactly once with its own result.
    let rejected = async_rejected.lock().unwrap().clone();
    assert!(
        rejected
            .iter()
            .all(|(_, o)| matches!(o, Outcome::Retryable(_) | Outcome::MayHaveRun(_))),
        "async submissions must be accepted or cleanly refused: {rejected:?}"
    );
    let ambiguous = may_have_run
        + rejected
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::MayHaveRun(_)))
            .count();
    // Only calls in flight at one of the two kills may end "may have run".
    assert!(
        ambiguous <= 2 * CONCURRENCY,
        "{ambiguous} calls ended ambiguously: more than were in flight at the kills"
    );
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
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Exactly once: the stored result never changes (a second run would not overwrite it), and
    // both gateways serve the same bytes.
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
    }

    // After the chaos both gateways see all three engines again and serve.
    wait_engines(&http, &g_urls[0], 3, limit).await;
    wait_engines(&http, &g_urls[1], 3, limit).await;
    for c in clients.iter() {
        let r = c
            .invoke(PROJECT, FUNCTION, br#"{"id":"after","n":5}"#, &[], &hash)
            .await
            .expect("call after the chaos");
        assert_eq!(check_body(&r.body, "after", 5), Outcome::Correct);
    }
    // The SDK's asynchronous call: sealed with `clave-mode: async`, queued, polled, opened.
    let pending = clients[0]
        .invoke_async(
            PROJECT,
            FUNCTION,
            br#"{"id":"sdk-async","n":6}"#,
            &[],
            &hash,
        )
        .await
        .expect("async submit");
    let r = clients[0]
        .wait_result(&pending, limit, Duration::from_millis(100))
        .await
        .expect("async result");
    assert_eq!(check_body(&r.body, "sdk-async", 6), Outcome::Correct);

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
            Some(pg) if reachable(&host_port(pg)) => {
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
            .map(|i| engine_proc(&format!("e{engines_n}-{i}"), p[2 + i], p[0], &[], &logs))
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
                .invoke(PROJECT, FUNCTION, br#"{"id":"w","n":1}"#, &[], &hash)
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
                    let body =
                        serde_json::to_vec(&serde_json::json!({ "id": id, "n": i })).unwrap();
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
