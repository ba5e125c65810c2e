//! `clave dev`: the whole platform in one process on the simulated TEE.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::cli::{DevArgs, Global};
use crate::config::{ConfigFile, DevRecord};
use crate::output::CliError;
use crate::platform::{DevConfig, DevPlatform};
use crate::project::Project;
use crate::server::shutdown_signal;

use super::{Ctx, deploy, render};

/// How often `--watch` looks at the files.
const POLL: Duration = Duration::from_millis(300);
/// Most files `--watch` looks at.
const MAX_WATCHED: usize = 5000;

/// Size and modification time of every file under `root` (dot-directories such as `.clave`
/// and `.git` skipped), plus `extra`.
fn stamps(root: &Path, extra: Option<&Path>) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if out.len() >= MAX_WATCHED {
                break;
            }
            let path = e.path();
            let hidden = e.file_name().to_string_lossy().starts_with('.');
            match e.file_type() {
                Ok(t) if t.is_dir() && !hidden => stack.push(path),
                Ok(t) if t.is_file() => {
                    let m = e.metadata().ok();
                    out.push((
                        path,
                        m.as_ref().map_or(0, std::fs::Metadata::len),
                        m.and_then(|m| m.modified().ok()),
                    ));
                }
                _ => {}
            }
        }
    }
    if let Some(p) = extra {
        let m = std::fs::metadata(p).ok();
        out.push((
            p.to_path_buf(),
            m.as_ref().map_or(0, std::fs::Metadata::len),
            m.and_then(|m| m.modified().ok()),
        ));
    }
    out.sort();
    out
}

/// `clave dev --watch`: deploy the function to this platform now and whenever a file under its
/// directory changes (a changed code hash only), until `stop` completes.
async fn watch(ctx: &Ctx, args: &DevArgs, rec: &DevRecord, stop: impl Future<Output = ()>) {
    let out = &ctx.out;
    // This platform, whatever --gateway, CLAVE_GATEWAY or config.toml say.
    let mut wctx = Ctx {
        out: ctx.out.clone(),
        global: Global {
            gateway: None,
            token: None,
            project: None,
            ..ctx.global.clone()
        },
        dir: ctx.dir.clone(),
        file: ConfigFile::default(),
        dev: Some(rec.clone()),
        project: ctx.project.clone(),
    };
    let root = match (&args.path, &ctx.project) {
        (Some(p), _) if p.is_file() => p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        (Some(p), _) => p.clone(),
        (None, Some(p)) => p.dir(),
        (None, None) => {
            out.warn("--watch has nothing to deploy: give FILE_OR_DIR or run it where a clave.toml is (`clave init` writes one); the platform keeps running");
            stop.await;
            return;
        }
    };
    let project_path = ctx.project.as_ref().map(|p| p.path.clone());
    out.note(&format!("watching {} (Ctrl-C stops)", root.display()));
    let mut stop = std::pin::pin!(stop);
    let mut deployed: Option<String> = None;
    loop {
        let seen = stamps(&root, project_path.as_deref());
        if let Some(p) = &project_path {
            match Project::load(p) {
                Ok(p) => wctx.project = Some(p),
                Err(e) => out.warn(&e.message),
            }
        }
        let result = match deploy::plan(
            &wctx,
            args.path.as_deref(),
            args.name.as_deref(),
            args.entry.as_deref(),
            &deploy::DeployFlags::default(),
        ) {
            Ok(plan) => {
                let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                    plan.collected.code.as_bytes(),
                ));
                if deployed.as_deref() == Some(hash.as_str()) {
                    Ok(())
                } else {
                    match wctx.target() {
                        Ok(t) => deploy::upload(&wctx, &t, &plan)
                            .await
                            .map(|(r, h, insecure)| {
                                render::deployed(
                                    out,
                                    &r,
                                    &h,
                                    &plan.collected,
                                    &plan.outbound,
                                    insecure,
                                    &plan.name,
                                );
                                deployed = Some(h);
                            }),
                        Err(e) => Err(e),
                    }
                }
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            out.warn(&format!("not deployed: {}", e.message));
        }
        let _ = std::io::stdout().flush();
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(POLL) => {}
            }
            if stamps(&root, project_path.as_deref()) != seen {
                break;
            }
        }
    }
}

pub(super) async fn dev(ctx: &Ctx, args: DevArgs) -> Result<(), CliError> {
    let out = &ctx.out;
    let mut cfg = DevConfig::new(args.listen, args.data_dir.clone());
    cfg.publish_dir = Some(ctx.dir.clone());
    if let Some(proxy) = &args.egress_proxy {
        cfg.egress_proxy = Some(crate::parse_egress_proxy(proxy)?);
    }
    if let Some(d) = &args.log_retention {
        cfg.log_retention.max_age =
            crate::parse_log_retention("--log-retention (CLAVE_DEV_LOG_RETENTION)", d)?;
    }
    let pb = out.spinner("starting KDS, engine and gateway…");
    let platform = DevPlatform::start(cfg).await.map_err(|e| {
        pb.finish_and_clear();
        CliError::failed(format!("clave dev could not start: {e}."))
    })?;
    pb.finish_and_clear();
    let rec = platform.record().clone();
    out.insecure("clave dev runs on a SIMULATED TEE: anyone can forge its evidence; never use it for real data");
    render::dev_started(out, &rec, &ctx.dir.join(crate::config::DEV_FILE));
    let _ = std::io::stdout().flush();
    let stop = shutdown_signal();
    if args.watch {
        watch(ctx, &args, &rec, stop).await;
    } else {
        stop.await;
    }
    out.note("shutting down: draining in-flight calls…");
    platform.shutdown().await;
    out.note("clave dev stopped.");
    Ok(())
}
