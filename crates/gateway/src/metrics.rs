//! Prometheus metrics. Only counts, sizes and timings — never content, never function names.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Counter of invocations, label `outcome`.
pub const INVOCATIONS: &str = "clave_gateway_invocations_total";
/// Histogram of invocation latency in seconds.
pub const INVOKE_DURATION: &str = "clave_gateway_invoke_duration_seconds";
/// Gauge: calls waiting for an engine slot.
pub const QUEUE_DEPTH: &str = "clave_gateway_queue_depth";
/// Gauge: engine slots in use.
pub const ENGINE_IN_USE: &str = "clave_gateway_engine_in_use";
/// Counter of asynchronous calls run by the worker, label `outcome`.
pub const ASYNC_INVOCATIONS: &str = "clave_gateway_async_invocations_total";
/// Counter of asynchronous calls accepted (queued).
pub const ASYNC_ACCEPTED: &str = "clave_gateway_async_accepted_total";
/// Gauge: engines taking calls (not ejected).
pub const ENGINES_HEALTHY: &str = "clave_gateway_engines_healthy";
/// Counter of usage records dropped instead of written (the writer's queue was full, or the
/// database refused a batch); see [`crate::Store::record_usage_later`].
pub const USAGE_DROPPED: &str = "clave_gateway_usage_dropped_total";
/// Counter of sealed developer log records delivered by remote engines, label `outcome`
/// (`stored`, `refused`).
pub const LOG_RECORDS: &str = "clave_gateway_log_records_total";
/// Counter of sealed developer log records that engines report they dropped (their queue was
/// full, or no gateway took them).
pub const LOG_RECORDS_DROPPED: &str = "clave_gateway_log_records_dropped_total";
/// Counter of deploys, label `outcome`.
pub const DEPLOYS: &str = "clave_gateway_deploys_total";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus handle. The first call installs the recorder globally; if another recorder
/// is already installed, the handle renders only what this crate's recorder sees (nothing) and a warning is
/// logged — pass your own handle with [`crate::AppState::with_metrics`] in that case.
pub fn prometheus_handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let builder = builder
                .set_buckets_for_metric(
                    Matcher::Full(INVOKE_DURATION.to_owned()),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0, 30.0,
                    ],
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder is already installed; /metrics may be empty");
            }
            handle
        })
        .clone()
}
