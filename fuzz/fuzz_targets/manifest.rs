#![no_main]
//! `Manifest::from_bytes`: never panics; re-encoding parses back to the same manifest.

use clave_proto::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::from_bytes(data) {
        assert_eq!(Manifest::from_bytes(&m.to_bytes()).expect("re-parse"), m);
    }
});
