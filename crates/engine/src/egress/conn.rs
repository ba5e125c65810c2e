//! Connections: resolve and connect (directly or through an HTTP CONNECT proxy), then the TLS
//! handshake, every step bounded by the call's deadline.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clave_sandbox::OutboundError;
use rustls::pki_types::ServerName;

use super::Egress;

/// Largest answer head of a CONNECT proxy, bytes.
const MAX_PROXY_HEAD: usize = 8 << 10;

/// An HTTP CONNECT proxy address: `http://host:port` (no credentials, no path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyAddr {
    host: String,
    port: u16,
}

impl ProxyAddr {
    /// Host and port.
    #[must_use]
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl std::str::FromStr for ProxyAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let u = url::Url::parse(s)
            .map_err(|e| format!("{s:?} is not a URL ({e}); write http://HOST:PORT"))?;
        if u.scheme() != "http" {
            return Err(format!(
                "{s:?}: the proxy must be an http:// CONNECT proxy (TLS to the destination runs inside it)"
            ));
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err(format!("{s:?}: proxy credentials are not supported"));
        }
        if u.path() != "/" || u.query().is_some() || u.fragment().is_some() {
            return Err(format!("{s:?}: write only http://HOST:PORT"));
        }
        let host = match u.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => return Err(format!("{s:?} has no host")),
        };
        let port = u.port_or_known_default().unwrap_or(80);
        Ok(Self { host, port })
    }
}

impl std::fmt::Display for ProxyAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "http://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "http://{}:{}", self.host, self.port)
        }
    }
}

/// The system resolver (the host's DNS).
pub(super) fn system_resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    Ok((host, port).to_socket_addrs()?.collect())
}

/// A TCP stream whose every read and write ends at the deadline.
pub(super) struct DeadlineStream {
    tcp: TcpStream,
    deadline: Instant,
}

impl DeadlineStream {
    fn arm(&self, write: bool) -> io::Result<()> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline"));
        }
        if write {
            self.tcp.set_write_timeout(Some(left))
        } else {
            self.tcp.set_read_timeout(Some(left))
        }
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.arm(false)?;
        self.tcp.read(buf)
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.arm(true)?;
        self.tcp.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

/// A TLS stream to the destination.
pub(super) type TlsStream = rustls::StreamOwned<rustls::ClientConnection, DeadlineStream>;

/// Maps an I/O error: the deadline, a TLS failure, or a connection failure.
pub(super) fn io_error(e: &io::Error, deadline: Instant) -> OutboundError {
    if Instant::now() >= deadline
        || matches!(
            e.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        )
    {
        return OutboundError::Timeout;
    }
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return OutboundError::Tls(tls.to_string());
    }
    OutboundError::Connect(e.to_string())
}

fn left(deadline: Instant) -> Result<Duration, OutboundError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(OutboundError::Timeout);
    }
    Ok(left)
}

/// Resolves on a helper thread, so that a slow resolver cannot outlive the deadline.
fn resolve(
    egress: &Egress,
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<Vec<SocketAddr>, OutboundError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let resolver = egress.resolver.clone();
    let name = host.to_owned();
    std::thread::Builder::new()
        .name("clave-egress-dns".into())
        .spawn(move || {
            let _ = tx.send(resolver(&name, port));
        })
        .map_err(|e| OutboundError::Connect(format!("cannot resolve: {e}")))?;
    match rx.recv_timeout(left(deadline)?) {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) => Err(OutboundError::Connect(format!("{host} has no address"))),
        Ok(Err(e)) => Err(OutboundError::Connect(format!(
            "cannot resolve {host}: {e}"
        ))),
        Err(_) => Err(OutboundError::Timeout),
    }
}

fn tcp_connect(
    egress: &Egress,
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<TcpStream, OutboundError> {
    let mut last = None;
    for addr in resolve(egress, host, port, deadline)? {
        match TcpStream::connect_timeout(&addr, left(deadline)?) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => io_error(&e, deadline),
        None => OutboundError::Connect(format!("cannot connect to {host}:{port}")),
    })
}

/// A tunnel through the CONNECT proxy to `host:port` (the proxy resolves the name).
fn tunnel(
    egress: &Egress,
    proxy: &super::ProxyAddr,
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<DeadlineStream, OutboundError> {
    let tcp = tcp_connect(egress, &proxy.host, proxy.port, deadline).map_err(|e| match e {
        OutboundError::Connect(m) => OutboundError::Connect(format!("egress proxy: {m}")),
        other => other,
    })?;
    let mut s = DeadlineStream { tcp, deadline };
    let req = format!("CONNECT {host}:{port} HTTP/1.1\r\nhost: {host}:{port}\r\n\r\n");
    s.write_all(req.as_bytes())
        .map_err(|e| io_error(&e, deadline))?;
    // Read the answer head byte by byte: nothing of the tunnel may be consumed.
    let mut head = Vec::with_capacity(256);
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_PROXY_HEAD {
            return Err(OutboundError::Connect(
                "egress proxy: its answer head is too long".into(),
            ));
        }
        match s.read(&mut b) {
            Ok(0) => {
                return Err(OutboundError::Connect(
                    "egress proxy closed the connection".into(),
                ));
            }
            Ok(_) => head.push(b[0]),
            Err(e) => return Err(io_error(&e, deadline)),
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(&head) {
        Ok(httparse::Status::Complete(_)) if resp.code.is_some_and(|c| (200..300).contains(&c)) => {
            Ok(s)
        }
        Ok(httparse::Status::Complete(_)) => Err(OutboundError::Connect(format!(
            "egress proxy refused the tunnel to {host}:{port} (status {})",
            resp.code.unwrap_or(0)
        ))),
        _ => Err(OutboundError::Connect(
            "egress proxy: invalid answer to CONNECT".into(),
        )),
    }
}

/// A TLS connection to `host:port` whose certificate is valid for `host`, handshake done.
pub(super) fn connect(
    egress: &Egress,
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<TlsStream, OutboundError> {
    let sock = match &egress.config.proxy {
        Some(proxy) => tunnel(egress, proxy, host, port, deadline)?,
        None => DeadlineStream {
            tcp: tcp_connect(egress, host, port, deadline)?,
            deadline,
        },
    };
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| OutboundError::Tls(format!("{host} is not a valid server name")))?;
    let conn = rustls::ClientConnection::new(Arc::clone(&egress.tls), name)
        .map_err(|e| OutboundError::Tls(e.to_string()))?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| io_error(&e, deadline))?;
    }
    Ok(tls)
}

#[cfg(test)]
mod proxy_addr_tests {
    use super::ProxyAddr;

    #[test]
    fn proxy_addresses() {
        let p: ProxyAddr = "http://proxy.internal:3128".parse().expect("valid");
        assert_eq!(p.authority(), "proxy.internal:3128");
        assert_eq!(p.to_string(), "http://proxy.internal:3128");
        let p: ProxyAddr = "http://10.0.0.1".parse().expect("valid");
        assert_eq!(p.authority(), "10.0.0.1:80");
        let scheme = "the proxy must be an http:// CONNECT proxy";
        for (bad, why) in [
            ("proxy:3128", scheme),
            ("https://proxy:3128", scheme),
            (
                "http://u:p@proxy:3128",
                "proxy credentials are not supported",
            ),
            ("http://proxy:3128/path", "write only http://HOST:PORT"),
            ("socks5://proxy:1080", scheme),
        ] {
            let e = bad.parse::<ProxyAddr>().expect_err(bad);
            assert!(e.starts_with(&format!("{bad:?}: {why}")), "{bad}: {e}");
        }
    }
}
