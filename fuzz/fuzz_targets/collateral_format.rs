#![no_main]
//! The structural checks of fetched collateral (`crates/collateral/src/format.rs`: DER framing,
//! PEM blocks, percent-encoded issuer chains, Intel's signed JSON, `Cache-Control`), compiled in
//! from the source file itself so that the fuzz build does not pull in the HTTP stack. None may
//! panic; what they accept has the shape they promise.

#[allow(dead_code, unreachable_pub)]
#[path = "../../crates/collateral/src/format.rs"]
mod format;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = format::check_der_sequence(data);
    if let Ok(certs) = format::pem_certificates(data) {
        for c in certs {
            assert!(format::check_der_sequence(&c).is_ok());
        }
    }
    let _ = format::crl_der(data);
    let _ = format::certificate_der(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(decoded) = format::percent_decode(text) {
            assert_eq!(
                format::percent_decode(&format::percent_encode(&decoded)).as_deref(),
                Some(decoded.as_str())
            );
        }
        let _ = format::cache_control_max_age(text);
    }
    for key in ["tcbInfo", "enclaveIdentity", "qeIdentity"] {
        let _ = format::signed_json(data, key);
    }
});
