//! `env` and sealed developer logs inside the engine: vars and the secrets a manifest names
//! reach the function; a secret sealed for another project, function, name or version (the
//! AAD binding) refuses the call before it runs; a secret the manifest does not name is not
//! passed; each call's record is sealed to the manifest's log key only, with console output
//! and the outcome of ok, throwing and timed-out calls.

mod common;

use std::sync::{Arc, Mutex};

use clave_engine::SealedLog;
use clave_proto::ProblemKind;
use clave_proto::code::{Manifest, seal_code};
use clave_proto::devlog::LogKeyPair;
use clave_proto::secret::{SealedSecret, SecretScope, SecretSet, seal_secret};
use clave_proto::spec::KeyPurpose;
use common::*;

const ENV_CODE: &str = r#"export default {
  async fetch(request, env) {
    const mode = await request.text();
    console.log("mode", mode);
    console.error("to stderr");
    if (mode === "throw") throw new TypeError("thrown " + mode);
    if (mode === "spin") { for (;;) {} }
    return Response.json(env);
  }
};"#;

fn deploy_env(
    h: &Harness,
    vars: &[(&str, &str)],
    secrets: &[&str],
    log: Option<&LogKeyPair>,
) -> Deployed {
    let d = h.deploy("env-fn", ENV_CODE, fast_limits());
    let mut m = Manifest::from_bytes(&d.manifest).expect("manifest");
    m.vars = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    m.secrets = secrets.iter().map(|s| (*s).to_owned()).collect();
    m.log_key = log.map(|k| k.public().to_hex());
    let manifest = m.to_bytes();
    let sealed = seal_code(
        &h.key_config(KeyPurpose::Code),
        &manifest,
        ENV_CODE.as_bytes(),
        &mut rng(),
    )
    .expect("seal code");
    Deployed {
        manifest,
        sealed_code: sealed.to_bytes(),
        ..d
    }
}

/// A secret as the client seals it, filed by the gateway as (`function_scoped`, `name`, `version`).
fn sealed(
    h: &Harness,
    scope: (&str, Option<&str>, &str, u64),
    filed: (bool, &str, u64),
    value: &str,
) -> SealedSecret {
    let s = SecretScope {
        project: scope.0.parse().expect("project"),
        function: scope.1.map(|f| f.parse().expect("function")),
        name: scope.2.to_owned(),
        version: scope.3,
    };
    SealedSecret {
        function_scoped: filed.0,
        name: filed.1.to_owned(),
        version: filed.2,
        sealed: seal_secret(
            &h.key_config(KeyPurpose::Code),
            &s,
            value.as_bytes(),
            &mut rng(),
        )
        .expect("seal secret"),
    }
}

fn set(secrets: Vec<SealedSecret>) -> Vec<u8> {
    SecretSet { secrets }.encode().expect("encode")
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).expect("json")
}

#[tokio::test]
async fn vars_and_named_secrets_reach_env() {
    let h = ready_harness().await;
    let d = deploy_env(
        &h,
        &[("GREETING", "hi")],
        &["API_KEY", "SHARED", "MISSING"],
        None,
    );
    let secrets = set(vec![
        sealed(
            &h,
            ("default", Some("env-fn"), "API_KEY", 3),
            (true, "API_KEY", 3),
            "own",
        ),
        // A project-wide one of the same name loses to the function's own.
        sealed(
            &h,
            ("default", None, "API_KEY", 1),
            (false, "API_KEY", 1),
            "shared-loses",
        ),
        sealed(
            &h,
            ("default", None, "SHARED", 1),
            (false, "SHARED", 1),
            "shared",
        ),
        // Not named by the manifest: never passed (and never opened).
        sealed(
            &h,
            ("default", None, "OTHER", 1),
            (false, "OTHER", 1),
            "unlisted",
        ),
    ]);
    let r = h
        .call_with_secrets(&d, b"ok", secrets.clone())
        .await
        .expect("runs");
    assert_eq!(
        json(&r.body),
        serde_json::json!({"GREETING": "hi", "API_KEY": "own", "SHARED": "shared"})
    );
    // Again, from the engine's memory: the same.
    let again = h.call_with_secrets(&d, b"ok", secrets).await.expect("runs");
    assert_eq!(again.body, r.body);
    // No secrets handed over: only the vars.
    let r = h.call(&d, b"ok").await.expect("runs");
    assert_eq!(json(&r.body), serde_json::json!({"GREETING": "hi"}));
}

#[tokio::test]
async fn a_secret_sealed_for_anything_else_is_refused_before_the_function_runs() {
    let h = ready_harness().await;
    let d = deploy_env(&h, &[], &["API_KEY"], None);
    let cases = [
        (
            "another project",
            ("other", Some("env-fn"), "API_KEY", 1),
            (true, "API_KEY", 1),
        ),
        (
            "another function",
            ("default", Some("other-fn"), "API_KEY", 1),
            (true, "API_KEY", 1),
        ),
        (
            "project-wide, filed as the function's",
            ("default", None, "API_KEY", 1),
            (true, "API_KEY", 1),
        ),
        (
            "another name",
            ("default", Some("env-fn"), "DB_URL", 1),
            (true, "API_KEY", 1),
        ),
        (
            "another version",
            ("default", Some("env-fn"), "API_KEY", 1),
            (true, "API_KEY", 2),
        ),
    ];
    for (what, scope, filed) in cases {
        let err = h
            .call_with_secrets(&d, b"ok", set(vec![sealed(&h, scope, filed, "v")]))
            .await
            .expect_err(what);
        assert_eq!(err.kind, ProblemKind::Internal, "{what}");
        assert!(
            err.detail
                .as_deref()
                .unwrap_or("")
                .contains("does not open"),
            "{what}: {err:?}"
        );
    }
    assert_eq!(h.runs(), 0, "the function never ran");
    // Garbage instead of a secret set: refused too.
    let err = h
        .call_with_secrets(&d, b"ok", vec![0, 1, 7])
        .await
        .expect_err("garbage");
    assert_eq!(err.kind, ProblemKind::Internal);
    assert_eq!(h.runs(), 0);
}

type Logs = Arc<Mutex<Vec<SealedLog>>>;

/// The records once at least `n` arrived (sealing runs after the answer, on the runtime).
async fn wait_logs(logs: &Logs, n: usize) -> Vec<SealedLog> {
    for _ in 0..1000 {
        let got = logs.lock().expect("lock").clone();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("fewer than {n} log records arrived");
}

fn capture(h: &Harness) -> Logs {
    let logs: Logs = Arc::default();
    let sink = logs.clone();
    h.engine
        .set_log_sink(Arc::new(move |l| sink.lock().expect("lock").push(l)));
    logs
}

#[tokio::test]
async fn each_call_is_logged_sealed_to_the_manifest_key() {
    let h = ready_harness().await;
    let logs = capture(&h);
    let key = LogKeyPair::generate(&mut rng());
    let d = deploy_env(&h, &[("V", "1")], &[], Some(&key));
    h.call(&d, b"ok").await.expect("ok");
    h.call(&d, b"throw").await.expect_err("throws");
    let err = h.call(&d, b"spin").await.expect_err("times out");
    assert_eq!(err.kind, ProblemKind::Timeout);
    let got = wait_logs(&logs, 3).await;
    assert_eq!(got.len(), 3);
    let records: Vec<_> = got
        .iter()
        .map(|l| {
            assert_eq!(
                (l.project.as_str(), l.function.as_str()),
                ("default", "env-fn")
            );
            key.open(&l.project, &l.function, &l.sealed).expect("opens")
        })
        .collect();
    let outcomes: Vec<&str> = records.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes, ["ok", "script-error", "timeout"]);
    assert_eq!(records[0].status, 200);
    assert_eq!(records[0].console.len(), 2);
    assert_eq!(records[0].console[0].text, "mode ok");
    assert_eq!(records[0].console[1].level, "error");
    assert_eq!(records[0].request_bytes, 2);
    assert!(records[0].response_bytes > 0);
    assert_eq!(records[0].code_hash, d.code_hash.to_string());
    // The throwing call: its console up to the throw, the message and a stack.
    assert_eq!(records[1].console[0].text, "mode throw");
    assert!(
        records[1]
            .message
            .as_deref()
            .unwrap_or("")
            .contains("TypeError: thrown throw"),
        "{:?}",
        records[1].message
    );
    let stack = records[1].stack.as_deref().unwrap_or_default();
    assert!(
        stack.contains("at ") && stack.contains("fetch"),
        "the stack of the uncaught error names the function it came from: {stack:?}"
    );
    assert!(records[0].stack.is_none() && records[2].stack.is_none());
    assert_eq!(records[2].console[0].text, "mode spin");
    // The output is not in the record unless the function printed it.
    for l in &got {
        let r = key.open(&l.project, &l.function, &l.sealed).expect("opens");
        assert!(!serde_json::to_string(&r).expect("json").contains("\"V\""));
    }
    // Another key cannot open them; a record filed under another function does not open.
    let other = LogKeyPair::generate(&mut rng());
    for r in [
        other.open("default", "env-fn", &got[0].sealed),
        key.open("default", "other-fn", &got[0].sealed),
    ] {
        assert!(
            matches!(r, Err(clave_proto::Error::DecryptionFailed)),
            "{r:?}"
        );
    }
}

#[tokio::test]
async fn refusals_are_logged_only_for_an_authentic_manifest_and_nothing_without_a_key() {
    let h = ready_harness().await;
    let logs = capture(&h);
    // No log key in the manifest: nothing is produced.
    let plain = deploy_env(&h, &[], &[], None);
    h.call(&plain, b"ok").await.expect("ok");

    let key = LogKeyPair::generate(&mut rng());
    let d = deploy_env(&h, &[], &[], Some(&key));
    // A stale request is refused before it runs, and logged (the manifest's code opens).
    let (enc, _) = h.seal_request(&d.name, d.code_hash, h.now() - 3_600, b"ok");
    h.engine
        .invoke(h.job(&d, enc), h.now())
        .await
        .expect("answers");
    // The host swaps in a manifest naming its own log key, next to the real sealed code
    // (bound to the real manifest): the code does not open with it, so nothing is logged.
    let host_key = LogKeyPair::generate(&mut rng());
    let mut m = Manifest::from_bytes(&d.manifest).expect("manifest");
    m.log_key = Some(host_key.public().to_hex());
    let forged = Deployed {
        manifest: m.to_bytes(),
        ..d.clone()
    };
    for date in [h.now() - 3_600, h.now()] {
        let (enc, _) = h.seal_request(&d.name, d.code_hash, date, b"ok");
        h.engine
            .invoke(h.job(&forged, enc), h.now())
            .await
            .expect("answers");
    }
    let got = wait_logs(&logs, 1).await;
    assert_eq!(
        got.len(),
        1,
        "only the stale call of the real manifest: {got:?}"
    );
    let r = key
        .open("default", "env-fn", &got[0].sealed)
        .expect("opens");
    assert_eq!(r.outcome, "stale-date");
    assert!(r.console.is_empty());
}
