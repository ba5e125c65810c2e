//! The differential test of `fetch()`: `crates/sandbox/tests/fetch_programs/*.js` run under Node 20
//! (the sandbox's `node_runner.mjs`, the test CA in `NODE_EXTRA_CA_CERTS`, `.test` names resolved
//! to loopback by a preloaded `dns.lookup`) and in the engine (`SandboxRunner` with the test
//! egress) against the same local HTTPS server; status, headers and body must be identical.
//! Skipped, with a printed reason, when `node` is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use base64::Engine as _;
use clave_proto::code::Limits;
use clave_proto::{CodeHash, HostPattern, InvokeRequest};

use super::EgressConfig;
use super::tests::TestNet;
use crate::runner::{RunRequest, Runner as _, SandboxRunner, SandboxSettings};

/// Resolves `*.test` to 127.0.0.1 inside Node (its fetch connects through `dns.lookup`).
const NODE_DNS: &str = r#"import { createRequire } from 'node:module';
const dns = createRequire(import.meta.url)('dns');
const lookup = dns.lookup;
dns.lookup = function (host, opts, cb) {
  if (typeof opts === 'function') { cb = opts; opts = {}; }
  if (!String(host).endsWith('.test')) return lookup.call(this, host, opts, cb);
  if (opts && opts.all) return process.nextTick(cb, null, [{ address: '127.0.0.1', family: 4 }]);
  return process.nextTick(cb, null, '127.0.0.1', 4);
};
"#;

fn sandbox_tests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sandbox/tests")
}

fn skip(reason: &str) {
    let line = format!("CLAVE-SKIPPED: fetch differential test against Node: {reason}\n");
    print!("{line}");
    if let Some(path) = std::env::var_os("CLAVE_TEST_SKIP_LOG") {
        use std::io::Write as _;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .unwrap_or_else(|e| panic!("cannot append to CLAVE_TEST_SKIP_LOG: {e}"));
    }
}

fn decoded(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(b) = v.get("body").and_then(|b| b.as_str()) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b)
            .expect("base64 body");
        v["body"] = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned().into());
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_programs_match_node() {
    if Command::new("node").arg("--version").output().is_err() {
        skip("`node` is not installed");
        return;
    }
    let net = TestNet::start();
    let base = format!("https://api.test:{}", net.api);
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &net.ca_pem).expect("write CA");
    let preload = dir.path().join("dns.mjs");
    std::fs::write(&preload, NODE_DNS).expect("write preload");
    let req = dir.path().join("request.json");
    let request = serde_json::json!({
        "method": "POST", "url": "https://fn.example/", "headers": [], "body": base,
    });
    std::fs::write(&req, request.to_string()).expect("write request");
    let mut progs: Vec<PathBuf> = std::fs::read_dir(sandbox_tests().join("fetch_programs"))
        .expect("fetch_programs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "js"))
        .collect();
    progs.sort();
    assert!(!progs.is_empty());
    let out = Command::new("node")
        .arg("--import")
        .arg(&preload)
        .arg(sandbox_tests().join("node_runner.mjs"))
        .arg(&req)
        .args(&progs)
        .env("NODE_EXTRA_CA_CERTS", &ca)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("runner prints JSON"))
        .collect();
    assert_eq!(lines.len(), progs.len());

    let settings = SandboxSettings {
        workers: 1,
        ..SandboxSettings::default()
    };
    let egress = net.egress(EgressConfig {
        max_subrequests: 64,
        ..EgressConfig::default()
    });
    let runner = SandboxRunner::with_egress(&settings, egress).expect("runner");
    let outbound: Arc<[HostPattern]> =
        Arc::from(vec![HostPattern::parse("api.test").expect("pattern")]);
    for (p, want) in progs.iter().zip(lines) {
        let code = std::fs::read_to_string(p).expect("program");
        let hash = CodeHash::of(code.as_bytes());
        let invoke = InvokeRequest::new(
            "default".parse().expect("project"),
            "f".parse().expect("function"),
            hash,
            0,
            base.clone().into_bytes(),
        );
        let got = runner
            .run(
                RunRequest::new(hash, Arc::from(code.as_str()), invoke, Limits::default())
                    .with_outbound(outbound.clone()),
            )
            .await
            .result
            .expect("run");
        let got = serde_json::json!({
            "status": got.status,
            "headers": got.headers,
            "body": base64::engine::general_purpose::STANDARD.encode(&got.body),
        });
        let (want, got) = (decoded(want), decoded(got));
        assert_eq!(
            got,
            want,
            "{}: sandbox (left) and Node (right) differ",
            p.display()
        );
    }
}
