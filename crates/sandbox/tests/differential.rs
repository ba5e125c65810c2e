//! Faithfulness: every program in tests/programs runs under Node 20 and under the sandbox, and the
//! flattened responses (status, headers, body) must be identical.

#[path = "../../gateway/tests/common/services.rs"]
mod services;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use base64::Engine as _;
use clave_sandbox::{Error, HttpRequest, Limits, PoolConfig, SandboxPool};
use sha2::Digest as _;

const METHOD: &str = "POST";
const URL: &str = "https://example.com/echo/path?x=1&y=two%20words";
const BODY: &str = r#"{"hello":"world","n":[1,2,3],"nested":{"ü":"✓"}}"#;

fn headers() -> Vec<(String, String)> {
    vec![
        ("content-type".into(), "application/json".into()),
        ("x-test".into(), "abc".into()),
        ("Accept".into(), "*/*".into()),
    ]
}

fn programs() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/programs");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/programs exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "js"))
        .collect();
    v.sort();
    v
}

fn node_outputs(progs: &[PathBuf]) -> Option<Vec<serde_json::Value>> {
    if Command::new("node").arg("--version").output().is_err() {
        services::record_skip(
            "sandbox differential test against Node",
            "`node` is not installed",
        );
        return None;
    }
    let req =
        serde_json::json!({ "method": METHOD, "url": URL, "headers": headers(), "body": BODY });
    let req_path =
        std::env::temp_dir().join(format!("clave-sandbox-req-{}.json", std::process::id()));
    std::fs::write(&req_path, req.to_string()).expect("write request file");
    let runner = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node_runner.mjs");
    let out = Command::new("node")
        .arg(&runner)
        .arg(&req_path)
        .args(progs)
        .output()
        .expect("run node");
    let _ = std::fs::remove_file(&req_path);
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8 output");
    Some(
        text.lines()
            .map(|l| serde_json::from_str(l).expect("runner prints JSON"))
            .collect(),
    )
}

async fn sandbox_output(pool: &SandboxPool, code: &str) -> serde_json::Value {
    let hash: [u8; 32] = sha2::Sha256::digest(code.as_bytes()).into();
    let req = HttpRequest {
        env: Default::default(),
        method: METHOD.into(),
        url: URL.into(),
        headers: headers(),
        body: BODY.as_bytes().to_vec(),
    };
    match pool
        .run(hash, Arc::from(code), req, Limits::default())
        .await
    {
        Ok(o) => serde_json::json!({
            "status": o.response.status,
            "headers": o.response.headers,
            "body": base64::engine::general_purpose::STANDARD.encode(&o.response.body),
        }),
        Err(Error::ScriptError { message, .. }) => serde_json::json!({ "error": message }),
        Err(Error::BadResponse { .. }) => serde_json::json!({ "bad": true }),
        Err(e) => serde_json::json!({ "sandbox_error": e.to_string() }),
    }
}

fn show(v: &serde_json::Value) -> String {
    let mut v = v.clone();
    if let Some(b) = v.get("body").and_then(|b| b.as_str()) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b)
            .unwrap_or_default();
        v["body"] = serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned());
    }
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_match_node() {
    let progs = programs();
    assert!(!progs.is_empty());
    let Some(expected) = node_outputs(&progs) else {
        return;
    };
    // One line per program: `zip` below would silently drop programs the runner did not answer.
    assert_eq!(
        expected.len(),
        progs.len(),
        "the Node runner answered {} of {} programs",
        expected.len(),
        progs.len()
    );
    let pool = SandboxPool::new(PoolConfig::default()).expect("pool");
    let mut failures = Vec::new();
    for (p, want) in progs.iter().zip(expected) {
        let code = std::fs::read_to_string(p).expect("read program");
        let got = sandbox_output(&pool, &code).await;
        if got != want {
            failures.push(format!(
                "{}:\n  node:    {}\n  sandbox: {}",
                p.display(),
                show(&want),
                show(&got)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} program(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
