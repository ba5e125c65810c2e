//! The web page of `clave dev` (at `/` and `/ui/`): lists the dev project's functions, verifies the
//! platform's attestation in the browser and invokes a function sealed in the browser, with the
//! JavaScript SDK of `sdk/js` (its compiled `dist/` is embedded here, served under `/ui/sdk/`).
//!
//! The page trusts nothing this process says: it verifies the evidence and the key bundles itself
//! (pinned to the published dev measurements, which it computes from their labels), and the only
//! extra route, `/ui/functions.json`, lists names and the *claimed* active code hashes (what the
//! operator sees anyway; the engine checks the pin).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clave_gateway::Store;

/// Embeds `sdk/js/dist/<file>` for each file name.
macro_rules! sdk_modules {
    ($($file:literal),* $(,)?) => {
        &[$(($file, include_str!(concat!("../../../sdk/js/dist/", $file)))),*]
    };
}

/// The compiled SDK modules, by file name (`sdk/js/test/embed.test.js` checks that every module
/// of `dist/` is listed).
const SDK: &[(&str, &str)] = sdk_modules![
    "bhttp.js",
    "bundle.js",
    "bytes.js",
    "cbor.js",
    "client.js",
    "errors.js",
    "evidence.js",
    "hpke.js",
    "index.js",
    "nitro.js",
    "ohttp.js",
    "policy.js",
    "roots.js",
    "snp.js",
    "trust.js",
    "x509.js",
];

const INDEX_HTML: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");

/// Content-Security-Policy of every page response: only this origin, no inline script.
const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

#[derive(Clone)]
struct PageState {
    store: Store,
    project: String,
}

/// The routes of the page, to merge next to the gateway API (`clave_gateway::serve_with`).
pub fn router(store: Store, project: &str) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route("/ui/app.js", get(app_js))
        .route("/ui/sdk/{file}", get(sdk_file))
        .route("/ui/functions.json", get(functions))
        .with_state(PageState {
            store,
            project: project.to_owned(),
        })
}

fn with_headers(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

async fn index() -> Response {
    with_headers("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> Response {
    with_headers("text/javascript; charset=utf-8", APP_JS)
}

async fn sdk_file(Path(file): Path<String>) -> Response {
    match SDK.iter().find(|(name, _)| *name == file) {
        Some((_, body)) => with_headers("text/javascript; charset=utf-8", body),
        None => (StatusCode::NOT_FOUND, "no such SDK module").into_response(),
    }
}

async fn functions(State(s): State<PageState>) -> Response {
    match s.store.list_functions(&s.project).await {
        Ok(list) => {
            let mut r = axum::Json(list).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => {
            tracing::warn!(error = %e, "page: cannot list functions");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot list functions").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_import_of_the_sdk_is_embedded() {
        for (_, body) in SDK {
            for line in body.lines() {
                let Some(rest) = line.split(" from \"./").nth(1) else {
                    continue;
                };
                let file = rest.split('"').next().unwrap_or_default();
                assert!(
                    SDK.iter().any(|(n, _)| *n == file),
                    "{file} is imported but not embedded"
                );
            }
        }
    }
}
