#![no_main]
//! `clave_attest::Evidence::from_bytes` (the KDS release request's evidence): never panics; a decoded
//! value re-encodes to bytes that decode to the same value; verification of garbage never panics.

use clave_attest::{Evidence, Policy, ReportData, verify_evidence};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = Evidence::from_bytes(data) {
        let again = Evidence::from_bytes(&e.to_bytes()).expect("re-encoded evidence parses");
        assert_eq!(again, e);
        let _ = verify_evidence(&e);
        if let Ok(policy) = Policy::insecure_dev([clave_attest::Measurement(vec![0u8; 32])]) {
            let _ = clave_attest::verify(&e, &policy, &ReportData::ZERO, 0);
        }
    }
});
