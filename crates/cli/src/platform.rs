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
    /// The HTTP CONNECT proxy functions' `fetch()` goes through (`None`: direct).
    pub egress_proxy: Option<clave_engine::ProxyAddr>,
    /// How long (and how many) sealed developer log records the gateway keeps.
    pub log_retention: clave_gateway::LogRetention,
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
            egress_proxy: None,
            log_retention: clave_gateway::LogRetention::default(),
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

/// Where the first attested key release of the in-process engines stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyRelease {
    /// Still running.
    Pending,
    /// The engines hold keys.
    Done,
    /// It failed; the platform is stopping.
    Failed,
}

/// How long an invocation that arrives while the engines are still obtaining their keys is held
/// before it is answered 503 + `Retry-After`.
const KEY_RELEASE_HOLD: Duration = Duration::from_secs(10);

/// The gateway's [`EngineClient`] over in-process engines (round-robin).
#[derive(Debug, Clone)]
pub struct InProcessEngines {
    engines: Vec<Arc<Engine>>,
    next: Arc<std::sync::atomic::AtomicUsize>,
    /// Set while the engines obtain their first keys concurrently with the rest of the start:
    /// invocations wait for it instead of being refused.
    key_release: Option<tokio::sync::watch::Receiver<KeyRelease>>,
}

impl InProcessEngines {
    /// Wrap one or more engines.
    #[must_use]
    pub fn new(engines: Vec<Arc<Engine>>) -> Self {
        Self {
            engines,
            next: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            key_release: None,
        }
    }

    /// Hold invocations that find the engine without keys until `key_release` leaves
    /// [`KeyRelease::Pending`] (at most [`KEY_RELEASE_HOLD`]).
    fn holding_until(mut self, key_release: tokio::sync::watch::Receiver<KeyRelease>) -> Self {
        self.key_release = Some(key_release);
        self
    }

    /// Whether the engines obtained their keys (waiting for the first key release if it is
    /// still running). Without a gate, the engine answers for itself (`NotReady`).
    async fn keys_released(&self) -> bool {
        let Some(rx) = &self.key_release else {
            return true;
        };
        let mut rx = rx.clone();
        matches!(
            tokio::time::timeout(KEY_RELEASE_HOLD, rx.wait_for(|s| *s != KeyRelease::Pending))
                .await,
            Ok(Ok(s)) if *s == KeyRelease::Done
        )
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
            if !engine.is_ready() && !self.keys_released().await {
                // Nothing ran: the client may retry after `Retry-After`.
                return Err(DispatchError::Unavailable);
            }
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
    /// Deletes expired developer log records (as `clave gateway` does).
    log_pruner: tokio::task::JoinHandle<()>,
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
    /// dir. Returns once the engine holds its keys.
    ///
    /// The listener is bound first, so that a client connecting early waits in the accept
    /// backlog instead of being refused. The gateway database opens while the KDS opens its
    /// sealed master secret; the gateway serves the key routes (attestation, keys) as soon as
    /// the KDS is open, so that a client verifies the platform while the database opens and the
    /// engine's attested key release runs. Any other request that arrives before the database
    /// is open waits for it, and an invocation that arrives before the engine holds keys waits
    /// for them (each at most 10 s, then 503 + `Retry-After`).
    ///
    /// # Errors
    /// [`PlatformError::Start`] with a sentence naming the part that failed.
    pub async fn start(config: DevConfig) -> Result<Self, PlatformError> {
        let started = std::time::Instant::now();
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir)
            .map_err(|e| start_err(&format!("cannot create {}", data_dir.display()), e))?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| start_err(&format!("cannot listen on {}", config.listen), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| start_err("cannot read the bound address", e))?;
        let url = format!("http://{addr}");
        tracing::debug!(us = started.elapsed().as_micros(), %addr, "dev start: listening");

        // The gateway database opens (on sqlx's worker thread) while the KDS and the engine
        // start here.
        let gateway_db = tokio::spawn(open_gateway_db(data_dir.clone(), config.log_retention));
        let kds_m = dev_kds_measurement();
        let engine_m = dev_engine_measurement();
        let kds = Arc::new(open_kds(&data_dir, &kds_m, &engine_m)?);
        tracing::debug!(us = started.elapsed().as_micros(), "dev start: KDS open");

        // Gateway: the key routes now, the rest once its database is open.
        let starting = clave_gateway::Starting::new(Arc::new(KdsKeySource::new(kds.clone())));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(clave_gateway::serve_starting(
            listener,
            starting.clone(),
            async move {
                let _ = rx.await;
            },
        ));
        // A start that fails from here on stops the server it started.
        let stop_server = StopServer {
            starting: starting.clone(),
            shutdown: Some(tx),
            server: Some(server),
        };
        tracing::debug!(
            us = started.elapsed().as_micros(),
            "dev start: key routes serving"
        );

        // Engine: its sandbox workers start now; its attested key release runs concurrently
        // with the rest of the start.
        let mut engine_config = EngineConfig::insecure_dev(kds_m.clone())
            .map_err(|e| start_err("engine configuration", e))?;
        if config.workers > 0 {
            engine_config.sandbox.workers = config.workers;
        }
        engine_config.sandbox.inline_budget_ms = crate::INLINE_BUDGET_MS;
        engine_config.data_dir = Some(data_dir.join("engine"));
        engine_config.egress.proxy = config.egress_proxy.clone();
        let engine_attester = InsecureSimulatedAttester::new(engine_m.clone())
            .map_err(|e| start_err("simulated engine attester", e))?;
        let engine = Arc::new(
            Engine::new(
                engine_config,
                Arc::new(InProcessKds::new(kds.clone())),
                Box::new(engine_attester),
            )
            .map_err(|e| start_err("the engine did not start", e))?,
        );
        tracing::debug!(
            us = started.elapsed().as_micros(),
            "dev start: engine created"
        );
        // The runtime threads build their sandbox slots whenever they wait during the rest of
        // the start (for the database, the key release, a client), not in the first calls.
        crate::prepare_idle_threads(&engine);
        let (released_tx, released_rx) = tokio::sync::watch::channel(KeyRelease::Pending);
        let key_release = tokio::spawn({
            let engine = engine.clone();
            async move {
                let result = engine.refresh(engine.now()).await;
                tracing::debug!(
                    us = started.elapsed().as_micros(),
                    ok = result.is_ok(),
                    "dev start: engine key release done"
                );
                let _ = released_tx.send(if result.is_ok() {
                    KeyRelease::Done
                } else {
                    KeyRelease::Failed
                });
                result
            }
        });
        let abort_release = AbortOnDrop(key_release.abort_handle());

        // Gateway: serve as soon as its database is open.
        let GatewayDb {
            store,
            token,
            admin_token,
        } = gateway_db
            .await
            .map_err(|e| start_err("the gateway database did not open", e))??;
        tracing::debug!(
            us = started.elapsed().as_micros(),
            "dev start: gateway database open"
        );
        // Sealed developer log records go straight into the gateway's store (ciphertext only).
        let writer = store.log_writer();
        engine.set_log_sink(Arc::new(move |log: clave_engine::SealedLog| {
            writer(log.project, log.function, log.sealed);
        }));
        let state = AppState::new(
            store.clone(),
            Arc::new(InProcessEngines::new(vec![engine.clone()]).holding_until(released_rx)),
            Arc::new(KdsKeySource::new(kds)),
            GatewayConfig::default().with_admin_token(&admin_token),
        );
        let page = crate::page::router(store.clone(), DEV_PROJECT);
        starting.ready(state, page);
        tracing::debug!(
            us = started.elapsed().as_micros(),
            "dev start: gateway ready"
        );

        let record = DevRecord {
            gateway: url.clone(),
            token,
            admin_token,
            project: DEV_PROJECT.to_owned(),
            kds_measurement: kds_m.to_hex(),
            engine_measurement: engine_m.to_hex(),
            insecure: true,
            data_dir: absolute(&data_dir).display().to_string(),
        };
        // dev.json is written (with fsync) on the blocking pool while the keys are released.
        let publish = tokio::task::spawn_blocking({
            let record = record.clone();
            let dirs: Vec<PathBuf> = std::iter::once(data_dir.clone())
                .chain(config.publish_dir.clone())
                .collect();
            move || {
                for dir in &dirs {
                    publish_record(&record, dir).map_err(|e| {
                        start_err(&format!("cannot write {}/dev.json", dir.display()), e)
                    })?;
                }
                Ok::<(), PlatformError>(())
            }
        });

        let (shutdown, server) = stop_server.keep();
        let mut platform = Self {
            url,
            addr,
            record,
            shutdown,
            server,
            refresh: tokio::spawn(async {}),
            log_pruner: store.spawn_log_pruner(),
            store,
        };
        let keys = key_release
            .await
            .map_err(|e| start_err("the engine did not obtain its keys", e))
            .and_then(|r| r.map_err(|e| start_err("the engine did not obtain its keys", e)));
        drop(abort_release);
        let published = publish
            .await
            .map_err(|e| start_err("cannot write dev.json", e))
            .and_then(|r| r);
        if let Err(e) = keys.and(published) {
            platform.shutdown().await;
            return Err(e);
        }
        platform.refresh = clave_engine::spawn_refresh(engine, Duration::from_secs(600));
        tracing::debug!(us = started.elapsed().as_micros(), "dev start: ready");
        Ok(platform)
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
        self.log_pruner.abort();
        self.store.close().await;
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The gateway server of a start still under way: dropped (a start that failed), it refuses
/// the requests held for the rest of the gateway and stops serving.
struct StopServer {
    starting: clave_gateway::Starting,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl StopServer {
    /// The start succeeded: the platform takes the server over.
    fn keep(
        mut self,
    ) -> (
        Option<tokio::sync::oneshot::Sender<()>>,
        Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    ) {
        (self.shutdown.take(), self.server.take())
    }
}

impl Drop for StopServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            self.starting.stop();
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Aborts a task when dropped (a start that fails half-way leaves nothing running).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Open (or, on the first start, create) the KDS in `data_dir/kds`.
fn open_kds(
    data_dir: &Path,
    kds_m: &Measurement,
    engine_m: &Measurement,
) -> Result<Kds, PlatformError> {
    let engine_policy =
        Policy::insecure_dev([engine_m.clone()]).map_err(|e| start_err("engine policy", e))?;
    let kds_config = KdsConfig::new(engine_policy.clone(), engine_policy);
    let kds_attester = InsecureSimulatedAttester::new(kds_m.clone())
        .map_err(|e| start_err("simulated KDS attester", e))?;
    Kds::open(
        &data_dir.join("kds"),
        Box::new(InsecureSimulatedSealer::new(kds_m.as_bytes())),
        Box::new(kds_attester),
        kds_config,
        now(),
        rng(),
    )
    .map_err(|e| start_err("the key service (KDS) did not start", e))
}

/// The opened gateway database with the dev tokens.
struct GatewayDb {
    store: Store,
    token: String,
    admin_token: String,
}

/// Open `data_dir/gateway.db`; make sure the default project exists (a read when it does, so a
/// restart writes nothing); keep the previous deploy and admin tokens when they are still valid.
async fn open_gateway_db(
    data_dir: PathBuf,
    retention: clave_gateway::LogRetention,
) -> Result<GatewayDb, PlatformError> {
    let store = Store::open_dir(&data_dir)
        .await
        .map_err(|e| start_err("the gateway database did not open", e))?;
    store.set_log_retention(retention);
    // A restart keeps the deploy token of the previous start when it still names the default
    // project (which then exists): one query, so the start opens one database connection.
    let previous = DevRecord::load(&data_dir);
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
        _ => {
            let project_exists = store
                .project_exists(DEV_PROJECT)
                .await
                .map_err(|e| start_err("cannot create the default project", e))?;
            if !project_exists {
                store
                    .create_project(DEV_PROJECT)
                    .await
                    .map_err(|e| start_err("cannot create the default project", e))?;
            }
            store
                .create_token(DEV_PROJECT)
                .await
                .map_err(|e| start_err("cannot create a deploy token", e))?
        }
    };
    let admin_token = previous
        .as_ref()
        .map(|p| p.admin_token.clone())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| random_token("cat_"));
    Ok(GatewayDb {
        store,
        token,
        admin_token,
    })
}

/// Write `dir/dev.json` unless it already holds exactly `record` (a restart on the same address
/// then writes and syncs nothing).
fn publish_record(record: &DevRecord, dir: &Path) -> std::io::Result<()> {
    if DevRecord::load(dir).as_ref() == Some(record) {
        return Ok(());
    }
    record.store(dir)
}

#[cfg(test)]
mod tests;
