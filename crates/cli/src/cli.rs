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
  clave logs greet --since 1h --status error  # history: failed calls with message and stack

A project of your own:
  clave init my-fn && cd my-fn                # clave.toml + src/index.js
  clave dev --watch                           # platform + deploy on every save (prints the hash)
  clave invoke --method GET --path '/items?id=3'

The parts as separate processes (each has --help; the simulated TEE only when asked for):
  clave kds --data-dir ./kds                                  # key derivation service (TEE)
  clave engine --kds URL --register-with GATEWAY --admin-token T   # engine (TEE); sends sealed logs
  clave gateway --database-url URL --kds URL --log-retention 7d   # the untrusted gateway

`clave dev` writes its URL and a development deploy token to $CLAVE_CONFIG_DIR/dev.json
(default ~/.config/clave/dev.json); other commands use it when no --gateway/--token is given,
and then accept its INSECURE simulated TEE, saying so on every output.

Configuration (lowest to highest precedence): the running `clave dev` (dev.json),
config.toml in the config directory ($CLAVE_CONFIG_DIR, else $XDG_CONFIG_HOME/clave, else
~/.config/clave), environment (CLAVE_GATEWAY, CLAVE_TOKEN, CLAVE_PROJECT, CLAVE_KDS_POLICY,
CLAVE_ENGINE_POLICY, CLAVE_KDS_ADMISSION_POLICY, CLAVE_INSECURE_DEV, CLAVE_PROJECT_FILE),
flags. config.toml keys: gateway, token, project, admin_token, kds_policy (path to a
clave-attest policy JSON file), engine_policy (path), kds_admission_policy (path),
accept_external_master_secret (bool), insecure_dev (bool), max_age_secs. `clave config`
shows each setting and where it came from.

The project file clave.toml (found in the current directory or a parent) describes one
function for deploy, dev --watch, invoke and hash: name, entry, compatibility_date, secrets,
outbound, [limits], [vars]. `clave init` writes one.

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
    /// The project file (clave.toml) [default: ./clave.toml or the nearest parent directory's]
    #[arg(long, global = true, env = "CLAVE_PROJECT_FILE", value_name = "FILE")]
    pub project_file: Option<PathBuf>,
    /// Print one JSON document on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// Which of the options above were given as a flag or through their environment variable
    /// (filled from clap's matches by [`Global::record_origins`]; for `clave config`).
    #[arg(skip)]
    pub origins: std::collections::BTreeMap<&'static str, Origin>,
}

/// How an option reached clap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag.
    Flag,
    /// Its environment variable.
    Env,
}

impl Global {
    /// The options whose origin [`Global::record_origins`] records, with their environment
    /// variables.
    pub const LAYERED: [(&'static str, &'static str); 9] = [
        ("gateway", "CLAVE_GATEWAY"),
        ("token", "CLAVE_TOKEN"),
        ("project", "CLAVE_PROJECT"),
        ("insecure_dev", "CLAVE_INSECURE_DEV"),
        (
            "accept_external_master_secret",
            "CLAVE_ACCEPT_EXTERNAL_MASTER_SECRET",
        ),
        ("kds_policy", "CLAVE_KDS_POLICY"),
        ("engine_policy", "CLAVE_ENGINE_POLICY"),
        ("kds_admission_policy", "CLAVE_KDS_ADMISSION_POLICY"),
        ("project_file", "CLAVE_PROJECT_FILE"),
    ];

    /// Record, from the matches clap produced, which options came from a flag or from the
    /// environment (global options may be matched at any subcommand level).
    pub fn record_origins(&mut self, matches: &clap::ArgMatches) {
        let mut level = Some(matches);
        while let Some(m) = level {
            for (id, _) in Self::LAYERED {
                let origin = match m.try_get_raw(id).ok().flatten().and(m.value_source(id)) {
                    Some(clap::parser::ValueSource::CommandLine) => Origin::Flag,
                    Some(clap::parser::ValueSource::EnvVariable) => Origin::Env,
                    _ => continue,
                };
                self.origins.insert(id, origin);
            }
            level = m.subcommand().map(|(_, sub)| sub);
        }
    }
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
  clave dev --watch                                # and deploy ./clave.toml's function on every change
  clave dev --watch examples/hello.js --name hello

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
  clave deploy                                   # the function of ./clave.toml
  clave deploy examples/hello.js --name hello
  clave deploy ./my-fn/ --name my-fn --entry worker.js --limit cpu_ms=200 --limit heap_bytes=16m
  clave deploy examples/salary-stats.js --name salaries --json
  clave deploy examples/currency-convert.js --outbound api.frankfurter.dev
  clave deploy ./fn.js --outbound api.stripe.com --outbound '*.openai.azure.com'
  clave deploy examples/greet.js --name greet --secret API_KEY --var GREETING=Hi

The entry module has `export default { fetch(request, env, ctx) { ... } }`; its relative
imports (and packages vendored under node_modules/) are collected into one bundle, nothing is
fetched, and imports that leave the directory are refused (docs/bundles.md). Prints the code
hash (what callers pin; `clave hash` computes it offline) and the new version. The hash is also recorded in
~/.config/clave/deploys.json so that `clave invoke` on this machine pins it by default.
Limit keys: cpu_ms, heap_bytes, stack_bytes, max_request_bytes, max_response_bytes, max_console_bytes.
--var KEY=VALUE and --secret NAME become env.KEY / env.NAME (secrets: `clave secret put NAME`); the
names are in the manifest, the values of secrets are not. Unless --no-logs, the manifest names this
machine's developer log key ($CLAVE_CONFIG_DIR/log-key, created and registered on first deploy):
the engine seals each call's console output and outcome to it (`clave tail`, `clave logs`).
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
  clave invoke hello --method GET --path '/items?id=3' # request.method, request.url
  clave invoke --data '{}'                            # the function of ./clave.toml

By default the hash pinned is the one `clave deploy` recorded on this machine. The engine
refuses to run any other code (exit code 6). The decrypted body goes to stdout. The function
sees the method and `https://clave/{project}/{function}` + --path as `request.url`.")]
    Invoke(InvokeArgs),
    /// Print the code hash of a function's files (what `clave deploy` would deploy), offline
    #[command(after_long_help = "\
Examples:
  clave hash                         # the function of ./clave.toml
  clave hash examples/hello.js       # one module: the SHA-256 of the file
  clave hash ./my-fn/ --json         # the modules and the hash

A single module hashes to the SHA-256 of its file; several modules to the SHA-256 of their
canonical encoding (docs/bundles.md shows how to recompute it).")]
    Hash(HashArgs),
    /// Write a starter project: clave.toml and src/index.js
    #[command(after_long_help = "\
Examples:
  clave init my-fn                   # the hello template in ./my-fn
  clave init --template json-api .   # a JSON API with routes, here
  clave init --template stats stats  # statistics over posted numbers

Refuses to overwrite existing files. Then: `clave dev --watch` in that directory.")]
    Init(InitArgs),
    /// Show every effective setting and where it came from (flag, env, file, dev.json)
    #[command(
        visible_alias = "whoami",
        after_long_help = "\
Examples:
  clave config
  CLAVE_PROJECT=shop clave whoami --json

Tokens are shown only as their first characters."
    )]
    Config,
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
    /// Send functions' fetch() through this HTTP CONNECT proxy (http://HOST:PORT) instead of
    /// connecting directly; TLS still ends inside the engine
    #[arg(long, value_name = "URL")]
    pub egress_proxy: Option<String>,
    /// Delete sealed developer log records older than this (30m, 12h, 7d, ...) [default: 7d]
    #[arg(long, env = "CLAVE_DEV_LOG_RETENTION", value_name = "DURATION")]
    pub log_retention: Option<String>,
    /// Deploy the function (clave.toml's, or FILE_OR_DIR) now and again whenever one of its
    /// files changes, printing the new code hash
    #[arg(long)]
    pub watch: bool,
    /// With --watch: the function's entry file or directory [default: from clave.toml]
    #[arg(value_name = "FILE_OR_DIR", requires = "watch")]
    pub path: Option<PathBuf>,
    /// With --watch: function name [default: clave.toml's name, or the file name]
    #[arg(long, short, requires = "watch")]
    pub name: Option<String>,
    /// With --watch: entry module inside a directory
    #[arg(long, requires = "watch")]
    pub entry: Option<String>,
}

/// `clave deploy`.
#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// The entry .js file, or a directory holding the entry module [default: clave.toml's
    /// directory and entry]
    #[arg(value_name = "FILE_OR_DIR")]
    pub path: Option<PathBuf>,
    /// Function name ([a-z0-9][a-z0-9-]*) [default: clave.toml's name, else the file name
    /// without extension]
    #[arg(long, short)]
    pub name: Option<String>,
    /// Entry module inside a directory [default: clave.toml's entry, else index.js, index.mjs,
    /// worker.js, main.js or src/index.js]
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

/// `clave hash`.
#[derive(Debug, Clone, Args)]
pub struct HashArgs {
    /// The entry .js file, or a directory holding the entry module [default: clave.toml's]
    #[arg(value_name = "FILE_OR_DIR")]
    pub path: Option<PathBuf>,
    /// Entry module inside a directory
    #[arg(long)]
    pub entry: Option<String>,
}

/// Starter templates of `clave init`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Template {
    /// Greets the name it is sent
    Hello,
    /// Routes on method and path, answers JSON
    JsonApi,
    /// Mean, median and spread of posted numbers
    Stats,
}

/// `clave init`.
#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// Directory to create the project in (created if missing)
    #[arg(value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Starter template
    #[arg(long, short, value_enum, default_value = "hello")]
    pub template: Template,
    /// Function name [default: the directory's name]
    #[arg(long, short)]
    pub name: Option<String>,
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
    /// Function name [default: clave.toml's name]
    pub name: Option<String>,
    /// HTTP method the function sees as request.method
    #[arg(long, short = 'X', default_value = "POST", value_name = "METHOD")]
    pub method: String,
    /// Path and query the function sees after its URL, e.g. '/items?id=3'
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
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
