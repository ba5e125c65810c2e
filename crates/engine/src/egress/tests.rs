//! Outbound HTTPS against local servers on loopback, with a test CA that only these unit tests
//! inject (`Egress::build` is private; the engine's only public constructor, `Egress::new`,
//! trusts the compiled-in Mozilla roots and nothing else). Names under `.test` resolve to
//! 127.0.0.1 through the test resolver.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clave_proto::HostPattern;
use clave_sandbox::{Outbound as _, OutboundError, OutboundRequest};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::{Egress, EgressConfig, ProxyAddr};

/// The test CA and the servers signed by it.
pub(crate) struct TestNet {
    pub ca: CertificateDer<'static>,
    /// The test CA certificate in PEM (for Node's `NODE_EXTRA_CA_CERTS`).
    pub ca_pem: String,
    /// `api.test`: valid certificate.
    pub api: u16,
    /// Presents a certificate for `other.test` (reach it as `wrong.test`).
    pub wrong: u16,
    /// `old.test`: an expired certificate.
    pub old: u16,
    /// Resolver calls made.
    pub resolved: Arc<AtomicUsize>,
}

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TestNet {
    pub(crate) fn start() -> TestNet {
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Distinct subject names: OpenSSL (Node) takes a leaf whose issuer equals its subject
        // for self-signed.
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "clave test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("ca");
        let leaf = |name: &str, expired: bool| {
            let key = KeyPair::generate().expect("leaf key");
            let mut p = CertificateParams::new(vec![name.to_owned()]).expect("leaf params");
            p.distinguished_name.push(DnType::CommonName, name);
            if expired {
                let now = time::OffsetDateTime::now_utc();
                p.not_before = now - time::Duration::days(30);
                p.not_after = now - time::Duration::days(1);
            }
            let cert = p.signed_by(&key, &ca).expect("leaf");
            (cert.der().clone(), key.serialize_der())
        };
        TestNet {
            ca: ca.der().clone(),
            ca_pem: ca.pem(),
            api: serve(leaf("api.test", false)),
            wrong: serve(leaf("other.test", false)),
            old: serve(leaf("old.test", true)),
            resolved: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// An egress trusting only the test CA, resolving `*.test` to loopback.
    pub(crate) fn egress(&self, config: EgressConfig) -> Arc<Egress> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).expect("test CA");
        let resolved = self.resolved.clone();
        let resolver: super::Resolver = Arc::new(move |host: &str, port: u16| {
            resolved.fetch_add(1, Ordering::SeqCst);
            if let Ok(ip) = host.parse::<std::net::IpAddr>() {
                Ok(vec![SocketAddr::new(ip, port)])
            } else if host.ends_with(".test") || host == "localhost" {
                Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
            } else {
                Err(std::io::Error::other("only .test names resolve in tests"))
            }
        });
        Arc::new(Egress::build(config, roots, resolver).expect("egress"))
    }
}

/// A TLS server on loopback (one thread per connection) with `cert`.
fn serve((cert, key): (CertificateDer<'static>, Vec<u8>)) -> u16 {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key));
    let config = rustls::ServerConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server config");
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(tcp) = conn else { continue };
            let config = config.clone();
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let _ = handle(&mut tls, port);
            });
        }
    });
    port
}

/// The test server's routes.
fn handle(
    tls: &mut rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
    port: u16,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(&mut *tls);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" {
            break;
        }
        head.push(line.trim_end().to_owned());
    }
    let request_line = head.first().cloned().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let len: usize = head
        .iter()
        .find_map(|h| h.strip_prefix("content-length: "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    drop(reader);
    let respond = |tls: &mut rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
                   status: &str,
                   extra: &str,
                   body: &[u8]| {
        let head = format!(
            "HTTP/1.1 {status}\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        tls.write_all(head.as_bytes())?;
        tls.write_all(body)?;
        tls.conn.send_close_notify();
        tls.flush()
    };
    match target.split('?').next().unwrap_or("") {
        "/rates" => respond(
            tls,
            "200 OK",
            "content-type: application/json\r\n",
            br#"{"base":"EUR","rates":{"USD":1.25,"GBP":0.5}}"#,
        ),
        "/echo" => {
            let v = serde_json::json!({
                "method": method,
                "target": target,
                "head": head[1..],
                "body": String::from_utf8_lossy(&body),
            });
            respond(
                tls,
                "201 Created",
                "content-type: application/json\r\nx-multi: a\r\nx-multi: b\r\n",
                v.to_string().as_bytes(),
            )
        }
        "/chunked" => {
            tls.write_all(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=1\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n",
            )?;
            tls.conn.send_close_notify();
            tls.flush()
        }
        "/huge" => {
            tls.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")?;
            let chunk = vec![b'x'; 64 << 10];
            for _ in 0..1024 {
                tls.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
                tls.write_all(&chunk)?;
                tls.write_all(b"\r\n")?;
            }
            tls.write_all(b"0\r\n\r\n")?;
            tls.flush()
        }
        "/huge-length" => {
            tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1073741824\r\n\r\n")?;
            tls.flush()
        }
        "/slow" => {
            std::thread::sleep(Duration::from_secs(20));
            respond(tls, "200 OK", "", b"late")
        }
        "/to-rates" => respond(tls, "302 Found", "location: /rates\r\n", b""),
        "/to-evil" => respond(
            tls,
            "302 Found",
            &format!("location: https://evil.test:{port}/rates\r\n"),
            b"",
        ),
        "/to-http" => respond(
            tls,
            "301 Moved",
            &format!("location: http://api.test:{port}/rates\r\n"),
            b"",
        ),
        "/see-other" => respond(tls, "303 See Other", "location: /echo\r\n", b""),
        "/loop" => respond(tls, "302 Found", "location: /loop\r\n", b""),
        _ => respond(tls, "404 Not Found", "", b"no such route"),
    }
}

fn allow(list: &[&str]) -> Arc<[HostPattern]> {
    list.iter()
        .map(|p| HostPattern::parse(p).expect("pattern"))
        .collect::<Vec<_>>()
        .into()
}

fn get(url: &str) -> OutboundRequest {
    OutboundRequest {
        method: "GET".into(),
        url: url::Url::parse(url).expect("url"),
        headers: vec![("accept".into(), "application/json".into())],
        body: Vec::new(),
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

const HOSTS: [&str; 3] = ["api.test", "wrong.test", "old.test"];

#[test]
fn exchanges_and_refusals() {
    let net = TestNet::start();
    let egress = net.egress(EgressConfig::default());
    let call = egress.for_call(allow(&HOSTS));

    // Success: content-length and chunked bodies.
    let r = call
        .send(&get(&format!("https://api.test:{}/rates", net.api)), soon())
        .expect("rates");
    assert_eq!(r.status, 200);
    assert_eq!(r.status_text, "OK");
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["rates"]["USD"], 1.25);
    let r = call
        .send(
            &get(&format!("https://api.test:{}/chunked", net.api)),
            soon(),
        )
        .expect("chunked");
    assert_eq!(r.body, b"hello world");
    assert!(r.headers.iter().all(|(k, _)| k != "transfer-encoding"));

    // The request as the server saw it.
    let mut post = get(&format!("https://api.test:{}/echo?q=1", net.api));
    post.method = "POST".into();
    post.body = b"{\"a\":1}".to_vec();
    post.headers.push(("x-custom".into(), "v".into()));
    let r = call.send(&post, soon()).expect("echo");
    assert_eq!(r.status, 201);
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["method"], "POST");
    assert_eq!(v["target"], "/echo?q=1");
    assert_eq!(v["body"], "{\"a\":1}");
    let head: Vec<String> = serde_json::from_value(v["head"].clone()).expect("head");
    assert!(head.contains(&format!("host: api.test:{}", net.api)));
    assert!(head.contains(&"x-custom: v".to_owned()));
    assert!(head.contains(&"content-length: 7".to_owned()));
    let multi: Vec<&str> = r
        .headers
        .iter()
        .filter(|(k, _)| k == "x-multi")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(multi, ["a", "b"]);

    // A host outside the list is refused before anything is resolved.
    let before = net.resolved.load(Ordering::SeqCst);
    let e = call
        .send(
            &get(&format!("https://evil.test:{}/rates", net.api)),
            soon(),
        )
        .expect_err("unlisted");
    assert_eq!(
        e,
        OutboundError::HostNotAllowed {
            host: "evil.test".into()
        }
    );
    assert_eq!(net.resolved.load(Ordering::SeqCst), before);
    let e = call
        .send(
            &get(&format!("https://127.0.0.1:{}/rates", net.api)),
            soon(),
        )
        .expect_err("ip");
    assert!(matches!(e, OutboundError::HostNotAllowed { .. }), "{e:?}");

    // A certificate for another name, an expired certificate.
    let e = call
        .send(
            &get(&format!("https://wrong.test:{}/rates", net.wrong)),
            soon(),
        )
        .expect_err("wrong name");
    assert!(
        matches!(&e, OutboundError::Tls(m) if m.contains("not valid for name")),
        "{e:?}"
    );
    let e = call
        .send(&get(&format!("https://old.test:{}/rates", net.old)), soon())
        .expect_err("expired");
    assert!(
        matches!(&e, OutboundError::Tls(m) if m.contains("expired")),
        "{e:?}"
    );

    // The Mozilla roots do not include the test CA: the engine's own roots refuse the servers.
    let mut mozilla = rustls::RootCertStore::empty();
    mozilla.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let resolver = net.egress(EgressConfig::default()).resolver.clone();
    let e = Arc::new(Egress::build(EgressConfig::default(), mozilla, resolver).expect("egress"))
        .for_call(allow(&HOSTS))
        .send(&get(&format!("https://api.test:{}/rates", net.api)), soon())
        .expect_err("unknown issuer");
    assert!(
        matches!(&e, OutboundError::Tls(m) if m.contains("UnknownIssuer")),
        "{e:?}"
    );
}

#[test]
fn limits_end_the_sub_request() {
    let net = TestNet::start();
    let egress = net.egress(EgressConfig {
        max_subrequests: 3,
        max_request_bytes: 16,
        max_response_bytes: 1 << 20,
        ..EgressConfig::default()
    });
    let call = egress.for_call(allow(&HOSTS));

    // A slow server is cut at the deadline.
    let e = call
        .send(
            &get(&format!("https://api.test:{}/slow", net.api)),
            Instant::now() + Duration::from_millis(300),
        )
        .expect_err("slow");
    assert_eq!(e, OutboundError::Timeout);

    // A huge body is cut at the byte limit (chunked, and announced by content-length).
    let e = call
        .send(&get(&format!("https://api.test:{}/huge", net.api)), soon())
        .expect_err("huge");
    assert_eq!(e, OutboundError::ResponseTooLarge { limit: 1 << 20 });
    let e = call
        .send(
            &get(&format!("https://api.test:{}/huge-length", net.api)),
            soon(),
        )
        .expect_err("huge length");
    assert_eq!(e, OutboundError::ResponseTooLarge { limit: 1 << 20 });

    // The fourth sub-request of the call is refused.
    let e = call
        .send(&get(&format!("https://api.test:{}/rates", net.api)), soon())
        .expect_err("fourth");
    assert_eq!(e, OutboundError::TooManySubrequests { limit: 3 });

    // A request body over the limit.
    let call = egress.for_call(allow(&HOSTS));
    let mut post = get(&format!("https://api.test:{}/echo", net.api));
    post.method = "POST".into();
    post.body = vec![b'x'; 17];
    assert_eq!(
        call.send(&post, soon()).expect_err("too large"),
        OutboundError::RequestTooLarge {
            size: 17,
            limit: 16
        }
    );
}

/// A CONNECT proxy on loopback that records the authority it was asked for.
fn connect_proxy(seen: Arc<std::sync::Mutex<Vec<String>>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut client) = conn else { continue };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().expect("clone"));
                let mut line = String::new();
                reader.read_line(&mut line).expect("line");
                let authority = line.split(' ').nth(1).unwrap_or("").to_owned();
                loop {
                    let mut l = String::new();
                    if reader.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
                        break;
                    }
                }
                seen.lock().expect("lock").push(authority.clone());
                let port = authority.rsplit(':').next().unwrap_or("0");
                let Ok(mut upstream) = TcpStream::connect(format!("127.0.0.1:{port}")) else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                    return;
                };
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .expect("write");
                let mut up2 = upstream.try_clone().expect("clone");
                let mut client2 = client.try_clone().expect("clone");
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut client2, &mut up2);
                });
                let _ = std::io::copy(&mut upstream, &mut client);
            });
        }
    });
    port
}

#[test]
fn through_a_connect_proxy() {
    let net = TestNet::start();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let proxy = connect_proxy(seen.clone());
    let egress = net.egress(EgressConfig {
        proxy: Some(
            format!("http://127.0.0.1:{proxy}")
                .parse::<ProxyAddr>()
                .expect("proxy"),
        ),
        ..EgressConfig::default()
    });
    let before = net.resolved.load(Ordering::SeqCst);
    let r = egress
        .for_call(allow(&HOSTS))
        .send(&get(&format!("https://api.test:{}/rates", net.api)), soon())
        .expect("through the proxy");
    assert_eq!(r.status, 200);
    // The proxy saw the destination's name and port; the engine resolved only the proxy.
    assert_eq!(
        *seen.lock().expect("lock"),
        [format!("api.test:{}", net.api)]
    );
    assert_eq!(net.resolved.load(Ordering::SeqCst), before + 1);
    // The certificate is still verified end to end through the tunnel.
    let e = egress
        .for_call(allow(&HOSTS))
        .send(
            &get(&format!("https://wrong.test:{}/rates", net.wrong)),
            soon(),
        )
        .expect_err("wrong name");
    assert!(matches!(e, OutboundError::Tls(_)), "{e:?}");
}
