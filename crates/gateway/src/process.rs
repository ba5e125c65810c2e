//! The `clave gateway` process: storage, KDS proxy, engine pool with health checks, optional asynchronous
//! queue and worker, HTTP server, graceful shutdown. The CLI parses flags, environment and its
//! config file into a [`GatewayProcessConfig`] and calls [`run_gateway`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::{
    AppState, EnginePool, EnginePoolConfig, Error, GatewayConfig, HttpKeySource, JobQueue,
    KdsPaths, LogRetention, QueueConfig, Store,
};

/// Everything a gateway process needs. `clave gateway` sets it from its flags, these environment
/// variables and its `--config` file:
///
/// | field | environment | default |
/// |---|---|---|
/// | [`listen`](Self::listen) | `CLAVE_GATEWAY_LISTEN` | `127.0.0.1:8080` |
/// | [`database_url`](Self::database_url) | `CLAVE_DATABASE_URL` | required (`postgres://…` or `sqlite://…`) |
/// | [`kds_url`](Self::kds_url) | `CLAVE_KDS_URL` | required |
/// | [`pool`](Self::pool)`.engines` | `CLAVE_ENGINES` (comma-separated base URLs) | empty: engines register |
/// | admin token ([`with_admin_token`](Self::with_admin_token)) | `CLAVE_ADMIN_TOKEN` | none: admin API off |
/// | [`queue`](Self::queue) | `CLAVE_NATS_URL` | none: `?mode=async` answers 501 |
/// | [`async_worker`](Self::async_worker) | `CLAVE_ASYNC_WORKER` (`true`/`false`) | `true` |
/// | [`gateway`](Self::gateway)`.dispatch.engine_slots` | `CLAVE_GATEWAY_SLOTS` | 8 |
/// | [`gateway`](Self::gateway)`.dispatch.queue_limit` | `CLAVE_GATEWAY_QUEUE_LIMIT` | 64 |
/// | [`log_retention`](Self::log_retention)`.max_age` | `CLAVE_GATEWAY_LOG_RETENTION` ([`parse_duration`]) | `7d` |
#[derive(Clone)]
pub struct GatewayProcessConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// `postgres://…` (several gateways) or `sqlite://…` (one).
    pub database_url: String,
    /// Base URL of the KDS service (its replicas sit behind this one name).
    pub kds_url: String,
    /// Engine pool settings, including the configured engine URLs.
    pub pool: EnginePoolConfig,
    /// Gateway limits, dispatch limits, drain timeout (and the admin token, via
    /// [`GatewayProcessConfig::with_admin_token`]).
    pub gateway: GatewayConfig,
    /// Asynchronous invocation through NATS JetStream, when set.
    pub queue: Option<QueueConfig>,
    /// Whether this process also runs the asynchronous worker (a gateway may only accept calls).
    pub async_worker: bool,
    /// Asynchronous results older than this are deleted (hourly).
    pub result_ttl: Duration,
    /// How long and how many sealed developer log records are kept per project (enforced as
    /// records arrive, on every read, and by a periodic sweep of all projects).
    pub log_retention: LogRetention,
}

impl std::fmt::Debug for GatewayProcessConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The database URL may hold a password: print only its scheme.
        let scheme = self.database_url.split(':').next().unwrap_or("");
        f.debug_struct("GatewayProcessConfig")
            .field("listen", &self.listen)
            .field("database", &format_args!("{scheme}:…"))
            .field("kds_url", &self.kds_url)
            .field("pool", &self.pool)
            .field("gateway", &self.gateway)
            .field("queue", &self.queue)
            .field("async_worker", &self.async_worker)
            .field("result_ttl", &self.result_ttl)
            .field("log_retention", &self.log_retention)
            .finish()
    }
}

/// A duration written as a number and a unit: `45s`, `30m`, `12h`, `7d`; `None` for anything
/// else (or an overflow).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(mult).map(Duration::from_secs)
}

/// Split a comma- or whitespace-separated engine list (`CLAVE_ENGINES`), dropping empty items.
pub fn parse_engine_list(list: &str) -> Vec<String> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl GatewayProcessConfig {
    /// Defaults around the two required settings.
    pub fn new(database_url: impl Into<String>, kds_url: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: database_url.into(),
            kds_url: kds_url.into(),
            pool: EnginePoolConfig::default(),
            gateway: GatewayConfig::default(),
            queue: None,
            async_worker: true,
            result_ttl: Duration::from_secs(24 * 3600),
            log_retention: LogRetention::default(),
        }
    }

    /// Enable the admin API (`/v1/projects/...` admin routes and `/v1/engines/...`) for `token`.
    pub fn with_admin_token(mut self, token: &str) -> Self {
        self.gateway = self.gateway.with_admin_token(token);
        self
    }
}

/// A started gateway process: connected to its database, KDS, engines and queue, listening, not yet
/// serving. [`GatewayProcess::run`] serves until shutdown.
pub struct GatewayProcess {
    listener: tokio::net::TcpListener,
    state: AppState,
    pool: Arc<EnginePool>,
    config: GatewayProcessConfig,
}

impl std::fmt::Debug for GatewayProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayProcess")
            .field("listen", &self.listener.local_addr().ok())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl GatewayProcess {
    /// Connect to everything and bind the listener.
    ///
    /// # Errors
    /// [`Error::UnsupportedUrl`]/[`Error::Database`]/[`Error::Migrate`] for the database,
    /// [`Error::BadRemoteUrl`] for the KDS or an engine URL, [`Error::Queue`] for NATS,
    /// [`Error::Listen`] when the address cannot be bound.
    pub async fn start(config: GatewayProcessConfig) -> Result<Self, Error> {
        let store = Store::connect(&config.database_url).await?;
        store.set_log_retention(config.log_retention);
        let keys = Arc::new(HttpKeySource::new(&config.kds_url, KdsPaths::default())?);
        let mut pool_config = config.pool.clone();
        pool_config.max_response_bytes = pool_config
            .max_response_bytes
            .max(config.gateway.limits.max_request_bytes);
        let pool = Arc::new(EnginePool::with_config(pool_config)?);
        let mut state = AppState::new(store, pool.clone(), keys, config.gateway.clone());
        if let Some(queue_config) = &config.queue {
            let queue = JobQueue::connect(queue_config.clone()).await?;
            state = state.with_queue(queue);
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(Error::Listen)?;
        Ok(Self {
            listener,
            state,
            pool,
            config,
        })
    }

    /// The bound address (useful with port 0).
    ///
    /// # Errors
    /// [`Error::Listen`].
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.listener.local_addr().map_err(Error::Listen)
    }

    /// The shared state (store, dispatcher, queue).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The engine pool (registration, health).
    pub fn pool(&self) -> &Arc<EnginePool> {
        &self.pool
    }

    /// Serve until `shutdown` resolves, with engine health checks, the asynchronous worker (when a queue
    /// is configured and [`GatewayProcessConfig::async_worker`] is set), hourly result purging and
    /// the developer log retention sweep ([`Store::spawn_log_pruner`]); then drain and return.
    ///
    /// # Errors
    /// [`Error::Listen`] when serving fails; [`Error::Queue`] when the worker cannot start.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let Self {
            listener,
            state,
            pool,
            config,
        } = self;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let health = pool.spawn_health_checker();
        let purge = {
            let store = state.store().clone();
            let ttl = i64::try_from(config.result_ttl.as_secs()).unwrap_or(i64::MAX);
            tokio::spawn(async move {
                loop {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                    match store.purge_results(now.saturating_sub(ttl)).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(n, "purged old asynchronous results"),
                        Err(e) => tracing::warn!(error = %e, "could not purge results"),
                    }
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
            })
        };
        let log_pruner = state.store().spawn_log_pruner();
        let worker = match (state.queue().cloned(), config.async_worker) {
            (Some(queue), true) => Some(tokio::spawn(crate::run_worker(
                state.clone(),
                queue,
                stopped(),
            ))),
            _ => None,
        };
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, engines = pool.engines().len(), "gateway listening");
        }
        let served = crate::serve(listener, state.clone(), stopped()).await;
        let worked = match worker {
            Some(w) => w.await.unwrap_or(Ok(())),
            None => Ok(()),
        };
        health.abort();
        purge.abort();
        log_pruner.abort();
        state.store().close().await;
        served.map_err(Error::Listen)?;
        worked
    }
}

/// Run a whole gateway process until `shutdown` resolves (see [`GatewayProcessConfig`] for the settings
/// and their environment names).
///
/// # Errors
/// As [`GatewayProcess::start`] and [`GatewayProcess::run`].
pub async fn run_gateway(
    config: GatewayProcessConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    GatewayProcess::start(config).await?.run(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_lists_split_on_commas_and_spaces() {
        assert_eq!(
            parse_engine_list(" http://a:1, http://b:2 ,,http://c:3\nhttp://d:4"),
            vec!["http://a:1", "http://b:2", "http://c:3", "http://d:4"]
        );
        assert!(parse_engine_list(" , ").is_empty());
    }

    #[test]
    fn durations_parse_with_a_unit() {
        assert_eq!(parse_duration("45s"), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration(" 30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("12h"), Some(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
        for bad in [
            "",
            "7",
            "d",
            "7 d",
            "7w",
            "-1d",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_the_database_password_and_the_admin_token() {
        let cfg = GatewayProcessConfig::new("postgres://u:secret@db/clave", "http://kds:7000")
            .with_admin_token("t0k");
        assert!(cfg.gateway.is_admin_token("t0k"));
        let debug = format!("{cfg:?}");
        assert!(debug.contains("postgres:"), "{debug}");
        assert!(
            !debug.contains("secret") && !debug.contains("t0k"),
            "{debug}"
        );
    }
}
