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
use crate::runner::{RunError, Runner, SandboxRunner, SandboxSettings};

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
    /// Opened at the first successful key refresh (its key derives from the code key).
    clock_floor: std::sync::OnceLock<crate::clock_floor::ClockFloor>,
    env_cache: Mutex<EnvCache>,
    log_sink: RwLock<Option<LogSink>>,
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

    /// Run one job at time `now` and return the `message/ohttp-res` body.
    ///
    /// Returned in the clear (and carrying no content) are only: [`Error::UnknownKeyId`] and
    /// [`Error::Undecryptable`] (the outer envelope; nothing ran), [`Error::NotReady`] and
    /// [`Error::Overloaded`] (nothing ran, retry later), [`Error::ClockBehind`] (the host's clock
    /// is behind the engine's clock floor; nothing ran), and [`Error::Seal`] (a bug). Every other
    /// failure — malformed inner request, stale `date`, replay, wrong function, code that does
    /// not open or does not match the pinned `clave-code-hash` (the function is then not run),
    /// sandbox limits and script errors — is sealed to the user as a problem.
    ///
    /// A replayed encapsulation is refused, even if it is the same job delivered twice: the
    /// function never runs twice for one request. For jobs flagged
    /// [`clave_proto::gateway_api::JobFlags::ASYNC`] (the at-least-once queue) the engine holds
    /// the sealed response of the first run (bounded, [`EngineConfig::async_result_secs`]) and
    /// answers a redelivery with exactly those bytes; a redelivery that arrives while the first
    /// run is still going is answered [`Error::Overloaded`] (nothing ran; deliver again later);
    /// once the engine no longer holds the result, the redelivery is refused like any replay, so
    /// the queue must also keep the first result.
    ///
    /// # Errors
    /// As above.
    pub async fn invoke(&self, job: EngineJob, now: u64) -> Result<Vec<u8>, Error> {
        // The date check below trusts `now`: never below the floor (minus the allowed skew).
        if let Some(floor) = self.clock_floor.get() {
            floor.observe(now)?;
        }
        if job.flags.is_insecure_plaintext_bench() {
            if !self.config.insecure_plaintext_bench || job.flags.is_async() {
                return Err(Error::PlaintextRefused);
            }
            return self.invoke_insecure_plaintext(job, now).await;
        }
        let started = Instant::now();
        let ring = self.ring().ok_or(Error::NotReady)?;
        let (bhttp, responder) =
            decapsulate_invoke(&ring.invoke, &job.request).map_err(|e| match e {
                clave_proto::Error::UnknownKeyId(id) => Error::UnknownKeyId(id),
                _ => Error::Undecryptable,
            })?;
        let bhttp = Zeroizing::new(bhttp);
        let replay_id = responder.replay_id();
        let is_async = job.flags.is_async();
        if is_async && let Some(first) = lock(&self.async_results).get(&replay_id, now) {
            tracing::info!(
                function = %job.function,
                is_async,
                response_bytes = first.len(),
                "invoke"
            );
            return Ok(first.as_ref().clone());
        }
        let in_flight = if is_async {
            if !lock(&self.async_in_flight).insert(replay_id) {
                // The first delivery is still running here: nothing ran for this one.
                return Err(Error::Overloaded);
            }
            Some(InFlight {
                set: Arc::clone(&self.async_in_flight),
                id: replay_id,
            })
        } else {
            None
        };
        let sink = self.log_sink();
        let mut log = CallLog::default();
        let (result, recorded) = self
            .handle(&ring, &job, &bhttp, replay_id, now, &mut log)
            .await?;
        let sealed = seal(&responder, &result)?;
        if let Some(sink) = sink {
            let ts_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            if let Some(pending) = log.finish(&result, ts_ms.saturating_sub(us / 1000), us) {
                // Sealed after the answer is on its way: not on the call's latency path.
                tokio::spawn(async move {
                    if let Some(sealed) = pending.seal() {
                        sink(sealed);
                    }
                });
            }
        }
        if is_async && recorded {
            let hold = self
                .config
                .async_result_secs
                .max(self.config.replay_window_secs().saturating_mul(2));
            lock(&self.async_results).insert(
                replay_id,
                sealed.clone(),
                now.saturating_add(hold),
                now,
            );
        }
        // Only now, with the result held, may a redelivery be answered from `async_results`.
        drop(in_flight);
        // No outcome here: whether the call succeeded, threw, timed out, was stale, replayed or
        // pinned another hash travels only sealed to the caller. The host sees what it sees
        // anyway: the function name, sizes and timing.
        tracing::info!(
            function = %job.function,
            is_async,
            request_bytes = job.request.len(),
            response_bytes = sealed.len(),
            ms = started.elapsed().as_millis(),
            "invoke"
        );
        Ok(sealed)
    }

    /// Everything after decapsulation: the outcome, and whether the request was recorded in
    /// the replay cache (it then counts as "the first run"). `Err` only for the clear
    /// "overloaded" refusal.
    async fn handle(
        &self,
        ring: &KeyRing,
        job: &EngineJob,
        bhttp: &[u8],
        replay_id: clave_proto::ReplayId,
        now: u64,
        log: &mut CallLog,
    ) -> Result<(Result<InvokeResponse, InvokeError>, bool), Error> {
        let req = match InvokeRequest::from_bhttp(bhttp) {
            Ok(r) => r,
            Err(e) => return Ok((Err(problem(ProblemKind::BadRequest, e.to_string())), false)),
        };
        if let Err(p) = check_mode(&req, job.flags).and_then(|()| self.check_date(&req, now)) {
            self.authenticate_log_key(ring, job, &req, log);
            return Ok((Err(p), false));
        }
        let verdict = lock(&self.replay).check_and_insert(
            replay_id,
            req.date
                .saturating_add(self.config.date_window_for(req.mode)),
            now,
        );
        match verdict {
            Verdict::Fresh => {}
            Verdict::Replayed => {
                self.authenticate_log_key(ring, job, &req, log);
                return Ok((Err(problem(ProblemKind::Replay, None)), false));
            }
            Verdict::Full => return Err(Error::Overloaded),
        }
        Ok((self.run_checked(ring, job, req, log).await, true))
    }

    /// For a call refused before it ran: learn the developer log key from the job's manifest
    /// if that manifest is the deployed one for this request (its project and function are the
    /// request's and its code opens), so that the refusal is logged too.
    fn authenticate_log_key(
        &self,
        ring: &KeyRing,
        job: &EngineJob,
        req: &InvokeRequest,
        log: &mut CallLog,
    ) {
        if self.log_sink().is_none() {
            return;
        }
        let Ok(manifest) = Manifest::from_bytes(&job.manifest) else {
            return;
        };
        if manifest.log_key.is_none()
            || manifest.name != req.function
            || manifest.project.as_ref() != Some(&req.project)
        {
            return;
        }
        if self
            .open_code(ring, &job.manifest, &job.sealed_code, &manifest)
            .is_ok()
        {
            log.note_request(req, &manifest);
        }
    }

    /// Refuse a `date` outside the window of the request's sealed mode.
    fn check_date(&self, req: &InvokeRequest, now: u64) -> Result<(), InvokeError> {
        let window = self.config.date_window_for(req.mode);
        if now.abs_diff(req.date) > window {
            return Err(problem(
                ProblemKind::StaleDate,
                format!("date must be within {window} s of the engine's clock"),
            ));
        }
        Ok(())
    }

    /// INSECURE benchmark path ([`EngineConfig::insecure_plaintext_bench`]): the job's request
    /// is plain BHTTP and so is the answer. The same checks, code opening and sandbox as
    /// [`Engine::invoke`]; only the OHTTP layer (and with it the replay id, which is derived
    /// from the encapsulation) is absent.
    async fn invoke_insecure_plaintext(&self, job: EngineJob, now: u64) -> Result<Vec<u8>, Error> {
        let started = Instant::now();
        let ring = self.ring().ok_or(Error::NotReady)?;
        let result = match InvokeRequest::from_bhttp(&job.request) {
            Err(e) => Err(problem(ProblemKind::BadRequest, e.to_string())),
            Ok(req) => {
                match check_mode(&req, job.flags).and_then(|()| self.check_date(&req, now)) {
                    Err(p) => Err(p),
                    Ok(()) => {
                        self.run_checked(&ring, &job, req, &mut CallLog::default())
                            .await
                    }
                }
            }
        };
        let plain = plain_response(&result)?;
        tracing::info!(
            function = %job.function,
            insecure_plaintext = true,
            request_bytes = job.request.len(),
            response_bytes = plain.len(),
            ms = started.elapsed().as_millis(),
            "invoke"
        );
        Ok(plain)
    }

    /// Path and code checks, then the sandbox.
    async fn run_checked(
        &self,
        ring: &KeyRing,
        job: &EngineJob,
        req: InvokeRequest,
        log: &mut CallLog,
    ) -> Result<InvokeResponse, InvokeError> {
        if req.project.as_str() != job.project || req.function.as_str() != job.function {
            return Err(problem(
                ProblemKind::WrongFunction,
                format!(
                    "the request names {}, the platform routed it to /{}/{}",
                    req.path(),
                    job.project,
                    job.function
                ),
            ));
        }
        let manifest = Manifest::from_bytes(&job.manifest).map_err(|_| {
            problem(
                ProblemKind::Internal,
                "the deployed manifest is unreadable".to_owned(),
            )
        })?;
        if manifest.name != req.function {
            return Err(problem(
                ProblemKind::WrongFunction,
                format!(
                    "the platform supplied the code of function {}",
                    manifest.name
                ),
            ));
        }
        if let Some(project) = &manifest.project
            && *project != req.project
        {
            return Err(problem(
                ProblemKind::WrongFunction,
                format!("the platform supplied the code of project {project}"),
            ));
        }
        // Refuse before decrypting anything: the deployed code is not the pinned code.
        if manifest.code_hash != req.code_hash {
            if manifest.log_key.is_some() && self.log_sink().is_some() {
                // Logged only if the deployed code opens (the manifest is then authentic).
                if self
                    .open_code(ring, &job.manifest, &job.sealed_code, &manifest)
                    .is_ok()
                {
                    log.note_request(&req, &manifest);
                }
            }
            return Err(problem(
                ProblemKind::CodeHashMismatch,
                format!("the deployed code hash is {}", manifest.code_hash),
            ));
        }
        let code = self.open_code(ring, &job.manifest, &job.sealed_code, &manifest)?;
        log.note_request(&req, &manifest);
        let env = if manifest.vars.is_empty() && manifest.secrets.is_empty() {
            clave_sandbox::Env::default()
        } else {
            self.env(ring, job, &req, &manifest)?
        };
        let limits = clamp_limits(&manifest.limits, &self.config.sandbox.max);
        let outbound: Arc<[clave_proto::HostPattern]> = Arc::from(manifest.outbound);
        let report = self
            .runner
            .run_report(req.code_hash, code, req, limits, env, outbound)
            .await;
        log.console = report.console;
        log.console_truncated = report.console_truncated;
        log.stack = report.stack;
        report.result.map_err(run_problem)
    }

    /// The call's `env` (vars and the named secrets, opened), from memory when nothing it
    /// depends on changed.
    fn env(
        &self,
        ring: &KeyRing,
        job: &EngineJob,
        req: &InvokeRequest,
        manifest: &Manifest,
    ) -> Result<clave_sandbox::Env, InvokeError> {
        let key = env_key(&job.project, &Manifest::digest(&job.manifest), &job.secrets);
        if let Some(env) = lock(&self.env_cache).get(&key) {
            return Ok(env);
        }
        let env = build_env(&ring.code, &req.project, manifest, &job.secrets)?;
        lock(&self.env_cache).insert(key, env.clone());
        Ok(env)
    }

    /// Open sealed code (or take it from the in-memory cache); the result hashes to
    /// `manifest.code_hash`.
    fn open_code(
        &self,
        ring: &KeyRing,
        manifest_bytes: &[u8],
        sealed: &[u8],
        manifest: &Manifest,
    ) -> Result<Arc<str>, InvokeError> {
        let key = (manifest.code_hash, Manifest::digest(manifest_bytes));
        if let Some(code) = lock(&self.code_cache).get(&key) {
            return Ok(code);
        }
        let unopenable = || {
            problem(
                ProblemKind::Internal,
                "the deployed code could not be opened".to_owned(),
            )
        };
        let sealed = SealedCode::from_bytes(sealed).map_err(|_| unopenable())?;
        let (code, hash) =
            open_code_with_keys(&ring.code, manifest_bytes, &sealed).map_err(|e| match e {
                clave_proto::Error::CodeHashMismatch { .. } => problem(
                    ProblemKind::CodeHashMismatch,
                    "the deployed code does not match its manifest".to_owned(),
                ),
                _ => unopenable(),
            })?;
        let code = Zeroizing::new(code);
        if hash != manifest.code_hash {
            return Err(problem(ProblemKind::CodeHashMismatch, None));
        }
        let text = std::str::from_utf8(&code)
            .map_err(|_| problem(ProblemKind::ScriptError, "the code is not UTF-8".to_owned()))?;
        let code: Arc<str> = Arc::from(text);
        lock(&self.code_cache).insert(key, code.clone());
        Ok(code)
    }
}

/// Refuse a request whose sealed mode differs from the route the host delivered it on: a
/// synchronous request relabelled asynchronous (to stretch its date window) or the reverse.
fn check_mode(req: &InvokeRequest, flags: JobFlags) -> Result<(), InvokeError> {
    let delivered = if flags.is_async() {
        InvokeMode::Async
    } else {
        InvokeMode::Sync
    };
    if req.mode == delivered {
        return Ok(());
    }
    let (sealed, route) = match req.mode {
        InvokeMode::Async => ("an asynchronous", "synchronous"),
        InvokeMode::Sync => ("a synchronous", "asynchronous"),
    };
    Err(problem(
        ProblemKind::BadRequest,
        format!("the request was sealed for {sealed} call and delivered as a {route} one"),
    ))
}

/// Seal the result (or problem) under the request's response key.
fn seal(
    responder: &InvokeResponder,
    result: &Result<InvokeResponse, InvokeError>,
) -> Result<Vec<u8>, Error> {
    let mut rng = rand::rng();
    match result {
        Ok(resp) => match responder.seal_response(resp, &mut rng) {
            Ok(v) => Ok(v),
            // E.g. a header the BHTTP encoder refuses: tell the user, encrypted.
            Err(_) => responder
                .seal_error(
                    &problem(
                        ProblemKind::ScriptError,
                        "the function's response cannot be encoded".to_owned(),
                    ),
                    &mut rng,
                )
                .map_err(Error::Seal),
        },
        Err(p) => responder.seal_error(p, &mut rng).map_err(Error::Seal),
    }
}

/// The plain BHTTP answer of the INSECURE benchmark path: the function's response, or the
/// problem JSON with its status.
fn plain_response(result: &Result<InvokeResponse, InvokeError>) -> Result<Vec<u8>, Error> {
    let as_problem = |p: &InvokeError| {
        InvokeResponse {
            status: p.status,
            headers: vec![(
                "content-type".to_owned(),
                clave_proto::invoke::MEDIA_TYPE_PROBLEM.to_owned(),
            )],
            body: p.to_problem_json(),
        }
        .to_bhttp()
        .map_err(Error::Seal)
    };
    match result {
        Ok(resp) => resp.to_bhttp().or_else(|_| {
            as_problem(&problem(
                ProblemKind::ScriptError,
                "the function's response cannot be encoded".to_owned(),
            ))
        }),
        Err(p) => as_problem(p),
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
