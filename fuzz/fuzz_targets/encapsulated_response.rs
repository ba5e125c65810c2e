#![no_main]
//! Client side: open arbitrary bytes as the response to a real request.

use std::sync::OnceLock;

use clave_proto::invoke::{InvokeRequest, InvokeResponseOpener, seal_invoke};
use clave_proto::{CodeHash, KeyPurpose, KeySpec, MasterSecret, derive};
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;

fn opener() -> &'static InvokeResponseOpener {
    static OPENER: OnceLock<InvokeResponseOpener> = OnceLock::new();
    OPENER.get_or_init(|| {
        let policy = clave_attest::Policy::insecure_dev([clave_attest::Measurement(vec![0; 48])])
            .expect("policy");
        let spec = KeySpec::new(KeyPurpose::Invoke, policy, 1);
        let key = derive::derive_key(&MasterSecret::from_bytes([4; 32]), &spec).expect("derive");
        let req = InvokeRequest::new(
            "p".parse().expect("p"),
            "f".parse().expect("f"),
            CodeHash::of(b""),
            1,
            Vec::new(),
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        seal_invoke(&key.key_config, &req, &mut rng)
            .expect("seal")
            .1
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = opener().open(data);
});
