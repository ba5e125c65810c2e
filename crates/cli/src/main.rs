//! The `clave` binary.
fn main() {}
