//! Small runtime items the services share: the boxed future of their object-safe async traits
//! and, with the `rustls` feature, the process-wide TLS crypto provider their HTTP clients need.

use std::future::Future;
use std::pin::Pin;

/// A boxed `Send` future: what the object-safe async traits of the engine and gateway return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Make sure reqwest (built with `rustls-no-provider`) finds a process-wide crypto provider:
/// installs rustls' ring provider unless one is installed already. Call it before building an
/// HTTP client.
#[cfg(feature = "rustls")]
pub fn ensure_rustls_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing the race to another installer is fine: a provider is installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
