//! Sealed developer logs from a separate `clave engine` process: KDS, engine and gateway run as
//! their own processes (SQLite gateway, simulated TEE); a function called through gateway →
//! engine prints a marker and throws; `clave logs` (and `clave tail`) on the developer's side
//! show the console line, the error message and its stack; the markers are in no plaintext
//! form in the gateway's database or any process's log. The gateway refuses log records without
//! the admin token, and the gateway's `--log-retention` sweep deletes records past their age.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::procs::{Proc, free_ports, http_client, json, wait_ok};
use common::{clave_with_env, ok, stderr, stdout};

const ADMIN: &str = "cat_engine-logs-test-admin-token";
const CONSOLE_MARKER: &str = "CONSOLEMARKER-41c0d2aa-remote-engine-line";
const THROW_MARKER: &str = "THROWMARKER-9e7b3f02-remote-reason";
const INPUT_MARKER: &str = "INPUTMARKER-0d5a8c61-remote-input";

fn s(v: &str) -> String {
    v.to_owned()
}

fn code() -> String {
    format!(
        r#"function deeper(reason) {{
  throw new Error(reason);
}}
function handle(input) {{
  console.log("{CONSOLE_MARKER}", input.n);
  if (input.mode === "throw") deeper("{THROW_MARKER}");
  return {{ n: input.n + 1, seen: input.secret.length }};
}}
export default {{
  async fetch(request) {{
    return Response.json(handle(await request.json()));
  }}
}};
"#
    )
}

/// `clave` against the separate gateway, as the developer of project `default`.
fn dev_clave(config: &Path, gateway: &str, token: &str, args: &[&str]) -> std::process::Output {
    clave_with_env(
        config,
        args,
        &[
            ("CLAVE_GATEWAY", gateway),
            ("CLAVE_TOKEN", token),
            ("CLAVE_INSECURE_DEV", "true"),
        ],
    )
}

/// `clave logs NAME --json` as records, once at least `n` arrived (bounded wait).
fn wait_records(config: &Path, gateway: &str, token: &str, n: usize) -> Vec<serde_json::Value> {
    let started = Instant::now();
    loop {
        let o = dev_clave(
            config,
            gateway,
            token,
            &["--json", "logs", "remote-fn", "--since", "1h"],
        );
        assert!(o.status.success(), "clave logs: {}", stderr(&o));
        let records: Vec<serde_json::Value> = stdout(&o)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.get("outcome").is_some())
            .collect();
        if records.len() >= n {
            return records;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {} of {n} log records arrived",
            records.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_engine_delivers_sealed_logs_to_the_gateway() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let config = tmp.path().join("config");
    std::fs::create_dir_all(&logs).unwrap();
    let p = free_ports(3);
    let (k, e, g) = (p[0], p[1], p[2]);
    let gateway = format!("http://127.0.0.1:{g}");
    let sim = ("CLAVE_INSECURE_SIMULATED_TEE", s("1"));
    let mut kds = Proc::new(
        "kds",
        &[
            s("kds"),
            s("--listen"),
            format!("127.0.0.1:{k}"),
            s("--data-dir"),
            tmp.path().join("kds").display().to_string(),
        ],
        std::slice::from_ref(&sim),
        &logs,
    );
    let mut gw = Proc::new(
        "gateway",
        &[
            s("gateway"),
            s("--listen"),
            format!("127.0.0.1:{g}"),
            s("--kds"),
            format!("http://127.0.0.1:{k}"),
            s("--database-url"),
            format!("sqlite://{}", tmp.path().join("gw/gateway.db").display()),
            s("--log-retention"),
            s("1h"),
        ],
        &[("CLAVE_ADMIN_TOKEN", s(ADMIN))],
        &logs,
    );
    let mut engine = Proc::new(
        "engine",
        &[
            s("engine"),
            s("--listen"),
            format!("127.0.0.1:{e}"),
            s("--kds"),
            format!("http://127.0.0.1:{k}"),
            s("--register-with"),
            gateway.clone(),
            s("--heartbeat-secs"),
            s("1"),
        ],
        &[sim, ("CLAVE_ADMIN_TOKEN", s(ADMIN))],
        &logs,
    );
    let http = http_client();
    let limit = Duration::from_secs(60);
    kds.start();
    wait_ok(
        &http,
        &format!("http://127.0.0.1:{k}/v1/kds/keys"),
        &mut kds,
        limit,
    )
    .await;
    gw.start();
    wait_ok(&http, &format!("{gateway}/healthz"), &mut gw, limit).await;
    engine.start();
    wait_ok(
        &http,
        &format!("http://127.0.0.1:{e}/v1/engine/ready"),
        &mut engine,
        limit,
    )
    .await;
    let started = Instant::now();
    loop {
        let v = json(http.get(format!("{gateway}/v1/engines")).bearer_auth(ADMIN)).await;
        if v["engines"]
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["healthy"] == true))
        {
            break;
        }
        assert!(
            started.elapsed() < limit,
            "the engine did not register: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token = deploy_token(&http, &gateway).await;

    // The log endpoint takes nothing without the admin token (a deploy token is not enough).
    let batch = serde_json::json!({"records": [{"project": "default", "function": "remote-fn",
        "sealed": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]});
    for bearer in [None, Some(token.as_str()), Some("cat_wrong")] {
        let mut req = http.post(format!("{gateway}/v1/engines/logs")).json(&batch);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let status = req.send().await.unwrap().status();
        assert!(
            status == 401 || status == 403,
            "{bearer:?} answered {status}"
        );
    }

    let code_path = tmp.path().join("remote-fn.js");
    std::fs::write(&code_path, code()).unwrap();
    let cfg_owned = config.clone();
    let gw_owned = gateway.clone();
    let tok = token.clone();
    // The CLI blocks: run it off the test's runtime threads.
    let run = move |args: Vec<String>| {
        let (c, g, t) = (cfg_owned.clone(), gw_owned.clone(), tok.clone());
        tokio::task::spawn_blocking(move || {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            dev_clave(&c, &g, &t, &a)
        })
    };
    ok(&run(vec![
        s("deploy"),
        code_path.display().to_string(),
        s("--name"),
        s("remote-fn"),
    ])
    .await
    .unwrap());
    let body = ok(&run(vec![
        s("invoke"),
        s("remote-fn"),
        s("--data"),
        format!(r#"{{"n":41,"secret":"{INPUT_MARKER}"}}"#),
    ])
    .await
    .unwrap());
    assert!(body.contains("\"n\":42"), "{body}");
    let o = run(vec![
        s("invoke"),
        s("remote-fn"),
        s("--data"),
        format!(r#"{{"n":1,"mode":"throw","secret":"{INPUT_MARKER}"}}"#),
    ])
    .await
    .unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));

    let records = tokio::task::spawn_blocking({
        let (c, g, t) = (config.clone(), gateway.clone(), token.clone());
        move || wait_records(&c, &g, &t, 2)
    })
    .await
    .unwrap();
    let outcomes: Vec<&str> = records
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["ok", "script-error"]);
    assert_eq!(
        records[0]["console"][0]["text"],
        format!("{CONSOLE_MARKER} 41")
    );
    assert!(
        records[1]["message"]
            .as_str()
            .unwrap()
            .contains(THROW_MARKER),
        "{}",
        records[1]
    );
    let stack = records[1]["stack"].as_str().unwrap_or_default();
    assert!(
        stack.contains("deeper") && stack.contains("handle"),
        "the stack names the functions it went through: {}",
        records[1]
    );
    assert!(
        !records.iter().any(|r| r.to_string().contains(INPUT_MARKER)),
        "the input is not logged"
    );
    // The human form too.
    let text = ok(
        &run(vec![s("logs"), s("remote-fn"), s("--since"), s("10m")])
            .await
            .unwrap(),
    );
    assert!(
        text.contains(CONSOLE_MARKER) && text.contains("deeper"),
        "{text}"
    );

    // Nothing readable where the operator looks: the database and every process's log.
    assert!(engine.terminate(), "the engine stops on SIGTERM");
    assert!(gw.terminate(), "the gateway stops on SIGTERM");
    assert!(kds.terminate(), "the KDS stops on SIGTERM");
    let mut channels = common::leaks::files_under(&tmp.path().join("gw"));
    channels.extend(common::leaks::files_under(&logs));
    assert!(
        channels.len() >= 7,
        "{:?}",
        channels.iter().map(|c| &c.0).collect::<Vec<_>>()
    );
    let needles = common::leaks::needles(&[CONSOLE_MARKER, THROW_MARKER, INPUT_MARKER]);
    common::leaks::assert_none(&needles, &channels);
    let engine_log = std::fs::read_to_string(logs.join("engine-1.stdout")).unwrap();
    assert!(
        engine_log.contains("developer logs to"),
        "the engine says where its records go: {engine_log}"
    );
}

/// `clave gateway --log-retention 2s`: the sweep deletes a record once it is older than that,
/// with no further record arriving (no engine needed: the record comes in over the engine
/// endpoint with the admin token).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_enforces_its_log_retention() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let g = free_ports(1)[0];
    let gateway = format!("http://127.0.0.1:{g}");
    let mut gw = Proc::new(
        "gateway",
        &[
            s("gateway"),
            s("--listen"),
            format!("127.0.0.1:{g}"),
            s("--kds"),
            s("http://127.0.0.1:9"),
            s("--database-url"),
            format!("sqlite://{}", tmp.path().join("gateway.db").display()),
            s("--log-retention"),
            s("2s"),
        ],
        &[("CLAVE_ADMIN_TOKEN", s(ADMIN))],
        &logs,
    );
    let http = http_client();
    gw.start();
    wait_ok(
        &http,
        &format!("{gateway}/healthz"),
        &mut gw,
        Duration::from_secs(60),
    )
    .await;
    let token = deploy_token(&http, &gateway).await;
    let sealed = "A".repeat(80);
    let batch = serde_json::json!({"records": [
        {"project": "default", "function": "f", "sealed": sealed},
        {"project": "nope", "function": "f", "sealed": sealed},
        {"project": "default", "function": "f", "sealed": "AAAA"},
    ], "dropped": 3});
    let r = json(
        http.post(format!("{gateway}/v1/engines/logs"))
            .bearer_auth(ADMIN)
            .json(&batch),
    )
    .await;
    assert_eq!(
        r,
        serde_json::json!({"stored": 1, "refused": 2}),
        "an unknown project and a record too short to be sealed are refused"
    );
    let read = || async {
        let v = json(
            http.get(format!("{gateway}/v1/projects/default/logs"))
                .bearer_auth(&token),
        )
        .await;
        v["entries"].as_array().unwrap().len()
    };
    assert_eq!(read().await, 1, "stored and readable");
    let metrics = http
        .get(format!("{gateway}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("clave_gateway_log_records_dropped_total 3"),
        "{metrics}"
    );
    // Older than 2 s: gone from reads at once, and from the database by the sweep.
    let started = Instant::now();
    while read().await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the record outlived its retention"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let db = tmp.path().join("gateway.db");
    let started = Instant::now();
    loop {
        let n: i64 = {
            use sqlx::ConnectOptions as _;
            let mut c = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&db)
                .connect()
                .await
                .unwrap();
            sqlx::query_scalar("SELECT COUNT(*) FROM logs")
                .fetch_one(&mut c)
                .await
                .unwrap()
        };
        if n == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the sweep did not delete the expired record"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(gw.terminate());
}

/// A new deploy token of the default project, made with the admin token.
async fn deploy_token(http: &reqwest::Client, gateway: &str) -> String {
    let token = json(
        http.post(format!("{gateway}/v1/projects/default/tokens"))
            .bearer_auth(ADMIN),
    )
    .await;
    token["token"].as_str().unwrap().to_owned()
}
