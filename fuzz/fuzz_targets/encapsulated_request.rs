#![no_main]
//! Server side of OHTTP and the invoke envelope on arbitrary bytes. The first byte is replaced
//! by the key id so that the fuzzer reaches HPKE and the BHTTP parser.

use clave_proto::invoke::open_invoke;
use clave_proto::ohttp::server_decapsulate;
use clave_proto::{KeyPurpose, KeySpec, MasterSecret, derive};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let policy = clave_attest::Policy::insecure_dev([clave_attest::Measurement(
        vec![0; 48],
    )])
    .expect("policy");
    let spec = KeySpec::new(KeyPurpose::Invoke, policy, 1);
    let key = derive::derive_key(&MasterSecret::from_bytes([3; 32]), &spec)
        .expect("derive")
        .server_key()
        .expect("key");
    let keys = std::slice::from_ref(&key);
    let _ = server_decapsulate(keys, data);
    let mut d = data.to_vec();
    if let Some(b) = d.first_mut() {
        *b = key.config().key_id().0;
    }
    let _ = open_invoke(keys, &d);
});
