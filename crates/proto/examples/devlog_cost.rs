//! What one sealed developer log record costs the engine per call:
//! `cargo run --release -p clave-proto --example devlog_cost [-- N]`.
//! Seals a typical record (two console lines, an `ok` outcome) N times (default 20 000) to a
//! developer log key and prints the median and minimum per seal.
use std::time::{Duration, Instant};

use clave_proto::devlog::{LogKeyPair, LogLine, LogRecord, seal_log};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let mut rng = rand::rng();
    let key = LogKeyPair::generate(&mut rng).public();
    let record = LogRecord {
        ts_ms: 1_800_000_000_000,
        function: "hello".into(),
        code_hash: "ab".repeat(32),
        outcome: "ok".into(),
        status: 200,
        message: None,
        stack: None,
        duration_us: 64,
        request_bytes: 1024,
        response_bytes: 1024,
        console: vec![
            LogLine {
                level: "log".into(),
                text: "handled request for item 42".into(),
            },
            LogLine {
                level: "warn".into(),
                text: "cache miss".into(),
            },
        ],
        console_truncated: false,
    };
    let mut times = Vec::with_capacity(n);
    let mut bytes = 0;
    for _ in 0..n {
        let t = Instant::now();
        let sealed = seal_log(&key, "default", "hello", &record, &mut rng).expect("seal");
        times.push(t.elapsed());
        bytes = sealed.len();
    }
    times.sort();
    let p50: Duration = times[n / 2];
    println!(
        "seal one log record ({bytes} bytes sealed): p50 {p50:.1?}  min {:.1?}  over {n}",
        times[0]
    );
}
