//! clave-collateral: fetches and caches the endorsements (certificates, CRLs, TCB info) that real
//! TEE evidence is verified against — AMD KDS for SEV-SNP (VCEK, ASK/ARK chain, CRL) and Intel
//! PCS for TDX and SGX (TCB info, QE identity, PCK CRL, root CA CRL) — and assembles them into
//! [`clave_attest::Endorsements`].
//!
//! It never decides trust: it checks only that responses are *shaped* right (DER framing, PEM
//! blocks, Intel's signed JSON, the issuer-chain headers) and hands everything to
//! `clave_attest::verify_with_endorsements`, which checks every signature against its built-in,
//! pinned roots. A cache entry is treated exactly like a network response (never trusted, a
//! corrupt one is refetched), and no root of trust is ever taken from the network or the cache.
//!
//! ```no_run
//! # async fn f(report: &[u8]) -> Result<(), clave_collateral::Error> {
//! use clave_collateral::{Config, Fetcher};
//! let mut config = Config::default(); // public AMD KDS and Intel PCS
//! config.cache_dir = Some("/var/cache/clave".into());
//! let fetcher = Fetcher::new(config)?;
//! let endorsements = fetcher.snp_endorsements(report, None).await?;
//! # let _ = endorsements; Ok(()) }
//! ```
//!
//! The cache is a directory of JSON files (one per resource, named by [`Fetcher::cache_path`]),
//! written atomically. Entries are fresh for the response's `Cache-Control: max-age` (capped at
//! [`Config::max_ttl_secs`]) or [`Config::default_ttl_secs`], and never beyond a CRL's own
//! `nextUpdate`. In offline mode
//! ([`Config::offline`]) only the cache is read, whatever the entries' age (the verifier checks
//! certificate and collateral validity at its own time), and a missing file is
//! [`Error::OfflineMissing`] naming the path.

#![forbid(unsafe_code)]

mod amd;
mod cache;
mod error;
mod format;
mod intel;

use std::path::PathBuf;
use std::time::Duration;

pub use amd::VcekRequest;
pub use amd::{cert_chain_cache_name, crl_cache_name};
pub use error::Error;
pub use format::percent_encode;
pub use intel::{
    PckCrl, ROOT_CA_CRL_CACHE_NAME, SignedCollateral, pck_crl_cache_name, qe_identity_cache_name,
    tcb_info_cache_name,
};

use cache::{Cache, Entry, Lookup};
use format::Shape;

/// The public AMD Key Distribution Service.
pub const DEFAULT_AMD_KDS_URL: &str = "https://kdsintf.amd.com";
/// The public Intel Provisioning Certification Service.
pub const DEFAULT_INTEL_PCS_URL: &str = "https://api.trustedservices.intel.com";
/// Where Intel publishes the CRL of the Intel SGX Root CA (the root certificate's CRL
/// distribution point).
pub const DEFAULT_INTEL_ROOT_CA_CRL_URL: &str =
    "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";
/// The largest response body accepted (the largest PCK CRLs are a few hundred KiB).
pub const MAX_BODY_LEN: usize = 4 << 20;

/// Where to fetch from, where to cache, and for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// AMD KDS base URL (no trailing path), default [`DEFAULT_AMD_KDS_URL`].
    pub amd_kds_url: String,
    /// Intel PCS (or PCCS) base URL, default [`DEFAULT_INTEL_PCS_URL`].
    pub intel_pcs_url: String,
    /// URL of the Intel SGX Root CA CRL, default [`DEFAULT_INTEL_ROOT_CA_CRL_URL`]. A PCCS
    /// serves it at `{base}/sgx/certification/v4/rootcacrl` (hex), which is accepted too.
    pub intel_root_ca_crl_url: String,
    /// Cache directory; `None` = no cache.
    pub cache_dir: Option<PathBuf>,
    /// Read the cache only; never touch the network. Requires `cache_dir`.
    pub offline: bool,
    /// Freshness of an entry whose response had no `Cache-Control: max-age` (default 1 day).
    pub default_ttl_secs: u64,
    /// Upper bound on any entry's freshness (default 7 days).
    pub max_ttl_secs: u64,
    /// Whole-request timeout (default 30 s).
    pub timeout: Duration,
    /// Fetch AMD's CRL with every SEV-SNP VCEK and chain in [`Fetcher::snp_endorsements`] (default
    /// `true`), so that `clave-attest` checks the chain for revocation. Off, the endorsements
    /// carry no CRL and the policy's `snp.revocation` decides.
    pub fetch_snp_crl: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            amd_kds_url: DEFAULT_AMD_KDS_URL.into(),
            intel_pcs_url: DEFAULT_INTEL_PCS_URL.into(),
            intel_root_ca_crl_url: DEFAULT_INTEL_ROOT_CA_CRL_URL.into(),
            cache_dir: None,
            offline: false,
            default_ttl_secs: 24 * 3600,
            max_ttl_secs: 7 * 24 * 3600,
            timeout: Duration::from_secs(30),
            fetch_snp_crl: true,
        }
    }
}

impl Config {
    /// Offline mode over `dir`: files only.
    pub fn offline(dir: impl Into<PathBuf>) -> Config {
        Config {
            cache_dir: Some(dir.into()),
            offline: true,
            ..Config::default()
        }
    }
}

/// The time source used for cache expiry (unix seconds). Injected by tests.
pub use clave_attest::Clock;

/// Fetches endorsements, through the cache when one is configured.
#[derive(Clone)]
pub struct Fetcher {
    config: Config,
    http: Option<reqwest::Client>,
    cache: Option<Cache>,
    clock: Clock,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// One resource: how to name it, where to get it, how to check its shape.
pub(crate) struct Resource {
    /// For errors (`VCEK certificate`, ...).
    pub what: &'static str,
    /// Cache file name (no directory; built only from validated parts).
    pub cache_name: String,
    pub url: String,
    /// The header carrying the issuer chain, if this resource has one.
    pub issuer_header: Option<&'static str>,
    /// Checks the body's shape and returns it normalised (PEM → DER, hex → DER).
    pub normalise: fn(&[u8]) -> Result<Vec<u8>, Shape>,
    /// The time (unix seconds) after which the (normalised) body is stale whatever the HTTP
    /// caching headers say (a CRL's `nextUpdate`), if it has one. Only ever shortens an entry.
    pub not_after: Option<NotAfter>,
}

/// Reads the time after which a body is stale (see [`Resource::not_after`]).
pub(crate) type NotAfter = fn(&[u8]) -> Option<u64>;

/// A fetched (or cached) response.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub body: Vec<u8>,
    pub issuer_chain: Option<String>,
    /// URL or cache path, for errors.
    pub source_name: String,
}

fn shape_error(what: &'static str, source_name: &str, s: Shape) -> Error {
    match s {
        Shape::Truncated => Error::Truncated {
            what,
            source_name: source_name.to_owned(),
        },
        Shape::Malformed(reason) => Error::Malformed {
            what,
            source_name: source_name.to_owned(),
            reason,
        },
    }
}

fn check_base(name: &str, url: &str) -> Result<String, Error> {
    let u = url.trim_end_matches('/');
    if !(u.starts_with("https://") || u.starts_with("http://")) || u.contains(['?', '#', ' ']) {
        return Err(Error::InvalidConfig(format!(
            "{name} must be an http(s) URL without query: {url:?}"
        )));
    }
    Ok(u.to_owned())
}

impl Fetcher {
    /// A fetcher for `config`. Installs rustls' ring provider as the process default if none is
    /// installed (reqwest is built without one).
    pub fn new(mut config: Config) -> Result<Fetcher, Error> {
        config.amd_kds_url = check_base("AMD KDS URL", &config.amd_kds_url)?;
        config.intel_pcs_url = check_base("Intel PCS URL", &config.intel_pcs_url)?;
        config.intel_root_ca_crl_url =
            check_base("Intel root CA CRL URL", &config.intel_root_ca_crl_url)?;
        if config.offline && config.cache_dir.is_none() {
            return Err(Error::InvalidConfig(
                "offline mode needs a cache directory".into(),
            ));
        }
        let http = if config.offline {
            None
        } else {
            clave_proto::rt::ensure_rustls_provider();
            Some(
                reqwest::Client::builder()
                    .timeout(config.timeout)
                    .connect_timeout(config.timeout.min(Duration::from_secs(10)))
                    .build()
                    .map_err(|e| {
                        Error::InvalidConfig(format!("cannot build the HTTP client: {e}"))
                    })?,
            )
        };
        Ok(Fetcher {
            cache: config.cache_dir.clone().map(Cache::new),
            config,
            http,
            clock: clave_attest::system_clock(),
        })
    }

    /// Replaces the clock used for cache expiry (tests; never used for verification).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Fetcher {
        self.clock = clock;
        self
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The cache file a resource named `name` lives in (see the per-resource `*_cache_name`
    /// functions), if a cache directory is configured.
    pub fn cache_path(&self, name: &str) -> Option<PathBuf> {
        self.cache.as_ref().map(|c| c.path(name))
    }

    fn check_entry(&self, res: &Resource, e: &Entry, source_name: &str) -> Result<Fetched, Error> {
        let body = e.body().ok_or_else(|| Error::Malformed {
            what: res.what,
            source_name: source_name.to_owned(),
            reason: "cache body is not hex",
        })?;
        let body = (res.normalise)(&body).map_err(|s| shape_error(res.what, source_name, s))?;
        let issuer_chain = match res.issuer_header {
            None => None,
            Some(_) => {
                let chain = e.issuer_chain.clone().ok_or_else(|| Error::Malformed {
                    what: res.what,
                    source_name: source_name.to_owned(),
                    reason: "cache entry has no issuer chain",
                })?;
                format::pem_certificates(chain.as_bytes())
                    .map_err(|s| shape_error("issuer chain", source_name, s))?;
                Some(chain)
            }
        };
        Ok(Fetched {
            body,
            issuer_chain,
            source_name: source_name.to_owned(),
        })
    }

    /// Cache, then network (online), or cache only (offline).
    pub(crate) async fn get(&self, res: &Resource) -> Result<Fetched, Error> {
        let now = (self.clock)();
        if let Some(cache) = &self.cache {
            let path = cache.path(&res.cache_name);
            let shown = path.display().to_string();
            match cache.read(&res.cache_name).await? {
                Lookup::Found(e) => match self.check_entry(res, &e, &shown) {
                    Ok(f) if self.config.offline || now < e.expires_at => return Ok(f),
                    Ok(_) => {} // stale: refetch
                    Err(err) if self.config.offline => {
                        return Err(Error::CacheCorrupt {
                            path,
                            reason: err.to_string(),
                        });
                    }
                    Err(_) => {} // corrupt: refetch and overwrite
                },
                Lookup::Corrupt(reason) if self.config.offline => {
                    return Err(Error::CacheCorrupt { path, reason });
                }
                Lookup::Corrupt(_) => {}
                Lookup::Missing if self.config.offline => {
                    return Err(Error::OfflineMissing {
                        what: format!("{} ({})", res.what, res.url),
                        path,
                    });
                }
                Lookup::Missing => {}
            }
        }
        let (fetched, ttl) = self.fetch(res).await?;
        if let Some(cache) = &self.cache {
            let mut expires_at = now.saturating_add(ttl);
            if let Some(t) = res.not_after.and_then(|f| f(&fetched.body)) {
                expires_at = expires_at.min(t);
            }
            let entry = Entry::new(
                &res.url,
                now,
                expires_at,
                fetched.issuer_chain.clone(),
                &fetched.body,
            );
            cache.write(&res.cache_name, &entry).await?;
        }
        Ok(fetched)
    }

    async fn fetch(&self, res: &Resource) -> Result<(Fetched, u64), Error> {
        let url = &res.url;
        let http = self
            .http
            .as_ref()
            .ok_or_else(|| Error::InvalidConfig("offline mode: the network is not used".into()))?;
        let transport = |e: reqwest::Error| Error::Transport {
            url: url.clone(),
            reason: error_chain(&e),
        };
        let mut resp = http.get(url).send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Err(Error::NotFound { url: url.clone() });
        }
        if !(200..300).contains(&status) {
            return Err(Error::HttpStatus {
                url: url.clone(),
                status,
            });
        }
        let ttl = match resp
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .and_then(format::cache_control_max_age)
        {
            Some(max_age) => max_age.min(self.config.max_ttl_secs),
            None => self.config.default_ttl_secs.min(self.config.max_ttl_secs),
        };
        let issuer_chain = match res.issuer_header {
            None => None,
            Some(h) => {
                let missing = || Error::MissingHeader {
                    url: url.clone(),
                    header: h,
                };
                let raw = resp
                    .headers()
                    .get(h)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(missing)?;
                let pem = format::percent_decode(raw).ok_or_else(missing)?;
                format::pem_certificates(pem.as_bytes()).map_err(|_| missing())?;
                Some(pem)
            }
        };
        if resp
            .content_length()
            .is_some_and(|l| l > MAX_BODY_LEN as u64)
        {
            return Err(Error::TooLarge {
                url: url.clone(),
                max: MAX_BODY_LEN,
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > MAX_BODY_LEN {
                return Err(Error::TooLarge {
                    url: url.clone(),
                    max: MAX_BODY_LEN,
                });
            }
            body.extend_from_slice(&chunk);
        }
        let body = (res.normalise)(&body).map_err(|s| shape_error(res.what, url, s))?;
        Ok((
            Fetched {
                body,
                issuer_chain,
                source_name: url.clone(),
            },
            ttl,
        ))
    }

    /// Endorsements for any evidence: SEV-SNP → VCEK, AMD chain and CRL (see
    /// [`Config::fetch_snp_crl`]), TDX/SGX → Intel collateral, Nitro and the simulated TEE → none
    /// (their evidence carries everything).
    /// `snp_product` is needed only for SNP reports of version 2 (no CPUID fields).
    pub async fn endorsements_for(
        &self,
        evidence: &clave_attest::Evidence,
        snp_product: Option<clave_attest::snp::SnpProduct>,
    ) -> Result<clave_attest::Endorsements, Error> {
        use clave_attest::Evidence;
        match evidence {
            Evidence::SevSnp { report, .. } => self.snp_endorsements(report, snp_product).await,
            Evidence::Tdx { quote } | Evidence::SgxDcap { quote } => {
                Ok(clave_attest::Endorsements {
                    dcap: Some(self.dcap_collateral_for_quote(quote).await?),
                    ..Default::default()
                })
            }
            _ => Ok(clave_attest::Endorsements::default()),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
