//! `fetch()` in the sandbox against a fake network (an `Outbound` answering from memory): the
//! Workers semantics of requests, responses and redirects, catchable errors, the deadline, and
//! that no call's network leaks into the next. TLS and the real network are the engine's (its
//! `egress` tests run a local HTTPS server).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clave_sandbox::{
    Error, HttpRequest, Limits, Outbound, OutboundError, OutboundRequest, OutboundResponse,
    PoolConfig, SandboxPool,
};
use sha2::Digest as _;

/// A request as the fake network saw it: method, URL, header fields, body.
type Seen = (String, String, Vec<(String, String)>, Vec<u8>);

/// Answers from memory; refuses every host but `api.example`; records what it was asked.
#[derive(Default)]
struct Fake {
    seen: Mutex<Vec<Seen>>,
}

fn answer(status: u16, headers: &[(&str, &str)], body: &[u8]) -> OutboundResponse {
    OutboundResponse {
        status,
        status_text: if status == 200 {
            "OK".into()
        } else {
            String::new()
        },
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        body: body.to_vec(),
    }
}

impl Outbound for Fake {
    fn send(
        &self,
        r: &OutboundRequest,
        deadline: Instant,
    ) -> Result<OutboundResponse, OutboundError> {
        self.seen.lock().expect("lock").push((
            r.method.clone(),
            r.url.to_string(),
            r.headers.clone(),
            r.body.clone(),
        ));
        let host = r.url.host_str().unwrap_or("");
        if host != "api.example" {
            return Err(OutboundError::HostNotAllowed {
                host: host.to_owned(),
            });
        }
        Ok(match r.url.path() {
            "/json" => answer(
                200,
                &[("content-type", "application/json"), ("x-a", "1")],
                br#"{"n":42,"s":"x"}"#,
            ),
            "/echo" => {
                let v = serde_json::json!({
                    "method": r.method,
                    "headers": r.headers,
                    "body": String::from_utf8_lossy(&r.body),
                });
                answer(201, &[], v.to_string().as_bytes())
            }
            "/redirect" => answer(302, &[("location", "/json")], b""),
            "/see-other" => answer(303, &[("location", "/echo")], b""),
            "/temporary" => answer(307, &[("location", "/echo")], b""),
            "/evil" => answer(302, &[("location", "https://evil.example/steal")], b""),
            "/plain" => answer(301, &[("location", "http://api.example/json")], b""),
            "/loop" => answer(302, &[("location", "/loop")], b""),
            "/empty" => answer(204, &[], b""),
            "/big" => answer(200, &[], &vec![b'x'; 4 << 20]),
            "/slow" => {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                return Err(OutboundError::Timeout);
            }
            _ => answer(404, &[], b"not found"),
        })
    }
}

fn pool() -> SandboxPool {
    SandboxPool::new(PoolConfig {
        workers: 1,
        grace: Duration::from_millis(200),
        ..PoolConfig::default()
    })
    .expect("pool")
}

fn request() -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        url: "https://fn.example/".into(),
        headers: vec![],
        body: Vec::new(),
        env: Default::default(),
    }
}

async fn run(
    pool: &SandboxPool,
    code: &str,
    net: Option<Arc<dyn Outbound>>,
    limits: Limits,
) -> Result<serde_json::Value, Error> {
    let hash: [u8; 32] = sha2::Sha256::digest(code.as_bytes()).into();
    let out = pool
        .run_with_outbound(hash, Arc::from(code), request(), limits, net)
        .await?;
    Ok(serde_json::from_slice(&out.response.body).expect("JSON answer"))
}

fn fake() -> (Arc<Fake>, Option<Arc<dyn Outbound>>) {
    let f = Arc::new(Fake::default());
    let net: Arc<dyn Outbound> = f.clone();
    (f, Some(net))
}

#[tokio::test]
async fn requests_and_responses() {
    let p = pool();
    let (f, net) = fake();
    let code = r#"export default { async fetch() {
      const r = await fetch('https://api.example/json', { headers: { Accept: 'application/json' } });
      const out = { status: r.status, ok: r.ok, statusText: r.statusText, type: r.type,
        ct: r.headers.get('content-type'), url: r.url, redirected: r.redirected,
        data: await r.json(), used: r.bodyUsed };
      const e1 = await (await fetch(new Request('https://api.example/echo', { method: 'PUT', body: 'text' }))).json();
      const e2 = await (await fetch('https://api.example/echo', { method: 'post', body: new Uint8Array([104, 105]) })).json();
      const e3 = await (await fetch(new URL('https://api.example/echo'), { method: 'POST',
        body: new TextEncoder().encode('{"a":1}').buffer, headers: [['content-type', 'application/json'], ['Host', 'evil'], ['Content-Length', '1']] })).json();
      const e4 = await fetch('https://api.example/echo', { method: 'PATCH', body: JSON.stringify({ b: 2 }) });
      const e4b = await e4.arrayBuffer();
      const empty = await fetch('https://api.example/empty');
      const missing = await fetch('https://api.example/nothing');
      return Response.json({ out, e1, e2, e3, e4: { status: e4.status, ok: e4.ok, len: e4b.byteLength },
        empty: [empty.status, await empty.text()], missing: [missing.status, missing.ok, await missing.text()] });
    } };"#;
    let v = run(&p, code, net, Limits::default()).await.expect("call");
    assert_eq!(v["out"]["status"], 200);
    assert_eq!(v["out"]["ok"], true);
    assert_eq!(v["out"]["statusText"], "OK");
    assert_eq!(v["out"]["type"], "default");
    assert_eq!(v["out"]["ct"], "application/json");
    assert_eq!(v["out"]["url"], "https://api.example/json");
    assert_eq!(v["out"]["redirected"], false);
    assert_eq!(v["out"]["data"]["n"], 42);
    assert_eq!(v["out"]["used"], true);
    assert_eq!(v["e1"]["method"], "PUT");
    assert_eq!(v["e1"]["body"], "text");
    assert_eq!(
        v["e1"]["headers"],
        serde_json::json!([["content-type", "text/plain;charset=UTF-8"]])
    );
    assert_eq!(v["e2"]["method"], "POST");
    assert_eq!(v["e2"]["body"], "hi");
    assert_eq!(v["e3"]["body"], "{\"a\":1}");
    // The transport's own fields are the transport's: the program's host and length are dropped.
    assert_eq!(
        v["e3"]["headers"],
        serde_json::json!([["content-type", "application/json"]])
    );
    assert_eq!(v["e4"]["status"], 201);
    assert_eq!(v["e4"]["ok"], true);
    assert!(v["e4"]["len"].as_u64().is_some_and(|n| n > 10));
    assert_eq!(v["empty"], serde_json::json!([204, ""]));
    assert_eq!(v["missing"], serde_json::json!([404, false, "not found"]));
    let seen = f.seen.lock().expect("lock");
    assert_eq!(
        seen[0].2,
        [("accept".to_owned(), "application/json".to_owned())]
    );
    assert_eq!(seen.len(), 7);
}

#[tokio::test]
async fn redirects() {
    let p = pool();
    let (f, net) = fake();
    let code = r#"export default { async fetch() {
      const msg = async (u, init) => { try { await fetch(u, init); return 'no error'; } catch (e) { return `${e.name}: ${e.message}`; } };
      const follow = await fetch('https://api.example/redirect');
      const manual = await fetch('https://api.example/redirect', { redirect: 'manual' });
      const seeOther = await (await fetch('https://api.example/see-other', { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain', authorization: 'k' } })).json();
      const temporary = await (await fetch('https://api.example/temporary', { method: 'POST', body: 'kept' })).json();
      return Response.json({
        follow: [follow.status, follow.url, follow.redirected, (await follow.json()).n],
        manual: [manual.status, manual.headers.get('location'), manual.redirected],
        seeOther, temporary,
        error: await msg('https://api.example/redirect', { redirect: 'error' }),
        badMode: await msg('https://api.example/redirect', { redirect: 'nope' }),
        evil: await msg('https://api.example/evil'),
        plain: await msg('https://api.example/plain'),
        loop: await msg('https://api.example/loop'),
      });
    } };"#;
    let v = run(&p, code, net, Limits::default()).await.expect("call");
    assert_eq!(
        v["follow"],
        serde_json::json!([200, "https://api.example/json", true, 42])
    );
    assert_eq!(v["manual"], serde_json::json!([302, "/json", false]));
    // 303: GET without the body and its content fields.
    assert_eq!(v["seeOther"]["method"], "GET");
    assert_eq!(v["seeOther"]["body"], "");
    assert_eq!(
        v["seeOther"]["headers"],
        serde_json::json!([["authorization", "k"]])
    );
    // 307: method and body kept.
    assert_eq!(v["temporary"]["method"], "POST");
    assert_eq!(v["temporary"]["body"], "kept");
    for (k, want) in [
        ("error", "redirect mode is \"error\""),
        ("badMode", "redirect must be"),
        (
            "evil",
            "evil.example is not in this function's outbound hosts",
        ),
        ("plain", "plain http: is refused"),
        ("loop", "more than 10 redirects"),
    ] {
        let m = v[k].as_str().expect("message");
        assert!(m.starts_with("TypeError: "), "{k}: {m}");
        assert!(m.contains(want), "{k}: {m}");
    }
    // The redirect to the unlisted host was refused by the network, never followed further.
    let seen = f.seen.lock().expect("lock");
    assert_eq!(
        seen.iter()
            .filter(|s| s.1.starts_with("https://evil.example"))
            .count(),
        1
    );
    assert!(seen.iter().all(|s| !s.1.starts_with("http:")));
}

#[tokio::test]
async fn refusals_are_catchable_type_errors() {
    let p = pool();
    let (f, net) = fake();
    let code = r#"export default { async fetch() {
      const msg = async (...a) => { try { await fetch(...a); return 'no error'; } catch (e) { return `${e.name}: ${e.message}`; } };
      return Response.json({
        http: await msg('http://api.example/json'),
        ftp: await msg('ftp://api.example/x'),
        creds: await msg('https://u:p@api.example/json'),
        bad: await msg('not a url'),
        none: await msg(),
        getBody: await msg('https://api.example/echo', { body: 'x' }),
        unlisted: await msg('https://other.example/'),
      });
    } };"#;
    let v = run(&p, code, net, Limits::default()).await.expect("call");
    for (k, want) in [
        ("http", "plain http: is refused"),
        ("ftp", "ftp: scheme is not supported"),
        ("creds", "credentials"),
        ("bad", "Failed to parse URL"),
        ("none", "at least 1 argument"),
        ("getBody", "GET/HEAD method cannot have body"),
        (
            "unlisted",
            "other.example is not in this function's outbound hosts",
        ),
    ] {
        let m = v[k].as_str().expect("message");
        assert!(m.starts_with("TypeError: "), "{k}: {m}");
        assert!(m.contains(want), "{k}: {m}");
    }
    // Only the unlisted host reached the network (which refused it).
    assert_eq!(f.seen.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn without_a_network_and_at_top_level() {
    let p = pool();
    let code = r#"export default { async fetch() {
      try { await fetch('https://api.example/json'); return Response.json('fetched'); }
      catch (e) { return Response.json(`${e.name}: ${e.message}`); }
    } };"#;
    let v = run(&p, code, None, Limits::default()).await.expect("call");
    assert!(
        v.as_str()
            .is_some_and(|m| m.starts_with("TypeError") && m.contains("no outbound hosts")),
        "{v}"
    );
    // After a call with a network, the next call of the same worker has none.
    let (_f, net) = fake();
    let v = run(&p, code, net, Limits::default()).await.expect("call");
    assert_eq!(v, "fetched");
    let v = run(&p, code, None, Limits::default()).await.expect("call");
    assert!(v.as_str().is_some_and(|m| m.contains("no outbound hosts")));

    // A module's top level may not fetch (its state is shared by the calls of its image).
    let (f, net) = fake();
    let top = r#"let e = 'none';
      try { await fetch('https://api.example/json'); } catch (x) { e = x.message; }
      export default { fetch() { return Response.json(e); } };"#;
    let v = run(&p, top, net, Limits::default()).await.expect("call");
    assert!(v.as_str().is_some_and(|m| m.contains("top level")), "{v}");
    assert!(f.seen.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn deadline_and_memory() {
    let p = pool();
    let (_f, net) = fake();
    let slow = r#"export default { async fetch() {
      try { await fetch('https://api.example/slow'); } catch (e) { /* swallowed */ }
      return Response.json('finished');
    } };"#;
    let limits = Limits {
        cpu_ms: 200,
        ..Limits::default()
    };
    assert_eq!(
        run(&p, slow, net.clone(), limits).await,
        Err(Error::Timeout)
    );
    // A response body beyond the call's heap budget is refused inside the function.
    let big = r#"export default { async fetch() {
      try { const r = await fetch('https://api.example/big'); return Response.json((await r.arrayBuffer()).byteLength); }
      catch (e) { return Response.json(`${e.name}: ${e.message}`); }
    } };"#;
    let limits = Limits {
        heap_bytes: 2 << 20,
        ..Limits::default()
    };
    match run(&p, big, net.clone(), limits).await {
        Ok(v) => assert!(
            v.as_str().is_some_and(|m| m.contains("memory budget")),
            "{v}"
        ),
        Err(e) => assert_eq!(e, Error::OutOfMemory),
    }
    // The worker serves normally afterwards.
    let ok = r#"export default { async fetch() { return Response.json((await (await fetch('https://api.example/json')).json()).n); } };"#;
    assert_eq!(run(&p, ok, net, Limits::default()).await.expect("call"), 42);
}
