//! The engine's settings.

use super::*;

/// Engine settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// The KDS must satisfy this policy before the engine trusts anything it publishes.
    pub kds_policy: Policy,
    /// Accepted distance between a request's `date` and the engine's clock, seconds (±).
    pub date_window_secs: u64,
    /// Accepted distance for asynchronous requests, seconds (±): they may wait in the durable
    /// queue much longer than a synchronous call takes. Never narrower than `date_window_secs`.
    ///
    /// A request is asynchronous only when the caller sealed `clave-mode: async` into it
    /// ([`clave_proto::InvokeMode::Async`]) *and* the host delivered it flagged
    /// [`JobFlags::ASYNC`]; any disagreement is refused. So the host cannot relabel a captured
    /// synchronous request as asynchronous to stretch its window, and a synchronous request is
    /// remembered by the replay cache only until `date` + `date_window_secs`.
    pub async_date_window_secs: u64,
    /// Most replay ids remembered at once (about 40 bytes each); when full of live entries, new
    /// requests are refused with [`Error::Overloaded`] (nothing runs). Every id is kept until its
    /// request's `date` + the window of its sealed mode ([`EngineConfig::date_window_for`]); a
    /// `date` may lie up to one window ahead of the clock, so an id lives at most twice its window
    /// and the sustained rate is at least `replay_capacity / (2 × date_window_secs)` for
    /// synchronous calls (`replay_capacity / (2 × async_date_window_secs)` for asynchronous ones).
    pub replay_capacity: usize,
    /// Most opened code modules cached in memory.
    pub code_cache_entries: usize,
    /// Most bytes of opened code cached in memory.
    pub code_cache_bytes: usize,
    /// How long keys stay usable after their bundle's `not_after`, seconds.
    pub key_grace_secs: u64,
    /// The sandbox pool, including the platform maxima manifest limits are clamped to.
    pub sandbox: SandboxSettings,
    /// How functions' `fetch()` leaves the engine (direct or through a CONNECT proxy) and its
    /// per-call limits.
    pub egress: crate::egress::EgressConfig,
    /// Largest engine job accepted by the HTTP service, bytes.
    pub max_job_bytes: usize,
    /// Most sealed responses of asynchronous jobs held for redelivery.
    pub async_result_entries: usize,
    /// Most bytes of sealed responses of asynchronous jobs held for redelivery.
    pub async_result_bytes: usize,
    /// How long a sealed response of an asynchronous job is held, seconds (at least twice the
    /// asynchronous date window, so that it outlives the job's replay entry).
    pub async_result_secs: u64,
    /// INSECURE, for benchmarks only: accept jobs flagged
    /// [`JobFlags::INSECURE_PLAINTEXT_BENCH`], whose request is a plain BHTTP request and whose
    /// answer is a plain BHTTP response (no OHTTP; the host sees input and result). Everything
    /// else on that path (date, routing and hash checks, code opening, the sandbox) is the
    /// confidential path's. Default `false`: such jobs are refused with
    /// [`Error::PlaintextRefused`].
    pub insecure_plaintext_bench: bool,
    /// Where the engine keeps its clock floor ([`crate::clock_floor`]): with a directory, it
    /// refuses to start, and refuses every request, at a clock more than
    /// `max_clock_regression_secs` behind the latest time it served at, across restarts.
    /// `None`: no floor survives a restart (the host can then wind the clock back between runs).
    pub data_dir: Option<std::path::PathBuf>,
    /// How far, in seconds, the clock may lie behind the floor (an NTP step, a VM migration).
    pub max_clock_regression_secs: u64,
    /// A job answered within less than this yields to the runtime once (in the HTTP service)
    /// before its answer is written, so that the answers of the jobs a worker runs in one stretch
    /// leave together and a waiting gateway is woken about once per burst
    /// (docs/decisions/0010-answers-in-bursts.md, which bounds the wait). Longer jobs and
    /// refusals answer at once. `Duration::ZERO` turns it off. Default 1 ms.
    pub answer_burst_below: std::time::Duration,
}

impl EngineConfig {
    /// Default date window: ±60 s.
    pub const DEFAULT_DATE_WINDOW_SECS: u64 = 60;
    /// Default date window of asynchronous jobs: ±15 min.
    pub const DEFAULT_ASYNC_DATE_WINDOW_SECS: u64 = 900;
    /// Default replay cache size (2 Mi ids, at most about 80 MiB): with the default windows at
    /// least ~17 000 synchronous (or ~1 100 asynchronous) requests/s sustained.
    pub const DEFAULT_REPLAY_CAPACITY: usize = 1 << 21;
    /// Default allowed clock regression: two minutes.
    pub const DEFAULT_MAX_CLOCK_REGRESSION_SECS: u64 = 120;
    /// Default key grace window: one day (the KDS's default epoch).
    pub const DEFAULT_KEY_GRACE_SECS: u64 = 86_400;

    /// Defaults around a KDS policy.
    #[must_use]
    pub fn new(kds_policy: Policy) -> Self {
        Self {
            kds_policy,
            date_window_secs: Self::DEFAULT_DATE_WINDOW_SECS,
            async_date_window_secs: Self::DEFAULT_ASYNC_DATE_WINDOW_SECS,
            replay_capacity: Self::DEFAULT_REPLAY_CAPACITY,
            code_cache_entries: 256,
            code_cache_bytes: 64 << 20,
            key_grace_secs: Self::DEFAULT_KEY_GRACE_SECS,
            sandbox: SandboxSettings::default(),
            egress: crate::egress::EgressConfig::default(),
            max_job_bytes: 32 << 20,
            async_result_entries: 4096,
            async_result_bytes: 64 << 20,
            async_result_secs: 3_600,
            insecure_plaintext_bench: false,
            data_dir: None,
            max_clock_regression_secs: Self::DEFAULT_MAX_CLOCK_REGRESSION_SECS,
            answer_burst_below: std::time::Duration::from_millis(1),
        }
    }

    /// The accepted date window of a request sealed with `mode`, seconds (±); also how long
    /// after its `date` the replay cache remembers it.
    #[must_use]
    pub fn date_window_for(&self, mode: InvokeMode) -> u64 {
        match mode {
            InvokeMode::Async => self.async_date_window_secs.max(self.date_window_secs),
            InvokeMode::Sync => self.date_window_secs,
        }
    }

    /// The widest replay window any request can have, seconds (the asynchronous one).
    #[must_use]
    pub fn replay_window_secs(&self) -> u64 {
        self.async_date_window_secs.max(self.date_window_secs)
    }

    /// The `clave dev` configuration: the KDS may be the insecure simulated TEE with exactly
    /// `kds_measurement`. Anyone can forge such evidence; never use it outside development.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid measurement.
    pub fn insecure_dev(kds_measurement: clave_attest::Measurement) -> Result<Self, Error> {
        let policy =
            Policy::insecure_dev([kds_measurement]).map_err(|e| Error::Config(e.to_string()))?;
        Ok(Self::new(policy))
    }

    pub(super) fn validate(&self) -> Result<(), Error> {
        self.kds_policy
            .validate()
            .map_err(|e| Error::Config(format!("kds_policy: {e}")))?;
        if self.replay_capacity == 0 {
            return Err(Error::Config("replay_capacity must be positive".into()));
        }
        Ok(())
    }
}
