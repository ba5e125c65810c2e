//! The manifest's `outbound` list, sealed with the code, is what the function's `fetch()` is held
//! to: without it `fetch()` has no network; with it, a host outside the list is refused before
//! anything is resolved (no network is needed for either answer).

mod common;

use clave_proto::HostPattern;
use clave_proto::code::{Manifest, seal_code};
use clave_proto::spec::KeyPurpose;
use common::*;

const FETCHER: &str = r#"export default { async fetch() {
  try { await fetch('https://other.example/'); return new Response('fetched'); }
  catch (e) { return new Response(`${e.name}: ${e.message}`); }
} };"#;

fn deploy_with(h: &Harness, outbound: &[&str]) -> Deployed {
    let d = h.deploy("fetcher", FETCHER, fast_limits());
    let mut manifest = Manifest::from_bytes(&d.manifest).expect("manifest");
    manifest.outbound = outbound
        .iter()
        .map(|p| HostPattern::parse(p).expect("pattern"))
        .collect();
    let manifest = manifest.to_bytes();
    let sealed = seal_code(
        &h.key_config(KeyPurpose::Code),
        &manifest,
        FETCHER.as_bytes(),
        &mut rng(),
    )
    .expect("seal code");
    Deployed {
        manifest,
        sealed_code: sealed.to_bytes(),
        ..d
    }
}

#[tokio::test]
async fn the_sealed_outbound_list_reaches_the_function() {
    let h = ready_harness().await;
    let none = deploy_with(&h, &[]);
    let body = h.call(&none, b"{}").await.expect("runs").body;
    let text = String::from_utf8_lossy(&body);
    assert!(text.starts_with("TypeError: fetch(): "), "{text}");
    assert!(text.contains("lists no outbound hosts"), "{text}");

    let listed = deploy_with(&h, &["api.example.com", "*.example.net"]);
    let body = h.call(&listed, b"{}").await.expect("runs").body;
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("other.example is not in this function's outbound hosts"),
        "{text}"
    );
    assert_eq!(h.runs(), 2);
}
