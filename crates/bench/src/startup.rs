//! Start-up measurements: the cold start of newly deployed functions, idle functions' memory and
//! process start.

use super::*;

/// Deploy new functions and time each one's first call (and a second, warm one).
pub(crate) async fn cold_start(bench: &Bench, n: usize) -> Result<Value> {
    let mut first = Vec::new();
    let mut warm = Vec::new();
    let mut deploys = Vec::new();
    for i in 0..n {
        let name = format!("cold-{i}");
        let t = Instant::now();
        let hash = deploy(&bench.platform, &name, &format!("{ECHO}// cold {i}\n")).await?;
        deploys.push(t.elapsed().as_secs_f64() * 1e6);
        let target = Bench::target_of(&bench.platform, &name, hash, &bench.body, true).await?;
        let mut conn = Conn::open(Arc::new(target)).await?;
        let t = Instant::now();
        conn.request().await?;
        first.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        conn.request().await?;
        warm.push(t.elapsed().as_secs_f64() * 1e6);
    }
    for v in [&mut first, &mut warm, &mut deploys] {
        v.sort_by(f64::total_cmp);
    }
    Ok(json!({
        "functions": n,
        "first_call_p50_us": load::percentile(&first, 50.0),
        "first_call_max_us": first.last().copied().unwrap_or(f64::NAN),
        "second_call_p50_us": load::percentile(&warm, 50.0),
        "deploy_p50_us": load::percentile(&deploys, 50.0),
    }))
}

/// RSS growth per deployed function that was called once and is now idle.
pub(crate) async fn idle_functions(bench: &Bench, n: usize) -> Result<Value> {
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = sys::rss_kib(None).unwrap_or(0);
    for i in 0..n {
        let name = format!("idle-{i}");
        let hash = deploy(&bench.platform, &name, &format!("{ECHO}// idle {i}\n")).await?;
        let target = Bench::target_of(&bench.platform, &name, hash, &bench.body, true).await?;
        Conn::open(Arc::new(target)).await?.request().await?;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = sys::rss_kib(None).unwrap_or(0);
    Ok(json!({
        "functions": n,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_function": after.saturating_sub(before) as f64 / n.max(1) as f64,
    }))
}

/// Spawn `clave dev` (next to this binary) and time process start to the first confidential
/// response, with the echo function already deployed in its data directory.
pub(crate) async fn process_start(
    bench_body: &[u8],
    runs: usize,
    logs: Option<&std::path::Path>,
) -> Result<Value> {
    let exe = std::env::current_exe()?;
    let clave = exe.with_file_name("clave");
    if !clave.is_file() {
        let msg = format!(
            "skipped: {} not found (build it: cargo build --release -p clave-cli)",
            clave.display()
        );
        eprintln!("  ! process start: {msg}");
        return Ok(json!({ "skipped": msg }));
    }
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    // With `logs`: each start's server log at debug (its phases in µs since the start of
    // `DevPlatform::start`), after a first line with the wall-clock time of the spawn.
    let spawn = |port: u16, log: Option<std::path::PathBuf>| -> Result<std::process::Child> {
        let mut cmd = dev_command(std::process::Command::new(&clave), port, &data, dir.path());
        match log {
            None => cmd.env("RUST_LOG", "warn").stderr(Stdio::null()),
            Some(path) => {
                use std::io::Write as _;
                let mut f = std::fs::File::create(path)?;
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
                writeln!(
                    f,
                    "spawn at unix {}.{:06}",
                    now.as_secs(),
                    now.subsec_micros()
                )?;
                cmd.env(
                    "RUST_LOG",
                    "warn,clave=debug,clave_cli=debug,clave_engine=debug",
                )
                .stderr(f)
            }
        };
        Ok(cmd.spawn()?)
    };
    // First start: genesis, then deploy the echo function.
    let port = free_port()?;
    let mut child = spawn(port, None)?;
    let url = format!("http://127.0.0.1:{port}");
    let t = Instant::now();
    let record = dev_ready(&mut child, &data, port).await?;
    let first_start_ms = t.elapsed().as_secs_f64() * 1e3;
    let client = clave_client::Client::new(&url, platform::trust()?)?;
    let code_hash = deploy_with(&client, &record.token, "echo", ECHO).await?;
    let _ = child.kill();
    let _ = child.wait();

    let headers = [("content-type".to_owned(), "application/json".to_owned())];
    let mut samples = Vec::new();
    for run in 0..runs {
        let port = free_port()?;
        let url = format!("http://127.0.0.1:{port}");
        let client = clave_client::Client::new(&url, platform::trust()?)?;
        let log = logs.map(|d| d.join(format!("start-{run}.log")));
        let t = Instant::now();
        let mut child = spawn(port, log.clone())?;
        // With logs: the client's phases too (attestation and keys verified, then the call).
        let mut verified_ms = None;
        let ok = loop {
            if logs.is_some() && verified_ms.is_none() {
                if client.verify(clave_client::now_unix()).await.is_ok() {
                    verified_ms = Some(t.elapsed().as_secs_f64() * 1e3);
                } else if t.elapsed() > Duration::from_secs(60) {
                    break false;
                } else {
                    // Not tokio's sleep: its timer ticks in whole milliseconds.
                    std::thread::sleep(Duration::from_micros(200));
                }
                continue;
            }
            match client
                .invoke(DEV_PROJECT, "echo", bench_body, &headers, &code_hash)
                .await
            {
                Ok(r) if r.status == 200 => break true,
                _ if t.elapsed() > Duration::from_secs(60) => break false,
                // Not tokio's sleep: its timer ticks in whole milliseconds.
                _ => std::thread::sleep(Duration::from_micros(200)),
            }
        };
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let server_cpu_ms = logs
            .and_then(|_| sched_cpu_ns(child.id()))
            .map(|ns| ns as f64 / 1e6);
        let server_faults = logs.and_then(|_| minor_faults(child.id()));
        if let (Some(path), Some(v)) = (&log, verified_ms) {
            use std::io::Write as _;
            let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
            writeln!(
                f,
                "client: verified at {v:.3} ms, response at {ms:.3} ms; server CPU until then {:.3} ms, minor page faults {}",
                server_cpu_ms.unwrap_or(f64::NAN),
                server_faults.map_or_else(|| "?".to_owned(), |n| n.to_string())
            )?;
        }
        let _ = child.kill();
        let _ = child.wait();
        if !ok {
            bail!("no confidential response from clave dev within 60 s");
        }
        samples.push(ms);
    }
    samples.sort_by(f64::total_cmp);
    Ok(json!({
        "runs": runs,
        "first_start_with_genesis_ms": first_start_ms,
        "to_first_confidential_response_p50_ms": load::percentile(&samples, 50.0),
        "to_first_confidential_response_min_ms": samples.first().copied().unwrap_or(f64::NAN),
        "samples_ms": samples,
    }))
}

/// CPU time process `pid`'s threads have used so far, nanoseconds (`/proc/<pid>/task/*/schedstat`:
/// finer than the clock ticks of `/proc/<pid>/stat`; threads that already ended are not counted).
fn sched_cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0u64;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(entry.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// Minor page faults of process `pid` so far (`/proc/<pid>/stat`, field 10): at a process start
/// each costs ~1.5–2 µs of kernel time on this VM.
fn minor_faults(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it follow its `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(7)?.parse().ok()
}

/// A `clave dev` process (the `clave` binary next to this one) with the echo function deployed:
/// what a user runs and an external load generator hits. It inherits this process's CPU
/// affinity (or runs on every CPU, [`DevProcess::start`]'s `all_cpus`) and logs at its default
/// level to a file, as a user's terminal or log file would take it.
pub(crate) struct DevProcess {
    child: std::process::Child,
    /// The confidential echo target on it.
    pub(crate) target: Arc<Target>,
    callgrind: bool,
    _dir: tempfile::TempDir,
}

impl DevProcess {
    /// `None` (with the reason printed) when the `clave` binary is not built.
    pub(crate) async fn start(body: &Arc<Vec<u8>>, all_cpus: bool) -> Result<Option<Self>> {
        let exe = std::env::current_exe()?;
        let clave = exe.with_file_name("clave");
        if !clave.is_file() {
            eprintln!(
                "  ! clave dev: {} not found (build it: cargo build --release -p clave-cli); skipped",
                clave.display()
            );
            return Ok(None);
        }
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        let log = std::fs::File::create(dir.path().join("clave-dev.log"))?;
        let port = free_port()?;
        // CLAVE_BENCH_DEV_CALLGRIND=FILE: run it under callgrind, to count instructions per
        // request where the machine's noise hides a change in CPU time.
        let callgrind = std::env::var_os("CLAVE_BENCH_DEV_CALLGRIND").map(PathBuf::from);
        let command = match &callgrind {
            Some(out) => {
                let mut c = std::process::Command::new("valgrind");
                c.arg("--tool=callgrind")
                    .arg(format!("--callgrind-out-file={}", out.display()))
                    .arg(&clave);
                c
            }
            None => std::process::Command::new(&clave),
        };
        let mut command = command;
        if all_cpus {
            crate::sys::unpinned(&mut command);
        }
        let mut child = dev_command(command, port, &data, dir.path())
            .env_remove("RUST_LOG")
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", clave.display()))?;
        let record = dev_ready(&mut child, &data, port).await?;
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        let client = clave_client::Client::new(&format!("http://{addr}"), platform::trust()?)?;
        let code_hash = deploy_with(&client, &record.token, "echo", ECHO)
            .await
            .context("on clave dev")?;
        let target = Arc::new(Target {
            addr,
            project: DEV_PROJECT.parse()?,
            function: "echo".parse()?,
            mode: confidential_mode(&client, code_hash).await?,
            body: body.clone(),
        });
        // Checked end to end (sealed answers opened) before the replayed run.
        let mut c = Conn::open(target.clone()).await?;
        for _ in 0..50 {
            c.request().await?;
        }
        Ok(Some(Self {
            child,
            target,
            callgrind: callgrind.is_some(),
            _dir: dir,
        }))
    }

    /// Under callgrind: zero its counters (before the measured load).
    pub(crate) fn callgrind_zero(&self) -> Result<()> {
        if self.callgrind {
            callgrind_control("-z", self.pid())?;
        }
        Ok(())
    }

    /// Under callgrind: dump the counters since [`Self::callgrind_zero`] and return the
    /// instructions they hold.
    pub(crate) fn callgrind_dump(&self) -> Result<Option<u64>> {
        if !self.callgrind {
            return Ok(None);
        }
        callgrind_control("-d", self.pid())?;
        // The dump is written next to the output file with a numbered suffix; the newest one
        // holds the counts since the zeroing.
        let base = std::env::var_os("CLAVE_BENCH_DEV_CALLGRIND").map(PathBuf::from);
        let Some(base) = base else { return Ok(None) };
        let dir = base.parent().unwrap_or(std::path::Path::new("."));
        let name = base
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let newest = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{name}."))
            })
            .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
        let Some(newest) = newest else {
            bail!("callgrind wrote no dump next to {}", base.display());
        };
        let text = std::fs::read_to_string(newest.path())?;
        let total = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("totals:")
                    .or_else(|| l.strip_prefix("summary:"))
            })
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .context("callgrind dump without totals")?;
        Ok(Some(total))
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for DevProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn callgrind_control(flag: &str, pid: u32) -> Result<String> {
    let out = std::process::Command::new("callgrind_control")
        .arg(flag)
        .arg(pid.to_string())
        .output()
        .context("callgrind_control (install valgrind)")?;
    if !out.status.success() {
        bail!(
            "callgrind_control {flag} {pid}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `clave dev` on 127.0.0.1:`port` with its data in `data` and its configuration under `dir`
/// (`command` is the `clave` binary, or a wrapper such as valgrind already given it).
fn dev_command(
    mut command: std::process::Command,
    port: u16,
    data: &std::path::Path,
    dir: &std::path::Path,
) -> std::process::Command {
    command
        .arg("dev")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data)
        .env("CLAVE_CONFIG_DIR", dir.join("config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    command
}

/// Waits (60 s at most) until the `clave dev` in `child` has written its record and accepts
/// connections; kills it if it does not.
async fn dev_ready(
    child: &mut std::process::Child,
    data: &std::path::Path,
    port: u16,
) -> Result<clave_cli::config::DevRecord> {
    let t = Instant::now();
    loop {
        if let Some(r) = clave_cli::config::DevRecord::load(data)
            && tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        {
            return Ok(r);
        }
        if t.elapsed() > Duration::from_secs(60) || child.try_wait()?.is_some() {
            let _ = child.kill();
            bail!("clave dev did not come up within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
