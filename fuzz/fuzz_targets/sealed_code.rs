#![no_main]
//! Sealed code. Two paths per input:
//! 1. `SealedCode::from_bytes` and `open_code` on arbitrary bytes: never panics, round-trips;
//! 2. fuzzer-chosen code sealed with the production `seal_code` to a fixed key (under a manifest
//!    that pins its hash) and opened again: the opened code is exactly the input.

use clave_proto::code::{Limits, Manifest, SealedCode, open_code, seal_code};
use clave_proto::ohttp::testing::FixedBytes;
use clave_proto::{CodeHash, KeyPurpose, KeySpec, MasterSecret, derive};
use libfuzzer_sys::fuzz_target;

/// The fixed code key (derived once: derivation dominates the cost of an input otherwise).
fn key() -> &'static (clave_proto::derive::DerivedKey, clave_proto::ServerKey) {
    static KEY: std::sync::OnceLock<(clave_proto::derive::DerivedKey, clave_proto::ServerKey)> =
        std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let policy = clave_attest::Policy::insecure_dev([clave_attest::Measurement(vec![0; 48])])
            .expect("policy");
        let spec = KeySpec::new(KeyPurpose::Code, policy, 0);
        let key = derive::derive_key(&MasterSecret::from_bytes([2; 32]), &spec).expect("derive");
        let server = key.server_key().expect("key");
        (key, server)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let (key, server) = key();
    let (manifest, sealed) = rest.split_at(usize::from(split).min(rest.len()));
    if let Ok(s) = SealedCode::from_bytes(sealed) {
        assert_eq!(s.to_bytes(), sealed);
        let _ = open_code(server, manifest, &s);
    }

    let m = Manifest {
        vars: Default::default(),
        secrets: Vec::new(),
        log_key: None,
        name: "f".parse().expect("name"),
        code_hash: CodeHash::of(rest),
        entry: "index.js".into(),
        limits: Limits::default(),
        created: 1,
        outbound: Vec::new(),
        project: Some("p".parse().expect("project")),
    };
    let manifest = m.to_bytes();
    let sealed = seal_code(&key.key_config, &manifest, rest, &mut FixedBytes::new(&[3]))
        .expect("sealing code that matches its manifest");
    let reparsed = SealedCode::from_bytes(&sealed.to_bytes()).expect("our own encoding parses");
    let (code, hash) = open_code(server, &manifest, &reparsed).expect("our own seal opens");
    assert_eq!(code, rest);
    assert_eq!(hash, CodeHash::of(rest));
});
