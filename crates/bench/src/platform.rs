//! The platform under test: what `clave_cli::DevPlatform::start` builds (KDS, engine and gateway in
//! this process on 127.0.0.1, SQLite in a temporary directory, the simulated TEE), assembled here
//! from the same public parts so that the INSECURE plaintext benchmark path can be enabled on both
//! the engine and the gateway.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clave_attest::{InsecureSimulatedAttester, Policy};
use clave_cli::platform::{
    DEV_PROJECT, InProcessEngines, InProcessKds, KdsKeySource, dev_engine_measurement,
    dev_kds_measurement,
};
use clave_client::{Client, TrustPolicy};
use clave_engine::{Engine, EngineConfig};
use clave_gateway::{AppState, GatewayConfig, Store};
use clave_kds::{InsecureSimulatedSealer, Kds, KdsConfig};

/// A running in-process platform.
pub struct Platform {
    /// The gateway's address.
    pub addr: SocketAddr,
    /// Deploy token of [`DEV_PROJECT`].
    pub token: String,
    /// A client that trusts exactly this platform (INSECURE simulated TEE).
    pub client: Client,
    _dir: tempfile::TempDir,
    _server: tokio::task::JoinHandle<std::io::Result<()>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

fn rng() -> rand::rand_core::UnwrapErr<rand::rngs::SysRng> {
    rand::rand_core::UnwrapErr(rand::rngs::SysRng)
}

/// The client trust policy for the simulated dev measurements.
pub fn trust() -> Result<TrustPolicy> {
    TrustPolicy::insecure_dev(dev_kds_measurement(), [dev_engine_measurement()])
        .context("trust policy")
}

impl Platform {
    /// Start everything with the plaintext benchmark path enabled on engine and gateway.
    pub async fn start() -> Result<Self> {
        let dir = tempfile::tempdir().context("temp dir")?;
        let now = clave_client::now_unix();
        let kds_m = dev_kds_measurement();
        let engine_m = dev_engine_measurement();
        let engine_policy = Policy::insecure_dev([engine_m.clone()])?;
        let kds = Kds::open(
            &dir.path().join("kds"),
            Box::new(InsecureSimulatedSealer::new(kds_m.as_bytes())),
            Box::new(InsecureSimulatedAttester::new(kds_m.clone())?),
            KdsConfig::new(engine_policy.clone(), engine_policy),
            now,
            rng(),
        )
        .context("KDS")?;
        let kds = Arc::new(kds);

        let mut engine_config = EngineConfig::insecure_dev(kds_m)?;
        engine_config.insecure_plaintext_bench = true;
        // What `clave dev` runs: fast functions on the request's thread.
        engine_config.sandbox.inline_budget_ms = clave_cli::INLINE_BUDGET_MS;
        let engine = Engine::start(
            engine_config,
            Arc::new(InProcessKds::new(kds.clone())),
            Box::new(InsecureSimulatedAttester::new(engine_m)?),
        )
        .await
        .context("engine keys")?;

        let store = Store::open_dir(dir.path()).await.context("gateway store")?;
        store.create_project(DEV_PROJECT).await?;
        let token = store.create_token(DEV_PROJECT).await?;
        // Off by default, like every gateway; set to measure `Store::set_active_version_ttl`.
        if let Some(ms) = std::env::var("CLAVE_BENCH_ACTIVE_VERSION_TTL_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            store.set_active_version_ttl(std::time::Duration::from_millis(ms));
        }
        let mut config = GatewayConfig::default();
        config.insecure_plaintext_bench = true;
        let state = AppState::new(
            store,
            Arc::new(InProcessEngines::new(vec![engine])),
            Arc::new(KdsKeySource::new(kds)),
            config,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(clave_gateway::serve(listener, state, async move {
            let _ = rx.await;
        }));
        let client = Client::new(&format!("http://{addr}"), trust()?)?;
        Ok(Self {
            addr,
            token,
            client,
            _dir: dir,
            _server: server,
            _shutdown: tx,
        })
    }
}
