//! Bounded dispatch in front of an [`EngineClient`]: engine slots (a semaphore), a bounded wait queue,
//! a per-function concurrency cap, per-call timeouts and a drain for graceful shutdown.
//!
//! A call is either refused before it reaches the engine (overloaded / unavailable: nothing ran, retry is
//! safe) or handed to the engine exactly once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, TryAcquireError};

use crate::engine::{DispatchError, EngineClient, InvokeJob};

/// Limits of the dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchConfig {
    /// Calls that may run at once (engine pool size).
    pub engine_slots: usize,
    /// Calls that may wait for a slot; one more gets 503.
    pub queue_limit: usize,
    /// Calls of one function that may be admitted (running + waiting) at once.
    pub per_function_limit: usize,
    /// Longest a call may wait in the queue before it is refused as overloaded.
    pub queue_timeout: Duration,
    /// Longest a call may run on an engine.
    pub call_timeout: Duration,
    /// `Retry-After` suggested when refusing.
    pub retry_after: Duration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            engine_slots: 8,
            queue_limit: 64,
            per_function_limit: 32,
            queue_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(30),
            retry_after: Duration::from_secs(1),
        }
    }
}

/// A snapshot of the dispatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchStats {
    /// Calls waiting for a slot.
    pub queued: usize,
    /// Calls running on an engine.
    pub running: usize,
    /// Engine slots.
    pub capacity: usize,
    /// Whether the dispatcher refuses new calls (shutting down).
    pub closed: bool,
}

struct Inner {
    engine: Arc<dyn EngineClient>,
    config: DispatchConfig,
    slots: Semaphore,
    waiting: AtomicUsize,
    admitted: AtomicUsize,
    idle: Notify,
    closed: AtomicBool,
    per_function: Mutex<HashMap<(String, String), usize>>,
    /// Handles of the two gauges, registered once (a registry lookup per call otherwise).
    queue_depth: metrics::Gauge,
    engine_in_use: metrics::Gauge,
}

/// The dispatcher. Cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Decrements a counter (and wakes drainers) when dropped.
struct Admitted<'a>(&'a Inner);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        if self.0.admitted.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

struct Queued<'a>(&'a Inner);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
        self.0.publish();
    }
}

struct FunctionSlot<'a> {
    inner: &'a Inner,
    key: (String, String),
}

impl Drop for FunctionSlot<'_> {
    fn drop(&mut self) {
        let mut map = self
            .inner
            .per_function
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

impl Inner {
    fn publish(&self) {
        let stats = self.stats();
        self.queue_depth.set(stats.queued as f64);
        self.engine_in_use.set(stats.running as f64);
    }

    fn stats(&self) -> DispatchStats {
        let capacity = self.config.engine_slots;
        DispatchStats {
            queued: self.waiting.load(Ordering::Acquire),
            running: capacity.saturating_sub(self.slots.available_permits()),
            capacity,
            closed: self.closed.load(Ordering::Acquire),
        }
    }

    fn overloaded(&self) -> DispatchError {
        DispatchError::Overloaded {
            retry_after: Some(self.config.retry_after),
        }
    }
}

impl Dispatcher {
    /// Dispatcher over `engine` with `config`. Its gauges go to the process-wide metrics
    /// recorder installed at this point (none: they are not recorded).
    pub fn new(engine: Arc<dyn EngineClient>, config: DispatchConfig) -> Self {
        let slots = Semaphore::new(config.engine_slots.max(1));
        Self {
            inner: Arc::new(Inner {
                engine,
                slots,
                config: DispatchConfig {
                    engine_slots: config.engine_slots.max(1),
                    ..config
                },
                waiting: AtomicUsize::new(0),
                admitted: AtomicUsize::new(0),
                idle: Notify::new(),
                closed: AtomicBool::new(false),
                per_function: Mutex::new(HashMap::new()),
                queue_depth: metrics::gauge!(crate::metrics::QUEUE_DEPTH),
                engine_in_use: metrics::gauge!(crate::metrics::ENGINE_IN_USE),
            }),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &DispatchConfig {
        &self.inner.config
    }

    /// The engine behind the dispatcher.
    pub fn engine(&self) -> &Arc<dyn EngineClient> {
        &self.inner.engine
    }

    /// Current queue and pool use.
    pub fn stats(&self) -> DispatchStats {
        self.inner.stats()
    }

    /// Run `job` on an engine, or refuse it without running it.
    ///
    /// # Errors
    /// [`DispatchError::Overloaded`] (queue full, function cap, queue wait too long) and
    /// [`DispatchError::Unavailable`] (closed) mean the job never reached an engine;
    /// [`DispatchError::Timeout`] and the engine's own errors otherwise.
    pub async fn dispatch(&self, job: InvokeJob) -> Result<Vec<u8>, DispatchError> {
        let inner = &*self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(DispatchError::Unavailable);
        }
        inner.admitted.fetch_add(1, Ordering::AcqRel);
        let _admitted = Admitted(inner);

        let key = (job.project.clone(), job.function.clone());
        {
            let mut map = inner.per_function.lock().unwrap_or_else(|p| p.into_inner());
            let n = map.entry(key.clone()).or_insert(0);
            if *n >= inner.config.per_function_limit {
                return Err(inner.overloaded());
            }
            *n += 1;
        }
        let _function_slot = FunctionSlot { inner, key };

        let permit = match inner.slots.try_acquire() {
            Ok(p) => p,
            Err(TryAcquireError::Closed) => return Err(DispatchError::Unavailable),
            Err(TryAcquireError::NoPermits) => {
                if inner.waiting.fetch_add(1, Ordering::AcqRel) >= inner.config.queue_limit {
                    inner.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(inner.overloaded());
                }
                let _queued = Queued(inner);
                inner.publish();
                match tokio::time::timeout(inner.config.queue_timeout, inner.slots.acquire()).await
                {
                    Ok(Ok(p)) => p,
                    Ok(Err(_closed)) => return Err(DispatchError::Unavailable),
                    Err(_elapsed) => return Err(inner.overloaded()),
                }
            }
        };
        inner.publish();
        let result =
            tokio::time::timeout(inner.config.call_timeout, inner.engine.invoke(job)).await;
        drop(permit);
        inner.publish();
        result.unwrap_or(Err(DispatchError::Timeout))
    }

    /// Stop admitting calls: new calls and calls still waiting in the queue get
    /// [`DispatchError::Unavailable`] (they never ran); running calls continue.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.slots.close();
    }

    /// Wait until no admitted call remains, at most `deadline`. Returns whether everything finished.
    pub async fn drain(&self, deadline: Duration) -> bool {
        let inner = &*self.inner;
        let wait = async {
            loop {
                let notified = inner.idle.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if inner.admitted.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(deadline, wait).await.is_ok()
    }
}
