//! How the engine talks to the KDS: the [`KdsClient`] trait (one method per KDS endpoint, with
//! the `clave_proto::kds_api` wire types) and its HTTP implementation [`HttpKdsClient`].
//!
//! The KDS is not trusted because of the channel: every answer is checked by the engine
//! (attestation against the engine's KDS policy, bundle signatures by the attested identity,
//! released keys against their bundle). Plain `http://` is therefore acceptable between TEEs.

use std::time::Duration;

use clave_proto::kds_api::{
    self, AttestationResponse, KeysResponse, NonceResponse, ReleaseRequest, ReleaseResponse, paths,
};
use serde::de::DeserializeOwned;

/// A boxed `Send` future (keeps [`KdsClient`] object safe).
pub use clave_proto::BoxFuture;

/// Why a KDS call produced no usable answer. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KdsError {
    /// The KDS could not be reached (connection, timeout, TLS).
    #[error("KDS unreachable: {0}")]
    Transport(String),
    /// The KDS answered with an error (problem JSON `urn:clave:kds:<slug>`).
    #[error("KDS refused ({status} {slug})")]
    Refused {
        /// HTTP status (or the status the in-process adapter assigns).
        status: u16,
        /// The problem slug, e.g. `nonce-reused`, `attestation`.
        slug: String,
        /// The problem detail, if any (never key material).
        detail: Option<String>,
    },
    /// The KDS answer did not parse as the expected wire type.
    #[error("malformed KDS answer: {0}")]
    Malformed(String),
}

impl KdsError {
    /// Build a [`KdsError::Refused`] from a KDS problem document.
    #[must_use]
    pub fn from_problem(p: &kds_api::Problem) -> Self {
        KdsError::Refused {
            status: p.status,
            slug: p.slug().unwrap_or(&p.type_).to_owned(),
            detail: p.detail.clone(),
        }
    }
}

/// The KDS API as the engine uses it: one method per endpoint, 1:1 with `clave_proto::kds_api`.
///
/// Implementations: [`HttpKdsClient`] (separate processes) and an in-process adapter over
/// `clave_kds::Kds` (written by the CLI: `kds.attestation(&nonce)`, `kds.keys(now)`,
/// `kds.new_nonce(now)`, `kds.release(&req, now)`).
pub trait KdsClient: Send + Sync {
    /// `GET /v1/kds/attestation?nonce=<hex>`: KDS evidence binding its identity key and `nonce`.
    fn attestation(&self, nonce: Vec<u8>) -> BoxFuture<'_, Result<AttestationResponse, KdsError>>;
    /// `GET /v1/kds/keys`: the signed key bundles.
    fn keys(&self) -> BoxFuture<'_, Result<KeysResponse, KdsError>>;
    /// `POST /v1/kds/nonce`: a fresh single-use release nonce.
    fn nonce(&self) -> BoxFuture<'_, Result<NonceResponse, KdsError>>;
    /// `POST /v1/kds/release`: the private key of a spec, HPKE-sealed to the ephemeral key.
    fn release(&self, req: ReleaseRequest) -> BoxFuture<'_, Result<ReleaseResponse, KdsError>>;
}

/// A [`KdsClient`] over HTTP(S) (reqwest, rustls with the ring provider for `https://`).
#[derive(Clone)]
pub struct HttpKdsClient {
    base: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for HttpKdsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpKdsClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Largest KDS answer read (evidence with certificate chains is a few tens of KiB).
const MAX_KDS_ANSWER: usize = 4 << 20;

impl HttpKdsClient {
    /// A client for the KDS at `base_url` (e.g. `http://127.0.0.1:7000`).
    ///
    /// # Errors
    /// [`KdsError::Transport`] for a URL that is not http(s) or a client that cannot be built.
    pub fn new(base_url: &str) -> Result<Self, KdsError> {
        let base = base_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(KdsError::Transport("KDS URL must be http(s)".into()));
        }
        clave_proto::rt::ensure_rustls_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| KdsError::Transport(e.to_string()))?;
        Ok(Self { base, client })
    }

    /// The base URL.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn read<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, KdsError> {
        let status = resp.status();
        if resp
            .content_length()
            .is_some_and(|l| l > MAX_KDS_ANSWER as u64)
        {
            return Err(KdsError::Malformed("answer too large".into()));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| KdsError::Transport(e.to_string()))?;
        if body.len() > MAX_KDS_ANSWER {
            return Err(KdsError::Malformed("answer too large".into()));
        }
        if !status.is_success() {
            return Err(match serde_json::from_slice::<kds_api::Problem>(&body) {
                Ok(p) => KdsError::from_problem(&p),
                Err(_) => KdsError::Refused {
                    status: status.as_u16(),
                    slug: "unknown".into(),
                    detail: None,
                },
            });
        }
        serde_json::from_slice(&body).map_err(|e| KdsError::Malformed(e.to_string()))
    }

    fn transport(e: reqwest::Error) -> KdsError {
        KdsError::Transport(e.to_string())
    }
}

impl KdsClient for HttpKdsClient {
    fn attestation(&self, nonce: Vec<u8>) -> BoxFuture<'_, Result<AttestationResponse, KdsError>> {
        Box::pin(async move {
            let resp = self
                .client
                .get(format!("{}{}", self.base, paths::ATTESTATION))
                .query(&[("nonce", hex::encode(&nonce))])
                .send()
                .await
                .map_err(Self::transport)?;
            Self::read(resp).await
        })
    }

    fn keys(&self) -> BoxFuture<'_, Result<KeysResponse, KdsError>> {
        Box::pin(async move {
            let resp = self
                .client
                .get(format!("{}{}", self.base, paths::KEYS))
                .send()
                .await
                .map_err(Self::transport)?;
            Self::read(resp).await
        })
    }

    fn nonce(&self) -> BoxFuture<'_, Result<NonceResponse, KdsError>> {
        Box::pin(async move {
            let resp = self
                .client
                .post(format!("{}{}", self.base, paths::NONCE))
                .send()
                .await
                .map_err(Self::transport)?;
            Self::read(resp).await
        })
    }

    fn release(&self, req: ReleaseRequest) -> BoxFuture<'_, Result<ReleaseResponse, KdsError>> {
        Box::pin(async move {
            let resp = self
                .client
                .post(format!("{}{}", self.base, paths::RELEASE))
                .json(&req)
                .send()
                .await
                .map_err(Self::transport)?;
            Self::read(resp).await
        })
    }
}
