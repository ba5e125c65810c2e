#![no_main]
//! Parsers of real-hardware evidence (SEV-SNP report, TDX and SGX quotes, Nitro document) and of
//! the simulated report: none may panic on any input.

use clave_attest::{nitro::NitroDocument, sgx::SgxQuote, snp::SnpReport, tdx::TdxQuote};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = SnpReport::parse(data);
    let _ = TdxQuote::parse(data);
    let _ = SgxQuote::parse(data);
    let _ = NitroDocument::parse(data);
    let _ = clave_attest::InsecureSimulatedReport::verify(data, &clave_attest::simulated::insecure_root_public_key());
});
