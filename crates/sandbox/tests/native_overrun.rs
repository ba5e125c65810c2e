//! Native built-ins that overrun the deadline (not interruptible): the pool must answer `Timeout`
//! within deadline + grace (+ slack) and keep serving. A separate test binary, because abandoned
//! workers keep burning CPU for seconds and would disturb the timing of other tests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clave_sandbox::{Error, HttpRequest, Limits, Outcome, PoolConfig, SandboxPool};
use sha2::Digest as _;

const NORMAL: &str = r#"export default { async fetch(req) { return Response.json({ ok: true, body: await req.text() }); } };"#;
/// Generous slack on top of deadline + grace: the machine is shared and noisy.
const SLACK: Duration = Duration::from_millis(1500);

/// The tests measure answer times; run them one at a time on this 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn limits() -> Limits {
    Limits {
        cpu_ms: 300,
        heap_bytes: 32 << 20,
        stack_bytes: 256 << 10,
        ..Limits::default()
    }
}

fn pool() -> SandboxPool {
    SandboxPool::new(PoolConfig {
        workers: 2,
        grace: Duration::from_millis(50),
        ..PoolConfig::default()
    })
    .expect("pool")
}

fn request(url: &str) -> HttpRequest {
    HttpRequest {
        env: Default::default(),
        method: "POST".into(),
        url: url.into(),
        headers: vec![("content-type".into(), "text/plain".into())],
        body: b"ping".to_vec(),
    }
}

async fn call(pool: &SandboxPool, code: &str, url: &str, limits: Limits) -> Result<Outcome, Error> {
    let hash: [u8; 32] = sha2::Sha256::digest(code.as_bytes()).into();
    pool.run(hash, Arc::from(code), request(url), limits).await
}

async fn normal_works(pool: &SandboxPool) {
    let o = call(pool, NORMAL, "https://x.test/", limits())
        .await
        .expect("normal call after hostile");
    assert_eq!(o.response.status, 200);
    assert_eq!(o.response.body, br#"{"ok":true,"body":"ping"}"#);
}

/// Runs `body` as the fetch handler's body and checks the error kind and the answer time.
async fn hostile(pool: &SandboxPool, body: &str, limits: Limits, want: fn(&Error) -> bool) {
    let code = format!("export default {{ async fetch(request) {{ {body} }} }};");
    let start = Instant::now();
    let r = call(pool, &code, "https://x.test/", limits).await;
    let took = start.elapsed();
    match &r {
        Err(e) if want(e) => {}
        other => panic!("{body}: unexpected result {other:?}"),
    }
    let bound = limits.timeout() + pool.config().grace + SLACK;
    assert!(
        took <= bound,
        "{body}: answered after {took:?} (bound {bound:?})"
    );
    normal_works(pool).await;
}

fn timeout(e: &Error) -> bool {
    matches!(e, Error::Timeout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_overruns_answer_timeout_on_time() {
    let _serial = SERIAL.lock().await;
    let p = pool();
    let short = Limits {
        cpu_ms: 100,
        heap_bytes: 256 << 20,
        ..limits()
    };
    let before = p.abandoned_workers();
    hostile(&p, "const s = '[' + '1,'.repeat(8e6) + '1]'; return new Response(String(JSON.parse(s).length));", short, |e| matches!(e, Error::Timeout | Error::OutOfMemory)).await;
    hostile(&p, "const s = 'ab'.repeat(5e7); return new Response(String(s.indexOf('ab'.repeat(2000) + 'c')));", short, timeout).await;
    hostile(&p, "const a = Array.from({ length: 1e6 }, (_, i) => (i * 7919) % 1000003); a.sort(); return new Response('sorted');", short, timeout).await;
    println!("abandoned workers: {}", p.abandoned_workers() - before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_workers_are_capped() {
    let _serial = SERIAL.lock().await;
    let p = SandboxPool::with_max_abandoned_running(
        PoolConfig {
            workers: 1,
            grace: Duration::from_millis(50),
            ..PoolConfig::default()
        },
        1,
    )
    .expect("pool");
    assert_eq!(p.max_abandoned_running(), 1);
    let short = Limits {
        cpu_ms: 100,
        heap_bytes: 256 << 20,
        ..limits()
    };
    // A naive substring search over 10^8 characters with a 4001-character needle: minutes of
    // native work that no interrupt can stop.
    let code = "export default { fetch() { const s = 'ab'.repeat(5e7); return new Response(String(s.indexOf('ab'.repeat(2000) + 'c'))); } };";
    let r = call(&p, code, "https://x.test/", short).await;
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    assert_eq!(p.abandoned_running(), 1);
    // The only slot was not refilled: the cap is reached, so the pool refuses to start a thread.
    let r = call(&p, NORMAL, "https://x.test/", limits()).await;
    assert!(
        matches!(
            r,
            Err(Error::Overloaded {
                running: 1,
                limit: 1
            })
        ),
        "{r:?}"
    );
    assert!(r.is_err_and(|e| e.to_string().contains("overloaded")));
}
