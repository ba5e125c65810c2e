//! `clave engine`: an engine as its own process (its gateway registration heartbeat is
//! `clave_engine::register`, the delivery of its sealed developer log records
//! `clave_engine::log_ship`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clave_attest::{InsecureSimulatedAttester, Policy};
use clave_engine::register::{deregister_all, heartbeat_loop};
use clave_engine::{Engine, EngineConfig, HttpKdsClient};

use crate::output::{CliError, Out};
use crate::platform::{dev_engine_measurement, dev_kds_measurement};

#[cfg(not(feature = "configfs-tsm"))]
use super::SIMULATED_REFUSED;
use super::{
    EngineArgs, INSECURE_BANNER, KDS_POLICY_FILE, ServerFile, announce, base, bind, failed,
    read_policy, shutdown_signal,
};

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
    let log_to: Vec<String> = if !args.log_to.is_empty() {
        args.log_to
    } else if !file.log_to.is_empty() {
        file.log_to
    } else {
        register_with.clone()
    }
    .iter()
    .filter(|s| !s.trim().is_empty())
    .map(|s| base(s))
    .collect::<Result<_, _>>()?;
    let admin_token = args.admin_token.or(file.admin_token);
    if !(register_with.is_empty() && log_to.is_empty()) && admin_token.is_none() {
        return Err(CliError::usage(
            "--register-with and --log-to need the gateways' admin token: --admin-token T (or CLAVE_ADMIN_TOKEN)",
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
    crate::prepare_idle_threads(&engine);
    let refresh = clave_engine::spawn_refresh(engine.clone(), Duration::from_secs(600));
    // Sealed developer log records go to the gateways in batches, off the calls' path.
    let shipper = match &admin_token {
        Some(token) if !log_to.is_empty() => {
            let shipper = clave_engine::spawn_log_shipper(clave_engine::LogShipConfig::new(
                log_to.clone(),
                token.clone(),
            ));
            engine.set_log_sink(shipper.sink());
            Some(shipper)
        }
        _ => {
            tracing::warn!(
                "no gateway for sealed developer log records (--register-with or --log-to): \
                 `clave tail` and `clave logs` show nothing of the calls this engine runs"
            );
            None
        }
    };
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
        "clave engine listening on http://{addr} ({}; KDS {kds_url}; advertised as {advertise}{}{})",
        if simulated {
            "INSECURE simulated TEE"
        } else {
            "hardware TEE"
        },
        if register_with.is_empty() {
            String::new()
        } else {
            format!("; registering with {}", register_with.join(", "))
        },
        if shipper.is_some() {
            format!("; developer logs to {}", log_to.join(", "))
        } else {
            String::new()
        }
    ));
    let served = axum::serve(
        clave_gateway::no_delay(listener),
        clave_engine::router(engine),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
    })
    .await;
    for r in &registrations {
        r.abort();
    }
    if let Some(shipper) = shipper {
        shipper.shutdown(Duration::from_secs(3)).await;
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
