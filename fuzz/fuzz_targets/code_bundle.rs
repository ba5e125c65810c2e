#![no_main]
//! `clave_sandbox::bundle::Bundle::decode` (the code text the engine opens) and `resolve`: never
//! panic; a decoded bundle re-encodes to exactly the same text (the encoding is canonical).

use clave_sandbox::bundle::{Bundle, resolve};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(Some(b)) = Bundle::decode(text) {
        assert_eq!(b.encode(), text);
    }
    if let Some((importer, spec)) = text.split_once('\n')
        && let Ok(path) = resolve(importer, spec)
    {
        assert!(!path.split('/').any(|s| s.is_empty() || s == "." || s == ".."));
    }
});
