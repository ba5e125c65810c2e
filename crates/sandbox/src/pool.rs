//! Supervised worker threads. Each call runs on an idle worker; if the worker has not answered by
//! the deadline plus the grace period (a native built-in such as `JSON.parse` of a huge string is not
//! interruptible), the pool answers `Error::Timeout`, tells the worker to stop at the next interrupt
//! check, forgets it and starts a replacement. The abandoned thread exits when its call returns.
//! At most `max_abandoned_running` abandoned threads may run at once: beyond that an overrun worker
//! is not replaced, and a call that would need a new thread answers `Error::Overloaded`.
//!
//! Each worker owns a [`Slot`](crate::invoke::Slot), built for its first job: a runtime living
//! in its own arena, with the base image and the images of the functions it ran. A call restores
//! its function's image, runs, and after the reply was sent the worker restores the image again
//! (so the call's data does not linger and the next call of that function starts at once).
//! Every call gets a fresh instance.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, oneshot};

use crate::invoke::Slot;
use crate::{BytecodeCache, CallReport, Error, HttpRequest, Limits, Outcome};

/// Configuration of a [`SandboxPool`].
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Worker threads (concurrent calls).
    pub workers: usize,
    /// Platform maxima: every call's limits are clamped to these.
    pub max: Limits,
    /// How long after the deadline the pool waits for a worker before answering `Timeout` and
    /// abandoning it. Interruptible code stops within about 1 ms of the deadline; only native
    /// built-ins overrun.
    pub grace: Duration,
    /// Bytes of compiled bytecode kept in memory.
    pub cache_bytes: usize,
    /// Bytes of function snapshot images each worker keeps (least recently used dropped first;
    /// a dropped image is rebuilt from the base image on the function's next call).
    pub image_bytes: usize,
    /// Calls of functions that have so far always finished within this budget may run on the
    /// calling thread ([`SandboxPool::run_inline`]), without a hand-off to a worker; a call that
    /// takes longer sends its function to the workers from then on. Zero: never inline.
    pub inline_budget: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            workers: 2,
            max: Limits {
                cpu_ms: 30_000,
                heap_bytes: 128 << 20,
                stack_bytes: 1 << 20,
                max_request_bytes: 8 << 20,
                max_response_bytes: 16 << 20,
                max_console_bytes: 1 << 20,
            },
            grace: Duration::from_millis(50),
            cache_bytes: 64 << 20,
            image_bytes: crate::invoke::DEFAULT_IMAGE_BYTES,
            inline_budget: Duration::ZERO,
        }
    }
}

/// The largest JS stack limit [`SandboxPool::run_inline`] runs on the calling thread.
pub const INLINE_MAX_STACK: usize = 1 << 20;

/// An inline call whose wall time exceeds this many times the inline budget sends its function to
/// the workers even if it used little CPU (it waited on something rather than computed).
pub const INLINE_WALL_FACTOR: u32 = 10;

/// CPU time consumed by the calling thread so far (`CLOCK_THREAD_CPUTIME_ID`); zero if the clock
/// cannot be read, which makes the wall-time rule the only one.
#[allow(unsafe_code)]
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) };
    if r != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Inserting into a set cannot leave it inconsistent, so a poisoned lock is usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Thread stack size for a JS stack limit: at least twice the limit plus room for Rust frames.
pub(crate) fn thread_stack_for(js_stack: usize) -> usize {
    js_stack.saturating_mul(2).saturating_add(1 << 20)
}

/// Work for a worker: runs on its thread with its sandbox.
type Job = Box<dyn FnOnce(&mut Sandbox<'_>) + Send>;

/// A worker's sandbox, lent to a job run by [`SandboxPool::run_with`] on the worker's thread.
pub struct Sandbox<'a> {
    slot: Option<&'a mut Slot>,
    cache: &'a BytecodeCache,
    max: &'a Limits,
    started: Instant,
    ran: Option<[u8; 32]>,
}

impl Sandbox<'_> {
    /// Runs `fetch` of the module `code` (whose SHA-256 is `code_hash`) on `request` in a fresh
    /// instance restored from the function's snapshot image. `limits` are clamped to the pool's
    /// maxima; the deadline counts from when the worker took the job (including the build of the
    /// worker's slot on its first job). Call it at most once per job (a second call answers an
    /// internal error: one job, one call).
    pub fn run(
        &mut self,
        code_hash: [u8; 32],
        code: &str,
        request: HttpRequest,
        limits: &Limits,
    ) -> Result<Outcome, Error> {
        self.run_with_outbound(code_hash, code, request, limits, None)
    }

    /// [`Sandbox::run`] with the network the function's `fetch()` uses (`None`: `fetch`
    /// rejects). The exchanges block this worker thread, bounded by the call's deadline.
    pub fn run_with_outbound(
        &mut self,
        code_hash: [u8; 32],
        code: &str,
        request: HttpRequest,
        limits: &Limits,
        outbound: Option<Arc<dyn crate::Outbound>>,
    ) -> Result<Outcome, Error> {
        self.run_report(code_hash, code, request, limits, outbound)
            .into_outcome()
    }

    /// [`Sandbox::run_with_outbound`] returning the console output also when the call fails.
    pub fn run_report(
        &mut self,
        code_hash: [u8; 32],
        code: &str,
        request: HttpRequest,
        limits: &Limits,
        outbound: Option<Arc<dyn crate::Outbound>>,
    ) -> CallReport {
        if self.ran.is_some() {
            return CallReport::failed(Error::Internal("one sandbox call per job".into()));
        }
        self.ran = Some(code_hash);
        let limits = limits.clamp(self.max);
        let Some(slot) = self.slot.as_deref_mut() else {
            return CallReport::failed(Error::Internal(
                "the sandbox worker could not start".into(),
            ));
        };
        slot.call(
            self.cache,
            code_hash,
            code,
            request,
            &limits,
            self.started,
            outbound,
        )
    }
}

struct Worker {
    tx: mpsc::Sender<Job>,
    abandon: Arc<AtomicBool>,
}

struct Shared {
    cfg: PoolConfig,
    /// Functions (code hashes) that once overran the inline budget: they run on the workers.
    slow: Mutex<std::collections::HashSet<[u8; 32]>>,
    cache: Arc<BytecodeCache>,
    idle: Mutex<Vec<Worker>>,
    permits: Semaphore,
    abandoned: AtomicUsize,
    live_abandoned: Arc<AtomicUsize>,
    max_abandoned_running: usize,
}

/// A pool of supervised sandbox worker threads with a shared bytecode cache.
#[derive(Clone)]
pub struct SandboxPool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SandboxPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxPool")
            .field("cfg", &self.shared.cfg)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Worker>> {
        // Pushing/popping cannot leave the vector inconsistent, so a poisoned lock is usable.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn spawn_worker(&self) -> Result<Worker, Error> {
        let (tx, rx) = mpsc::channel::<Job>();
        let abandon = Arc::new(AtomicBool::new(false));
        let cache = self.cache.clone();
        let flag = abandon.clone();
        let max = self.cfg.max;
        let image_bytes = self.cfg.image_bytes;
        let live_abandoned = self.live_abandoned.clone();
        std::thread::Builder::new()
            .name("clave-sandbox".into())
            .stack_size(thread_stack_for(self.cfg.max.stack_bytes))
            .spawn(move || {
                let max_heap = max.heap_bytes;
                let new_slot = || {
                    std::panic::catch_unwind(|| Slot::new(flag.clone(), max_heap, image_bytes))
                        .ok()
                        .and_then(Result::ok)
                };
                // Built for the first job, not when the pool starts: with inline calls
                // (`PoolConfig::inline_budget`) most workers never run one, and a process start
                // has better uses for the CPU. The build (~0.8 ms) counts against that job's
                // deadline, as it does against its supervision: the two stay in step.
                let mut slot = None;
                while let Ok(job) = rx.recv() {
                    let started = Instant::now();
                    if slot.is_none() {
                        slot = new_slot();
                    }
                    let mut sandbox = Sandbox {
                        slot: slot.as_mut(),
                        cache: &cache,
                        max: &max,
                        started,
                        ran: None,
                    };
                    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        job(&mut sandbox)
                    }))
                    .is_ok();
                    let ran = sandbox.ran;
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    if !ok {
                        // A panic may have left the slot's Rust side inconsistent: the next job
                        // starts over.
                        if let Some(s) = slot.take() {
                            let _ =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(s)));
                        }
                    } else if let (Some(s), Some(hash)) = (slot.as_mut(), ran) {
                        // After the reply: the call's data does not linger, and the next call of
                        // the same function starts without a restore.
                        s.scrub(&hash);
                    }
                }
                drop(slot);
                if flag.load(Ordering::Relaxed) {
                    live_abandoned.fetch_sub(1, Ordering::Relaxed);
                }
            })
            .map_err(|e| Error::Internal(format!("spawn sandbox worker: {e}")))?;
        Ok(Worker { tx, abandon })
    }
}

impl SandboxPool {
    /// Starts `cfg.workers` (at least 1) worker threads. At most
    /// [`SandboxPool::default_max_abandoned_running`] abandoned workers may still be running
    /// before `run` answers [`Error::Overloaded`] (see [`SandboxPool::with_max_abandoned_running`]).
    pub fn new(cfg: PoolConfig) -> Result<Self, Error> {
        let cap = Self::default_max_abandoned_running(&cfg);
        Self::with_max_abandoned_running(cfg, cap)
    }

    /// The default cap on abandoned workers still running: twice the workers, at least 4.
    pub fn default_max_abandoned_running(cfg: &PoolConfig) -> usize {
        cfg.workers.max(1).saturating_mul(2).max(4)
    }

    /// Like [`SandboxPool::new`] with an explicit cap on abandoned worker threads still running
    /// (each keeps burning a core until its native built-in returns). While `max` of them run, a
    /// worker that overran is not replaced, and a call that finds no worker answers
    /// [`Error::Overloaded`] instead of starting a new thread; slots are refilled once they exit.
    pub fn with_max_abandoned_running(cfg: PoolConfig, max: usize) -> Result<Self, Error> {
        let workers = cfg.workers.max(1);
        let shared = Arc::new(Shared {
            slow: Mutex::new(std::collections::HashSet::new()),
            cache: Arc::new(BytecodeCache::new(cfg.cache_bytes)),
            idle: Mutex::new(Vec::with_capacity(workers)),
            permits: Semaphore::new(workers),
            abandoned: AtomicUsize::new(0),
            live_abandoned: Arc::new(AtomicUsize::new(0)),
            max_abandoned_running: max,
            cfg,
        });
        for _ in 0..workers {
            let w = shared.spawn_worker()?;
            shared.idle().push(w);
        }
        Ok(SandboxPool { shared })
    }

    /// The cap on abandoned worker threads still running.
    pub fn max_abandoned_running(&self) -> usize {
        self.shared.max_abandoned_running
    }

    /// The configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.shared.cfg
    }

    /// The shared bytecode cache.
    pub fn cache(&self) -> &BytecodeCache {
        &self.shared.cache
    }

    /// Number of workers abandoned so far (calls that overran deadline + grace).
    pub fn abandoned_workers(&self) -> usize {
        self.shared.abandoned.load(Ordering::Relaxed)
    }

    /// Abandoned worker threads still finishing their call.
    pub fn abandoned_running(&self) -> usize {
        self.shared.live_abandoned.load(Ordering::Relaxed)
    }

    /// Runs `fetch` of the module `code` (whose SHA-256 is `code_hash`) on `request`.
    ///
    /// `limits` are clamped to the pool's maxima. Answers [`Error::Timeout`] at the latest at
    /// deadline + `grace`, counted from when a worker became free (waiting for a worker does not
    /// count). Cancel-safe: dropping the future abandons and replaces the worker if it is busy.
    /// Answers [`Error::Overloaded`] when it would have to start a worker thread while
    /// [`SandboxPool::max_abandoned_running`] abandoned ones are still running.
    pub async fn run(
        &self,
        code_hash: [u8; 32],
        code: Arc<str>,
        request: HttpRequest,
        limits: Limits,
    ) -> Result<Outcome, Error> {
        self.run_report(code_hash, code, request, limits, None)
            .await
            .into_outcome()
    }

    /// [`SandboxPool::run_with_outbound`] returning the console output also when the call
    /// fails (none when the supervisor gave up on the worker).
    pub async fn run_report(
        &self,
        code_hash: [u8; 32],
        code: Arc<str>,
        request: HttpRequest,
        limits: Limits,
        outbound: Option<Arc<dyn crate::Outbound>>,
    ) -> CallReport {
        let clamped = limits.clamp(&self.shared.cfg.max);
        if request.body.len() > clamped.max_request_bytes {
            return CallReport::failed(Error::RequestTooLarge {
                size: request.body.len(),
                limit: clamped.max_request_bytes,
            });
        }
        self.run_with(clamped, move |sb| {
            sb.run_report(code_hash, &code, request, &limits, outbound)
        })
        .await
        .unwrap_or_else(CallReport::failed)
    }

    /// [`SandboxPool::run`] with the network the function's `fetch()` uses (always on a worker:
    /// the exchanges block the thread until they end, at the latest at the call's deadline).
    pub async fn run_with_outbound(
        &self,
        code_hash: [u8; 32],
        code: Arc<str>,
        request: HttpRequest,
        limits: Limits,
        outbound: Option<Arc<dyn crate::Outbound>>,
    ) -> Result<Outcome, Error> {
        self.run_report(code_hash, code, request, limits, outbound)
            .await
            .into_outcome()
    }

    /// Runs the call on the current thread, in a slot that belongs to this thread, if inline
    /// execution is on ([`PoolConfig::inline_budget`]), the function has not overrun the budget
    /// before, and its JS stack limit fits the inline limit; otherwise gives the request back.
    ///
    /// An inline call is not supervised: the interrupt handler stops JavaScript at the deadline,
    /// but a native built-in that overruns holds this thread until it returns (the pool would
    /// have abandoned its worker). That is why only functions that have always been fast run
    /// inline, and one slow call sends a function to the workers for good. "Slow" is judged on
    /// the CPU time the call took on this thread, so a call that was only preempted (a busy
    /// machine) does not count, or on wall time beyond [`INLINE_WALL_FACTOR`] × the budget, so
    /// a call that waited (not computed) that long counts too. The thread's stack must hold the
    /// JS stack limit twice over (at most [`INLINE_MAX_STACK`] is run inline).
    pub fn run_inline(
        &self,
        code_hash: [u8; 32],
        code: &str,
        request: HttpRequest,
        limits: Limits,
    ) -> Result<Result<Outcome, Error>, HttpRequest> {
        self.run_inline_report(code_hash, code, request, limits)
            .map(CallReport::into_outcome)
    }

    /// Builds the current thread's inline slot now, if inline execution is on and the thread
    /// has none, so that the first call run inline here does not pay for it (about a
    /// millisecond). For threads that are idle now and will run calls later, such as an async
    /// runtime's workers before they park; returns whether a slot was built.
    ///
    /// # Errors
    /// [`Error::Internal`] and the like when the slot cannot be built (the first inline call
    /// would then try again).
    pub fn prepare_inline_slot(&self) -> Result<bool, Error> {
        if self.shared.cfg.inline_budget.is_zero() {
            return Ok(false);
        }
        crate::invoke::prepare_thread_slot(
            self.shared.cfg.max.heap_bytes,
            self.shared.cfg.image_bytes,
        )
    }

    /// [`SandboxPool::run_inline`] returning the console output also when the call fails.
    pub fn run_inline_report(
        &self,
        code_hash: [u8; 32],
        code: &str,
        request: HttpRequest,
        limits: Limits,
    ) -> Result<CallReport, HttpRequest> {
        let budget = self.shared.cfg.inline_budget;
        let limits = limits.clamp(&self.shared.cfg.max);
        if budget.is_zero()
            || limits.stack_bytes > INLINE_MAX_STACK
            || lock(&self.shared.slow).contains(&code_hash)
        {
            return Err(request);
        }
        let started = Instant::now();
        let cpu_started = thread_cpu_time();
        let r = crate::invoke::run_on_thread_slot(
            &self.shared.cache,
            code_hash,
            code,
            request,
            &limits,
            self.shared.cfg.max.heap_bytes,
            self.shared.cfg.image_bytes,
        );
        let wall = started.elapsed();
        if wall > budget {
            let cpu = thread_cpu_time().saturating_sub(cpu_started);
            if cpu > budget || wall > budget.saturating_mul(INLINE_WALL_FACTOR) {
                lock(&self.shared.slow).insert(code_hash);
            }
        }
        Ok(r)
    }

    /// Runs `job` on a worker thread with that worker's [`Sandbox`]: for callers that do their own
    /// work around the call on the same thread (decrypting the request before, sealing the
    /// response after), so that a call costs one hand-off to a worker and back. `limits` (clamped
    /// to the pool's maxima) give the supervision deadline, counted from when a worker became
    /// free; past it + `grace` the pool answers [`Error::Timeout`] and abandons the worker, as
    /// [`SandboxPool::run`] does. `job` should call [`Sandbox::run`] at most once.
    pub async fn run_with<T, F>(&self, limits: Limits, job: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Sandbox<'_>) -> T + Send + 'static,
    {
        let limits = limits.clamp(&self.shared.cfg.max);
        let _permit = self
            .shared
            .permits
            .acquire()
            .await
            .map_err(|_| Error::Internal("pool closed".into()))?;
        // A slot is empty if its worker was abandoned while the cap was reached (or spawning a
        // replacement failed): refill it now unless too many abandoned workers still run.
        let idle = self.shared.idle().pop();
        let worker = match idle {
            Some(w) => w,
            None => {
                let running = self.shared.live_abandoned.load(Ordering::Relaxed);
                let limit = self.shared.max_abandoned_running;
                if running >= limit {
                    return Err(Error::Overloaded { running, limit });
                }
                self.shared.spawn_worker()?
            }
        };
        let mut lease = Lease {
            shared: &self.shared,
            worker: Some(worker),
            healthy: false,
        };
        let started = Instant::now();
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |sb: &mut Sandbox<'_>| {
            // The receiver is gone if the supervisor gave up on this call.
            let _ = tx.send(job(sb));
        });
        lease
            .worker
            .as_ref()
            .ok_or_else(|| Error::Internal("lease without worker".into()))?
            .tx
            .send(job)
            .map_err(|_| Error::Internal("sandbox worker is gone".into()))?;
        let until =
            tokio::time::Instant::from_std(started + limits.timeout() + self.shared.cfg.grace);
        match tokio::time::timeout_at(until, rx).await {
            Ok(Ok(result)) => {
                lease.healthy = true;
                Ok(result)
            }
            Ok(Err(_)) => Err(Error::Internal("sandbox worker died".into())),
            Err(_) => Err(Error::Timeout),
        }
    }
}

/// Returns the worker to the pool if its call completed, else abandons and replaces it.
struct Lease<'a> {
    shared: &'a Shared,
    worker: Option<Worker>,
    healthy: bool,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(w) = self.worker.take() else { return };
        if self.healthy {
            self.shared.idle().push(w);
            return;
        }
        w.abandon.store(true, Ordering::Relaxed);
        self.shared.abandoned.fetch_add(1, Ordering::Relaxed);
        let running = self.shared.live_abandoned.fetch_add(1, Ordering::Relaxed) + 1;
        drop(w);
        // The replacement keeps the pool at full strength, unless too many abandoned workers
        // still run: then the slot stays empty and `run` refills it (or answers `Overloaded`).
        if running < self.shared.max_abandoned_running
            && let Ok(nw) = self.shared.spawn_worker()
        {
            self.shared.idle().push(nw);
        }
    }
}
