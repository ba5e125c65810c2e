#![no_main]
//! `SealedCode::from_bytes` and `open_code` on arbitrary bytes: never panics, round-trips.

use clave_proto::code::{SealedCode, open_code};
use clave_proto::{KeyPurpose, KeySpec, MasterSecret, derive};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let (manifest, sealed) = rest.split_at(usize::from(split).min(rest.len()));
    if let Ok(s) = SealedCode::from_bytes(sealed) {
        assert_eq!(s.to_bytes(), sealed);
        let policy = clave_attest_policy();
        let spec = KeySpec::new(KeyPurpose::Code, policy, 0);
        let key = derive::derive_key(&MasterSecret::from_bytes([2; 32]), &spec)
            .expect("derive")
            .server_key()
            .expect("key");
        let _ = open_code(&key, manifest, &s);
    }
});

fn clave_attest_policy() -> clave_attest::Policy {
    clave_attest::Policy::insecure_dev([clave_attest::Measurement(vec![0; 48])]).expect("policy")
}
