//! `clave dev`: the whole platform in one process on the simulated TEE.

use std::io::Write as _;

use crate::cli::DevArgs;
use crate::output::CliError;
use crate::platform::{DevConfig, DevPlatform};

use super::{Ctx, render};

pub(super) async fn dev(ctx: &Ctx, args: DevArgs) -> Result<(), CliError> {
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
    render::dev_started(out, &rec, &ctx.dir.join(crate::config::DEV_FILE));
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
