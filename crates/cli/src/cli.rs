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

`clave dev` writes its URL and a development deploy token to $CLAVE_CONFIG_DIR/dev.json
(default ~/.config/clave/dev.json); other commands use it when no --gateway/--token is given,
and then accept its INSECURE simulated TEE, saying so on every output.

Configuration (lowest to highest precedence): ~/.config/clave/config.toml, environment
(CLAVE_GATEWAY, CLAVE_TOKEN, CLAVE_PROJECT, CLAVE_KDS_POLICY, CLAVE_ENGINE_POLICY,
CLAVE_INSECURE_DEV), flags. config.toml keys: gateway, token, project, admin_token,
kds_policy (path to a clave-attest policy JSON file), engine_policy (path),
kds_admission_policy (path), accept_external_master_secret (bool), insecure_dev (bool),
max_age_secs.

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
    /// Also accept a KDS whose master secret came from an external key source (its evidence
    /// says so): whoever provides that secret can derive every key [default: refused]
    #[arg(long, global = true, env = "CLAVE_ACCEPT_EXTERNAL_MASTER_SECRET")]
    pub accept_external_master_secret: bool,
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
  # On TDX (no sealing key): a first replica in memory only, then replicas that join it
  clave kds --data-dir /var/lib/clave-kds --policy-dir /etc/clave --master-secret-source memory-genesis
  clave kds --data-dir /var/lib/clave-kds --policy-dir /etc/clave --join http://kds-0:7000

A new replica (empty --data-dir) with --join obtains the master secret from a running one by
mutual attestation; with --peers it tries every peer and creates a new master only when none
is reachable and it can seal it (SEV-SNP, simulated). Without a sealing key (TDX) the master
secret stays in memory and the KDS never starts alone; `--master-secret-source external:FILE`
reads it from outside instead, which every attestation of the KDS then reports (clients refuse
it unless given --accept-external-master-secret). Environment: CLAVE_KDS_LISTEN,
CLAVE_KDS_DATA_DIR, CLAVE_KDS_JOIN, CLAVE_KDS_PEERS, CLAVE_KDS_MASTER_SECRET_SOURCE,
CLAVE_POLICY_DIR, CLAVE_INSECURE_SIMULATED_TEE, CLAVE_CONFIG_FILE ([kds] section).")]
    Kds(crate::server::KdsArgs),
    /// Run a confidential engine as its own process (keys from the KDS)
    #[command(after_long_help = "\
Examples:
  clave engine --listen 127.0.0.1:7001 --kds http://127.0.0.1:7000 --insecure-simulated-tee
  clave engine --kds http://kds:7000 --register-with http://gw-1:8080 --register-with http://gw-2:8080 --admin-token T

Environment: CLAVE_ENGINE_LISTEN, CLAVE_KDS_URL, CLAVE_ENGINE_REGISTER_WITH, CLAVE_ADMIN_TOKEN,
CLAVE_ENGINE_ADVERTISE, CLAVE_ENGINE_HEARTBEAT_SECS, CLAVE_ENGINE_WORKERS, CLAVE_ENGINE_EGRESS_PROXY, CLAVE_POLICY_DIR,
CLAVE_ENGINE_DATA_DIR, CLAVE_INSECURE_SIMULATED_TEE, CLAVE_CONFIG_FILE ([engine] section).")]
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
  clave deploy examples/currency-convert.js --outbound api.frankfurter.dev
  clave deploy ./fn.js --outbound api.stripe.com --outbound '*.openai.azure.com'

The code must be one ES module with `export default { fetch(request, env, ctx) { ... } }`.
Prints the code hash (what callers pin) and the new version. The hash is also recorded in
~/.config/clave/deploys.json so that `clave invoke` on this machine pins it by default.
Limit keys: cpu_ms, heap_bytes, stack_bytes, max_request_bytes, max_response_bytes, max_console_bytes.
--outbound lists the only hosts fetch() may reach (HTTPS; TLS ends inside the engine); the list is
part of the manifest, bound to the sealed code and shown by `clave functions show`.")]
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
    /// Send functions' fetch() through this HTTP CONNECT proxy (http://HOST:PORT) instead of
    /// connecting directly; TLS still ends inside the engine
    #[arg(long, value_name = "URL")]
    pub egress_proxy: Option<String>,
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
    /// A host the function's fetch() may reach over HTTPS (repeatable, or comma-separated):
    /// api.example.com, or *.example.com for exactly one label more; sealed with the code in
    /// the manifest [default: none, fetch() rejects]
    #[arg(long = "outbound", value_name = "HOST", value_delimiter = ',')]
    pub outbound: Vec<String>,
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
