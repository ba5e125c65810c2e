#![no_main]
//! BHTTP decoding (`decode_bhttp`, `InvokeRequest::from_bhttp`): never panics; a parsed invoke
//! request re-encodes to bytes that parse to the same request.

use clave_proto::invoke::{InvokeRequest, decode_bhttp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_bhttp(data);
    if let Ok(req) = InvokeRequest::from_bhttp(data) {
        let bytes = req.to_bhttp().expect("re-encode");
        assert_eq!(InvokeRequest::from_bhttp(&bytes).expect("re-parse"), req);
    }
});
