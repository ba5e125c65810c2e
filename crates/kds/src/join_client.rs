//! The joiner's side of a replica join over HTTP (`clave kds --join URL` / `--peers LIST`):
//! fetch a nonce from a running replica, send our evidence ([`PendingJoin`]), check the peer's
//! evidence and receive the master secret. The server side is in [`crate::service`].

use std::path::Path;
use std::time::{Duration, Instant};

use clave_proto::kds_api::{NonceResponse, ReplicaJoinRequest, ReplicaJoinResponse, paths};
use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;

use crate::{Error, Kds, KdsAttester, KdsConfig, KdsSealer, PendingJoin};

/// How long [`join_any_peer`] keeps trying peers before it concludes that none is reachable.
pub const PEER_SEARCH: Duration = Duration::from_secs(10);

/// Why a join over HTTP failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// The replica at `url` gave no join nonce (unreachable or refused).
    #[error("cannot join the KDS at {url}: {reason}")]
    Nonce {
        /// The replica's base URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A reachable peer found by [`join_any_peer`] refused to give a nonce.
    #[error("the KDS peer {url} refused a join nonce: {reason}")]
    PeerRefused {
        /// The peer's base URL.
        url: String,
        /// Its answer.
        reason: String,
    },
    /// Our side of the join could not be prepared (data directory, attester, policy).
    #[error("cannot prepare the replica join: {0}")]
    Prepare(#[source] Error),
    /// The replica refused our join request.
    #[error("the KDS at {url} refused the join: {reason}")]
    Refused {
        /// The replica's base URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The replica's answer did not prove it (mutual attestation failed).
    #[error("the KDS at {url} did not prove itself (mutual attestation): {source}")]
    Unproven {
        /// The replica's base URL.
        url: String,
        /// Why its answer was refused.
        #[source]
        source: Error,
    },
}

fn http_client() -> Result<reqwest::Client, JoinError> {
    clave_proto::rt::ensure_rustls_provider();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(20))
        .build()
        .map_err(|e| JoinError::Client(e.to_string()))
}

/// Join the replica at `url` (a base URL without trailing `/`): nonce from the peer, our
/// evidence, its evidence, the master secret sealed into `data_dir` with `sealer` (or, without a
/// sealer, kept in memory only).
///
/// # Errors
/// [`JoinError`] naming the step that failed.
pub async fn join_over_http(
    url: &str,
    data_dir: &Path,
    sealer: Option<KdsSealer>,
    attester: KdsAttester,
    config: KdsConfig,
    now: u64,
) -> Result<Kds, JoinError> {
    let http = http_client()?;
    join_with(&http, url, data_dir, sealer, attester, config, now).await
}

async fn join_with(
    http: &reqwest::Client,
    url: &str,
    data_dir: &Path,
    sealer: Option<KdsSealer>,
    attester: KdsAttester,
    config: KdsConfig,
    now: u64,
) -> Result<Kds, JoinError> {
    let nonce: NonceResponse =
        post_json(http, &format!("{url}{}", paths::REPLICA_NONCE), None::<&()>)
            .await
            .map_err(|e| JoinError::Nonce {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
    let rng = UnwrapErr(SysRng);
    let pending = match sealer {
        Some(sealer) => PendingJoin::new(data_dir, sealer, attester, config, nonce.nonce, rng),
        None => PendingJoin::new_in_memory(data_dir, attester, config, nonce.nonce, rng),
    }
    .map_err(JoinError::Prepare)?;
    let request: &ReplicaJoinRequest = pending.request();
    let response: ReplicaJoinResponse = post_json(
        http,
        &format!("{url}{}", paths::REPLICA_JOIN),
        Some(request),
    )
    .await
    .map_err(|e| JoinError::Refused {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    pending
        .finish(&response, now)
        .map_err(|source| JoinError::Unproven {
            url: url.to_owned(),
            source,
        })
}

/// Errors of one HTTP exchange: `Unreachable` (nothing answered) or `Answered` (a refusal).
#[derive(Debug)]
enum HttpFail {
    Unreachable(String),
    Answered(String),
}

impl std::fmt::Display for HttpFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(m) | Self::Answered(m) => f.write_str(m),
        }
    }
}

async fn post_json<B: serde::Serialize, T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    body: Option<&B>,
) -> Result<T, HttpFail> {
    let mut req = http.post(url);
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| HttpFail::Unreachable(e.to_string()))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| HttpFail::Unreachable(e.to_string()))?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned();
        return Err(HttpFail::Answered(format!("HTTP {status}: {text}")));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| HttpFail::Answered(format!("unexpected answer: {e}")))
}

/// Resolve `list` (URLs and `dns+http://name:port`, separated by commas or white space) into
/// peer base URLs, sorted and without duplicates. Items that are neither are skipped.
pub async fn resolve_peers(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    for item in list
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
        if let Some(rest) = item.strip_prefix("dns+") {
            let Some(hostport) = rest
                .strip_prefix("http://")
                .map(|h| h.trim_end_matches('/').to_owned())
            else {
                continue;
            };
            if let Ok(addrs) = tokio::net::lookup_host(hostport.as_str()).await {
                out.extend(addrs.map(|a| format!("http://{a}")));
            }
        } else {
            let b = item.trim_end_matches('/');
            if b.starts_with("http://") || b.starts_with("https://") {
                out.push(b.to_owned());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Try every peer of `list` (see [`resolve_peers`]) but `own` for [`PEER_SEARCH`]; `Ok(None)`
/// when none was reachable at all (genesis is then safe as far as this replica can tell), an
/// error when a reachable peer refused us. `parts` builds the sealer and attester when a peer
/// answers; `now` reads the clock when the join finishes.
///
/// # Errors
/// `parts`' error, or a [`JoinError`] converted into `E`.
pub async fn join_any_peer<E: From<JoinError>>(
    list: &str,
    own: &str,
    data_dir: &Path,
    parts: &dyn Fn() -> Result<(Option<KdsSealer>, KdsAttester), E>,
    config: &KdsConfig,
    now: &dyn Fn() -> u64,
) -> Result<Option<(Kds, String)>, E> {
    let http = http_client()?;
    let deadline = Instant::now() + PEER_SEARCH;
    loop {
        for url in resolve_peers(list).await {
            if url == own {
                continue;
            }
            let nonce: Result<NonceResponse, HttpFail> = post_json(
                &http,
                &format!("{url}{}", paths::REPLICA_NONCE),
                None::<&()>,
            )
            .await;
            match nonce {
                Err(HttpFail::Unreachable(e)) => {
                    tracing::info!(peer = %url, error = %e, "KDS peer not reachable");
                }
                Err(HttpFail::Answered(reason)) => {
                    return Err(JoinError::PeerRefused { url, reason }.into());
                }
                Ok(_) => {
                    let (sealer, attester) = parts()?;
                    let kds = join_with(
                        &http,
                        &url,
                        data_dir,
                        sealer,
                        attester,
                        config.clone(),
                        now(),
                    )
                    .await?;
                    return Ok(Some((kds, url)));
                }
            }
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
