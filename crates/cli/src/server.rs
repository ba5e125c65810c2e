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

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use clave_attest::{InsecureSimulatedAttester, Policy};
use clave_engine::{Engine, EngineConfig, HttpKdsClient};
use clave_gateway::GatewayProcessConfig;
use clave_kds::{InsecureSimulatedSealer, Kds, KdsConfig, PendingJoin};
use clave_proto::gateway_api::{EngineRegisterRequest, EngineRegisterResponse};
use clave_proto::kds_api::{NonceResponse, ReplicaJoinRequest, ReplicaJoinResponse, paths};
use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;
use serde::Deserialize;

use crate::config::one_line;
use crate::output::{CliError, Out};
use crate::platform::{dev_engine_measurement, dev_kds_measurement};

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
// Command-line arguments.

/// `clave kds`.
#[derive(Debug, Clone, Args)]
pub struct KdsArgs {
    /// TOML file with a [kds] section (keys as the long flags, with `_`)
    #[arg(long, env = "CLAVE_CONFIG_FILE", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7000]
    #[arg(long, env = "CLAVE_KDS_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Directory of the sealed master secret and the release log
    #[arg(long, env = "CLAVE_KDS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Obtain the master secret from this running replica (mutual attestation) when DIR holds none
    #[arg(long, env = "CLAVE_KDS_JOIN", value_name = "URL")]
    pub join: Option<String>,
    /// Peers to join when DIR holds no master secret: URLs and/or dns+http://name:port
    /// (comma-separated); genesis only when none of them is reachable
    #[arg(
        long,
        env = "CLAVE_KDS_PEERS",
        value_name = "LIST",
        conflicts_with = "join"
    )]
    pub peers: Option<String>,
    /// Directory with code.json and invoke.json (clave-attest policies of the engines) and
    /// optionally admission.json (replicas admitted beyond the KDS's own measurement; bound into
    /// its evidence) [default with the simulated TEE: the development policies]
    #[arg(long, env = "CLAVE_POLICY_DIR", value_name = "DIR")]
    pub policy_dir: Option<PathBuf>,
    /// Where the master secret is kept: sealed (in DIR, sealed to the TEE) | memory (only in the
    /// replicas' memory; needs --join/--peers) | memory-genesis (first replica of such a
    /// cluster) | external:PATH or external:fd:N (read from a key source you trust: whoever
    /// provides it can derive every key; clients see it and refuse it by default)
    /// [default: sealed where the TEE has a sealing key, else memory with --join/--peers]
    #[arg(long, env = "CLAVE_KDS_MASTER_SECRET_SOURCE", value_name = "SOURCE")]
    pub master_secret_source: Option<clave_kds::MasterSecretSource>,
    /// Run on the INSECURE simulated TEE (development only)
    #[arg(long, env = "CLAVE_INSECURE_SIMULATED_TEE", value_parser = parse_flag, num_args = 0..=1, default_missing_value = "true")]
    pub insecure_simulated_tee: Option<bool>,
}

/// `clave engine`.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// TOML file with an [engine] section (keys as the long flags, with `_`)
    #[arg(long, env = "CLAVE_CONFIG_FILE", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7001]
    #[arg(long, env = "CLAVE_ENGINE_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// KDS base URL (one replica or the Service name of all of them)
    #[arg(long = "kds", env = "CLAVE_KDS_URL", value_name = "URL")]
    pub kds_url: Option<String>,
    /// Register with these gateways (repeatable or comma-separated) and renew as a heartbeat
    #[arg(
        long,
        env = "CLAVE_ENGINE_REGISTER_WITH",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub register_with: Vec<String>,
    /// Admin token of the gateways (needed by --register-with)
    #[arg(
        long,
        env = "CLAVE_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub admin_token: Option<String>,
    /// URL gateways reach this engine at [default: http://<listen address>]
    #[arg(long, env = "CLAVE_ENGINE_ADVERTISE", value_name = "URL")]
    pub advertise: Option<String>,
    /// Seconds between registration heartbeats [default: a third of the gateway's TTL]
    #[arg(long, env = "CLAVE_ENGINE_HEARTBEAT_SECS", value_name = "SECS")]
    pub heartbeat_secs: Option<u64>,
    /// Sandbox worker threads (calls run at once) [default: the sandbox default]
    #[arg(long, env = "CLAVE_ENGINE_WORKERS", value_name = "N")]
    pub workers: Option<usize>,
    /// Send functions' fetch() through this HTTP CONNECT proxy (http://HOST:PORT) instead of
    /// connecting directly; TLS still ends inside the engine, the proxy sees host, port, sizes
    #[arg(long, env = "CLAVE_ENGINE_EGRESS_PROXY", value_name = "URL")]
    pub egress_proxy: Option<String>,
    /// Directory with kds.json: the KDS this engine trusts [default with the simulated TEE: the
    /// development KDS]
    #[arg(long, env = "CLAVE_POLICY_DIR", value_name = "DIR")]
    pub policy_dir: Option<PathBuf>,
    /// How long to keep trying the KDS at start, seconds [default: 60]
    #[arg(long, env = "CLAVE_ENGINE_KDS_WAIT_SECS", value_name = "SECS")]
    pub kds_wait_secs: Option<u64>,
    /// Directory of the engine's clock floor (it refuses to serve at a clock wound back behind
    /// the latest time it served at, across restarts) [default: none, no floor across restarts]
    #[arg(long, env = "CLAVE_ENGINE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Run on the INSECURE simulated TEE (development only)
    #[arg(long, env = "CLAVE_INSECURE_SIMULATED_TEE", value_parser = parse_flag, num_args = 0..=1, default_missing_value = "true")]
    pub insecure_simulated_tee: Option<bool>,
}

/// `clave gateway`.
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// TOML file with a [gateway] section (keys as the long flags, with `_`)
    #[arg(long, env = "CLAVE_CONFIG_FILE", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "CLAVE_GATEWAY_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// postgres://… (several gateways) or sqlite://… (one gateway)
    #[arg(
        long,
        env = "CLAVE_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// KDS base URL
    #[arg(long = "kds", env = "CLAVE_KDS_URL", value_name = "URL")]
    pub kds_url: Option<String>,
    /// Engine base URLs and/or dns+http://name:port, comma-separated [default: engines register]
    #[arg(long, env = "CLAVE_ENGINES", value_name = "LIST")]
    pub engines: Option<String>,
    /// Admin token (projects, deploy tokens, engine registration) [default: admin API off]
    #[arg(
        long,
        env = "CLAVE_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub admin_token: Option<String>,
    /// NATS server for asynchronous calls [default: ?mode=async answers 501]
    #[arg(long, env = "CLAVE_NATS_URL", value_name = "URL")]
    pub nats_url: Option<String>,
    /// JetStream stream name [default: CLAVE_INVOKE]
    #[arg(long, env = "CLAVE_NATS_STREAM", value_name = "NAME")]
    pub nats_stream: Option<String>,
    /// Subject prefix of queued calls [default: clave.invoke]
    #[arg(long, env = "CLAVE_NATS_SUBJECT_PREFIX", value_name = "PREFIX")]
    pub nats_subject_prefix: Option<String>,
    /// Seconds JetStream waits for an ack before redelivering a call [default: 30]
    #[arg(long, env = "CLAVE_NATS_ACK_WAIT_SECS", value_name = "SECS")]
    pub nats_ack_wait_secs: Option<u64>,
    /// Run the asynchronous worker in this gateway [default: true]
    #[arg(long, env = "CLAVE_ASYNC_WORKER", value_name = "BOOL")]
    pub async_worker: Option<String>,
    /// Calls this gateway runs at once over all engines [default: 8]
    #[arg(long, env = "CLAVE_GATEWAY_SLOTS", value_name = "N")]
    pub slots: Option<String>,
    /// Calls that may wait for a slot before 503 [default: 64]
    #[arg(long, env = "CLAVE_GATEWAY_QUEUE_LIMIT", value_name = "N")]
    pub queue_limit: Option<String>,
}

fn parse_flag(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(format!("`{s}` is not a boolean (use true or false)")),
    }
}

// ---------------------------------------------------------------------------------------------
// The config file.

/// `--config FILE`: one optional section per process, keys named like the long flags.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    /// `[kds]`.
    #[serde(default)]
    pub kds: KdsSection,
    /// `[engine]`.
    #[serde(default)]
    pub engine: EngineSection,
    /// `[gateway]`.
    #[serde(default)]
    pub gateway: GatewaySection,
}

/// `[kds]` of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct KdsSection {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub join: Option<String>,
    pub peers: Option<String>,
    pub policy_dir: Option<PathBuf>,
    pub master_secret_source: Option<String>,
    pub insecure_simulated_tee: Option<bool>,
}

/// `[engine]` of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct EngineSection {
    pub listen: Option<SocketAddr>,
    pub kds: Option<String>,
    #[serde(default)]
    pub register_with: Vec<String>,
    pub admin_token: Option<String>,
    pub advertise: Option<String>,
    pub heartbeat_secs: Option<u64>,
    pub workers: Option<usize>,
    pub egress_proxy: Option<String>,
    pub policy_dir: Option<PathBuf>,
    pub kds_wait_secs: Option<u64>,
    pub data_dir: Option<PathBuf>,
    pub insecure_simulated_tee: Option<bool>,
}

/// `[gateway]` of the config file (values as strings or numbers, as in the environment).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct GatewaySection {
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub kds: Option<String>,
    pub engines: Option<String>,
    pub admin_token: Option<String>,
    pub nats_url: Option<String>,
    pub nats_stream: Option<String>,
    pub nats_subject_prefix: Option<String>,
    pub nats_ack_wait_secs: Option<u64>,
    pub async_worker: Option<bool>,
    pub slots: Option<u64>,
    pub queue_limit: Option<u64>,
}

impl ServerFile {
    /// Load `path` (`None`: the empty file).
    ///
    /// # Errors
    /// A file that cannot be read or parsed (the message names the file).
    pub fn load(path: Option<&Path>) -> Result<Self, CliError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::usage(format!(
                "cannot read the config file {}: {e}",
                path.display()
            ))
        })?;
        Self::parse(&text).map_err(|e| {
            CliError::usage(format!(
                "{} is not a valid config file: {e}",
                path.display()
            ))
        })
    }

    /// Parse TOML text.
    ///
    /// # Errors
    /// The parser's message on one line.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| one_line(&e.to_string()))
    }
}

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

fn http_client() -> Result<reqwest::Client, CliError> {
    clave_proto::rt::ensure_rustls_provider();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(20))
        .build()
        .map_err(|e| failed("cannot build the HTTP client", e))
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

// ---------------------------------------------------------------------------------------------
// clave kds

/// `clave kds`: open (or join, or create) the KDS and serve its API until SIGINT/SIGTERM.
pub(crate) async fn kds(args: KdsArgs, out: &Out) -> Result<(), CliError> {
    let file = ServerFile::load(args.config.as_deref())?.kds;
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 7000)));
    let data_dir = args.data_dir.or(file.data_dir).ok_or_else(|| {
        CliError::usage("give the KDS a data directory: --data-dir DIR (or CLAVE_KDS_DATA_DIR)")
    })?;
    let join = args.join.or(file.join);
    let peers = args.peers.or(file.peers);
    if join.is_some() && peers.is_some() {
        return Err(CliError::usage("give --join or --peers, not both"));
    }
    let simulated = args
        .insecure_simulated_tee
        .or(file.insecure_simulated_tee)
        .unwrap_or(false);
    // Fail early (before touching the data directory) when no TEE is usable.
    let (tee, plan) = {
        let (sealer, attester) = kds_parts(simulated)?;
        let source = match args.master_secret_source {
            Some(s) => Some(s),
            None => file
                .master_secret_source
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(CliError::usage)?,
        };
        let plan = clave_kds::plan_start(&clave_kds::start::StartSituation {
            tee: attester.kind(),
            can_seal: sealer.is_some(),
            source,
            has_sealed_master: data_dir.join(clave_kds::MASTER_SEALED_FILE).exists(),
            peers: match (&join, &peers) {
                (Some(_), _) => clave_kds::PeerHint::Join,
                (None, Some(_)) => clave_kds::PeerHint::Peers,
                (None, None) => clave_kds::PeerHint::None,
            },
        })
        .map_err(|e| CliError::usage(e.to_string()))?;
        if simulated {
            out.insecure(&format!("clave kds: {INSECURE_BANNER}"));
        }
        if let clave_kds::StartPlan::External(src) = &plan {
            out.warn(&format!(
                "clave kds: the master secret is read from an external key source ({src}): \
whoever provides it can derive every key of this platform. Every attestation of this KDS says so, \
and clients refuse it unless they pass --accept-external-master-secret."
            ));
        }
        let tee = if simulated {
            "INSECURE simulated TEE".to_owned()
        } else {
            format!("TEE {}", attester.kind())
        };
        (tee, plan)
    };
    let engine_m = dev_engine_measurement();
    let policy_dir = args.policy_dir.or(file.policy_dir);
    if !simulated && policy_dir.is_none() {
        return Err(CliError::usage(
            "a KDS on hardware needs the engines' policies: --policy-dir DIR with code.json and invoke.json",
        ));
    }
    let config = match policy_dir {
        Some(dir) => {
            let mut config = KdsConfig::new(
                read_policy(&dir.join(CODE_POLICY_FILE), "code")?,
                read_policy(&dir.join(INVOKE_POLICY_FILE), "invoke")?,
            );
            if dir.join(ADMISSION_POLICY_FILE).exists() {
                let p = read_policy(&dir.join(ADMISSION_POLICY_FILE), "KDS admission")?;
                tracing::warn!(
                    hash = %hex::encode(clave_proto::kds_api::admission_policy_hash(&p)),
                    "KDS admission policy in force: replicas outside this KDS's own measurement \
                     are admitted under it; clients see its hash and must pin it"
                );
                config.admission_policy = Some(p);
            }
            config
        }
        None => {
            let engines = Policy::insecure_dev([engine_m]).map_err(|e| failed("dev policy", e))?;
            KdsConfig::new(engines.clone(), engines)
        }
    };
    // A join keeps the master secret sealed or, without a sealing key, in memory only.
    let parts = |keep: clave_kds::Keep| {
        kds_parts(simulated).map(|(sealer, attester)| {
            (sealer.filter(|_| keep == clave_kds::Keep::Sealed), attester)
        })
    };

    let (kds, origin) = match plan {
        clave_kds::StartPlan::Join {
            keep,
            genesis_if_none_reachable,
        } => {
            let parts = || parts(keep);
            let joined = match (join, peers) {
                (Some(url), _) => {
                    let url = base(&url)?;
                    let (sealer, attester) = parts()?;
                    let kds = join_over_http(&url, &data_dir, sealer, attester, config).await?;
                    Ok((kds, url))
                }
                (None, Some(list)) => {
                    match join_any_peer(&list, listen, &data_dir, &parts, &config).await? {
                        Some(joined) => Ok(joined),
                        None => Err(config),
                    }
                }
                (None, None) => return Err(CliError::usage("a join needs --join or --peers")),
            };
            match joined {
                Ok((kds, url)) => (kds, format!("joined {url}")),
                Err(config) if genesis_if_none_reachable => {
                    tracing::warn!("no KDS peer reachable: genesis of a new master secret");
                    let (sealer, attester) = parts()?;
                    let kds = clave_kds::start::open_local(
                        &clave_kds::StartPlan::Genesis { keep },
                        &data_dir,
                        sealer,
                        attester,
                        config,
                        now(),
                        rng(),
                    )
                    .map_err(|e| failed("the KDS did not start", e))?;
                    (kds, "genesis (no peer reachable)".to_owned())
                }
                Err(_) => {
                    return Err(CliError::failed(
                        "no KDS peer is reachable, and this KDS keeps its master secret in memory \
only: it does not start alone (start the first replica with --master-secret-source memory-genesis)",
                    ));
                }
            }
        }
        plan => {
            if plan == clave_kds::StartPlan::Unseal && (join.is_some() || peers.is_some()) {
                tracing::info!("the data directory holds a master secret: not joining");
            }
            let keep = match &plan {
                clave_kds::StartPlan::Genesis { keep } => *keep,
                _ => clave_kds::Keep::Sealed,
            };
            let (sealer, attester) = parts(keep)?;
            let what = match &plan {
                clave_kds::StartPlan::Unseal => "opened sealed state".to_owned(),
                clave_kds::StartPlan::Genesis {
                    keep: clave_kds::Keep::Sealed,
                } => "genesis".to_owned(),
                clave_kds::StartPlan::Genesis { .. } => "genesis in memory only".to_owned(),
                _ => "master secret from an EXTERNAL key source".to_owned(),
            };
            let kds = clave_kds::start::open_local(
                &plan,
                &data_dir,
                sealer,
                attester,
                config,
                now(),
                rng(),
            )
            .map_err(|e| failed("the KDS did not start", e))?;
            (kds, what)
        }
    };
    let identity = hex::encode(kds.identity_public_key());
    let app = clave_kds::router(Arc::new(kds));
    let (listener, addr) = bind(listen).await?;
    announce(&format!(
        "clave kds listening on http://{addr} ({tee}; {origin}; identity {identity}; data {})",
        data_dir.display()
    ));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| failed("the KDS server failed", e))?;
    announce("clave kds stopped");
    Ok(())
}

/// A KDS's sealer (if its TEE has a sealing key) and attester.
type KdsParts = (Option<clave_kds::KdsSealer>, clave_kds::KdsAttester);

/// The KDS's sealer and attester: the simulated pair, or on hardware the configfs-tsm attester
/// with, on SEV-SNP, the firmware-derived sealing key through `/dev/sev-guest`. TDX has no
/// sealing key: the sealer is `None` and [`clave_kds::plan_start`] decides what the KDS may do.
fn kds_parts(simulated: bool) -> Result<KdsParts, CliError> {
    if simulated {
        let m = dev_kds_measurement();
        let attester = InsecureSimulatedAttester::new(m.clone())
            .map_err(|e| failed("simulated KDS attester", e))?;
        return Ok((
            Some(Box::new(InsecureSimulatedSealer::new(m.as_bytes()))),
            Box::new(attester),
        ));
    }
    #[cfg(feature = "configfs-tsm")]
    {
        use clave_attest::Attester as _;
        let attester = clave_attest::configfs_tsm::ConfigfsTsmAttester::open(
            clave_attest::configfs_tsm::DEFAULT_TSM_ROOT,
        )
        .map_err(|e| {
            failed(
                "cannot open configfs-tsm (is this an SEV-SNP or TDX guest?)",
                e,
            )
        })?;
        let sealer: Option<clave_kds::KdsSealer> = match attester.kind() {
            #[cfg(feature = "sev-guest")]
            clave_attest::TeeKind::SevSnp => {
                use clave_kds::snp_seal::{DerivedKeyRequest, DevSevGuest, SevSnpDerivedKeySealer};
                let device = DevSevGuest::open(Path::new(DevSevGuest::PATH))
                    .map_err(|e| failed("cannot open /dev/sev-guest for the sealing key", e))?;
                Some(Box::new(SevSnpDerivedKeySealer::new(
                    device,
                    DerivedKeyRequest::for_kds(0, None),
                    attester.measurement().as_bytes(),
                )))
            }
            #[cfg(not(feature = "sev-guest"))]
            clave_attest::TeeKind::SevSnp => {
                tracing::warn!(
                    "this build has no SEV-SNP sealing key (build clave with --features \
                     configfs-tsm,sev-guest): the master secret can only be kept in memory"
                );
                None
            }
            _ => None,
        };
        Ok((sealer, Box::new(attester)))
    }
    #[cfg(not(feature = "configfs-tsm"))]
    {
        Err(CliError::failed(format!(
            "the KDS cannot start: {SIMULATED_REFUSED}"
        )))
    }
}

/// The HTTP side of a replica join: nonce from the peer, our evidence, its evidence, the master.
async fn join_over_http(
    url: &str,
    data_dir: &Path,
    sealer: Option<clave_kds::KdsSealer>,
    attester: clave_kds::KdsAttester,
    config: KdsConfig,
) -> Result<Kds, CliError> {
    let http = http_client()?;
    let nonce: NonceResponse = post_json(
        &http,
        &format!("{url}{}", paths::REPLICA_NONCE),
        None::<&()>,
    )
    .await
    .map_err(|e| CliError::failed(format!("cannot join the KDS at {url}: {e}")))?;
    let pending = match sealer {
        Some(sealer) => PendingJoin::new(data_dir, sealer, attester, config, nonce.nonce, rng()),
        None => PendingJoin::new_in_memory(data_dir, attester, config, nonce.nonce, rng()),
    }
    .map_err(|e| failed("cannot prepare the replica join", e))?;
    let request: &ReplicaJoinRequest = pending.request();
    let response: ReplicaJoinResponse = post_json(
        &http,
        &format!("{url}{}", paths::REPLICA_JOIN),
        Some(request),
    )
    .await
    .map_err(|e| CliError::failed(format!("the KDS at {url} refused the join: {e}")))?;
    pending.finish(&response, now()).map_err(|e| {
        failed(
            &format!("the KDS at {url} did not prove itself (mutual attestation)"),
            e,
        )
    })
}

/// Errors of one HTTP exchange: `Unreachable` (nothing answered) or `Answered` (a refusal).
#[derive(Debug)]
enum HttpFail {
    Unreachable(String),
    Answered(String),
}

impl std::fmt::Display for HttpFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(m) | Self::Answered(m) => f.write_str(m),
        }
    }
}

async fn post_json<B: serde::Serialize, T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    body: Option<&B>,
) -> Result<T, HttpFail> {
    let mut req = http.post(url);
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| HttpFail::Unreachable(one_line(&e.to_string())))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| HttpFail::Unreachable(one_line(&e.to_string())))?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned();
        return Err(HttpFail::Answered(format!(
            "HTTP {status}: {}",
            one_line(&text)
        )));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| HttpFail::Answered(format!("unexpected answer: {e}")))
}

/// Resolve `list` (URLs and `dns+http://name:port`) into peer base URLs.
async fn resolve_peers(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    for item in clave_gateway::parse_engine_list(list) {
        if let Some(rest) = item.strip_prefix("dns+") {
            let Some(hostport) = rest
                .strip_prefix("http://")
                .map(|h| h.trim_end_matches('/').to_owned())
            else {
                continue;
            };
            if let Ok(addrs) = tokio::net::lookup_host(hostport.as_str()).await {
                out.extend(addrs.map(|a| format!("http://{a}")));
            }
        } else if let Ok(b) = base(&item) {
            out.push(b);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Try every peer for a short while; `Ok(None)` when none was reachable at all (genesis is then
/// safe as far as this replica can tell), an error when a reachable peer refused us.
async fn join_any_peer(
    list: &str,
    listen: SocketAddr,
    data_dir: &Path,
    parts: &dyn Fn() -> Result<KdsParts, CliError>,
    config: &KdsConfig,
) -> Result<Option<(Kds, String)>, CliError> {
    let http = http_client()?;
    let own = format!("http://{listen}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for url in resolve_peers(list).await {
            if url == own {
                continue;
            }
            let nonce: Result<NonceResponse, HttpFail> = post_json(
                &http,
                &format!("{url}{}", paths::REPLICA_NONCE),
                None::<&()>,
            )
            .await;
            match nonce {
                Err(HttpFail::Unreachable(e)) => {
                    tracing::info!(peer = %url, error = %e, "KDS peer not reachable");
                }
                Err(HttpFail::Answered(e)) => {
                    return Err(CliError::failed(format!(
                        "the KDS peer {url} refused a join nonce: {e}"
                    )));
                }
                Ok(_) => {
                    let (sealer, attester) = parts()?;
                    let kds =
                        join_over_http(&url, data_dir, sealer, attester, config.clone()).await?;
                    return Ok(Some((kds, url)));
                }
            }
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// clave engine

fn engine_attester(simulated: bool) -> Result<clave_engine::EngineAttester, CliError> {
    if simulated {
        let a = InsecureSimulatedAttester::new(dev_engine_measurement())
            .map_err(|e| failed("simulated engine attester", e))?;
        return Ok(Box::new(a));
    }
    #[cfg(feature = "configfs-tsm")]
    {
        let a = clave_attest::configfs_tsm::ConfigfsTsmAttester::open(
            clave_attest::configfs_tsm::DEFAULT_TSM_ROOT,
        )
        .map_err(|e| {
            failed(
                "cannot open configfs-tsm (is this an SEV-SNP or TDX guest?)",
                e,
            )
        })?;
        Ok(Box::new(a))
    }
    #[cfg(not(feature = "configfs-tsm"))]
    {
        Err(CliError::failed(format!(
            "the engine cannot start: {SIMULATED_REFUSED}"
        )))
    }
}

/// `clave engine`: obtain keys from the KDS, serve jobs, register with gateways if asked.
pub(crate) async fn engine(args: EngineArgs, out: &Out) -> Result<(), CliError> {
    let file = ServerFile::load(args.config.as_deref())?.engine;
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 7001)));
    let kds_url = base(&args.kds_url.or(file.kds).ok_or_else(|| {
        CliError::usage("give the engine its KDS: --kds URL (or CLAVE_KDS_URL)")
    })?)?;
    let register_with: Vec<String> = if args.register_with.is_empty() {
        file.register_with
    } else {
        args.register_with
    }
    .iter()
    .filter(|s| !s.trim().is_empty())
    .map(|s| base(s))
    .collect::<Result<_, _>>()?;
    let admin_token = args.admin_token.or(file.admin_token);
    if !register_with.is_empty() && admin_token.is_none() {
        return Err(CliError::usage(
            "--register-with needs the gateways' admin token: --admin-token T (or CLAVE_ADMIN_TOKEN)",
        ));
    }
    let simulated = args
        .insecure_simulated_tee
        .or(file.insecure_simulated_tee)
        .unwrap_or(false);
    let attester = engine_attester(simulated)?;
    if simulated {
        out.insecure(&format!("clave engine: {INSECURE_BANNER}"));
    }
    let kds_policy = match args.policy_dir.or(file.policy_dir) {
        Some(dir) => read_policy(&dir.join(KDS_POLICY_FILE), "KDS")?,
        None if simulated => {
            Policy::insecure_dev([dev_kds_measurement()]).map_err(|e| failed("dev policy", e))?
        }
        None => {
            return Err(CliError::usage(
                "give the engine the KDS it trusts: --policy-dir DIR with kds.json",
            ));
        }
    };
    let mut config = EngineConfig::new(kds_policy);
    if let Some(w) = args.workers.or(file.workers).filter(|w| *w > 0) {
        config.sandbox.workers = w;
    }
    config.sandbox.inline_budget_ms = crate::INLINE_BUDGET_MS;
    config.data_dir = args.data_dir.or(file.data_dir);
    if config.data_dir.is_none() {
        tracing::warn!(
            "no --data-dir: the engine keeps no clock floor across restarts (a host that restarts \
             it with the clock wound back can replay requests it already ran)"
        );
    }
    if let Some(proxy) = args.egress_proxy.or(file.egress_proxy) {
        config.egress.proxy = Some(crate::parse_egress_proxy(&proxy)?);
    }
    let kds_client =
        Arc::new(HttpKdsClient::new(&kds_url).map_err(|e| failed("invalid KDS URL", e))?);
    let wait = Duration::from_secs(args.kds_wait_secs.or(file.kds_wait_secs).unwrap_or(60));
    let started = Instant::now();
    let mut attester = Some(attester);
    let engine = loop {
        // `Engine::start` consumes the attester; rebuild it for another try.
        let a = match attester.take() {
            Some(a) => a,
            None => engine_attester(simulated)?,
        };
        match Engine::start(config.clone(), kds_client.clone(), a).await {
            Ok(e) => break e,
            Err(e) if started.elapsed() < wait && is_transport(&e) => {
                tracing::info!(error = %e, "KDS not ready yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                return Err(failed(
                    &format!("the engine did not obtain its keys from the KDS at {kds_url}"),
                    e,
                ));
            }
        }
    };
    let refresh = clave_engine::spawn_refresh(engine.clone(), Duration::from_secs(600));
    let (listener, addr) = bind(listen).await?;
    let advertise = match args.advertise.or(file.advertise) {
        Some(a) => base(&a)?,
        None if addr.ip().is_unspecified() && !register_with.is_empty() => {
            return Err(CliError::usage(
                "listening on an unspecified address: give --advertise URL so gateways can reach this engine",
            ));
        }
        None => format!("http://{addr}"),
    };
    let heartbeat = args.heartbeat_secs.or(file.heartbeat_secs);
    let registrations: Vec<_> = match &admin_token {
        Some(token) => register_with
            .iter()
            .map(|g| {
                tokio::spawn(heartbeat_loop(
                    g.clone(),
                    advertise.clone(),
                    token.clone(),
                    heartbeat,
                ))
            })
            .collect(),
        None => Vec::new(),
    };
    announce(&format!(
        "clave engine listening on http://{addr} ({}; KDS {kds_url}; advertised as {advertise}{})",
        if simulated {
            "INSECURE simulated TEE"
        } else {
            "hardware TEE"
        },
        if register_with.is_empty() {
            String::new()
        } else {
            format!("; registering with {}", register_with.join(", "))
        }
    ));
    let served = axum::serve(listener, clave_engine::router(engine))
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
        })
        .await;
    for r in &registrations {
        r.abort();
    }
    if let Some(token) = &admin_token {
        deregister_all(&register_with, &advertise, token).await;
    }
    refresh.abort();
    served.map_err(|e| failed("the engine server failed", e))?;
    announce("clave engine stopped");
    Ok(())
}

fn is_transport(e: &clave_engine::Error) -> bool {
    // A KDS call failed: not answering yet, or a nonce issued by another replica behind one
    // Service name (nonces are per replica). Attestation refusals are not retried.
    matches!(e, clave_engine::Error::Kds { .. })
}

async fn heartbeat_loop(gateway: String, advertise: String, token: String, every: Option<u64>) {
    let Ok(http) = http_client() else { return };
    let url = format!("{gateway}/v1/engines/register");
    let mut registered = false;
    loop {
        let resp = http
            .post(&url)
            .bearer_auth(&token)
            .json(&EngineRegisterRequest {
                url: advertise.clone(),
            })
            .send()
            .await;
        let pause = match resp {
            Ok(r) if r.status().is_success() => {
                let ttl = r
                    .json::<EngineRegisterResponse>()
                    .await
                    .map_or(30, |a| a.ttl_secs.max(1));
                if !registered {
                    tracing::info!(%gateway, ttl, "registered with gateway");
                    registered = true;
                }
                Duration::from_secs(every.unwrap_or(ttl / 3).clamp(1, ttl.max(1)))
            }
            Ok(r) => {
                tracing::warn!(%gateway, status = %r.status(), "gateway refused the registration");
                registered = false;
                Duration::from_secs(5)
            }
            Err(e) => {
                if registered {
                    tracing::warn!(%gateway, error = %one_line(&e.to_string()), "gateway unreachable");
                }
                registered = false;
                Duration::from_secs(1)
            }
        };
        tokio::time::sleep(pause).await;
    }
}

async fn deregister_all(gateways: &[String], advertise: &str, token: &str) {
    let Ok(http) = http_client() else { return };
    for g in gateways {
        let _ = http
            .post(format!("{g}/v1/engines/deregister"))
            .bearer_auth(token)
            .timeout(Duration::from_secs(2))
            .json(&EngineRegisterRequest {
                url: advertise.to_owned(),
            })
            .send()
            .await;
    }
}

// ---------------------------------------------------------------------------------------------
// clave gateway

/// The gateway's settings as environment-style pairs: flag (or env) first, then the file.
fn gateway_settings(
    args: &GatewayArgs,
    file: &GatewaySection,
) -> std::collections::BTreeMap<&'static str, String> {
    let mut m = std::collections::BTreeMap::new();
    let mut put = |k: &'static str, flag: &Option<String>, file: Option<String>| {
        if let Some(v) = flag.clone().or(file) {
            m.insert(k, v);
        }
    };
    put("CLAVE_GATEWAY_LISTEN", &args.listen, file.listen.clone());
    put(
        "CLAVE_DATABASE_URL",
        &args.database_url,
        file.database_url.clone(),
    );
    put("CLAVE_KDS_URL", &args.kds_url, file.kds.clone());
    put("CLAVE_ENGINES", &args.engines, file.engines.clone());
    put(
        "CLAVE_ADMIN_TOKEN",
        &args.admin_token,
        file.admin_token.clone(),
    );
    put("CLAVE_NATS_URL", &args.nats_url, file.nats_url.clone());
    put(
        "CLAVE_ASYNC_WORKER",
        &args.async_worker,
        file.async_worker.map(|b| b.to_string()),
    );
    put(
        "CLAVE_GATEWAY_SLOTS",
        &args.slots,
        file.slots.map(|n| n.to_string()),
    );
    put(
        "CLAVE_GATEWAY_QUEUE_LIMIT",
        &args.queue_limit,
        file.queue_limit.map(|n| n.to_string()),
    );
    m
}

/// Build the gateway process configuration from flags, environment and file.
///
/// # Errors
/// A missing or malformed setting, named.
pub fn gateway_config(
    args: &GatewayArgs,
    file: &GatewaySection,
) -> Result<GatewayProcessConfig, CliError> {
    let settings = gateway_settings(args, file);
    let mut cfg = GatewayProcessConfig::from_env_with(|k| settings.get(k).cloned()).map_err(
        |e| {
            CliError::usage(format!(
                "{} (flags: --database-url, --kds, --listen, --slots …; see `clave gateway --help`)",
                one_line(&e.to_string())
            ))
        },
    )?;
    if let Some(q) = cfg.queue.as_mut() {
        if let Some(s) = args.nats_stream.clone().or(file.nats_stream.clone()) {
            q.stream = s;
        }
        if let Some(p) = args
            .nats_subject_prefix
            .clone()
            .or(file.nats_subject_prefix.clone())
        {
            q.subject_prefix = p;
        }
        if let Some(s) = args.nats_ack_wait_secs.or(file.nats_ack_wait_secs) {
            q.ack_wait = Duration::from_secs(s.max(1));
        }
    }
    Ok(cfg)
}

/// `clave gateway`: `clave_gateway::run_gateway` until SIGINT/SIGTERM.
pub(crate) async fn gateway(args: GatewayArgs) -> Result<(), CliError> {
    let file = ServerFile::load(args.config.as_deref())?.gateway;
    let cfg = gateway_config(&args, &file)?;
    let process = clave_gateway::GatewayProcess::start(cfg.clone())
        .await
        .map_err(|e| failed("the gateway did not start", e))?;
    let addr = process
        .local_addr()
        .map_err(|e| failed("cannot read the bound address", e))?;
    let db = cfg.database_url.split(':').next().unwrap_or("?").to_owned();
    announce(&format!(
        "clave gateway listening on http://{addr} (untrusted host; database {db}; KDS {}; engines: {}; async: {})",
        cfg.kds_url,
        if cfg.pool.engines.is_empty() {
            "by registration".to_owned()
        } else {
            cfg.pool.engines.join(", ")
        },
        cfg.queue
            .as_ref()
            .map_or_else(|| "off".to_owned(), |q| format!("NATS stream {}", q.stream)),
    ));
    process
        .run(shutdown_signal())
        .await
        .map_err(|e| failed("the gateway stopped with an error", e))?;
    announce("clave gateway stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_sections_parse_and_refuse_unknown_keys() {
        let f = ServerFile::parse(
            "[kds]\nlisten = \"127.0.0.1:7000\"\ndata_dir = \"/var/lib/kds\"\n\
             [engine]\nkds = \"http://kds:7000\"\nregister_with = [\"http://g:8080\"]\n\
             [gateway]\ndatabase_url = \"sqlite://x.db\"\nkds = \"http://kds:7000\"\nslots = 4\nasync_worker = false\n",
        )
        .expect("valid");
        assert_eq!(f.kds.listen.map(|a| a.port()), Some(7000));
        assert_eq!(f.engine.register_with, vec!["http://g:8080"]);
        assert_eq!(f.gateway.slots, Some(4));
        assert!(ServerFile::parse("[kds]\nlisen = 1\n").is_err());
        assert!(ServerFile::parse("[other]\n").is_err());
    }

    #[test]
    fn gateway_flags_override_the_file() {
        let args = GatewayArgs {
            config: None,
            listen: Some("127.0.0.1:9999".into()),
            database_url: None,
            kds_url: Some("http://kds-flag:1".into()),
            engines: None,
            admin_token: None,
            nats_url: Some("nats://n:4222".into()),
            nats_stream: Some("S1".into()),
            nats_subject_prefix: None,
            nats_ack_wait_secs: Some(5),
            async_worker: None,
            slots: None,
            queue_limit: None,
        };
        let file = GatewaySection {
            database_url: Some("sqlite://x.db".into()),
            kds: Some("http://kds-file:1".into()),
            slots: Some(3),
            ..GatewaySection::default()
        };
        let cfg = gateway_config(&args, &file).expect("config");
        assert_eq!(cfg.kds_url, "http://kds-flag:1");
        assert_eq!(cfg.listen.port(), 9999);
        assert_eq!(cfg.gateway.dispatch.engine_slots, 3);
        let q = cfg.queue.expect("queue");
        assert_eq!(q.stream, "S1");
        assert_eq!(q.ack_wait, Duration::from_secs(5));
        let mut missing = args.clone();
        missing.kds_url = None;
        let e = gateway_config(&missing, &GatewaySection::default()).expect_err("no db");
        assert!(e.to_string().contains("CLAVE_DATABASE_URL"), "{e}");
    }

    #[test]
    fn flags_parse_booleans() {
        assert_eq!(parse_flag("1"), Ok(true));
        assert_eq!(parse_flag("false"), Ok(false));
        assert!(parse_flag("maybe").is_err());
    }
}
