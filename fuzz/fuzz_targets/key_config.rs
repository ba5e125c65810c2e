#![no_main]
//! `KeyConfig::decode`: never panics; whatever decodes re-encodes to the same bytes.

use clave_proto::ohttp::KeyConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = KeyConfig::decode(data) {
        assert_eq!(config.encode(), data);
    }
});
