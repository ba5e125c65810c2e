//! clave-engine: the confidential invoke path inside the TEE.
//!
//! It obtains keys from the KDS by attested key release, opens sealed code, runs it in
//! `clave-sandbox` and seals the result to the requesting user. It refuses to run any code whose
//! hash differs from the one the user pinned, and it never hands plaintext to the host.
