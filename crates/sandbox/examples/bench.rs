//! Sandbox benchmark: `cargo run --release -p clave-sandbox --example bench [-- N [MODE]]`.
//! A call restored from the function's snapshot image (1 KiB JSON echo, and statistics over it),
//! the cold start of a newly deployed function, pool round trips, and the memory of an idle
//! function. `N` is the number of calls per measurement (default 2000); `MODE` is one of `all`
//! (default), `warm`, `stats`, `cold`, `pool` (for profiling one path, e.g. under
//! `valgrind --tool=callgrind`). `CLAVE_BENCH_BODY=string` sends clave-bench's 1 KiB body (one long
//! string) instead of the default (many short strings and numbers).
use std::sync::Arc;
use std::time::{Duration, Instant};

use clave_sandbox::{BytecodeCache, HttpRequest, Limits, PoolConfig, SandboxPool};
use sha2::Digest as _;

const ECHO: &str =
    "export default { async fetch(request) { return Response.json(await request.json()); } };";

fn request() -> HttpRequest {
    // CLAVE_BENCH_BODY=string: clave-bench's body (one long string) instead of many short ones.
    let body = if std::env::var_os("CLAVE_BENCH_BODY").is_some_and(|v| v == "string") {
        format!(
            "{{\"id\":42,\"kind\":\"bench\",\"payload\":\"{}\"}}",
            "x".repeat(988)
        )
    } else {
        let mut body = String::from("{\"items\":[");
        while body.len() < 1000 {
            body.push_str("{\"k\":\"value\",\"n\":12345},");
        }
        body.push_str("{}]}");
        body
    };
    HttpRequest {
        env: Default::default(),
        method: "POST".into(),
        url: "https://fn.example/echo".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.into_bytes(),
    }
}

fn report(what: &str, mut v: Vec<Duration>) {
    if v.is_empty() {
        return;
    }
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    // The minimum is the least disturbed by other tenants of a shared machine.
    println!(
        "{what:<62} p50 {:>9.1?}  p99 {:>9.1?}  min {:>9.1?}",
        at(0.5),
        at(0.99),
        v[0]
    );
}

/// A program for the heavier measurement: statistics over the request's array (like
/// examples/salary-stats.js).
const STATS: &str = r#"export default { async fetch(request) {
  const { items } = await request.json();
  const ns = items.map((x) => x.n || 0).sort((a, b) => a - b);
  const sum = ns.reduce((a, b) => a + b, 0);
  const mean = sum / ns.length;
  const sd = Math.sqrt(ns.reduce((a, b) => a + (b - mean) ** 2, 0) / ns.length);
  const byKey = new Map();
  for (const x of items) byKey.set(x.k, (byKey.get(x.k) || 0) + 1);
  return Response.json({ count: ns.length, mean, sd, median: ns[ns.length >> 1], keys: [...byKey] });
} };"#;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let mode = args.next().unwrap_or_else(|| "all".into());
    let want = |m: &str| mode == "all" || mode == m;
    let limits = Limits::default();
    // The first call compiles the prelude (and, under valgrind, runs ~50x slower): a generous
    // deadline for warm-ups only.
    let warm = Limits {
        cpu_ms: 60_000,
        ..limits
    };
    let (do_warm, do_cold, do_stats) = (want("warm"), want("cold"), want("stats"));
    let results = std::thread::Builder::new()
        .stack_size(4 << 20)
        .spawn(move || {
            let mut out: Vec<(&str, Vec<Duration>)> = Vec::new();
            let cache = BytecodeCache::new(1 << 20);
            let measure = |code: &'static str| {
                let hash: [u8; 32] = sha2::Sha256::digest(code.as_bytes()).into();
                clave_sandbox::run_on_current_thread(&cache, hash, code, request(), &warm)
                    .expect("warm-up");
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let req = request();
                    let t = Instant::now();
                    clave_sandbox::run_on_current_thread(&cache, hash, code, req, &limits)
                        .expect("call");
                    v.push(t.elapsed());
                }
                v
            };
            if do_warm {
                out.push((
                    "call from the function's image (restore + fetch), 1 KiB echo",
                    measure(ECHO),
                ));
            }
            if do_stats {
                out.push((
                    "call from the function's image, stats over the 1 KiB body",
                    measure(STATS),
                ));
            }
            if do_cold {
                // A new function every call: compile, base image, evaluate, take its image, call.
                let cache = BytecodeCache::new(0);
                let mut v = Vec::with_capacity(n);
                for i in 0..n {
                    let code = format!("{ECHO}\n// deployment {i}\n");
                    let hash: [u8; 32] = sha2::Sha256::digest(code.as_bytes()).into();
                    let req = request();
                    let t = Instant::now();
                    let l = if i == 0 { warm } else { limits };
                    clave_sandbox::run_on_current_thread(&cache, hash, &code, req, &l)
                        .expect("call");
                    if i > 0 {
                        v.push(t.elapsed());
                    }
                }
                out.push((
                    "cold start: first call of a newly deployed function (compile + image)",
                    v,
                ));
            }
            out
        })
        .expect("spawn")
        .join()
        .expect("join");
    for (what, v) in results {
        report(what, v);
    }

    if want("pool") {
        let hash: [u8; 32] = sha2::Sha256::digest(ECHO.as_bytes()).into();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio");
        let pool = SandboxPool::new(PoolConfig {
            workers: 1,
            ..PoolConfig::default()
        })
        .expect("pool");
        let code: Arc<str> = Arc::from(ECHO);
        let mut pooled = Vec::new();
        rt.block_on(async {
            pool.run(hash, code.clone(), request(), warm)
                .await
                .expect("warm-up");
            for _ in 0..n {
                let t = Instant::now();
                pool.run(hash, code.clone(), request(), limits)
                    .await
                    .expect("call");
                pooled.push(t.elapsed());
            }
        });
        report("pool.run round trip, back to back (image cached)", pooled);
    }
    if mode == "all" {
        let heap = clave_sandbox::idle_instance_heap_bytes(ECHO).expect("idle");
        let (image, unique) = clave_sandbox::function_image_bytes(ECHO).expect("image");
        println!(
            "QuickJS heap per idle instance (runtime+context+prelude+module): {} KiB; its image: {} KiB, of which {} KiB not shared with the base image",
            heap / 1024,
            image / 1024,
            unique / 1024
        );
    }
}
