//! `clave gateway`: the gateway as its own process.

use std::time::Duration;

use clave_gateway::{GatewayProcessConfig, QueueConfig};

use crate::output::CliError;

use super::{GatewayArgs, GatewaySection, ServerFile, announce, failed, shutdown_signal};

// ---------------------------------------------------------------------------------------------
// clave gateway

/// Build the gateway process configuration: each setting from its flag (or environment
/// variable, which clap reads), else from the file, else the default.
///
/// # Errors
/// A missing required setting, named.
pub fn gateway_config(
    args: &GatewayArgs,
    file: &GatewaySection,
) -> Result<GatewayProcessConfig, CliError> {
    let required = |flag: &Option<String>, file: &Option<String>, name: &str| {
        flag.clone().or_else(|| file.clone()).ok_or_else(|| {
            CliError::usage(format!(
                "{name} is required (flags: --database-url, --kds, --listen, --slots …; see `clave gateway --help`)"
            ))
        })
    };
    let database_url = required(
        &args.database_url,
        &file.database_url,
        "--database-url (CLAVE_DATABASE_URL)",
    )?;
    let kds_url = required(&args.kds_url, &file.kds, "--kds (CLAVE_KDS_URL)")?;
    let mut cfg = GatewayProcessConfig::new(database_url, kds_url);
    if let Some(listen) = args.listen.or(file.listen) {
        cfg.listen = listen;
    }
    if let Some(engines) = args.engines.as_ref().or(file.engines.as_ref()) {
        cfg.pool.engines = clave_gateway::parse_engine_list(engines);
    }
    if let Some(token) = args
        .admin_token
        .as_ref()
        .or(file.admin_token.as_ref())
        .filter(|t| !t.is_empty())
    {
        cfg = cfg.with_admin_token(token);
    }
    if let Some(nats) = args
        .nats_url
        .as_ref()
        .or(file.nats_url.as_ref())
        .filter(|u| !u.is_empty())
    {
        let mut q = QueueConfig::new(nats.clone());
        if let Some(s) = args.nats_stream.as_ref().or(file.nats_stream.as_ref()) {
            q.stream.clone_from(s);
        }
        if let Some(p) = args
            .nats_subject_prefix
            .as_ref()
            .or(file.nats_subject_prefix.as_ref())
        {
            q.subject_prefix.clone_from(p);
        }
        if let Some(s) = args.nats_ack_wait_secs.or(file.nats_ack_wait_secs) {
            q.ack_wait = Duration::from_secs(s.max(1));
        }
        cfg.queue = Some(q);
    }
    if let Some(worker) = args.async_worker.or(file.async_worker) {
        cfg.async_worker = worker;
    }
    if let Some(n) = args.slots.or(file.slots) {
        cfg.gateway.dispatch.engine_slots = n;
    }
    if let Some(n) = args.queue_limit.or(file.queue_limit) {
        cfg.gateway.dispatch.queue_limit = n;
    }
    if let Some(d) = args.log_retention.as_ref().or(file.log_retention.as_ref()) {
        cfg.log_retention.max_age =
            crate::parse_log_retention("--log-retention (CLAVE_GATEWAY_LOG_RETENTION)", d)?;
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
            listen: Some("127.0.0.1:9999".parse().expect("address")),
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
            ..file.clone()
        };
        let mut unset = args.clone();
        unset.log_retention = None;
        let cfg = gateway_config(&unset, &from_file).expect("config");
        assert_eq!(cfg.log_retention.max_age, Duration::from_secs(1800));
        let worker_off = GatewayArgs {
            async_worker: Some(false),
            ..args.clone()
        };
        let file_on = GatewaySection {
            async_worker: Some(true),
            ..file.clone()
        };
        assert!(
            !gateway_config(&worker_off, &file_on)
                .expect("config")
                .async_worker
        );
        assert!(
            gateway_config(&args, &file_on)
                .expect("config")
                .async_worker
        );
    }
}
