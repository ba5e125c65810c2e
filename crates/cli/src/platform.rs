//! The in-process platform of `clave dev`: a KDS, an engine (with its sandbox worker pool) and a
//! gateway in one process on 127.0.0.1, all on the INSECURE simulated TEE.
//!
//! The adapters here are the only glue between the parts: the engine's [`KdsClient`] over an
//! `Arc<clave_kds::Kds>`, and the gateway's [`EngineClient`] / [`KeySource`] over the engine and
//! the KDS. Each part still verifies what it receives exactly as it would over the network.
//!
//! The simulated KDS and engine use fixed, published measurements ([`dev_kds_measurement`],
//! [`dev_engine_measurement`]) rather than the hash of the running binary, so that rebuilding
//! `clave` keeps the sealed master secret (and therefore every key and deployed function) usable.
//! This is fine only because the simulated TEE is insecure anyway: anyone can forge its evidence.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clave_attest::{InsecureSimulatedAttester, Measurement, Policy};
use clave_engine::{Engine, EngineConfig, KdsClient, KdsError};
use clave_gateway::{
    AppState, BoxFuture, DispatchError, EngineClient, GatewayConfig, InvokeJob, KeySource,
    KeySourceError, Store,
};
use clave_kds::{InsecureSimulatedSealer, Kds, KdsConfig};
use clave_proto::KeyConfig;
use clave_proto::bundle::KeyBundle;
use clave_proto::kds_api::{
    AttestationResponse, KeysResponse, NonceResponse, ReleaseRequest, ReleaseResponse,
    parse_caller_nonce,
};
use clave_proto::spec::KeyPurpose;
use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;
use sha2::{Digest as _, Sha256};

use crate::config::DevRecord;

/// Label hashed into the fixed development KDS measurement.
pub const DEV_KDS_MEASUREMENT_LABEL: &[u8] = b"clave/dev/insecure-simulated-measurement/v1";
/// Label hashed into the fixed development engine measurement.
pub const DEV_ENGINE_MEASUREMENT_LABEL: &[u8] =
    b"clave/dev/insecure-simulated-engine-measurement/v1";
/// The project `clave dev` creates.
pub const DEV_PROJECT: &str = "default";

/// SHA-256(`clave/dev/insecure-simulated-measurement/v1`): the simulated KDS's measurement.
#[must_use]
pub fn dev_kds_measurement() -> Measurement {
    Measurement(Sha256::digest(DEV_KDS_MEASUREMENT_LABEL).to_vec())
}

/// SHA-256(`clave/dev/insecure-simulated-engine-measurement/v1`): the simulated engine's
/// measurement.
#[must_use]
pub fn dev_engine_measurement() -> Measurement {
    Measurement(Sha256::digest(DEV_ENGINE_MEASUREMENT_LABEL).to_vec())
}

/// Errors starting the dev platform (a binary-side error: one message for people).
#[derive(Debug)]
pub enum PlatformError {
    /// Something failed; the message says what.
    Start(String),
}

impl std::fmt::Display for PlatformError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Start(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for PlatformError {}

fn start_err(what: &str, e: impl std::fmt::Display) -> PlatformError {
    PlatformError::Start(format!("{what}: {e}"))
}

fn now() -> u64 {
    clave_client::now_unix()
}

fn rng() -> UnwrapErr<SysRng> {
    UnwrapErr(SysRng)
}

/// Settings of [`DevPlatform::start`].
#[derive(Debug, Clone)]
pub struct DevConfig {
    /// Address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// Data directory (`kds/` for the sealed master secret, `gateway.db` for SQLite).
    pub data_dir: PathBuf,
    /// Where to also publish `dev.json` for other commands (`None`: only in the data dir).
    pub publish_dir: Option<PathBuf>,
    /// Sandbox worker threads (0: the sandbox default).
    pub workers: usize,
}

impl DevConfig {
    /// Defaults: `127.0.0.1:8787`, `./.clave`, publish to the config dir.
    #[must_use]
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            listen,
            data_dir,
            publish_dir: Some(crate::config::config_dir()),
            workers: 0,
        }
    }
}

/// The engine's [`KdsClient`] over an in-process KDS.
#[derive(Debug, Clone)]
pub struct InProcessKds {
    kds: Arc<Kds>,
}

impl InProcessKds {
    /// Wrap a KDS.
    #[must_use]
    pub fn new(kds: Arc<Kds>) -> Self {
        Self { kds }
    }
}

fn kds_err(e: &clave_kds::Error) -> KdsError {
    KdsError::Refused {
        status: clave_kds::service::status_of(e).as_u16(),
        slug: e.slug().to_owned(),
        detail: None,
    }
}

impl KdsClient for InProcessKds {
    fn attestation(
        &self,
        nonce: Vec<u8>,
    ) -> clave_engine::BoxFuture<'_, Result<AttestationResponse, KdsError>> {
        Box::pin(async move { self.kds.attestation(&nonce).map_err(|e| kds_err(&e)) })
    }

    fn keys(&self) -> clave_engine::BoxFuture<'_, Result<KeysResponse, KdsError>> {
        Box::pin(async move { self.kds.keys(now()).map_err(|e| kds_err(&e)) })
    }

    fn nonce(&self) -> clave_engine::BoxFuture<'_, Result<NonceResponse, KdsError>> {
        Box::pin(async move { Ok(self.kds.new_nonce(now())) })
    }

    fn release(
        &self,
        req: ReleaseRequest,
    ) -> clave_engine::BoxFuture<'_, Result<ReleaseResponse, KdsError>> {
        Box::pin(async move { self.kds.release(&req, now()).map_err(|e| kds_err(&e)) })
    }
}

/// The gateway's [`KeySource`] over an in-process KDS: what it proxies is exactly what the KDS
/// service would answer.
#[derive(Debug, Clone)]
pub struct KdsKeySource {
    kds: Arc<Kds>,
}

impl KdsKeySource {
    /// Wrap a KDS.
    #[must_use]
    pub fn new(kds: Arc<Kds>) -> Self {
        Self { kds }
    }

    fn keys_json(&self) -> Result<Vec<u8>, KeySourceError> {
        let keys = self.kds.keys(now()).map_err(|e| upstream(&e))?;
        serde_json::to_vec(&keys).map_err(|_| KeySourceError::Upstream { status: 500 })
    }

    fn invoke_configs(&self) -> Result<Vec<u8>, KeySourceError> {
        let keys = self.kds.keys(now()).map_err(|e| upstream(&e))?;
        let configs: Vec<KeyConfig> = keys
            .bundles
            .iter()
            .filter_map(|b| {
                KeyBundle::from_payload(&clave_proto::kds_api::b64::decode(&b.payload).ok()?).ok()
            })
            .filter(|b| b.spec.purpose == KeyPurpose::Invoke)
            .map(|b| b.key_config)
            .collect();
        Ok(KeyConfig::encode_list(&configs))
    }
}

fn upstream(e: &clave_kds::Error) -> KeySourceError {
    KeySourceError::Upstream {
        status: clave_kds::service::status_of(e).as_u16(),
    }
}

impl KeySource for KdsKeySource {
    fn key_configs(&self) -> BoxFuture<'_, Result<Vec<u8>, KeySourceError>> {
        Box::pin(async move { self.invoke_configs() })
    }

    fn bundles(&self) -> BoxFuture<'_, Result<Vec<u8>, KeySourceError>> {
        Box::pin(async move { self.keys_json() })
    }

    fn attestation(&self, nonce: String) -> BoxFuture<'_, Result<Vec<u8>, KeySourceError>> {
        Box::pin(async move {
            let nonce =
                parse_caller_nonce(&nonce).map_err(|_| KeySourceError::Upstream { status: 400 })?;
            let att = self.kds.attestation(&nonce).map_err(|e| upstream(&e))?;
            serde_json::to_vec(&att).map_err(|_| KeySourceError::Upstream { status: 500 })
        })
    }
}

/// The gateway's [`EngineClient`] over in-process engines (round-robin).
#[derive(Debug, Clone)]
pub struct InProcessEngines {
    engines: Vec<Arc<Engine>>,
    next: Arc<std::sync::atomic::AtomicUsize>,
}

impl InProcessEngines {
    /// Wrap one or more engines.
    #[must_use]
    pub fn new(engines: Vec<Arc<Engine>>) -> Self {
        Self {
            engines,
            next: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        }
    }
}

impl EngineClient for InProcessEngines {
    fn invoke(&self, job: InvokeJob) -> BoxFuture<'_, Result<Vec<u8>, DispatchError>> {
        Box::pin(async move {
            if self.engines.is_empty() {
                return Err(DispatchError::Unavailable);
            }
            let i =
                self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.engines.len();
            let engine = &self.engines[i];
            engine.invoke(job, engine.now()).await.map_err(|e| {
                if e.is_rejected() {
                    DispatchError::Rejected
                } else if e.is_retryable() {
                    DispatchError::Overloaded { retry_after: None }
                } else {
                    DispatchError::Failed {
                        reason: e.to_string(),
                    }
                }
            })
        })
    }

    fn ready(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move { self.engines.iter().any(|e| e.is_ready()) })
    }
}

/// A running dev platform.
#[derive(Debug)]
pub struct DevPlatform {
    url: String,
    addr: SocketAddr,
    record: DevRecord,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    refresh: tokio::task::JoinHandle<()>,
    store: Store,
}

fn random_token(prefix: &str) -> String {
    use rand::Rng as _;
    let mut raw = [0u8; 32];
    rng().fill_bytes(&mut raw);
    format!("{prefix}{}", hex::encode(raw))
}

impl DevPlatform {
    /// Start KDS, engine and gateway; bind `config.listen`; create the default project and a
    /// deploy token (kept across restarts); write `dev.json` into the data dir and the publish
    /// dir.
    ///
    /// # Errors
    /// [`PlatformError::Start`] with a sentence naming the part that failed.
    pub async fn start(config: DevConfig) -> Result<Self, PlatformError> {
        let data_dir = &config.data_dir;
        std::fs::create_dir_all(data_dir)
            .map_err(|e| start_err(&format!("cannot create {}", data_dir.display()), e))?;
        let kds_m = dev_kds_measurement();
        let engine_m = dev_engine_measurement();

        // KDS.
        let engine_policy =
            Policy::insecure_dev([engine_m.clone()]).map_err(|e| start_err("engine policy", e))?;
        let kds_policy =
            Policy::insecure_dev([kds_m.clone()]).map_err(|e| start_err("KDS policy", e))?;
        let kds_config = KdsConfig::new(engine_policy.clone(), engine_policy, kds_policy);
        let kds_attester = InsecureSimulatedAttester::new(kds_m.clone())
            .map_err(|e| start_err("simulated KDS attester", e))?;
        let kds = Kds::open(
            &data_dir.join("kds"),
            Box::new(InsecureSimulatedSealer::new(kds_m.as_bytes())),
            Box::new(kds_attester),
            kds_config,
            now(),
            rng(),
        )
        .map_err(|e| start_err("the key service (KDS) did not start", e))?;
        let kds = Arc::new(kds);

        // Engine.
        let mut engine_config = EngineConfig::insecure_dev(kds_m.clone())
            .map_err(|e| start_err("engine configuration", e))?;
        if config.workers > 0 {
            engine_config.sandbox.workers = config.workers;
        }
        let engine_attester = InsecureSimulatedAttester::new(engine_m.clone())
            .map_err(|e| start_err("simulated engine attester", e))?;
        let engine = Engine::start(
            engine_config,
            Arc::new(InProcessKds::new(kds.clone())),
            Box::new(engine_attester),
        )
        .await
        .map_err(|e| start_err("the engine did not obtain its keys", e))?;
        let refresh = clave_engine::spawn_refresh(engine.clone(), Duration::from_secs(600));

        // Gateway.
        let store = Store::open_dir(data_dir)
            .await
            .map_err(|e| start_err("the gateway database did not open", e))?;
        store
            .create_project(DEV_PROJECT)
            .await
            .map_err(|e| start_err("cannot create the default project", e))?;
        let previous = DevRecord::load(data_dir);
        let token = match &previous {
            Some(p)
                if store
                    .project_for_token(&p.token)
                    .await
                    .ok()
                    .flatten()
                    .as_deref()
                    == Some(DEV_PROJECT) =>
            {
                p.token.clone()
            }
            _ => store
                .create_token(DEV_PROJECT)
                .await
                .map_err(|e| start_err("cannot create a deploy token", e))?,
        };
        let admin_token = previous
            .as_ref()
            .map(|p| p.admin_token.clone())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| random_token("cat_"));
        let state = AppState::new(
            store.clone(),
            Arc::new(InProcessEngines::new(vec![engine])),
            Arc::new(KdsKeySource::new(kds)),
            GatewayConfig::default().with_admin_token(&admin_token),
        );
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| start_err(&format!("cannot listen on {}", config.listen), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| start_err("cannot read the bound address", e))?;
        let url = format!("http://{addr}");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(clave_gateway::serve(listener, state, async move {
            let _ = rx.await;
        }));

        let record = DevRecord {
            gateway: url.clone(),
            token,
            admin_token,
            project: DEV_PROJECT.to_owned(),
            kds_measurement: kds_m.to_hex(),
            engine_measurement: engine_m.to_hex(),
            insecure: true,
            data_dir: absolute(data_dir).display().to_string(),
        };
        record
            .store(data_dir)
            .map_err(|e| start_err(&format!("cannot write {}/dev.json", data_dir.display()), e))?;
        if let Some(dir) = &config.publish_dir {
            record
                .store(dir)
                .map_err(|e| start_err(&format!("cannot write {}/dev.json", dir.display()), e))?;
        }
        Ok(Self {
            url,
            addr,
            record,
            shutdown: Some(tx),
            server: Some(server),
            refresh,
            store,
        })
    }

    /// The gateway URL, e.g. `http://127.0.0.1:8787`.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What was published in `dev.json` (URL, tokens, measurements).
    #[must_use]
    pub fn record(&self) -> &DevRecord {
        &self.record
    }

    /// The client trust policy that accepts exactly this platform (INSECURE).
    ///
    /// # Errors
    /// Never in practice (the measurements are fixed).
    pub fn trust_policy(&self) -> Result<clave_client::TrustPolicy, PlatformError> {
        clave_client::TrustPolicy::insecure_dev(dev_kds_measurement(), [dev_engine_measurement()])
            .map_err(|e| start_err("trust policy", e))
    }

    /// Stop accepting, drain in-flight calls, close the database.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            match server.await {
                Ok(Err(e)) => tracing::warn!(error = %e, "gateway stopped with an error"),
                Err(e) => tracing::warn!(error = %e, "gateway task failed"),
                Ok(Ok(())) => {}
            }
        }
        self.refresh.abort();
        self.store.close().await;
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
