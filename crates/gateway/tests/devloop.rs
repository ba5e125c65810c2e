//! Sealed secrets, developer log keys and sealed logs through the HTTP API, on SQLite and
//! (when `CLAVE_TEST_POSTGRES_URL` is set) PostgreSQL: versions only grow, lists never carry a
//! value or ciphertext, dispatch hands the function's sealed set to the engine and sees a put
//! or delete on the next call, log reads page, filter, long-poll and obey the retention.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use clave_gateway::{GatewayConfig, LogRetention};
use clave_proto::secret::SecretSet;
use common::{FakeEngine, Harness, test_dbs};

fn put_body(function: Option<&str>, version: i64, sealed: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&clave_proto::devloop_api::PutSecretRequest {
        function: function.map(str::to_owned),
        version,
        sealed: sealed.to_vec(),
    })
    .unwrap()
}

async fn put(
    h: &Harness,
    name: &str,
    function: Option<&str>,
    version: i64,
    sealed: &[u8],
) -> common::Reply {
    h.send(
        Method::PUT,
        &format!("/v1/projects/default/secrets/{name}"),
        Some(&h.token),
        Some("application/json"),
        put_body(function, version, sealed),
    )
    .await
}

fn sealed(tag: u8) -> Vec<u8> {
    vec![tag; 80]
}

fn names(set: &[u8]) -> Vec<(bool, String, u64)> {
    let mut v: Vec<_> = SecretSet::decode(set)
        .unwrap()
        .secrets
        .into_iter()
        .map(|s| (s.function_scoped, s.name, s.version))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn secrets_versions_lists_and_dispatch() {
    for db in test_dbs().await {
        let engine = Arc::new(FakeEngine::default());
        let h = Harness::new(db.store().await, engine.clone(), GatewayConfig::default()).await;
        assert_eq!(h.deploy("hello", b"code").await.status, StatusCode::CREATED);
        assert_eq!(
            h.invoke("/v1/functions/hello/invoke", b"request-bytes")
                .await
                .status,
            StatusCode::OK
        );
        assert!(
            engine.last_secrets.lock().unwrap().is_empty(),
            "no secrets: empty set"
        );

        assert_eq!(
            put(&h, "API_KEY", Some("hello"), 1, &sealed(1))
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            put(&h, "SHARED", None, 1, &sealed(2)).await.status,
            StatusCode::OK
        );
        assert_eq!(
            put(&h, "ELSEWHERE", Some("other-fn"), 1, &sealed(3))
                .await
                .status,
            StatusCode::OK
        );
        // The same version again, or a skipped one: 409 naming the next version.
        for v in [1, 3] {
            let r = put(&h, "API_KEY", Some("hello"), v, &sealed(4)).await;
            assert_eq!(r.status, StatusCode::CONFLICT);
            assert!(r.problem().detail.unwrap().contains("version 2"));
        }
        // Bad input.
        assert_eq!(
            put(&h, "1BAD", None, 1, &sealed(1)).await.status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            put(&h, "OK", Some("Bad_Fn"), 1, &sealed(1)).await.status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            put(&h, "OK", None, 0, &sealed(1)).await.status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            put(&h, "OK", None, 1, b"short").await.status,
            StatusCode::BAD_REQUEST
        );
        let r = h
            .send(
                Method::PUT,
                "/v1/projects/default/secrets/OK",
                Some(&h.token),
                Some("application/json"),
                b"{".to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);

        // The next call carries this function's and the project-wide secrets.
        h.invoke("/v1/functions/hello/invoke", b"request-bytes")
            .await;
        assert_eq!(
            names(&engine.last_secrets.lock().unwrap()),
            [
                (false, "SHARED".to_owned(), 1),
                (true, "API_KEY".to_owned(), 1)
            ]
        );
        assert_eq!(
            put(&h, "API_KEY", Some("hello"), 2, &sealed(5))
                .await
                .status,
            StatusCode::OK
        );
        h.invoke("/v1/functions/hello/invoke", b"request-bytes")
            .await;
        assert!(names(&engine.last_secrets.lock().unwrap()).contains(&(
            true,
            "API_KEY".to_owned(),
            2
        )));

        // Lists: names and versions, never the ciphertext.
        let list = h.get("/v1/projects/default/secrets").await;
        assert_eq!(list.status, StatusCode::OK);
        let text = String::from_utf8_lossy(&list.body).into_owned();
        assert!(
            !text.contains(&clave_proto::kds_api::b64::encode(&sealed(5))),
            "{text}"
        );
        assert!(!text.contains("sealed"), "{text}");
        let got: Vec<(String, i64)> = list.json()["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_owned(),
                    s["version"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("SHARED".to_owned(), 1),
                ("API_KEY".to_owned(), 2),
                ("ELSEWHERE".to_owned(), 1)
            ]
        );
        let one = h
            .get("/v1/projects/default/secrets/API_KEY?function=hello")
            .await
            .json();
        assert_eq!(one["version"], 2);
        let never = h.get("/v1/projects/default/secrets/NEVER").await.json();
        assert_eq!(never["version"], 0);

        // Delete: gone from dispatch at once; the number is kept.
        let r = h
            .send(
                Method::DELETE,
                "/v1/projects/default/secrets/API_KEY?function=hello",
                Some(&h.token),
                None,
                vec![],
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = h
            .send(
                Method::DELETE,
                "/v1/projects/default/secrets/API_KEY?function=hello",
                Some(&h.token),
                None,
                vec![],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        h.invoke("/v1/functions/hello/invoke", b"request-bytes")
            .await;
        assert_eq!(
            names(&engine.last_secrets.lock().unwrap()),
            [(false, "SHARED".to_owned(), 1)]
        );
        assert_eq!(
            put(&h, "API_KEY", Some("hello"), 1, &sealed(6))
                .await
                .status,
            StatusCode::CONFLICT
        );
        assert_eq!(
            put(&h, "API_KEY", Some("hello"), 3, &sealed(6))
                .await
                .status,
            StatusCode::OK
        );

        // Another project's token, or none: refused.
        let other = h.state.store().create_token("other").await.unwrap();
        let r = h
            .send(
                Method::GET,
                "/v1/projects/default/secrets",
                Some(&other),
                None,
                vec![],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = h
            .send(
                Method::GET,
                "/v1/projects/default/secrets",
                None,
                None,
                vec![],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn log_keys_logs_long_poll_and_retention() {
    for db in test_dbs().await {
        let h = Harness::new(
            db.store().await,
            Arc::new(FakeEngine::default()),
            GatewayConfig::default(),
        )
        .await;
        let store = h.state.store().clone();
        assert_eq!(
            h.get("/v1/projects/default/log-key").await.status,
            StatusCode::NOT_FOUND
        );
        for bad in ["00", &"0".repeat(64), &"AB".repeat(32), &"zz".repeat(32)] {
            let r = h
                .send(
                    Method::PUT,
                    "/v1/projects/default/log-key",
                    Some(&h.token),
                    Some("application/json"),
                    serde_json::to_vec(&serde_json::json!({ "public_key": bad })).unwrap(),
                )
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        let pk = clave_proto::devlog::LogKeyPair::from_private_bytes(&[7; 32])
            .unwrap()
            .public()
            .to_hex();
        let r = h
            .send(
                Method::PUT,
                "/v1/projects/default/log-key",
                Some(&h.token),
                Some("application/json"),
                serde_json::to_vec(&serde_json::json!({ "public_key": pk })).unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            h.get("/v1/projects/default/log-key").await.json()["public_key"],
            pk
        );

        for (f, b) in [("a", 1u8), ("b", 2), ("a", 3)] {
            store.append_log("default", f, &[b; 40]).await.unwrap();
        }
        store.append_log("other", "a", &[9; 40]).await.unwrap();
        let page = h.get("/v1/projects/default/logs").await.json();
        let entries = page["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 3, "only this project's");
        let first = entries[0]["id"].as_i64().unwrap();
        assert_eq!(page["next"], entries[2]["id"]);
        let only_a = h.get("/v1/projects/default/logs?function=a").await.json();
        assert_eq!(only_a["entries"].as_array().unwrap().len(), 2);
        let after = h
            .get(&format!("/v1/projects/default/logs?after={first}&limit=1"))
            .await
            .json();
        assert_eq!(after["entries"].as_array().unwrap().len(), 1);
        assert_eq!(after["entries"][0]["function"], "b");
        assert_eq!(
            h.get("/v1/projects/default/logs?function=Bad").await.status,
            StatusCode::BAD_REQUEST
        );

        // A long poll answers with the record appended while it waits.
        let last = page["next"].as_i64().unwrap();
        let app = h.app.clone();
        let token = h.token.clone();
        let waiting = tokio::spawn(async move {
            common::send(
                &app,
                Method::GET,
                &format!("/v1/projects/default/logs?after={last}&wait=20"),
                Some(&token),
                None,
                vec![],
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        store.append_log("default", "late", &[7; 40]).await.unwrap();
        let r = waiting.await.unwrap().json();
        assert_eq!(r["entries"][0]["function"], "late");

        // Retention: at most two per project.
        store.set_log_retention(LogRetention {
            max_entries: 2,
            max_age: Duration::from_secs(3600),
        });
        store.prune_logs("default").await.unwrap();
        let kept = h.get("/v1/projects/default/logs").await.json();
        let kept: Vec<&str> = kept["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["function"].as_str().unwrap())
            .collect();
        assert_eq!(kept, ["a", "late"]);
        store.set_log_retention(LogRetention {
            max_entries: 100,
            max_age: Duration::ZERO,
        });
        tokio::time::sleep(Duration::from_millis(1100)).await;
        store.prune_logs("default").await.unwrap();
        assert!(
            h.get("/v1/projects/default/logs").await.json()["entries"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        db.cleanup().await;
    }
}
