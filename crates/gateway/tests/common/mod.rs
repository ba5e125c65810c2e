//! Shared fakes and helpers for the gateway's boundary tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use clave_gateway::{
    AppState, BoxFuture, DispatchError, EngineClient, GatewayConfig, InvokeJob, KeySource,
    KeySourceError, Store,
};
use clave_proto::gateway_api::{DeployRequest, Problem};
use tower::ServiceExt;

pub mod services;

pub const ADMIN_TOKEN: &str = "admin-secret-token-for-tests";

/// Engine fake: answers `"{project}/{function}@{version}|{sealed_code}|"` + the request reversed.
/// A request starting with `BADENV` is refused as an undecryptable envelope; `FAILME` fails after running.
/// With a gate, each call waits for one gate permit before answering.
#[derive(Default)]
pub struct FakeEngine {
    pub started: AtomicUsize,
    /// Calls that carried `JobFlags::ASYNC`.
    pub async_calls: AtomicUsize,
    pub finished: AtomicUsize,
    pub gate: Option<Arc<tokio::sync::Semaphore>>,
    /// The sealed secret set of the last job.
    pub last_secrets: std::sync::Mutex<Vec<u8>>,
    /// How long each call holds its thread before answering (a long call run inline).
    pub busy: Option<Duration>,
}

impl FakeEngine {
    pub fn gated() -> (Arc<Self>, Arc<tokio::sync::Semaphore>) {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        (
            Arc::new(Self {
                gate: Some(gate.clone()),
                ..Self::default()
            }),
            gate,
        )
    }

    pub fn transform(job: &InvokeJob) -> Vec<u8> {
        let mut out = format!("{}/{}@{}|", job.project, job.function, job.version).into_bytes();
        out.extend_from_slice(&job.sealed_code);
        out.push(b'|');
        out.extend(job.request.iter().rev());
        out
    }
}

impl EngineClient for FakeEngine {
    fn invoke(&self, job: InvokeJob) -> BoxFuture<'_, Result<Vec<u8>, DispatchError>> {
        Box::pin(async move {
            self.started.fetch_add(1, Ordering::SeqCst);
            *self.last_secrets.lock().unwrap() = job.secrets.to_vec();
            if job.flags.is_async() {
                self.async_calls.fetch_add(1, Ordering::SeqCst);
            }
            if let Some(gate) = &self.gate {
                gate.acquire().await.expect("gate open").forget();
            }
            if let Some(busy) = self.busy {
                std::thread::sleep(busy);
            }
            self.finished.fetch_add(1, Ordering::SeqCst);
            if job.request.starts_with(b"BADENV") {
                return Err(DispatchError::Rejected);
            }
            if job.request.starts_with(b"FAILME") {
                return Err(DispatchError::Failed {
                    reason: "fake engine failure".into(),
                });
            }
            Ok(Self::transform(&job))
        })
    }
}

pub struct FakeKeys;

impl KeySource for FakeKeys {
    fn key_configs(&self) -> BoxFuture<'_, Result<Vec<u8>, KeySourceError>> {
        Box::pin(async { Ok(vec![0, 41, 1, 0, 32]) })
    }
    fn bundles(&self) -> BoxFuture<'_, Result<Vec<u8>, KeySourceError>> {
        Box::pin(async { Ok(br#"{"bundles":[]}"#.to_vec()) })
    }
    fn attestation(&self, nonce: String) -> BoxFuture<'_, Result<Vec<u8>, KeySourceError>> {
        Box::pin(async move { Ok(format!(r#"{{"evidence":"x","nonce":"{nonce}"}}"#).into_bytes()) })
    }
}

pub struct Harness {
    pub app: Router,
    pub state: AppState,
    pub token: String,
    pub engine: Arc<FakeEngine>,
}

impl Harness {
    /// A gateway over `store` with projects `default` (token in `self.token`) and `other`.
    pub async fn new(store: Store, engine: Arc<FakeEngine>, config: GatewayConfig) -> Self {
        store.create_project("default").await.unwrap();
        store.create_project("other").await.unwrap();
        let token = store.create_token("default").await.unwrap();
        let state = AppState::new(
            store,
            engine.clone(),
            Arc::new(FakeKeys),
            config.with_admin_token(ADMIN_TOKEN),
        );
        Self {
            app: clave_gateway::app(state.clone()),
            state,
            token,
            engine,
        }
    }

    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        send(&self.app, method, uri, token, content_type, body).await
    }

    pub async fn deploy(&self, name: &str, sealed: &[u8]) -> Reply {
        self.deploy_to("/v1/functions", name, &self.token, sealed)
            .await
    }

    pub async fn deploy_to(&self, base: &str, name: &str, token: &str, sealed: &[u8]) -> Reply {
        let body = deploy_body(&manifest(name, sealed), sealed);
        self.send(
            Method::PUT,
            &format!("{base}/{name}"),
            Some(token),
            Some("application/json"),
            body,
        )
        .await
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send(Method::GET, uri, Some(&self.token), None, vec![])
            .await
    }

    pub async fn invoke(&self, uri: &str, body: &[u8]) -> Reply {
        self.send(
            Method::POST,
            uri,
            None,
            Some("message/ohttp-req"),
            body.to_vec(),
        )
        .await
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn problem(&self) -> Problem {
        assert_eq!(
            self.headers.get("content-type").unwrap(),
            "application/problem+json",
            "status {}",
            self.status
        );
        let p: Problem = serde_json::from_slice(&self.body).unwrap();
        assert_eq!(p.status, self.status.as_u16());
        p
    }
}

pub async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

/// Manifest JSON for `name`; the hash is a stand-in (the gateway never checks it against the code).
pub fn manifest(name: &str, sealed: &[u8]) -> Vec<u8> {
    let hash = format!("{:064x}", sealed.len());
    serde_json::to_vec(&serde_json::json!({
        "name": name,
        "code_hash": hash,
        "entry": "index.js",
        "limits": { "cpu_ms": 50, "heap_bytes": 1048576 },
        "created": 1_700_000_000u64,
    }))
    .unwrap()
}

pub fn deploy_body(manifest: &[u8], sealed: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&DeployRequest::new(manifest, sealed)).unwrap()
}

/// Wait (without asserting on time) until `cond` holds; panics after a generous bound.
pub async fn wait_until(mut cond: impl FnMut() -> bool) {
    for _ in 0..4000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("condition never became true");
}

/// A database for one test: SQLite in a temp dir, or a fresh PostgreSQL database.
pub enum TestDb {
    Sqlite {
        dir: tempfile::TempDir,
    },
    Postgres {
        admin_url: String,
        url: String,
        name: String,
    },
}

impl TestDb {
    pub fn sqlite() -> Self {
        Self::Sqlite {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A fresh PostgreSQL database, or `None` (after recording the skip) when
    /// `CLAVE_TEST_POSTGRES_URL` is unset; a panic when it is set and PostgreSQL does not answer.
    pub async fn postgres() -> Option<Self> {
        let admin_url = services::require(services::POSTGRES, "gateway tests on PostgreSQL")?;
        let mut raw = [0u8; 6];
        getrandom::fill(&mut raw).unwrap();
        let name = format!("clave_gw_test_{}", hex::encode(raw));
        let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        println!("postgres: fresh database {name}");
        let (scheme, rest) = admin_url.split_once("://").unwrap();
        let authority = rest.split('/').next().unwrap();
        let url = format!("{scheme}://{authority}/{name}");
        Some(Self::Postgres {
            admin_url,
            url,
            name,
        })
    }

    pub fn url(&self) -> String {
        match self {
            Self::Sqlite { dir } => format!(
                "sqlite://{}",
                dir.path().join("nested/.clave/gateway.db").display()
            ),
            Self::Postgres { url, .. } => url.clone(),
        }
    }

    pub async fn store(&self) -> Store {
        Store::connect(&self.url()).await.unwrap()
    }

    pub async fn cleanup(self) {
        if let Self::Postgres {
            admin_url, name, ..
        } = self
        {
            let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&admin)
            .await
            .unwrap();
            admin.close().await;
        }
    }
}

/// SQLite always, plus PostgreSQL when configured.
pub async fn test_dbs() -> Vec<TestDb> {
    let mut dbs = vec![TestDb::sqlite()];
    if let Some(pg) = TestDb::postgres().await {
        dbs.push(pg);
    }
    dbs
}
