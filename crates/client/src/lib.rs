//! clave-client: the Rust SDK for developers and users.
//!
//! It verifies attestation and key bundles before it seals anything, seals code and invocations,
//! and opens results. It refuses to send plaintext to a gateway whose keys it has not verified.
