//! Supervised worker threads. Each call runs on an idle worker; if the worker has not answered by
//! the deadline plus the grace period (a native built-in such as `JSON.parse` of a huge string is not
//! interruptible), the pool answers `Error::Timeout`, tells the worker to stop at the next interrupt
//! check, forgets it and starts a replacement. The abandoned thread exits when its call returns.
//! At most `max_abandoned_running` abandoned threads may run at once: beyond that an overrun worker
//! is not replaced, and a call that would need a new thread answers `Error::Overloaded`.
//!
//! While idle, each worker keeps one prepared instance (fresh runtime + context + core prelude, no
//! user code) for its next call, and tears the used instance down after replying. An instance
//! serves exactly one call.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, oneshot};

use crate::{BytecodeCache, Error, HttpRequest, Limits, Outcome, invoke};

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
        }
    }
}

/// Thread stack size for a JS stack limit: at least twice the limit plus room for Rust frames.
pub(crate) fn thread_stack_for(js_stack: usize) -> usize {
    js_stack.saturating_mul(2).saturating_add(1 << 20)
}

struct Job {
    code_hash: [u8; 32],
    code: Arc<str>,
    request: HttpRequest,
    limits: Limits,
    started: Instant,
    reply: oneshot::Sender<Result<Outcome, Error>>,
}

struct Worker {
    tx: mpsc::Sender<Job>,
    abandon: Arc<AtomicBool>,
}

struct Shared {
    cfg: PoolConfig,
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
        let live_abandoned = self.live_abandoned.clone();
        std::thread::Builder::new()
            .name("clave-sandbox".into())
            .stack_size(thread_stack_for(self.cfg.max.stack_bytes))
            .spawn(move || {
                // A fresh instance (runtime + context + prelude) is prepared while the worker is
                // idle, so a call only loads its module and runs; the used instance is torn down
                // after the reply was sent. Each instance serves exactly one call.
                let prepare = || {
                    std::panic::catch_unwind(|| invoke::prepare(flag.clone()))
                        .ok()
                        .flatten()
                };
                let mut ready = prepare();
                while let Ok(job) = rx.recv() {
                    let Job {
                        code_hash,
                        code,
                        request,
                        limits,
                        started,
                        reply,
                    } = job;
                    let (r, spent) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        invoke::run_prepared(
                            &cache,
                            code_hash,
                            &code,
                            request,
                            &limits,
                            flag.clone(),
                            started,
                            ready.take(),
                        )
                    }))
                    .unwrap_or_else(|_| {
                        (Err(Error::Internal("sandbox call panicked".into())), None)
                    });
                    // The receiver is gone if the supervisor gave up on this call.
                    let _ = reply.send(r);
                    drop(spent);
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    ready = prepare();
                }
                drop(ready);
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
        let limits = limits.clamp(&self.shared.cfg.max);
        if request.body.len() > limits.max_request_bytes {
            return Err(Error::RequestTooLarge {
                size: request.body.len(),
                limit: limits.max_request_bytes,
            });
        }
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
        let job = Job {
            code_hash,
            code,
            request,
            limits,
            started,
            reply: tx,
        };
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
                result
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
