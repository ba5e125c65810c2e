//! Functions that fetch, run by the engine's [`SandboxRunner`] through a test egress (the test
//! CA and loopback servers of `tests.rs`): the example in `examples/` returns a result derived
//! from the local HTTPS API, and the refusals reach the function as catchable `TypeError`s.

use std::sync::Arc;

use clave_proto::code::Limits;
use clave_proto::{CodeHash, HostPattern, InvokeRequest};

use super::EgressConfig;
use super::tests::TestNet;
use crate::runner::{RunError, RunRequest, Runner as _, SandboxRunner, SandboxSettings};

const EXAMPLE: &str = include_str!("../../../../examples/currency-convert.js");

fn runner(net: &TestNet) -> SandboxRunner {
    let settings = SandboxSettings {
        workers: 1,
        ..SandboxSettings::default()
    };
    SandboxRunner::with_egress(&settings, net.egress(EgressConfig::default())).expect("runner")
}

async fn call(
    runner: &SandboxRunner,
    code: &str,
    body: serde_json::Value,
    outbound: &[&str],
) -> Result<(u16, serde_json::Value), RunError> {
    let hash = CodeHash::of(code.as_bytes());
    let req = InvokeRequest::new(
        "default".parse().expect("project"),
        "f".parse().expect("function"),
        hash,
        0,
        body.to_string().into_bytes(),
    );
    let outbound: Vec<HostPattern> = outbound
        .iter()
        .map(|p| HostPattern::parse(p).expect("pattern"))
        .collect();
    let response = runner
        .run(
            RunRequest::new(hash, Arc::from(code), req, Limits::default())
                .with_outbound(Arc::from(outbound)),
        )
        .await
        .result?;
    Ok((
        response.status,
        serde_json::from_slice(&response.body).expect("JSON answer"),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_converts_with_rates_from_https() {
    let net = TestNet::start();
    let runner = runner(&net);
    let rates = format!("https://api.test:{}/rates", net.api);
    let input =
        serde_json::json!({ "amount": 120, "from": "EUR", "to": "USD", "rates_url": rates });
    let (status, v) = call(&runner, EXAMPLE, input.clone(), &["api.test"])
        .await
        .expect("run");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rate"], 1.25);
    assert_eq!(v["converted"], 150.0);

    // Without the host in the manifest the function gets a TypeError and answers 502.
    let (status, v) = call(&runner, EXAMPLE, input.clone(), &["*.example.com"])
        .await
        .expect("run");
    assert_eq!(status, 502);
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|m| m.contains("api.test is not in this function's outbound hosts")),
        "{v}"
    );
    // A manifest without outbound hosts: fetch() has no network at all.
    let (status, v) = call(&runner, EXAMPLE, input, &[]).await.expect("run");
    assert_eq!(status, 502);
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|m| m.contains("no outbound hosts")),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_reach_the_function() {
    let net = TestNet::start();
    let runner = runner(&net);
    let code = r#"export default { async fetch(request) {
      const urls = await request.json();
      const out = {};
      for (const [k, u] of Object.entries(urls)) {
        try { const r = await fetch(u); out[k] = [r.status, r.redirected, await r.text()]; }
        catch (e) { out[k] = `${e.name}: ${e.message}`; }
      }
      return Response.json(out);
    } };"#;
    let p = net.api;
    let urls = serde_json::json!({
        "followed": format!("https://api.test:{p}/to-rates"),
        "toUnlisted": format!("https://api.test:{p}/to-evil"),
        "toHttp": format!("https://api.test:{p}/to-http"),
        "http": format!("http://api.test:{p}/rates"),
        "wrongName": format!("https://wrong.test:{}/rates", net.wrong),
        "expired": format!("https://old.test:{}/rates", net.old),
    });
    let (status, v) = call(&runner, code, urls, &["api.test", "wrong.test", "old.test"])
        .await
        .expect("run");
    assert_eq!(status, 200);
    assert_eq!(v["followed"][0], 200);
    assert_eq!(v["followed"][1], true);
    for (k, want) in [
        (
            "toUnlisted",
            "evil.test is not in this function's outbound hosts",
        ),
        ("toHttp", "plain http: is refused"),
        ("http", "plain http: is refused"),
        ("wrongName", "TLS: invalid peer certificate"),
        ("expired", "TLS: invalid peer certificate"),
    ] {
        let m = v[k].as_str().unwrap_or_default();
        assert!(m.starts_with("TypeError: fetch(): "), "{k}: {v}");
        assert!(m.contains(want), "{k}: {m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_ends_the_call_at_its_deadline() {
    let net = TestNet::start();
    let runner = runner(&net);
    let code = r#"export default { async fetch(request) {
      try { await fetch(await request.text()); } catch (e) { /* the deadline still ends the call */ }
      return new Response('finished');
    } };"#;
    let hash = CodeHash::of(code.as_bytes());
    let req = InvokeRequest::new(
        "default".parse().expect("project"),
        "f".parse().expect("function"),
        hash,
        0,
        format!("https://api.test:{}/slow", net.api).into_bytes(),
    );
    let limits = Limits {
        cpu_ms: 300,
        ..Limits::default()
    };
    let outbound: Arc<[HostPattern]> =
        Arc::from(vec![HostPattern::parse("api.test").expect("pattern")]);
    let r = runner
        .run(RunRequest::new(hash, Arc::from(code), req, limits).with_outbound(outbound))
        .await;
    assert_eq!(r.result.map(|o| o.status), Err(RunError::Timeout));
}
