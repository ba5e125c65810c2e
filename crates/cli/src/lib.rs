//! clave-cli: the `clave` command and the in-process platform behind `clave dev`.
//!
//! The binary (`src/main.rs`) only calls [`run`]. This library holds the command-line
//! definitions ([`cli`]), the commands, their output and exit codes ([`output::exit`]), the
//! configuration files ([`config`]) and the in-process wiring of KDS, engine and gateway
//! ([`platform::DevPlatform`]), which tests and benchmarks start directly, and the separate
//! processes `clave kds`, `clave engine` and `clave gateway` ([`server`]).
//!
//! It refuses to seal anything to a platform it has not verified under an explicit trust
//! policy, and it never produces output against the simulated TEE without saying, on that
//! output, that it is insecure.

#![forbid(unsafe_code)]

mod bundle;
pub mod cli;
mod commands;
pub mod config;
pub mod evidence;
pub mod logkey;
pub mod output;
pub mod page;
pub mod platform;
pub mod project;
pub mod server;

use std::ffi::OsString;
use std::process::ExitCode;

pub use platform::{DevConfig, DevPlatform};

/// Functions that have always finished within this many milliseconds run on the thread that
/// handles the request instead of a sandbox worker (`SandboxSettings::inline_budget_ms`).
pub const INLINE_BUDGET_MS: u64 = 5;

/// `--log-retention` (named `setting` in the error, e.g. with its environment variable) as the
/// age after which sealed developer log records are deleted: a number above 0 and a unit.
pub(crate) fn parse_log_retention(
    setting: &str,
    value: &str,
) -> Result<std::time::Duration, output::CliError> {
    clave_gateway::parse_duration(value)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            output::CliError::usage(format!(
                "{setting} must be a number above 0 and a unit such as 30m, 12h or 7d, not {value:?}."
            ))
        })
}

/// `--egress-proxy` / `egress_proxy` as a CONNECT proxy address.
pub(crate) fn parse_egress_proxy(s: &str) -> Result<clave_engine::ProxyAddr, output::CliError> {
    s.parse()
        .map_err(|e: String| output::CliError::usage(format!("--egress-proxy: {e}.")))
}

/// Stack of the async runtime's threads (see `INLINE_BUDGET_MS`).
pub const RUNTIME_THREAD_STACK: usize = 4 << 20;

/// The engine whose inline calls the runtime's threads get ready for when they first go idle
/// ([`prepare_idle_threads`]).
static IDLE_PREPARE: std::sync::Mutex<std::sync::Weak<clave_engine::Engine>> =
    std::sync::Mutex::new(std::sync::Weak::new());

/// From now on, each of this process's runtime threads builds `engine`'s sandbox slot the first
/// time it has nothing to do ([`on_runtime_thread_park`]), instead of in the first fast call
/// it runs (about a millisecond). A later engine replaces an earlier one (a platform started
/// again in the same process).
pub(crate) fn prepare_idle_threads(engine: &std::sync::Arc<clave_engine::Engine>) {
    *IDLE_PREPARE.lock().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::downgrade(engine);
}

/// The runtime's `on_thread_park` hook: see [`prepare_idle_threads`]. Free once a thread has
/// prepared (a thread-local flag); an uncontended lock while no engine is set. A panic while
/// preparing is contained here (the runtime's scheduler would not survive it): the thread's
/// first inline call then builds its slot as usual.
pub fn on_runtime_thread_park() {
    std::thread_local! {
        static PREPARED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if PREPARED.get() {
        return;
    }
    let engine = IDLE_PREPARE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .upgrade();
    if let Some(engine) = engine {
        PREPARED.set(true);
        let prepared =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.prepare_thread()));
        if prepared.is_err() {
            tracing::warn!("building a runtime thread's sandbox slot ahead panicked");
        }
    }
}

/// Parse `args` (including the program name), run the command, and return the exit code.
#[must_use]
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let parsed = <cli::Cli as clap::CommandFactory>::command()
        .try_get_matches_from(args)
        .and_then(|m| {
            let mut cli = <cli::Cli as clap::FromArgMatches>::from_arg_matches(&m)?;
            cli.global.record_origins(&m);
            Ok(cli)
        });
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(output::exit::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let out = output::Out::new(cli.global.json);
    init_tracing(matches!(
        cli.command,
        cli::Command::Dev(_)
            | cli::Command::Kds(_)
            | cli::Command::Engine(_)
            | cli::Command::Gateway(_)
    ));
    // The first timestamp of a start's debug log (`clave-bench --process-start --start-logs`).
    tracing::debug!("command line parsed");
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Fast functions run on the thread that handles their request (`INLINE_BUDGET_MS`): the
        // sandbox needs twice the JS stack limit (at most 1 MiB inline) plus room for our frames.
        .thread_stack_size(RUNTIME_THREAD_STACK)
        .on_thread_park(on_runtime_thread_park)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return output::finish(
                &out,
                Err(output::CliError::failed(format!(
                    "cannot start the async runtime: {e}"
                ))),
            );
        }
    };
    if let cli::Command::Evidence(cli::EvidenceCommand::Verify(args)) = &cli.command {
        return rt.block_on(evidence::run(args));
    }
    let result = match cli.command {
        cli::Command::Kds(args) => rt.block_on(server::kds(args, &out)),
        cli::Command::Engine(args) => rt.block_on(server::engine(args, &out)),
        cli::Command::Gateway(args) => rt.block_on(server::gateway(args)),
        command => rt.block_on(commands::run(
            cli::Cli {
                global: cli.global,
                command,
            },
            out.clone(),
        )),
    };
    output::finish(&out, result)
}

fn init_tracing(server: bool) {
    // Servers log at info; client commands stay quiet unless RUST_LOG asks.
    let default = if server { "info" } else { "error" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .with_target(false)
        .try_init();
}
