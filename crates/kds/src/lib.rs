//! clave-kds: the Key Derivation Service, clave's root of trust.
//!
//! Inside a TEE it creates (or receives from an attested replica) the master secret, keeps it
//! only sealed to its own measurement, derives every key from it, publishes signed key bundles,
//! and releases a derived private key only to an engine whose fresh evidence satisfies the key
//! spec's policy, HPKE-sealed to that engine's ephemeral key. It refuses to write the master
//! secret or any derived key anywhere in the clear (not to disk, not to logs, not in errors),
//! refuses to start on sealed state it cannot authenticate rather than regenerate it, and
//! refuses to give the master secret to, or take it from, a replica that does not run its own
//! measurement on its own TEE kind ([`admission`]) unless an admission policy says so — and then
//! that policy's hash is bound into every attestation it makes.
//!
//! Two shells share one code path: the library ([`Kds`], for the in-process `clave dev`
//! profile) and the axum service ([`service::router`], for `clave kds`), whose handlers only
//! translate HTTP to the library calls. Wire types live in `clave_proto::kds_api`.

pub mod admission;
pub mod clock;
mod error;
pub mod join_client;
mod kds;
mod log;
mod nonce;
mod pending_join;
pub mod seal;
pub mod service;
pub mod snp_seal;
pub mod start;

pub use admission::Admission;
pub use clock::CLOCK_SEALED_FILE;
pub use error::Error;
pub use join_client::{JoinError, join_any_peer, join_over_http};
pub use kds::{Kds, KdsAttester, KdsConfig, KdsRng, KdsSealer, MASTER_SEALED_FILE};
pub use log::RELEASE_LOG_FILE;
pub use pending_join::{PendingJoin, ReplicaPeer};
pub use seal::{InsecureSimulatedSealer, MasterKeyedSealer, Sealer, SealerKind};
pub use service::{router, router_with_clock};
pub use start::{ExternalKeySource, Keep, MasterSecretSource, PeerHint, StartPlan, plan_start};
