//! The HTTP client: fetch and verify, deploy, invoke, manage functions.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clave_attest::{Evidence, Measurement, TeeKind};
use clave_proto::code::{Limits, Manifest, seal_code};
use clave_proto::gateway_api::{
    AsyncAccepted, DeployRequest, DeployResponse, OHTTP_REQUEST_CONTENT_TYPE, Problem,
    is_valid_result_id,
};
use clave_proto::invoke::{
    InvokeMode, InvokeRequest, InvokeResponse, InvokeResponseOpener, ProblemKind, seal_invoke,
};
use clave_proto::kds_api::{AttestationResponse, KeysResponse};
use clave_proto::{CodeHash, FunctionName, ProjectName};
use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;
use serde::de::DeserializeOwned;

use crate::error::{AttestationError, ClientError, LimitKind, Result};
use crate::target::Target;
use crate::trust::TrustPolicy;
use crate::verify::{Verified, verify_platform};

/// Largest answer read from a gateway (bytes).
const MAX_ANSWER: usize = 16 << 20;

/// The current time in unix seconds.
pub use clave_attest::unix_now as now_unix;

pub(crate) fn rng() -> UnwrapErr<SysRng> {
    UnwrapErr(SysRng)
}

/// What the platform claims about its KDS, *before* any verification. For diagnostics only
/// (e.g. to tell a user that the platform is simulated); never a basis for trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnverifiedClaim {
    /// The TEE kind the evidence claims.
    pub kind: TeeKind,
    /// The measurement it claims, when the evidence decodes that far.
    pub measurement: Option<Measurement>,
}

/// What a deploy puts into the manifest besides the code: see [`Manifest`]'s fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeployEnv {
    /// Plain values the function reads as `env.NAME` (visible to the operator).
    pub vars: std::collections::BTreeMap<String, String>,
    /// Names of the sealed secrets the function may read as `env.NAME`.
    pub secrets: Vec<String>,
    /// The developer log key the engine seals each call's log record to.
    pub log_key: Option<clave_proto::devlog::LogPublicKey>,
    /// Hosts the function's `fetch()` may reach (empty: none).
    pub outbound: Vec<clave_proto::HostPattern>,
}

/// A deployed version, as the gateway recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployed {
    /// The gateway's answer (project, function, version, active version).
    pub response: DeployResponse,
    /// The SHA-256 of the code: what users pin.
    pub code_hash: CodeHash,
    /// The exact manifest bytes that were uploaded.
    pub manifest: Vec<u8>,
}

/// A clave client bound to one gateway and one trust policy.
///
/// Nothing is ever sealed to a key that [`Client::verify`] has not checked under the trust
/// policy; verified results are cached for [`TrustPolicy::max_age`].
pub struct Client {
    pub(crate) http: reqwest::Client,
    base: String,
    trust: TrustPolicy,
    cache: Mutex<Option<Arc<Verified>>>,
    /// The next call's request encapsulation, made while the previous call was in flight (its
    /// X25519 work, ~45 µs, is then off the call's path), with the id of the process that made
    /// it. Taken by exactly one call, and only in that process: after a `fork`, two copies of it
    /// would seal two requests under one key and nonce.
    spare: Mutex<Option<(u32, clave_proto::PreparedRequest)>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("gateway", &self.base)
            .field("trust", &self.trust)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the gateway at `gateway_url` (`http://127.0.0.1:8787`, `https://...`).
    ///
    /// # Errors
    /// [`ClientError::InvalidInput`] for a URL that is not http(s).
    pub fn new(gateway_url: &str, trust: TrustPolicy) -> Result<Self> {
        let base = gateway_url.trim().trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base).map_err(|e| {
            ClientError::InvalidInput(format!("the gateway URL {gateway_url:?} is invalid: {e}"))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(ClientError::InvalidInput(format!(
                "the gateway URL {gateway_url:?} must start with http:// or https://"
            )));
        }
        clave_proto::rt::ensure_rustls_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| ClientError::InvalidInput(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            trust,
            cache: Mutex::new(None),
            spare: Mutex::new(None),
        })
    }

    /// The gateway URL.
    #[must_use]
    pub fn gateway_url(&self) -> &str {
        &self.base
    }

    /// The trust policy.
    #[must_use]
    pub fn trust(&self) -> &TrustPolicy {
        &self.trust
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn transport(&self, e: &reqwest::Error) -> ClientError {
        let reason = if e.is_connect() {
            "connection refused or host unreachable".to_owned()
        } else if e.is_timeout() {
            "timed out".to_owned()
        } else {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s = format!("{s}: {inner}");
                src = inner.source();
            }
            s
        };
        ClientError::Transport {
            url: self.base.clone(),
            reason,
        }
    }

    /// Send a request, read the body (bounded), and turn an error status into
    /// [`ClientError::Gateway`].
    pub(crate) async fn send(&self, req: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>)> {
        let mut resp = req.send().await.map_err(|e| self.transport(&e))?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport(&e))? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(ClientError::Protocol(
                    "the gateway's answer is too large".into(),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        if !(200..300).contains(&status) {
            let problem = serde_json::from_slice::<Problem>(&body).ok();
            return Err(ClientError::Gateway { status, problem });
        }
        Ok((status, body))
    }

    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> Result<T> {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let (_, body) = self.send(req).await?;
        parse_json(&body, path)
    }

    async fn fetch_attestation(&self, nonce_hex: &str) -> Result<AttestationResponse> {
        let path = format!("/v1/attestation?nonce={nonce_hex}");
        self.get_json(&path, None).await.map_err(|e| match e {
            ClientError::Protocol(m) => AttestationError::Malformed(m).into(),
            other => other,
        })
    }

    async fn fetch_keys(&self) -> Result<KeysResponse> {
        self.get_json("/v1/keys", None).await.map_err(|e| match e {
            ClientError::Protocol(m) => AttestationError::Malformed(m).into(),
            other => other,
        })
    }

    /// What the platform's KDS evidence *claims*, without verifying anything. Useful to explain
    /// a refusal; never a basis for trust.
    ///
    /// # Errors
    /// Transport and gateway errors; [`AttestationError::Evidence`] when it does not decode.
    pub async fn probe(&self) -> Result<UnverifiedClaim> {
        let nonce = hex::encode(fresh_nonce());
        let att = self.fetch_attestation(&nonce).await?;
        let evidence = Evidence::from_bytes(&att.evidence).map_err(AttestationError::Evidence)?;
        let measurement = clave_attest::verify_evidence(&evidence)
            .ok()
            .map(|c| c.measurement);
        Ok(UnverifiedClaim {
            kind: evidence.kind(),
            measurement,
        })
    }

    /// Fetch the KDS evidence for a fresh nonce and the key bundles, verify both under the trust
    /// policy at `now` (see [`verify_platform`]), and cache the result.
    ///
    /// # Errors
    /// [`ClientError::Attestation`] when anything fails to verify; transport and gateway errors.
    pub async fn verify(&self, now: u64) -> Result<Arc<Verified>> {
        let nonce = fresh_nonce();
        // Both at once: neither depends on the other (the bundles are checked against the
        // attested identity below), and a first call waits for the slower, not for the sum.
        let nonce_hex = hex::encode(nonce);
        let (attestation, keys) =
            tokio::try_join!(self.fetch_attestation(&nonce_hex), self.fetch_keys())?;
        let verified = Arc::new(verify_platform(
            &self.trust,
            &nonce,
            &attestation,
            &keys,
            now,
        )?);
        *lock(&self.cache) = Some(verified.clone());
        Ok(verified)
    }

    /// The cached verification if it is younger than the trust policy's max age (and its keys
    /// still valid), else a fresh [`Client::verify`].
    ///
    /// # Errors
    /// As [`Client::verify`].
    pub async fn verified(&self, now: u64) -> Result<Arc<Verified>> {
        let cached = lock(&self.cache).clone();
        if let Some(v) = cached
            && now >= v.verified_at
            && now <= v.usable_until(self.trust.max_age.as_secs())
            && v.invoke_key(now).is_some()
        {
            return Ok(v);
        }
        self.verify(now).await
    }

    /// Seal `code` to the verified code key and upload it as a new version of
    /// `project/name` (made active). `entry` names the module (e.g. `index.js`).
    ///
    /// # Errors
    /// Invalid names; attestation, transport and gateway errors.
    pub async fn deploy(
        &self,
        project: &str,
        name: &str,
        entry: &str,
        code: &[u8],
        limits: Limits,
        token: &str,
    ) -> Result<Deployed> {
        self.deploy_with_env(
            project,
            name,
            entry,
            code,
            limits,
            &DeployEnv::default(),
            token,
        )
        .await
    }

    /// [`Client::deploy`] with the manifest's `vars`, secret names, developer log key and
    /// outbound hosts.
    ///
    /// # Errors
    /// As [`Client::deploy`]; [`ClientError::InvalidInput`] for bad var or secret names, or more
    /// than [`clave_proto::outbound::MAX_OUTBOUND_HOSTS`] outbound patterns.
    #[allow(clippy::too_many_arguments)]
    pub async fn deploy_with_env(
        &self,
        project: &str,
        name: &str,
        entry: &str,
        code: &[u8],
        limits: Limits,
        env: &DeployEnv,
        token: &str,
    ) -> Result<Deployed> {
        clave_proto::outbound::check_list(&env.outbound)
            .map_err(|e| ClientError::InvalidInput(e.to_string()))?;
        let project = parse_project(project)?;
        let function = parse_function(name)?;
        let now = now_unix();
        let verified = self.verified(now).await?;
        let manifest = Manifest {
            vars: env.vars.clone(),
            secrets: env.secrets.clone(),
            log_key: env.log_key.map(|k| k.to_hex()),
            name: function.clone(),
            project: Some(project.clone()),
            code_hash: CodeHash::of(code),
            entry: entry.to_owned(),
            limits,
            created: now,
            outbound: env.outbound.clone(),
        };
        manifest
            .check_env()
            .map_err(|e| ClientError::InvalidInput(e.to_string()))?;
        let manifest_bytes = manifest.to_bytes();
        let sealed = seal_code(
            &verified.code_key.key_config,
            &manifest_bytes,
            code,
            &mut rng(),
        )
        .map_err(|e| ClientError::Protocol(format!("cannot seal the code: {e}")))?;
        let body = DeployRequest::new(&manifest_bytes, &sealed.to_bytes());
        let req = self
            .http
            .put(self.url(&format!("/v1/projects/{project}/functions/{function}")))
            .bearer_auth(token)
            .json(&body);
        let (_, answer) = self.send(req).await?;
        let response: DeployResponse = parse_json(&answer, "deploy")?;
        Ok(Deployed {
            response,
            code_hash: manifest.code_hash,
            manifest: manifest_bytes,
        })
    }

    /// Invoke `project/name` with `body` and `headers`, pinned to `code_hash`: seal to the
    /// verified invoke key, post, and open the answer.
    ///
    /// # Errors
    /// [`ClientError::Gateway`] (unknown function, overload...), [`ClientError::HashRefused`],
    /// [`ClientError::FunctionThrew`], [`ClientError::LimitHit`],
    /// [`ClientError::EngineRefused`], attestation and transport errors.
    pub async fn invoke(
        &self,
        project: &str,
        name: &str,
        body: &[u8],
        headers: &[(String, String)],
        code_hash: &CodeHash,
    ) -> Result<InvokeResponse> {
        self.invoke_target(project, name, &Target::default(), body, headers, code_hash)
            .await
    }

    /// [`Client::invoke`] with a method and a path and query for the function
    /// (`request.method`, `request.url`).
    ///
    /// # Errors
    /// As [`Client::invoke`]; [`ClientError::InvalidInput`] for a method that is not an HTTP
    /// token or a path that is not `/…` or `?…` of visible ASCII.
    pub async fn invoke_target(
        &self,
        project: &str,
        name: &str,
        target: &Target,
        body: &[u8],
        headers: &[(String, String)],
        code_hash: &CodeHash,
    ) -> Result<InvokeResponse> {
        let (_, opener, answer) = self
            .send_call(
                project,
                name,
                target,
                body,
                headers,
                code_hash,
                InvokeMode::Sync,
            )
            .await?;
        open_answer(&opener, &answer)
    }

    /// Submit an asynchronous call (`?mode=async`): the request is sealed with
    /// `clave-mode: async` (so the engine gives it the wider date window of queued calls) and
    /// waits, still sealed, in the platform's durable queue. The returned [`PendingCall`] holds
    /// the only key that opens the answer; fetch it with [`Client::poll_result`] or
    /// [`Client::wait_result`].
    ///
    /// # Errors
    /// [`ClientError::Gateway`] (asynchronous calls not enabled, unknown function, overload),
    /// attestation and transport errors.
    pub async fn invoke_async(
        &self,
        project: &str,
        name: &str,
        body: &[u8],
        headers: &[(String, String)],
        code_hash: &CodeHash,
    ) -> Result<PendingCall> {
        self.invoke_async_target(project, name, &Target::default(), body, headers, code_hash)
            .await
    }

    /// [`Client::invoke_async`] with a method and a path and query for the function.
    ///
    /// # Errors
    /// As [`Client::invoke_async`] and [`Client::invoke_target`].
    pub async fn invoke_async_target(
        &self,
        project: &str,
        name: &str,
        target: &Target,
        body: &[u8],
        headers: &[(String, String)],
        code_hash: &CodeHash,
    ) -> Result<PendingCall> {
        let (project, opener, answer) = self
            .send_call(
                project,
                name,
                target,
                body,
                headers,
                code_hash,
                InvokeMode::Async,
            )
            .await?;
        let accepted: AsyncAccepted = parse_json(&answer, "asynchronous invoke")?;
        if !is_valid_result_id(&accepted.id) {
            return Err(ClientError::Protocol(format!(
                "the gateway answered an invalid result id {:?}",
                accepted.id
            )));
        }
        Ok(PendingCall {
            project,
            id: accepted.id,
            opener,
        })
    }

    /// One look at an asynchronous call's result: `Ok(None)` while it is pending, the opened
    /// answer once the engine has run it.
    ///
    /// # Errors
    /// As [`Client::invoke`]; [`ClientError::Gateway`] with status 404 once the result has
    /// expired (or for an unknown id).
    pub async fn poll_result(&self, call: &PendingCall) -> Result<Option<InvokeResponse>> {
        let req = self.http.get(self.url(&format!(
            "/v1/projects/{}/results/{}",
            call.project, call.id
        )));
        let (status, answer) = self.send(req).await?;
        if status == 202 {
            return Ok(None);
        }
        open_answer(&call.opener, &answer).map(Some)
    }

    /// Poll an asynchronous call's result every `interval` until it is there or `timeout` has
    /// passed.
    ///
    /// # Errors
    /// As [`Client::poll_result`]; [`ClientError::Timeout`] when the call is still pending at
    /// `timeout` (it may still run: poll again later with the same [`PendingCall`]).
    pub async fn wait_result(
        &self,
        call: &PendingCall,
        timeout: std::time::Duration,
        interval: std::time::Duration,
    ) -> Result<InvokeResponse> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(resp) = self.poll_result(call).await? {
                return Ok(resp);
            }
            if tokio::time::Instant::now() + interval > deadline {
                return Err(ClientError::Timeout {
                    what: format!("the result of asynchronous call {}", call.id),
                    after: timeout,
                });
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Verify, seal a call for `project/name` with the given sealed mode and post it to the
    /// function's invoke route (`?mode=async` for an asynchronous call): the project, the key
    /// that opens the answer, and the gateway's answer (still sealed for a synchronous call).
    #[allow(clippy::too_many_arguments)]
    async fn send_call(
        &self,
        project: &str,
        name: &str,
        target: &Target,
        body: &[u8],
        headers: &[(String, String)],
        code_hash: &CodeHash,
        mode: InvokeMode,
    ) -> Result<(ProjectName, InvokeResponseOpener, Vec<u8>)> {
        let project = parse_project(project)?;
        let function = parse_function(name)?;
        let now = now_unix();
        let verified = self.verified(now).await?;
        let key = verified
            .invoke_key(now)
            .ok_or(AttestationError::MissingKey("invoke"))?;
        let request = InvokeRequest::new(
            project.clone(),
            function.clone(),
            *code_hash,
            now,
            body.to_vec(),
        );
        let mut request = request
            .with_target(&target.method, &target.path)
            .map_err(|e| ClientError::InvalidInput(format!("cannot build the request: {e}")))?;
        request.mode = mode;
        request.headers = headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        let spare = self.take_spare(&key.key_config);
        let (enc, opener) = match spare {
            Some(prepared) => clave_proto::seal_invoke_prepared(prepared, &request),
            None => seal_invoke(&key.key_config, &request, &mut rng()),
        }
        .map_err(|e| ClientError::InvalidInput(format!("cannot build the request: {e}")))?;
        let query = match mode {
            InvokeMode::Sync => "",
            InvokeMode::Async => "?mode=async",
        };
        let req = self
            .http
            .post(self.url(&format!(
                "/v1/projects/{project}/functions/{function}/invoke{query}"
            )))
            .header(reqwest::header::CONTENT_TYPE, OHTTP_REQUEST_CONTENT_TYPE)
            .body(enc);
        // While this call is in flight, the next one's encapsulation (after a yield, so that a
        // single-threaded runtime writes this request first).
        let config = key.key_config.clone();
        let (sent, ()) = tokio::join!(self.send(req), async {
            tokio::task::yield_now().await;
            self.prepare_spare(&config);
        });
        let (_, answer) = sent?;
        Ok((project, opener, answer))
    }

    /// The spare encapsulation if it was made for `config` (one made for an earlier epoch's key
    /// is dropped).
    fn take_spare(&self, config: &clave_proto::KeyConfig) -> Option<clave_proto::PreparedRequest> {
        let spare = lock(&self.spare).take();
        spare
            .filter(|(pid, p)| *pid == std::process::id() && p.is_for(config))
            .map(|(_, p)| p)
    }

    /// Make a spare encapsulation for `config` unless one of this process is waiting already.
    /// Two calls finishing at once may both prepare one; the later replaces the earlier (CPU
    /// spent twice, nothing used twice).
    fn prepare_spare(&self, config: &clave_proto::KeyConfig) {
        let pid = std::process::id();
        if lock(&self.spare)
            .as_ref()
            .is_some_and(|(p, s)| *p == pid && s.is_for(config))
        {
            return;
        }
        // A configuration the platform attested but that cannot be prepared (an X-Wing key) is
        // sealed per call instead.
        if let Ok(prepared) = clave_proto::prepare_request(config, &mut rng()) {
            *lock(&self.spare) = Some((pid, prepared));
        }
    }
}

/// The guard of `m`, also after a panic elsewhere (the values are replaced whole).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn fresh_nonce() -> [u8; 32] {
    use rand::Rng as _;
    let mut n = [0u8; 32];
    rng().fill_bytes(&mut n);
    n
}

pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| ClientError::Protocol(format!("unexpected answer to {what}: {e}")))
}

pub(crate) fn parse_project(s: &str) -> Result<ProjectName> {
    s.parse()
        .map_err(|e| ClientError::InvalidInput(format!("{s:?} is not a valid project name: {e}")))
}

pub(crate) fn parse_function(s: &str) -> Result<FunctionName> {
    s.parse()
        .map_err(|e| ClientError::InvalidInput(format!("{s:?} is not a valid function name: {e}")))
}

/// An asynchronous call that was accepted: its result id and the key that opens its answer
/// (only this caller has it). `Debug` shows the id only.
pub struct PendingCall {
    project: ProjectName,
    id: String,
    opener: InvokeResponseOpener,
}

impl PendingCall {
    /// The result id the gateway assigned (32 lowercase hex characters).
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl std::fmt::Debug for PendingCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingCall")
            .field("project", &self.project)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Open a sealed answer and map engine problems onto [`ClientError`].
fn open_answer(opener: &InvokeResponseOpener, answer: &[u8]) -> Result<InvokeResponse> {
    let opened = opener
        .open(answer)
        .map_err(|e| ClientError::Protocol(format!("the encrypted answer does not open: {e}")))?;
    match opened {
        Ok(resp) => Ok(resp),
        Err(problem) => Err(match problem.kind {
            ProblemKind::CodeHashMismatch => ClientError::HashRefused {
                detail: problem.detail,
            },
            ProblemKind::ScriptError => ClientError::FunctionThrew {
                message: problem.detail.unwrap_or(problem.title),
            },
            ProblemKind::Timeout => ClientError::LimitHit {
                kind: LimitKind::CpuTime,
            },
            ProblemKind::OutOfMemory => ClientError::LimitHit {
                kind: LimitKind::Memory,
            },
            ProblemKind::LimitExceeded => ClientError::LimitHit {
                kind: LimitKind::Other(problem.detail.unwrap_or_default()),
            },
            other => ClientError::EngineRefused {
                slug: other.slug().to_owned(),
                status: problem.status,
                title: problem.title,
                detail: problem.detail,
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clave_attest::Policy;
    use clave_proto::{KeyPurpose, KeySpec, MasterSecret};

    fn config(epoch: u64) -> clave_proto::KeyConfig {
        let policy = Policy::insecure_dev([Measurement(vec![0xab; 48])]).expect("policy");
        clave_proto::derive::derive_key(
            &MasterSecret::from_bytes([0x11; 32]),
            &KeySpec::new(KeyPurpose::Invoke, policy, epoch),
        )
        .expect("derive")
        .key_config
    }

    #[test]
    fn a_spare_encapsulation_serves_one_call_of_its_own_key() {
        let trust = TrustPolicy::insecure_dev(Measurement(vec![1; 48]), [Measurement(vec![2; 48])])
            .expect("trust");
        let client = Client::new("http://127.0.0.1:9", trust).expect("client");
        let (today, tomorrow) = (config(1), config(2));
        assert!(client.take_spare(&today).is_none());
        client.prepare_spare(&today);
        // Taken once, then gone.
        let spare = client.take_spare(&today).expect("prepared");
        assert!(spare.is_for(&today));
        assert!(client.take_spare(&today).is_none());
        // One made for another key is dropped, not used.
        client.prepare_spare(&today);
        assert!(client.take_spare(&tomorrow).is_none());
        assert!(client.take_spare(&today).is_none());
        // Preparing again keeps a waiting spare of the same key (no needless X25519 work: the
        // same `enc`) and replaces one of another key.
        client.prepare_spare(&today);
        let first = waiting_enc(&client);
        client.prepare_spare(&today);
        assert_eq!(waiting_enc(&client), first, "kept, not prepared again");
        client.prepare_spare(&tomorrow);
        assert_ne!(waiting_enc(&client), first);
        assert!(client.take_spare(&tomorrow).is_some());

        // A spare made by another process (a copy of this one after `fork`) is never used.
        client.prepare_spare(&today);
        if let Some((pid, _)) = lock(&client.spare).as_mut() {
            *pid = pid.wrapping_add(1);
        }
        assert!(client.take_spare(&today).is_none());
        client.prepare_spare(&today);
        assert!(client.take_spare(&today).is_some());
    }

    fn waiting_enc(client: &Client) -> Vec<u8> {
        lock(&client.spare)
            .as_ref()
            .map(|(_, p)| p.enc().to_vec())
            .expect("a spare is waiting")
    }
}
