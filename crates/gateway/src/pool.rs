//! Balancing over several remote engines: least outstanding calls, health checks with ejection and
//! re-admission, registration with a time to live, and retry on another engine only for calls that never
//! reached one.
//!
//! The retry rule is the point of this module. A call is sent to another engine only when the first one
//! certainly did not run it:
//! * the connection could not be made (refused, DNS failure, connect timeout): nothing was sent;
//! * the engine answered `503` with an `overloaded` problem: the engine contract says nothing ran.
//!
//! Everything else after the request left the gateway (a timeout, a connection dropped mid-call, a `5xx`)
//! may have run the function and is returned as it is, never retried.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use clave_proto::gateway_api::{
    ENGINE_INVOKE_PATH, ENGINE_JOB_CONTENT_TYPE, ENGINE_READY_PATH, EngineInfo, problem_type,
};

use crate::Error;
use crate::engine::{BoxFuture, DispatchError, EngineClient, InvokeJob};
use clave_proto::rt::ensure_rustls_provider;

/// Settings of an [`EnginePool`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnginePoolConfig {
    /// Engines known from configuration (base URLs such as `http://10.0.0.5:7001`). They never expire; a
    /// failing one is ejected and re-admitted when healthy again.
    ///
    /// An entry `dns+http://name:port` is a discovery source instead: at every health-check round the
    /// name is resolved and each address becomes an engine `http://addr:port` (engines that leave the
    /// answer are dropped). On Kubernetes, a headless Service lists exactly the ready engine pods.
    pub engines: Vec<String>,
    /// Largest response read back from an engine.
    pub max_response_bytes: usize,
    /// Longest wait for a TCP/TLS connection to an engine (a call that cannot connect is retried elsewhere).
    pub connect_timeout: Duration,
    /// Pause between two health-check rounds.
    pub health_interval: Duration,
    /// Longest wait for one readiness answer.
    pub health_timeout: Duration,
    /// Consecutive failed health checks that eject an engine (a refused call connection ejects at once).
    pub failures_to_eject: u32,
    /// How long a registration lasts without a heartbeat (re-registration).
    pub registration_ttl: Duration,
    /// Most engines the pool holds (configured + registered).
    pub max_engines: usize,
    /// Idle keep-alive connections kept per engine (0: a new connection per call). A call that races an
    /// engine crash on a kept connection fails as "may have run" and is not retried; a call on a new
    /// connection to a dead engine is refused before sending and goes to another engine.
    pub max_idle_per_engine: usize,
}

impl Default for EnginePoolConfig {
    fn default() -> Self {
        Self {
            engines: Vec::new(),
            max_response_bytes: (1 << 20) + 4096,
            connect_timeout: Duration::from_secs(2),
            health_interval: Duration::from_secs(2),
            health_timeout: Duration::from_secs(2),
            failures_to_eject: 2,
            registration_ttl: Duration::from_secs(30),
            max_engines: 256,
            max_idle_per_engine: 16,
        }
    }
}

/// Normalise and check an engine base URL: `http(s)://host[:port][/prefix]`, no query or fragment.
///
/// # Errors
/// [`Error::BadRemoteUrl`].
pub fn normalize_engine_url(url: &str) -> Result<String, Error> {
    let url = url.trim();
    let parsed = reqwest::Url::parse(url).map_err(|_| Error::BadRemoteUrl)?;
    let ok = matches!(parsed.scheme(), "http" | "https")
        && parsed.host_str().is_some_and(|h| !h.is_empty())
        && parsed.query().is_none()
        && parsed.fragment().is_none()
        && parsed.username().is_empty()
        && parsed.password().is_none()
        && url.len() <= 512;
    if !ok {
        return Err(Error::BadRemoteUrl);
    }
    Ok(url.trim_end_matches('/').to_owned())
}

struct Endpoint {
    url: String,
    configured: bool,
    /// Index of the DNS discovery source that produced this engine.
    discovered_by: Option<usize>,
    outstanding: AtomicUsize,
    calls: AtomicU64,
    healthy: AtomicBool,
    failures: AtomicU32,
    /// Whether a health check has answered (the first answer decides at once).
    probed: AtomicBool,
    /// Registered engines only: when the registration lapses.
    expires: Mutex<Option<Instant>>,
}

impl Endpoint {
    fn new(url: String, configured: bool, expires: Option<Instant>, healthy: bool) -> Self {
        Self {
            url,
            configured,
            discovered_by: None,
            outstanding: AtomicUsize::new(0),
            calls: AtomicU64::new(0),
            healthy: AtomicBool::new(healthy),
            failures: AtomicU32::new(0),
            probed: AtomicBool::new(false),
            expires: Mutex::new(expires),
        }
    }

    fn expires(&self) -> Option<Instant> {
        *self.expires.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn eject(&self, why: &str) {
        if self.healthy.swap(false, Ordering::AcqRel) {
            tracing::warn!(engine = %self.url, why, "engine ejected");
        }
    }

    fn admit(&self) {
        self.failures.store(0, Ordering::Release);
        if !self.healthy.swap(true, Ordering::AcqRel) {
            tracing::info!(engine = %self.url, "engine admitted");
        }
    }
}

/// Counts a call as outstanding on an engine while it lives.
struct Outstanding(Arc<Endpoint>);

impl Outstanding {
    fn new(ep: &Arc<Endpoint>) -> Self {
        ep.outstanding.fetch_add(1, Ordering::AcqRel);
        ep.calls.fetch_add(1, Ordering::Relaxed);
        Self(ep.clone())
    }
}

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What one attempt on one engine came to.
enum Attempt {
    /// Nothing reached the engine: try another.
    NotSent,
    /// The engine refused as overloaded: nothing ran; try another.
    Busy(Option<Duration>),
    /// Final: the engine may have run the call.
    Done(Result<Vec<u8>, DispatchError>),
}

/// An [`EngineClient`] over several engines reached by HTTP (`POST /v1/engine/invoke`, binary
/// [`InvokeJob`] framing; see `clave_proto::gateway_api`).
///
/// Each call goes to the healthy engine with the fewest outstanding calls (ties rotate). Engines are
/// health-checked (`GET /v1/engine/ready`) by [`EnginePool::spawn_health_checker`]; one that fails is
/// ejected and re-admitted once it answers again. Engines may also [`register`](EnginePool::register)
/// themselves with a time to live renewed by re-registering (the heartbeat).
pub struct EnginePool {
    client: reqwest::Client,
    config: EnginePoolConfig,
    /// DNS discovery sources: (scheme, host, port).
    discovery: Vec<(String, String, u16)>,
    endpoints: RwLock<Vec<Arc<Endpoint>>>,
    rotate: AtomicUsize,
    checked: AtomicBool,
}

/// The former name of [`EnginePool`] (one engine list, no registration needed).
pub type HttpEngineClient = EnginePool;

impl std::fmt::Debug for EnginePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnginePool")
            .field("engines", &self.engines())
            .finish_non_exhaustive()
    }
}

impl EnginePool {
    /// Pool over `endpoints` with default settings; `max_response_bytes` caps what is read back.
    ///
    /// # Errors
    /// [`Error::BadRemoteUrl`] for an empty list or a URL that is not http(s); [`Error::HttpClient`].
    pub fn new(endpoints: Vec<String>, max_response_bytes: usize) -> Result<Self, Error> {
        if endpoints.is_empty() {
            return Err(Error::BadRemoteUrl);
        }
        Self::with_config(EnginePoolConfig {
            engines: endpoints,
            max_response_bytes,
            ..EnginePoolConfig::default()
        })
    }

    /// Pool with `config`. The engine list may be empty when engines register themselves.
    ///
    /// # Errors
    /// [`Error::BadRemoteUrl`], [`Error::HttpClient`].
    pub fn with_config(config: EnginePoolConfig) -> Result<Self, Error> {
        let mut endpoints: Vec<Arc<Endpoint>> = Vec::new();
        let mut discovery = Vec::new();
        for raw in &config.engines {
            if let Some(rest) = raw.trim().strip_prefix("dns+") {
                let parsed = reqwest::Url::parse(&normalize_engine_url(rest)?)
                    .map_err(|_| Error::BadRemoteUrl)?;
                let host = parsed.host_str().ok_or(Error::BadRemoteUrl)?.to_owned();
                let port = parsed.port_or_known_default().ok_or(Error::BadRemoteUrl)?;
                if parsed.path() != "/" {
                    return Err(Error::BadRemoteUrl);
                }
                discovery.push((parsed.scheme().to_owned(), host, port));
                continue;
            }
            let url = normalize_engine_url(raw)?;
            if !endpoints.iter().any(|e| e.url == url) {
                // Optimistic: a configured engine takes calls until it fails once.
                endpoints.push(Arc::new(Endpoint::new(url, true, None, true)));
            }
        }
        ensure_rustls_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(config.max_idle_per_engine)
            .build()
            .map_err(Error::HttpClient)?;
        Ok(Self {
            client,
            config,
            discovery,
            endpoints: RwLock::new(endpoints),
            rotate: AtomicUsize::new(0),
            checked: AtomicBool::new(false),
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &EnginePoolConfig {
        &self.config
    }

    fn snapshot(&self) -> Vec<Arc<Endpoint>> {
        self.endpoints
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// State of every engine, in pool order.
    pub fn engines(&self) -> Vec<EngineInfo> {
        let now = Instant::now();
        self.snapshot()
            .iter()
            .map(|e| EngineInfo {
                url: e.url.clone(),
                healthy: e.healthy.load(Ordering::Acquire),
                outstanding: e.outstanding.load(Ordering::Acquire) as u64,
                calls: e.calls.load(Ordering::Relaxed),
                registered: !e.configured && e.discovered_by.is_none(),
                expires_in_secs: e
                    .expires()
                    .map(|t| t.saturating_duration_since(now).as_secs()),
            })
            .collect()
    }

    /// Number of engines currently taking calls.
    pub fn healthy_count(&self) -> usize {
        self.snapshot()
            .iter()
            .filter(|e| e.healthy.load(Ordering::Acquire))
            .count()
    }

    /// Register (or, if known, renew) the engine at `url` for [`EnginePoolConfig::registration_ttl`]; the
    /// engine re-registers before that to stay (heartbeat). A new engine is probed once and admitted only
    /// if it answers ready; otherwise the health checker admits it later. Returns the TTL.
    ///
    /// # Errors
    /// [`Error::BadRemoteUrl`]; [`Error::TooManyEngines`] when the pool is full.
    pub async fn register(&self, url: &str) -> Result<Duration, Error> {
        let url = normalize_engine_url(url)?;
        let ttl = self.config.registration_ttl;
        let expires = Instant::now() + ttl;
        let added = {
            let mut list = self.endpoints.write().unwrap_or_else(|p| p.into_inner());
            if let Some(existing) = list.iter().find(|e| e.url == url) {
                if !existing.configured && existing.discovered_by.is_none() {
                    *existing.expires.lock().unwrap_or_else(|p| p.into_inner()) = Some(expires);
                }
                None
            } else {
                if list.len() >= self.config.max_engines {
                    return Err(Error::TooManyEngines {
                        limit: self.config.max_engines,
                    });
                }
                let ep = Arc::new(Endpoint::new(url.clone(), false, Some(expires), false));
                list.push(ep.clone());
                Some(ep)
            }
        };
        if let Some(ep) = added {
            tracing::info!(engine = %url, "engine registered");
            self.probe(&ep).await;
        }
        Ok(ttl)
    }

    /// Remove a registered engine (an engine shutting down). Configured engines stay. Returns whether one
    /// was removed. Calls already running on it finish.
    pub fn deregister(&self, url: &str) -> bool {
        let Ok(url) = normalize_engine_url(url) else {
            return false;
        };
        let mut list = self.endpoints.write().unwrap_or_else(|p| p.into_inner());
        let before = list.len();
        list.retain(|e| e.configured || e.discovered_by.is_some() || e.url != url);
        let removed = list.len() != before;
        if removed {
            tracing::info!(engine = %url, "engine deregistered");
        }
        removed
    }

    /// Resolve the DNS discovery sources; add new addresses, drop vanished ones (a failed lookup changes
    /// nothing).
    async fn discover(&self) {
        for (index, (scheme, host, port)) in self.discovery.iter().enumerate() {
            let found: Vec<String> = match tokio::net::lookup_host((host.as_str(), *port)).await {
                Ok(addrs) => addrs.map(|a| format!("{scheme}://{a}")).collect(),
                Err(e) => {
                    tracing::warn!(%host, error = %e, "engine discovery lookup failed");
                    continue;
                }
            };
            let mut list = self.endpoints.write().unwrap_or_else(|p| p.into_inner());
            list.retain(|e| e.discovered_by != Some(index) || found.contains(&e.url));
            for url in found {
                if list.len() >= self.config.max_engines {
                    break;
                }
                if !list.iter().any(|e| e.url == url) {
                    tracing::info!(engine = %url, %host, "engine discovered");
                    let mut ep = Endpoint::new(url, false, None, false);
                    ep.discovered_by = Some(index);
                    list.push(Arc::new(ep));
                }
            }
        }
    }

    /// One health-check round now: resolve discovery names, drop lapsed registrations, probe every
    /// engine, eject or admit.
    pub async fn check_now(&self) {
        self.discover().await;
        let now = Instant::now();
        {
            let mut list = self.endpoints.write().unwrap_or_else(|p| p.into_inner());
            list.retain(|e| {
                let keep = e.expires().is_none_or(|t| t > now);
                if !keep {
                    tracing::warn!(engine = %e.url, "engine registration lapsed");
                }
                keep
            });
        }
        let list = self.snapshot();
        futures_util::future::join_all(list.iter().map(|e| self.probe(e))).await;
        self.checked.store(true, Ordering::Release);
    }

    async fn probe(&self, ep: &Arc<Endpoint>) {
        let ok = self
            .client
            .get(format!("{}{ENGINE_READY_PATH}", ep.url))
            .timeout(self.config.health_timeout)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        let first = !ep.probed.swap(true, Ordering::AcqRel);
        if ok {
            ep.admit();
        } else {
            let failures = ep.failures.fetch_add(1, Ordering::AcqRel) + 1;
            if first || failures >= self.config.failures_to_eject.max(1) {
                ep.eject("health check failed");
            }
        }
    }

    /// Run health checks every [`EnginePoolConfig::health_interval`] until the pool is dropped (the task
    /// holds only a weak reference) or the handle is aborted.
    pub fn spawn_health_checker(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        let interval = self.config.health_interval;
        tokio::spawn(async move {
            loop {
                let Some(pool) = weak.upgrade() else { return };
                pool.check_now().await;
                drop(pool);
                tokio::time::sleep(interval).await;
            }
        })
    }

    /// The healthy, untried engine with the fewest outstanding calls; if no engine at all is healthy, an
    /// untried ejected one (a probe: a refused connection costs nothing and is retried).
    fn pick(&self, tried: &[Arc<Endpoint>]) -> Option<Arc<Endpoint>> {
        let list = self.snapshot();
        if list.is_empty() {
            return None;
        }
        let start = self.rotate.fetch_add(1, Ordering::Relaxed);
        let n = list.len();
        let untried = |e: &&Arc<Endpoint>| !tried.iter().any(|t| Arc::ptr_eq(t, e));
        let rotated = (0..n).map(|i| &list[(start + i) % n]);
        let any_healthy = list.iter().any(|e| e.healthy.load(Ordering::Acquire));
        let best = rotated
            .clone()
            .filter(untried)
            .filter(|e| e.healthy.load(Ordering::Acquire))
            .min_by_key(|e| e.outstanding.load(Ordering::Acquire));
        match best {
            Some(e) => Some(e.clone()),
            None if !any_healthy => rotated
                .filter(untried)
                .min_by_key(|e| e.failures.load(Ordering::Acquire))
                .cloned(),
            None => None,
        }
    }

    async fn invoke_inner(&self, job: InvokeJob) -> Result<Vec<u8>, DispatchError> {
        let frame = job.encode().map_err(|e| DispatchError::Failed {
            reason: format!("cannot frame job: {e}"),
        })?;
        let frame = bytes::Bytes::from(frame);
        let mut tried: Vec<Arc<Endpoint>> = Vec::new();
        let mut refusal = DispatchError::Unavailable;
        while let Some(ep) = self.pick(&tried) {
            tried.push(ep.clone());
            let _outstanding = Outstanding::new(&ep);
            match self.attempt(&ep, frame.clone()).await {
                Attempt::NotSent => {
                    ep.eject("connection failed");
                    tracing::warn!(engine = %ep.url, "engine unreachable; trying another (nothing was sent)");
                }
                Attempt::Busy(retry_after) => {
                    tracing::debug!(engine = %ep.url, "engine overloaded; trying another (nothing ran)");
                    refusal = DispatchError::Overloaded { retry_after };
                }
                Attempt::Done(result) => return result,
            }
        }
        Err(refusal)
    }

    async fn attempt(&self, ep: &Endpoint, frame: bytes::Bytes) -> Attempt {
        let sent = self
            .client
            .post(format!("{}{ENGINE_INVOKE_PATH}", ep.url))
            .header(reqwest::header::CONTENT_TYPE, ENGINE_JOB_CONTENT_TYPE)
            .body(frame)
            .send()
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            // Connect errors (refused, DNS, connect timeout) happen before any byte of the request is sent.
            Err(e) if e.is_connect() => return Attempt::NotSent,
            Err(e) if e.is_timeout() => return Attempt::Done(Err(DispatchError::Timeout)),
            Err(e) => {
                // The request may have been delivered: never retried.
                ep.eject("connection broke during a call");
                return Attempt::Done(Err(DispatchError::Failed {
                    reason: format!("engine request failed: {e}"),
                }));
            }
        };
        match read_response(resp, self.config.max_response_bytes).await {
            Err(DispatchError::Overloaded { retry_after }) => Attempt::Busy(retry_after),
            other => {
                if other.is_ok() {
                    ep.admit();
                }
                Attempt::Done(other)
            }
        }
    }
}

/// Map an engine's HTTP answer onto the dispatch outcome (see the engine API in `clave_proto::gateway_api`).
async fn read_response(
    mut resp: reqwest::Response,
    max_response_bytes: usize,
) -> Result<Vec<u8>, DispatchError> {
    let status = resp.status();
    if status.is_success() {
        if resp
            .content_length()
            .is_some_and(|l| l > max_response_bytes as u64)
        {
            return Err(DispatchError::Failed {
                reason: "engine response too large".into(),
            });
        }
        // Sized once when the engine says how long (it does: a sealed response is one buffer).
        let mut body = Vec::with_capacity(
            resp.content_length()
                .and_then(|l| usize::try_from(l).ok())
                .unwrap_or(0),
        );
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > max_response_bytes {
                        return Err(DispatchError::Failed {
                            reason: "engine response too large".into(),
                        });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body),
                Err(e) => {
                    return Err(DispatchError::Failed {
                        reason: format!("reading engine response: {e}"),
                    });
                }
            }
        }
    }
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs);
    match status.as_u16() {
        400 => Err(DispatchError::Rejected),
        503 => {
            // A 503 only means "nothing ran" when the engine says it is overloaded.
            let body = resp.bytes().await.unwrap_or_default();
            let overloaded = serde_json::from_slice::<clave_proto::gateway_api::Problem>(&body)
                .is_ok_and(|p| p.type_ == problem_type::OVERLOADED);
            if overloaded {
                Err(DispatchError::Overloaded { retry_after })
            } else {
                Err(DispatchError::Failed {
                    reason: "engine answered 503".into(),
                })
            }
        }
        504 => Err(DispatchError::Timeout),
        other => Err(DispatchError::Failed {
            reason: format!("engine answered {other}"),
        }),
    }
}

impl EngineClient for EnginePool {
    fn invoke(&self, job: InvokeJob) -> BoxFuture<'_, Result<Vec<u8>, DispatchError>> {
        Box::pin(self.invoke_inner(job))
    }

    fn ready(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            if !self.checked.load(Ordering::Acquire) {
                self.check_now().await;
            }
            self.healthy_count() > 0
        })
    }

    fn as_pool(&self) -> Option<&EnginePool> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_urls_are_checked_and_normalised() {
        assert_eq!(
            normalize_engine_url("http://127.0.0.1:7001/").expect("ok"),
            "http://127.0.0.1:7001"
        );
        assert_eq!(
            normalize_engine_url(" https://engine-0.clave:7001 ").expect("ok"),
            "https://engine-0.clave:7001"
        );
        for bad in [
            "",
            "127.0.0.1:7001",
            "ftp://x",
            "http://",
            "http://x/?a=b",
            "http://x/#f",
            "http://user:pw@x",
            "javascript:alert(1)",
        ] {
            let r = normalize_engine_url(bad);
            assert!(matches!(r, Err(Error::BadRemoteUrl)), "{bad:?}: {r:?}");
        }
        let long = format!("http://{}.example", "a".repeat(600));
        let r = normalize_engine_url(&long);
        assert!(matches!(r, Err(Error::BadRemoteUrl)), "{r:?}");
    }

    #[tokio::test]
    async fn dns_sources_resolve_to_engines() {
        assert!(
            matches!(
                EnginePool::with_config(EnginePoolConfig {
                    engines: vec!["dns+http://localhost:7001/path".into()],
                    ..EnginePoolConfig::default()
                }),
                Err(Error::BadRemoteUrl)
            ),
            "a DNS source names a host and port only"
        );
        let pool = EnginePool::with_config(EnginePoolConfig {
            engines: vec!["dns+http://localhost:9".into()],
            health_timeout: Duration::from_millis(200),
            ..EnginePoolConfig::default()
        })
        .expect("pool");
        assert!(pool.engines().is_empty());
        pool.check_now().await;
        let engines = pool.engines();
        assert!(
            engines.iter().any(|e| e.url == "http://127.0.0.1:9"),
            "{engines:?}"
        );
        assert!(engines.iter().all(|e| !e.registered && !e.healthy));
    }

    #[tokio::test]
    async fn registration_renews_lapses_and_is_capped() {
        let pool = EnginePool::with_config(EnginePoolConfig {
            registration_ttl: Duration::from_millis(1),
            health_timeout: Duration::from_millis(200),
            max_engines: 2,
            ..EnginePoolConfig::default()
        })
        .expect("pool");
        // Nothing listens on port 9 of loopback in the test environment: registered but not admitted.
        pool.register("http://127.0.0.1:9").await.expect("register");
        pool.register("http://127.0.0.1:9/").await.expect("renew");
        assert_eq!(pool.engines().len(), 1);
        assert!(!pool.engines()[0].healthy);
        pool.register("http://127.0.0.2:9").await.expect("second");
        assert!(matches!(
            pool.register("http://127.0.0.3:9").await,
            Err(Error::TooManyEngines { limit: 2 })
        ));
        assert!(pool.deregister("http://127.0.0.2:9"));
        assert!(!pool.deregister("http://127.0.0.2:9"));
        tokio::time::sleep(Duration::from_millis(5)).await;
        pool.check_now().await;
        assert!(pool.engines().is_empty(), "lapsed registration is dropped");
        assert!(!pool.ready().await);
    }
}
