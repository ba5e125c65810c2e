use super::*;
use crate::InsecureSimulatedSealer;
use clave_attest::{InsecureSimulatedAttester, Measurement};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn kds_is_send_and_sync() {
    assert_send_sync::<Kds>();
}

#[test]
fn released_key_equals_the_derived_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = Measurement(vec![1; 32]);
    let policy = Policy::insecure_dev([m.clone()]).expect("policy");
    let config = KdsConfig::new(policy.clone(), policy);
    let attester = InsecureSimulatedAttester::new(m.clone()).expect("attester");
    let kds = Kds::open(
        dir.path(),
        Box::new(InsecureSimulatedSealer::new(m.as_bytes())),
        Box::new(attester.clone()),
        config.clone(),
        1000,
        rand_core::UnwrapErr(rand::rngs::SysRng),
    )
    .expect("open");
    let spec = config.invoke_spec(0);
    let sk = [5u8; 32];
    let pk = kds_api::x25519_public_key(&sk).expect("pk");
    let nonce = kds.new_nonce(1000).nonce;
    let evidence = attester
        .attest(&kds_api::release_report_data(&pk, &nonce))
        .expect("evidence");
    let resp = kds
        .release(
            &ReleaseRequest {
                spec: spec.to_bytes(),
                evidence: evidence.to_bytes(),
                ephemeral_public_key: pk,
                nonce,
            },
            1000,
        )
        .expect("granted");
    let released = kds_api::open_from_kds(
        &sk,
        RELEASE_HPKE_INFO,
        &resp.spec_id,
        &resp.enc,
        &resp.sealed_key,
    )
    .expect("open");
    let derived = derive_key(&kds.master, &spec).expect("derive");
    assert_eq!(released.as_slice(), derived.private.to_bytes().as_slice());
    // Debug prints no secret.
    let dbg = format!("{kds:?}");
    assert!(!dbg.contains(&hex::encode(kds.master.expose_secret())));
}

#[test]
fn bundle_plan_validity() {
    let m = Measurement(vec![1; 32]);
    let policy = Policy::insecure_dev([m]).expect("policy");
    let mut config = KdsConfig::new(policy.clone(), policy);
    config.epoch_seconds = 100;
    let plan = config.bundle_plan(250);
    assert_eq!(plan[0].1, 200);
    assert_eq!(plan[0].2, 399);
    assert_eq!((plan[1].0.epoch, plan[1].1, plan[1].2), (2, 200, 299));
    assert_eq!((plan[2].0.epoch, plan[2].1, plan[2].2), (3, 300, 399));
    let served: Vec<u64> = config.served_specs(250)[1..]
        .iter()
        .map(|s| s.epoch)
        .collect();
    assert_eq!(served, vec![1, 2, 3]);
    config.epoch_seconds = 0;
    assert!(matches!(
        config.validate(),
        Err(Error::Config(m)) if m == "epoch_seconds must be positive"
    ));
}

/// Signed bundles are kept for as long as the plan they were made for: the same bytes within an
/// epoch, a fresh set (the next epoch's keys) after it, each equal to what a KDS without the
/// cache makes for that time.
#[test]
fn bundles_are_reused_within_an_epoch_and_remade_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = Measurement(vec![1; 32]);
    let policy = Policy::insecure_dev([m.clone()]).expect("policy");
    let mut config = KdsConfig::new(policy.clone(), policy);
    config.epoch_seconds = 100;
    let open = |dir: &Path| {
        Kds::open(
            dir,
            Box::new(InsecureSimulatedSealer::new(m.as_bytes())),
            Box::new(InsecureSimulatedAttester::new(m.clone()).expect("attester")),
            config.clone(),
            1000,
            rand_core::UnwrapErr(rand::rngs::SysRng),
        )
        .expect("open")
    };
    let kds = open(dir.path());
    let first = kds.bundles(1010).expect("bundles");
    assert_eq!(kds.bundles(1099).expect("bundles"), first);
    let next = kds.bundles(1100).expect("bundles");
    assert_ne!(next, first);
    let specs = |b: &[SignedObject]| -> Vec<u64> {
        b.iter()
            .map(|s| {
                let payload = clave_proto::kds_api::b64::decode(&s.payload).expect("b64");
                KeyBundle::from_payload(&payload)
                    .expect("bundle")
                    .spec
                    .epoch
            })
            .collect()
    };
    assert_eq!(specs(&first)[1..], [10, 11]);
    assert_eq!(specs(&next)[1..], [11, 12]);
    // The same master secret reopened (no cache yet) signs the same bytes for each time.
    drop(kds);
    let again = open(dir.path());
    assert_eq!(again.bundles(1100).expect("bundles"), next);
    assert_eq!(again.bundles(1050).expect("bundles"), first);
}
