//! Sandbox benchmark: `cargo run --release -p clave-sandbox --example bench`.
//! Cold call from source, cold call from cached bytecode, pool round trip (1 KiB JSON echo), and
//! QuickJS heap bytes per idle instance.
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

fn p50(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let hash: [u8; 32] = sha2::Sha256::digest(ECHO.as_bytes()).into();
    let limits = Limits::default();
    let n = 2000;
    let (src, bc) = std::thread::Builder::new()
        .stack_size(4 << 20)
        .spawn(move || {
            let mut src = Vec::new();
            let mut bc = Vec::new();
            for _ in 0..n {
                let cache = BytecodeCache::new(0);
                let t = Instant::now();
                clave_sandbox::run_on_current_thread(&cache, hash, ECHO, request(), &limits)
                    .expect("call");
                src.push(t.elapsed());
            }
            let cache = BytecodeCache::new(1 << 20);
            clave_sandbox::run_on_current_thread(&cache, hash, ECHO, request(), &limits)
                .expect("warm-up");
            for _ in 0..n {
                let t = Instant::now();
                clave_sandbox::run_on_current_thread(&cache, hash, ECHO, request(), &limits)
                    .expect("call");
                bc.push(t.elapsed());
            }
            (src, bc)
        })
        .expect("spawn")
        .join()
        .expect("join");
    println!(
        "cold call from source (fresh runtime, compile, 1 KiB JSON echo): p50 {:?}",
        p50(src)
    );
    println!(
        "cold call from cached bytecode (fresh runtime, 1 KiB JSON echo):  p50 {:?}",
        p50(bc)
    );

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
    println!(
        "pool.run round trip (bytecode cached, worker thread hop):        p50 {:?}",
        p50(pooled)
    );
    let heap = clave_sandbox::idle_instance_heap_bytes(ECHO).expect("idle");
    println!(
        "QuickJS heap per idle instance (runtime+context+prelude+module): {} KiB",
        heap / 1024
    );
}
