//! Delivery of sealed developer log records from a separate engine process (`clave engine`) to
//! gateways: `POST /v1/engines/logs` with the gateways' admin token, in batches, off the calls'
//! path. Records are sealed inside the engine before they reach this module
//! ([`crate::devlog`]); nothing here sees plaintext.
//!
//! Bounded: the sink hands a record to a queue of [`LogShipConfig::queue`] records (and
//! [`LogShipConfig::queue_bytes`] sealed bytes) and returns at
//! once; when the queue is full the record is dropped and counted, and a call never waits for
//! delivery. A batch goes to the first gateway that takes it (gateways that share one database
//! need it only once); when none does, it is retried for [`LogShipConfig::retry_for`] and then
//! dropped and counted. The count of dropped records travels with the next batch (the gateway
//! exports it as a metric) and in the engine's log, as a number only.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use clave_proto::gateway_api::{
    ENGINE_LOGS_PATH, EngineLogBatch, EngineLogRecord, MAX_ENGINE_LOG_BATCH, MAX_ENGINE_LOG_BODY,
    MAX_SEALED_LOG_RECORD,
};
use tokio::sync::{mpsc, oneshot};

use crate::devlog::{LogSink, SealedLog};

/// Settings of [`spawn_log_shipper`].
#[derive(Clone)]
pub struct LogShipConfig {
    /// Gateway base URLs, tried in order (the last one that took a batch first).
    pub gateways: Vec<String>,
    /// The gateways' admin token.
    pub token: String,
    /// Records held while waiting for delivery; beyond, new records are dropped.
    pub queue: usize,
    /// Sealed bytes held in the queue; beyond, new records are dropped (with `queue` records of
    /// up to [`MAX_SEALED_LOG_RECORD`], a count alone would let calls that log much hold gigabytes).
    pub queue_bytes: usize,
    /// Most records per batch (at most [`MAX_ENGINE_LOG_BATCH`]).
    pub batch: usize,
    /// How long a record waits for others to share its batch.
    pub linger: Duration,
    /// How long a batch that no gateway takes is retried before it is dropped.
    pub retry_for: Duration,
}

impl std::fmt::Debug for LogShipConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogShipConfig")
            .field("gateways", &self.gateways)
            .field("queue", &self.queue)
            .field("queue_bytes", &self.queue_bytes)
            .field("batch", &self.batch)
            .field("linger", &self.linger)
            .field("retry_for", &self.retry_for)
            .finish_non_exhaustive()
    }
}

impl LogShipConfig {
    /// Defaults: 4096 queued records, batches of up to 128 gathered for 200 ms, 30 s of retries.
    pub fn new(gateways: Vec<String>, token: impl Into<String>) -> Self {
        Self {
            gateways,
            token: token.into(),
            queue: 4096,
            queue_bytes: 64 << 20,
            batch: 128,
            linger: Duration::from_millis(200),
            retry_for: Duration::from_secs(30),
        }
    }
}

/// Counts of a running shipper (numbers only).
#[derive(Debug, Default)]
pub struct LogShipStats {
    /// Records a gateway stored.
    pub delivered: AtomicU64,
    /// Records dropped: queue full, too large, or no gateway took their batch in time.
    pub dropped: AtomicU64,
}

/// A running shipper: its sink for [`crate::Engine::set_log_sink`], its counts, and a way to
/// deliver what is queued before the process stops.
pub struct LogShipper {
    sink: LogSink,
    stats: Arc<LogShipStats>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for LogShipper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogShipper")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl LogShipper {
    /// The sink to give the engine (never blocks).
    #[must_use]
    pub fn sink(&self) -> LogSink {
        self.sink.clone()
    }

    /// Delivered and dropped counts.
    #[must_use]
    pub fn stats(&self) -> Arc<LogShipStats> {
        self.stats.clone()
    }

    /// Deliver what is queued (one attempt per gateway, within `within`), then stop.
    pub async fn shutdown(mut self, within: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(within, &mut self.task).await.is_err() {
            self.task.abort();
        }
    }
}

/// Start delivering sealed records to `config.gateways` (on the current Tokio runtime).
#[must_use]
pub fn spawn_log_shipper(config: LogShipConfig) -> LogShipper {
    let (tx, rx) = mpsc::channel::<SealedLog>(config.queue.max(1));
    let stats = Arc::new(LogShipStats::default());
    let sink_stats = stats.clone();
    let queued = Arc::new(AtomicUsize::new(0));
    let sink_queued = queued.clone();
    let queue_bytes = config.queue_bytes;
    let sink: LogSink = Arc::new(move |log: SealedLog| {
        let n = log.sealed.len();
        if n > MAX_SEALED_LOG_RECORD {
            sink_stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if sink_queued.fetch_add(n, Ordering::Relaxed) + n > queue_bytes
            || tx.try_send(log).is_err()
        {
            sink_queued.fetch_sub(n, Ordering::Relaxed);
            sink_stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    });
    let (stop_tx, stop_rx) = oneshot::channel();
    let task = tokio::spawn(run(config, rx, stats.clone(), stop_rx, queued));
    LogShipper {
        sink,
        stats,
        stop: Some(stop_tx),
        task,
    }
}

async fn run(
    config: LogShipConfig,
    mut rx: mpsc::Receiver<SealedLog>,
    stats: Arc<LogShipStats>,
    mut stop: oneshot::Receiver<()>,
    queued: Arc<AtomicUsize>,
) {
    // A record out of the queue no longer counts against `queue_bytes`.
    let out = |l: SealedLog| {
        queued.fetch_sub(l.sealed.len(), Ordering::Relaxed);
        l
    };
    let Some(http) = crate::register::http_client() else {
        tracing::error!("no HTTP client: developer log records will not be delivered");
        return;
    };
    let max = config.batch.clamp(1, MAX_ENGINE_LOG_BATCH);
    let mut shipper = Shipper {
        http,
        config,
        stats,
        preferred: 0,
        reported: 0,
    };
    let mut stopping = false;
    // A record that did not fit in the previous batch's body: the first of the next batch.
    let mut carry: Option<SealedLog> = None;
    loop {
        let first = if let Some(c) = carry.take() {
            Some(c)
        } else {
            tokio::select! {
                r = rx.recv() => r.map(out),
                _ = &mut stop, if !stopping => {
                    stopping = true;
                    rx.close();
                    continue;
                }
            }
        };
        let Some(first) = first else { return };
        // Bounded by count and by the body a gateway takes: a batch over MAX_ENGINE_LOG_BODY is
        // refused whole (413), with every other function's records in it.
        let mut size = json_size(&first);
        let mut batch = vec![first];
        let mut take = |l: SealedLog, batch: &mut Vec<SealedLog>| {
            let s = json_size(&l);
            if size + s > BATCH_BODY_BUDGET {
                carry = Some(l);
                false
            } else {
                size += s;
                batch.push(l);
                true
            }
        };
        let linger = tokio::time::sleep(shipper.config.linger);
        tokio::pin!(linger);
        while batch.len() < max && !stopping {
            tokio::select! {
                r = rx.recv() => match r {
                    Some(l) => if !take(out(l), &mut batch) { break },
                    None => break,
                },
                () = &mut linger => break,
            }
        }
        while batch.len() < max && stopping {
            match rx.try_recv() {
                Ok(l) => {
                    if !take(out(l), &mut batch) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        shipper.deliver(batch, stopping).await;
    }
}

/// Most bytes of records in one batch's JSON body: the gateway's limit, less room for the rest.
const BATCH_BODY_BUDGET: usize = MAX_ENGINE_LOG_BODY - (64 << 10);

/// Upper bound of the bytes a record takes in a batch's JSON: its sealed bytes in base64, the
/// names (escaped at worst) and the field names.
fn json_size(l: &SealedLog) -> usize {
    l.sealed.len().div_ceil(3) * 4 + 6 * (l.project.len() + l.function.len()) + 64
}

struct Shipper {
    http: reqwest::Client,
    config: LogShipConfig,
    stats: Arc<LogShipStats>,
    /// Index of the gateway that took the last batch.
    preferred: usize,
    /// Dropped records already reported to a gateway.
    reported: u64,
}

impl Shipper {
    /// Send one batch to the first gateway that takes it; retry (unless `once`) until
    /// `retry_for` has passed; drop and count it otherwise.
    async fn deliver(&mut self, batch: Vec<SealedLog>, once: bool) {
        let n = batch.len() as u64;
        let mut records: Vec<EngineLogRecord> = batch
            .into_iter()
            .map(|l| EngineLogRecord {
                project: l.project,
                function: l.function,
                sealed: l.sealed,
            })
            .collect();
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(250);
        loop {
            let dropped = self.stats.dropped.load(Ordering::Relaxed);
            let body = EngineLogBatch {
                records,
                dropped: dropped.saturating_sub(self.reported),
            };
            match self.try_gateways(&body).await {
                Ok(()) => {
                    self.stats.delivered.fetch_add(n, Ordering::Relaxed);
                    if body.dropped > 0 {
                        tracing::warn!(
                            dropped = body.dropped,
                            "developer log records dropped (queue full or no gateway took them)"
                        );
                    }
                    self.reported = dropped;
                    return;
                }
                Err(refused) if refused || once || started.elapsed() >= self.config.retry_for => {
                    self.stats.dropped.fetch_add(n, Ordering::Relaxed);
                    tracing::warn!(
                        records = n,
                        refused,
                        "developer log records dropped: no gateway took them"
                    );
                    return;
                }
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
            records = body.records;
        }
    }

    /// `Err(true)` when every gateway refused the batch (it will not be taken on a retry),
    /// `Err(false)` when one could not be reached or failed.
    async fn try_gateways(&mut self, body: &EngineLogBatch) -> Result<(), bool> {
        let count = self.config.gateways.len();
        let mut all_refused = count > 0;
        for k in 0..count {
            let i = (self.preferred + k) % count;
            let url = format!(
                "{}{ENGINE_LOGS_PATH}",
                self.config.gateways[i].trim_end_matches('/')
            );
            let resp = self
                .http
                .post(&url)
                .bearer_auth(&self.config.token)
                .json(body)
                .send()
                .await;
            match resp {
                Ok(r) if r.status().is_success() => {
                    self.preferred = i;
                    return Ok(());
                }
                Ok(r) => {
                    let status = r.status();
                    tracing::warn!(gateway = %self.config.gateways[i], %status, "gateway refused developer log records");
                    all_refused &= status.is_client_error()
                        && status != reqwest::StatusCode::TOO_MANY_REQUESTS;
                }
                Err(e) => {
                    tracing::debug!(gateway = %self.config.gateways[i], error = %e, "gateway unreachable for developer log records");
                    all_refused = false;
                }
            }
        }
        Err(all_refused)
    }
}
