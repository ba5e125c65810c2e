//! The developer loop end to end, against a real `clave dev`: a sealed secret and a plain var
//! reach the function's `env`; `clave tail` and `clave logs` print console output and the
//! outcomes of ok, throwing and timed-out calls; a record altered in the database is refused;
//! `clave secret list` never shows a value; and neither the secret value nor any console line
//! nor a log record's text appears in the platform's storage or logs (every encoding of
//! `common/leaks.rs`).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{DevProcess, clave, clave_command, clave_stdin, ok, stderr, stdout};

const SECRET_MARKER: &str = "SECRETMARKER-5b1f77c2-api-key";
const CONSOLE_MARKER: &str = "CONSOLEMARKER-e09a3d41-debug-line";
const THROW_MARKER: &str = "THROWMARKER-7c55e0b9-reason";

/// `clave logs NAME --json` as parsed records (one per line).
fn json_records(config: &Path, name: &str) -> (Vec<serde_json::Value>, std::process::Output) {
    let o = clave(config, &["--json", "logs", name, "--since", "1h"]);
    let records = stdout(&o)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("outcome").is_some())
        .collect();
    (records, o)
}

#[test]
fn secrets_vars_and_sealed_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = tmp.path().join("config");
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let dev = DevProcess::start("127.0.0.1:0", &data, &config, &logs, "d");

    // A secret sealed on the client; its value arrives on stdin.
    let o = clave_stdin(
        &config,
        &["secret", "put", "API_KEY", "--function", "env-fn"],
        format!("{SECRET_MARKER}\n").as_bytes(),
    );
    ok(&o);
    // A second secret the manifest does not name: never passed.
    ok(&clave_stdin(
        &config,
        &["secret", "put", "UNLISTED"],
        b"not-for-this-function",
    ));
    let list = ok(&clave(&config, &["--json", "secret", "list"]));
    assert!(!list.contains(SECRET_MARKER), "list never shows values");
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let names: Vec<&str> = list["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["UNLISTED", "API_KEY"], "project-wide first: {list}");

    let code = format!(
        r#"export default {{
  async fetch(request, env) {{
    const input = await request.json();
    console.log("{CONSOLE_MARKER}", input.mode);
    console.warn("careful");
    if (input.mode === "throw") throw new Error("{THROW_MARKER}");
    if (input.mode === "spin") {{ for (;;) {{}} }}
    return Response.json({{ key: env.API_KEY, greeting: env.GREETING, names: Object.keys(env).sort() }});
  }}
}};
"#
    );
    let code_path = tmp.path().join("env-fn.js");
    std::fs::write(&code_path, code).unwrap();
    let d = ok(&clave(
        &config,
        &[
            "--json",
            "deploy",
            code_path.to_str().unwrap(),
            "--name",
            "env-fn",
            "--secret",
            "API_KEY",
            "--var",
            "GREETING=hello",
            "--limit",
            "cpu_ms=300",
        ],
    ));
    assert!(
        config.join("log-key").exists(),
        "deploy created the log key"
    );

    // A tail started before the calls prints them as they happen.
    let mut tail = clave_command(&config, &["tail", "env-fn", "--count", "3"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));

    let o = clave(&config, &["invoke", "env-fn", "--data", r#"{"mode":"ok"}"#]);
    let body: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(body["key"], SECRET_MARKER, "the secret reached env: {d}");
    assert_eq!(body["greeting"], "hello");
    assert_eq!(
        body["names"],
        serde_json::json!(["API_KEY", "GREETING"]),
        "a secret the manifest does not name is not passed"
    );
    let o = clave(
        &config,
        &["invoke", "env-fn", "--data", r#"{"mode":"throw"}"#],
    );
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let o = clave(
        &config,
        &["invoke", "env-fn", "--data", r#"{"mode":"spin"}"#],
    );
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));

    let started = Instant::now();
    let tail_out = loop {
        if let Some(status) = tail.try_wait().unwrap() {
            let out = tail.wait_with_output().unwrap();
            assert!(status.success(), "tail: {}", stderr(&out));
            break stdout(&out);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "tail did not print three records"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(tail_out.contains(CONSOLE_MARKER), "{tail_out}");
    assert!(tail_out.contains("careful"), "{tail_out}");
    for outcome in [" ok 200", " script-error 500", " timeout 504"] {
        assert!(tail_out.contains(outcome), "{outcome}: {tail_out}");
    }
    assert!(
        tail_out.contains(THROW_MARKER),
        "the error message: {tail_out}"
    );
    assert!(
        !tail_out.contains(SECRET_MARKER),
        "the output is not logged"
    );

    // History, as JSON, filtered by status.
    let (records, o) = json_records(&config, "env-fn");
    assert!(o.status.success(), "{}", stderr(&o));
    let outcomes: Vec<&str> = records
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["ok", "script-error", "timeout"]);
    assert_eq!(records[0]["console"][0]["level"], "log");
    assert_eq!(records[0]["console"][1]["level"], "warn");
    assert_eq!(records[0]["request_bytes"], 13);
    let errors = ok(&clave(
        &config,
        &["logs", "env-fn", "--status", "error", "--since", "10m"],
    ));
    assert!(!errors.contains(" ok 200"), "{errors}");
    assert!(errors.contains("script-error"), "{errors}");

    let stdout_log = dev.stdout_log.clone();
    let stderr_log = dev.stderr_log.clone();
    dev.stop();

    // Nothing in plaintext anywhere the operator looks.
    let mut channels = common::leaks::files_under(&data);
    for f in [stdout_log, stderr_log] {
        channels.push((f.display().to_string(), std::fs::read(&f).unwrap()));
    }
    let needles = common::leaks::needles(&[SECRET_MARKER, CONSOLE_MARKER, THROW_MARKER, "careful"]);
    common::leaks::assert_none(&needles, &channels);

    // One bit changed in a stored record: refused, with a message and exit code 1.
    tamper_first_record(&data.join("gateway.db"));
    let dev = DevProcess::start("127.0.0.1:0", &data, &config, &logs, "e");
    let o = clave(&config, &["logs", "env-fn", "--since", "1h"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stderr(&o).contains("refused log record"), "{}", stderr(&o));
    assert!(stdout(&o).contains("script-error"), "the others still show");
    dev.stop();
}

/// Flip one bit of the authentication tag of the oldest stored record.
fn tamper_first_record(db: &Path) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::ConnectOptions as _;
        let mut c = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .connect()
            .await
            .unwrap();
        let (id, mut sealed): (i64, Vec<u8>) =
            sqlx::query_as("SELECT id, sealed FROM logs ORDER BY id LIMIT 1")
                .fetch_one(&mut c)
                .await
                .unwrap();
        *sealed.last_mut().unwrap() ^= 1;
        sqlx::query("UPDATE logs SET sealed = $1 WHERE id = $2")
            .bind(sealed)
            .bind(id)
            .execute(&mut c)
            .await
            .unwrap();
    });
}
