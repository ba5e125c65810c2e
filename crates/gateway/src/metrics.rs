//! Prometheus metrics. Only counts, sizes and timings — never content, never function names.
//!
//! The recorder is this crate's own: a map from [`metrics::Key`] to atomics, rendered in the
//! Prometheus text format (version 0.0.4). The gateway has a dozen series, so a map behind a
//! read-write lock is enough, and installing it costs nothing at start (the exporter it replaces
//! calibrated a TSC clock in a busy loop of 10–20 ms; see docs/decisions/0006-start-path.md).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

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
/// Histogram of how long a short call's answer was held (the yield of
/// [`crate::GatewayConfig::answer_burst_below`]) before it was written, in seconds.
pub const ANSWER_HOLD: &str = "clave_gateway_answer_hold_seconds";

/// Upper bounds (seconds) of [`INVOKE_DURATION`]'s buckets.
const INVOKE_DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Upper bounds (seconds) of [`ANSWER_HOLD`]'s buckets.
const ANSWER_HOLD_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1,
];
/// Prometheus's default buckets, for any other histogram.
const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn buckets_for(name: &str) -> &'static [f64] {
    match name {
        INVOKE_DURATION => INVOKE_DURATION_BUCKETS,
        ANSWER_HOLD => ANSWER_HOLD_BUCKETS,
        _ => DEFAULT_BUCKETS,
    }
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide handle. The first call installs this crate's recorder globally; if another
/// recorder is already installed, the handle renders only what this crate's recorder sees
/// (nothing) and a warning is logged — pass your own handle with
/// [`crate::AppState::with_metrics`] in that case.
pub fn prometheus_handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusRecorder::default();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder is already installed; /metrics may be empty");
            }
            handle
        })
        .clone()
}

/// `metrics::Key` carries its hash, computed once when the key is built; hashing it writes
/// exactly that `u64`, which this hasher passes through.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `Key` (it only calls `write_u64`); stay correct for anything else.
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type KeyMap<T> = RwLock<HashMap<Key, Arc<T>, BuildHasherDefault<KeyHasher>>>;

/// Look `key` up, registering `make()` under it on first use.
fn get_or_register<T>(map: &KeyMap<T>, key: &Key, make: impl FnOnce() -> T) -> Arc<T> {
    if let Some(found) = map.read().unwrap_or_else(PoisonError::into_inner).get(key) {
        return Arc::clone(found);
    }
    let mut map = map.write().unwrap_or_else(PoisonError::into_inner);
    Arc::clone(map.entry(key.clone()).or_insert_with(|| Arc::new(make())))
}

/// A fixed-bucket histogram: a count per bucket, the sum and the count.
struct Buckets {
    bounds: &'static [f64],
    /// Non-cumulative: `counts[i]` holds the values in `(bounds[i-1], bounds[i]]`; the last
    /// slot holds those above every bound.
    counts: Box<[AtomicU64]>,
    /// `f64` bits.
    sum: AtomicU64,
}

impl Buckets {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }
}

impl HistogramFn for Buckets {
    fn record(&self, value: f64) {
        let slot = self
            .bounds
            .iter()
            .position(|&bound| value <= bound)
            .unwrap_or(self.bounds.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }
}

#[derive(Default)]
struct Registry {
    counters: KeyMap<AtomicU64>,
    /// `f64` bits.
    gauges: KeyMap<AtomicU64>,
    histograms: KeyMap<Buckets>,
    help: RwLock<HashMap<String, String>>,
}

/// The recorder to install with [`metrics::set_global_recorder`] (or
/// [`metrics::with_local_recorder`] in a test).
#[derive(Default, Clone)]
pub struct PrometheusRecorder {
    registry: Arc<Registry>,
}

impl PrometheusRecorder {
    /// A handle that renders what this recorder has recorded.
    pub fn handle(&self) -> PrometheusHandle {
        PrometheusHandle {
            registry: Arc::clone(&self.registry),
        }
    }

    fn describe(&self, key: &KeyName, description: &SharedString) {
        self.registry
            .help
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.as_str().to_owned(), description.to_string());
    }
}

impl Recorder for PrometheusRecorder {
    fn describe_counter(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.describe(&key, &description);
    }
    fn describe_gauge(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.describe(&key, &description);
    }
    fn describe_histogram(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.describe(&key, &description);
    }
    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> Counter {
        Counter::from_arc(get_or_register(&self.registry.counters, key, || {
            AtomicU64::new(0)
        }))
    }
    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(get_or_register(&self.registry.gauges, key, || {
            AtomicU64::new(0f64.to_bits())
        }))
    }
    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(get_or_register(&self.registry.histograms, key, || {
            Buckets::new(buckets_for(key.name()))
        }))
    }
}

/// Renders the recorded series as Prometheus text (`text/plain; version=0.0.4`).
#[derive(Clone)]
pub struct PrometheusHandle {
    registry: Arc<Registry>,
}

impl std::fmt::Debug for PrometheusHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusHandle").finish_non_exhaustive()
    }
}

/// One series: its labels rendered (`k="v",…`, sorted by key) and its value(s).
type Series<V> = BTreeMap<String, BTreeMap<String, V>>;

impl PrometheusHandle {
    /// Every series, grouped by name in name order, each group's series in label order.
    #[must_use]
    pub fn render(&self) -> String {
        let r = &*self.registry;
        let help = r.help.read().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        let counters: Series<u64> = collect(&r.counters, |c| c.load(Ordering::Relaxed));
        for (name, series) in &counters {
            header(&mut out, name, "counter", &help);
            for (labels, value) in series {
                line(&mut out, name, "", labels, None, format_args!("{value}"));
            }
        }
        let gauges: Series<f64> = collect(&r.gauges, |g| f64::from_bits(g.load(Ordering::Relaxed)));
        for (name, series) in &gauges {
            header(&mut out, name, "gauge", &help);
            for (labels, value) in series {
                line(
                    &mut out,
                    name,
                    "",
                    labels,
                    None,
                    format_args!("{}", Float(*value)),
                );
            }
        }
        let histograms: Series<(&'static [f64], Vec<u64>, f64)> = collect(&r.histograms, |h| {
            let counts = h.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
            (
                h.bounds,
                counts,
                f64::from_bits(h.sum.load(Ordering::Relaxed)),
            )
        });
        for (name, series) in &histograms {
            header(&mut out, name, "histogram", &help);
            for (labels, (bounds, counts, sum)) in series {
                let mut cumulative = 0u64;
                for (bound, count) in bounds.iter().zip(counts) {
                    cumulative += count;
                    let le = format!("{}", Float(*bound));
                    line(
                        &mut out,
                        name,
                        "_bucket",
                        labels,
                        Some(&le),
                        format_args!("{cumulative}"),
                    );
                }
                let total = cumulative + counts.last().copied().unwrap_or(0);
                line(
                    &mut out,
                    name,
                    "_bucket",
                    labels,
                    Some("+Inf"),
                    format_args!("{total}"),
                );
                line(
                    &mut out,
                    name,
                    "_sum",
                    labels,
                    None,
                    format_args!("{}", Float(*sum)),
                );
                line(
                    &mut out,
                    name,
                    "_count",
                    labels,
                    None,
                    format_args!("{total}"),
                );
            }
        }
        out
    }

    /// Kept for callers of the exporter this replaces: there is nothing to expire.
    pub fn run_upkeep(&self) {}
}

fn collect<T, V>(map: &KeyMap<T>, read: impl Fn(&T) -> V) -> Series<V> {
    let mut out: Series<V> = BTreeMap::new();
    for (key, metric) in map.read().unwrap_or_else(PoisonError::into_inner).iter() {
        let mut labels: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
        labels.sort_unstable();
        let mut rendered = String::new();
        for (i, (k, v)) in labels.into_iter().enumerate() {
            if i > 0 {
                rendered.push(',');
            }
            // Label names may not hold ':' (metric names may).
            let k = sanitize_name(k).replace(':', "_");
            let _ = write!(rendered, "{k}=\"{}\"", escape_label(v));
        }
        out.entry(sanitize_name(key.name()))
            .or_default()
            .insert(rendered, read(metric));
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &HashMap<String, String>) {
    if let Some(text) = help.get(name) {
        let text = text.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(out, "# HELP {name} {text}");
    }
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn line(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &str,
    le: Option<&str>,
    value: std::fmt::Arguments<'_>,
) {
    out.push_str(name);
    out.push_str(suffix);
    match (labels.is_empty(), le) {
        (true, None) => {}
        (false, None) => {
            let _ = write!(out, "{{{labels}}}");
        }
        (true, Some(le)) => {
            let _ = write!(out, "{{le=\"{le}\"}}");
        }
        (false, Some(le)) => {
            let _ = write!(out, "{{{labels},le=\"{le}\"}}");
        }
    }
    let _ = writeln!(out, " {value}");
}

/// A metric or label name with every character outside `[a-zA-Z0-9_:]` replaced by `_` (and a
/// leading digit prefixed), so that a bad name cannot break the exposition format.
fn sanitize_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert(0, '_');
    }
    out
}

/// A label value with `\`, `"` and newline escaped, as the text format requires.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// An `f64` in the text format's spelling (`+Inf`, `-Inf`, `NaN`; otherwise Rust's shortest
/// round-trip decimal).
struct Float(f64);

impl std::fmt::Display for Float {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.0;
        if v.is_nan() {
            f.write_str("NaN")
        } else if v.is_infinite() {
            f.write_str(if v > 0.0 { "+Inf" } else { "-Inf" })
        } else {
            write!(f, "{v}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(f: impl FnOnce()) -> String {
        let recorder = PrometheusRecorder::default();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, f);
        handle.render()
    }

    #[test]
    fn counters_with_and_without_labels() {
        let text = recorded(|| {
            metrics::counter!(INVOCATIONS, "outcome" => "ok").increment(2);
            metrics::counter!(INVOCATIONS, "outcome" => "ok").increment(1);
            metrics::counter!(INVOCATIONS, "outcome" => "timeout").increment(1);
            metrics::counter!(LOG_RECORDS_DROPPED).increment(3);
        });
        assert_eq!(
            text,
            "# TYPE clave_gateway_invocations_total counter\n\
             clave_gateway_invocations_total{outcome=\"ok\"} 3\n\
             clave_gateway_invocations_total{outcome=\"timeout\"} 1\n\
             # TYPE clave_gateway_log_records_dropped_total counter\n\
             clave_gateway_log_records_dropped_total 3\n"
        );
    }

    #[test]
    fn gauges_keep_the_last_value_and_spell_floats_as_prometheus_does() {
        let text = recorded(|| {
            metrics::gauge!(QUEUE_DEPTH).set(7.0);
            metrics::gauge!(QUEUE_DEPTH).set(2.0);
            metrics::gauge!(ENGINE_IN_USE).set(0.5);
            metrics::gauge!("g_inf").set(f64::INFINITY);
            metrics::gauge!("g_nan").set(f64::NAN);
            metrics::gauge!("g_up").increment(1.5);
            metrics::gauge!("g_up").decrement(0.5);
        });
        assert!(
            text.contains("# TYPE clave_gateway_queue_depth gauge\nclave_gateway_queue_depth 2\n"),
            "{text}"
        );
        assert!(text.contains("clave_gateway_engine_in_use 0.5\n"), "{text}");
        assert!(text.contains("g_inf +Inf\n"), "{text}");
        assert!(text.contains("g_nan NaN\n"), "{text}");
        assert!(text.contains("g_up 1\n"), "{text}");
    }

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let text = recorded(|| {
            let h = metrics::histogram!(INVOKE_DURATION);
            h.record(0.0005); // first bucket
            h.record(0.001); // on the bound: first bucket too
            h.record(0.003); // 0.005
            h.record(60.0); // above every bound
        });
        let want = "clave_gateway_invoke_duration_seconds_bucket{le=\"0.001\"} 2\n\
                    clave_gateway_invoke_duration_seconds_bucket{le=\"0.0025\"} 2\n\
                    clave_gateway_invoke_duration_seconds_bucket{le=\"0.005\"} 3\n";
        assert!(
            text.starts_with(&format!(
                "# TYPE clave_gateway_invoke_duration_seconds histogram\n{want}"
            )),
            "{text}"
        );
        assert!(
            text.contains("clave_gateway_invoke_duration_seconds_bucket{le=\"30\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("clave_gateway_invoke_duration_seconds_bucket{le=\"+Inf\"} 4\n"),
            "{text}"
        );
        let sum: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("clave_gateway_invoke_duration_seconds_sum "))
            .expect("a _sum line")
            .parse()
            .expect("a number");
        assert!((sum - 60.0045).abs() < 1e-9, "{text}");
        assert!(
            text.ends_with("clave_gateway_invoke_duration_seconds_count 4\n"),
            "{text}"
        );
    }

    #[test]
    fn answer_hold_has_buckets_below_a_millisecond() {
        let text = recorded(|| {
            metrics::histogram!(ANSWER_HOLD).record(0.00007);
        });
        assert!(
            text.contains("clave_gateway_answer_hold_seconds_bucket{le=\"0.00005\"} 0\n")
                && text.contains("clave_gateway_answer_hold_seconds_bucket{le=\"0.0001\"} 1\n")
                && text.contains("clave_gateway_answer_hold_seconds_bucket{le=\"0.1\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn labelled_histograms_put_le_last_and_other_histograms_get_default_buckets() {
        let text = recorded(|| {
            metrics::histogram!("h", "route" => "x").record(0.2);
        });
        assert!(
            text.contains("h_bucket{route=\"x\",le=\"0.005\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("h_bucket{route=\"x\",le=\"0.25\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("h_bucket{route=\"x\",le=\"10\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("h_count{route=\"x\"} 1\n"), "{text}");
    }

    #[test]
    fn hostile_names_and_label_values_cannot_break_the_format() {
        let text = recorded(|| {
            metrics::counter!("bad name{x}\n", "k-ey:" => "a\"b\\c\nd", "a" => "1").increment(1);
            metrics::describe_counter!("bad name{x}\n", "line one\nline two");
        });
        assert_eq!(
            text,
            "# TYPE bad_name_x__ counter\nbad_name_x__{a=\"1\",k_ey_=\"a\\\"b\\\\c\\nd\"} 1\n",
            "the description names the unsanitised metric, so it is not matched; {text}"
        );
        let text = recorded(|| {
            metrics::describe_counter!(DEPLOYS, "deploys\nby outcome");
            metrics::counter!(DEPLOYS, "outcome" => "ok").increment(1);
        });
        assert_eq!(
            text,
            "# HELP clave_gateway_deploys_total deploys\\nby outcome\n\
             # TYPE clave_gateway_deploys_total counter\n\
             clave_gateway_deploys_total{outcome=\"ok\"} 1\n"
        );
    }

    #[test]
    fn handles_taken_once_keep_counting_into_the_same_series() {
        let recorder = PrometheusRecorder::default();
        let handle = recorder.handle();
        let c = metrics::with_local_recorder(&recorder, || metrics::counter!(ASYNC_ACCEPTED));
        for _ in 0..5 {
            c.increment(1);
        }
        metrics::with_local_recorder(&recorder, || metrics::counter!(ASYNC_ACCEPTED).increment(1));
        assert!(
            handle
                .render()
                .contains("clave_gateway_async_accepted_total 6\n")
        );
    }
}
