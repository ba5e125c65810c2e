//! A function of several modules and a request with a method, path and query, end to end through
//! the engine: deploy (seal the bundle's code), a sealed `GET …/items?id=3`, the user opens the
//! answer.

mod common;

use std::collections::BTreeMap;

use clave_proto::invoke::{InvokeRequest, seal_invoke};
use clave_proto::spec::KeyPurpose;
use clave_sandbox::bundle::Bundle;
use common::*;

const INDEX: &str = r#"import { find } from "./lib/items.js";
export default {
  async fetch(request) {
    const url = new URL(request.url);
    const item = find(Number(url.searchParams.get("id")));
    return Response.json({ method: request.method, path: url.pathname, item });
  },
};"#;

const ITEMS: &str = r#"import { label } from "../util/label.js";
const ITEMS = [{ id: 3, name: label("pear") }];
export function find(id) { return ITEMS.find((i) => i.id === id) ?? null; }"#;

const LABEL: &str = r#"export function label(s) { return s.toUpperCase(); }"#;

#[tokio::test]
async fn a_bundle_runs_and_sees_the_method_path_and_query() {
    let h = ready_harness().await;
    let modules: BTreeMap<String, String> = [
        ("src/index.js", INDEX),
        ("src/lib/items.js", ITEMS),
        ("src/util/label.js", LABEL),
    ]
    .into_iter()
    .map(|(p, s)| (p.to_owned(), s.to_owned()))
    .collect();
    let code = Bundle::new("src/index.js", modules)
        .expect("bundle")
        .encode();
    let d = h.deploy("items", &code, fast_limits());
    let req = InvokeRequest::new(
        "default".parse().expect("project"),
        "items".parse().expect("function"),
        d.code_hash,
        h.now(),
        Vec::new(),
    )
    .with_target("GET", "/items?id=3")
    .expect("target");
    let (enc, opener) =
        seal_invoke(&h.key_config(KeyPurpose::Invoke), &req, &mut rng()).expect("seal");
    let sealed = h
        .engine
        .invoke(h.job(&d, enc), h.now())
        .await
        .expect("engine answers");
    let resp = opener.open(&sealed).expect("opens").expect("ok");
    assert_eq!(resp.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&resp.body).expect("json");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/default/items/items");
    assert_eq!(v["item"]["name"], "PEAR");

    // Without a target the function sees POST and its own URL, as before.
    let resp = h.call(&d, b"{}").await.expect("ok");
    let v: serde_json::Value = serde_json::from_slice(&resp.body).expect("json");
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/default/items");
}
