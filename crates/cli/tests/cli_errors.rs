//! Every error a newcomer can hit prints one clear sentence on stderr and exits non-zero with
//! the documented code.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Output;

use common::{DevProcess, clave, deploy_json, stderr};

/// Exactly one `error:` line, a sentence, and the expected exit code.
fn assert_one_sentence(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "want exactly one error line, got: {err}");
    let line = lines[0];
    assert!(line.ends_with('.'), "not a sentence: {line}");
    assert!(
        line.to_lowercase().contains(&needle.to_lowercase()),
        "{line:?} does not mention {needle:?}"
    );
    assert_eq!(o.status.code(), Some(code), "exit code for {line}");
    // Nothing but the error and the insecure banner on stderr.
    for l in err.lines() {
        assert!(
            l.starts_with("error:") || l.contains("INSECURE"),
            "unexpected stderr line: {l}"
        );
    }
}

#[test]
fn error_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = tmp.path().join("config");
    let dev = DevProcess::start("127.0.0.1:0", &data, &config, tmp.path(), "e");
    let hello = deploy_json(&config, "examples/hello.js", "hello");
    let hash = hello["code_hash"].as_str().unwrap().to_owned();

    // Wrong token.
    let o = clave(&config, &["--token", "cdt_wrong", "functions", "list"]);
    assert_one_sentence(&o, 1, "token");

    // Unknown function.
    let o = clave(&config, &["invoke", "nosuch", "--hash", &hash]);
    assert_one_sentence(&o, 1, "no function named \"nosuch\"");

    // An asynchronous call on `clave dev` (no queue): says what is missing, nothing queued.
    let o = clave(
        &config,
        &[
            "invoke", "hello", "--hash", &hash, "--async", "--data", "{}",
        ],
    );
    assert_one_sentence(&o, 1, "asynchronous calls need a gateway with a queue");

    // Hash mismatch: the engine refuses.
    let zero = "0".repeat(64);
    let o = clave(
        &config,
        &["invoke", "hello", "--hash", &zero, "--data", "{}"],
    );
    assert_one_sentence(&o, 6, "code hash");

    // Attestation refused: a simulated TEE without --insecure-dev.
    let o = clave(
        &config,
        &[
            "--gateway",
            &dev.url,
            "--token",
            "t",
            "deploy",
            "examples/hello.js",
            "--name",
            "x",
        ],
    );
    assert_one_sentence(&o, 3, "attestation refused");
    let o = clave(&config, &["--gateway", &dev.url, "attest"]);
    assert_one_sentence(&o, 3, "--insecure-dev");

    // Malformed input file, missing input file, malformed code, bad hash syntax.
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, "{\"name\": ").unwrap();
    let o = clave(
        &config,
        &["invoke", "hello", "--data", &format!("@{}", bad.display())],
    );
    assert_one_sentence(&o, 2, "not valid JSON");
    let o = clave(
        &config,
        &["invoke", "hello", "--data", "@/nonexistent/input.json"],
    );
    assert_one_sentence(&o, 2, "cannot read input file");
    let badjs = tmp.path().join("bad.js");
    std::fs::write(&badjs, "export default { fetch( }").unwrap();
    let o = clave(
        &config,
        &["deploy", badjs.to_str().unwrap(), "--name", "bad"],
    );
    assert_one_sentence(&o, 2, "not a deployable function");
    let o = clave(&config, &["invoke", "hello", "--hash", "abc"]);
    assert_one_sentence(&o, 2, "not a code hash");
    let o = clave(&config, &["invoke", "never-deployed"]);
    assert_one_sentence(&o, 2, "--trust-latest");
    let o = clave(
        &config,
        &[
            "deploy",
            "examples/hello.js",
            "--name",
            "hello",
            "--limit",
            "cpu=1",
        ],
    );
    assert_one_sentence(&o, 2, "unknown limit");
    for (bad, why) in [
        ("*.com", "two labels"),
        ("https://api.example.com", "no scheme"),
        ("10.0.0.1", "ip addresses are not supported"),
    ] {
        let o = clave(&config, &["deploy", "examples/hello.js", "--outbound", bad]);
        assert_one_sentence(&o, 2, why);
    }

    // The outbound list is sealed into the manifest and shown by `functions show`.
    let o = clave(
        &config,
        &[
            "--json",
            "deploy",
            "examples/currency-convert.js",
            "--outbound",
            "API.frankfurter.dev,*.example.com",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["outbound"],
        serde_json::json!(["api.frankfurter.dev", "*.example.com"])
    );
    let o = clave(&config, &["functions", "show", "currency-convert"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("outbound: api.frankfurter.dev, *.example.com"),
        "{text}"
    );
    let o = clave(&config, &["functions", "show", "hello"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("outbound: none"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // The function throws / hits a limit: exit 5, the message decrypted for the caller only.
    let thrower = tmp.path().join("thrower.js");
    std::fs::write(
        &thrower,
        "export default { fetch() { throw new Error('no such customer') } }",
    )
    .unwrap();
    deploy_json(&config, thrower.to_str().unwrap(), "thrower");
    let o = clave(&config, &["invoke", "thrower"]);
    assert_one_sentence(&o, 5, "no such customer");
    let spin = tmp.path().join("spin.js");
    std::fs::write(&spin, "export default { fetch() { for(;;){} } }").unwrap();
    let o = clave(
        &config,
        &[
            "--json",
            "deploy",
            spin.to_str().unwrap(),
            "--name",
            "spin",
            "--limit",
            "cpu_ms=50",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = clave(&config, &["invoke", "spin"]);
    assert_one_sentence(&o, 5, "limit");

    // Gateway down: the recorded dev platform is stopped.
    let url = dev.url.clone();
    dev.stop();
    let o = clave(&config, &["invoke", "hello", "--data", "{}"]);
    assert_one_sentence(&o, 4, "cannot reach the gateway");
    let o = clave(&config, &["--gateway", &url, "--insecure-dev", "attest"]);
    assert_one_sentence(&o, 4, "cannot reach the gateway");
}

/// `clave kds` refuses, before touching its data directory, a start that would leave its master
/// secret nowhere safe: a memory-only KDS needs a replica to join.
#[test]
fn kds_without_a_way_to_keep_its_master_secret_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("kds");
    let data_arg = data.to_str().unwrap();
    let o = clave(
        tmp.path(),
        &[
            "kds",
            "--insecure-simulated-tee",
            "--data-dir",
            data_arg,
            "--master-secret-source",
            "memory",
        ],
    );
    assert_one_sentence(&o, 2, "give --join URL or --peers LIST");
    let o = clave(
        tmp.path(),
        &[
            "kds",
            "--insecure-simulated-tee",
            "--data-dir",
            data_arg,
            "--master-secret-source",
            "external:/run/key",
            "--join",
            "http://127.0.0.1:9",
        ],
    );
    assert_one_sentence(&o, 2, "does not join a replica");
    assert!(!data.exists(), "the data directory was touched");
    let o = clave(
        tmp.path(),
        &[
            "kds",
            "--data-dir",
            data_arg,
            "--master-secret-source",
            "hsm",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unknown master secret source `hsm`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn nothing_configured_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let o = clave(tmp.path(), &["invoke", "hello", "--hash", &"a".repeat(64)]);
    assert_one_sentence(&o, 2, "clave dev");
    let o = clave(tmp.path(), &["--json", "functions", "list"]);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 2);
}

/// `clave dev --log-retention` takes a duration with a unit, and refuses anything else before it
/// starts anything (the data directory stays untouched).
#[test]
fn dev_log_retention_needs_a_duration_with_a_unit() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("dev-data");
    for bad in ["7 days", "0d", "7"] {
        let o = clave(
            tmp.path(),
            &[
                "dev",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                data.to_str().unwrap(),
                "--log-retention",
                bad,
            ],
        );
        assert_one_sentence(&o, 2, "--log-retention (CLAVE_DEV_LOG_RETENTION) must be");
    }
    assert!(!data.exists(), "the data directory was touched");
}
