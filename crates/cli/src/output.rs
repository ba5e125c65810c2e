//! Output: text or JSON on stdout, warnings and progress on stderr, colour only on a terminal,
//! and the exit codes scripts rely on.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

use clave_client::{ClientError, Fault};

/// Exit codes (documented in `clave --help`).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The gateway or engine refused, or something failed.
    pub const REFUSED: u8 = 1;
    /// Bad arguments or input files, nothing configured.
    pub const USAGE: u8 = 2;
    /// Attestation or key verification failed.
    pub const ATTESTATION: u8 = 3;
    /// The gateway could not be reached.
    pub const UNREACHABLE: u8 = 4;
    /// The function threw or hit a limit.
    pub const FUNCTION: u8 = 5;
    /// The engine refused the pinned code hash.
    pub const HASH_REFUSED: u8 = 6;
}

/// A command failure: one sentence and an exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// Exit code (see [`exit`]).
    pub code: u8,
    /// One sentence for people.
    pub message: String,
}

impl CliError {
    /// A failure with `code`.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(exit::USAGE, message)
    }

    /// A refusal or failure (exit 1).
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(exit::REFUSED, message)
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// Context of a client call, to phrase its errors.
#[derive(Debug, Clone, Default)]
pub struct ErrContext {
    /// Function being addressed.
    pub function: Option<String>,
    /// Project.
    pub project: String,
    /// Whether the gateway came from `clave dev`'s record.
    pub dev: bool,
}

/// Turn an SDK error into one clear sentence with the right exit code.
#[must_use]
pub fn from_client(e: &ClientError, ctx: &ErrContext) -> CliError {
    let fname = ctx.function.as_deref().unwrap_or("?");
    match e {
        ClientError::Transport { url, reason } => {
            let hint = if ctx.dev {
                "start it again with `clave dev`."
            } else {
                "check --gateway / CLAVE_GATEWAY, or start a local platform with `clave dev`."
            };
            CliError::new(
                exit::UNREACHABLE,
                format!("cannot reach the gateway at {url} ({reason}); {hint}"),
            )
        }
        ClientError::Gateway { status, problem } => {
            let detail = problem
                .as_ref()
                .and_then(|p| p.detail.clone().or(Some(p.title.clone())))
                .unwrap_or_default();
            let msg = match *status {
                401 => "the gateway refused the deploy token (401 unauthorized); check --token / CLAVE_TOKEN, or use the token `clave dev` wrote.".to_owned(),
                403 => format!(
                    "the deploy token does not belong to project {:?} (403 forbidden); check --project and --token.",
                    ctx.project
                ),
                404 if ctx.function.is_some() => format!(
                    "there is no function named {fname:?} in project {:?} (404); deploy it first with `clave deploy <file> --name {fname}`.",
                    ctx.project
                ),
                404 => format!("the gateway found nothing there (404): {detail}."),
                409 => format!("the gateway refused the change (409 conflict): {detail}."),
                413 => format!("the gateway refused the request as too large (413): {detail}."),
                501 => format!("the gateway does not offer this (501): {detail}; asynchronous calls need a gateway with a queue (`clave gateway --nats-url ...`; `clave dev` has none), so call without --async."),
                503 => format!("the platform is overloaded or has no engine available (503): {detail}; retry later."),
                s => format!("the gateway refused the request ({s}): {detail}."),
            };
            CliError::failed(msg)
        }
        ClientError::Attestation(a) => CliError::new(
            exit::ATTESTATION,
            format!("attestation refused, nothing was sent: {a}."),
        ),
        ClientError::HashRefused { .. } => CliError::new(
            exit::HASH_REFUSED,
            format!(
                "the engine refused to run {fname:?}: the active code does not have the code hash you pinned (it was redeployed or swapped); pin the new hash with --hash, or use --trust-latest."
            ),
        ),
        ClientError::FunctionThrew { message } => CliError::new(
            exit::FUNCTION,
            format!(
                "the function {fname:?} threw: {}.",
                crate::config::one_line(message).trim_end_matches('.')
            ),
        ),
        ClientError::LimitHit { kind } => CliError::new(
            exit::FUNCTION,
            format!(
                "the function {fname:?} hit its {kind}; raise it with `clave deploy --limit` or make the function cheaper."
            ),
        ),
        other => {
            let code = match other.fault() {
                Fault::Caller => exit::USAGE,
                Fault::Network => exit::UNREACHABLE,
                Fault::Attestation => exit::ATTESTATION,
                Fault::Function => exit::FUNCTION,
                Fault::Gateway | Fault::Engine => exit::REFUSED,
            };
            CliError::new(
                code,
                format!("{}.", crate::config::one_line(&other.to_string())),
            )
        }
    }
}

/// Where and how to print.
#[derive(Debug, Clone)]
pub struct Out {
    /// JSON mode.
    pub json: bool,
    color_out: bool,
    color_err: bool,
    err_tty: bool,
}

fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

impl Out {
    /// Detect terminals and `NO_COLOR`.
    #[must_use]
    pub fn new(json: bool) -> Self {
        let nc = no_color();
        Self {
            json,
            color_out: !nc && std::io::stdout().is_terminal(),
            color_err: !nc && std::io::stderr().is_terminal(),
            err_tty: std::io::stderr().is_terminal(),
        }
    }

    fn paint(on: bool, code: &str, s: &str) -> String {
        if on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    /// Bold text on stdout.
    #[must_use]
    pub fn bold(&self, s: &str) -> String {
        Self::paint(self.color_out, "1", s)
    }

    /// Green text on stdout.
    #[must_use]
    pub fn green(&self, s: &str) -> String {
        Self::paint(self.color_out, "32", s)
    }

    /// Dim text on stdout.
    #[must_use]
    pub fn dim(&self, s: &str) -> String {
        Self::paint(self.color_out, "2", s)
    }

    /// A line on stdout.
    pub fn line(&self, s: &str) {
        println!("{s}");
    }

    /// A JSON document on stdout.
    pub fn json_doc(&self, v: &serde_json::Value) {
        println!(
            "{}",
            serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
        );
    }

    /// A note on stderr.
    pub fn note(&self, s: &str) {
        eprintln!("{}", Self::paint(self.color_err, "2", s));
    }

    /// A warning on stderr.
    pub fn warn(&self, s: &str) {
        eprintln!("{} {s}", Self::paint(self.color_err, "1;33", "warning:"));
    }

    /// The loud insecure banner on stderr.
    pub fn insecure(&self, s: &str) {
        eprintln!(
            "{}",
            Self::paint(
                self.color_err,
                "1;41;97",
                &format!("!! INSECURE simulated TEE: {s} !!")
            )
        );
    }

    /// The error sentence on stderr (and a JSON document on stdout in JSON mode).
    pub fn error(&self, e: &CliError) {
        eprintln!(
            "{} {}",
            Self::paint(self.color_err, "1;31", "error:"),
            e.message
        );
        if self.json {
            self.json_doc(&serde_json::json!({
                "ok": false,
                "exit_code": e.code,
                "error": e.message,
            }));
        }
    }

    /// A spinner on stderr for a long step (hidden when stderr is not a terminal).
    #[must_use]
    pub fn spinner(&self, msg: &str) -> indicatif::ProgressBar {
        if !self.err_tty || self.json {
            return indicatif::ProgressBar::hidden();
        }
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_message(msg.to_owned());
        pb.enable_steady_tick(Duration::from_millis(100));
        pb
    }
}

/// Map a command result to the process exit code, printing the error.
#[must_use]
pub fn finish(out: &Out, r: Result<(), CliError>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            out.error(&e);
            ExitCode::from(e.code)
        }
    }
}
