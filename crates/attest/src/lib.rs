//! clave-attest (placeholder; see ARCHITECTURE.md).
