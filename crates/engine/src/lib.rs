//! clave-engine: the confidential invoke path inside the TEE.
//!
//! It obtains keys from the KDS by attested key release ([`KdsClient`], [`Engine::refresh`]):
//! it verifies the KDS's evidence against its own KDS policy, the key bundles against the
//! attested identity key, and every released private key against its bundle's public key. It
//! then decapsulates invoke requests, refuses stale or replayed ones and ones routed to the wrong
//! function, opens the sealed code, compares its hash with the user's pin, runs it in
//! `clave-sandbox` ([`Runner`], [`SandboxRunner`]) and seals the result — or an error — to the
//! requesting user ([`Engine::invoke`]). A function's `fetch()` leaves through [`egress`]: HTTPS
//! with TLS ending here, only to the hosts its manifest lists ([`EgressConfig`]).
//!
//! It refuses to run any code whose hash differs from the one the user pinned, it never hands
//! plaintext or an error detail to the host (only "unknown key" / "undecryptable" /
//! "overloaded" travel in the clear, without content), it keeps keys and code in memory only,
//! and its log lines carry function names, durations and sizes — never content, and never the
//! outcome of a call (success, script error, timeout, stale date, replay, hash mismatch...),
//! which travels only sealed to the caller.

#![forbid(unsafe_code)]

mod call_env;
pub mod clock_floor;
mod code_cache;
pub mod devlog;
pub mod egress;
mod engine;
mod error;
mod kds_client;
mod keys;
pub mod log_ship;
pub mod register;
mod replay;
mod runner;
pub mod service;
#[cfg(feature = "test-hooks")]
mod test_hooks;

pub use devlog::{LogSink, SealedLog};
pub use egress::{Egress, EgressConfig, ProxyAddr};
pub use engine::{
    Clock, ENGINE_ATTESTATION_LABEL, Engine, EngineAttestation, EngineAttester, EngineConfig,
    KeyStatus, engine_attestation_report_data, spawn_refresh, system_clock,
};
pub use error::{EngineError, Error};
pub use kds_client::{BoxFuture, HttpKdsClient, KdsClient, KdsError};
pub use log_ship::{LogShipConfig, LogShipper, spawn_log_shipper};
pub use runner::{RunError, RunReport, RunRequest, Runner, SandboxRunner, SandboxSettings};
pub use service::router;
