//! The built-in load generator: N keep-alive HTTP/1.1 connections (hyper), each sending its next
//! request as soon as the previous answer arrived and been checked (closed loop).
//!
//! The confidential mode does the client's whole job per request: build the BHTTP request with a
//! fresh `date`, seal it to the attested invoke key, post it, open the sealed answer and check it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use bytes::Bytes;
use clave_proto::{
    CodeHash, FunctionName, InvokeRequest, KeyConfig, ProjectName, prepare_request, seal_invoke,
    seal_invoke_prepared,
};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// What one request is.
#[derive(Clone)]
pub enum Mode {
    /// Client-side OHTTP seal, the gateway, the engine, the sandbox, the sealed answer opened.
    Confidential {
        /// The attested invoke key.
        key: KeyConfig,
        /// The pinned code hash.
        code_hash: CodeHash,
    },
    /// The same request as plain BHTTP (INSECURE benchmark path).
    Plaintext {
        /// The pinned code hash.
        code_hash: CodeHash,
    },
    /// A plain HTTP POST of the JSON body (the peer, workerd).
    Raw,
}

/// Where and what to send.
#[derive(Clone)]
pub struct Target {
    /// Server address.
    pub addr: SocketAddr,
    /// Project (confidential and plaintext modes).
    pub project: ProjectName,
    /// Function (confidential and plaintext modes).
    pub function: FunctionName,
    /// Request kind.
    pub mode: Mode,
    /// The JSON body.
    pub body: Arc<Vec<u8>>,
}

impl Target {
    fn path(&self) -> String {
        match self.mode {
            Mode::Raw => "/".to_owned(),
            _ => format!(
                "/v1/projects/{}/functions/{}/invoke",
                self.project, self.function
            ),
        }
    }
}

/// One keep-alive connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    target: Arc<Target>,
    path: String,
    /// The next confidential request's encapsulation, made while the previous one was in flight
    /// (as `clave_client::Client` does).
    spare: Option<clave_proto::PreparedRequest>,
}

impl Conn {
    /// Connect.
    pub async fn open(target: Arc<Target>) -> Result<Self> {
        let stream = tokio::net::TcpStream::connect(target.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let path = target.path();
        Ok(Self {
            sender,
            target,
            path,
            spare: None,
        })
    }

    async fn post(&mut self, content_type: &str, body: Vec<u8>) -> Result<(u16, Bytes)> {
        let req = http::Request::post(self.path.as_str())
            .header(http::header::HOST, "127.0.0.1")
            .header(http::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))?;
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// One request, checked end to end.
    pub async fn request(&mut self) -> Result<()> {
        let t = self.target.clone();
        let body = t.body.as_ref().clone();
        let expect = body.len();
        let inner = |code_hash: CodeHash| {
            let mut r = InvokeRequest::new(
                t.project.clone(),
                t.function.clone(),
                code_hash,
                clave_client::now_unix(),
                body.clone(),
            );
            r.headers
                .push(("content-type".into(), "application/json".into()));
            r
        };
        let answer = match &t.mode {
            Mode::Confidential { key, code_hash } => {
                let (enc, opener) = match self.spare.take().filter(|p| p.is_for(key)) {
                    Some(prepared) => seal_invoke_prepared(prepared, &inner(*code_hash))?,
                    None => seal_invoke(key, &inner(*code_hash), &mut rand::rng())?,
                };
                // The next request's X25519 work while this one is in flight.
                let (sent, spare) = tokio::join!(self.post("message/ohttp-req", enc), async {
                    tokio::task::yield_now().await;
                    prepare_request(key, &mut rand::rng()).ok()
                });
                self.spare = spare;
                let (status, bytes) = sent?;
                if status != 200 {
                    bail!(
                        "gateway answered {status}: {}",
                        String::from_utf8_lossy(&bytes)
                    );
                }
                let resp = opener
                    .open(&bytes)?
                    .map_err(|p| anyhow!("engine refused: {p}"))?;
                (resp.status, resp.body.len())
            }
            Mode::Plaintext { code_hash } => {
                let (status, bytes) = self
                    .post("message/bhttp", inner(*code_hash).to_bhttp()?)
                    .await?;
                if status != 200 {
                    bail!(
                        "gateway answered {status}: {}",
                        String::from_utf8_lossy(&bytes)
                    );
                }
                let m = clave_proto::invoke::decode_bhttp(&bytes)?;
                let status = match m.control() {
                    bhttp::ControlData::Response(s) => s.code(),
                    bhttp::ControlData::Request { .. } => bail!("a request came back"),
                };
                (status, m.content().len())
            }
            Mode::Raw => {
                let (status, bytes) = self.post("application/json", body).await?;
                (status, bytes.len())
            }
        };
        if answer.0 != 200 || answer.1 + 16 < expect {
            bail!("unexpected answer: status {}, {} bytes", answer.0, answer.1);
        }
        Ok(())
    }
}

/// Result of one closed-loop run.
#[derive(Debug, Clone, Default)]
pub struct RunStats {
    /// Requests completed inside the measured interval.
    pub requests: u64,
    /// Failed requests (whole run).
    pub errors: u64,
    /// First error message, if any.
    pub first_error: Option<String>,
    /// Measured interval, seconds.
    pub secs: f64,
    /// Latencies of the measured requests, microseconds, sorted.
    pub latencies_us: Vec<f64>,
    /// CPU time of this process (and of `peer_pid`) in the interval, microseconds.
    pub cpu_us: u64,
    /// Highest resident set (this process + peer) seen during the interval, KiB.
    pub max_rss_kib: u64,
}

impl RunStats {
    /// Requests per second.
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.secs.max(1e-9)
    }

    /// Percentile `p` (0..=100) of the latencies, microseconds.
    pub fn percentile(&self, p: f64) -> f64 {
        percentile(&self.latencies_us, p)
    }

    /// CPU microseconds per request.
    pub fn cpu_per_request(&self) -> f64 {
        self.cpu_us as f64 / (self.requests.max(1) as f64)
    }
}

/// Percentile `p` of sorted values (nearest rank).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn cpu_now(peer: Option<u32>) -> u64 {
    crate::sys::cpu_micros(None).unwrap_or(0)
        + peer
            .and_then(|p| crate::sys::cpu_micros(Some(p)))
            .unwrap_or(0)
}

fn rss_now(peer: Option<u32>) -> u64 {
    crate::sys::rss_kib(None).unwrap_or(0)
        + peer.and_then(|p| crate::sys::rss_kib(Some(p))).unwrap_or(0)
}

/// Drive `target` with `connections` closed-loop connections: `warmup`, then `measure`.
pub async fn run(
    target: Arc<Target>,
    connections: usize,
    warmup: Duration,
    measure: Duration,
    peer_pid: Option<u32>,
) -> Result<RunStats> {
    let begin = Instant::now() + Duration::from_millis(50);
    let from = begin + warmup;
    let until = from + measure;
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let target = target.clone();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut first_error = None;
            let mut conn = Conn::open(target.clone()).await?;
            tokio::time::sleep_until(begin.into()).await;
            loop {
                let start = Instant::now();
                if start >= until {
                    break;
                }
                match conn.request().await {
                    Ok(()) => {
                        if start >= from {
                            lat.push(start.elapsed().as_secs_f64() * 1e6);
                        }
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error.get_or_insert_with(|| format!("{e:#}"));
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        conn = Conn::open(target.clone()).await?;
                    }
                }
            }
            anyhow::Ok((lat, first_error))
        }));
    }
    // Sample CPU at the edges of the measured interval and RSS inside it.
    tokio::time::sleep_until(from.into()).await;
    let cpu0 = cpu_now(peer_pid);
    let t0 = Instant::now();
    let mut max_rss = 0;
    while Instant::now() < until {
        max_rss = max_rss.max(rss_now(peer_pid));
        tokio::time::sleep(
            Duration::from_millis(50).min(until.saturating_duration_since(Instant::now())),
        )
        .await;
    }
    let cpu1 = cpu_now(peer_pid);
    let secs = t0.elapsed().as_secs_f64();
    let mut stats = RunStats {
        secs,
        cpu_us: cpu1.saturating_sub(cpu0),
        max_rss_kib: max_rss,
        ..RunStats::default()
    };
    for t in tasks {
        let (lat, err) = t.await.context("load task")??;
        stats.latencies_us.extend(lat);
        if stats.first_error.is_none() {
            stats.first_error = err;
        }
    }
    stats.errors = errors.load(Ordering::Relaxed);
    stats.requests = stats.latencies_us.len() as u64;
    stats.latencies_us.sort_by(f64::total_cmp);
    Ok(stats)
}
