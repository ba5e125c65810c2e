//! `clave-proto` holds every wire format of clave: key specs and their derivation, signed
//! objects and key bundles, the code envelope, the invoke envelope and the OHTTP layer under
//! both. It refuses I/O, clocks and ambient randomness: times are `u64` unix-second arguments
//! and randomness is an injected [`rand_core::CryptoRng`]. It never prints key material.
//!
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod b64;
pub mod bundle;
mod canonical;
pub mod code;
pub mod derive;
pub mod devlog;
pub mod devloop_api;
pub mod error;
pub mod gateway_api;
mod hpke_x25519;
pub mod invoke;
pub mod kds_api;
pub mod ohttp;
pub mod outbound;
pub mod rt;
pub mod secret;
pub mod signed;
pub mod spec;
pub mod types;

pub use bundle::KeyBundle;
pub use code::{Limits, Manifest, SealedCode, open_code, seal_code};
pub use error::{Error, Result};
pub use invoke::{
    InvokeError, InvokeMode, InvokeRequest, InvokeResponder, InvokeResponse, InvokeResponseOpener,
    ProblemKind, ReplayId, open_invoke, seal_invoke, seal_invoke_prepared,
};
pub use ohttp::{KeyConfig, PreparedRequest, PrivateKey, ServerKey, prepare_request};
pub use outbound::HostPattern;
pub use rt::BoxFuture;
pub use signed::SignedObject;
pub use spec::{KeyPurpose, KeySpec};
pub use types::{CodeHash, FunctionName, KeyId, MasterSecret, ProjectName, SpecId};
