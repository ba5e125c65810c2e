#![allow(unsafe_code)] // the counting global allocator below
//! Isolation at snapshot speed: every call starts from the function's snapshot image, so nothing a
//! call does is visible to the next — globals, prototypes, module state, timers, pending jobs —
//! and a call that ran out of memory, timed out or threw does not poison the image.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use clave_sandbox::{BytecodeCache, Error, HttpRequest, Limits, PoolConfig, SandboxPool};
use sha2::Digest as _;

/// Live bytes allocated on the Rust heap by the current thread (to find per-call leaks of
/// Rust-side state; other tests run on other threads).
struct Counting;
std::thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: the slot may be gone while the thread exits.
    let _ = LIVE.try_with(|l| l.set(l.get() + delta));
}

// SAFETY: delegates to the system allocator and only counts.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        count(-(layout.size() as isize));
        // SAFETY: forwarded unchanged.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        count(new as isize - layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { std::alloc::System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn hash(code: &str) -> [u8; 32] {
    sha2::Sha256::digest(code.as_bytes()).into()
}

fn req(body: &str) -> HttpRequest {
    HttpRequest {
        env: Default::default(),
        method: "POST".into(),
        url: "https://fn.example/".into(),
        headers: vec![],
        body: body.as_bytes().to_vec(),
    }
}

fn text(r: Result<clave_sandbox::Outcome, Error>) -> String {
    let o = r.expect("call succeeds");
    String::from_utf8(o.response.body).expect("utf-8")
}

fn one_worker() -> SandboxPool {
    SandboxPool::new(PoolConfig {
        workers: 1,
        grace: Duration::from_millis(50),
        ..PoolConfig::default()
    })
    .expect("pool")
}

fn run(pool: &SandboxPool, rt: &tokio::runtime::Runtime, code: &str, body: &str) -> String {
    text(run_raw(pool, rt, code, body, Limits::default()))
}

fn run_raw(
    pool: &SandboxPool,
    rt: &tokio::runtime::Runtime,
    code: &str,
    body: &str,
    limits: Limits,
) -> Result<clave_sandbox::Outcome, Error> {
    rt.block_on(pool.run(hash(code), Arc::from(code), req(body), limits))
}

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio")
}

const COUNTER: &str = r#"
let moduleCount = 0;
globalThis.globalCount = 0;
export default { fetch() {
  moduleCount++;
  globalThis.globalCount++;
  globalThis.extra = (globalThis.extra || 0) + 1;
  return new Response(`${moduleCount} ${globalThis.globalCount} ${globalThis.extra}`);
} };"#;

#[test]
fn state_never_survives_a_call() {
    let (pool, rt) = (one_worker(), tokio());
    for _ in 0..50 {
        assert_eq!(run(&pool, &rt, COUNTER, ""), "1 1 1");
    }
}

#[test]
fn prototype_pollution_is_gone_on_the_next_call() {
    let (pool, rt) = (one_worker(), tokio());
    let code = r#"export default { async fetch(request) {
      const before = ({}).polluted === undefined && Array.prototype.map.name === 'map'
        && JSON.stringify === JSON.stringify && typeof Response.json === 'function';
      Object.prototype.polluted = 'yes';
      Array.prototype.map = () => 'hijacked';
      JSON.stringify = () => 'hijacked';
      delete Response.json;
      Object.freeze(Object.prototype);
      return new Response(String(before));
    } };"#;
    for _ in 0..5 {
        assert_eq!(run(&pool, &rt, code, ""), "true");
    }
}

#[test]
fn the_request_and_ctx_objects_are_fresh_in_every_call() {
    let (pool, rt) = (one_worker(), tokio());
    // What one call leaves on `ctx`, on its methods, on the Request and on the prototypes of
    // Request and Headers is gone in the next call.
    let code = r#"export default { async fetch(request, env, ctx) {
      const seen = [ctx.left, ctx.waitUntil.left, request.left, Request.prototype.left,
        Headers.prototype.left, Object.isFrozen(ctx)].map(String).join(',');
      ctx.left = ctx.waitUntil.left = request.left = 1;
      Request.prototype.left = Headers.prototype.left = 1;
      Object.freeze(ctx);
      return new Response(seen + ' ' + request.method + ' ' + request.url);
    } };"#;
    for _ in 0..5 {
        assert_eq!(
            run(&pool, &rt, code, ""),
            "undefined,undefined,undefined,undefined,undefined,false POST https://fn.example/"
        );
    }
}

#[test]
fn two_functions_alternating_on_one_worker_never_see_each_other() {
    let (pool, rt) = (one_worker(), tokio());
    let a = r#"globalThis.owner = 'a'; let secret = null;
      export default { async fetch(r) { const seen = [globalThis.owner, secret, globalThis.fromB];
        secret = await r.text(); globalThis.fromA = secret; return Response.json(seen); } };"#;
    let b = r#"globalThis.owner = 'b'; let secret = null;
      export default { async fetch(r) { const seen = [globalThis.owner, secret, globalThis.fromA];
        secret = await r.text(); globalThis.fromB = secret; return Response.json(seen); } };"#;
    for i in 0..20 {
        assert_eq!(run(&pool, &rt, a, &format!("a-{i}")), r#"["a",null,null]"#);
        assert_eq!(run(&pool, &rt, b, &format!("b-{i}")), r#"["b",null,null]"#);
    }
}

#[test]
fn timers_and_jobs_left_behind_never_run_later() {
    let (pool, rt) = (one_worker(), tokio());
    let code = r#"export default { async fetch(r) {
      const seen = String(globalThis.late);
      setTimeout(() => { globalThis.late = 'timer'; }, 0);
      Promise.resolve().then(() => new Promise(() => {})).then(() => { globalThis.late = 'job'; });
      return new Response(seen);
    } };"#;
    for _ in 0..10 {
        assert_eq!(run(&pool, &rt, code, ""), "undefined");
    }
}

#[test]
fn math_random_differs_between_calls() {
    let (pool, rt) = (one_worker(), tokio());
    let code = r#"export default { fetch() {
      return new Response([Math.random(), Math.random()].join(' '));
    } };"#;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let out = run(&pool, &rt, code, "");
        let nums: Vec<f64> = out.split(' ').map(|x| x.parse().expect("number")).collect();
        assert!(nums.iter().all(|n| (0.0..1.0).contains(n)));
        assert!(seen.insert(out), "a repeated Math.random sequence");
    }
}

#[test]
fn failed_calls_do_not_poison_the_image() {
    let (pool, rt) = (one_worker(), tokio());
    let code = r#"let n = 0;
      export default { async fetch(r) {
        n++;
        const what = await r.text();
        if (what === 'oom') { const a = []; for (;;) a.push('x'.repeat(1000) + a.length); }
        if (what === 'loop') { for (;;) {} }
        if (what === 'throw') { globalThis.broken = true; throw new Error('boom'); }
        if (what === 'stack') { const f = () => f() + 1; f(); }
        return new Response(`${n} ${globalThis.broken}`);
      } };"#;
    let small = Limits {
        heap_bytes: 4 << 20,
        cpu_ms: 1000,
        ..Limits::default()
    };
    assert_eq!(run(&pool, &rt, code, "ok"), "1 undefined");
    for bad in ["oom", "loop", "throw", "stack"] {
        let r = run_raw(&pool, &rt, code, bad, small);
        match (bad, &r) {
            ("oom", Err(Error::OutOfMemory))
            | ("loop", Err(Error::Timeout))
            | ("throw", Err(Error::ScriptError { .. }))
            | ("stack", Err(Error::StackOverflow)) => {}
            _ => panic!("{bad}: unexpected {r:?}"),
        }
        assert_eq!(run(&pool, &rt, code, "ok"), "1 undefined", "after {bad}");
    }
}

#[test]
fn a_module_that_fails_at_top_level_is_not_cached_as_good() {
    let (pool, rt) = (one_worker(), tokio());
    let code = "throw new Error('top-level'); export default { fetch() {} };";
    for _ in 0..3 {
        match run_raw(&pool, &rt, code, "", Limits::default()) {
            Err(Error::InvalidModule { message }) => assert!(message.contains("top-level")),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(run(&pool, &rt, COUNTER, ""), "1 1 1");
}

#[test]
fn a_wrong_hash_is_refused_even_with_an_image_of_another_function() {
    let (pool, rt) = (one_worker(), tokio());
    assert_eq!(run(&pool, &rt, COUNTER, ""), "1 1 1");
    let other = "export default { fetch() { return new Response('other'); } };";
    let r = rt.block_on(pool.run(hash(COUNTER), Arc::from(other), req(""), Limits::default()));
    // The image of COUNTER answers for its own hash: the pin is what runs, never `other`.
    assert_eq!(text(r), "1 1 1");
    let r = rt.block_on(pool.run([7; 32], Arc::from(other), req(""), Limits::default()));
    assert!(matches!(r, Err(Error::CodeHashMismatch)), "{r:?}");
}

/// Rust-side state made per call would leak on every restore (the image forgets the objects that
/// owned it): thousands of calls through every host function keep the Rust heap flat.
#[test]
fn calls_leak_nothing_on_the_rust_heap() {
    let code = r#"export default { async fetch(r) {
      console.log('x', { a: 1 }); console.error(new Error('e'));
      const t = new TextEncoder().encode(await r.text());
      const d = await crypto.subtle.digest('SHA-256', t);
      crypto.getRandomValues(new Uint8Array(16)); crypto.randomUUID();
      const u = new URL('https://a.example/p?q=1#h'); u.searchParams.append('z', '2');
      structuredClone({ m: new Map([[1, 2]]) });
      btoa('abc'); atob('YWJj'); new TextDecoder().decode(t);
      await new Promise((res) => setTimeout(res, 0));
      return Response.json({ h: new Uint8Array(d)[0], u: u.href, len: t.length, r: Math.random() < 2 });
    } };"#;
    let cache = BytecodeCache::new(1 << 20);
    let h = hash(code);
    let call = || {
        clave_sandbox::run_on_current_thread(&cache, h, code, req("hello"), &Limits::default())
            .expect("call")
    };
    for _ in 0..200 {
        call();
    }
    let before = LIVE.with(Cell::get);
    for _ in 0..2000 {
        call();
    }
    let grown = LIVE.with(Cell::get) - before;
    assert!(
        grown < 64 << 10,
        "the Rust heap grew by {grown} bytes over 2000 calls"
    );
}

/// A function image shares the pages its module did not change with the slot's base image.
#[test]
fn function_images_share_unchanged_pages_with_the_base_image() {
    let (image, unique) = clave_sandbox::function_image_bytes(COUNTER).expect("image");
    assert!(unique > 0, "the module's own objects are in the image");
    assert!(
        unique < image,
        "nothing shared: {unique} of {image} bytes are unique"
    );
}

/// Inline calls: a fast function runs on the calling thread; a call over the inline budget sends
/// its function to the workers from then on; a stack limit above the inline maximum never runs
/// inline; inline calls are as isolated as pooled ones.
#[test]
fn fast_functions_run_inline_until_they_are_slow_once() {
    let d = PoolConfig::default();
    let pool = SandboxPool::new(PoolConfig {
        workers: 1,
        inline_budget: Duration::from_millis(5),
        max: Limits {
            stack_bytes: 4 << 20,
            ..d.max
        },
        ..d
    })
    .expect("pool");
    let h = hash(COUNTER);
    for _ in 0..5 {
        let r = pool
            .run_inline(h, COUNTER, req(""), Limits::default())
            .expect("runs inline");
        assert_eq!(text(r), "1 1 1");
    }
    let slow = r#"export default { async fetch(r) {
      // A fixed amount of work (~30 ms of CPU here), not a wall-clock wait: the pool judges
      // slowness by the CPU time the call used, so a merely preempted call stays inline.
      if ((await r.text()) === 'slow') { let x = 0; for (let i = 0; i < 3e6; i++) x += i; if (x < 0) throw 0; }
      return new Response('done');
    } };"#;
    let hs = hash(slow);
    assert_eq!(
        text(
            pool.run_inline(hs, slow, req("fast"), Limits::default())
                .expect("inline")
        ),
        "done"
    );
    assert_eq!(
        text(
            pool.run_inline(hs, slow, req("slow"), Limits::default())
                .expect("inline")
        ),
        "done"
    );
    assert!(
        matches!(
            pool.run_inline(hs, slow, req("fast"), Limits::default()),
            Err(back) if back == req("fast")
        ),
        "a function that overran the budget goes to the workers, its request given back intact"
    );
    let deep = Limits {
        stack_bytes: clave_sandbox::INLINE_MAX_STACK * 2,
        ..Limits::default()
    };
    assert!(
        matches!(pool.run_inline(h, COUNTER, req("deep"), deep), Err(back) if back == req("deep")),
        "a stack limit beyond the inline maximum is not run inline"
    );
    let off = SandboxPool::new(PoolConfig {
        workers: 1,
        ..PoolConfig::default()
    })
    .expect("pool");
    assert!(
        matches!(
            off.run_inline(h, COUNTER, req("off"), Limits::default()),
            Err(back) if back == req("off")
        ),
        "inline execution is off by default"
    );
}

/// A thread's inline slot can be built ahead of its first call (once; not where inline calls
/// are off), and calls on it then behave as on a slot the first call built.
#[test]
fn an_inline_slot_prepared_ahead_serves_the_calls_of_its_thread() {
    let d = PoolConfig::default();
    let inline = PoolConfig {
        workers: 1,
        inline_budget: Duration::from_millis(5),
        ..d.clone()
    };
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            let off = SandboxPool::new(PoolConfig {
                workers: 1,
                ..PoolConfig::default()
            })
            .expect("pool");
            assert!(
                !off.prepare_inline_slot().expect("no-op"),
                "inline calls are off"
            );
            let pool = SandboxPool::new(inline).expect("pool");
            assert!(
                pool.prepare_inline_slot().expect("built"),
                "a new thread has no slot"
            );
            assert!(!pool.prepare_inline_slot().expect("kept"), "built once");
            let h = hash(COUNTER);
            for _ in 0..3 {
                let r = pool
                    .run_inline(h, COUNTER, req(""), Limits::default())
                    .expect("runs inline");
                assert_eq!(text(r), "1 1 1");
            }
            assert!(
                !pool.prepare_inline_slot().expect("kept"),
                "the calls used it"
            );
        })
        .expect("thread")
        .join()
        .expect("no panic");
}
