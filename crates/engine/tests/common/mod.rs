//! Shared fixtures: a real `clave_kds::Kds` behind an in-process fake `KdsClient`, a simulated
//! engine attester, a counting runner over the real sandbox, and deploy/invoke helpers.
#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use clave_attest::{InsecureSimulatedAttester, Measurement, Policy};
use clave_engine::{
    BoxFuture, Engine, EngineConfig, KdsClient, KdsError, RunReport, RunRequest, Runner,
    SandboxRunner, SandboxSettings,
};
use clave_kds::{InsecureSimulatedSealer, Kds, KdsConfig};
use clave_proto::bundle::KeyBundle;
use clave_proto::code::{Limits, Manifest, seal_code};
use clave_proto::gateway_api::EngineJob;
use clave_proto::kds_api::{
    self, AttestationResponse, KeysResponse, NonceResponse, RELEASE_HPKE_INFO, ReleaseRequest,
    ReleaseResponse,
};
use clave_proto::spec::KeyPurpose;
use clave_proto::{
    CodeHash, InvokeError, InvokeMode, InvokeRequest, InvokeResponse, InvokeResponseOpener,
    KeyConfig, seal_invoke,
};
use ed25519_dalek::VerifyingKey;

/// A fixed test time (unix seconds), in the middle of a one-day epoch.
pub const NOW: u64 = 1_750_000_000;

pub fn rng() -> impl rand_core::CryptoRng + Send + 'static {
    rand_core::UnwrapErr(rand::rngs::SysRng)
}

pub fn engine_measurement() -> Measurement {
    Measurement(vec![0xE1; 32])
}

pub fn kds_measurement() -> Measurement {
    Measurement(vec![0xA1; 32])
}

pub fn open_kds(dir: &Path) -> Arc<Kds> {
    let engine = Policy::insecure_dev([engine_measurement()]).expect("engine policy");
    let config = KdsConfig::new(engine.clone(), engine);
    let m = kds_measurement();
    Arc::new(
        Kds::open(
            dir,
            Box::new(InsecureSimulatedSealer::new(m.as_bytes())),
            Box::new(InsecureSimulatedAttester::new(m).expect("attester")),
            config,
            NOW,
            rng(),
        )
        .expect("open kds"),
    )
}

/// How the fake KDS misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tamper {
    /// Honest.
    None,
    /// Releases a random private key (properly sealed) instead of the spec's.
    WrongReleasedKey,
    /// Claims another identity key than the one its evidence binds.
    SwapIdentity,
}

/// The in-process `KdsClient` over a real `Kds` (what the CLI's adapter does), with a shared
/// clock and optional tampering.
pub struct FakeKds {
    pub kds: Arc<Kds>,
    pub clock: Arc<AtomicU64>,
    pub tamper: Mutex<Tamper>,
    pub releases: AtomicUsize,
}

fn to_kds_error(e: clave_kds::Error) -> KdsError {
    KdsError::Refused {
        status: clave_kds::service::status_of(&e).as_u16(),
        slug: e.slug().to_owned(),
        detail: None,
    }
}

impl FakeKds {
    pub fn new(kds: Arc<Kds>, clock: Arc<AtomicU64>) -> Self {
        Self {
            kds,
            clock,
            tamper: Mutex::new(Tamper::None),
            releases: AtomicUsize::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    fn tamper(&self) -> Tamper {
        *self.tamper.lock().expect("lock")
    }
}

impl KdsClient for FakeKds {
    fn attestation(&self, nonce: Vec<u8>) -> BoxFuture<'_, Result<AttestationResponse, KdsError>> {
        Box::pin(async move {
            let mut att = self.kds.attestation(&nonce).map_err(to_kds_error)?;
            if self.tamper() == Tamper::SwapIdentity {
                att.identity_public_key[0] ^= 1;
            }
            Ok(att)
        })
    }

    fn keys(&self) -> BoxFuture<'_, Result<KeysResponse, KdsError>> {
        Box::pin(async move { self.kds.keys(self.now()).map_err(to_kds_error) })
    }

    fn nonce(&self) -> BoxFuture<'_, Result<NonceResponse, KdsError>> {
        Box::pin(async move { Ok(self.kds.new_nonce(self.now())) })
    }

    fn release(&self, req: ReleaseRequest) -> BoxFuture<'_, Result<ReleaseResponse, KdsError>> {
        Box::pin(async move {
            self.releases.fetch_add(1, Ordering::SeqCst);
            let mut resp = self.kds.release(&req, self.now()).map_err(to_kds_error)?;
            if self.tamper() == Tamper::WrongReleasedKey {
                let mut other = [0u8; 32];
                rand::fill(&mut other[..]);
                let (enc, sealed) = kds_api::seal_to_ephemeral(
                    &req.ephemeral_public_key,
                    RELEASE_HPKE_INFO,
                    &resp.spec_id,
                    &other,
                    &mut rng(),
                )
                .expect("seal");
                resp.enc = enc;
                resp.sealed_key = sealed;
            }
            Ok(resp)
        })
    }
}

/// A runner over the real sandbox that counts calls and keeps console lines (test only).
pub struct CountingRunner {
    pub inner: SandboxRunner,
    pub runs: AtomicUsize,
    /// Runs that have returned.
    pub finished: AtomicUsize,
    pub console: Mutex<Vec<String>>,
}

impl Runner for CountingRunner {
    fn run(&self, call: RunRequest) -> BoxFuture<'_, RunReport> {
        Box::pin(async move {
            self.runs.fetch_add(1, Ordering::SeqCst);
            let r = self.inner.run(call).await;
            self.finished.fetch_add(1, Ordering::SeqCst);
            self.console
                .lock()
                .expect("lock")
                .extend(r.console.iter().map(|(_, t)| t.clone()));
            r
        })
    }
}

/// Everything a test needs.
pub struct Harness {
    pub _dir: tempfile::TempDir,
    pub kds: Arc<Kds>,
    pub fake: Arc<FakeKds>,
    pub clock: Arc<AtomicU64>,
    pub runner: Arc<CountingRunner>,
    pub engine: Arc<Engine>,
}

pub fn engine_attester() -> Box<InsecureSimulatedAttester> {
    Box::new(InsecureSimulatedAttester::new(engine_measurement()).expect("attester"))
}

/// A harness whose engine has not fetched keys yet.
pub fn harness_with(config: EngineConfig) -> Harness {
    harness_with_sandbox(
        config,
        SandboxSettings {
            workers: 1,
            ..SandboxSettings::default()
        },
    )
}

/// [`harness_with`] with these sandbox settings.
pub fn harness_with_sandbox(config: EngineConfig, settings: SandboxSettings) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let kds = open_kds(dir.path());
    let clock = Arc::new(AtomicU64::new(NOW));
    let fake = Arc::new(FakeKds::new(kds.clone(), clock.clone()));
    let runner = Arc::new(CountingRunner {
        inner: SandboxRunner::new(&settings).expect("sandbox"),
        runs: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
        console: Mutex::new(Vec::new()),
    });
    let c = clock.clone();
    let engine = Engine::with_runner(config, fake.clone(), engine_attester(), runner.clone())
        .expect("engine")
        .with_clock(Arc::new(move || c.load(Ordering::SeqCst)));
    Harness {
        _dir: dir,
        kds,
        fake,
        clock,
        runner,
        engine: Arc::new(engine),
    }
}

pub fn dev_config() -> EngineConfig {
    EngineConfig::insecure_dev(kds_measurement()).expect("config")
}

/// A harness whose engine holds keys.
pub async fn ready_harness() -> Harness {
    let h = harness_with(dev_config());
    h.engine.refresh(NOW).await.expect("keys");
    h
}

/// A deployed function (what the gateway stores).
#[derive(Clone)]
pub struct Deployed {
    pub name: String,
    pub manifest: Vec<u8>,
    pub sealed_code: Vec<u8>,
    pub code_hash: CodeHash,
}

impl Harness {
    pub fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// The verified bundles the client would use at the current time.
    pub fn bundles(&self) -> Vec<KeyBundle> {
        let now = self.now();
        let keys = self.kds.keys(now).expect("keys");
        let vk = VerifyingKey::from_bytes(&keys.identity_public_key).expect("vk");
        keys.bundles
            .iter()
            .filter_map(|b| KeyBundle::verify(b, &vk, now).ok())
            .collect()
    }

    pub fn key_config(&self, purpose: KeyPurpose) -> KeyConfig {
        self.bundles()
            .into_iter()
            .find(|b| b.spec.purpose == purpose)
            .expect("bundle")
            .key_config
    }

    /// Seal `code` as function `name` (the developer's `clave deploy`).
    pub fn deploy(&self, name: &str, code: &str, limits: Limits) -> Deployed {
        let code_hash = CodeHash::of(code.as_bytes());
        let manifest = Manifest {
            vars: Default::default(),
            secrets: Vec::new(),
            log_key: None,
            name: name.parse().expect("name"),
            project: Some("default".parse().expect("project")),
            code_hash,
            entry: "index.js".into(),
            limits,
            created: self.now(),
            outbound: Vec::new(),
        }
        .to_bytes();
        let sealed = seal_code(
            &self.key_config(KeyPurpose::Code),
            &manifest,
            code.as_bytes(),
            &mut rng(),
        )
        .expect("seal code");
        Deployed {
            name: name.into(),
            manifest,
            sealed_code: sealed.to_bytes(),
            code_hash,
        }
    }

    /// The user's sealed request for `function` pinned to `pin`.
    pub fn seal_request(
        &self,
        function: &str,
        pin: CodeHash,
        date: u64,
        body: &[u8],
    ) -> (Vec<u8>, InvokeResponseOpener) {
        self.seal_request_mode(function, pin, date, body, InvokeMode::Sync)
    }

    /// The user's sealed request for an asynchronous call (`clave-mode: async`).
    pub fn seal_async_request(
        &self,
        function: &str,
        pin: CodeHash,
        date: u64,
        body: &[u8],
    ) -> (Vec<u8>, InvokeResponseOpener) {
        self.seal_request_mode(function, pin, date, body, InvokeMode::Async)
    }

    /// The user's sealed request with the given sealed mode.
    pub fn seal_request_mode(
        &self,
        function: &str,
        pin: CodeHash,
        date: u64,
        body: &[u8],
        mode: InvokeMode,
    ) -> (Vec<u8>, InvokeResponseOpener) {
        let mut req = InvokeRequest::new(
            "default".parse().expect("project"),
            function.parse().expect("function"),
            pin,
            date,
            body.to_vec(),
        );
        req.mode = mode;
        req.headers
            .push(("content-type".into(), "application/json".into()));
        seal_invoke(&self.key_config(KeyPurpose::Invoke), &req, &mut rng()).expect("seal")
    }

    /// The job the gateway hands to the engine.
    pub fn job(&self, routed: &Deployed, request: Vec<u8>) -> EngineJob {
        EngineJob {
            project: "default".into(),
            function: routed.name.clone(),
            version: 1,
            manifest: routed.manifest.clone().into(),
            sealed_code: routed.sealed_code.clone().into(),
            request: request.into(),
            ..EngineJob::default()
        }
    }

    /// Seal a request for `d`, run it, and open the answer.
    pub async fn call(&self, d: &Deployed, body: &[u8]) -> Result<InvokeResponse, InvokeError> {
        self.call_with_secrets(d, body, Vec::new()).await
    }

    /// [`Harness::call`] with the gateway handing over `secrets` (a `SecretSet` encoding).
    pub async fn call_with_secrets(
        &self,
        d: &Deployed,
        body: &[u8],
        secrets: Vec<u8>,
    ) -> Result<InvokeResponse, InvokeError> {
        let (enc, opener) = self.seal_request(&d.name, d.code_hash, self.now(), body);
        let mut job = self.job(d, enc);
        job.secrets = secrets.into();
        let sealed = self
            .engine
            .invoke(job, self.now())
            .await
            .expect("engine answers");
        opener.open(&sealed).expect("user opens the answer")
    }

    pub fn runs(&self) -> usize {
        self.runner.runs.load(Ordering::SeqCst)
    }
}

pub fn fast_limits() -> Limits {
    Limits {
        cpu_ms: 300,
        ..Limits::default()
    }
}

pub const ECHO: &str = r#"export default {
  async fetch(request) {
    const body = await request.json();
    return Response.json({ echo: body, path: new URL(request.url).pathname,
                           type: request.headers.get("content-type") });
  }
};"#;

pub const UPPER: &str = r#"export default {
  async fetch(request) {
    const text = await request.text();
    return new Response(text.toUpperCase(), { status: 201, headers: { "x-kind": "upper" } });
  }
};"#;

pub const MARKER: &str = r#"export default {
  async fetch(request) {
    console.log("MARKER: the function ran");
    return new Response("ran");
  }
};"#;

pub const SPIN: &str = r#"export default {
  async fetch(request) {
    while (true) {}
  }
};"#;
