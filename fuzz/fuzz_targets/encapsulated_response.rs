#![no_main]
//! Client side of the invoke envelope. Two paths per input:
//! 1. the bytes as an encapsulated response to a real request (almost never decrypts);
//! 2. the bytes as the response *plaintext*: encapsulated by the server context of that request
//!    (production code, fixed "random" nonce) and opened by the production client, so every input
//!    reaches the BHTTP response and problem-JSON parsers behind decryption.

use std::sync::OnceLock;

use clave_proto::invoke::{InvokeRequest, InvokeResponseOpener, seal_invoke};
use clave_proto::ohttp::testing::FixedBytes;
use clave_proto::ohttp::{ServerResponseContext, server_decapsulate};
use clave_proto::{CodeHash, KeyPurpose, KeySpec, MasterSecret, derive};
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;

fn pair() -> &'static (InvokeResponseOpener, ServerResponseContext) {
    static PAIR: OnceLock<(InvokeResponseOpener, ServerResponseContext)> = OnceLock::new();
    PAIR.get_or_init(|| {
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
        let (enc, opener) = seal_invoke(&key.key_config, &req, &mut rng).expect("seal");
        let server = key.server_key().expect("server key");
        let (_, ctx) = server_decapsulate(std::slice::from_ref(&server), &enc).expect("open");
        (opener, ctx)
    })
}

fuzz_target!(|data: &[u8]| {
    let (opener, server) = pair();
    let _ = opener.open(data);
    let enc = server
        .encapsulate(data, &mut FixedBytes::new(&[5]))
        .expect("encapsulating a response cannot fail");
    if let Ok(Ok(resp)) = opener.open(&enc) {
        assert!((200..=599).contains(&resp.status));
    }
});
