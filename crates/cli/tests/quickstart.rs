//! The README quickstart as an integration test: a real `clave dev` process, deploy and invoke
//! with the CLI (no copy-and-paste: everything found through `dev.json`), restart, invoke again.
#![allow(clippy::unwrap_used)]

mod common;

use common::{DevProcess, clave, clave_stdin, ok, stderr, stdout};

#[test]
fn quickstart_deploy_invoke_restart_invoke() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = tmp.path().join("config");
    let logs = tmp.path();

    let dev = DevProcess::start("127.0.0.1:0", &data, &config, logs, "1");
    let port = dev.port();
    let banner = std::fs::read_to_string(&dev.stdout_log).unwrap();
    assert!(banner.contains(&dev.url), "{banner}");
    assert!(
        banner.contains("clave deploy"),
        "next command missing: {banner}"
    );
    let banner_err = std::fs::read_to_string(&dev.stderr_log).unwrap();
    assert!(banner_err.contains("INSECURE"), "{banner_err}");

    // Terminal 2, verbatim from the README.
    let o = clave(&config, &["deploy", "examples/hello.js", "--name", "hello"]);
    let out = ok(&o);
    assert!(out.contains("code hash:"), "{out}");
    assert!(out.contains("version 1"), "{out}");
    assert!(
        stderr(&o).contains("INSECURE"),
        "every output says it is insecure"
    );

    let o = clave(&config, &["invoke", "hello", "--data", r#"{"name":"Ada"}"#]);
    let body: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(body["greeting"], "Hello, Ada!");
    assert!(stderr(&o).contains("INSECURE"));

    // The next README lines: a sealed secret, a function that reads it and logs, its logs.
    let o = clave_stdin(
        &config,
        &["secret", "put", "API_KEY", "--function", "greet"],
        b"sk-test-123\n",
    );
    assert!(
        ok(&o).contains("stored API_KEY version 1"),
        "{}",
        stdout(&o)
    );
    ok(&clave(
        &config,
        &[
            "deploy",
            "examples/greet.js",
            "--name",
            "greet",
            "--secret",
            "API_KEY",
            "--var",
            "GREETING=Hi",
        ],
    ));
    let o = clave(&config, &["invoke", "greet", "--data", r#"{"name":"Ada"}"#]);
    let body: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(body["greeting"], "Hi, Ada!");
    assert_eq!(body["api_key_length"], 11);
    // The record is stored right after the call; read until it is there.
    let mut logs_out = String::new();
    for _ in 0..100 {
        logs_out = ok(&clave(&config, &["logs", "greet"]));
        if logs_out.contains("greeting Ada") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(logs_out.contains("greeting Ada"), "{logs_out}");
    assert!(logs_out.contains(" ok 200"), "{logs_out}");

    // The other commands a newcomer tries.
    let list = ok(&clave(&config, &["functions", "list"]));
    assert!(list.contains("hello"), "{list}");
    let att = ok(&clave(&config, &["attest"]));
    assert!(att.contains("measurement"), "{att}");
    let keys: serde_json::Value =
        serde_json::from_str(&ok(&clave(&config, &["--json", "keys"]))).unwrap();
    assert_eq!(keys["insecure"], true);
    assert!(keys["bundles"].as_array().unwrap().len() >= 2);

    // Restart on the same port and data dir: functions and keys survive.
    dev.stop();
    let dev = DevProcess::start(&format!("127.0.0.1:{port}"), &data, &config, logs, "2");
    let o = clave(
        &config,
        &["invoke", "hello", "--data", r#"{"name":"again"}"#],
    );
    let body: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(body["greeting"], "Hello, again!", "stderr: {}", stderr(&o));

    // A second deploy becomes version 2; rollback returns to version 1.
    let o = clave(
        &config,
        &[
            "--json",
            "deploy",
            "examples/text-digest.js",
            "--name",
            "hello",
        ],
    );
    let d: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(d["version"], 2);
    let o = clave(&config, &["functions", "rollback", "hello"]);
    assert!(
        stdout(&o).contains("version 1 is now active"),
        "{}",
        stdout(&o)
    );
    // The recorded pin is now version 2's hash: the engine refuses version 1's code.
    let o = clave(&config, &["invoke", "hello", "--data", "{}"]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    // --trust-latest pins what is active.
    let o = clave(
        &config,
        &[
            "invoke",
            "hello",
            "--trust-latest",
            "--data",
            r#"{"name":"L"}"#,
        ],
    );
    assert!(ok(&o).contains("Hello, L!"));
    assert!(stderr(&o).contains("--trust-latest"));
    drop(dev);
}

#[test]
fn help_teaches_and_completions_work() {
    let tmp = tempfile::tempdir().unwrap();
    let o = clave(tmp.path(), &["--help"]);
    let help = ok(&o);
    for needle in [
        "Exit codes",
        "clave dev",
        "clave deploy",
        "--insecure-dev",
        "CLAVE_GATEWAY",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}: {help}");
    }
    // `-h` (short help) lists the exit codes too.
    let o = clave(tmp.path(), &["-h"]);
    let short = ok(&o);
    for needle in ["Exit codes", "3 attestation failed", "6 the engine refused"] {
        assert!(short.contains(needle), "-h lacks {needle}: {short}");
    }
    let o = clave(tmp.path(), &["completions", "bash"]);
    assert!(ok(&o).contains("clave"));
    let o = clave(tmp.path(), &["up", "--help"]);
    assert!(ok(&o).contains("--data-dir"));
    let o = clave(tmp.path(), &["invoke"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "missing argument is a usage error"
    );
}
