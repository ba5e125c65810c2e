#![no_main]
//! `KeySpec::from_bytes`: only the canonical encoding is accepted, so it round-trips exactly.

use clave_proto::KeySpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = KeySpec::from_bytes(data) {
        assert_eq!(spec.to_bytes(), data);
    }
});
