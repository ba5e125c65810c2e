//! The external services tests need (PostgreSQL, NATS) and the record of skipped test groups.
//! Shared by several test crates through `#[path]`.
//!
//! The rule: a test group that needs a service is **skipped only when the service's variable is
//! unset** (a laptop without the service); when the variable is set and the service does not
//! answer, the test **fails** with a sentence naming the service. `.ci/run` sets every variable.
//!
//! A skip is printed as `CLAVE-SKIPPED: <group>: <reason>` and, when `CLAVE_TEST_SKIP_LOG` names a
//! file, appended to it (cargo test hides the output of passing tests; `.ci/run` prints the file).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::time::Duration;

/// An external service and the variable holding its address.
#[derive(Clone, Copy, Debug)]
pub struct Service {
    /// The name a person knows it by.
    pub name: &'static str,
    /// The variable with its URL.
    pub var: &'static str,
    /// The first bytes it sends on a new connection (`None`: it waits for the client).
    banner: Option<&'static [u8]>,
}

/// PostgreSQL, `CLAVE_TEST_POSTGRES_URL` (e.g. `postgres://postgres@127.0.0.1:5432/test`).
pub const POSTGRES: Service = Service {
    name: "PostgreSQL",
    var: "CLAVE_TEST_POSTGRES_URL",
    banner: None,
};

/// NATS with JetStream, `CLAVE_TEST_NATS_URL` (e.g. `nats://127.0.0.1:4222`).
pub const NATS: Service = Service {
    name: "NATS",
    var: "CLAVE_TEST_NATS_URL",
    banner: Some(b"INFO "),
};

/// Record that `group` was skipped and why (printed, and appended to `CLAVE_TEST_SKIP_LOG`).
pub fn record_skip(group: &str, reason: &str) {
    let line = format!("CLAVE-SKIPPED: {group}: {reason}\n");
    print!("{line}");
    eprint!("{line}");
    if let Some(path) = std::env::var_os("CLAVE_TEST_SKIP_LOG") {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .unwrap_or_else(|e| panic!("cannot append to CLAVE_TEST_SKIP_LOG: {e}"));
    }
}

/// `host:port` of a URL (`scheme://user@host:port/path?query`).
pub fn host_port(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let rest = rest.split(['/', '?']).next().unwrap_or(rest);
    rest.rsplit('@').next().unwrap_or(rest).to_owned()
}

/// Whether `service` at `url` answers (a TCP connection within 5 s and, for NATS, its `INFO`
/// greeting); the error otherwise.
pub fn check(service: Service, url: &str) -> Result<(), String> {
    use std::net::ToSocketAddrs as _;
    let hp = host_port(url);
    let addr = hp
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {hp}: {e}"))?
        .next()
        .ok_or_else(|| format!("{hp} resolves to nothing"))?;
    let mut conn = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("cannot connect to {hp}: {e}"))?;
    if let Some(banner) = service.banner {
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        let mut first = vec![0u8; banner.len()];
        conn.read_exact(&mut first)
            .map_err(|e| format!("{hp} accepted but sent no greeting: {e}"))?;
        if first != banner {
            return Err(format!(
                "{hp} is not {}: it greeted with {:?}",
                service.name,
                String::from_utf8_lossy(&first)
            ));
        }
    }
    Ok(())
}

/// The URL of `service` for test group `group`: `None` (after recording the skip) when its
/// variable is unset.
///
/// # Panics
/// When the variable is set and the service does not answer: a CI run must not pass without it.
pub fn require(service: Service, group: &str) -> Option<String> {
    let Ok(url) = std::env::var(service.var) else {
        record_skip(
            group,
            &format!("{} is not set (needs {})", service.var, service.name),
        );
        return None;
    };
    if let Err(e) = check(service, &url) {
        panic!(
            "{} does not answer at {} ({} is set, so {group} requires it): {e}",
            service.name,
            host_port(&url),
            service.var
        );
    }
    Some(url)
}
