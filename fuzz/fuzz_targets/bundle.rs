#![no_main]
//! Signed objects and key bundle payloads: JSON parse, base64url, signature and payload checks.

use clave_proto::{KeyBundle, MasterSecret, SignedObject, derive};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let identity = derive::identity_key(&MasterSecret::from_bytes([1; 32])).expect("identity");
    if let Ok(signed) = SignedObject::from_json(data) {
        let _ = KeyBundle::verify(&signed, &identity.verifying_key(), 1_700_000_000);
    }
    if let Ok(bundle) = KeyBundle::from_payload(data) {
        // Round trip through our own encoding.
        assert_eq!(
            KeyBundle::from_payload(&bundle.to_payload()).expect("re-parse"),
            bundle
        );
        let signed = bundle.sign(&identity);
        assert_eq!(
            signed.verify(&identity.verifying_key()).expect("verify"),
            bundle.to_payload()
        );
    }
});
