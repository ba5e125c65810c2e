//! The published evidence samples under `crates/attest/tests/data/real/` (see its README for
//! where each comes from), read at run time; a missing file fails with its path. Shared by the
//! clave-attest and clave-collateral tests (`#[path]`), so the directory is named from either
//! crate's manifest directory.
#![allow(dead_code)]

use std::path::PathBuf;

/// The bytes of `tests/data/real/{rel}`.
pub fn read(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../attest/tests/data/real")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text of `tests/data/real/{rel}`.
pub fn read_text(rel: &str) -> String {
    String::from_utf8(read(rel)).unwrap_or_else(|e| panic!("{rel}: not UTF-8: {e}"))
}

/// The text of `tests/data/real/{rel}` without any whitespace (hex and base64 files are wrapped).
pub fn compact_text(rel: &str) -> String {
    read_text(rel)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// The bytes of a hex file under `tests/data/real/`.
pub fn hex_file(rel: &str) -> Vec<u8> {
    hex::decode(compact_text(rel)).unwrap_or_else(|e| panic!("{rel}: not hex: {e}"))
}
