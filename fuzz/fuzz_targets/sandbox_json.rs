#![no_main]
//! The sandbox's native JSON parser (the `request.json()` fast path, which parses request bodies
//! that come from outside) against QuickJS's own `JSON.parse` on the same text: whenever the native
//! parser answers, `JSON.parse` accepts the text and both values stringify identically; no
//! exception is ever left pending. Through `clave_sandbox::__fuzz_native_json_parse`, a
//! doc-hidden entry point that exists for this target.

use libfuzzer_sys::fuzz_target;
use rquickjs::{Context, Function, Runtime};

thread_local! {
    static JS: (Runtime, Context) = {
        let rt = Runtime::new().expect("runtime");
        rt.set_memory_limit(64 << 20);
        let ctx = Context::full(&rt).expect("context");
        (rt, ctx)
    };
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    JS.with(|(_, ctx)| {
        ctx.with(|ctx| {
            let generic: Function<'_> = ctx
                .eval("(t) => { try { return JSON.stringify(JSON.parse(t)); } catch (e) { return null; } }")
                .expect("generic parser");
            let stringify: Function<'_> = ctx.eval("(v) => JSON.stringify(v)").expect("stringify");
            let t = rquickjs::String::from_str(ctx.clone(), text).expect("string");
            let fast = clave_sandbox::__fuzz_native_json_parse(&ctx, &t);
            assert!(!ctx.catch().is_object(), "exception left pending for {text:?}");
            if let Some(v) = fast {
                let fast: Option<String> = stringify.call((v,)).expect("stringify");
                let want: Option<String> = generic.call((text,)).expect("generic");
                assert_eq!(fast, want, "native and JSON.parse differ on {text:?}");
            }
        });
    });
});
