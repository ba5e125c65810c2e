//! `clave gateway`: the gateway as its own process.

use std::time::Duration;

use clave_gateway::GatewayProcessConfig;

use crate::config::one_line;
use crate::output::CliError;

use super::{GatewayArgs, GatewaySection, ServerFile, announce, failed, shutdown_signal};

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
    put(
        "CLAVE_GATEWAY_LOG_RETENTION",
        &args.log_retention,
        file.log_retention.clone(),
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
            log_retention: Some("36h".into()),
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
        assert_eq!(cfg.log_retention.max_age, Duration::from_secs(36 * 3600));
        let q = cfg.queue.expect("queue");
        assert_eq!(q.stream, "S1");
        assert_eq!(q.ack_wait, Duration::from_secs(5));
        let mut missing = args.clone();
        missing.kds_url = None;
        let e = gateway_config(&missing, &GatewaySection::default()).expect_err("no db");
        assert!(e.to_string().contains("CLAVE_DATABASE_URL"), "{e}");
        let mut bad = args.clone();
        bad.log_retention = Some("7 days".into());
        let e = gateway_config(&bad, &file).expect_err("bad retention");
        assert!(e.to_string().contains("CLAVE_GATEWAY_LOG_RETENTION"), "{e}");
        let from_file = GatewaySection {
            log_retention: Some("30m".into()),
            ..file
        };
        let mut unset = args.clone();
        unset.log_retention = None;
        let cfg = gateway_config(&unset, &from_file).expect("config");
        assert_eq!(cfg.log_retention.max_age, Duration::from_secs(1800));
    }
}
