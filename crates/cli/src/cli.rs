//! Command-line definitions (clap derive). Help texts teach by example.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const ABOUT: &str = "clave: confidential serverless functions. Your code, inputs and results are \
encrypted end to end to an attested JavaScript engine; the operator sees only ciphertext.";

const AFTER_HELP: &str = "\
Quickstart (two terminals):
  clave dev                                   # terminal 1: the whole platform on 127.0.0.1:8787
  clave deploy examples/hello.js --name hello # terminal 2: verify attestation, seal, upload
  clave invoke hello --data '{\"name\":\"Ada\"}'    # sealed call pinned to the deployed code hash
  echo sk-test-123 | clave secret put API_KEY --function greet   # sealed to the attested code key
  clave deploy examples/greet.js --name greet --secret API_KEY --var GREETING=Hi
  clave tail greet                            # its console.log lines and outcomes, sealed to you

`clave dev` writes its URL and a development deploy token to $CLAVE_CONFIG_DIR/dev.json
(default ~/.config/clave/dev.json); other commands use it when no --gateway/--token is given,
and then accept its INSECURE simulated TEE, saying so on every output.

Configuration (lowest to highest precedence): ~/.config/clave/config.toml, environment
(CLAVE_GATEWAY, CLAVE_TOKEN, CLAVE_PROJECT, CLAVE_KDS_POLICY, CLAVE_ENGINE_POLICY,
CLAVE_INSECURE_DEV), flags. config.toml keys: gateway, token, project, admin_token,
kds_policy (path to a clave-attest policy JSON file), engine_policy (path),
kds_admission_policy (path), insecure_dev (bool), max_age_secs.

Exit codes (stable, for scripts):
  0  success
  1  refused or failed: the gateway or the engine said no (unknown function, wrong token, ...)
  2  usage: bad arguments, unreadable or malformed input file, nothing configured
  3  attestation failed: the platform's evidence or keys do not satisfy your trust policy
  4  gateway unreachable
  5  the function threw an exception or hit a limit
  6  the engine refused the pinned code hash (the deployed code is not the code you pinned)

Output: human text on stdout, progress and warnings on stderr; colour only on a terminal and
when NO_COLOR is unset; --json prints one JSON document on stdout for scripts.";

/// What `clave -h` shows after the commands (`--help` shows [`AFTER_HELP`]).
const AFTER_SHORT_HELP: &str = "\
Exit codes: 0 success, 1 refused or failed, 2 usage, 3 attestation failed, 4 gateway unreachable,
5 the function threw or hit a limit, 6 the engine refused the pinned code hash.
More (quickstart, configuration, exit codes explained): clave --help";

/// The `clave` command line.
#[derive(Debug, Parser)]
#[command(
    name = "clave",
    version,
    about = ABOUT,
    after_help = AFTER_SHORT_HELP,
    after_long_help = AFTER_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Gateway URL, e.g. http://127.0.0.1:8787 [default: the running `clave dev`]
    #[arg(long, global = true, env = "CLAVE_GATEWAY", value_name = "URL")]
    pub gateway: Option<String>,
    /// Deploy token of the project (management commands) [default: the `clave dev` token]
    #[arg(
        long,
        global = true,
        env = "CLAVE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Project name [default: "default"]
    #[arg(long, global = true, env = "CLAVE_PROJECT", value_name = "NAME")]
    pub project: Option<String>,
    /// Accept the INSECURE simulated TEE (development only; printed on every output)
    #[arg(long, global = true, env = "CLAVE_INSECURE_DEV")]
    pub insecure_dev: bool,
    /// Trust policy of the KDS: a clave-attest policy JSON file (pinned measurements, TEE kinds)
    #[arg(long, global = true, env = "CLAVE_KDS_POLICY", value_name = "FILE")]
    pub kds_policy: Option<PathBuf>,
    /// Engines you accept: a clave-attest policy JSON file
    #[arg(long, global = true, env = "CLAVE_ENGINE_POLICY", value_name = "FILE")]
    pub engine_policy: Option<PathBuf>,
    /// Also accept a KDS that admits replicas under this admission policy (a clave-attest policy
    /// JSON file; `clave attest` shows the hash a KDS binds) [default: only KDSes that admit
    /// nothing but their own measurement]
    #[arg(
        long,
        global = true,
        env = "CLAVE_KDS_ADMISSION_POLICY",
        value_name = "FILE"
    )]
    pub kds_admission_policy: Option<PathBuf>,
    /// Print one JSON document on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run KDS + engine pool + gateway in one process on 127.0.0.1 (simulated, INSECURE TEE)
    #[command(
        visible_alias = "up",
        after_long_help = "\
Examples:
  clave dev                                        # 127.0.0.1:8787, data in ./.clave
  clave dev --listen 127.0.0.1:9000 --data-dir /tmp/clave

Restarting with the same --data-dir keeps functions, versions, the deploy token and keys:
the simulated KDS and engines use fixed, published development measurements, so rebuilding
the binary does not change them. Anyone can forge simulated evidence: never use it for real data.
Stop with Ctrl-C."
    )]
    Dev(DevArgs),
    /// Run the Key Derivation Service as its own process (replicas share the master secret)
    #[command(after_long_help = "\
Examples:
  clave kds --listen 127.0.0.1:7000 --data-dir /var/lib/clave-kds --insecure-simulated-tee
  clave kds --listen 127.0.0.1:7010 --data-dir ./kds-2 --join http://127.0.0.1:7000 --insecure-simulated-tee

A new replica (empty --data-dir) with --join obtains the master secret from a running one by
mutual attestation; with --peers it tries every peer and creates a new master only when none
is reachable. Environment: CLAVE_KDS_LISTEN, CLAVE_KDS_DATA_DIR, CLAVE_KDS_JOIN, CLAVE_KDS_PEERS,
CLAVE_POLICY_DIR, CLAVE_INSECURE_SIMULATED_TEE, CLAVE_CONFIG_FILE ([kds] section).")]
    Kds(crate::server::KdsArgs),
    /// Run a confidential engine as its own process (keys from the KDS)
    #[command(after_long_help = "\
Examples:
  clave engine --listen 127.0.0.1:7001 --kds http://127.0.0.1:7000 --insecure-simulated-tee
  clave engine --kds http://kds:7000 --register-with http://gw-1:8080 --register-with http://gw-2:8080 --admin-token T

Environment: CLAVE_ENGINE_LISTEN, CLAVE_KDS_URL, CLAVE_ENGINE_REGISTER_WITH, CLAVE_ADMIN_TOKEN,
CLAVE_ENGINE_ADVERTISE, CLAVE_ENGINE_HEARTBEAT_SECS, CLAVE_ENGINE_WORKERS, CLAVE_POLICY_DIR,
CLAVE_INSECURE_SIMULATED_TEE, CLAVE_CONFIG_FILE ([engine] section).")]
    Engine(crate::server::EngineArgs),
    /// Run a gateway as its own process (PostgreSQL for several gateways, NATS for async calls)
    #[command(after_long_help = "\
Examples:
  clave gateway --database-url postgres://clave@db/clave --kds http://127.0.0.1:7000 \\
                --engines http://127.0.0.1:7001,http://127.0.0.1:7002 --admin-token T \\
                --nats-url nats://127.0.0.1:4222 --listen 0.0.0.0:8080

Environment: CLAVE_GATEWAY_LISTEN, CLAVE_DATABASE_URL, CLAVE_KDS_URL, CLAVE_ENGINES,
CLAVE_ADMIN_TOKEN, CLAVE_NATS_URL, CLAVE_NATS_STREAM, CLAVE_NATS_SUBJECT_PREFIX,
CLAVE_NATS_ACK_WAIT_SECS, CLAVE_ASYNC_WORKER, CLAVE_GATEWAY_SLOTS, CLAVE_GATEWAY_QUEUE_LIMIT,
CLAVE_CONFIG_FILE ([gateway] section). See docs/scaling.md.")]
    Gateway(crate::server::GatewayArgs),
    /// Verify attestation, seal a function's code to the attested code key, and upload it
    #[command(after_long_help = "\
Examples:
  clave deploy examples/hello.js --name hello
  clave deploy ./my-fn/ --name my-fn --entry worker.js --limit cpu_ms=200 --limit heap_bytes=16777216
  clave deploy examples/salary-stats.js --name salaries --json
  clave deploy examples/greet.js --name greet --secret API_KEY --var GREETING=Hi

The code must be one ES module with `export default { fetch(request, env, ctx) { ... } }`.
Prints the code hash (what callers pin) and the new version. The hash is also recorded in
~/.config/clave/deploys.json so that `clave invoke` on this machine pins it by default.
Limit keys: cpu_ms, heap_bytes, stack_bytes, max_request_bytes, max_response_bytes, max_console_bytes.
--var KEY=VALUE and --secret NAME become env.KEY / env.NAME (secrets: `clave secret put NAME`); the
names are in the manifest, the values of secrets are not. Unless --no-logs, the manifest names this
machine's developer log key ($CLAVE_CONFIG_DIR/log-key, created and registered on first deploy):
the engine seals each call's console output and outcome to it (`clave tail`, `clave logs`).")]
    Deploy(DeployArgs),
    /// Call a function: seal the request to the attested invoke key, pinned to a code hash
    #[command(after_long_help = "\
Examples:
  clave invoke hello --data '{\"name\":\"Ada\"}'
  clave invoke hello --data @input.json
  echo '{\"x\":1}' | clave invoke hello --data -
  clave invoke hello --hash 3f5a...e1 --data '{}'      # pin the hash the developer published
  clave invoke hello --trust-latest --data '{}'       # pin whatever the gateway says is active

By default the hash pinned is the one `clave deploy` recorded on this machine. The engine
refuses to run any other code (exit code 6). The decrypted body goes to stdout.")]
    Invoke(InvokeArgs),
    /// List, inspect, roll back or delete functions
    #[command(subcommand)]
    Functions(FunctionsCommand),
    /// Sealed secrets a function reads as env.NAME: put, list, delete (values never leave your
    /// machine unsealed)
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Follow the sealed developer logs as calls happen: console output and outcomes
    #[command(after_long_help = "\
Examples:
  clave tail                       # every function of the project, until Ctrl-C
  clave tail hello --status error  # only failed calls of hello
  clave tail hello --json          # one JSON record per line
  clave tail hello --count 3       # stop after three records

The engine seals each call's record (console.log/warn/error lines, the outcome: ok, script
error with message and stack, timeout, out of memory, stale date, replay, code hash mismatch;
timing and sizes; never the caller's input or output) to the developer log key in
$CLAVE_CONFIG_DIR/log-key, which `clave deploy` creates and registers. Only this machine can
read them; a record that was altered is refused with a message (exit code 1 at the end).")]
    Tail(TailArgs),
    /// Read a function's sealed log history
    #[command(after_long_help = "\
Examples:
  clave logs hello                 # the last hour
  clave logs hello --since 2d --status error
  clave logs hello --since 30m --json

--since takes s, m, h or d. The gateway keeps at most 10 000 records per project and none
older than 7 days. Exit code 1 when a record was refused.")]
    Logs(LogsArgs),
    /// Show the verified key bundles (code key, invoke keys) and their policies
    Keys,
    /// Verify the platform's attestation for a fresh nonce and explain what was verified
    Attest,
    /// Deploy tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Verify a piece of real TEE evidence offline against the built-in vendor roots
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// Print a shell completion script, e.g. `clave completions bash > ~/.local/share/bash-completion/completions/clave`
    Completions {
        /// Shell
        shell: clap_complete::Shell,
    },
}

/// `clave dev`.
#[derive(Debug, Clone, Args)]
pub struct DevArgs {
    /// Address to listen on (port 0 picks a free port)
    #[arg(long, default_value = "127.0.0.1:8787", value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// Where the KDS's sealed master secret and the gateway's SQLite database live
    #[arg(long, default_value = ".clave", value_name = "DIR")]
    pub data_dir: PathBuf,
}

/// `clave deploy`.
#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// A .js file, or a directory holding the entry module
    #[arg(value_name = "FILE_OR_DIR")]
    pub path: PathBuf,
    /// Function name ([a-z0-9][a-z0-9-]*) [default: the file name without extension]
    #[arg(long, short)]
    pub name: Option<String>,
    /// Entry module inside a directory [default: index.js, index.mjs, worker.js or main.js]
    #[arg(long)]
    pub entry: Option<String>,
    /// A limit as KEY=VALUE (repeatable, or comma-separated)
    #[arg(
        long = "limit",
        visible_alias = "limits",
        value_name = "KEY=VALUE",
        value_delimiter = ','
    )]
    pub limits: Vec<String>,
    /// A plain value the function reads as env.KEY (repeatable; visible to the operator: use
    /// `clave secret put` for secrets)
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// A secret the function may read as env.NAME (repeatable; set it with `clave secret put`)
    #[arg(long = "secret", value_name = "NAME")]
    pub secrets: Vec<String>,
    /// Do not produce sealed developer logs for this version (no log key in the manifest)
    #[arg(long)]
    pub no_logs: bool,
}

/// `clave secret`.
#[derive(Debug, Clone, Subcommand)]
pub enum SecretCommand {
    /// Seal a value to the attested code key and store it (stdin, or a prompt without echo)
    #[command(after_long_help = "\
Examples:
  clave secret put API_KEY                      # prompts (no echo) on a terminal
  printf %s \"$TOKEN\" | clave secret put API_KEY --function hello
  clave secret put DB_URL < db-url.txt          # project-wide: every function may use it

The value is sealed here, to the code key the platform's attestation vouches for, bound to the
project, the function (or project-wide), the name and the next version: the gateway stores
ciphertext only. A function reads it as env.NAME only if its deploy named it
(`clave deploy ... --secret NAME`); users who pin the code see which names it may read, never
the values, which you can rotate without changing the code hash. One trailing newline of the
input is dropped. At most 32 KiB.")]
    Put {
        /// Secret name (A-Z, a-z, 0-9, _; what the function reads as env.NAME)
        name: String,
        /// Only for this function [default: every function of the project]
        #[arg(long, short)]
        function: Option<String>,
    },
    /// List secrets: names, versions, last change (never values)
    #[command(visible_alias = "ls")]
    List,
    /// Delete a secret's value (its version number is kept)
    #[command(
        visible_alias = "rm",
        after_long_help = "\
Examples:
  clave secret delete API_KEY --function hello
  clave secret delete DB_URL"
    )]
    Delete {
        /// Secret name
        name: String,
        /// The function's own secret [default: the project-wide one]
        #[arg(long, short)]
        function: Option<String>,
    },
}

/// Which calls `clave tail` and `clave logs` show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogStatus {
    /// Calls that returned a response.
    Ok,
    /// Calls that failed (script error, limit, refusal).
    Error,
}

/// `clave tail`.
#[derive(Debug, Clone, Args)]
pub struct TailArgs {
    /// Function name [default: every function of the project]
    pub name: Option<String>,
    /// Only calls with this outcome
    #[arg(long, value_enum)]
    pub status: Option<LogStatus>,
    /// Stop after this many records
    #[arg(long, short = 'n', value_name = "N")]
    pub count: Option<u64>,
}

/// `clave logs`.
#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Function name
    pub name: String,
    /// How far back, e.g. 30s, 15m, 1h, 2d
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub since: String,
    /// Only calls with this outcome
    #[arg(long, value_enum)]
    pub status: Option<LogStatus>,
    /// Most records shown
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub limit: u64,
}

/// `clave invoke`.
#[derive(Debug, Clone, Args)]
pub struct InvokeArgs {
    /// Function name
    pub name: String,
    /// Request body: JSON or text, `@file` to read a file, `-` to read stdin
    #[arg(long, short, value_name = "JSON|@FILE|-")]
    pub data: Option<String>,
    /// Pin this code hash (64 hex digits) instead of the one recorded by `clave deploy`
    #[arg(long, value_name = "HASH", conflicts_with = "trust_latest")]
    pub hash: Option<String>,
    /// Pin whatever code the gateway reports as active (warns: the gateway is not trusted)
    #[arg(long)]
    pub trust_latest: bool,
    /// Extra request header NAME:VALUE (repeatable)
    #[arg(long = "header", short = 'H', value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
    /// Content type [default: application/json when the body is JSON, else text/plain]
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    /// Call asynchronously: the sealed request waits in the platform's durable queue (the
    /// gateway needs NATS: `clave gateway --nats-url`); clave polls for the sealed result and
    /// prints it like a synchronous call
    #[arg(long = "async")]
    pub asynchronous: bool,
    /// With --async: how long to wait for the result, seconds
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 300,
        requires = "asynchronous"
    )]
    pub wait_secs: u64,
}

/// `clave functions ...`.
#[derive(Debug, Subcommand)]
pub enum FunctionsCommand {
    /// List the project's functions
    List,
    /// Show one function: active version, code hash, versions
    Show {
        /// Function name
        name: String,
    },
    /// List a function's versions
    Versions {
        /// Function name
        name: String,
    },
    /// Make a given version active
    Activate {
        /// Function name
        name: String,
        /// Version number to activate
        #[arg(value_name = "VERSION")]
        to_version: i64,
    },
    /// Make the previous version active again
    Rollback {
        /// Function name
        name: String,
    },
    /// Delete a function and all its versions
    Delete {
        /// Function name
        name: String,
    },
}

/// `clave evidence ...`.
#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Verify SEV-SNP, TDX, SGX or Nitro evidence and print the verified claims as JSON
    Verify(crate::evidence::EvidenceVerifyArgs),
}

/// `clave token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a new deploy token for the project (needs the admin token; `clave dev` knows it)
    Create {
        /// Admin token [default: the `clave dev` admin token]
        #[arg(long, env = "CLAVE_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn clap_definitions_are_consistent() {
        super::Cli::command().debug_assert();
    }
}
