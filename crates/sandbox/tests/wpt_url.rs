//! WHATWG URL conformance: the web-platform-tests URL data (`tests/data/urltestdata.json`,
//! `tests/data/setters_tests.json`; see `tests/data/README.md`) runs through `new URL()` inside
//! the sandbox. The set of failing cases must be exactly the documented deviations in
//! `tests/data/url_known_deviations.json` (a case that starts passing fails the test too, so the
//! list stays true).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use clave_sandbox::{HttpRequest, Limits, PoolConfig, SandboxPool};
use sha2::Digest as _;

fn data(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wpt_url_data_passes_except_documented_deviations() {
    let body = format!(
        r#"{{"parsing": {}, "setters": {}}}"#,
        data("urltestdata.json"),
        data("setters_tests.json")
    );
    let code = data("wpt_url_runner.js");
    let hash: [u8; 32] = sha2::Sha256::digest(code.as_bytes()).into();
    let pool = SandboxPool::new(PoolConfig::default()).expect("pool");
    let limits = Limits {
        cpu_ms: 20_000,
        ..Limits::default()
    };
    let out = pool
        .run(
            hash,
            Arc::from(code.as_str()),
            HttpRequest {
                method: "POST".into(),
                url: "https://example.com/".into(),
                headers: vec![("content-type".into(), "application/json".into())],
                body: body.into_bytes(),
                env: Default::default(),
            },
            limits,
        )
        .await
        .expect("the runner completes");
    assert_eq!(out.response.status, 200);
    let report: serde_json::Value =
        serde_json::from_slice(&out.response.body).expect("the runner answers JSON");
    // Every case ran (WPT's data at the commit named in the files' comments).
    assert_eq!(report["parsing"], 891, "parsing cases run");
    assert_eq!(report["setters"], 278, "setter cases run");

    let failures = report["failures"].as_array().expect("failures");
    let failed: BTreeSet<String> = failures
        .iter()
        .map(|f| f["name"].as_str().expect("name").to_owned())
        .collect();
    let known: Vec<String> =
        serde_json::from_str(&data("url_known_deviations.json")).expect("deviations list");
    let known: BTreeSet<String> = known.into_iter().collect();

    let unexpected: Vec<String> = failures
        .iter()
        .filter(|f| !known.contains(f["name"].as_str().unwrap_or_default()))
        .map(|f| format!("{:?}: {}", f["name"], f["why"]))
        .collect();
    let now_passing: Vec<&String> = known.difference(&failed).collect();
    if unexpected.is_empty() && now_passing.is_empty() {
        return;
    }
    // The actual list, in the deviations file's format, for review (and to replace the file
    // when a change of parser is intended).
    let actual = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("url_actual_deviations.json");
    let list: Vec<&String> = failed.iter().collect();
    std::fs::write(
        &actual,
        serde_json::to_string_pretty(&list).expect("json") + "\n",
    )
    .expect("write the actual list");
    panic!(
        "{} of {} WPT URL cases fail.\nFailing but not listed as known deviations ({}):\n{}\n\
         Listed as deviations but passing ({}):\n{:#?}\nThe actual list is in {}.",
        failed.len(),
        891 + 278,
        unexpected.len(),
        unexpected.join("\n"),
        now_passing.len(),
        now_passing,
        actual.display()
    );
}
