//! The server alone: requests are prepared ahead (every confidential one sealed separately, with
//! its own ephemeral key, since the engine refuses a replayed encapsulation), written to a file,
//! and replayed by a load generator in another process pinned to another CPU. The server's CPU
//! time (from `/proc/<pid>/stat`) and context switches (summed over `/proc/<pid>/task/*/status`)
//! are sampled at the edges of the measured interval, separately from the load generator's, and
//! so are the machine's inter-processor interrupts (`/proc/interrupts`, RES + CAL): a wake-up of a
//! thread on another CPU, which costs its sender ~20 µs on the VM these numbers come from.
//!
//! The load generator does not hold the response keys, so it checks each answer by status and
//! size only: a sealed problem (stale date, replay, wrong function, ...) is a 200 of a few hundred
//! bytes, much shorter than the sealed 1 KiB echo, and counts as an error. The parent opens and
//! checks a few end-to-end calls on each path before.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// One HTTP/1.1 request, bytes on the wire.
pub fn http_request(path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Write requests as `u32 LE length || bytes`, in order.
pub fn write_requests(path: &Path, requests: &[Vec<u8>]) -> Result<()> {
    let total: usize = requests.iter().map(|r| r.len() + 4).sum();
    let mut out = Vec::with_capacity(total);
    for r in requests {
        out.extend_from_slice(&u32::try_from(r.len())?.to_le_bytes());
        out.extend_from_slice(r);
    }
    std::fs::write(path, out).with_context(|| format!("write {}", path.display()))
}

fn read_requests(path: &Path) -> Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let mut out = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        if rest.len() < 4 {
            bail!("truncated request file");
        }
        let n = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        rest = &rest[4..];
        if rest.len() < n {
            bail!("truncated request file");
        }
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    Ok(out)
}

/// What the parent asks of the load child.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// Server address.
    pub addr: SocketAddr,
    /// The request file ([`write_requests`]).
    pub file: PathBuf,
    /// `true`: each request is sent once (sealed requests); `false`: cycled (plain requests).
    pub once: bool,
    /// Server process whose CPU time and context switches are sampled.
    pub server_pid: u32,
    /// Connections.
    pub connections: usize,
    /// Smallest acceptable response body.
    pub min_body: usize,
    /// Warm-up before the measured interval.
    pub warmup: Duration,
    /// Measured interval (cut short when the requests run out).
    pub measure: Duration,
    /// CPU the load child pins itself to (`None`: any CPU).
    pub cpu: Option<usize>,
}

impl LoadSpec {
    /// The child's command-line arguments (hidden flags of `clave-bench`).
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--load-child".into(),
            "--load-addr".into(),
            self.addr.to_string(),
            "--load-file".into(),
            self.file.display().to_string(),
            "--load-once".into(),
            self.once.to_string(),
            "--server-pid".into(),
            self.server_pid.to_string(),
            "--connections".into(),
            self.connections.to_string(),
            "--min-body".into(),
            self.min_body.to_string(),
            "--warmup-ms".into(),
            self.warmup.as_millis().to_string(),
            "--measure-ms".into(),
            self.measure.as_millis().to_string(),
        ];
        if let Some(cpu) = self.cpu {
            args.extend(["--load-cpu".into(), cpu.to_string()]);
        }
        args
    }
}

/// Spawn the load child (this executable) and return its JSON report.
pub async fn run_child(spec: &LoadSpec) -> Result<Value> {
    let exe = std::env::current_exe()?;
    let mut command = tokio::process::Command::new(exe);
    if spec.cpu.is_none() {
        // Not the parent's CPU either: free to use every CPU.
        crate::sys::unpinned(command.as_std_mut());
    }
    let out = command
        .args(spec.args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .await?;
    if !out.status.success() {
        bail!("the load child failed: {}", out.status);
    }
    serde_json::from_slice(&out.stdout).context("load child output")
}

/// Context switches (voluntary, involuntary) of every live thread of `pid`.
pub fn context_switches(pid: u32) -> Option<(u64, u64)> {
    let mut v = 0;
    let mut n = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(entry) = entry else { continue };
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        for line in status.lines() {
            let num = |p: &str| -> Option<u64> { line.strip_prefix(p)?.trim().parse().ok() };
            if let Some(x) = num("voluntary_ctxt_switches:") {
                v += x;
            } else if let Some(x) = num("nonvoluntary_ctxt_switches:") {
                n += x;
            }
        }
    }
    Some((v, n))
}

#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    at: Option<Instant>,
    server_cpu_us: u64,
    client_cpu_us: u64,
    server_cs: (u64, u64),
    client_cs: (u64, u64),
    /// Inter-processor interrupts, machine-wide (`None`: this machine does not report them).
    ipis: Option<u64>,
    done: u64,
}

/// Rescheduling and function-call interrupts delivered so far on every CPU (`/proc/interrupts`):
/// how often one CPU had to interrupt another, mostly to wake a thread there. Machine-wide, so
/// other processes' wake-ups count too. On this VM each costs the sender ~20 µs of CPU.
/// `None` where `/proc/interrupts` cannot be read or has neither row (other architectures name
/// them differently).
pub fn ipis() -> Option<u64> {
    ipis_in(&std::fs::read_to_string("/proc/interrupts").ok()?)
}

/// The RES and CAL counts of every CPU in the text of `/proc/interrupts`, summed; `None` without
/// either row.
fn ipis_in(text: &str) -> Option<u64> {
    let mut sum = None;
    for line in text.lines() {
        let line = line.trim_start();
        if let Some(rest) = line
            .strip_prefix("RES:")
            .or_else(|| line.strip_prefix("CAL:"))
        {
            let row = rest
                .split_whitespace()
                .map_while(|w| w.parse::<u64>().ok())
                .sum::<u64>();
            sum = Some(sum.unwrap_or(0) + row);
        }
    }
    sum
}

fn sample(server_pid: u32, done: u64) -> Sample {
    Sample {
        at: Some(Instant::now()),
        server_cpu_us: crate::sys::cpu_micros(Some(server_pid)).unwrap_or(0),
        client_cpu_us: crate::sys::cpu_micros(None).unwrap_or(0),
        server_cs: context_switches(server_pid).unwrap_or_default(),
        client_cs: context_switches(std::process::id()).unwrap_or_default(),
        ipis: ipis(),
        done,
    }
}

/// Read one HTTP/1.1 response (content-length or chunked); return (status, body length).
async fn read_response(
    stream: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
) -> Result<(u16, usize)> {
    // `buf` keeps bytes already read past the previous response.
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        read_more(stream, buf).await?;
    };
    let head = std::str::from_utf8(&buf[..head_end]).context("response head")?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("status line")?;
    let mut length = None;
    let mut chunked = false;
    for line in head.split("\r\n").skip(1) {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if k.eq_ignore_ascii_case("content-length") {
            length = Some(v.trim().parse::<usize>().context("content-length")?);
        } else if k.eq_ignore_ascii_case("transfer-encoding")
            && v.trim().eq_ignore_ascii_case("chunked")
        {
            chunked = true;
        }
    }
    if let Some(n) = length {
        while buf.len() < head_end + n {
            read_more(stream, buf).await?;
        }
        buf.drain(..head_end + n);
        return Ok((status, n));
    }
    if !chunked {
        bail!("response without length");
    }
    // Chunked: sum the chunk sizes up to the last chunk and the final CRLF.
    let mut pos = head_end;
    let mut total = 0;
    loop {
        let line_end = loop {
            if let Some(i) = find(&buf[pos..], b"\r\n") {
                break pos + i;
            }
            read_more(stream, buf).await?;
        };
        let size_text = std::str::from_utf8(&buf[pos..line_end])?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .context("chunk size")?;
        let next = line_end + 2 + size + 2;
        while buf.len() < next {
            read_more(stream, buf).await?;
        }
        total += size;
        pos = next;
        if size == 0 {
            buf.drain(..pos);
            return Ok((status, total));
        }
    }
}

async fn read_more(stream: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Result<()> {
    let len = buf.len();
    buf.resize(len + 16 * 1024, 0);
    let n = stream.read(&mut buf[len..]).await?;
    buf.truncate(len + n);
    if n == 0 {
        bail!("connection closed");
    }
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The load child: replay the request file against the server and report, as JSON on stdout.
pub async fn child(spec: LoadSpec) -> Result<()> {
    let requests = Arc::new(read_requests(&spec.file)?);
    if requests.is_empty() {
        bail!("no requests");
    }
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let exhausted = Arc::new(tokio::sync::Notify::new());
    let begin = Instant::now() + Duration::from_millis(50);
    let from = begin + spec.warmup;
    let until = from + spec.measure;
    let mut tasks = Vec::new();
    for _ in 0..spec.connections {
        let (requests, next, done, errors, stop, exhausted) = (
            requests.clone(),
            next.clone(),
            done.clone(),
            errors.clone(),
            stop.clone(),
            exhausted.clone(),
        );
        let (addr, once, min_body) = (spec.addr, spec.once, spec.min_body);
        tasks.push(tokio::spawn(async move {
            let mut lat: Vec<f64> = Vec::new();
            let mut first_error: Option<String> = None;
            let mut stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let mut buf = Vec::with_capacity(32 * 1024);
            tokio::time::sleep_until(begin.into()).await;
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if once && i >= requests.len() {
                    exhausted.notify_one();
                    break;
                }
                let req = &requests[i % requests.len()];
                let start = Instant::now();
                buf.clear();
                let result = async {
                    stream.write_all(req).await?;
                    read_response(&mut stream, &mut buf).await
                }
                .await;
                match result {
                    Ok((200, n)) if n >= min_body => {
                        done.fetch_add(1, Ordering::Relaxed);
                        if start >= from && start < until {
                            lat.push(start.elapsed().as_secs_f64() * 1e6);
                        }
                    }
                    other => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        let msg = match other {
                            Ok((s, n)) => format!("status {s}, {n} bytes"),
                            Err(e) => format!("{e:#}"),
                        };
                        first_error.get_or_insert(msg);
                        // Reconnect: the connection may be closed or out of step.
                        stream = tokio::net::TcpStream::connect(addr).await?;
                        stream.set_nodelay(true)?;
                    }
                }
            }
            anyhow::Ok((lat, first_error))
        }));
    }
    tokio::time::sleep_until(from.into()).await;
    let s0 = sample(spec.server_pid, done.load(Ordering::Relaxed));
    let ran_out = tokio::select! {
        () = tokio::time::sleep_until(until.into()) => false,
        () = exhausted.notified() => true,
    };
    let s1 = sample(spec.server_pid, done.load(Ordering::Relaxed));
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut first_error = None;
    for t in tasks {
        let (lat, err) = t.await.context("load task")??;
        latencies.extend(lat);
        if first_error.is_none() {
            first_error = err;
        }
    }
    latencies.sort_by(f64::total_cmp);
    let secs = match (s0.at, s1.at) {
        (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
        _ => f64::NAN,
    };
    let calls = s1.done.saturating_sub(s0.done).max(1) as f64;
    let per = |a: u64, b: u64| b.saturating_sub(a) as f64 / calls;
    let report = json!({
        "requests": s1.done - s0.done,
        // Completed over the child's whole run (warm-up and the tail included).
        "requests_total": done.load(Ordering::Relaxed),
        "errors": errors.load(Ordering::Relaxed),
        "first_error": first_error,
        "ran_out_of_requests": ran_out,
        "seconds": secs,
        "requests_per_second": (s1.done - s0.done) as f64 / secs,
        "p50_us": crate::load::percentile(&latencies, 50.0),
        "p99_us": crate::load::percentile(&latencies, 99.0),
        "server_cpu_us_per_request": per(s0.server_cpu_us, s1.server_cpu_us),
        "client_cpu_us_per_request": per(s0.client_cpu_us, s1.client_cpu_us),
        "server_voluntary_cs_per_request": per(s0.server_cs.0, s1.server_cs.0),
        "server_involuntary_cs_per_request": per(s0.server_cs.1, s1.server_cs.1),
        "server_cs_per_request": per(s0.server_cs.0 + s0.server_cs.1, s1.server_cs.0 + s1.server_cs.1),
        "client_cs_per_request": per(s0.client_cs.0 + s0.client_cs.1, s1.client_cs.0 + s1.client_cs.1),
        "ipis_per_request": s0.ipis.zip(s1.ipis).map(|(a, b)| per(a, b)),
        "server_cpu_utilisation": (s1.server_cpu_us.saturating_sub(s0.server_cpu_us)) as f64 / 1e6 / secs,
        "client_cpu_utilisation": (s1.client_cpu_us.saturating_sub(s0.client_cpu_us)) as f64 / 1e6 / secs,
    });
    println!("{report}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipis_sum_the_rescheduling_and_function_call_rows_of_every_cpu() {
        let text = "           CPU0       CPU1
  0:         35          0   IO-APIC    2-edge      timer
LOC:    1234567    7654321   Local timer interrupts
RES:      42450      92865   Rescheduling interrupts
CAL:     511671     190648   Function call interrupts
TLB:      10508       8497   TLB shootdowns
";
        assert_eq!(ipis_in(text), Some(42_450 + 92_865 + 511_671 + 190_648));
        assert_eq!(ipis_in("RES: 7 Rescheduling interrupts\n"), Some(7));
        assert_eq!(ipis_in("IPI0: 5 Rescheduling interrupts\n"), None);
        assert_eq!(ipis_in(""), None);
    }

    #[test]
    fn request_file_round_trip_and_truncation() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("r");
        let reqs = vec![http_request("/a", "x/y", b"hello"), vec![], vec![1, 2, 3]];
        write_requests(&p, &reqs).expect("write");
        assert_eq!(read_requests(&p).expect("read"), reqs);
        let bytes = std::fs::read(&p).expect("read");
        for cut in 1..bytes.len() {
            std::fs::write(&p, &bytes[..cut]).expect("write");
            let ok = read_requests(&p);
            // Only a cut at an entry boundary parses, and then yields a prefix.
            if let Ok(r) = ok {
                assert!(r.len() < reqs.len());
                assert_eq!(r[..], reqs[..r.len()]);
            }
        }
    }

    #[tokio::test]
    async fn reads_content_length_and_chunked_responses() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel")
                .await
                .expect("w");
            tokio::time::sleep(Duration::from_millis(20)).await;
            s.write_all(b"lo").await.expect("w");
            s.write_all(
                b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
            )
            .await
            .expect("w");
            s.write_all(b"HTTP/1.1 200 OK\r\nx: y\r\n\r\n")
                .await
                .expect("w");
        });
        let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut buf = Vec::new();
        assert_eq!(read_response(&mut c, &mut buf).await.expect("1"), (200, 5));
        assert_eq!(read_response(&mut c, &mut buf).await.expect("2"), (201, 5));
        let e = read_response(&mut c, &mut buf)
            .await
            .expect_err("no length, not chunked");
        assert!(e.to_string().contains("response without length"), "{e:#}");
        server.await.expect("server");
    }
}
