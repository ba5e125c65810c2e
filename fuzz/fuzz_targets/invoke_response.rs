#![no_main]
//! Problem JSON and the seal/open round trip of responses built from fuzzed fields.

use clave_proto::invoke::InvokeError;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = InvokeError::from_problem_json(data) {
        assert_eq!(
            InvokeError::from_problem_json(&e.to_problem_json()).expect("re-parse"),
            e
        );
    }
});
