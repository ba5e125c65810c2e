//! Where the gateway gets what it proxies from the KDS: key configs, signed bundles, evidence.
//! All of it is opaque: the gateway neither parses nor verifies it (clients do).

use std::time::Duration;

use crate::Error;
use crate::engine::BoxFuture;

/// Why the KDS material could not be obtained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeySourceError {
    /// The KDS could not be reached.
    #[error("key service unreachable")]
    Unavailable,
    /// The KDS answered with an error status.
    #[error("key service answered {status}")]
    Upstream {
        /// HTTP status (or 0 when not HTTP).
        status: u16,
    },
}

/// The KDS as the gateway sees it.
pub trait KeySource: Send + Sync + 'static {
    /// `application/ohttp-keys` (RFC 9540) list of the current invoke key configs.
    fn key_configs(&self) -> BoxFuture<'_, Result<Vec<u8>, KeySourceError>>;
    /// JSON of the signed key bundles (opaque).
    fn bundles(&self) -> BoxFuture<'_, Result<Vec<u8>, KeySourceError>>;
    /// JSON of the KDS evidence for `nonce` (opaque). The nonce is already checked to be 16–128 characters
    /// of `[A-Za-z0-9_-]`.
    fn attestation(&self, nonce: String) -> BoxFuture<'_, Result<Vec<u8>, KeySourceError>>;
}

/// Paths on the KDS that an [`HttpKeySource`] fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KdsPaths {
    /// Key config list (default `/.well-known/ohttp-gateway`).
    pub key_configs: String,
    /// Signed bundles (default `/v1/kds/keys`, the KDS service's route).
    pub bundles: String,
    /// Evidence; `?nonce=` is appended (default `/v1/kds/attestation`, the KDS service's route).
    pub attestation: String,
}

impl Default for KdsPaths {
    fn default() -> Self {
        Self {
            key_configs: "/.well-known/ohttp-gateway".into(),
            bundles: clave_proto::kds_api::paths::KEYS.into(),
            attestation: clave_proto::kds_api::paths::ATTESTATION.into(),
        }
    }
}

/// A [`KeySource`] that fetches from a KDS over HTTP.
#[derive(Debug)]
pub struct HttpKeySource {
    client: reqwest::Client,
    base: String,
    paths: KdsPaths,
}

/// Largest KDS answer the gateway forwards.
const MAX_KDS_RESPONSE: usize = 1 << 20;

impl HttpKeySource {
    /// Source for a KDS at `base` (e.g. `http://127.0.0.1:7000`).
    ///
    /// # Errors
    /// [`Error::BadRemoteUrl`], [`Error::HttpClient`].
    pub fn new(base: &str, paths: KdsPaths) -> Result<Self, Error> {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::BadRemoteUrl);
        }
        clave_proto::rt::ensure_rustls_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(Error::HttpClient)?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            paths,
        })
    }

    async fn get(&self, path: &str, nonce: Option<String>) -> Result<Vec<u8>, KeySourceError> {
        let mut req = self.client.get(format!("{}{}", self.base, path));
        if let Some(nonce) = nonce {
            req = req.query(&[("nonce", nonce)]);
        }
        let resp = req.send().await.map_err(|e| {
            tracing::warn!(error = %e, "key service request failed");
            KeySourceError::Unavailable
        })?;
        if !resp.status().is_success() {
            return Err(KeySourceError::Upstream {
                status: resp.status().as_u16(),
            });
        }
        let body = resp
            .bytes()
            .await
            .map_err(|_| KeySourceError::Unavailable)?;
        if body.len() > MAX_KDS_RESPONSE {
            return Err(KeySourceError::Upstream { status: 0 });
        }
        Ok(body.to_vec())
    }
}

impl KeySource for HttpKeySource {
    fn key_configs(&self) -> BoxFuture<'_, Result<Vec<u8>, KeySourceError>> {
        Box::pin(self.get(&self.paths.key_configs, None))
    }

    fn bundles(&self) -> BoxFuture<'_, Result<Vec<u8>, KeySourceError>> {
        Box::pin(self.get(&self.paths.bundles, None))
    }

    fn attestation(&self, nonce: String) -> BoxFuture<'_, Result<Vec<u8>, KeySourceError>> {
        Box::pin(self.get(&self.paths.attestation, Some(nonce)))
    }
}
