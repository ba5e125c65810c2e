//! Outbound HTTPS for functions' `fetch()`: TLS ends here, inside the engine (the TEE).
//!
//! - The function's manifest lists the hosts it may reach ([`clave_proto::HostPattern`]); every
//!   hop (the first request and each redirect) is checked against that list before anything is
//!   resolved or connected.
//! - TLS is rustls (ring, as the rest of the engine) with the Mozilla root set compiled into the
//!   engine binary (`webpki-roots`, so it is part of the measurement), hostname verification and
//!   TLS 1.2 or 1.3. Nothing else is trusted: there is no configuration for extra roots.
//! - The bytes leave either directly (the engine resolves the name with the host's resolver and
//!   connects) or through an HTTP CONNECT proxy named by configuration (the proxy resolves and
//!   connects). Either way the host sees the destination host and port, sizes and timing; the
//!   content is TLS ciphertext. The DNS answer comes from the host and is untrusted: certificate
//!   verification is what protects the content.
//! - Limits per call: sub-requests (each redirect hop counts), request and response bytes, and
//!   the call's own deadline, which bounds resolving, connecting, the handshake and every read
//!   and write. Each ends the sub-request with an error the function can catch.

mod conn;
mod http1;
#[cfg(test)]
mod node_tests;
#[cfg(test)]
mod run_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use clave_proto::HostPattern;
use clave_sandbox::{Outbound, OutboundError, OutboundRequest, OutboundResponse};

pub use conn::ProxyAddr;

/// Outbound settings of an engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EgressConfig {
    /// An HTTP CONNECT proxy (`http://host:port`) every connection goes through; `None`
    /// connects directly.
    pub proxy: Option<ProxyAddr>,
    /// Sub-requests per call (each redirect hop counts as one).
    pub max_subrequests: usize,
    /// Largest request body of a sub-request, bytes.
    pub max_request_bytes: usize,
    /// Largest response (head and body) of a sub-request, bytes.
    pub max_response_bytes: usize,
}

impl Default for EgressConfig {
    fn default() -> Self {
        Self {
            proxy: None,
            max_subrequests: 16,
            max_request_bytes: 1 << 20,
            max_response_bytes: 8 << 20,
        }
    }
}

/// Resolves a host name to addresses (the host's DNS: untrusted).
type Resolver = Arc<dyn Fn(&str, u16) -> std::io::Result<Vec<std::net::SocketAddr>> + Send + Sync>;

/// The engine's outbound side: TLS configuration, egress path, limits. One per engine.
pub struct Egress {
    config: EgressConfig,
    tls: Arc<rustls::ClientConfig>,
    resolver: Resolver,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Egress {
    /// The egress of `config` with the compiled-in Mozilla roots.
    ///
    /// # Errors
    /// [`crate::Error::Config`] if the TLS configuration cannot be built.
    pub fn new(config: EgressConfig) -> Result<Self, crate::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        Self::build(config, roots, Arc::new(conn::system_resolve))
    }

    fn build(
        config: EgressConfig,
        roots: rustls::RootCertStore,
        resolver: Resolver,
    ) -> Result<Self, crate::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| crate::Error::Config(format!("outbound TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            config,
            tls: Arc::new(tls),
            resolver,
        })
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &EgressConfig {
        &self.config
    }

    /// The network of one call of a function whose manifest allows `allowed`.
    #[must_use]
    pub fn for_call(self: &Arc<Self>, allowed: Arc<[HostPattern]>) -> CallEgress {
        CallEgress {
            egress: self.clone(),
            allowed,
            used: AtomicUsize::new(0),
        }
    }
}

/// The [`Outbound`] of one call: the function's allowed hosts and its sub-request count.
pub struct CallEgress {
    egress: Arc<Egress>,
    allowed: Arc<[HostPattern]>,
    used: AtomicUsize,
}

impl Outbound for CallEgress {
    fn send(
        &self,
        request: &OutboundRequest,
        deadline: Instant,
    ) -> Result<OutboundResponse, OutboundError> {
        let cfg = &self.egress.config;
        // The manifest's list first: nothing is resolved or sent for another host.
        let host = match request.url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(other) => {
                return Err(OutboundError::HostNotAllowed {
                    host: other.to_string(),
                });
            }
            None => return Err(OutboundError::Protocol("the URL has no host".into())),
        };
        if !clave_proto::outbound::allows(&self.allowed, &host) {
            return Err(OutboundError::HostNotAllowed { host });
        }
        if self.used.fetch_add(1, Ordering::Relaxed) >= cfg.max_subrequests {
            return Err(OutboundError::TooManySubrequests {
                limit: cfg.max_subrequests,
            });
        }
        if request.body.len() > cfg.max_request_bytes {
            return Err(OutboundError::RequestTooLarge {
                size: request.body.len(),
                limit: cfg.max_request_bytes,
            });
        }
        let port = request.url.port_or_known_default().unwrap_or(443);
        let head = http1::request_head(request, &host)?;
        let stream = conn::connect(&self.egress, &host, port, deadline)?;
        http1::exchange(
            stream,
            &head,
            &request.body,
            &request.method,
            cfg.max_response_bytes,
            deadline,
        )
    }
}
