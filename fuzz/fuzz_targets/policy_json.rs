#![no_main]
//! `Policy::from_json` (operator and user policy files): never panics; a parsed policy prints to
//! canonical JSON that parses back to the same policy and prints identically.

use clave_attest::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(p) = Policy::from_json(text) {
        let json = p.to_json();
        let again = Policy::from_json(&json).expect("canonical JSON parses");
        assert_eq!(again, p);
        assert_eq!(again.to_json(), json);
    }
});
