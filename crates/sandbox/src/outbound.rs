//! Outbound `fetch()`: the interface to the network that the embedder supplies per call
//! ([`Outbound`]), and the host function behind the prelude's `fetch` (`H.fetch`), which shapes
//! each hop (URL checks, redirects, request headers) and hands it to the [`Outbound`].
//!
//! The sandbox itself has no network access: without an [`Outbound`] for the call, `fetch()`
//! rejects. The exchange is synchronous (the JavaScript call blocks), bounded by the call's
//! deadline, which the [`Outbound`] must honour; after it returns, the interrupt handler ends the
//! call if the deadline passed.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use rquickjs::{ArrayBuffer, Ctx, Exception, Function, Object, TypedArray, Value};

use crate::bytes::with_u8;
use crate::host::CallState;

/// Redirects followed by one `fetch()` (each hop is a sub-request of its own).
pub const MAX_REDIRECTS: usize = 10;

/// One HTTPS exchange the function asked for (after redirect handling: one hop).
#[derive(Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    /// Method, e.g. `GET`.
    pub method: String,
    /// Absolute `https:` URL without credentials (checked by the sandbox).
    pub url: url::Url,
    /// Header fields (lower-case names, validated by `Headers`), in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes (empty: no body).
    pub body: Vec<u8>,
}

impl std::fmt::Debug for OutboundRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the URL, headers or body: plaintext of the function.
        f.debug_struct("OutboundRequest")
            .field("headers", &self.headers.len())
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// The answer of one exchange.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboundResponse {
    /// Status code (200..=599; 1xx answers are consumed by the transport).
    pub status: u16,
    /// Reason phrase (Latin-1 text).
    pub status_text: String,
    /// Header fields in order (names lower-case).
    pub headers: Vec<(String, String)>,
    /// Body bytes (transfer coding removed; content coding kept).
    pub body: Vec<u8>,
}

impl std::fmt::Debug for OutboundResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundResponse")
            .field("status", &self.status)
            .field("headers", &self.headers.len())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Why an exchange failed. The message becomes the `TypeError` the function's `fetch()` rejects
/// with (it stays inside the TEE like every script error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OutboundError {
    /// The host is not in the function's outbound list.
    #[error(
        "{host} is not in this function's outbound hosts (the manifest's \"outbound\" list; deploy with --outbound {host})"
    )]
    HostNotAllowed {
        /// The refused host.
        host: String,
    },
    /// The call made its maximum number of sub-requests.
    #[error("this call made its maximum of {limit} sub-requests")]
    TooManySubrequests {
        /// The limit.
        limit: usize,
    },
    /// The request body is larger than the limit.
    #[error("the request body of {size} bytes is larger than the limit of {limit} bytes")]
    RequestTooLarge {
        /// Body size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The response is larger than the limit.
    #[error("the response is larger than the limit of {limit} bytes")]
    ResponseTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The call's deadline passed during the exchange.
    #[error("the call's time limit passed during the request")]
    Timeout,
    /// Resolving or connecting failed (the host's DNS answer or network).
    #[error("could not connect: {0}")]
    Connect(String),
    /// The TLS handshake failed (certificate not valid for the host, expired, unknown issuer, ...).
    #[error("TLS: {0}")]
    Tls(String),
    /// The server's answer is not valid HTTP/1.1.
    #[error("invalid HTTP response: {0}")]
    Protocol(String),
}

/// The network, as the engine provides it for one call: performs one HTTPS exchange, blocking,
/// and must return by `deadline`. Implementations enforce the allowed hosts, the sub-request
/// count and the byte limits.
pub trait Outbound: Send + Sync {
    /// Performs `request` (one hop; redirects are the sandbox's business).
    ///
    /// # Errors
    /// [`OutboundError`] saying why; the sandbox rejects the function's `fetch()` with it.
    fn send(
        &self,
        request: &OutboundRequest,
        deadline: Instant,
    ) -> Result<OutboundResponse, OutboundError>;
}

/// Request headers the transport sets itself (a program's values are dropped).
const TRANSPORT_HEADERS: [&str; 9] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
];

fn type_error<'js>(ctx: &Ctx<'js>, msg: &str) -> rquickjs::Error {
    Exception::throw_type(ctx, &format!("fetch(): {msg}"))
}

/// An `https:` URL without credentials, or the `TypeError` to throw.
fn check_url(u: &url::Url) -> Result<(), String> {
    match u.scheme() {
        "https" => {}
        "http" => {
            return Err(format!(
                "plain http: is refused ({}); use https: (TLS ends inside the TEE)",
                u.host_str().unwrap_or("")
            ));
        }
        other => return Err(format!("the {other}: scheme is not supported; use https:")),
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("URLs with credentials are refused".into());
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    Ok(())
}

/// Installs `H.fetch(method, url, flatHeaders, body, redirect)`: performs the exchange(s) and
/// returns `[status, statusText, flatHeaders, ArrayBuffer | null, url, redirected]`, or throws a
/// `TypeError`.
pub(crate) fn install<'js>(
    ctx: &Ctx<'js>,
    st: &Rc<CallState>,
    host: &Object<'js>,
) -> rquickjs::Result<()> {
    let s = st.clone();
    host.set(
        "fetch",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  method: String,
                  url: String,
                  flat: Vec<String>,
                  body: Value<'js>,
                  redirect: String|
                  -> rquickjs::Result<Vec<Value<'js>>> {
                fetch(&ctx, &s, method, &url, flat, body, &redirect)
            },
        )?,
    )?;
    Ok(())
}

fn fetch<'js>(
    ctx: &Ctx<'js>,
    st: &CallState,
    mut method: String,
    url: &str,
    flat: Vec<String>,
    body: Value<'js>,
    redirect: &str,
) -> rquickjs::Result<Vec<Value<'js>>> {
    if st.evaluating_module.get() {
        return Err(type_error(
            ctx,
            "not allowed at the module's top level; call it while handling a request",
        ));
    }
    let Some(outbound) = st.outbound() else {
        return Err(type_error(
            ctx,
            "this function may not reach any host: its manifest lists no outbound hosts (deploy with --outbound HOST)",
        ));
    };
    let mut body: Vec<u8> = if let Some(text) = body.as_string() {
        let text = st.js_string(ctx, text)?;
        text.into_bytes()
    } else if body.is_null() || body.is_undefined() {
        Vec::new()
    } else {
        let ta = TypedArray::<u8>::from_value(body)?;
        st.charge(ctx, ta.len())?;
        with_u8(&ta, <[u8]>::to_vec).ok_or_else(|| type_error(ctx, "the body is detached"))?
    };
    let mut headers: Vec<(String, String)> = Vec::with_capacity(flat.len() / 2);
    for pair in flat.chunks_exact(2) {
        let name = pair[0].to_ascii_lowercase();
        if TRANSPORT_HEADERS.contains(&name.as_str()) || name == "accept-encoding" {
            continue;
        }
        headers.push((name, pair[1].clone()));
    }
    let mut url = url::Url::parse(url).map_err(|_| type_error(ctx, "invalid URL"))?;
    check_url(&url).map_err(|m| type_error(ctx, &m))?;
    let mut hops = 0usize;
    loop {
        let request = OutboundRequest {
            method: method.clone(),
            url: url.clone(),
            headers: headers.clone(),
            body: std::mem::take(&mut body),
        };
        let response = outbound
            .send(&request, st.deadline())
            .map_err(|e| type_error(ctx, &e.to_string()))?;
        let location = response
            .headers
            .iter()
            .find(|(k, _)| k == "location")
            .map(|(_, v)| v.clone());
        let is_redirect = matches!(response.status, 301 | 302 | 303 | 307 | 308);
        if is_redirect && let Some(location) = location {
            match redirect {
                "manual" => {}
                "error" => {
                    return Err(type_error(
                        ctx,
                        "the server redirected and the request's redirect mode is \"error\"",
                    ));
                }
                _ => {
                    hops += 1;
                    if hops > MAX_REDIRECTS {
                        return Err(type_error(
                            ctx,
                            &format!("more than {MAX_REDIRECTS} redirects"),
                        ));
                    }
                    let next = url
                        .join(&location)
                        .map_err(|_| type_error(ctx, "the redirect location is not a URL"))?;
                    check_url(&next).map_err(|m| type_error(ctx, &format!("redirect: {m}")))?;
                    if next.origin() != url.origin() {
                        headers.retain(|(k, _)| k != "authorization" && k != "cookie");
                    }
                    let to_get = response.status == 303 && method != "HEAD"
                        || matches!(response.status, 301 | 302) && method == "POST";
                    if to_get {
                        method = "GET".into();
                        headers.retain(|(k, _)| !k.starts_with("content-"));
                    } else {
                        body = request.body;
                    }
                    url = next;
                    continue;
                }
            }
        }
        return response_value(ctx, st, response, &url, hops > 0);
    }
}

fn response_value<'js>(
    ctx: &Ctx<'js>,
    st: &CallState,
    response: OutboundResponse,
    url: &url::Url,
    redirected: bool,
) -> rquickjs::Result<Vec<Value<'js>>> {
    let header_bytes: usize = response
        .headers
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    st.charge(
        ctx,
        response
            .body
            .len()
            .saturating_add(header_bytes.saturating_mul(2)),
    )?;
    let mut flat = Vec::with_capacity(response.headers.len() * 2);
    for (k, v) in &response.headers {
        flat.push(str_value(ctx, k)?);
        flat.push(str_value(ctx, v)?);
    }
    let body = if response.body.is_empty() {
        Value::new_null(ctx.clone())
    } else {
        ArrayBuffer::new_copy(ctx.clone(), response.body)?.into_value()
    };
    Ok(vec![
        Value::new_int(ctx.clone(), i32::from(response.status)),
        str_value(ctx, &response.status_text)?,
        array(ctx, flat)?,
        body,
        str_value(ctx, url.as_str())?,
        Value::new_bool(ctx.clone(), redirected),
    ])
}

fn array<'js>(ctx: &Ctx<'js>, items: Vec<Value<'js>>) -> rquickjs::Result<Value<'js>> {
    let a = rquickjs::Array::new(ctx.clone())?;
    for (i, v) in items.into_iter().enumerate() {
        a.set(i, v)?;
    }
    Ok(a.into_value())
}

fn str_value<'js>(ctx: &Ctx<'js>, s: &str) -> rquickjs::Result<Value<'js>> {
    Ok(Value::from_string(rquickjs::String::from_str(
        ctx.clone(),
        s,
    )?))
}

/// The [`Outbound`] of the current call, if any.
pub(crate) type CallOutbound = Option<Arc<dyn Outbound>>;
