#![no_main]
//! `KeyConfig::decode_list`: never panics; the kept configurations round-trip.

use clave_proto::ohttp::KeyConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = KeyConfig::decode_list(data) {
        let again = KeyConfig::decode_list(&KeyConfig::encode_list(&list)).expect("re-decode");
        assert_eq!(again, list);
    }
});
