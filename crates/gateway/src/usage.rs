//! Usage records written off the request path: a bounded channel to one background writer per
//! [`crate::Store`] that inserts rows in batched transactions.
//!
//! A batch is written when it holds [`MAX_BATCH`] rows, [`FLUSH_INTERVAL`] after its first row, on
//! an explicit flush ([`crate::Store::flush_usage`], also done by [`crate::Store::usage`],
//! [`crate::Store::close`] and at the end of [`crate::serve`]), and when the last store handle is
//! dropped. Nothing queued is lost on a clean shutdown. When the channel is full (the database
//! cannot keep up) a record is dropped rather than delaying the call; drops are counted in
//! [`crate::metrics::USAGE_DROPPED`] and [`crate::Store::usage_dropped`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::store::UsageRecord;

/// Rows queued at most before new records are dropped.
pub(crate) const CHANNEL_CAPACITY: usize = 16_384;
/// Rows per transaction at most.
pub(crate) const MAX_BATCH: usize = 512;
/// Longest a queued row waits before its batch is written.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

pub(crate) enum Msg {
    Record(UsageRecord),
    /// Write everything queued before this message, then answer.
    Flush(oneshot::Sender<()>),
}

/// The sending half, shared by all clones of a store.
#[derive(Debug)]
pub(crate) struct UsageWriter {
    tx: mpsc::Sender<Msg>,
    dropped: Arc<AtomicU64>,
    /// Cuts the writer's wait short (a full batch, a flush). The writer does not wake per record.
    wake: Arc<Notify>,
}

/// Writes one batch; `Err` carries a log message (never content).
pub(crate) trait BatchSink: Send + 'static {
    fn write(
        &mut self,
        batch: &[UsageRecord],
    ) -> impl std::future::Future<Output = Result<(), String>> + Send;
}

impl UsageWriter {
    /// Start the writer task on the current tokio runtime.
    pub(crate) fn spawn(sink: impl BatchSink) -> Self {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let dropped = Arc::new(AtomicU64::new(0));
        let wake = Arc::new(Notify::new());
        tokio::spawn(run(rx, sink, dropped.clone(), wake.clone()));
        Self { tx, dropped, wake }
    }

    /// Queue a record without waiting; counts it as dropped when the queue is full or the
    /// writer is gone.
    pub(crate) fn record(&self, r: UsageRecord) {
        if self.tx.try_send(Msg::Record(r)).is_err() {
            self.count_dropped(1);
        } else if self.tx.max_capacity() - self.tx.capacity() >= MAX_BATCH {
            self.wake.notify_one();
        }
    }

    fn count_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
        ::metrics::counter!(crate::metrics::USAGE_DROPPED).increment(n);
    }

    /// Wait until every record queued before this call has been written (or has failed).
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            self.wake.notify_one();
            let _ = wait.await;
        }
    }

    /// Records dropped so far (queue full, writer gone, or a batch the database refused).
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn write(sink: &mut impl BatchSink, batch: &mut Vec<UsageRecord>, dropped: &AtomicU64) {
    if batch.is_empty() {
        return;
    }
    let mut last = String::new();
    for attempt in 0..3u32 {
        match sink.write(batch).await {
            Ok(()) => {
                batch.clear();
                return;
            }
            Err(e) => {
                last = e;
                tokio::time::sleep(Duration::from_millis(10 << attempt)).await;
            }
        }
    }
    let n = batch.len() as u64;
    tracing::warn!(error = %last, rows = n, "could not record usage");
    dropped.fetch_add(n, Ordering::Relaxed);
    ::metrics::counter!(crate::metrics::USAGE_DROPPED).increment(n);
    batch.clear();
}

/// Waits for a first record, then lets records collect for [`FLUSH_INTERVAL`] (or until a full
/// batch or a flush request wakes it) without being woken per record, then writes everything
/// queued in transactions of at most [`MAX_BATCH`] rows.
async fn run(
    mut rx: mpsc::Receiver<Msg>,
    mut sink: impl BatchSink,
    dropped: Arc<AtomicU64>,
    wake: Arc<Notify>,
) {
    let mut batch: Vec<UsageRecord> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        match first {
            Msg::Record(r) => {
                batch.push(r);
                let deadline = tokio::time::Instant::now() + FLUSH_INTERVAL;
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {}
                    () = wake.notified() => {}
                }
            }
            Msg::Flush(w) => waiters.push(w),
        }
        let mut closed = false;
        loop {
            match rx.try_recv() {
                Ok(Msg::Record(r)) => batch.push(r),
                Ok(Msg::Flush(w)) => waiters.push(w),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
            if batch.len() >= MAX_BATCH {
                write(&mut sink, &mut batch, &dropped).await;
            }
        }
        write(&mut sink, &mut batch, &dropped).await;
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
        if closed {
            break;
        }
    }
    write(&mut sink, &mut batch, &dropped).await;
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Clone, Default)]
    struct Sink {
        batches: Arc<Mutex<Vec<usize>>>,
        fail: bool,
    }

    impl BatchSink for Sink {
        async fn write(&mut self, batch: &[UsageRecord]) -> Result<(), String> {
            if self.fail {
                return Err("refused".into());
            }
            self.batches
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(batch.len());
            Ok(())
        }
    }

    fn rec(i: i64) -> UsageRecord {
        UsageRecord {
            project: "p".into(),
            function: "f".into(),
            version: i,
            outcome: "ok".into(),
            duration_ms: 0,
            request_bytes: 0,
            response_bytes: 0,
            created: 0,
        }
    }

    fn rows(s: &Sink) -> usize {
        s.batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .sum()
    }

    #[tokio::test]
    async fn flush_writes_everything_queued_in_batches() {
        let sink = Sink::default();
        let w = UsageWriter::spawn(sink.clone());
        for i in 0..1000 {
            w.record(rec(i));
        }
        w.flush().await;
        assert_eq!(rows(&sink), 1000);
        let batches = sink.batches.lock().unwrap_or_else(|p| p.into_inner()).len();
        assert!(batches <= 1000 / MAX_BATCH + 2, "{batches} batches");
        assert_eq!(w.dropped(), 0);
    }

    #[tokio::test]
    async fn dropping_the_writer_writes_the_rest() {
        let sink = Sink::default();
        let w = UsageWriter::spawn(sink.clone());
        w.record(rec(1));
        w.record(rec(2));
        drop(w);
        for _ in 0..2000 {
            if rows(&sink) == 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("rows not written after the writer was dropped");
    }

    #[tokio::test]
    async fn failed_batches_are_counted_as_dropped() {
        let sink = Sink {
            fail: true,
            ..Sink::default()
        };
        let w = UsageWriter::spawn(sink);
        w.record(rec(1));
        w.flush().await;
        assert_eq!(w.dropped(), 1);
    }

    #[tokio::test]
    async fn a_full_queue_drops_instead_of_blocking() {
        // A writer whose task never runs: the current-thread runtime is busy in this test.
        let (tx, _rx) = mpsc::channel(2);
        let w = UsageWriter {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            wake: Arc::new(Notify::new()),
        };
        for i in 0..5 {
            w.record(rec(i));
        }
        assert_eq!(w.dropped(), 3);
    }
}
