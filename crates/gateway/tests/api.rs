//! HTTP behaviour of the gateway (SQLite): validation, auth, keys, dispatch limits, shutdown, no echo.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use clave_gateway::{DispatchConfig, GatewayConfig};
use common::{ADMIN_TOKEN, FakeEngine, Harness, TestDb, wait_until};

async fn sqlite_harness(engine: Arc<FakeEngine>, config: GatewayConfig) -> (Harness, TestDb) {
    let db = TestDb::sqlite();
    let h = Harness::new(db.store().await, engine, config).await;
    (h, db)
}

async fn default_harness() -> (Harness, TestDb) {
    sqlite_harness(Arc::new(FakeEngine::default()), GatewayConfig::default()).await
}

#[tokio::test]
async fn keys_bundles_attestation_are_proxied() {
    let (h, _db) = default_harness().await;
    let r = h
        .send(
            Method::GET,
            "/.well-known/ohttp-gateway",
            None,
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/ohttp-keys");
    assert_eq!(&r.body[..], &[0, 41, 1, 0, 32]);
    let r = h.send(Method::GET, "/v1/keys", None, None, vec![]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["bundles"], serde_json::json!([]));
    let nonce = "abcdefghijklmnop_-0123";
    let r = h
        .send(
            Method::GET,
            &format!("/v1/attestation?nonce={nonce}"),
            None,
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["nonce"], nonce);
    for bad in [
        "",
        "?nonce=short",
        "?nonce=has%20space0123456789",
        "?other=abcdefghijklmnopq",
    ] {
        let r = h
            .send(
                Method::GET,
                &format!("/v1/attestation{bad}"),
                None,
                None,
                vec![],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        r.problem();
    }
}

#[tokio::test]
async fn health_ready_metrics() {
    let (h, _db) = default_harness().await;
    let r = h.send(Method::GET, "/healthz", None, None, vec![]).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h.send(Method::GET, "/readyz", None, None, vec![]).await;
    assert_eq!(r.status, StatusCode::OK);
    h.deploy("m", b"code").await;
    h.invoke("/v1/functions/m/invoke", b"12345678").await;
    let r = h.send(Method::GET, "/metrics", None, None, vec![]).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    assert!(
        text.contains("clave_gateway_invocations_total{outcome=\"ok\"}"),
        "{text}"
    );
    assert!(
        text.contains("clave_gateway_invoke_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("clave_gateway_queue_depth"), "{text}");
    assert!(text.contains("clave_gateway_engine_in_use"), "{text}");
    // Never content, never function names.
    assert!(!text.contains("87654321") && !text.contains("\"m\""));
}

#[tokio::test]
async fn unknown_function_and_route_are_404_problems() {
    let (h, _db) = default_harness().await;
    let r = h.invoke("/v1/functions/nope/invoke", b"12345678").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.problem().type_, "urn:clave:problem:not-found");
    let r = h
        .invoke("/v1/projects/ghost/functions/nope/invoke", b"12345678")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h.get("/v1/functions/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    r.problem();
    let r = h.get("/v2/whatever").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    r.problem();
    assert_eq!(h.engine.started.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn bad_names_are_400() {
    let (h, _db) = default_harness().await;
    for uri in [
        "/v1/functions/Bad_Name/invoke",
        "/v1/projects/UPPER/functions/x/invoke",
        "/v1/functions/-x/invoke",
    ] {
        let r = h.invoke(uri, b"12345678").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        r.problem();
    }
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let (h, _db) = default_harness().await;
    h.deploy("f", b"code").await;
    for ct in [
        None,
        Some("application/json"),
        Some("message/ohttp-res"),
        Some("text/plain"),
    ] {
        let r = h
            .send(
                Method::POST,
                "/v1/functions/f/invoke",
                None,
                ct,
                b"12345678".to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
        assert_eq!(
            r.problem().type_,
            "urn:clave:problem:unsupported-media-type"
        );
    }
    // Parameters and case are tolerated.
    let r = h
        .send(
            Method::POST,
            "/v1/functions/f/invoke",
            None,
            Some("Message/OHTTP-req; x=y"),
            b"12345678".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let body = common::deploy_body(&common::manifest("f", b"c"), b"c");
    let r = h
        .send(
            Method::PUT,
            "/v1/functions/f",
            Some(&h.token),
            Some("text/plain"),
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(h.engine.started.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn oversized_bodies_are_413_before_any_work() {
    let mut config = GatewayConfig::default();
    config.limits.max_request_bytes = 1000;
    config.limits.max_sealed_code_bytes = 3000;
    config.limits.max_manifest_bytes = 1000;
    let (h, _db) = sqlite_harness(Arc::new(FakeEngine::default()), config).await;
    h.deploy("f", b"code").await;
    // Invoke body over the limit (for an unknown function too: size is checked before the lookup).
    for uri in ["/v1/functions/f/invoke", "/v1/functions/unknown/invoke"] {
        let r = h.invoke(uri, &vec![7u8; 1001]).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
        assert_eq!(r.problem().type_, "urn:clave:problem:too-large");
    }
    assert_eq!(
        h.invoke("/v1/functions/f/invoke", &[7u8; 1000])
            .await
            .status,
        StatusCode::OK
    );
    // Sealed code over the limit (body itself within the deploy body limit).
    let r = h.deploy("f", &vec![1u8; 3001]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A body over the deploy body limit.
    let r = h.deploy("f", &vec![1u8; 10_000]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    r.problem();
    // Manifest over its limit.
    let mut manifest = common::manifest("f", b"c");
    manifest.extend(std::iter::repeat_n(b' ', 1001));
    let r = h
        .send(
            Method::PUT,
            "/v1/functions/f",
            Some(&h.token),
            Some("application/json"),
            common::deploy_body(&manifest, b"c"),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        h.get("/v1/functions/f").await.json()["versions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(h.engine.started.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn missing_or_invalid_token_is_401() {
    let (h, _db) = default_harness().await;
    let body = common::deploy_body(&common::manifest("f", b"c"), b"c");
    let r = h
        .send(
            Method::PUT,
            "/v1/functions/f",
            None,
            Some("application/json"),
            body.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    assert_eq!(r.problem().type_, "urn:clave:problem:unauthorized");
    let r = h
        .send(
            Method::PUT,
            "/v1/functions/f",
            Some("cdt_wrong"),
            Some("application/json"),
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h
        .send(Method::GET, "/v1/functions", None, None, vec![])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h
        .send(
            Method::POST,
            "/v1/functions/f/rollback",
            Some("x"),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let list = h.get("/v1/functions").await.json();
    assert!(list["functions"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn malformed_deploys_are_400() {
    let (h, _db) = default_harness().await;
    let put = |body: Vec<u8>| {
        h.send(
            Method::PUT,
            "/v1/functions/f",
            Some(&h.token),
            Some("application/json"),
            body,
        )
    };
    let cases: Vec<Vec<u8>> = vec![
        b"not json".to_vec(),
        br#"{"manifest":"e30"}"#.to_vec(),
        br#"{"manifest":"!!","sealed_code":"AAAA"}"#.to_vec(),
        br#"{"manifest":"e30","sealed_code":"AAAA","extra":1}"#.to_vec(),
        // manifest `{}`: no name
        common::deploy_body(b"{}", b"c"),
        // name differs from the URL
        common::deploy_body(&common::manifest("g", b"c"), b"c"),
        // empty sealed code
        common::deploy_body(&common::manifest("f", b""), b""),
        // malformed code hash
        common::deploy_body(br#"{"name":"f","code_hash":"<script>"}"#, b"c"),
    ];
    for body in cases {
        let r = put(body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(&body)
        );
        r.problem();
    }
    assert_eq!(h.get("/v1/functions/f").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tampered_truncated_and_failing_requests_give_clear_errors() {
    let (h, _db) = default_harness().await;
    h.deploy("f", b"code").await;
    // Truncated below any OHTTP header: refused without reaching the engine.
    let r = h.invoke("/v1/functions/f/invoke", b"\x01\x00").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    r.problem();
    assert_eq!(h.engine.started.load(Ordering::SeqCst), 0);
    // The engine cannot open it: 400 engine-rejected.
    let r = h.invoke("/v1/functions/f/invoke", b"BADENV-tampered").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.problem().type_, "urn:clave:problem:engine-rejected");
    // The engine failed after running: 502.
    let r = h.invoke("/v1/functions/f/invoke", b"FAILME-please").await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.problem().type_, "urn:clave:problem:engine-failed");
    let usage = h.state.store().usage("default", 10).await.unwrap();
    let outcomes: Vec<_> = usage.iter().map(|u| u.outcome.as_str()).collect();
    assert_eq!(outcomes, ["rejected", "failed"]);
}

#[tokio::test]
async fn admin_creates_projects_and_tokens() {
    let (h, _db) = default_harness().await;
    let r = h
        .send(
            Method::POST,
            "/v1/projects/team-a/tokens",
            Some(ADMIN_TOKEN),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let token = r.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["project"], "team-a");
    let r = h
        .deploy_to("/v1/projects/team-a/functions", "fn1", &token, b"sealed")
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // Deploy tokens are not admin tokens, and no token is no admin.
    let r = h
        .send(
            Method::POST,
            "/v1/projects/team-a/tokens",
            Some(&token),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .send(
            Method::POST,
            "/v1/projects/team-a/tokens",
            None,
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h
        .send(
            Method::PUT,
            "/v1/projects/team-b",
            Some(ADMIN_TOKEN),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = h
        .send(
            Method::PUT,
            "/v1/projects/team-b",
            Some(ADMIN_TOKEN),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

fn gated_config(slots: usize, queue: usize, per_function: usize) -> GatewayConfig {
    let mut config = GatewayConfig::default();
    config.dispatch = DispatchConfig {
        engine_slots: slots,
        queue_limit: queue,
        per_function_limit: per_function,
        queue_timeout: Duration::from_secs(60),
        call_timeout: Duration::from_secs(60),
        retry_after: Duration::from_secs(2),
    };
    config
}

#[tokio::test]
async fn overload_gives_503_with_retry_after_and_recovers() {
    let (engine, gate) = FakeEngine::gated();
    let (h, _db) = sqlite_harness(engine.clone(), gated_config(1, 1, 100)).await;
    h.deploy("f", b"code").await;
    let h = Arc::new(h);

    let a = tokio::spawn({
        let h = h.clone();
        async move { h.invoke("/v1/functions/f/invoke", b"request-a").await }
    });
    wait_until(|| engine.started.load(Ordering::SeqCst) == 1).await;
    let b = tokio::spawn({
        let h = h.clone();
        async move { h.invoke("/v1/functions/f/invoke", b"request-b").await }
    });
    wait_until(|| h.state.dispatcher().stats().queued == 1).await;
    assert_eq!(h.state.dispatcher().stats().running, 1);

    // Slot busy and queue full: refused, not run.
    let c = h.invoke("/v1/functions/f/invoke", b"request-c").await;
    assert_eq!(c.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(c.headers["retry-after"], "2");
    assert_eq!(c.problem().type_, "urn:clave:problem:overloaded");
    let metrics = h.send(Method::GET, "/metrics", None, None, vec![]).await;
    let text = String::from_utf8(metrics.body.to_vec()).unwrap();
    assert!(text.contains("clave_gateway_invocations_total{outcome=\"overloaded\"}"));

    // Release: both admitted calls complete, exactly once each.
    gate.add_permits(2);
    let a = a.await.unwrap();
    let b = b.await.unwrap();
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(&a.body[..], b"default/f@1|code|a-tseuqer");
    assert_eq!(&b.body[..], b"default/f@1|code|b-tseuqer");
    assert_eq!(engine.started.load(Ordering::SeqCst), 2);

    // Recovered.
    gate.add_permits(1);
    let d = h.invoke("/v1/functions/f/invoke", b"request-d").await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(engine.started.load(Ordering::SeqCst), 3);
    assert_eq!(engine.finished.load(Ordering::SeqCst), 3);
    let stats = h.state.dispatcher().stats();
    assert_eq!((stats.queued, stats.running), (0, 0));
    let usage = h.state.store().usage("default", 10).await.unwrap();
    let mut outcomes: Vec<_> = usage.iter().map(|u| u.outcome.as_str()).collect();
    outcomes.sort_unstable();
    assert_eq!(outcomes, ["ok", "ok", "ok", "overloaded"]);
}

#[tokio::test]
async fn per_function_cap_limits_one_function_only() {
    let (engine, gate) = FakeEngine::gated();
    let (h, _db) = sqlite_harness(engine.clone(), gated_config(4, 4, 1)).await;
    h.deploy("f", b"code-f").await;
    h.deploy("g", b"code-g").await;
    let h = Arc::new(h);
    let a = tokio::spawn({
        let h = h.clone();
        async move { h.invoke("/v1/functions/f/invoke", b"request-a").await }
    });
    wait_until(|| engine.started.load(Ordering::SeqCst) == 1).await;
    let r = h.invoke("/v1/functions/f/invoke", b"request-b").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers.contains_key("retry-after"));
    let c = tokio::spawn({
        let h = h.clone();
        async move { h.invoke("/v1/functions/g/invoke", b"request-c").await }
    });
    wait_until(|| engine.started.load(Ordering::SeqCst) == 2).await;
    gate.add_permits(2);
    assert_eq!(a.await.unwrap().status, StatusCode::OK);
    assert_eq!(c.await.unwrap().status, StatusCode::OK);
}

#[tokio::test]
async fn call_timeout_is_504() {
    let (engine, _gate) = FakeEngine::gated();
    let mut config = gated_config(2, 2, 2);
    config.dispatch.call_timeout = Duration::from_millis(50);
    let (h, _db) = sqlite_harness(engine, config).await;
    h.deploy("f", b"code").await;
    let r = h.invoke("/v1/functions/f/invoke", b"request-a").await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(r.problem().type_, "urn:clave:problem:timeout");
    assert_eq!(h.state.dispatcher().stats().running, 0);
}

#[tokio::test]
async fn shutdown_refuses_new_and_queued_calls_and_drains_running_ones() {
    let (engine, gate) = FakeEngine::gated();
    let (h, _db) = sqlite_harness(engine.clone(), gated_config(1, 4, 100)).await;
    h.deploy("f", b"code").await;
    let h = Arc::new(h);
    let a = tokio::spawn({
        let h = h.clone();
        async move { h.invoke("/v1/functions/f/invoke", b"request-a").await }
    });
    wait_until(|| engine.started.load(Ordering::SeqCst) == 1).await;
    let b = tokio::spawn({
        let h = h.clone();
        async move { h.invoke("/v1/functions/f/invoke", b"request-b").await }
    });
    wait_until(|| h.state.dispatcher().stats().queued == 1).await;

    h.state.dispatcher().close();
    let b = b.await.unwrap();
    assert_eq!(b.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(b.problem().type_, "urn:clave:problem:unavailable");
    let c = h.invoke("/v1/functions/f/invoke", b"request-c").await;
    assert_eq!(c.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(c.headers.contains_key("retry-after"));
    let ready = h.send(Method::GET, "/readyz", None, None, vec![]).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);

    // The running call is not cut off: it finishes and the drain completes.
    assert!(!h.state.dispatcher().drain(Duration::from_millis(1)).await);
    gate.add_permits(1);
    assert_eq!(a.await.unwrap().status, StatusCode::OK);
    assert!(h.state.dispatcher().drain(Duration::from_secs(30)).await);
    assert_eq!(engine.started.load(Ordering::SeqCst), 1);
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn responses_and_logs_never_echo_request_content() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    const MARKER: &str = "PLAINTEXT-MARKER-7f3a9c";
    let mut config = GatewayConfig::default();
    config.limits.max_request_bytes = 200;
    let (h, _db) = sqlite_harness(Arc::new(FakeEngine::default()), config).await;
    let other = h.state.store().create_token("other").await.unwrap();
    h.deploy("f", b"code").await;

    let marker_body = |prefix: &str| format!("{prefix}{MARKER}").into_bytes();
    let mut replies = vec![
        h.invoke("/v1/functions/unknown/invoke", &marker_body("xxxxxxxx"))
            .await,
        h.invoke("/v1/functions/f/invoke", &marker_body("BADENV"))
            .await,
        h.invoke("/v1/functions/f/invoke", &marker_body("FAILME"))
            .await,
        h.invoke("/v1/functions/f/invoke", &marker_body(&"y".repeat(300)))
            .await,
        h.send(
            Method::POST,
            "/v1/functions/f/invoke",
            None,
            Some("text/plain"),
            marker_body("zzzzzzzz"),
        )
        .await,
    ];
    // Deploys carrying the marker in the JSON, the manifest and the sealed code, refused for various reasons.
    let bad_manifest = format!(r#"{{"name":"other-name","code_hash":"00","note":"{MARKER}"}}"#);
    for (token, body) in [
        (h.token.as_str(), marker_body("{not json ")),
        (
            h.token.as_str(),
            common::deploy_body(bad_manifest.as_bytes(), MARKER.as_bytes()),
        ),
        (
            h.token.as_str(),
            common::deploy_body(MARKER.as_bytes(), MARKER.as_bytes()),
        ),
        (
            other.as_str(),
            common::deploy_body(&common::manifest("f", b"x"), MARKER.as_bytes()),
        ),
        (
            MARKER,
            common::deploy_body(&common::manifest("f", b"x"), MARKER.as_bytes()),
        ),
    ] {
        replies.push(
            h.send(
                Method::PUT,
                "/v1/functions/f",
                Some(token),
                Some("application/json"),
                body,
            )
            .await,
        );
    }
    replies.push(
        h.send(
            Method::GET,
            &format!("/v1/attestation?nonce={MARKER}!"),
            None,
            None,
            vec![],
        )
        .await,
    );
    for r in &replies {
        assert!(
            r.status.is_client_error() || r.status.is_server_error(),
            "{}",
            r.status
        );
        r.problem();
        let text = String::from_utf8_lossy(&r.body);
        assert!(
            !text.contains(MARKER),
            "response echoes request content: {text}"
        );
    }
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("deploy token used on another project"),
        "capture works: {logs}"
    );
    assert!(!logs.contains(MARKER), "logs echo request content:\n{logs}");
}

#[tokio::test]
async fn accepts_manifests_built_by_clave_proto() {
    let (h, _db) = default_harness().await;
    let code = b"export default { fetch() { return new Response('hi') } }";
    let manifest = clave_proto::Manifest {
        vars: Default::default(),
        secrets: Vec::new(),
        log_key: None,
        name: "real".parse().unwrap(),
        project: None,
        code_hash: clave_proto::CodeHash::of(code),
        entry: "index.js".into(),
        limits: clave_proto::Limits::default(),
        created: 1_700_000_000,
        outbound: Vec::new(),
    };
    let bytes = manifest.to_bytes();
    let sealed = b"opaque-ciphertext-standing-in-for-seal_code-output";
    let r = h
        .send(
            Method::PUT,
            "/v1/functions/real",
            Some(&h.token),
            Some("application/json"),
            common::deploy_body(&bytes, sealed),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.json()["code_hash"], manifest.code_hash.to_hex());
    let detail = h.get("/v1/functions/real").await.json();
    assert_eq!(detail["versions"][0]["manifest_bytes"], bytes.len());
    assert_eq!(
        detail["versions"][0]["limits"],
        serde_json::to_value(manifest.limits).unwrap()
    );
    // The stored manifest bytes are the exact bytes sent (they are the code's AAD).
    let artifact = h
        .state
        .store()
        .active_artifact("default", "real")
        .await
        .unwrap();
    assert_eq!(artifact.manifest, &bytes[..]);
    assert_eq!(artifact.sealed_code, &sealed[..]);
}
