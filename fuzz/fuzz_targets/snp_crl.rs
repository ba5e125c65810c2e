#![no_main]
//! The AMD CRL parser and checks (`clave_attest::snp::crl`): no input may panic. A CRL that
//! parses is also run through the pinned-ARK check of every product (which it fails, unless the
//! fuzzer forges an RSA-4096 signature).

use clave_attest::snp::{SnpProduct, crl::SnpCrl};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(crl) = SnpCrl::parse(data) {
        let _ = crl.revoked();
        let _ = crl.issuer();
        for p in SnpProduct::ALL {
            let _ = crl.verify(p, crl.this_update());
        }
    }
});
