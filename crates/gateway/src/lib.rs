//! clave-gateway (placeholder; see ARCHITECTURE.md).
