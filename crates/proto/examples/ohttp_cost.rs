//! Cost of one OHTTP round on each side, for docs/performance.md:
//! `cargo run --release -p clave-proto --example ohttp_cost [iterations]`.
//!
//! Times are this thread's CPU time (`/proc/thread-self/schedstat`, nanoseconds), not wall time,
//! so a busy shared machine slows the run but does not inflate the figures.
//!
//! Server side per call: decapsulate a 1 KiB BHTTP request and seal a 1 KiB response.
//! Client side per call: encapsulate and open. Only the public API is used, so the same file
//! measures any revision of the crate.

/// CPU time of this thread, nanoseconds (Linux).
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("/proc/thread-self/schedstat")
}

struct Instant(u64);

impl Instant {
    fn now() -> Self {
        Self(cpu_ns())
    }

    fn elapsed(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(cpu_ns() - self.0)
    }
}

use clave_proto::ohttp::{KeyConfig, PrivateKey, ServerKey, SymmetricSuite, client_encapsulate};
use clave_proto::{KeyId, ohttp::Kem};

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5000);
    let sk = PrivateKey::derive(Kem::X25519HkdfSha256, &[7u8; 32]);
    let config = KeyConfig::new(
        KeyId(1),
        Kem::X25519HkdfSha256,
        sk.public_key(),
        vec![SymmetricSuite::DEFAULT],
    )
    .expect("config");
    let key = ServerKey::new(config.clone(), sk).expect("key");
    let keys = [key];
    let body = vec![b'x'; 1024];
    let mut rng = rand::rng();
    let requests: Vec<_> = (0..n)
        .map(|_| client_encapsulate(&config, &body, &mut rng).expect("encapsulate"))
        .collect();

    let t = Instant::now();
    for _ in 0..n {
        let _ = client_encapsulate(&config, &body, &mut rng).expect("encapsulate");
    }
    let encap = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);

    let t = Instant::now();
    let mut responses = Vec::with_capacity(requests.len());
    for (req, _) in &requests {
        let (pt, ctx) = clave_proto::ohttp::server_decapsulate(&keys, req).expect("decapsulate");
        assert_eq!(pt.len(), body.len());
        responses.push(ctx);
    }
    let decap = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);

    let t = Instant::now();
    let sealed: Vec<_> = responses
        .iter()
        .map(|ctx| ctx.encapsulate(&body, &mut rng).expect("seal"))
        .collect();
    let seal = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);

    let t = Instant::now();
    for ((_, ctx), s) in requests.iter().zip(&sealed) {
        assert_eq!(ctx.open(s).expect("open").len(), body.len());
    }
    let open = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);

    println!("iterations {n}");
    println!("server decapsulate 1 KiB   {decap:8.2} µs");
    println!("server seal response 1 KiB {seal:8.2} µs");
    println!("server total               {:8.2} µs", decap + seal);
    println!("client encapsulate 1 KiB   {encap:8.2} µs");
    println!("client open response 1 KiB {open:8.2} µs");
}
