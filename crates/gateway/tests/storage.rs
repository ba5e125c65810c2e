//! Storage-backed behaviour through the HTTP API, run against SQLite and (when `CLAVE_TEST_POSTGRES_URL` is
//! set) PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use clave_gateway::{GatewayConfig, Store};
use common::{FakeEngine, Harness, TestDb, test_dbs};

async fn harness(db: &TestDb) -> Harness {
    Harness::new(
        db.store().await,
        Arc::new(FakeEngine::default()),
        GatewayConfig::default(),
    )
    .await
}

#[tokio::test]
async fn deploy_list_versions_activate_rollback_delete() {
    for db in test_dbs().await {
        let h = harness(&db).await;
        let r = h.deploy("hello", b"sealed-v1").await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.json()["version"], 1);
        assert_eq!(r.json()["active_version"], 1);
        let r = h.deploy("hello", b"sealed-v2-longer").await;
        assert_eq!(r.json()["version"], 2);
        h.deploy("zeta", b"z").await;

        let list = h.get("/v1/functions").await;
        assert_eq!(list.status, StatusCode::OK);
        let list = list.json();
        assert_eq!(list["project"], "default");
        let fns = list["functions"].as_array().unwrap();
        assert_eq!(fns.len(), 2);
        assert_eq!(fns[0]["name"], "hello");
        assert_eq!(fns[0]["active_version"], 2);
        assert_eq!(fns[0]["latest_version"], 2);
        assert_eq!(fns[0]["versions"], 2);
        assert_eq!(fns[0]["active_code_hash"], format!("{:064x}", 16));

        // Same listing through the explicit project route.
        let scoped = h.get("/v1/projects/default/functions").await.json();
        assert_eq!(scoped, list);

        let detail = h.get("/v1/functions/hello").await.json();
        let versions = detail["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(versions[0]["version"], 1);
        assert_eq!(versions[0]["sealed_code_bytes"], 9);
        assert_eq!(versions[0]["active"], false);
        assert_eq!(versions[1]["active"], true);
        assert_eq!(versions[1]["limits"]["cpu_ms"], 50);
        assert!(versions[1]["manifest_bytes"].as_i64().unwrap() > 0);
        assert!(versions[1]["created"].as_i64().unwrap() > 1_600_000_000);

        // Invoke goes to the active version (2), then to 1 after a rollback, then 2 after activate.
        let r = h.invoke("/v1/functions/hello/invoke", b"request!").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers["content-type"], "message/ohttp-res");
        assert_eq!(&r.body[..], b"default/hello@2|sealed-v2-longer|!tseuqer");

        let r = h
            .send(
                Method::POST,
                "/v1/functions/hello/rollback",
                Some(&h.token),
                None,
                vec![],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["active_version"], 1);
        assert_eq!(r.json()["previous_version"], 2);
        let r = h.invoke("/v1/functions/hello/invoke", b"request!").await;
        assert_eq!(&r.body[..], b"default/hello@1|sealed-v1|!tseuqer");

        // Nothing older than 1.
        let r = h
            .send(
                Method::POST,
                "/v1/functions/hello/rollback",
                Some(&h.token),
                None,
                vec![],
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        r.problem();

        let r = h
            .send(
                Method::POST,
                "/v1/functions/hello/activate",
                Some(&h.token),
                Some("application/json"),
                br#"{"version":2}"#.to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["active_version"], 2);
        let r = h.invoke("/v1/functions/hello/invoke", b"x-------").await;
        assert_eq!(&r.body[..], b"default/hello@2|sealed-v2-longer|-------x");

        let r = h
            .send(
                Method::POST,
                "/v1/functions/hello/activate",
                Some(&h.token),
                Some("application/json"),
                br#"{"version":9}"#.to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        // Deploy without activation keeps the active version.
        let mut body: serde_json::Value = serde_json::from_slice(&common::deploy_body(
            &common::manifest("hello", b"v3"),
            b"v3",
        ))
        .unwrap();
        body["activate"] = serde_json::json!(false);
        let r = h
            .send(
                Method::PUT,
                "/v1/functions/hello",
                Some(&h.token),
                Some("application/json"),
                serde_json::to_vec(&body).unwrap(),
            )
            .await;
        assert_eq!(r.json()["version"], 3);
        assert_eq!(r.json()["active_version"], 2);

        // Delete.
        let r = h
            .send(
                Method::DELETE,
                "/v1/functions/hello",
                Some(&h.token),
                None,
                vec![],
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(
            h.get("/v1/functions/hello").await.status,
            StatusCode::NOT_FOUND
        );
        let r = h.invoke("/v1/functions/hello/invoke", b"request!").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = h
            .send(
                Method::DELETE,
                "/v1/functions/hello",
                Some(&h.token),
                None,
                vec![],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let list = h.get("/v1/functions").await.json();
        assert_eq!(list["functions"].as_array().unwrap().len(), 1);

        // Usage was metered (metadata only).
        let usage = h.state.store().usage("default", 100).await.unwrap();
        assert_eq!(usage.len(), 3);
        assert!(
            usage
                .iter()
                .all(|u| u.outcome == "ok" && u.request_bytes == 8)
        );
        assert_eq!(usage[0].version, 2);
        assert_eq!(usage[1].version, 1);

        h.state.store().close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn other_projects_token_gets_403_and_changes_nothing() {
    for db in test_dbs().await {
        let h = harness(&db).await;
        let other_token = h.state.store().create_token("other").await.unwrap();
        h.deploy("hello", b"mine").await;
        h.deploy("hello", b"mine-2").await;
        let before = h.get("/v1/functions/hello").await.json();

        // Deploy, activate, rollback, delete, list and read with the other project's token.
        let r = h
            .deploy_to("/v1/functions", "hello", &other_token, b"theirs")
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.problem().type_, "urn:clave:problem:forbidden");
        let r = h
            .deploy_to(
                "/v1/projects/default/functions",
                "new",
                &other_token,
                b"theirs",
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        for (method, uri, ct, body) in [
            (
                Method::POST,
                "/v1/functions/hello/activate",
                Some("application/json"),
                br#"{"version":1}"#.to_vec(),
            ),
            (Method::POST, "/v1/functions/hello/rollback", None, vec![]),
            (Method::DELETE, "/v1/functions/hello", None, vec![]),
            (Method::GET, "/v1/functions", None, vec![]),
            (Method::GET, "/v1/functions/hello", None, vec![]),
        ] {
            let r = h.send(method, uri, Some(&other_token), ct, body).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{uri}");
        }
        assert_eq!(h.get("/v1/functions/hello").await.json(), before);
        assert_eq!(
            h.get("/v1/functions").await.json()["functions"]
                .as_array()
                .unwrap()
                .len(),
            1
        );

        // The other token works on its own project, which stays separate.
        let r = h
            .deploy_to(
                "/v1/projects/other/functions",
                "hello",
                &other_token,
                b"theirs",
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.json()["version"], 1);
        let r = h
            .invoke("/v1/projects/other/functions/hello/invoke", b"abcdefgh")
            .await;
        assert_eq!(&r.body[..], b"other/hello@1|theirs|hgfedcba");
        let r = h.invoke("/v1/functions/hello/invoke", b"abcdefgh").await;
        assert_eq!(&r.body[..], b"default/hello@2|mine-2|hgfedcba");

        h.state.store().close().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deploys_get_distinct_versions() {
    for db in test_dbs().await {
        let h = Arc::new(harness(&db).await);
        let mut tasks = Vec::new();
        for i in 0..12 {
            let h = h.clone();
            tasks.push(tokio::spawn(async move {
                let r = h.deploy("race", format!("code-{i}").as_bytes()).await;
                assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
                r.json()["version"].as_i64().unwrap()
            }));
        }
        let mut versions = BTreeSet::new();
        for t in tasks {
            versions.insert(t.await.unwrap());
        }
        assert_eq!(versions, (1..=12).collect::<BTreeSet<i64>>());
        let detail = h.get("/v1/functions/race").await.json();
        assert_eq!(detail["versions"].as_array().unwrap().len(), 12);
        h.state.store().close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn restart_keeps_functions_versions_and_tokens() {
    for db in test_dbs().await {
        let token;
        {
            let h = harness(&db).await;
            token = h.token.clone();
            h.deploy("keep", b"one").await;
            h.deploy("keep", b"two").await;
            h.deploy("also", b"three").await;
            let r = h
                .send(
                    Method::POST,
                    "/v1/functions/keep/rollback",
                    Some(&token),
                    None,
                    vec![],
                )
                .await;
            assert_eq!(r.status, StatusCode::OK);
            h.state.store().close().await;
        }
        // Reopen the same database (same file for SQLite).
        let store = Store::connect(&db.url()).await.unwrap();
        assert_eq!(
            store.project_for_token(&token).await.unwrap().as_deref(),
            Some("default")
        );
        let list = store.list_functions("default").await.unwrap();
        assert_eq!(list.functions.len(), 2);
        let keep = store.function("default", "keep").await.unwrap();
        assert_eq!(keep.versions.len(), 2);
        assert_eq!(keep.active_version, Some(1));
        let artifact = store.active_artifact("default", "keep").await.unwrap();
        assert_eq!(artifact.sealed_code, &b"one"[..]);
        // Versions keep counting after a restart.
        let h = Harness::new(
            store,
            Arc::new(FakeEngine::default()),
            GatewayConfig::default(),
        )
        .await;
        let r = h.deploy_to("/v1/functions", "keep", &token, b"four").await;
        assert_eq!(r.json()["version"], 3);
        h.state.store().close().await;
        db.cleanup().await;
    }
}

/// The first call after a start misses every cache (active version, secrets, code): the store
/// reads them on one connection and hands it back before returning, as it does after the start's
/// own queries. A pool takes a dropped connection back in a task of its own, so a query right
/// after another would open a second SQLite connection (parsing the schema again).
#[tokio::test]
async fn a_cold_dispatch_lookup_reads_on_one_connection() {
    let db = TestDb::sqlite();
    let token;
    {
        let h = harness(&db).await;
        token = h.token.clone();
        h.deploy("cold", b"sealed").await;
        h.state.store().close().await;
    }
    let store = Store::connect(&db.url()).await.unwrap();
    assert_eq!(store.connections(), (1, 1), "after the start");
    assert!(store.project_for_token(&token).await.unwrap().is_some());
    assert_eq!(store.connections(), (1, 1), "after the token lookup");
    for round in 0..5 {
        let artifact = store.active_artifact("default", "cold").await.unwrap();
        assert_eq!(artifact.sealed_code, &b"sealed"[..]);
        assert_eq!(store.connections(), (1, 1), "round {round}");
        // The next lookup misses the active version and the secrets again.
        store.set_active_version_ttl(std::time::Duration::ZERO);
    }
    store.close().await;
    db.cleanup().await;
}

#[tokio::test]
async fn function_count_limit_per_project() {
    for db in test_dbs().await {
        let mut config = GatewayConfig::default();
        config.limits.max_functions_per_project = 2;
        let h = Harness::new(db.store().await, Arc::new(FakeEngine::default()), config).await;
        assert_eq!(h.deploy("a", b"1").await.status, StatusCode::CREATED);
        assert_eq!(h.deploy("b", b"1").await.status, StatusCode::CREATED);
        let r = h.deploy("c", b"1").await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        r.problem();
        // New versions of existing functions are still fine.
        assert_eq!(h.deploy("a", b"2").await.status, StatusCode::CREATED);
        h.state.store().close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn store_api_tokens_and_projects() {
    for db in test_dbs().await {
        let store = db.store().await;
        assert!(store.create_project("p1").await.unwrap());
        assert!(!store.create_project("p1").await.unwrap());
        assert!(matches!(
            store.create_project("Bad_Name").await,
            Err(clave_gateway::Error::InvalidName)
        ));
        assert!(matches!(
            store.create_token("missing").await,
            Err(clave_gateway::Error::UnknownProject)
        ));
        let t1 = store.create_token("p1").await.unwrap();
        let t2 = store.create_token("p1").await.unwrap();
        assert_ne!(t1, t2);
        assert!(t1.len() >= 64);
        assert_eq!(
            store.project_for_token(&t1).await.unwrap().as_deref(),
            Some("p1")
        );
        assert_eq!(store.project_for_token("nope").await.unwrap(), None);
        assert!(store.ping().await);
        store.close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn sqlite_file_and_plaintext_token_not_stored() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    store.create_project("p").await.unwrap();
    let token = store.create_token("p").await.unwrap();
    store.close().await;
    let path = match &db {
        TestDb::Sqlite { dir } => dir.path().join("nested/.clave/gateway.db"),
        TestDb::Postgres { .. } => unreachable!(),
    };
    assert!(path.exists(), "data dir and file created");
    let bytes = std::fs::read(&path).unwrap();
    let needle = token.as_bytes();
    assert!(
        !bytes.windows(needle.len()).any(|w| w == needle),
        "plaintext token found in the database file"
    );
}

#[tokio::test]
async fn async_results_are_written_once_on_both_backends() {
    use clave_gateway::ResultState;
    use clave_proto::gateway_api::Problem;
    for db in test_dbs().await {
        let store = db.store().await;
        let id = "ab".repeat(16);
        assert!(store.create_result(&id, "default", "f", 3).await.unwrap());
        assert!(!store.create_result(&id, "default", "f", 3).await.unwrap());
        let r = store.result(&id).await.unwrap().unwrap();
        assert_eq!(r.state, ResultState::Pending);
        assert_eq!((r.version, r.completed), (3, None));
        assert!(
            store
                .complete_result(&id, "default", "f", 3, &ResultState::Done(vec![1, 2, 3]))
                .await
                .unwrap()
        );
        // A second delivery's write (success or failure) changes nothing.
        let problem = Problem {
            type_: "urn:clave:problem:timeout".into(),
            title: "Timeout".into(),
            status: 504,
            detail: None,
        };
        assert!(
            !store
                .complete_result(
                    &id,
                    "default",
                    "f",
                    3,
                    &ResultState::Failed(problem.clone())
                )
                .await
                .unwrap()
        );
        let r = store.result(&id).await.unwrap().unwrap();
        assert_eq!(r.state, ResultState::Done(vec![1, 2, 3]));
        assert!(r.completed.is_some());
        // Insert-if-absent: a result whose pending row is missing is still stored, once.
        let other = "cd".repeat(16);
        assert!(
            store
                .complete_result(
                    &other,
                    "default",
                    "f",
                    3,
                    &ResultState::Failed(problem.clone())
                )
                .await
                .unwrap()
        );
        assert_eq!(
            store.result(&other).await.unwrap().unwrap().state,
            ResultState::Failed(problem)
        );
        assert_eq!(store.count_results("default").await.unwrap(), (0, 2));
        // Pending rows of calls that never got queued can be forgotten; completed ones cannot.
        let third = "ef".repeat(16);
        store
            .create_result(&third, "default", "f", 3)
            .await
            .unwrap();
        store.delete_pending_result(&third).await.unwrap();
        store.delete_pending_result(&id).await.unwrap();
        assert!(store.result(&third).await.unwrap().is_none());
        assert!(store.result(&id).await.unwrap().is_some());
        assert_eq!(store.purge_results(i64::MAX).await.unwrap(), 2);
        assert!(store.result(&id).await.unwrap().is_none());
        store.close().await;
        db.cleanup().await;
    }
}
