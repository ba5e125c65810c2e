//! clave-sandbox (placeholder; see ARCHITECTURE.md).
