//! clave-bench: the confidential path against a plaintext path on the same engine and sandbox, and
//! against a real peer (Cloudflare's workerd), side by side.
//!
//! It starts the platform in this process on 127.0.0.1 (KDS, engine, gateway; SQLite in a temporary
//! directory; the INSECURE simulated TEE), deploys a 1 KiB JSON echo function and drives it with a
//! built-in closed-loop load generator. It prints a table and, with `--json FILE`, writes the
//! results. It refuses nothing and proves nothing about security: the plaintext path it enables
//! exists only for this comparison, and every figure comes from the simulated TEE.

mod alone;
mod load;
mod platform;
mod report;
mod startup;
mod sys;
mod workerd;

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use clave_cli::platform::DEV_PROJECT;
use clave_client::{CodeHash, Limits};
use serde_json::{Value, json};

use crate::load::{Conn, Mode, RunStats, Target};
use crate::platform::Platform;
use crate::report::{print_alone, print_table, stats_json, warn_errors};
use crate::startup::{DevProcess, cold_start, idle_functions, process_start};

/// The echo function (the same source runs on workerd).
const ECHO: &str = "export default {\n  async fetch(request) {\n    return Response.json(await request.json());\n  }\n};\n";

/// Benchmark the confidential path, the plaintext path and workerd.
#[derive(Parser, Debug, Clone)]
#[command(name = "clave-bench", version)]
struct Args {
    /// Fewer and shorter samples (under a minute), same table.
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Connections of the loaded runs.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Skip the workerd comparison.
    #[arg(long)]
    no_workerd: bool,
    /// Skip the run pinned to CPU 0.
    #[arg(long)]
    no_pinned: bool,
    /// Internal: run the loaded measurements pinned to CPU 0 and print JSON.
    #[arg(long, hide = true)]
    child_pinned: bool,
    /// Internal: the workerd binary for the pinned child.
    #[arg(long, hide = true)]
    workerd_bin: Option<PathBuf>,
    /// Measure the server alone: the server (and workerd) on CPU 1, requests sealed ahead and
    /// replayed by a load generator in another process on CPU 0; server CPU and context
    /// switches per call from /proc, apart from the load generator's. Also runs the confidential
    /// load against a `clave dev` process (the `clave` binary next to this one, when built), as
    /// an external load generator would. Replaces the other runs.
    #[arg(long)]
    server_alone: bool,
    /// Measure only process start → first confidential response of a `clave dev` process (the
    /// `clave` binary next to this one), N times (default 10 with --quick, else 20).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "0")]
    process_start: Option<usize>,
    /// With --process-start: keep each start's server log (`RUST_LOG=debug` for clave's crates,
    /// with the start's phases in µs) in DIR/start-N.log, and the client's spawn time in it.
    #[arg(long, value_name = "DIR")]
    start_logs: Option<PathBuf>,
    /// With --server-alone: distinct confidential requests sealed ahead (default 20 000 with
    /// --quick, else 60 000); the measured interval ends early when they run out.
    #[arg(long, value_name = "N")]
    sealed_requests: Option<usize>,
    /// With --server-alone: `perf record -g` the server process during the confidential run
    /// into this file, and the `clave dev` process of the first "both CPUs shared" round into
    /// FILE with the extension `.shared` (needs `perf`).
    #[arg(long, value_name = "FILE")]
    perf_record: Option<PathBuf>,
    /// Internal: be the load generator of --server-alone.
    #[arg(long, hide = true)]
    load_child: bool,
    #[arg(long, hide = true)]
    load_addr: Option<std::net::SocketAddr>,
    #[arg(long, hide = true)]
    load_file: Option<PathBuf>,
    #[arg(long, hide = true, default_value_t = true, action = clap::ArgAction::Set)]
    load_once: bool,
    #[arg(long, hide = true, default_value_t = 0)]
    server_pid: u32,
    #[arg(long, hide = true, default_value_t = 1024)]
    min_body: usize,
    #[arg(long, hide = true, default_value_t = 1000)]
    warmup_ms: u64,
    #[arg(long, hide = true, default_value_t = 5000)]
    measure_ms: u64,
    #[arg(long, hide = true)]
    load_cpu: Option<usize>,
}

/// CPU of the server in --server-alone; the load generator gets [`LOAD_CPU`].
const SERVER_CPU: usize = 1;
/// CPU of the load generator in --server-alone.
const LOAD_CPU: usize = 0;

/// Durations and sample counts.
#[derive(Clone, Copy, Debug)]
struct Plan {
    latency: Duration,
    warmup: Duration,
    loaded: Duration,
    cold_functions: usize,
    idle_functions: usize,
    process_starts: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                latency: Duration::from_millis(1500),
                warmup: Duration::from_millis(500),
                loaded: Duration::from_secs(2),
                cold_functions: 10,
                idle_functions: 50,
                process_starts: 10,
            }
        } else {
            Self {
                latency: Duration::from_secs(5),
                warmup: Duration::from_secs(1),
                loaded: Duration::from_secs(6),
                // The gateway's default limit is 100 functions per project (echo included).
                cold_functions: 19,
                idle_functions: 80,
                process_starts: 20,
            }
        }
    }
}

/// A free TCP port on 127.0.0.1.
pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A 1 KiB JSON document.
fn body_1k() -> Vec<u8> {
    let head = r#"{"id":42,"kind":"bench","payload":""#;
    let tail = r#""}"#;
    let pad = 1024 - head.len() - tail.len();
    format!("{head}{}{tail}", "x".repeat(pad)).into_bytes()
}

fn main() -> ExitCode {
    let args = Args::parse();
    let pin = if args.child_pinned {
        Some(0)
    } else if args.load_child {
        args.load_cpu
    } else if args.server_alone {
        Some(SERVER_CPU)
    } else {
        None
    };
    if let Some(cpu) = pin {
        // Before any thread exists: every thread of the process inherits the affinity.
        if let Err(e) = sys::pin_to_cpu(cpu) {
            eprintln!("clave-bench: cannot pin to CPU {cpu}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let rt = if args.load_child {
        // One CPU: one thread, no work stealing.
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        // As `clave` builds it: fast functions run inline on these threads.
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_stack_size(clave_cli::RUNTIME_THREAD_STACK)
            .build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("clave-bench: tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        if args.load_child {
            load_child(&args).await
        } else if args.server_alone {
            server_alone(&args).await
        } else if let Some(n) = args.process_start {
            process_start_only(&args, n).await
        } else if args.child_pinned {
            child_pinned(&args).await
        } else {
            parent(&args).await
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clave-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--process-start`: only the process start measurement, printed as a line and JSON.
async fn process_start_only(args: &Args, n: usize) -> Result<()> {
    let runs = match (n, args.quick) {
        (0, true) => 10,
        (0, false) => 20,
        (n, _) => n,
    };
    if let Some(dir) = &args.start_logs {
        std::fs::create_dir_all(dir)?;
    }
    eprintln!("  process start to first confidential response ({runs} starts) ...");
    let v = process_start(&body_1k(), runs, args.start_logs.as_deref()).await?;
    println!(
        "process start -> first confidential response: p50 {:.2} ms, min {:.2} ms",
        v["to_first_confidential_response_p50_ms"]
            .as_f64()
            .unwrap_or(f64::NAN),
        v["to_first_confidential_response_min_ms"]
            .as_f64()
            .unwrap_or(f64::NAN),
    );
    println!("{}", serde_json::to_string_pretty(&v)?);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&v)?)?;
    }
    Ok(())
}

/// The platform with the echo function deployed, and targets for both paths.
struct Bench {
    platform: Platform,
    confidential: Arc<Target>,
    plaintext: Arc<Target>,
    body: Arc<Vec<u8>>,
}

async fn deploy(p: &Platform, name: &str, code: &str) -> Result<CodeHash> {
    deploy_with(&p.client, &p.token, name, code).await
}

/// Deploy `code` as `name` in the dev project through `client`.
async fn deploy_with(
    client: &clave_client::Client,
    token: &str,
    name: &str,
    code: &str,
) -> Result<CodeHash> {
    let d = client
        .deploy(
            DEV_PROJECT,
            name,
            "index.js",
            code.as_bytes(),
            Limits::default(),
            token,
        )
        .await
        .with_context(|| format!("deploy {name}"))?;
    Ok(d.code_hash)
}

/// The confidential mode of a target: the invoke key `client` verified now, and the code hash.
async fn confidential_mode(client: &clave_client::Client, code_hash: CodeHash) -> Result<Mode> {
    let now = clave_client::now_unix();
    let key = client
        .verified(now)
        .await?
        .invoke_key(now)
        .context("no invoke key")?
        .key_config
        .clone();
    Ok(Mode::Confidential { key, code_hash })
}

impl Bench {
    async fn start() -> Result<(Self, Duration)> {
        let started = Instant::now();
        let platform = Platform::start().await?;
        let start_time = started.elapsed();
        let code_hash = deploy(&platform, "echo", ECHO).await?;
        let body = Arc::new(body_1k());
        let confidential =
            Arc::new(Self::target_of(&platform, "echo", code_hash, &body, true).await?);
        let plaintext =
            Arc::new(Self::target_of(&platform, "echo", code_hash, &body, false).await?);
        Ok((
            Self {
                platform,
                confidential,
                plaintext,
                body,
            },
            start_time,
        ))
    }

    async fn target_of(
        p: &Platform,
        function: &str,
        code_hash: CodeHash,
        body: &Arc<Vec<u8>>,
        confidential: bool,
    ) -> Result<Target> {
        let mode = if confidential {
            confidential_mode(&p.client, code_hash).await?
        } else {
            Mode::Plaintext { code_hash }
        };
        Ok(Target {
            addr: p.addr,
            project: DEV_PROJECT.parse()?,
            function: function.parse()?,
            mode,
            body: body.clone(),
        })
    }

    fn raw(&self, addr: std::net::SocketAddr) -> Arc<Target> {
        let mut t = self.plaintext.as_ref().clone();
        t.addr = addr;
        t.mode = Mode::Raw;
        Arc::new(t)
    }
}

/// The pinned child: loaded runs on CPU 0 only, JSON on stdout.
async fn child_pinned(args: &Args) -> Result<()> {
    let plan = Plan::new(args.quick);
    let (bench, _) = Bench::start().await?;
    let n = args.connections;
    let conf = load::run(
        bench.confidential.clone(),
        n,
        plan.warmup,
        plan.loaded,
        None,
    )
    .await?;
    let plain = load::run(bench.plaintext.clone(), n, plan.warmup, plan.loaded, None).await?;
    let mut out = json!({
        "confidential": stats_json(&conf),
        "plaintext": stats_json(&plain),
    });
    if let Some(bin) = &args.workerd_bin {
        let w = workerd::Workerd::start(bin, ECHO).await?;
        let peer = load::run(
            bench.raw(w.addr),
            n,
            plan.warmup,
            plan.loaded,
            Some(w.pid()),
        )
        .await?;
        out["workerd"] = stats_json(&peer);
    }
    println!("{out}");
    Ok(())
}

async fn pinned_run(args: &Args, workerd_bin: Option<&PathBuf>) -> Result<Value> {
    let exe = std::env::current_exe()?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("--child-pinned")
        .arg("--connections")
        .arg(args.connections.to_string());
    if args.quick {
        cmd.arg("--quick");
    }
    if let Some(w) = workerd_bin {
        cmd.arg("--workerd-bin").arg(w);
    }
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .await?;
    if !out.status.success() {
        bail!("the pinned run failed: {}", out.status);
    }
    serde_json::from_slice(&out.stdout).context("pinned run output")
}

async fn load_child(args: &Args) -> Result<()> {
    alone::child(alone::LoadSpec {
        addr: args.load_addr.context("--load-addr")?,
        file: args.load_file.clone().context("--load-file")?,
        once: args.load_once,
        server_pid: args.server_pid,
        connections: args.connections,
        min_body: args.min_body,
        warmup: Duration::from_millis(args.warmup_ms),
        measure: Duration::from_millis(args.measure_ms),
        cpu: args.load_cpu,
    })
    .await
}

/// The HTTP/1.1 bytes of `n` requests to `target`: distinct sealed requests (confidential), or
/// plain BHTTP / raw JSON requests.
fn prepared_requests(target: &Target, n: usize) -> Result<Vec<Vec<u8>>> {
    let path = match target.mode {
        Mode::Raw => "/".to_owned(),
        _ => format!(
            "/v1/projects/{}/functions/{}/invoke",
            target.project, target.function
        ),
    };
    let inner = |code_hash: CodeHash| {
        let mut r = clave_proto::InvokeRequest::new(
            target.project.clone(),
            target.function.clone(),
            code_hash,
            clave_client::now_unix(),
            target.body.as_ref().clone(),
        );
        r.headers
            .push(("content-type".into(), "application/json".into()));
        r
    };
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(match &target.mode {
            Mode::Confidential { key, code_hash } => {
                let (enc, _opener) =
                    clave_proto::seal_invoke(key, &inner(*code_hash), &mut rand::rng())?;
                alone::http_request(&path, "message/ohttp-req", &enc)
            }
            Mode::Plaintext { code_hash } => {
                alone::http_request(&path, "message/bhttp", &inner(*code_hash).to_bhttp()?)
            }
            Mode::Raw => alone::http_request(&path, "application/json", &target.body),
        });
    }
    Ok(out)
}

/// `--server-alone`: see [`alone`].
async fn server_alone(args: &Args) -> Result<()> {
    let plan = Plan::new(args.quick);
    // This process is already pinned to SERVER_CPU (main refuses to start when that CPU is not
    // available); the load child pins itself to LOAD_CPU.
    let (model, _) = sys::machine();
    let cpus = 2;
    eprintln!(
        "clave-bench --server-alone ({}) on {model}: server on CPU {SERVER_CPU}, load generator on CPU {LOAD_CPU}",
        if args.quick { "quick" } else { "full" }
    );
    eprintln!("  INSECURE: simulated TEE and a plaintext comparison path; figures only.");
    let (bench, _) = Bench::start().await?;
    // Checked end to end (sealed answers opened) before the replayed runs.
    for t in [&bench.confidential, &bench.plaintext] {
        let mut c = Conn::open(t.clone()).await?;
        for _ in 0..50 {
            c.request().await?;
        }
    }
    let dir = tempfile::tempdir()?;
    let sealed = args
        .sealed_requests
        .unwrap_or(if args.quick { 20_000 } else { 60_000 });
    let spec = |addr, file: PathBuf, once, pid| alone::LoadSpec {
        addr,
        file,
        once,
        server_pid: pid,
        connections: args.connections,
        min_body: bench.body.len(),
        warmup: plan.warmup,
        measure: plan.loaded,
        cpu: Some(LOAD_CPU),
    };
    let me = std::process::id();
    let mut results = json!({
        "machine": { "cpus": cpus, "cpu_model": model, "quick": args.quick,
                     "connections": args.connections, "server_cpu": SERVER_CPU, "load_cpu": LOAD_CPU },
    });

    eprintln!("  sealing {sealed} distinct confidential requests ahead ...");
    let t = Instant::now();
    let conf = prepared_requests(&bench.confidential, sealed)?;
    let seal_us = t.elapsed().as_secs_f64() * 1e6 / sealed.max(1) as f64;
    let conf_file = dir.path().join("confidential");
    alone::write_requests(&conf_file, &conf)?;
    drop(conf);
    eprintln!("  confidential, server alone ...");
    let r = recorded(
        args.perf_record.as_deref(),
        me,
        alone::run_child(&spec(bench.platform.addr, conf_file, true, me)),
    )
    .await;
    results["confidential"] = r?;
    results["confidential"]["client_seal_us_per_request_ahead"] = json!(seal_us);

    // The same kind of load against a real `clave dev` process (default log level, its own
    // process): what a user's external load generator sees.
    if let Some(dev) = DevProcess::start(&bench.body, false).await? {
        eprintln!("  confidential on a `clave dev` process, server alone ...");
        let file = dir.path().join("dev");
        alone::write_requests(&file, &prepared_requests(&dev.target, sealed)?)?;
        dev.callgrind_zero()?;
        let mut r = alone::run_child(&spec(dev.target.addr, file, true, dev.pid())).await?;
        if let Some(ir) = dev.callgrind_dump()? {
            let total = r["requests_total"].as_f64().unwrap_or(f64::NAN);
            r["server_instructions_per_request"] = json!(ir as f64 / total);
            eprintln!(
                "  clave dev under callgrind: {ir} instructions over {total} requests = {:.0} per request",
                ir as f64 / total
            );
        }
        results["clave_dev"] = r;
    }

    eprintln!("  plaintext, server alone ...");
    let plain_file = dir.path().join("plaintext");
    alone::write_requests(&plain_file, &prepared_requests(&bench.plaintext, 1000)?)?;
    results["plaintext"] =
        alone::run_child(&spec(bench.platform.addr, plain_file, false, me)).await?;

    match workerd::find() {
        None => eprintln!(
            "  ! workerd not found: peer comparison skipped (install it with crates/bench/workerd.sh, or set WORKERD)"
        ),
        Some(bin) if !args.no_workerd => {
            // Started from this process: it inherits CPU {SERVER_CPU}.
            let w = workerd::Workerd::start(&bin, ECHO).await?;
            eprintln!("  workerd, server alone ...");
            let raw = bench.raw(w.addr);
            let file = dir.path().join("workerd");
            alone::write_requests(&file, &prepared_requests(&raw, 1)?)?;
            results["workerd"] = alone::run_child(&spec(w.addr, file, false, w.pid())).await?;
        }
        Some(_) => {}
    }

    // Issue 16's must: an external load generator with both CPUs shared. `clave dev` and
    // workerd as each ships (clave's runtime has a thread per CPU; workerd serves from one
    // thread), each process and the load generator free to run on any CPU. Alternated twice.
    let peer = workerd::find().filter(|_| !args.no_workerd);
    if let Some(dev) = DevProcess::start(&bench.body, true).await? {
        let mut shared = json!({ "clave_dev": [], "workerd": [] });
        let w = match &peer {
            Some(bin) => Some(workerd::Workerd::start_on(bin, ECHO, true).await?),
            None => None,
        };
        for round in 1..=2 {
            eprintln!("  both CPUs shared, round {round}: clave dev (sealed) ...");
            let file = dir.path().join(format!("shared-dev-{round}"));
            alone::write_requests(&file, &prepared_requests(&dev.target, sealed)?)?;
            let mut s = spec(dev.target.addr, file, true, dev.pid());
            s.cpu = None;
            // --perf-record FILE: the first shared round of `clave dev` goes to FILE.shared.
            let out = args
                .perf_record
                .as_ref()
                .filter(|_| round == 1)
                .map(|p| p.with_extension("shared"));
            let r = recorded(out.as_deref(), dev.pid(), alone::run_child(&s)).await?;
            push(&mut shared["clave_dev"], r);
            if let Some(w) = &w {
                eprintln!("  both CPUs shared, round {round}: workerd (plaintext) ...");
                let file = dir.path().join(format!("shared-workerd-{round}"));
                alone::write_requests(&file, &prepared_requests(&bench.raw(w.addr), 1)?)?;
                let mut s = spec(w.addr, file, false, w.pid());
                s.cpu = None;
                push(&mut shared["workerd"], alone::run_child(&s).await?);
            }
        }
        results["shared"] = shared;
    }
    print_alone(&results);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&results)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("  results written to {}", path.display());
    }
    Ok(())
}

/// Run `work`; with `out`, under `perf record -g` of process `pid` into `out`.
async fn recorded<T>(
    out: Option<&std::path::Path>,
    pid: u32,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let perf = match out {
        Some(out) => Some(
            tokio::process::Command::new("perf")
                .args(["record", "-g", "-p", &pid.to_string(), "-o"])
                .arg(out)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("perf record")?,
        ),
        None => None,
    };
    let r = work.await;
    if let Some(mut p) = perf {
        if let Some(pid) = p.id() {
            sys::interrupt(pid);
        }
        let _ = p.wait().await;
    }
    r
}

fn push(list: &mut Value, v: Value) {
    if let Some(a) = list.as_array_mut() {
        a.push(v);
    }
}

async fn parent(args: &Args) -> Result<()> {
    let plan = Plan::new(args.quick);
    let (model, cpus) = sys::machine();
    eprintln!(
        "clave-bench ({}) on {cpus} CPUs, {model}",
        if args.quick { "quick" } else { "full" }
    );
    eprintln!("  INSECURE: simulated TEE and a plaintext comparison path; figures only.");
    let workerd_bin = if args.no_workerd {
        None
    } else {
        let found = workerd::find();
        if found.is_none() {
            eprintln!(
                "  ! workerd not found: peer comparison skipped (install it with crates/bench/workerd.sh, or set WORKERD)"
            );
        }
        found
    };

    let (bench, start_time) = Bench::start().await?;
    // A few calls on each path so that code and bytecode are cached, then idle RSS.
    for t in [&bench.confidential, &bench.plaintext] {
        let mut c = Conn::open(t.clone()).await?;
        for _ in 0..20 {
            c.request().await?;
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_idle = sys::rss_kib(None).unwrap_or(0);
    // Before any loaded run, so that freed load buffers do not hide the growth.
    eprintln!(
        "  memory per idle function ({} functions) ...",
        plan.idle_functions
    );
    let idle = idle_functions(&bench, plan.idle_functions).await?;

    let peer = match &workerd_bin {
        Some(bin) => match workerd::Workerd::start(bin, ECHO).await {
            Ok(w) => Some(w),
            Err(e) => {
                eprintln!("  ! workerd did not start ({e:#}): peer comparison skipped");
                None
            }
        },
        None => None,
    };

    eprintln!("  unloaded latency (1 connection) ...");
    let lat_conf = load::run(
        bench.confidential.clone(),
        1,
        plan.warmup,
        plan.latency,
        None,
    )
    .await?;
    let lat_plain = load::run(bench.plaintext.clone(), 1, plan.warmup, plan.latency, None).await?;
    let lat_peer = match &peer {
        Some(w) => Some(
            load::run(
                bench.raw(w.addr),
                1,
                plan.warmup,
                plan.latency,
                Some(w.pid()),
            )
            .await?,
        ),
        None => None,
    };
    let n = args.connections;
    eprintln!("  throughput ({n} connections, all CPUs) ...");
    let tp_conf = load::run(
        bench.confidential.clone(),
        n,
        plan.warmup,
        plan.loaded,
        None,
    )
    .await?;
    let tp_plain = load::run(bench.plaintext.clone(), n, plan.warmup, plan.loaded, None).await?;
    let tp_peer = match &peer {
        Some(w) => Some(
            load::run(
                bench.raw(w.addr),
                n,
                plan.warmup,
                plan.loaded,
                Some(w.pid()),
            )
            .await?,
        ),
        None => None,
    };
    let peer_rss = peer.as_ref().and_then(|w| sys::rss_kib(Some(w.pid())));
    drop(peer);
    for (what, s) in [
        ("confidential 1 conn", &lat_conf),
        ("plaintext 1 conn", &lat_plain),
        ("confidential loaded", &tp_conf),
        ("plaintext loaded", &tp_plain),
    ] {
        warn_errors(what, s);
    }

    let pinned = if args.no_pinned {
        None
    } else {
        eprintln!("  throughput ({n} connections, pinned to CPU 0, in a child process) ...");
        match pinned_run(args, workerd_bin.as_ref().filter(|_| lat_peer.is_some())).await {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!("  ! pinned run failed: {e:#}");
                None
            }
        }
    };

    eprintln!("  cold start ({} new functions) ...", plan.cold_functions);
    let cold = cold_start(&bench, plan.cold_functions).await?;
    eprintln!("  process start to first confidential response ...");
    let start = match process_start(&bench.body, plan.process_starts, None).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("  ! process start failed: {e:#}");
            json!({ "skipped": format!("{e:#}") })
        }
    };

    let results = json!({
        "machine": { "cpus": cpus, "cpu_model": model, "quick": args.quick, "connections": n },
        "in_process_platform_start_ms": start_time.as_secs_f64() * 1e3,
        "unloaded": {
            "confidential": stats_json(&lat_conf),
            "plaintext": stats_json(&lat_plain),
            "workerd": lat_peer.as_ref().map(stats_json),
        },
        "loaded_all_cpus": {
            "confidential": stats_json(&tp_conf),
            "plaintext": stats_json(&tp_plain),
            "workerd": tp_peer.as_ref().map(stats_json),
        },
        "loaded_pinned_cpu0": pinned,
        "memory": {
            "rss_idle_kib": rss_idle,
            "rss_under_load_kib": tp_conf.max_rss_kib,
            "workerd_rss_after_load_kib": peer_rss,
            "idle_functions": idle,
        },
        "cold_start": cold,
        "process_start": start,
    });
    print_table(&results);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&results)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("  results written to {}", path.display());
    }
    Ok(())
}
