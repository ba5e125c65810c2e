//! The commands: resolve settings, call the SDK, print.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::CommandFactory as _;
use clave_attest::{Measurement, Policy, TeeKind};
use clave_client::{Client, CodeHash, Limits, TrustPolicy, Verified, now_unix, policy_words};
use serde_json::json;

use crate::cli::{
    Cli, Command, DeployArgs, DevArgs, FunctionsCommand, Global, InvokeArgs, TokenCommand,
};
use crate::config::{ConfigFile, DeployRecord, Deploys, DevRecord, config_dir, one_line};
use crate::output::{CliError, ErrContext, Out, exit, from_client};
use crate::platform::{DevConfig, DevPlatform, dev_engine_measurement, dev_kds_measurement};

mod secret;
mod tail;

/// Everything a command needs to know about where and whom to talk to.
#[derive(Debug, Clone)]
struct Target {
    gateway: String,
    token: Option<String>,
    admin_token: Option<String>,
    project: String,
    dev: bool,
    insecure: bool,
    /// `None`: nothing pinned (no policy files and no --insecure-dev).
    trust: Option<TrustPolicy>,
}

/// Shared state of one `clave` run.
struct Ctx {
    out: Out,
    global: Global,
    dir: PathBuf,
    file: ConfigFile,
    dev: Option<DevRecord>,
}

/// Run a parsed command line.
pub(crate) async fn run(cli: Cli, out: Out) -> Result<(), CliError> {
    let dir = config_dir();
    let file = ConfigFile::load(&dir).map_err(CliError::usage)?;
    let ctx = Ctx {
        out,
        global: cli.global,
        dev: DevRecord::load(&dir),
        dir,
        file,
    };
    match cli.command {
        Command::Dev(args) => dev(&ctx, args).await,
        Command::Deploy(args) => deploy(&ctx, args).await,
        Command::Invoke(args) => invoke(&ctx, args).await,
        Command::Functions(cmd) => functions(&ctx, cmd).await,
        Command::Secret(cmd) => secret::run(&ctx, cmd).await,
        Command::Tail(args) => tail::tail(&ctx, args).await,
        Command::Logs(args) => tail::logs(&ctx, args).await,
        Command::Keys => keys(&ctx).await,
        Command::Attest => attest(&ctx).await,
        Command::Token(TokenCommand::Create { admin_token }) => {
            token_create(&ctx, admin_token).await
        }
        // Handled before the runtime starts commands (own exit codes / own settings).
        Command::Evidence(_) | Command::Kds(_) | Command::Engine(_) | Command::Gateway(_) => Ok(()),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "clave", &mut std::io::stdout());
            Ok(())
        }
    }
}

fn read_policy(path: &Path, what: &str) -> Result<Policy, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::usage(format!(
            "cannot read the {what} policy file {}: {e}",
            path.display()
        ))
    })?;
    Policy::from_json(&text).map_err(|e| {
        CliError::usage(format!(
            "the {what} policy file {} is not a valid policy: {}",
            path.display(),
            one_line(&e.to_string())
        ))
    })
}

impl Ctx {
    fn target(&self) -> Result<Target, CliError> {
        let g = &self.global;
        let f = &self.file;
        let (gateway, dev) = match g.gateway.clone().or_else(|| f.gateway.clone()) {
            Some(url) => (url, None),
            None => match &self.dev {
                Some(d) => (d.gateway.clone(), Some(d)),
                None => {
                    return Err(CliError::usage(
                        "no gateway configured: start `clave dev` in another terminal (it publishes its URL), or pass --gateway URL (or set CLAVE_GATEWAY).",
                    ));
                }
            },
        };
        let token = g
            .token
            .clone()
            .or_else(|| f.token.clone())
            .or_else(|| dev.map(|d| d.token.clone()));
        let admin_token = f
            .admin_token
            .clone()
            .or_else(|| dev.map(|d| d.admin_token.clone()));
        let project = g
            .project
            .clone()
            .or_else(|| f.project.clone())
            .or_else(|| dev.map(|d| d.project.clone()))
            .unwrap_or_else(|| crate::platform::DEV_PROJECT.to_owned());
        let insecure = g.insecure_dev || f.insecure_dev.unwrap_or(false) || dev.is_some();
        let kds_file = g.kds_policy.clone().or_else(|| f.kds_policy.clone());
        let engine_file = g.engine_policy.clone().or_else(|| f.engine_policy.clone());
        let max_age = f.max_age_secs.map(std::time::Duration::from_secs);
        let trust = if insecure {
            // The dev measurements: from the dev record when it is this gateway, else the fixed,
            // published development constants (`clave dev` always uses them).
            let rec = self.dev.as_ref().filter(|d| d.gateway == gateway);
            let kds_m = rec
                .and_then(|d| Measurement::from_hex(&d.kds_measurement).ok())
                .unwrap_or_else(dev_kds_measurement);
            let eng_m = rec
                .and_then(|d| Measurement::from_hex(&d.engine_measurement).ok())
                .unwrap_or_else(dev_engine_measurement);
            let mut t = TrustPolicy::insecure_dev(kds_m, [eng_m])
                .map_err(|e| CliError::usage(format!("invalid dev trust policy: {e}")))?;
            if let Some(p) = &kds_file {
                t.kds_policy = read_policy(p, "KDS")?;
            }
            if let Some(p) = &engine_file {
                t.engine_policy = read_policy(p, "engine")?;
            }
            Some(t)
        } else {
            match (&kds_file, &engine_file) {
                (Some(k), Some(e)) => Some(TrustPolicy::new(
                    read_policy(k, "KDS")?,
                    read_policy(e, "engine")?,
                )),
                (None, None) => None,
                _ => {
                    return Err(CliError::usage(
                        "give both --kds-policy and --engine-policy (or neither, with --insecure-dev for a development platform).",
                    ));
                }
            }
        };
        let trust = match trust {
            Some(t) => {
                let admission = g
                    .kds_admission_policy
                    .clone()
                    .or_else(|| f.kds_admission_policy.clone());
                Some(match admission {
                    Some(p) => t.accept_kds_admission_policy(read_policy(&p, "KDS admission")?),
                    None => t,
                })
            }
            None => None,
        };
        let trust = trust.map(|t| match max_age {
            Some(a) => t.with_max_age(a),
            None => t,
        });
        let target = Target {
            gateway,
            token,
            admin_token,
            project,
            dev: dev.is_some(),
            insecure,
            trust,
        };
        if target.dev {
            self.out.insecure(&format!(
                "using the local clave dev platform at {} (nothing is confidential)",
                target.gateway
            ));
        } else if target.insecure {
            self.out
                .insecure("--insecure-dev accepts evidence anyone can forge (development only)");
        }
        Ok(target)
    }

    fn client(&self, t: &Target) -> Result<Client, CliError> {
        // With nothing pinned the client is only used to probe (explain the refusal); this
        // policy admits nothing real.
        let trust = match &t.trust {
            Some(tr) => tr.clone(),
            None => TrustPolicy::new(unpinned_policy()?, unpinned_policy()?),
        };
        Client::new(&t.gateway, trust).map_err(|e| CliError::usage(one_line(&e.to_string())))
    }

    fn err_ctx(&self, t: &Target, function: Option<&str>) -> ErrContext {
        ErrContext {
            function: function.map(str::to_owned),
            project: t.project.clone(),
            dev: t.dev,
        }
    }

    fn need_token<'a>(&self, t: &'a Target, what: &str) -> Result<&'a str, CliError> {
        t.token.as_deref().ok_or_else(|| {
            CliError::usage(format!(
                "{what} needs a deploy token: pass --token or set CLAVE_TOKEN (`clave dev` writes one for its platform)."
            ))
        })
    }

    /// Verify the platform (fresh nonce), or explain why it cannot be trusted.
    async fn verify(&self, client: &Client, t: &Target) -> Result<Arc<Verified>, CliError> {
        let ectx = self.err_ctx(t, None);
        if t.trust.is_none() {
            let claim = client.probe().await.map_err(|e| from_client(&e, &ectx))?;
            return Err(if claim.kind == TeeKind::InsecureSimulated {
                CliError::new(
                    exit::ATTESTATION,
                    format!(
                        "attestation refused, nothing was sent: the platform at {} runs on the INSECURE simulated TEE; pass --insecure-dev to accept it for local development.",
                        t.gateway
                    ),
                )
            } else {
                CliError::new(
                    exit::ATTESTATION,
                    format!(
                        "attestation cannot be checked, nothing was sent: the platform claims a {} TEE but no trust policy is configured; pass --kds-policy and --engine-policy (or set them in config.toml).",
                        claim.kind
                    ),
                )
            });
        }
        let pb = self.out.spinner("verifying the platform's attestation…");
        let r = client.verify(now_unix()).await;
        pb.finish_and_clear();
        r.map_err(|e| from_client(&e, &ectx))
    }
}

fn unpinned_policy() -> Result<Policy, CliError> {
    Policy::measurements([TeeKind::SevSnp], [Measurement(vec![0; 32])])
        .map_err(|e| CliError::usage(e.to_string()))
}

async fn dev(ctx: &Ctx, args: DevArgs) -> Result<(), CliError> {
    let out = &ctx.out;
    let mut cfg = DevConfig::new(args.listen, args.data_dir.clone());
    cfg.publish_dir = Some(ctx.dir.clone());
    let pb = out.spinner("starting KDS, engine and gateway…");
    let platform = DevPlatform::start(cfg).await.map_err(|e| {
        pb.finish_and_clear();
        CliError::failed(format!("clave dev could not start: {e}."))
    })?;
    pb.finish_and_clear();
    let rec = platform.record().clone();
    out.insecure("clave dev runs on a SIMULATED TEE: anyone can forge its evidence; never use it for real data");
    if out.json {
        out.json_doc(&json!({
            "ok": true,
            "gateway": rec.gateway,
            "project": rec.project,
            "data_dir": rec.data_dir,
            "kds_measurement": rec.kds_measurement,
            "engine_measurement": rec.engine_measurement,
            "insecure": true,
            "dev_file": ctx.dir.join(crate::config::DEV_FILE),
            "page": format!("{}/", rec.gateway),
        }));
    } else {
        out.line(&format!(
            "{} {}",
            out.green("clave dev is running at"),
            out.bold(&rec.gateway)
        ));
        out.line(&format!(
            "  page:       {}/ (invoke from your browser, sealed there)",
            rec.gateway
        ));
        out.line(&format!("  data:       {}", rec.data_dir));
        out.line(&format!("  project:    {}", rec.project));
        out.line(&format!(
            "  published:  {} (URL + development deploy token for other commands)",
            ctx.dir.join(crate::config::DEV_FILE).display()
        ));
        out.line(&format!(
            "  KDS measurement (simulated):    {}",
            rec.kds_measurement
        ));
        out.line(&format!(
            "  engine measurement (simulated): {}",
            rec.engine_measurement
        ));
        out.line("");
        out.line("Next, in another terminal:");
        out.line(&format!(
            "  {}",
            out.bold("clave deploy examples/hello.js --name hello")
        ));
        out.line(&format!(
            "  {}",
            out.bold("clave invoke hello --data '{\"name\":\"Ada\"}'")
        ));
        out.line(&out.dim("(in a source checkout, `clave` is `cargo run --release --`)"));
        out.line(&out.dim("Stop with Ctrl-C; restarting keeps functions and keys."));
    }
    let _ = std::io::stdout().flush();
    shutdown_signal().await;
    out.note("shutting down: draining in-flight calls…");
    platform.shutdown().await;
    out.note("clave dev stopped.");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = async {
                match term.as_mut() {
                    Some(t) => { t.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Find the entry module of a file or directory.
fn load_code(path: &Path, entry: Option<&str>) -> Result<(String, Vec<u8>), CliError> {
    let file = if path.is_dir() {
        match entry {
            Some(e) => path.join(e),
            None => ["index.js", "index.mjs", "worker.js", "main.js"]
                .iter()
                .map(|n| path.join(n))
                .find(|p| p.is_file())
                .ok_or_else(|| {
                    CliError::usage(format!(
                        "{} holds no index.js, index.mjs, worker.js or main.js; name the entry module with --entry.",
                        path.display()
                    ))
                })?,
        }
    } else {
        path.to_path_buf()
    };
    let code = std::fs::read(&file)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", file.display())))?;
    let text = std::str::from_utf8(&code).map_err(|_| {
        CliError::usage(format!(
            "{} is not UTF-8 text, so not a JavaScript module.",
            file.display()
        ))
    })?;
    if let Err(e) = clave_sandbox::check(text) {
        return Err(CliError::usage(format!(
            "{} is not a deployable function: {}.",
            file.display(),
            one_line(&e.to_string()).trim_end_matches('.')
        )));
    }
    let entry_name = file.file_name().map_or_else(
        || "index.js".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok((entry_name, code))
}

fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim().to_ascii_lowercase();
    let (num, mul) = if let Some(n) = v.strip_suffix("k").or_else(|| v.strip_suffix("kib")) {
        (n, 1u64 << 10)
    } else if let Some(n) = v.strip_suffix("m").or_else(|| v.strip_suffix("mib")) {
        (n, 1 << 20)
    } else if let Some(n) = v.strip_suffix("g").or_else(|| v.strip_suffix("gib")) {
        (n, 1 << 30)
    } else {
        (v.as_str(), 1)
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mul)
}

fn parse_limits(items: &[String]) -> Result<Limits, CliError> {
    let mut l = Limits::default();
    for item in items.iter().filter(|s| !s.trim().is_empty()) {
        let (k, v) = item.split_once('=').ok_or_else(|| {
            CliError::usage(format!(
                "--limit {item:?} must look like KEY=VALUE, e.g. cpu_ms=500."
            ))
        })?;
        let value = parse_size(v)
            .ok_or_else(|| CliError::usage(format!("--limit {item:?}: {v:?} is not a number.")))?;
        match k.trim() {
            "cpu_ms" => l.cpu_ms = value,
            "heap_bytes" => l.heap_bytes = value,
            "stack_bytes" => l.stack_bytes = value,
            "max_request_bytes" => l.max_request_bytes = value,
            "max_response_bytes" => l.max_response_bytes = value,
            "max_console_bytes" => l.max_console_bytes = value,
            other => {
                return Err(CliError::usage(format!(
                    "unknown limit {other:?}; use cpu_ms, heap_bytes, stack_bytes, max_request_bytes, max_response_bytes or max_console_bytes."
                )));
            }
        }
    }
    Ok(l)
}

fn default_name(path: &Path) -> Option<String> {
    let p = if path.is_dir() {
        path.canonicalize().ok()?
    } else {
        path.to_path_buf()
    };
    let stem = p.file_stem()?.to_string_lossy().to_ascii_lowercase();
    let name: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let name = name.trim_matches('-').to_owned();
    (!name.is_empty()).then_some(name)
}

async fn deploy(ctx: &Ctx, args: DeployArgs) -> Result<(), CliError> {
    let name = match args.name.clone().or_else(|| default_name(&args.path)) {
        Some(n) => n,
        None => return Err(CliError::usage("name the function with --name.")),
    };
    if name.parse::<clave_proto::FunctionName>().is_err() {
        return Err(CliError::usage(format!(
            "{name:?} is not a valid function name: use 1-63 of a-z, 0-9 and '-', starting with a letter or digit."
        )));
    }
    let limits = parse_limits(&args.limits)?;
    let (entry, code) = load_code(&args.path, args.entry.as_deref())?;
    let t = ctx.target()?;
    let token = ctx.need_token(&t, "deploy")?;
    let client = ctx.client(&t)?;
    let verified = ctx.verify(&client, &t).await?;
    let env = secret::deploy_env(ctx, &t, &client, token, &args).await?;
    let pb = ctx
        .out
        .spinner("sealing the code to the attested code key and uploading…");
    let r = client
        .deploy_with_env(&t.project, &name, &entry, &code, limits, &env, token)
        .await;
    pb.finish_and_clear();
    let d = r.map_err(|e| from_client(&e, &ctx.err_ctx(&t, Some(&name))))?;
    let hash = d.code_hash.to_hex();
    if let Err(e) = Deploys::record(
        &ctx.dir,
        &t.gateway,
        &t.project,
        &name,
        DeployRecord {
            code_hash: hash.clone(),
            version: d.response.version,
            deployed_at: now_unix(),
        },
    ) {
        ctx.out.warn(&format!(
            "could not record the code hash in {}: {e}",
            ctx.dir.display()
        ));
    }
    let out = &ctx.out;
    if out.json {
        out.json_doc(&json!({
            "ok": true,
            "project": d.response.project,
            "function": d.response.function,
            "version": d.response.version,
            "active_version": d.response.active_version,
            "code_hash": hash,
            "entry": entry,
            "code_bytes": code.len(),
            "insecure": verified.insecure(),
        }));
    } else {
        out.line(&format!(
            "{} {} version {}{} ({} bytes, sealed to the attested code key)",
            out.green("deployed"),
            out.bold(&format!("{}/{}", d.response.project, d.response.function)),
            d.response.version,
            if d.response.active_version == Some(d.response.version) {
                " (active)"
            } else {
                ""
            },
            code.len()
        ));
        out.line(&format!("code hash: {}", out.bold(&hash)));
        out.line(&out.dim(&format!(
            "callers pin it: clave invoke {name} --hash {hash}"
        )));
    }
    Ok(())
}

fn read_data(arg: Option<&str>) -> Result<Vec<u8>, CliError> {
    match arg {
        None => Ok(Vec::new()),
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).map_err(|e| {
                CliError::usage(format!("cannot read the request body from stdin: {e}"))
            })?;
            Ok(buf)
        }
        Some(a) if a.starts_with('@') => {
            let path = Path::new(&a[1..]);
            let bytes = std::fs::read(path).map_err(|e| {
                CliError::usage(format!("cannot read input file {}: {e}.", path.display()))
            })?;
            let is_json = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"));
            if is_json && let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                return Err(CliError::usage(format!(
                    "input file {} is not valid JSON: {e}.",
                    path.display()
                )));
            }
            Ok(bytes)
        }
        Some(literal) => Ok(literal.as_bytes().to_vec()),
    }
}

async fn invoke(ctx: &Ctx, args: InvokeArgs) -> Result<(), CliError> {
    let body = read_data(args.data.as_deref())?;
    let mut headers = Vec::new();
    for h in &args.headers {
        let (n, v) = h
            .split_once(':')
            .ok_or_else(|| CliError::usage(format!("--header {h:?} must look like NAME:VALUE.")))?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    if !headers.iter().any(|(n, _)| n == "content-type") {
        let ct = match &args.content_type {
            Some(ct) => Some(ct.clone()),
            None if body.is_empty() => None,
            None if serde_json::from_slice::<serde_json::Value>(&body).is_ok() => {
                Some("application/json".to_owned())
            }
            None => Some("text/plain; charset=utf-8".to_owned()),
        };
        if let Some(ct) = ct {
            headers.push(("content-type".to_owned(), ct));
        }
    }
    let explicit = match &args.hash {
        Some(h) => Some(
            h.trim()
                .to_ascii_lowercase()
                .parse::<CodeHash>()
                .map_err(|_| {
                    CliError::usage(format!("--hash {h:?} is not a code hash (64 hex digits)."))
                })?,
        ),
        None => None,
    };
    let t = ctx.target()?;
    let ectx = ctx.err_ctx(&t, Some(&args.name));
    let client = ctx.client(&t)?;
    let (hash, source) = if let Some(h) = explicit {
        (h, "--hash")
    } else if args.trust_latest {
        let token = ctx.need_token(&t, "--trust-latest")?;
        let (version, h) = client
            .active_code_hash(&t.project, &args.name, token)
            .await
            .map_err(|e| from_client(&e, &ectx))?;
        ctx.out.warn(&format!(
            "--trust-latest: pinning version {version} (code hash {h}) because the gateway says it is active; the gateway is not trusted, so you get whatever code its operator activated."
        ));
        (h, "--trust-latest")
    } else {
        let deploys = Deploys::load(&ctx.dir);
        match deploys.get(&t.gateway, &t.project, &args.name) {
            Some(rec) => (
                rec.code_hash.parse::<CodeHash>().map_err(|_| {
                    CliError::usage(format!(
                        "the recorded code hash of {:?} in {} is malformed; pass --hash.",
                        args.name,
                        ctx.dir.join(crate::config::DEPLOYS_FILE).display()
                    ))
                })?,
                "the last `clave deploy` on this machine",
            ),
            None => {
                return Err(CliError::usage(format!(
                    "no code hash to pin for {:?}: pass --hash with the hash its developer published, or --trust-latest to pin whatever the gateway says is active.",
                    args.name
                )));
            }
        }
    };
    let verified = ctx.verify(&client, &t).await?;
    let r = if args.asynchronous {
        let pb = ctx
            .out
            .spinner("sealing the request and queueing it (asynchronous call)…");
        let pending = client
            .invoke_async(&t.project, &args.name, &body, &headers, &hash)
            .await;
        pb.finish_and_clear();
        let pending = pending.map_err(|e| from_client(&e, &ectx))?;
        ctx.out.note(&format!(
            "queued as {}; waiting for the sealed result (up to {} s)…",
            pending.id(),
            args.wait_secs
        ));
        let pb = ctx.out.spinner("waiting for an engine to run the call…");
        let r = client
            .wait_result(
                &pending,
                std::time::Duration::from_secs(args.wait_secs),
                std::time::Duration::from_millis(200),
            )
            .await;
        pb.finish_and_clear();
        r
    } else {
        let pb = ctx
            .out
            .spinner("sealing the request and waiting for the engine…");
        let r = client
            .invoke(&t.project, &args.name, &body, &headers, &hash)
            .await;
        pb.finish_and_clear();
        r
    };
    let resp = r.map_err(|e| from_client(&e, &ectx))?;
    let out = &ctx.out;
    if out.json {
        let body_json =
            serde_json::from_slice::<serde_json::Value>(&resp.body).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&resp.body).into_owned())
            });
        let hdrs: serde_json::Map<String, serde_json::Value> = resp
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        out.json_doc(&json!({
            "ok": true,
            "status": resp.status,
            "headers": hdrs,
            "body": body_json,
            "code_hash": hash.to_hex(),
            "pinned_by": source,
            "insecure": verified.insecure(),
        }));
    } else {
        let mut stdout = std::io::stdout();
        let _ = stdout.write_all(&resp.body);
        if std::io::stdout().is_terminal() && !resp.body.ends_with(b"\n") {
            let _ = stdout.write_all(b"\n");
        }
        let _ = stdout.flush();
        if !(200..300).contains(&resp.status) {
            out.warn(&format!(
                "the function answered with status {}",
                resp.status
            ));
        }
    }
    Ok(())
}

async fn functions(ctx: &Ctx, cmd: FunctionsCommand) -> Result<(), CliError> {
    let t = ctx.target()?;
    let token = ctx.need_token(&t, "managing functions")?;
    let client = ctx.client(&t)?;
    let out = &ctx.out;
    match cmd {
        FunctionsCommand::List => {
            let list = client
                .list_functions(&t.project, token)
                .await
                .map_err(|e| from_client(&e, &ctx.err_ctx(&t, None)))?;
            if out.json {
                out.json_doc(&json!({"ok": true, "insecure": t.insecure, "project": list.project, "functions": list.functions}));
            } else if list.functions.is_empty() {
                out.line(&format!(
                    "project {} has no functions yet; deploy one with `clave deploy examples/hello.js --name hello`.",
                    list.project
                ));
            } else {
                out.line(&out.bold(&format!(
                    "{:<24} {:>7} {:>8}  {}",
                    "NAME", "ACTIVE", "VERSIONS", "ACTIVE CODE HASH"
                )));
                for f in &list.functions {
                    out.line(&format!(
                        "{:<24} {:>7} {:>8}  {}",
                        f.name,
                        f.active_version
                            .map_or_else(|| "-".to_owned(), |v| v.to_string()),
                        f.versions,
                        f.active_code_hash.as_deref().unwrap_or("-")
                    ));
                }
            }
        }
        FunctionsCommand::Show { name } | FunctionsCommand::Versions { name } => {
            let d = client
                .function(&t.project, &name, token)
                .await
                .map_err(|e| from_client(&e, &ctx.err_ctx(&t, Some(&name))))?;
            if out.json {
                out.json_doc(&json!({"ok": true, "insecure": t.insecure, "function": d}));
            } else {
                out.line(&format!(
                    "{}  active version: {}",
                    out.bold(&format!("{}/{}", d.project, d.name)),
                    d.active_version
                        .map_or_else(|| "none".to_owned(), |v| v.to_string())
                ));
                for v in &d.versions {
                    out.line(&format!(
                        "  {} v{:<4} {}  {} B sealed  created {}",
                        if v.active { "*" } else { " " },
                        v.version,
                        v.code_hash,
                        v.sealed_code_bytes,
                        v.created
                    ));
                }
            }
        }
        FunctionsCommand::Activate { name, to_version } => {
            let r = client
                .activate(&t.project, &name, to_version, token)
                .await
                .map_err(|e| from_client(&e, &ctx.err_ctx(&t, Some(&name))))?;
            print_activation(out, &t, &r);
        }
        FunctionsCommand::Rollback { name } => {
            let r = client
                .rollback(&t.project, &name, token)
                .await
                .map_err(|e| from_client(&e, &ctx.err_ctx(&t, Some(&name))))?;
            print_activation(out, &t, &r);
        }
        FunctionsCommand::Delete { name } => {
            client
                .delete(&t.project, &name, token)
                .await
                .map_err(|e| from_client(&e, &ctx.err_ctx(&t, Some(&name))))?;
            if out.json {
                out.json_doc(&json!({"ok": true, "insecure": t.insecure, "deleted": name, "project": t.project}));
            } else {
                out.line(&format!(
                    "deleted {}/{name} and all its versions",
                    t.project
                ));
            }
        }
    }
    Ok(())
}

fn print_activation(out: &Out, t: &Target, r: &clave_proto::gateway_api::ActivateResponse) {
    if out.json {
        out.json_doc(&json!({"ok": true, "insecure": t.insecure, "project": r.project, "function": r.function, "active_version": r.active_version, "previous_version": r.previous_version}));
    } else {
        out.line(&format!(
            "{}/{}: version {} is now active (was {})",
            r.project,
            r.function,
            r.active_version,
            r.previous_version
                .map_or_else(|| "none".to_owned(), |v| v.to_string())
        ));
        out.line(
            &out.dim("callers who pinned the old code hash are refused until they pin the new one"),
        );
    }
}

async fn keys(ctx: &Ctx) -> Result<(), CliError> {
    let t = ctx.target()?;
    let client = ctx.client(&t)?;
    let v = ctx.verify(&client, &t).await?;
    let out = &ctx.out;
    let bundle_json = |b: &clave_proto::KeyBundle| {
        json!({
            "purpose": match b.spec.purpose { clave_proto::KeyPurpose::Code => "code", clave_proto::KeyPurpose::Invoke => "invoke" },
            "epoch": b.spec.epoch,
            "spec_id": b.spec.id().to_hex(),
            "key_id": b.key_config.key_id().0,
            "not_before": b.not_before,
            "not_after": b.not_after,
            "policy": serde_json::from_str::<serde_json::Value>(&b.spec.policy.to_json()).unwrap_or_default(),
        })
    };
    if out.json {
        let mut all = vec![bundle_json(&v.code_key)];
        all.extend(v.invoke_keys.iter().map(bundle_json));
        out.json_doc(&json!({
            "ok": true,
            "insecure": v.insecure(),
            "identity_public_key": hex::encode(v.identity_public_key),
            "epoch": v.epoch,
            "bundles": all,
        }));
    } else {
        out.line(&format!(
            "KDS identity key {} (attested, fresh nonce); current invoke epoch {}",
            hex::encode(v.identity_public_key),
            v.epoch
        ));
        for b in std::iter::once(&v.code_key).chain(v.invoke_keys.iter()) {
            out.line(&format!(
                "  {:<6} epoch {:<7} key id {:<3} spec {}  valid {}..{}",
                match b.spec.purpose {
                    clave_proto::KeyPurpose::Code => "code",
                    clave_proto::KeyPurpose::Invoke => "invoke",
                },
                b.spec.epoch,
                b.key_config.key_id().0,
                b.spec.id(),
                b.not_before,
                b.not_after
            ));
            out.line(&out.dim(&format!(
                "         released only to {}",
                policy_words(&b.spec.policy)
            )));
        }
    }
    Ok(())
}

async fn attest(ctx: &Ctx) -> Result<(), CliError> {
    let t = ctx.target()?;
    let client = ctx.client(&t)?;
    let v = ctx.verify(&client, &t).await?;
    let out = &ctx.out;
    if out.json {
        out.json_doc(&json!({
            "ok": true,
            "insecure": v.insecure(),
            "gateway": t.gateway,
            "kds": {
                "kind": v.kds_claims.kind,
                "measurement": v.kds_claims.measurement,
                "tcb": v.kds_claims.tcb,
                "debug": v.kds_claims.debug,
                "admission_policy": v.kds_admission_policy.as_ref().map(|(p, hash)| json!({
                    "hash": hex::encode(hash),
                    "policy": serde_json::from_str::<serde_json::Value>(&p.to_json()).unwrap_or_default(),
                })),
            },
            "identity_public_key": hex::encode(v.identity_public_key),
            "nonce": hex::encode(&v.nonce),
            "verified_at": v.verified_at,
            "statements": v.describe(),
        }));
    } else {
        out.line(&format!(
            "{} {}",
            out.green("verified"),
            out.bold(&t.gateway)
        ));
        for s in v.describe() {
            out.line(&format!("  - {s}"));
        }
    }
    if v.insecure() {
        out.insecure("the evidence above is simulated and proves nothing");
    }
    Ok(())
}

async fn token_create(ctx: &Ctx, admin: Option<String>) -> Result<(), CliError> {
    let t = ctx.target()?;
    let admin = admin.or_else(|| t.admin_token.clone()).ok_or_else(|| {
        CliError::usage(
            "creating a deploy token needs the gateway's admin token: pass --admin-token or set CLAVE_ADMIN_TOKEN (`clave dev` knows its own).",
        )
    })?;
    let client = ctx.client(&t)?;
    let r = client
        .create_token(&t.project, &admin)
        .await
        .map_err(|e| match e.gateway_status() {
            Some(s @ (401 | 403)) => CliError::failed(format!(
                "the gateway refused the admin token ({s}); pass the gateway's admin token with --admin-token or CLAVE_ADMIN_TOKEN."
            )),
            _ => from_client(&e, &ctx.err_ctx(&t, None)),
        })?;
    let out = &ctx.out;
    if out.json {
        out.json_doc(
            &json!({"ok": true, "insecure": t.insecure, "project": r.project, "token": r.token}),
        );
    } else {
        out.line(&r.token);
        out.note(&format!(
            "a new deploy token for project {}; it is shown only once (use it with --token or CLAVE_TOKEN).",
            r.project
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_with_suffixes_and_refuse_unknown_keys() {
        let l = parse_limits(&["cpu_ms=250".into(), "heap_bytes=16m".into(), " ".into()])
            .expect("valid");
        assert_eq!(l.cpu_ms, 250);
        assert_eq!(l.heap_bytes, 16 << 20);
        assert_eq!(l.stack_bytes, Limits::default().stack_bytes);
        assert_eq!(parse_size("2k"), Some(2048));
        assert_eq!(parse_size("x"), None);
        assert_eq!(
            parse_limits(&["cpu=1".into()]).map_err(|e| e.code),
            Err(exit::USAGE)
        );
        assert_eq!(
            parse_limits(&["cpu_ms".into()]).map_err(|e| e.code),
            Err(exit::USAGE)
        );
        assert_eq!(
            parse_limits(&["cpu_ms=-1".into()]).map_err(|e| e.code),
            Err(exit::USAGE)
        );
    }

    #[test]
    fn data_argument_forms() {
        assert_eq!(read_data(None).expect("none"), b"");
        assert_eq!(read_data(Some("{\"a\":1}")).expect("literal"), b"{\"a\":1}");
        let dir = tempfile::tempdir().expect("tmp");
        let good = dir.path().join("in.json");
        std::fs::write(&good, "[1,2]").expect("write");
        assert_eq!(
            read_data(Some(&format!("@{}", good.display()))).expect("file"),
            b"[1,2]"
        );
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "[1,").expect("write");
        let e = read_data(Some(&format!("@{}", bad.display()))).expect_err("bad json");
        assert_eq!(e.code, exit::USAGE);
        assert!(e.message.contains("not valid JSON"), "{}", e.message);
        let txt = dir.path().join("in.txt");
        std::fs::write(&txt, "[1,").expect("write");
        assert_eq!(
            read_data(Some(&format!("@{}", txt.display()))).expect("text"),
            b"[1,"
        );
        assert!(read_data(Some("@/nonexistent/x")).is_err());
    }

    #[test]
    fn default_names_come_from_the_file() {
        assert_eq!(
            default_name(Path::new("examples/Salary_Stats.js")).as_deref(),
            Some("salary-stats")
        );
        assert_eq!(
            default_name(Path::new("x/hello.mjs")).as_deref(),
            Some("hello")
        );
    }
}
