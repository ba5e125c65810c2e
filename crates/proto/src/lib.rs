//! clave-proto (placeholder; see ARCHITECTURE.md).
