//! End-to-end confidentiality (issue 7): unique markers planted in the code, the input and the
//! output never appear in the platform's storage (the data dir: SQLite database, WAL, KDS files)
//! nor in the platform process's captured stdout/stderr, even at `RUST_LOG=debug` — neither as text
//! nor base64, base64url, hex or JSON-escaped (`common/leaks.rs`). The cluster test
//! (`tests/cluster.rs`) sweeps the multi-process deployment's channels: PostgreSQL, NATS payloads,
//! `/metrics`, admin endpoints and every process's logs.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{DevProcess, clave, deploy_json, ok};

const CODE_MARKER: &str = "CODEMARKER-4c1e9a7d-secret-algorithm";
const INPUT_MARKER: &str = "INPUTMARKER-b83f02e6-patient-record";
// The output marker is assembled at run time, so its text is in neither the code nor the input.
const OUTPUT_MARKER: &str = "OUTPUTMARKER-91d2c7aa-diagnosis";

#[test]
fn markers_never_reach_storage_or_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = tmp.path().join("config");
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let code = format!(
        r#"// {CODE_MARKER}
const secret = "{CODE_MARKER}";
export default {{
  async fetch(request) {{
    const input = await request.json();
    console.log("console sees", input.record, secret);
    const out = ["OUTPUT", "MARKER-91d2c7aa-", "diagnosis"].join("");
    return Response.json({{ result: out, echoed_len: input.record.length, code_len: secret.length }});
  }}
}};
"#
    );
    let code_path = tmp.path().join("secret.js");
    std::fs::write(&code_path, &code).unwrap();

    let dev = DevProcess::start("127.0.0.1:0", &data, &config, &logs, "c");
    deploy_json(&config, code_path.to_str().unwrap(), "secret-fn");
    let input = serde_json::json!({ "record": INPUT_MARKER }).to_string();
    for _ in 0..3 {
        let o = clave(&config, &["invoke", "secret-fn", "--data", &input]);
        let body: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
        assert_eq!(
            body["result"], OUTPUT_MARKER,
            "the caller does see the result"
        );
    }
    // A throwing call whose exception message carries the input must not leak either.
    let thrower = tmp.path().join("thrower.js");
    std::fs::write(
        &thrower,
        "export default { async fetch(r) { const i = await r.json(); throw new Error('bad ' + i.record) } }",
    )
    .unwrap();
    deploy_json(&config, thrower.to_str().unwrap(), "thrower");
    let o = clave(&config, &["invoke", "thrower", "--data", &input]);
    assert_eq!(o.status.code(), Some(5));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(INPUT_MARKER),
        "only the caller reads it"
    );
    let stdout_log = dev.stdout_log.clone();
    let stderr_log = dev.stderr_log.clone();
    dev.stop();

    let mut channels = common::leaks::files_under(&data);
    assert!(
        channels
            .iter()
            .any(|(p, _)| Path::new(p).file_name().unwrap() == "gateway.db"),
        "the database exists: {:?}",
        channels.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    for f in [stdout_log, stderr_log] {
        channels.push((f.display().to_string(), std::fs::read(&f).unwrap()));
    }
    let log_text = String::from_utf8_lossy(&channels[channels.len() - 1].1);
    assert!(
        log_text.contains("secret-fn"),
        "the logs did capture the platform's activity"
    );
    let needles = common::leaks::needles(&[CODE_MARKER, INPUT_MARKER, OUTPUT_MARKER]);
    common::leaks::assert_none(&needles, &channels);
}
