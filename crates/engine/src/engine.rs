//! The engine: keys, the invoke path and the engine's own evidence.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clave_attest::{Attester, Policy, ReportData};
use clave_proto::code::{Limits, Manifest, SealedCode, open_code_with_keys};
use clave_proto::gateway_api::{EngineJob, JobFlags};
use clave_proto::invoke::decapsulate_invoke;
use clave_proto::{
    InvokeError, InvokeMode, InvokeRequest, InvokeResponder, InvokeResponse, ProblemKind,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::Error;
use crate::call_env::{EnvCache, build_env, env_key};
use crate::code_cache::CodeCache;
use crate::devlog::{CallLog, LogSink};
use crate::kds_client::KdsClient;
use crate::keys::{Acquire, KeyRing};
use crate::replay::{ReplayCache, ResultCache, Verdict};
use crate::runner::{RunError, RunRequest, Runner, SandboxRunner, SandboxSettings};

mod call;
mod config;

pub use clave_attest::{Clock, system_clock};
pub use config::EngineConfig;

/// The attester the engine uses for its own evidence (key release and [`Engine::evidence`]).
pub type EngineAttester = Box<dyn Attester + Send + Sync>;

/// Domain label of the engine's own attestation binding (a caller nonce).
pub const ENGINE_ATTESTATION_LABEL: &[u8] = b"clave/v1/engine-attestation";

/// Report data of [`Engine::evidence`]: `ReportData::hash_of(ENGINE_ATTESTATION_LABEL, [nonce])`.
#[must_use]
pub fn engine_attestation_report_data(nonce: &[u8]) -> ReportData {
    ReportData::hash_of(ENGINE_ATTESTATION_LABEL, &[nonce])
}

/// The engine's evidence for a caller's nonce (`GET /v1/engine/attestation?nonce=`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineAttestation {
    /// `clave_attest::Evidence::to_bytes()` (unpadded base64url in JSON); its report data is
    /// [`engine_attestation_report_data`]`(nonce)`.
    #[serde(with = "clave_proto::kds_api::b64")]
    pub evidence: Vec<u8>,
    /// The nonce bytes that were bound, lowercase hex.
    pub nonce: String,
}

/// What the engine holds after a key refresh (no key material).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyStatus {
    /// The attested KDS identity key.
    pub identity_public_key: [u8; 32],
    /// Number of code keys held.
    pub code_keys: usize,
    /// Invoke epochs held, ascending.
    pub invoke_epochs: Vec<u64>,
}

/// The confidential engine. `Send + Sync`; share it as `Arc<Engine>`.
pub struct Engine {
    config: EngineConfig,
    kds: Arc<dyn KdsClient>,
    attester: EngineAttester,
    runner: Arc<dyn Runner>,
    clock: Clock,
    ring: RwLock<Option<Arc<KeyRing>>>,
    refresh_lock: tokio::sync::Mutex<()>,
    replay: Mutex<ReplayCache>,
    async_results: Mutex<ResultCache>,
    /// Async jobs running right now, so that a redelivery arriving before the first run has
    /// finished is answered "overloaded" (nothing ran; the queue delivers it again later and then
    /// gets the held result) instead of a sealed replay refusal.
    async_in_flight: Arc<Mutex<std::collections::HashSet<clave_proto::ReplayId>>>,
    code_cache: Mutex<CodeCache>,
    /// Parsed manifests by digest: parsing the same deployed manifest for every call of a
    /// function cost a few µs of JSON work (parsing is not authentication: the code opens only
    /// with the manifest it was sealed to, checked in `open_code`).
    manifests: Mutex<std::collections::HashMap<[u8; 32], Arc<ParsedManifest>>>,
    /// Opened at the first successful key refresh (its key derives from the code key).
    clock_floor: std::sync::OnceLock<crate::clock_floor::ClockFloor>,
    env_cache: Mutex<EnvCache>,
    log_sink: RwLock<Option<LogSink>>,
}

/// A deployed manifest as the request path uses it: parsed, and its outbound list ready to share
/// with every call (not copied per call).
struct ParsedManifest {
    manifest: Manifest,
    outbound: Arc<[clave_proto::HostPattern]>,
}

/// Removes an async job from the in-flight set when its run ends, however it ends.
struct InFlight {
    set: Arc<Mutex<std::collections::HashSet<clave_proto::ReplayId>>>,
    id: clave_proto::ReplayId,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.set).remove(&self.id);
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("tee", &self.attester.kind())
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Both caches stay consistent at every await-free step, so a poisoned lock is usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn problem(kind: ProblemKind, detail: impl Into<Option<String>>) -> InvokeError {
    InvokeError::new(kind, detail.into())
}

/// Manifest limits clamped to the platform maxima.
pub(crate) fn clamp_limits(l: &Limits, max: &Limits) -> Limits {
    Limits {
        cpu_ms: l.cpu_ms.min(max.cpu_ms),
        heap_bytes: l.heap_bytes.min(max.heap_bytes),
        stack_bytes: l.stack_bytes.min(max.stack_bytes),
        max_request_bytes: l.max_request_bytes.min(max.max_request_bytes),
        max_response_bytes: l.max_response_bytes.min(max.max_response_bytes),
        max_console_bytes: l.max_console_bytes.min(max.max_console_bytes),
    }
}

fn run_problem(e: RunError) -> InvokeError {
    match e {
        RunError::Timeout => problem(ProblemKind::Timeout, None),
        RunError::OutOfMemory => problem(ProblemKind::OutOfMemory, None),
        RunError::StackOverflow => problem(
            ProblemKind::LimitExceeded,
            "stack limit exceeded".to_owned(),
        ),
        RunError::RequestTooLarge => problem(
            ProblemKind::LimitExceeded,
            "request body larger than the function's limit".to_owned(),
        ),
        RunError::ResponseTooLarge => problem(
            ProblemKind::LimitExceeded,
            "response larger than the function's limit".to_owned(),
        ),
        RunError::Script { message } => problem(ProblemKind::ScriptError, message),
        RunError::CodeHashMismatch => problem(ProblemKind::CodeHashMismatch, None),
        _ => problem(ProblemKind::Internal, None),
    }
}

impl Engine {
    /// An engine with the real sandbox ([`SandboxRunner`]) and the system clock. It holds no
    /// keys yet: call [`Engine::refresh`] (or use [`Engine::start`]).
    ///
    /// # Errors
    /// [`Error::Config`], [`Error::Sandbox`].
    pub fn new(
        config: EngineConfig,
        kds: Arc<dyn KdsClient>,
        attester: EngineAttester,
    ) -> Result<Self, Error> {
        let egress = Arc::new(crate::egress::Egress::new(config.egress.clone())?);
        let runner: Arc<dyn Runner> =
            Arc::new(SandboxRunner::with_egress(&config.sandbox, egress)?);
        #[cfg(feature = "test-hooks")]
        let runner = crate::test_hooks::wrap(runner);
        Self::with_runner(config, kds, attester, runner)
    }

    /// An engine with another [`Runner`] (tests, instrumentation).
    ///
    /// # Errors
    /// [`Error::Config`].
    pub fn with_runner(
        config: EngineConfig,
        kds: Arc<dyn KdsClient>,
        attester: EngineAttester,
        runner: Arc<dyn Runner>,
    ) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            replay: Mutex::new(ReplayCache::new(config.replay_capacity)),
            async_results: Mutex::new(ResultCache::new(
                config.async_result_entries,
                config.async_result_bytes,
            )),
            async_in_flight: Arc::default(),
            code_cache: Mutex::new(CodeCache::new(
                config.code_cache_entries,
                config.code_cache_bytes,
            )),
            env_cache: Mutex::default(),
            manifests: Mutex::default(),
            log_sink: RwLock::new(None),
            config,
            kds,
            attester,
            runner,
            clock: system_clock(),
            ring: RwLock::new(None),
            refresh_lock: tokio::sync::Mutex::new(()),
            clock_floor: std::sync::OnceLock::new(),
        })
    }

    /// Replace the clock (used by the HTTP service and the background refresh).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// [`Engine::new`] followed by a first [`Engine::refresh`] at the clock's time.
    ///
    /// # Errors
    /// Any key acquisition error: the engine refuses to start without verified keys.
    pub async fn start(
        config: EngineConfig,
        kds: Arc<dyn KdsClient>,
        attester: EngineAttester,
    ) -> Result<Arc<Self>, Error> {
        let engine = Self::new(config, kds, attester)?;
        engine.refresh(engine.now()).await?;
        Ok(Arc::new(engine))
    }

    /// Send the sealed developer log record of every call whose manifest names a log key to
    /// `sink` (see [`crate::devlog`]). Without a sink no record is made.
    pub fn set_log_sink(&self, sink: LogSink) {
        *self.log_sink.write().unwrap_or_else(|p| p.into_inner()) = Some(sink);
    }

    fn log_sink(&self) -> Option<LogSink> {
        self.log_sink
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The engine clock's time, unix seconds.
    #[must_use]
    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    /// Whether keys have been acquired.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.ring().is_some()
    }

    fn ring(&self) -> Option<Arc<KeyRing>> {
        self.ring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .cloned()
    }

    /// What keys are held (no key material), or `None` before the first refresh.
    #[must_use]
    pub fn key_status(&self) -> Option<KeyStatus> {
        self.ring().map(|r| KeyStatus {
            identity_public_key: r.identity,
            code_keys: r.code.len(),
            invoke_epochs: r.invoke_epochs(),
        })
    }

    /// Get the calling thread ready to run fast functions itself: builds its sandbox slot now
    /// (about a millisecond) instead of in the first call it runs. For the threads that call
    /// [`Engine::invoke`] (an async runtime's workers), at a moment they are idle, e.g. from
    /// the runtime's `on_thread_park` hook; a thread that has its slot does nothing.
    pub fn prepare_thread(&self) {
        self.runner.prepare_thread();
    }

    /// Acquire or refresh keys at `now`: verify the KDS, verify its bundles, release the keys of
    /// specs not held yet, drop keys whose grace window has passed. On error the keys held so far
    /// stay in use. Concurrent calls are serialised.
    ///
    /// # Errors
    /// Any key acquisition error ([`Error::Kds`], [`Error::KdsAttestation`],
    /// [`Error::BadBundle`], [`Error::ReleasedKeyMismatch`], …).
    pub async fn refresh(&self, now: u64) -> Result<KeyStatus, Error> {
        let _serial = self.refresh_lock.lock().await;
        let started = Instant::now();
        let previous = self.ring();
        let acquire = Acquire {
            kds: self.kds.as_ref(),
            attester: self.attester.as_ref(),
            kds_policy: &self.config.kds_policy,
            key_grace_secs: self.config.key_grace_secs,
        };
        let result = acquire
            .run(previous.as_deref(), now)
            .await
            .and_then(|ring| {
                // Before the first keys are installed: refuse to serve at a wound-back clock.
                if self.clock_floor.get().is_none()
                    && let Some(floor) = crate::clock_floor::open_for(
                        &self.config,
                        &ring,
                        self.attester.kind() == clave_attest::TeeKind::InsecureSimulated,
                        now,
                    )?
                {
                    let _ = self.clock_floor.set(floor);
                }
                Ok(ring)
            });
        let ms = started.elapsed().as_millis();
        match result {
            Ok(ring) => {
                let ring = Arc::new(ring);
                *self.ring.write().unwrap_or_else(|p| p.into_inner()) = Some(ring.clone());
                let status = KeyStatus {
                    identity_public_key: ring.identity,
                    code_keys: ring.code.len(),
                    invoke_epochs: ring.invoke_epochs(),
                };
                tracing::info!(
                    code_keys = status.code_keys,
                    invoke_keys = status.invoke_epochs.len(),
                    ms,
                    "engine keys refreshed"
                );
                Ok(status)
            }
            Err(e) => {
                tracing::warn!(error = %e, ms, "engine key refresh failed");
                Err(e)
            }
        }
    }

    /// The engine's own evidence binding `nonce` (1 to 64 bytes) with report data
    /// [`engine_attestation_report_data`]`(nonce)`, for clients that check the engine directly.
    ///
    /// # Errors
    /// [`Error::BadNonce`], [`Error::OwnAttestation`].
    pub fn evidence(&self, nonce: &[u8]) -> Result<EngineAttestation, Error> {
        if nonce.is_empty() || nonce.len() > clave_proto::kds_api::MAX_CALLER_NONCE_LEN {
            return Err(Error::BadNonce);
        }
        let evidence = self
            .attester
            .attest(&engine_attestation_report_data(nonce))
            .map_err(Error::OwnAttestation)?;
        Ok(EngineAttestation {
            evidence: evidence.to_bytes(),
            nonce: hex::encode(nonce),
        })
    }
}

/// Refresh `engine`'s keys every `every` (first after one period), logging the outcome, until
/// the task is aborted. Run it next to the service: `spawn_refresh(engine.clone(), period)`.
pub fn spawn_refresh(engine: Arc<Engine>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every.max(Duration::from_secs(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            // Errors are logged inside; the keys held so far stay in use.
            let _ = engine.refresh(engine.now()).await;
        }
    })
}

#[cfg(test)]
mod tests;
