//! The manifest names its project: code deployed to one project never runs for a request that
//! names another, even with the same function name and code hash.

mod common;

use clave_proto::ProblemKind;
use clave_proto::code::{Manifest, seal_code};
use clave_proto::spec::KeyPurpose;
use common::*;

fn deploy_to(h: &Harness, project: Option<&str>, name: &str) -> Deployed {
    let d = h.deploy(name, MARKER, fast_limits());
    let mut manifest = Manifest::from_bytes(&d.manifest).expect("manifest");
    manifest.project = project.map(|p| p.parse().expect("project"));
    let manifest = manifest.to_bytes();
    let sealed = seal_code(
        &h.key_config(KeyPurpose::Code),
        &manifest,
        MARKER.as_bytes(),
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
async fn code_of_another_project_is_refused_without_running() {
    let h = ready_harness().await;
    // Project "other" deployed "marker"; the host serves it to a request for default/marker
    // (routing it as default/marker, so the job's route matches the request).
    let foreign = deploy_to(&h, Some("other"), "marker");
    let err = h.call(&foreign, b"{}").await.expect_err("refused");
    assert_eq!(err.kind, ProblemKind::WrongFunction);
    assert!(
        err.detail.as_deref().unwrap_or("").contains("other"),
        "{err:?}"
    );
    assert_eq!(h.runs(), 0, "the function did not run");

    // Its own project's code runs; so does a manifest made before projects were named.
    let own = deploy_to(&h, Some("default"), "marker");
    assert_eq!(h.call(&own, b"{}").await.expect("runs").body, b"ran");
    let legacy = deploy_to(&h, None, "marker");
    assert_eq!(h.call(&legacy, b"{}").await.expect("runs").body, b"ran");
    assert_eq!(h.runs(), 2);
}
