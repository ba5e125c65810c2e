#![allow(unsafe_code)] // libc::memmem over bytes read from /proc/self/mem
//! Isolation of snapshot-restored calls, checked in the process's memory: what one call (or one
//! module's evaluation) wrote is gone after the reply; randomness at top level is fresh per call;
//! internal functions stay out of reach; stack and heap limits survive restores. Written as an
//! adversarial review of the snapshot design: each test reproduced a finding before its fix.

use std::os::unix::fs::FileExt as _;
use std::sync::Arc;
use std::time::Duration;

use clave_sandbox::{Error, HttpRequest, Limits, PoolConfig, SandboxPool};
use sha2::Digest as _;

fn hash(code: &str) -> [u8; 32] {
    sha2::Sha256::digest(code.as_bytes()).into()
}

fn req(body: &[u8]) -> HttpRequest {
    HttpRequest {
        env: Default::default(),
        method: "POST".into(),
        url: "https://fn.example/".into(),
        headers: vec![],
        body: body.to_vec(),
    }
}

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio")
}

fn pool_with_images(image_bytes: usize) -> SandboxPool {
    SandboxPool::new(PoolConfig {
        workers: 1,
        grace: Duration::from_millis(50),
        image_bytes,
        ..PoolConfig::default()
    })
    .expect("pool")
}

fn call(
    pool: &SandboxPool,
    rt: &tokio::runtime::Runtime,
    code: &str,
    body: &[u8],
) -> Result<clave_sandbox::Outcome, Error> {
    rt.block_on(pool.run(hash(code), Arc::from(code), req(body), Limits::default()))
}

fn text(r: Result<clave_sandbox::Outcome, Error>) -> String {
    String::from_utf8(r.expect("call succeeds").response.body).expect("utf-8")
}

/// Waits until the (single) worker finished everything it does after its previous reply (the
/// pool scrubs the slot after sending the reply): a job that runs no call.
fn barrier(pool: &SandboxPool, rt: &tokio::runtime::Runtime) {
    rt.block_on(pool.run_with(Limits::default(), |_| ()))
        .expect("barrier job");
}

/// A 16-byte marker made at run time (it appears in no literal of this binary or of the JS
/// sources below, which spell it as character codes).
fn marker(seed: u8) -> (Vec<u8>, String) {
    let base = std::hint::black_box([
        81u8, 55, 122, 88, 107, 80, 50, 119, 77, 118, 74, 57, 114, 76, 104,
    ]);
    let mut m: Vec<u8> = base.to_vec();
    m.push(b'A' + (seed % 26));
    let codes = m
        .iter()
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join(",");
    (m, codes)
}

/// Non-overlapping occurrences of `needle` in the readable anonymous memory of this process
/// (heap, thread stacks, mmapped arenas), not counting the scan buffer itself.
fn count_in_process_memory(needle: &[u8]) -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
    let mem = std::fs::File::open("/proc/self/mem").expect("mem");
    let mut buf = vec![0u8; 4 << 20];
    let (skip_from, skip_to) = (buf.as_ptr() as usize, buf.as_ptr() as usize + buf.len());
    let mut total = 0;
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 5 || !fields[1].starts_with('r') {
            continue;
        }
        let path = fields.get(5).copied().unwrap_or("");
        if !(path.is_empty() || path == "[heap]" || path.starts_with("[stack")) {
            continue;
        }
        let (a, b) = fields[0].split_once('-').expect("range");
        let (a, b) = (
            usize::from_str_radix(a, 16).expect("hex"),
            usize::from_str_radix(b, 16).expect("hex"),
        );
        let mut parts = vec![(a, b)];
        if skip_from < b && skip_to > a {
            parts = vec![(a, skip_from.max(a)), (skip_to.min(b), b)];
        }
        for (from, to) in parts {
            let mut off = from;
            while off < to {
                let n = buf.len().min(to - off);
                let got = match mem.read_at(&mut buf[..n], off as u64) {
                    Ok(k) if k > 0 => k,
                    _ => break,
                };
                let mut p = 0usize;
                while p + needle.len() <= got {
                    // SAFETY: both ranges are initialised and in bounds.
                    let hit = unsafe {
                        libc::memmem(
                            buf.as_ptr().add(p).cast(),
                            got - p,
                            needle.as_ptr().cast(),
                            needle.len(),
                        )
                    };
                    if hit.is_null() {
                        break;
                    }
                    total += 1;
                    p = hit as usize - buf.as_ptr() as usize + needle.len();
                }
                off += got;
            }
        }
    }
    total
}

/// The README promises that module state never survives a call ("a fresh QuickJS
/// runtime + context" per call), and before the snapshot rewrite a module's top level ran for every
/// call. Now it runs once per slot, while the function image is built, so everything random the
/// top level made (keys, nonces, IDs, the `Math.random` values) is replayed identically in every
/// later call on that worker: e.g. an AES-GCM IV drawn at top level is reused for every request.
#[test]
fn top_level_randomness_is_fresh_for_every_call() {
    let (pool, rt) = (pool_with_images(32 << 20), tokio());
    let code = r#"
      const iv = crypto.getRandomValues(new Uint8Array(12)).join('.');
      const r = Math.random();
      const id = crypto.randomUUID();
      export default { fetch() { return new Response(`${iv} ${r} ${id}`); } };"#;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..5 {
        let out = text(call(&pool, &rt, code, b""));
        assert!(
            seen.insert(out.clone()),
            "module top-level randomness replayed from the image in a later call: {out}"
        );
    }
}

/// Control for the memory scans below: with the function's image cached, the worker's scrub after
/// the reply clears what the call wrote (the call's plaintext is gone from the process).
#[test]
fn control_call_plaintext_is_scrubbed_when_the_image_is_cached() {
    let (pool, rt) = (pool_with_images(32 << 20), tokio());
    let (needle, _) = marker(1);
    let code = r#"export default { async fetch(r) {
        const t = await r.text(); globalThis.keep = t.repeat(20000); return new Response('ok'); } };"#;
    assert_eq!(text(call(&pool, &rt, code, &needle)), "ok");
    barrier(&pool, &rt);
    let n = count_in_process_memory(&needle);
    assert!(
        n < 100,
        "{n} copies of the call's plaintext after the scrub"
    );
}

/// When a function has no cached image (its image is larger than
/// `PoolConfig::image_bytes`, default 32 MiB, e.g. a module with a big table at top level; or the
/// image was not inserted), `Slot::scrub` returns false, the pool ignores it, and the call's
/// plaintext (request, derived data, response) stays in the worker's arena until some later call
/// happens to restore. The module docs promise it "does not linger".
#[test]
fn call_plaintext_is_scrubbed_even_without_a_cached_image() {
    let (pool, rt) = (pool_with_images(1), tokio());
    let (needle, _) = marker(2);
    let code = r#"export default { async fetch(r) {
        const t = await r.text(); globalThis.keep = t.repeat(20000); return new Response('ok'); } };"#;
    assert_eq!(text(call(&pool, &rt, code, &needle)), "ok");
    barrier(&pool, &rt);
    let n = count_in_process_memory(&needle);
    assert!(
        n < 100,
        "{n} copies of the call's plaintext linger in the worker after the reply"
    );
}

/// `Arena::snapshot` truncates the heap to just above its highest allocated block
/// and sets the high-water mark to the new top, but leaves the bytes between the new top and the
/// old top (freed blocks of the module's top-level evaluation) as they are. Nothing tracks them
/// any more: restores clear only `[image_len, hwm)` and talc's top tags, so they survive every
/// later restore, including those for other functions (other users), and are handed out again as
/// uninitialised memory when a later call's heap grows over them. The arena docs promise "every
/// byte beyond the image is zero".
#[test]
fn module_evaluation_garbage_beyond_the_image_is_cleared_before_another_function_runs() {
    let (pool, rt) = (pool_with_images(32 << 20), tokio());
    let (needle, codes) = marker(3);
    // Top level: 4 MiB of strings holding the marker, freed before the image is taken (at the top
    // of the heap, so truncation drops them from the image).
    let f = format!(
        r#"{{ const m = String.fromCharCode({codes}); let g = [];
          for (let i = 0; i < 4; i++) g.push(m.repeat(65536)); g = null; }}
        export default {{ fetch() {{ return new Response('f'); }} }};"#
    );
    let g = "export default { fetch() { return new Response('g'); } };";
    // The copies found below cannot be in F's cached image (the Rust heap): it is far smaller.
    let (image, _) = clave_sandbox::function_image_bytes(&f).expect("image size");
    assert!(image < 2 << 20, "F's image is {image} bytes");
    assert_eq!(text(call(&pool, &rt, &f, b"")), "f");
    for _ in 0..3 {
        assert_eq!(text(call(&pool, &rt, g, b"")), "g");
    }
    barrier(&pool, &rt);
    let n = count_in_process_memory(&needle);
    assert!(
        n < 1000,
        "{n} copies of function F's top-level data survive restores for function G"
    );
}

/// Two functions alternating on one worker whose image budget holds only one image: every call
/// evicts the other function's image and rebuilds its own; state never crosses.
#[test]
fn alternating_functions_with_lru_eviction_stay_isolated() {
    let a = r#"let n = 0; globalThis.owner = 'a';
      export default { async fetch(r) { n++; const seen = `${n} ${globalThis.owner} ${globalThis.fromB}`;
        globalThis.fromA = await r.text(); return new Response(seen); } };"#;
    let b = r#"let n = 0; globalThis.owner = 'b';
      export default { async fetch(r) { n++; const seen = `${n} ${globalThis.owner} ${globalThis.fromA}`;
        globalThis.fromB = await r.text(); return new Response(seen); } };"#;
    let (_, size) = clave_sandbox::function_image_bytes(a).expect("image size");
    let (pool, rt) = (pool_with_images(size + size / 2), tokio());
    for i in 0..10 {
        assert_eq!(
            text(call(&pool, &rt, a, format!("a{i}").as_bytes())),
            "1 a undefined"
        );
        assert_eq!(
            text(call(&pool, &rt, b, format!("b{i}").as_bytes())),
            "1 b undefined"
        );
        assert_eq!(text(call(&pool, &rt, a, b"x")), "1 a undefined");
    }
}

/// A FinalizationRegistry / WeakRef made at top level: the cleanup job the image build's GC queues
/// is part of the image and runs (harmlessly, identically) in every call; nothing crashes.
#[test]
fn finalization_and_weakrefs_from_the_top_level_are_consistent() {
    let (pool, rt) = (pool_with_images(32 << 20), tokio());
    let code = r#"let cleaned = 0;
      const reg = new FinalizationRegistry(() => { cleaned++; });
      { const a = {}; const b = { a }; a.b = b; reg.register(a, 1); }
      const w = new WeakRef({ big: 'x'.repeat(1000) });
      export default { async fetch() {
        const o = {}; o.self = o; reg.register(o, 2);
        await new Promise((r) => setTimeout(r, 1));
        return new Response(`${cleaned} ${typeof w.deref()}`);
      } };"#;
    let first = text(call(&pool, &rt, code, b""));
    for _ in 0..10 {
        assert_eq!(text(call(&pool, &rt, code, b"")), first);
    }
}

/// A call that overran into a native built-in and was abandoned, then many calls of another
/// function on the replacement: the pool stays healthy (no abort in the abandoned thread's
/// teardown, which restores the base image and frees the runtime).
#[test]
fn abandoned_worker_teardown_after_restore_is_clean() {
    let (pool, rt) = (pool_with_images(32 << 20), tokio());
    let hog = r#"export default { fetch() {
        const s = '['.repeat(1) + '1,'.repeat(3_000_000) + '1]';
        for (let i = 0; i < 20; i++) JSON.parse(s);
        return new Response('done'); } };"#;
    let short = Limits {
        cpu_ms: 20,
        ..Limits::default()
    };
    let r = rt.block_on(pool.run(hash(hog), Arc::from(hog), req(b""), short));
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    let ok = "export default { fetch() { return new Response('ok'); } };";
    for _ in 0..5 {
        assert_eq!(text(call(&pool, &rt, ok, b"")), "ok");
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(text(call(&pool, &rt, ok, b"")), "ok");
}

/// The stack limit follows the thread's current depth on every call (the image holds the stack top
/// of whichever call built it): a slot used from a shallow frame, then from a much deeper one, then
/// shallow again, reports StackOverflow each time and never overruns the native stack.
#[test]
fn stack_limit_follows_the_call_depth_across_restores() {
    let code = r#"export default { fetch() { const f = (n) => f(n + 1) + 1; return new Response(String(f(0))); } };"#;
    let h = hash(code);
    let t = std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            let cache = clave_sandbox::BytecodeCache::new(1 << 20);
            let limits = Limits::default();
            let run = || clave_sandbox::run_on_current_thread(&cache, h, code, req(b""), &limits);
            fn deep<R>(n: usize, f: &dyn Fn() -> R) -> R {
                let pad = std::hint::black_box([0u8; 4096]);
                if n == 0 {
                    eprintln!("deep frame at {:p}", &pad);
                    let r = f();
                    std::hint::black_box(&pad);
                    return r;
                }
                let r = deep(n - 1, f);
                std::hint::black_box(&pad);
                r
            }
            let top = 0u8;
            eprintln!("top frame at {:p}", &top);
            let mut out = vec![];
            out.push(format!("{:?}", run().map(|o| o.response.status)));
            out.push(format!("{:?}", deep(150, &run).map(|o| o.response.status)));
            out.push(format!("{:?}", run().map(|o| o.response.status)));
            out
        })
        .expect("thread");
    for r in t.join().expect("no crash") {
        assert_eq!(r, "Err(StackOverflow)");
    }
}

/// Heap accounting is restored with the image: after calls that ran out of memory, a call that
/// needs most of the limit still fits (no drift of `Heap::used`, no leaked budget).
#[test]
fn heap_budget_is_restored_after_out_of_memory_calls() {
    let (pool, rt) = (pool_with_images(32 << 20), tokio());
    let code = r#"export default { async fetch(r) {
        const what = await r.text();
        if (what === 'oom') { const a = []; for (;;) a.push(new Uint8Array(1 << 16)); }
        const keep = []; for (let i = 0; i < 40; i++) keep.push(new Uint8Array(1 << 16));
        return new Response(String(keep.length)); } };"#;
    let small = Limits {
        heap_bytes: 4 << 20,
        ..Limits::default()
    };
    let run =
        |b: &str| rt.block_on(pool.run(hash(code), Arc::from(code), req(b.as_bytes()), small));
    assert_eq!(text(run("ok")), "40");
    for _ in 0..20 {
        assert!(matches!(run("oom"), Err(Error::OutOfMemory)));
        assert_eq!(text(run("ok")), "40");
    }
}

/// QuickJS-ng's V8-style `Error.prepareStackTrace`
/// hands user code `CallSite.getFunction()` for every frame, strict or native: the prelude's
/// internal functions (`dispatch`, ...) and the Rust host functions on the stack (here
/// `H.utf8Decode`) become reachable from user code. Today none of them exposes `H` itself, but
/// any host function object that user code can make unreachable would be finalized during a call
/// (freeing its Rust closure outside the arena) while the images still point at it.
#[test]
fn internal_functions_do_not_leak_through_prepare_stack_trace() {
    let code = r#"export default { fetch() {
        const fns = [];
        Error.prepareStackTrace = (e, cs) => {
          for (const c of cs) { const f = c.getFunction(); if (typeof f === 'function') fns.push(f); }
          return 'x';
        };
        try { new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array([0xff])); } catch (e) { void e.stack; }
        try { null.x; } catch (e) { void e.stack; }
        return new Response(JSON.stringify(fns.map((f) => f.name || '?')));
      } };"#;
    let (pool, rt) = (pool_with_images(32 << 20), tokio());
    let out = text(call(&pool, &rt, code, b""));
    assert!(
        !out.contains("dispatch") && !out.contains("utf8Decode"),
        "internal functions reached user code: {out}"
    );
}
