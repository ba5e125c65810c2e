use super::*;
use crate::arena::Arena;

/// A runtime in its own arena (the arena must outlive it: keep it declared first).
fn limited_runtime(arena: &Arena, heap: Rc<Heap>) -> rquickjs::Result<rquickjs::Runtime> {
    rquickjs::Runtime::new_with_alloc(arena.allocator(heap))
}

#[test]
fn refuses_beyond_the_limit_and_records_it() {
    let arena = Arena::new(256 << 20).expect("arena");
    let heap = Heap::new(usize::MAX);
    let rt = limited_runtime(&arena, heap.clone()).expect("runtime");
    let ctx = rquickjs::Context::full(&rt).expect("context");
    assert!(heap.used() > 0);
    heap.set_limit(heap.used() + (1 << 20));
    ctx.with(|ctx| {
        let r: rquickjs::Result<()> =
            ctx.eval("const a = []; for (;;) a.push(new Array(1000).fill(1));");
        assert!(matches!(r, Err(rquickjs::Error::Exception)), "{r:?}");
        let thrown = format!("{:?}", ctx.catch());
        assert!(thrown.contains("out of memory"), "{thrown}");
    });
    assert!(heap.refused());
    heap.set_limit(usize::MAX);
    drop(ctx);
    drop(rt);
    assert_eq!(heap.used(), 0);
}

/// The native JSON paths take plain data (class ids and prototypes as assumed) and give up
/// on everything else, leaving no exception and no leak behind.
#[test]
fn native_json_takes_plain_data_only() {
    let arena = Arena::new(256 << 20).expect("arena");
    let heap = Heap::new(usize::MAX);
    let rt = limited_runtime(&arena, heap.clone()).expect("runtime");
    let ctx = rquickjs::Context::full(&rt).expect("context");
    ctx.with(|ctx| {
        let fast = |src: &str| -> Option<String> {
            let v: rquickjs::Value<'_> = ctx.eval(src).expect("value");
            json_fast(&ctx, &v, 1 << 20)
        };
        assert_eq!(
            fast("({ a: [1, 'x', null, true, 1.5, undefined], b: { c: -0 }, u: undefined })")
                .as_deref(),
            Some(r#"{"a":[1,"x",null,true,1.5,null],"b":{"c":0}}"#)
        );
        for other in [
            "new Proxy({}, {})",
            "({ get a() { return 1; } })",
            "({ toJSON() { return 1; } })",
            "[1, , 2]",
            "new Date(0)",
            "Object.create(null)",
            "'\\ud800'",
            "(() => { const o = {}; o.o = o; return o; })()",
            "1n",
        ] {
            assert_eq!(fast(other), None, "{other}");
        }
        assert_eq!(fast("'x'.repeat(100)").map(|s| s.len()), Some(102));
        let v: rquickjs::Value<'_> = ctx.eval("'x'.repeat(100)").expect("value");
        assert_eq!(json_fast(&ctx, &v, 50), None);
        let parse = |src: &str| -> Option<String> {
            let t = rquickjs::String::from_str(ctx.clone(), src).expect("string");
            let v = json_parse_fast(&ctx, &t, 1 << 20)?;
            json_fast(&ctx, &v, 1 << 20)
        };
        assert_eq!(
            parse(r#" {"b":[1,2.5,"\u00e9\n"],"a":{}} "#).as_deref(),
            Some(r#"{"b":[1,2.5,"é\n"],"a":{}}"#)
        );
        for bad in ["", "[1,]", "01", "\"\\ud800\"", "{\"a\" 1}", "[1] x"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        // No exception left pending (QuickJS answers a non-object when there is none).
        assert!(!ctx.catch().is_object());
    });
    drop(ctx);
    drop(rt);
    assert_eq!(heap.used(), 0);
}

/// The native parser against QuickJS's own `JSON.parse` on every truncation and every
/// single-bit flip of a request-like body (it parses outside bytes): whenever it answers, the
/// generic parser accepts the same text and gives the same value; it never leaves an
/// exception pending and leaks nothing.
#[test]
fn native_json_parse_agrees_with_json_parse_on_mutations() {
    let seed = r#"{"items":[{"k":"v\u00e9\n","n":-12.5e3},true,false,null,[]],"s":"a\"b","o":{}}"#;
    let arena = Arena::new(256 << 20).expect("arena");
    let heap = Heap::new(usize::MAX);
    let rt = limited_runtime(&arena, heap.clone()).expect("runtime");
    let ctx = rquickjs::Context::full(&rt).expect("context");
    ctx.with(|ctx| {
            let generic: rquickjs::Function<'_> = ctx
                .eval("(t) => { try { return JSON.stringify(JSON.parse(t)); } catch (e) { return null; } }")
                .expect("generic parser");
            let check = |text: &str| {
                let t = rquickjs::String::from_str(ctx.clone(), text).expect("string");
                let fast = json_parse_fast(&ctx, &t, 1 << 20).map(|v| {
                    json_fast(&ctx, &v, 1 << 20).expect("a parsed value serialises natively")
                });
                assert!(!ctx.catch().is_object(), "exception left pending for {text:?}");
                let answered = fast.is_some();
                if let Some(fast) = fast {
                    let want: Option<String> = generic.call((text,)).expect("generic");
                    assert_eq!(Some(fast), want, "{text:?}");
                }
                answered
            };
            let bytes = seed.as_bytes();
            assert!(check(seed), "the seed takes the native path");
            for n in 0..bytes.len() {
                check(&seed[..n]);
            }
            let mut native = 0;
            for i in 0..bytes.len() {
                for bit in 0..8 {
                    let mut m = bytes.to_vec();
                    m[i] ^= 1 << bit;
                    if let Ok(text) = std::str::from_utf8(&m)
                        && check(text)
                    {
                        native += 1;
                    }
                }
            }
            // Many flips (inside strings and numbers) still parse: the comparison was exercised.
            assert!(native > 50, "only {native} mutations took the native path");
        });
    drop(ctx);
    drop(rt);
    assert_eq!(heap.used(), 0);
}

#[test]
fn the_word_scan_finds_the_first_byte_a_json_string_escapes() {
    // Against the byte-by-byte rule, for every byte value at every position of inputs around
    // the word size, over a background of bytes that are near each flagged value (borrows).
    let naive = |s: &[u8]| s.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
    for len in 0..=19 {
        for background in [
            b'a', 0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xa0, 0xe2, 0xff,
        ] {
            let base = vec![background; len];
            assert_eq!(json::find_special(&base), naive(&base), "{base:?}");
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut s = base.clone();
                    s[at] = b;
                    assert_eq!(json::find_special(&s), naive(&s), "{s:?}");
                    // A second special byte above the first (where a borrow could mislead).
                    if at + 1 < len {
                        s[at + 1] = 0;
                        assert_eq!(json::find_special(&s), naive(&s), "{s:?}");
                    }
                }
            }
        }
    }
}
