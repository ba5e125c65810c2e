//! Bundles in the sandbox: several modules linked from the bundle only, module state kept in the
//! function's image, and every import that would leave the bundle refused.

use std::collections::BTreeMap;

use clave_sandbox::bundle::Bundle;
use clave_sandbox::{BytecodeCache, Error, HttpRequest, Limits, run_on_current_thread};
use sha2::Digest as _;

fn bundle(entry: &str, modules: &[(&str, &str)]) -> String {
    let m: BTreeMap<String, String> = modules
        .iter()
        .map(|(p, s)| ((*p).to_owned(), (*s).to_owned()))
        .collect();
    Bundle::new(entry, m).expect("valid bundle").encode()
}

fn cache() -> &'static BytecodeCache {
    static CACHE: std::sync::OnceLock<BytecodeCache> = std::sync::OnceLock::new();
    CACHE.get_or_init(|| BytecodeCache::new(16 << 20))
}

/// One call on a thread with room for the sandbox's stack (twice the JS stack limit).
fn call(code: &str, url: &str) -> Result<String, Error> {
    let hash: [u8; 32] = sha2::Sha256::digest(code.as_bytes()).into();
    let req = HttpRequest {
        method: "GET".into(),
        url: url.into(),
        headers: vec![],
        body: vec![],
        env: Default::default(),
    };
    let code = code.to_owned();
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            run_on_current_thread(cache(), hash, &code, req, &Limits::default())
                .map(|o| String::from_utf8_lossy(&o.response.body).into_owned())
        })
        .expect("spawn")
        .join()
        .expect("join")
}

const ENTRY: &str = r#"
import { greet } from "./lib/greet.js";
import * as counter from "./lib/counter.js";
import pad from "left-pad";
export { greet as reexported } from "./lib/greet.js";
export default {
  async fetch(request) {
    const u = new URL(request.url);
    const lazy = await import("./lib/greet.js");
    return new Response(
      [request.method, u.pathname, u.searchParams.get("id"), greet(pad("Ada")),
       counter.next(), lazy.greet === greet].join(" "));
  },
};
"#;

fn modules() -> Vec<(&'static str, &'static str)> {
    vec![
        ("src/index.js", ENTRY),
        (
            "src/lib/greet.js",
            "import { prefix } from '../util/prefix.js';\nexport function greet(n) { return prefix + n; }\n",
        ),
        ("src/util/prefix.js", "export const prefix = 'hi ';\n"),
        (
            "src/lib/counter.js",
            "let n = 0;\nexport function next() { n += 1; return n; }\n",
        ),
        (
            "node_modules/left-pad/index.js",
            "export default function pad(s) { return '_' + s; }\n",
        ),
    ]
}

#[test]
fn a_bundle_links_its_modules_and_every_call_starts_from_the_image() {
    let code = bundle("src/index.js", &modules());
    assert!(
        clave_sandbox::check(&code).is_ok(),
        "{:?}",
        clave_sandbox::check(&code)
    );
    for _ in 0..3 {
        // Module state (the counter) is restored with the image on every call.
        assert_eq!(
            call(&code, "https://clave/p/f/items?id=3").expect("runs"),
            "GET /p/f/items 3 hi _Ada 1 true"
        );
    }
}

#[test]
fn imports_that_leave_the_bundle_are_refused() {
    let missing = bundle(
        "index.js",
        &[
            (
                "index.js",
                "import './gone.js';\nexport default { fetch() {} };\n",
            ),
            ("other.js", "export const x = 1;\n"),
        ],
    );
    let e = clave_sandbox::check(&missing).expect_err("missing module");
    assert!(
        e.to_string().contains("\"gone.js\" is not in the bundle"),
        "{e}"
    );
    for spec in [
        "../up.js",
        "node:fs",
        "https://example.com/x.js",
        "clave:prelude",
        "/abs.js",
    ] {
        let code = bundle(
            "index.js",
            &[
                (
                    "index.js",
                    &format!(
                        "import {{ x }} from './a.js';\nimport * as m from {spec:?};\nexport default {{ fetch() {{ return new Response(String(x)); }} }};\n"
                    ),
                ),
                ("a.js", "export const x = 1;\n"),
            ],
        );
        let e = clave_sandbox::check(&code).expect_err(spec);
        assert!(matches!(e, Error::InvalidModule { .. }), "{spec}: {e:?}");
    }
    // One module (not a bundle) importing anything is refused too, with a hint.
    let e = clave_sandbox::check(
        "import { x } from './a.js';\nexport default { fetch() { return new Response(x); } };\n",
    )
    .expect_err("single module import");
    assert!(e.to_string().contains("clave deploy"), "{e}");
    // A dynamic import at call time of a module outside the static graph fails that call only.
    let code = bundle(
        "index.js",
        &[
            (
                "index.js",
                "export default { async fetch() { try { await import('./late.js'); return new Response('loaded'); } catch (e) { return new Response(String(e.message)); } } };\n",
            ),
            ("late.js", "export const x = 1;\n"),
        ],
    );
    let out = call(&code, "https://clave/p/f").expect("runs");
    assert!(out.contains("was not loaded"), "{out}");
}

#[test]
fn a_malformed_bundle_is_an_invalid_module() {
    let code = "\0clave-bundle/1\n8:index.js\n";
    let e = clave_sandbox::check(code).expect_err("malformed");
    assert!(matches!(e, Error::InvalidModule { .. }), "{e:?}");
}
