//! clave-kds (placeholder; see ARCHITECTURE.md).
