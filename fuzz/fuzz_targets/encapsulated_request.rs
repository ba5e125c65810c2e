#![no_main]
//! Server side of OHTTP and the invoke envelope on arbitrary bytes. The first byte is replaced
//! by the key id so that the fuzzer reaches HPKE and the BHTTP parser.

use std::sync::OnceLock;

use clave_proto::invoke::open_invoke;
use clave_proto::ohttp::{ServerKey, server_decapsulate};
use clave_proto::{KeyPurpose, KeySpec, MasterSecret, derive};
use libfuzzer_sys::fuzz_target;

fn key() -> &'static ServerKey {
    static KEY: OnceLock<ServerKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let policy = clave_attest::Policy::insecure_dev([clave_attest::Measurement(vec![0; 48])])
            .expect("policy");
        let spec = KeySpec::new(KeyPurpose::Invoke, policy, 1);
        derive::derive_key(&MasterSecret::from_bytes([3; 32]), &spec)
            .expect("derive")
            .server_key()
            .expect("key")
    })
}

fuzz_target!(|data: &[u8]| {
    let keys = std::slice::from_ref(key());
    let _ = server_decapsulate(keys, data);
    let mut d = data.to_vec();
    if let Some(b) = d.first_mut() {
        *b = keys[0].config().key_id().0;
    }
    let _ = open_invoke(keys, &d);
});
