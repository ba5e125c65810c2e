//! Sandbox benchmark: `cargo run --release -p clave-sandbox --example bench [-- N [MODE]]`.
//! Cold call from source, cold call from cached bytecode, pool round trips back to back and paced
//! (1 KiB JSON echo), and QuickJS heap bytes per idle instance. `N` is the number of calls per measurement (default
//! 2000); `MODE` is one of `all` (default), `source`, `bytecode`, `pool` (for profiling one path,
//! e.g. under `valgrind --tool=callgrind`).
use std::sync::Arc;
use std::time::{Duration, Instant};

use clave_sandbox::{BytecodeCache, HttpRequest, Limits, PoolConfig, SandboxPool};
use sha2::Digest as _;

const ECHO: &str =
    "export default { async fetch(request) { return Response.json(await request.json()); } };";

fn request() -> HttpRequest {
    let mut body = String::from("{\"items\":[");
    while body.len() < 1000 {
        body.push_str("{\"k\":\"value\",\"n\":12345},");
    }
    body.push_str("{}]}");
    HttpRequest {
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

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let mode = args.next().unwrap_or_else(|| "all".into());
    let want = |m: &str| mode == "all" || mode == m;
    let hash: [u8; 32] = sha2::Sha256::digest(ECHO.as_bytes()).into();
    let limits = Limits::default();
    // The first call compiles the prelude (and, under valgrind, runs ~50x slower): a generous
    // deadline for warm-ups only.
    let warm = Limits {
        cpu_ms: 60_000,
        ..limits
    };
    let (do_src, do_bc) = (want("source"), want("bytecode"));
    let (src, bc, bc_paced) = std::thread::Builder::new()
        .stack_size(4 << 20)
        .spawn(move || {
            let mut src = Vec::new();
            let mut bc = Vec::new();
            if do_src {
                clave_sandbox::run_on_current_thread(
                    &BytecodeCache::new(0),
                    hash,
                    ECHO,
                    request(),
                    &warm,
                )
                .expect("warm-up");
                for _ in 0..n {
                    let cache = BytecodeCache::new(0);
                    let t = Instant::now();
                    clave_sandbox::run_on_current_thread(&cache, hash, ECHO, request(), &limits)
                        .expect("call");
                    src.push(t.elapsed());
                }
            }
            if do_bc {
                let cache = BytecodeCache::new(1 << 20);
                clave_sandbox::run_on_current_thread(&cache, hash, ECHO, request(), &warm)
                    .expect("warm-up");
                for _ in 0..n {
                    let t = Instant::now();
                    clave_sandbox::run_on_current_thread(&cache, hash, ECHO, request(), &limits)
                        .expect("call");
                    bc.push(t.elapsed());
                }
            }
            let mut bc_paced = Vec::new();
            if do_bc {
                let cache = BytecodeCache::new(1 << 20);
                clave_sandbox::run_on_current_thread(&cache, hash, ECHO, request(), &warm)
                    .expect("warm-up");
                for _ in 0..n {
                    std::thread::sleep(Duration::from_millis(2));
                    let t = Instant::now();
                    clave_sandbox::run_on_current_thread(&cache, hash, ECHO, request(), &limits)
                        .expect("call");
                    bc_paced.push(t.elapsed());
                }
            }
            (src, bc, bc_paced)
        })
        .expect("spawn")
        .join()
        .expect("join");
    report(
        "cold call from source (fresh runtime, compile, 1 KiB JSON echo)",
        src,
    );
    report(
        "cold call from cached bytecode (fresh runtime, 1 KiB JSON echo)",
        bc,
    );
    report(
        "cold call from cached bytecode, 2 ms apart (caches cooled)",
        bc_paced,
    );

    if want("pool") {
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
            for _ in 0..n {
                let t = Instant::now();
                pool.run(hash, code.clone(), request(), limits)
                    .await
                    .expect("call");
                pooled.push(t.elapsed());
            }
        });
        report(
            "pool.run round trip, back to back (bytecode cached)",
            pooled,
        );
        // With a little idle time between calls the worker has torn down the previous instance
        // and prepared the next one (runtime + context + prelude) before the call arrives.
        let mut paced = Vec::new();
        rt.block_on(async {
            for _ in 0..n {
                tokio::time::sleep(Duration::from_millis(2)).await;
                let t = Instant::now();
                pool.run(hash, code.clone(), request(), limits)
                    .await
                    .expect("call");
                paced.push(t.elapsed());
            }
        });
        report(
            "pool.run round trip, 2 ms apart (instance prepared while idle)",
            paced,
        );
    }
    if mode == "all" {
        let heap = clave_sandbox::idle_instance_heap_bytes(ECHO).expect("idle");
        println!(
            "QuickJS heap per idle instance (runtime+context+prelude+module): {} KiB",
            heap / 1024
        );
    }
}
