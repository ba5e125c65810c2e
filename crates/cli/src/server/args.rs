//! The flags of `clave kds`, `clave engine` and `clave gateway`, and their `--config` file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

use crate::config::one_line;
use crate::output::CliError;

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
    /// Deliver sealed developer log records to these gateways (repeatable or comma-separated;
    /// the first that takes a batch stores it) [default: the --register-with gateways]
    #[arg(
        long,
        env = "CLAVE_ENGINE_LOG_TO",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub log_to: Vec<String>,
    /// Admin token of the gateways (needed by --register-with and --log-to)
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
    pub listen: Option<SocketAddr>,
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
    #[arg(long, env = "CLAVE_ASYNC_WORKER", value_name = "BOOL", value_parser = parse_flag)]
    pub async_worker: Option<bool>,
    /// Calls this gateway runs at once over all engines [default: 8]
    #[arg(long, env = "CLAVE_GATEWAY_SLOTS", value_name = "N")]
    pub slots: Option<usize>,
    /// Calls that may wait for a slot before 503 [default: 64]
    #[arg(long, env = "CLAVE_GATEWAY_QUEUE_LIMIT", value_name = "N")]
    pub queue_limit: Option<usize>,
    /// Delete sealed developer log records older than this (30m, 12h, 7d, ...) [default: 7d]
    #[arg(long, env = "CLAVE_GATEWAY_LOG_RETENTION", value_name = "DURATION")]
    pub log_retention: Option<String>,
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
    #[serde(default)]
    pub log_to: Vec<String>,
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

/// `[gateway]` of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct GatewaySection {
    pub listen: Option<SocketAddr>,
    pub database_url: Option<String>,
    pub kds: Option<String>,
    pub engines: Option<String>,
    pub admin_token: Option<String>,
    pub nats_url: Option<String>,
    pub nats_stream: Option<String>,
    pub nats_subject_prefix: Option<String>,
    pub nats_ack_wait_secs: Option<u64>,
    pub async_worker: Option<bool>,
    pub slots: Option<usize>,
    pub queue_limit: Option<usize>,
    pub log_retention: Option<String>,
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
        for (text, field) in [("[kds]\nlisen = 1\n", "lisen"), ("[other]\n", "other")] {
            let e = ServerFile::parse(text).expect_err(text);
            assert!(e.contains(&format!("unknown field `{field}`")), "{e}");
        }
    }

    #[test]
    fn flags_parse_booleans() {
        assert_eq!(parse_flag("1"), Ok(true));
        assert_eq!(parse_flag("false"), Ok(false));
        assert_eq!(
            parse_flag("maybe"),
            Err("`maybe` is not a boolean (use true or false)".to_owned())
        );
    }
}
