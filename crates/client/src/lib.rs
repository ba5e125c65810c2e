//! clave-client: the Rust SDK for developers and users.
//!
//! It verifies attestation and key bundles before it seals anything, seals code and invocations,
//! and opens results. It refuses to send plaintext to a gateway whose keys it has not verified:
//! every seal goes to a key from a [`Verified`] result, obtained by [`Client::verify`] under an
//! explicit [`TrustPolicy`] (pinned KDS reference values, accepted engines, simulated TEE only
//! when asked). Errors are a [`ClientError`] whose [`ClientError::fault`] says whose fault it is.
//!
//! ```no_run
//! # async fn demo(kds: clave_attest::Measurement, engine: clave_attest::Measurement) -> Result<(), Box<dyn std::error::Error>> {
//! use clave_client::{Client, TrustPolicy, now_unix};
//! let client = Client::new("http://127.0.0.1:8787", TrustPolicy::insecure_dev(kds, [engine])?)?;
//! let verified = client.verify(now_unix()).await?;
//! let code = b"export default { fetch(r) { return new Response('hi') } }";
//! let deployed = client
//!     .deploy("default", "hello", "index.js", code, Default::default(), "cdt_...")
//!     .await?;
//! let answer = client.invoke("default", "hello", b"", &[], &deployed.code_hash).await?;
//! assert_eq!(answer.body, b"hi");
//! # let _ = verified; Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod client;
mod devloop;
mod error;
mod manage;
mod target;
pub mod trust;
pub mod verify;

pub use client::{Client, DeployEnv, Deployed, PendingCall, UnverifiedClaim, now_unix};
pub use devloop::LogsRequest;
pub use error::{AttestationError, ClientError, Fault, LimitKind, Result};
pub use target::Target;
pub use trust::{DEFAULT_MAX_AGE, TrustPolicy, policy_within};
pub use verify::{Verified, policy_words, verify_platform};

pub use clave_proto::CodeHash;
pub use clave_proto::code::Limits;
pub use clave_proto::invoke::InvokeResponse;
