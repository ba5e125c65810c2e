//! Asynchronous invocation through NATS JetStream.
//!
//! `POST .../invoke?mode=async` records a pending result, publishes the sealed request with its routing
//! metadata to a durable stream (the result id is the `Nats-Msg-Id`, so a repeated publish is dropped by
//! the stream's duplicate window) and answers `202 {id}`. A worker in every gateway process pulls from one
//! shared durable consumer (explicit ack, bounded in-flight), dispatches through the same [`Dispatcher`]
//! as synchronous calls (with [`JobFlags::ASYNC`]), writes the sealed result once and only then acks.
//!
//! Delivery is at least once; the user sees each accepted call complete exactly once because
//! * the result row is written once (completed only while pending; see [`Store::complete_result`]);
//! * a redelivered message whose result already exists is acked without dispatch;
//! * a run cut short (gateway or engine gone mid-call) is redelivered and run again: functions have no
//!   network, filesystem or state that outlives a call, so a second run has no effect but its sealed
//!   answer, and the engine answers a repeated asynchronous request with the response it already sealed
//!   (see [`JobFlags::ASYNC`]).
//!
//! [`Dispatcher`]: crate::Dispatcher
//! [`Store::complete_result`]: crate::Store::complete_result

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer, message::PublishMessage};
use clave_proto::gateway_api::{JobFlags, Problem};
use futures_util::StreamExt;

use crate::engine::{DispatchError, InvokeJob};
use crate::store::{ResultState, UsageRecord};
use crate::{ApiError, AppState, Error};

/// Settings of the asynchronous queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// NATS server, e.g. `nats://127.0.0.1:4222`.
    pub nats_url: String,
    /// JetStream stream name (default `CLAVE_INVOKE`).
    pub stream: String,
    /// Subject prefix; calls go to `{prefix}.{project}.{function}` (default `clave.invoke`).
    pub subject_prefix: String,
    /// Durable pull consumer shared by every gateway's worker (default `clave-invoke-workers`).
    pub consumer: String,
    /// Calls one worker runs at once.
    pub max_in_flight: usize,
    /// Unacknowledged messages across all workers before the server stops delivering.
    pub max_ack_pending: i64,
    /// How long the server waits for an ack before redelivering (the worker extends it while a call runs).
    pub ack_wait: Duration,
    /// Delay before a refused call (overloaded, no engine) is delivered again.
    pub retry_delay: Duration,
    /// Deliveries after which a call that keeps failing on an engine is given up (stored as its problem).
    pub max_attempts: i64,
    /// How long a queued call may wait in the stream.
    pub max_age: Duration,
    /// Window in which a repeated `Nats-Msg-Id` is dropped.
    pub duplicate_window: Duration,
}

impl QueueConfig {
    /// Defaults for the server at `nats_url`.
    pub fn new(nats_url: impl Into<String>) -> Self {
        Self {
            nats_url: nats_url.into(),
            stream: "CLAVE_INVOKE".into(),
            subject_prefix: "clave.invoke".into(),
            consumer: "clave-invoke-workers".into(),
            max_in_flight: 8,
            max_ack_pending: 1024,
            ack_wait: Duration::from_secs(30),
            retry_delay: Duration::from_secs(1),
            max_attempts: 5,
            max_age: Duration::from_secs(24 * 3600),
            duplicate_window: Duration::from_secs(120),
        }
    }
}

fn queue_err<E: Into<Box<dyn std::error::Error + Send + Sync>>>(
    what: &'static str,
) -> impl FnOnce(E) -> Error {
    move |source| Error::Queue {
        what,
        source: source.into(),
    }
}

/// The message body of a queued call: `"CLVA" | 0x01 | 16-byte id | u16 len | project | u16 len | function
/// | i64 version | u32 len | request` (big-endian). The manifest and sealed code are not queued: the worker
/// loads the pinned version from the store.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct QueuedCall {
    pub id: [u8; 16],
    pub project: String,
    pub function: String,
    pub version: i64,
    pub request: Vec<u8>,
}

impl std::fmt::Debug for QueuedCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedCall")
            .field("id", &hex::encode(self.id))
            .field("project", &self.project)
            .field("function", &self.function)
            .field("version", &self.version)
            .field("request_len", &self.request.len())
            .finish()
    }
}

const CALL_MAGIC: &[u8; 5] = b"CLVA\x01";

impl QueuedCall {
    pub fn id_hex(&self) -> String {
        hex::encode(self.id)
    }

    pub fn encode(&self) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(
            CALL_MAGIC.len() + 16 + 4 + self.project.len() + self.function.len() + 12,
        );
        out.extend_from_slice(CALL_MAGIC);
        out.extend_from_slice(&self.id);
        for name in [&self.project, &self.function] {
            out.extend_from_slice(&u16::try_from(name.len()).ok()?.to_be_bytes());
            out.extend_from_slice(name.as_bytes());
        }
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&u32::try_from(self.request.len()).ok()?.to_be_bytes());
        out.extend_from_slice(&self.request);
        Some(out)
    }

    /// Decode; `None` for anything malformed (truncated, trailing bytes, bad magic, names that are not
    /// valid project/function names).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            if rest.len() < n {
                return None;
            }
            let (head, tail) = rest.split_at(n);
            *rest = tail;
            Some(head)
        }
        let mut rest = bytes;
        if take(&mut rest, CALL_MAGIC.len())? != CALL_MAGIC {
            return None;
        }
        let id: [u8; 16] = take(&mut rest, 16)?.try_into().ok()?;
        let mut names = Vec::with_capacity(2);
        for _ in 0..2 {
            let len = u16::from_be_bytes(take(&mut rest, 2)?.try_into().ok()?);
            let name = std::str::from_utf8(take(&mut rest, usize::from(len))?).ok()?;
            if !crate::is_valid_name(name) {
                return None;
            }
            names.push(name.to_owned());
        }
        let version = i64::from_be_bytes(take(&mut rest, 8)?.try_into().ok()?);
        let len = u32::from_be_bytes(take(&mut rest, 4)?.try_into().ok()?);
        let request = take(&mut rest, usize::try_from(len).ok()?)?.to_vec();
        if !rest.is_empty() {
            return None;
        }
        let function = names.pop()?;
        let project = names.pop()?;
        Some(Self {
            id,
            project,
            function,
            version,
            request,
        })
    }
}

/// A new random result id (128 bits).
pub(crate) fn new_result_id() -> Result<[u8; 16], Error> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|_| Error::Random)?;
    Ok(id)
}

/// A connection to the JetStream stream of queued calls. Cheap to clone.
#[derive(Clone)]
pub struct JobQueue {
    js: jetstream::Context,
    config: Arc<QueueConfig>,
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobQueue")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl JobQueue {
    /// Connect to NATS and create (or open) the stream and the durable consumer.
    ///
    /// # Errors
    /// [`Error::Config`] for unusable names; [`Error::Queue`] when the server cannot be reached or refuses.
    pub async fn connect(config: QueueConfig) -> Result<Self, Error> {
        let token_ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        };
        if !token_ok(&config.stream) || !token_ok(&config.consumer) {
            return Err(Error::Config(
                "stream and consumer names must be [A-Za-z0-9_-]+",
            ));
        }
        if config.subject_prefix.is_empty()
            || !config.subject_prefix.split('.').all(token_ok)
            || config.max_in_flight == 0
        {
            return Err(Error::Config(
                "subject prefix must be dot-separated [A-Za-z0-9_-]+ tokens; max_in_flight >= 1",
            ));
        }
        let client = async_nats::ConnectOptions::new()
            .name("clave-gateway")
            .connection_timeout(Duration::from_secs(5))
            .connect(config.nats_url.as_str())
            .await
            .map_err(queue_err("connect to NATS"))?;
        let js = jetstream::new(client);
        let stream = js
            .get_or_create_stream(jetstream::stream::Config {
                name: config.stream.clone(),
                subjects: vec![format!("{}.>", config.subject_prefix)],
                retention: jetstream::stream::RetentionPolicy::WorkQueue,
                storage: jetstream::stream::StorageType::File,
                max_age: config.max_age,
                duplicate_window: config.duplicate_window,
                ..Default::default()
            })
            .await
            .map_err(queue_err("create the stream"))?;
        stream
            .get_or_create_consumer::<jetstream::consumer::pull::Config>(
                &config.consumer,
                jetstream::consumer::pull::Config {
                    durable_name: Some(config.consumer.clone()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: config.ack_wait,
                    max_deliver: -1,
                    max_ack_pending: config.max_ack_pending,
                    ..Default::default()
                },
            )
            .await
            .map_err(queue_err("create the consumer"))?;
        Ok(Self {
            js,
            config: Arc::new(config),
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// Publish a call and wait for the stream to store it.
    pub(crate) async fn publish(&self, call: &QueuedCall) -> Result<(), Error> {
        let payload = call
            .encode()
            .ok_or(Error::Config("queued call too large"))?;
        let subject = format!(
            "{}.{}.{}",
            self.config.subject_prefix, call.project, call.function
        );
        let ack = self
            .js
            .send_publish(
                subject,
                PublishMessage::build()
                    .payload(payload.into())
                    .message_id(call.id_hex()),
            )
            .await
            .map_err(queue_err("publish"))?;
        ack.await.map_err(queue_err("publish acknowledgement"))?;
        Ok(())
    }

    /// Delete the stream (and with it the consumer and every queued call). For tests and teardown.
    ///
    /// # Errors
    /// [`Error::Queue`].
    pub async fn delete_stream(&self) -> Result<(), Error> {
        self.js
            .delete_stream(&self.config.stream)
            .await
            .map_err(queue_err("delete the stream"))?;
        Ok(())
    }

    /// Calls waiting in the stream (not yet acknowledged).
    ///
    /// # Errors
    /// [`Error::Queue`].
    pub async fn depth(&self) -> Result<u64, Error> {
        let mut stream = self
            .js
            .get_stream(&self.config.stream)
            .await
            .map_err(queue_err("open the stream"))?;
        let info = stream.info().await.map_err(queue_err("stream info"))?;
        Ok(info.state.messages)
    }

    async fn consumer(&self) -> Result<PullConsumer, Error> {
        let stream = self
            .js
            .get_stream(&self.config.stream)
            .await
            .map_err(queue_err("open the stream"))?;
        stream
            .get_consumer(&self.config.consumer)
            .await
            .map_err(queue_err("open the consumer"))
    }
}

/// What the worker does with one delivery.
enum Step {
    Ack,
    Nak(Duration),
    Term,
}

/// Pull queued calls and run them until `shutdown` resolves; then stop pulling and wait (at most
/// [`crate::GatewayConfig::drain_timeout`]) for calls in flight. Unacknowledged calls are redelivered to
/// another worker.
///
/// # Errors
/// [`Error::Queue`] when the consumer cannot be opened or the message stream ends with an error.
pub async fn run_worker(
    state: AppState,
    queue: JobQueue,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), Error> {
    let consumer = queue.consumer().await?;
    let max_in_flight = queue.config.max_in_flight;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(max_in_flight)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(10))
        .messages()
        .await
        .map_err(queue_err("pull messages"))?;
    let slots = Arc::new(tokio::sync::Semaphore::new(max_in_flight));
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    tracing::info!(stream = %queue.config.stream, consumer = %queue.config.consumer, "async worker started");
    let result = loop {
        let permit = tokio::select! {
            () = &mut shutdown => break Ok(()),
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break Ok(()),
            },
        };
        let next = tokio::select! {
            () = &mut shutdown => break Ok(()),
            next = messages.next() => next,
        };
        match next {
            None => break Ok(()),
            Some(Err(e)) => {
                // Missed heartbeats and the like: the stream keeps going; log and continue.
                tracing::warn!(error = %e, "async worker: pull error");
                continue;
            }
            Some(Ok(msg)) => {
                let state = state.clone();
                let queue = queue.clone();
                tasks.spawn(async move {
                    handle(&state, &queue, msg).await;
                    drop(permit);
                });
            }
        }
        // Reap finished tasks so the set does not grow.
        while tasks.try_join_next().is_some() {}
    };
    let drain = state.config().drain_timeout;
    let waited =
        tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} }).await;
    if waited.is_err() {
        tracing::warn!(
            "async worker: drain deadline reached; unfinished calls will be redelivered"
        );
        tasks.abort_all();
    }
    tracing::info!("async worker stopped");
    result
}

async fn handle(state: &AppState, queue: &JobQueue, msg: jetstream::Message) {
    let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
    let work = process(state, queue, &msg.payload, delivered);
    tokio::pin!(work);
    // Tell the server the call is still running so that it is not redelivered meanwhile.
    let period = (queue.config.ack_wait / 2).max(Duration::from_millis(100));
    let mut progress = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let step = loop {
        tokio::select! {
            step = &mut work => break step,
            _ = progress.tick() => {
                if let Err(e) = msg.ack_with(AckKind::Progress).await {
                    tracing::debug!(error = %e, "async worker: progress signal failed");
                }
            }
        }
    };
    let sent = match step {
        // Wait for the server to confirm the ack; if it is lost, the redelivery finds the result and acks.
        Step::Ack => msg.double_ack().await,
        Step::Nak(delay) => msg.ack_with(AckKind::Nak(Some(delay))).await,
        Step::Term => msg.ack_with(AckKind::Term).await,
    };
    if let Err(e) = sent {
        tracing::warn!(error = %e, "async worker: acknowledgement failed; the call will be redelivered");
    }
}

fn problem_for(e: &ApiError) -> Problem {
    e.problem()
}

async fn process(state: &AppState, queue: &JobQueue, payload: &[u8], delivered: i64) -> Step {
    let Some(call) = QueuedCall::decode(payload) else {
        tracing::error!("async worker: malformed queued call dropped");
        return Step::Term;
    };
    let id = call.id_hex();
    let store = state.store();
    match store.result(&id).await {
        Ok(Some(r)) if r.state != ResultState::Pending => {
            tracing::debug!(%id, "async call already completed; acknowledging the redelivery");
            return Step::Ack;
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "async worker: store unavailable; retrying later");
            return Step::Nak(queue.config.retry_delay);
        }
    }
    let complete = |state: ResultState| {
        let call = &call;
        let id = &id;
        async move {
            match store
                .complete_result(id, &call.project, &call.function, call.version, &state)
                .await
            {
                Ok(written) => {
                    if !written {
                        tracing::debug!(%id, "async result already stored by another delivery");
                    }
                    Step::Ack
                }
                Err(e) => {
                    tracing::warn!(error = %e, "async worker: cannot store the result; retrying later");
                    Step::Nak(queue.config.retry_delay)
                }
            }
        }
    };
    let artifact = match store
        .version_artifact(&call.project, &call.function, call.version)
        .await
    {
        Ok(a) => a,
        Err(Error::UnknownVersion) => {
            return complete(ResultState::Failed(problem_for(&ApiError::NotFound(
                "the function version was deleted before the call ran",
            ))))
            .await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "async worker: store unavailable; retrying later");
            return Step::Nak(queue.config.retry_delay);
        }
    };
    let request_bytes = call.request.len();
    let job = InvokeJob {
        project: call.project.clone(),
        function: call.function.clone(),
        version: call.version,
        manifest: artifact.manifest,
        sealed_code: artifact.sealed_code,
        secrets: artifact.secrets,
        request: call.request.clone().into(),
        flags: JobFlags::ASYNC,
    };
    let started = std::time::Instant::now();
    let result = state.dispatcher().dispatch(job).await;
    let elapsed = started.elapsed();
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.outcome(),
    };
    ::metrics::counter!(crate::metrics::ASYNC_INVOCATIONS, "outcome" => outcome).increment(1);
    let record = UsageRecord {
        project: call.project.clone(),
        function: call.function.clone(),
        version: call.version,
        outcome: format!("async_{outcome}"),
        duration_ms: i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
        request_bytes: i64::try_from(request_bytes).unwrap_or(i64::MAX),
        response_bytes: result
            .as_ref()
            .map_or(0, |r| i64::try_from(r.len()).unwrap_or(i64::MAX)),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
    };
    if let Err(e) = store.record_usage(&record).await {
        tracing::warn!(error = %e, "could not record usage");
    }
    match result {
        Ok(response) => complete(ResultState::Done(response)).await,
        // Nothing ran: wait and try again, however often (the stream's max age bounds it).
        Err(e) if e.is_retryable() => Step::Nak(queue.config.retry_delay),
        // The engine could not open the envelope: running it again cannot help.
        Err(DispatchError::Rejected) => {
            complete(ResultState::Failed(problem_for(
                &ApiError::EnvelopeRejected,
            )))
            .await
        }
        // It may have run: run it again (no side effects; the engine repeats its sealed answer) until
        // the attempts are used up.
        Err(e) => {
            tracing::warn!(%id, delivered, outcome, "async call failed on an engine");
            if delivered >= queue.config.max_attempts {
                let api = crate::routes::dispatch_error(state, &e);
                complete(ResultState::Failed(problem_for(&api))).await
            } else {
                Step::Nak(queue.config.retry_delay)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `CLAVE_TEST_NATS_URL`, or `None` after recording the skip (as tests/common/services.rs
    /// does: printed, and appended to `CLAVE_TEST_SKIP_LOG` when set).
    fn nats_url_or_skip(group: &str) -> Option<String> {
        use std::io::Write as _;
        if let Ok(url) = std::env::var("CLAVE_TEST_NATS_URL") {
            return Some(url);
        }
        let line = format!("CLAVE-SKIPPED: {group}: CLAVE_TEST_NATS_URL is not set (needs NATS)\n");
        print!("{line}");
        if let Some(path) = std::env::var_os("CLAVE_TEST_SKIP_LOG") {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(line.as_bytes()))
                .expect("append to CLAVE_TEST_SKIP_LOG");
        }
        None
    }

    fn call() -> QueuedCall {
        QueuedCall {
            id: [7; 16],
            project: "default".into(),
            function: "hello".into(),
            version: 3,
            request: b"sealed".to_vec(),
        }
    }

    #[test]
    fn queued_call_round_trip_and_negative_cases() {
        let bytes = call().encode().expect("encode");
        assert_eq!(QueuedCall::decode(&bytes), Some(call()));
        for n in 0..bytes.len() {
            assert_eq!(QueuedCall::decode(&bytes[..n]), None, "truncated at {n}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(QueuedCall::decode(&trailing), None);
        let mut magic = bytes.clone();
        magic[4] = 2;
        assert_eq!(QueuedCall::decode(&magic), None);
        let mut bad_name = bytes.clone();
        bad_name[CALL_MAGIC.len() + 16 + 2] = b'/';
        assert_eq!(QueuedCall::decode(&bad_name), None);
        assert_eq!(call().id_hex(), "07".repeat(16));
        let debug = format!("{:?}", call());
        assert!(debug.contains("request_len") && !debug.contains("sealed"));
    }

    /// Against the NATS of `CLAVE_TEST_NATS_URL` (skipped only when unset): publishing one call twice
    /// stores it once.
    #[tokio::test]
    async fn repeated_publish_is_deduplicated_by_message_id() {
        let Some(url) = nats_url_or_skip("gateway queue unit test on NATS") else {
            return;
        };
        let tag = hex::encode(new_result_id().expect("id"));
        let queue = JobQueue::connect(QueueConfig {
            stream: format!("CLAVE_UNIT_{tag}"),
            subject_prefix: format!("claveunit.{tag}"),
            consumer: format!("w-{tag}"),
            ..QueueConfig::new(url.as_str())
        })
        .await
        .unwrap_or_else(|e| {
            panic!("NATS does not answer at {url} (CLAVE_TEST_NATS_URL is set, so this test requires it): {e}")
        });
        let mut second = call();
        second.id = [8; 16];
        queue.publish(&call()).await.expect("publish");
        queue.publish(&call()).await.expect("publish again");
        queue.publish(&second).await.expect("publish another");
        let depth = queue.depth().await.expect("depth");
        queue.delete_stream().await.expect("delete");
        assert_eq!(depth, 2);
        // Unusable names are refused before connecting.
        for bad in [
            QueueConfig {
                stream: "a.b".into(),
                ..QueueConfig::new(url.as_str())
            },
            QueueConfig {
                subject_prefix: "a..b".into(),
                ..QueueConfig::new(url.as_str())
            },
            QueueConfig {
                max_in_flight: 0,
                ..QueueConfig::new(url.as_str())
            },
        ] {
            assert!(matches!(
                JobQueue::connect(bad).await,
                Err(Error::Config(_))
            ));
        }
    }

    #[test]
    fn result_ids_are_fresh() {
        let a = new_result_id().expect("id");
        let b = new_result_id().expect("id");
        assert_ne!(a, b);
        assert!(clave_proto::gateway_api::is_valid_result_id(&hex::encode(
            a
        )));
    }
}
