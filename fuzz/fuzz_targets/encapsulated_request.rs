#![no_main]
//! Server side of OHTTP and the invoke envelope. Two paths per input:
//! 1. the bytes as an encapsulated request (the first byte replaced by the key id, so that the
//!    fuzzer reaches HPKE), which almost never decrypts;
//! 2. the bytes as the *plaintext*: sealed to the fixed key with the production client
//!    (`client_encapsulate`, a fixed "random" source) and opened by the production server, so
//!    every input reaches the BHTTP and invoke-request parsers behind decryption. What parses
//!    re-encodes to a request that parses the same.

use std::sync::OnceLock;

use clave_proto::invoke::{InvokeRequest, open_invoke};
use clave_proto::ohttp::testing::FixedBytes;
use clave_proto::ohttp::{ServerKey, client_encapsulate, server_decapsulate};
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

    let (enc, _) = client_encapsulate(keys[0].config(), data, &mut FixedBytes::new(&[7, 1, 9]))
        .expect("sealing to a valid key cannot fail");
    let (plain, _) = server_decapsulate(keys, &enc).expect("our own envelope opens");
    assert_eq!(plain, data);
    match open_invoke(keys, &enc) {
        Ok((req, _)) => {
            assert_eq!(Ok(req.clone()), InvokeRequest::from_bhttp(data));
            let again = InvokeRequest::from_bhttp(&req.to_bhttp().expect("re-encode"))
                .expect("re-parse");
            assert_eq!(again, req);
        }
        Err(_) => assert!(InvokeRequest::from_bhttp(data).is_err()),
    }
});
