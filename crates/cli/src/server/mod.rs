//! `clave kds`, `clave engine`, `clave gateway`: the parts of `clave dev` as separate processes.
//!
//! Settings come from flags, then `CLAVE_*` environment variables (clap merges the two: a flag
//! wins), then the `[kds]`, `[engine]` or `[gateway]` section of the file named by `--config`
//! (env `CLAVE_CONFIG_FILE`), then defaults. The simulated TEE is never a default: it must be
//! asked for with `--insecure-simulated-tee` (env `CLAVE_INSECURE_SIMULATED_TEE=1`), and every
//! process started on it says INSECURE on stderr.
//!
//! Each process prints one line on stdout once it listens, `clave <part> listening on
//! http://ADDR ...`, and stops gracefully on SIGINT or SIGTERM.
//!
//! One module per process: [`kds`], [`engine`], [`gateway`]; their flags and config file in
//! [`args`]. The in-process `clave dev` is `crate::platform`.

mod args;
mod engine;
mod gateway;
mod kds;

use std::net::SocketAddr;
use std::path::Path;

use clave_attest::Policy;
use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;

use crate::config::one_line;
use crate::output::CliError;

pub use args::{
    EngineArgs, EngineSection, GatewayArgs, GatewaySection, KdsArgs, KdsSection, ServerFile,
};
pub(crate) use engine::engine;
pub(crate) use gateway::gateway;
pub use gateway::gateway_config;
pub(crate) use kds::kds;

/// File names read from `--policy-dir`.
pub const CODE_POLICY_FILE: &str = "code.json";
/// Policy of engines that may receive `invoke` keys.
pub const INVOKE_POLICY_FILE: &str = "invoke.json";
/// Which KDS an engine trusts (read by `clave engine`; the KDS itself ignores it).
pub const KDS_POLICY_FILE: &str = "kds.json";
/// Optional, read by `clave kds`: an extra policy under which replicas that do not run the KDS's
/// own measurement are admitted (an upgrade path). Without it a KDS admits only its own
/// measurement on its own TEE kind. Its hash is bound into the KDS's evidence and shown by
/// `clave attest`, so clients must pin it explicitly.
pub const ADMISSION_POLICY_FILE: &str = "admission.json";

#[cfg_attr(feature = "configfs-tsm", allow(dead_code))]
const SIMULATED_REFUSED: &str = "no TEE attester is available: this build reads real evidence only \
through clave-attest's configfs-tsm feature (build clave with `--features configfs-tsm` and run \
inside an SEV-SNP or TDX guest); for development on a machine without a TEE pass \
--insecure-simulated-tee (env CLAVE_INSECURE_SIMULATED_TEE=1), which anyone can forge";

const INSECURE_BANNER: &str = "simulated TEE: its evidence can be forged by anyone and its \
sealed state is readable by anyone with the disk; never use it for real code or data";

// ---------------------------------------------------------------------------------------------
// Shared helpers.

fn rng() -> UnwrapErr<SysRng> {
    UnwrapErr(SysRng)
}

fn now() -> u64 {
    clave_client::now_unix()
}

fn failed(what: &str, e: impl std::fmt::Display) -> CliError {
    CliError::failed(format!("{what}: {}", one_line(&e.to_string())))
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutdown requested");
}

/// Reads and parses a policy file; `what` names the policy in the error messages.
pub(crate) fn read_policy(path: &Path, what: &str) -> Result<Policy, CliError> {
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

fn base(url: &str) -> Result<String, CliError> {
    let url = url.trim().trim_end_matches('/');
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url.to_owned())
    } else {
        Err(CliError::usage(format!(
            "`{url}` is not an http:// or https:// URL"
        )))
    }
}

async fn bind(listen: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), CliError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| failed(&format!("cannot listen on {listen}"), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| failed("cannot read the bound address", e))?;
    Ok((listener, addr))
}

fn announce(line: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}
