#![no_main]
//! DCAP collateral JSON (`DcapCollateral::from_json`, what `clave-collateral` caches and an
//! operator may hand over), then verification of the real TDX and SGX quotes of the repository's
//! test data against whatever parsed: the TCB info and QE identity JSON inside reach dcap-qvl's
//! parsers. Nothing may panic.

use clave_attest::TeeKind;
use clave_attest::dcap::{DcapCollateral, verify_quote};
use libfuzzer_sys::fuzz_target;

const TDX_QUOTE: &str = include_str!("../../crates/attest/tests/data/real/tdx/tdx_quote_v4.hex");
const SGX_QUOTE: &str = include_str!("../../crates/attest/tests/data/real/sgx/sgx_quote_v3.hex");

fn unhex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).expect("ascii"), 16).expect("hex"))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(collateral) = DcapCollateral::from_json(text) else {
        return;
    };
    thread_local! {
        static QUOTES: (Vec<u8>, Vec<u8>) = (unhex(TDX_QUOTE), unhex(SGX_QUOTE));
    }
    QUOTES.with(|(tdx, sgx)| {
        let now = 1_750_000_000;
        let _ = verify_quote(TeeKind::Tdx, tdx, Some(&collateral), now);
        let _ = verify_quote(TeeKind::SgxDcap, sgx, Some(&collateral), now);
    });
});
