//! Every function in `examples/` deployed and invoked through the SDK against an in-process
//! `DevPlatform`, plus the SDK's typed errors (whose fault it is).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use clave_cli::{DevConfig, DevPlatform};
use clave_client::{Client, ClientError, Fault, Limits, TrustPolicy};

fn example(name: &str) -> (PathBuf, Vec<u8>) {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    let code = std::fs::read(&p).unwrap();
    (p, code)
}

async fn platform(dir: &Path) -> (DevPlatform, Client, String) {
    let mut cfg = DevConfig::new("127.0.0.1:0".parse().unwrap(), dir.to_path_buf());
    cfg.publish_dir = None;
    cfg.workers = 2;
    let p = DevPlatform::start(cfg).await.unwrap();
    let client = Client::new(p.url(), p.trust_policy().unwrap()).unwrap();
    let token = p.record().token.clone();
    (p, client, token)
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap()
}

const JSON: [(&str, &str); 1] = [("content-type", "application/json")];

fn headers() -> Vec<(String, String)> {
    JSON.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_run_and_errors_are_typed() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, client, token) = platform(tmp.path()).await;
    let v = client.verify(clave_client::now_unix()).await.unwrap();
    assert!(v.insecure());
    assert!(v.describe().iter().any(|s| s.contains("INSECURE")));

    // hello
    let (_, code) = example("hello.js");
    let d = client
        .deploy(
            "default",
            "hello",
            "hello.js",
            &code,
            Limits::default(),
            &token,
        )
        .await
        .unwrap();
    let r = client
        .invoke(
            "default",
            "hello",
            br#"{"name":"Ada"}"#,
            &headers(),
            &d.code_hash,
        )
        .await
        .unwrap();
    assert_eq!(json(&r.body)["greeting"], "Hello, Ada!");

    // JSON transform
    let (_, code) = example("json-transform.js");
    let d = client
        .deploy(
            "default",
            "json-transform",
            "json-transform.js",
            &code,
            Limits::default(),
            &token,
        )
        .await
        .unwrap();
    let input = br#"{"customer":"  Ada   Lovelace ","items":[{"sku":"a-1","qty":2,"price":"9.50"},{"sku":"b-2","qty":1,"price":12}],"currency":"eur"}"#;
    let r = client
        .invoke("default", "json-transform", input, &headers(), &d.code_hash)
        .await
        .unwrap();
    let v = json(&r.body);
    assert_eq!(v["customer"], "Ada Lovelace");
    assert_eq!(v["currency"], "EUR");
    assert_eq!(v["subtotal_cents"], 3100);
    assert_eq!(v["item_count"], 3);
    assert_eq!(v["lines"][0]["sku"], "A-1");

    // Private statistics: only aggregates come out; small groups are suppressed.
    let (path, code) = example("salary-stats.js");
    let data = std::fs::read(path.parent().unwrap().join("data/salaries.json")).unwrap();
    let d = client
        .deploy(
            "default",
            "salary-stats",
            "salary-stats.js",
            &code,
            Limits::default(),
            &token,
        )
        .await
        .unwrap();
    let r = client
        .invoke("default", "salary-stats", &data, &headers(), &d.code_hash)
        .await
        .unwrap();
    let v = json(&r.body);
    assert_eq!(v["overall"]["count"], 8);
    assert_eq!(v["overall"]["median"], 65000);
    assert_eq!(v["groups"]["male"]["median"], 67250);
    assert_eq!(v["groups"]["female"]["median"], 61000);
    assert_eq!(v["groups"]["nonbinary"]["suppressed"], true);
    assert_eq!(v["median_gender_gap_percent"], 9.3);
    assert!(
        !String::from_utf8_lossy(&r.body).contains("Example"),
        "no names come out"
    );

    // Text processing with crypto.subtle.digest.
    let (_, code) = example("text-digest.js");
    let d = client
        .deploy(
            "default",
            "text-digest",
            "text-digest.js",
            &code,
            Limits::default(),
            &token,
        )
        .await
        .unwrap();
    let text = b"The quick brown fox jumps over the lazy dog";
    let plain = vec![("content-type".to_owned(), "text/plain".to_owned())];
    let r = client
        .invoke("default", "text-digest", text, &plain, &d.code_hash)
        .await
        .unwrap();
    let v = json(&r.body);
    assert_eq!(
        v["sha256"],
        "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"
    );
    assert_eq!(v["words"], 9);
    assert_eq!(v["top_words"][0]["word"], "the");
    assert_eq!(v["top_words"][0]["count"], 2);

    // Typed errors: whose fault.
    let wrong = clave_client::CodeHash([0; 32]);
    let e = client
        .invoke("default", "hello", b"{}", &headers(), &wrong)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::HashRefused { .. }), "{e:?}");
    assert_eq!(e.fault(), Fault::Engine);

    let e = client
        .invoke("default", "nope", b"{}", &headers(), &wrong)
        .await
        .unwrap_err();
    assert_eq!(e.gateway_status(), Some(404), "{e:?}");
    assert_eq!(e.fault(), Fault::Gateway);

    let thrower = b"export default { fetch() { throw new TypeError('bad input') } }";
    let d = client
        .deploy(
            "default",
            "thrower",
            "t.js",
            thrower,
            Limits::default(),
            &token,
        )
        .await
        .unwrap();
    let e = client
        .invoke("default", "thrower", b"", &[], &d.code_hash)
        .await
        .unwrap_err();
    match &e {
        ClientError::FunctionThrew { message } => {
            assert!(message.contains("bad input"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.fault(), Fault::Function);

    let spin = b"export default { fetch() { for (;;) {} } }";
    let limits = Limits {
        cpu_ms: 50,
        ..Limits::default()
    };
    let d = client
        .deploy("default", "spin", "s.js", spin, limits, &token)
        .await
        .unwrap();
    let e = client
        .invoke("default", "spin", b"", &[], &d.code_hash)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::LimitHit { .. }), "{e:?}");

    let e = client
        .deploy(
            "default",
            "hello",
            "hello.js",
            b"x",
            Limits::default(),
            "cdt_wrong",
        )
        .await
        .unwrap_err();
    assert_eq!(e.gateway_status(), Some(401));

    // Management API round trip.
    let list = client.list_functions("default", &token).await.unwrap();
    assert!(list.functions.iter().any(|f| f.name == "text-digest"));
    client.delete("default", "spin", &token).await.unwrap();
    let e = client
        .function("default", "spin", &token)
        .await
        .unwrap_err();
    assert_eq!(e.gateway_status(), Some(404));

    // A client that does not allow the simulated TEE refuses before sending anything.
    let strict = TrustPolicy {
        allow_insecure_simulated: false,
        ..p.trust_policy().unwrap()
    };
    let c2 = Client::new(p.url(), strict).unwrap();
    let e = c2.verify(clave_client::now_unix()).await.unwrap_err();
    assert_eq!(e.fault(), Fault::Attestation, "{e:?}");
    // A client pinning another KDS measurement refuses too.
    let other = TrustPolicy::insecure_dev(
        clave_attest::Measurement(vec![7; 32]),
        [clave_cli::platform::dev_engine_measurement()],
    )
    .unwrap();
    let e = Client::new(p.url(), other)
        .unwrap()
        .verify(clave_client::now_unix())
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Attestation(_)), "{e:?}");
    // A client accepting other engines only refuses the bundles.
    let other_engines = TrustPolicy::insecure_dev(
        clave_cli::platform::dev_kds_measurement(),
        [clave_attest::Measurement(vec![8; 32])],
    )
    .unwrap();
    let e = Client::new(p.url(), other_engines)
        .unwrap()
        .verify(clave_client::now_unix())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Attestation(clave_client::AttestationError::SpecTooBroad { .. })
        ),
        "{e:?}"
    );
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greet_reads_a_sealed_secret_and_a_var() {
    let tmp = tempfile::tempdir().unwrap();
    let (_p, client, token) = platform(tmp.path()).await;
    client
        .put_secret("default", Some("greet"), "API_KEY", b"sk-test-123", &token)
        .await
        .unwrap();
    let (_, code) = example("greet.js");
    let env = clave_client::DeployEnv {
        vars: [("GREETING".to_owned(), "Hi".to_owned())].into(),
        secrets: vec!["API_KEY".into()],
        log_key: None,
        ..Default::default()
    };
    let d = client
        .deploy_with_env(
            "default",
            "greet",
            "greet.js",
            &code,
            Limits::default(),
            &env,
            &token,
        )
        .await
        .unwrap();
    let r = client
        .invoke(
            "default",
            "greet",
            br#"{"name":"Ada"}"#,
            &headers(),
            &d.code_hash,
        )
        .await
        .unwrap();
    let v = json(&r.body);
    assert_eq!(v["greeting"], "Hi, Ada!");
    assert_eq!(v["api_key_set"], true);
    assert_eq!(v["api_key_length"], 11);
}
