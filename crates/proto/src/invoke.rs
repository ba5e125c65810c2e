//! The invoke envelope: a BHTTP (RFC 9292) request inside OHTTP (RFC 9458), and the
//! BHTTP response (or encrypted problem JSON, RFC 9457) under the request's response context.
//!
//! Inner request: `METHOD https://clave/{project}/{function}[/path][?query]` (the method and the
//! path and query after the function name are the caller's, handed to the function as
//! `request.method` and `request.url`), known-length BHTTP, headers
//! `clave-code-hash: <64 lowercase hex>` and `date: <unix seconds, decimal>` (an RFC 9110 HTTP-date
//! is accepted too), optionally
//! `clave-mode: async` (the caller asked for an asynchronous call; the marker is sealed, so the
//! platform cannot relabel a synchronous request), plus the caller's own headers (e.g.
//! `content-type`), body = content.

use std::fmt;
use std::io::Cursor;

use rand_core::CryptoRng;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::ohttp::{
    ClientResponseContext, KeyConfig, ServerKey, ServerResponseContext, client_encapsulate,
    server_decapsulate,
};
use crate::types::{CodeHash, FunctionName, ProjectName};

mod problem;
pub use problem::{InvokeError, ProblemKind};

/// Header carrying the code hash the user expects.
pub const HEADER_CODE_HASH: &str = "clave-code-hash";
/// Header carrying the request time: unix seconds as decimal digits (accepted too: an HTTP-date).
pub const HEADER_DATE: &str = "date";
/// Header carrying the invocation mode; present only as `clave-mode: async` (absent = synchronous).
pub const HEADER_MODE: &str = "clave-mode";
/// Header marking an engine error response; its value is the problem slug.
pub const HEADER_ERROR: &str = "clave-error";
/// Prefix reserved for clave headers.
pub const RESERVED_PREFIX: &str = "clave-";
/// Scheme of the inner request.
pub const SCHEME: &str = "https";
/// Authority of the inner request.
pub const AUTHORITY: &str = "clave";
/// Media type of problem details.
pub const MEDIA_TYPE_PROBLEM: &str = "application/problem+json";
/// URI prefix of clave problem types.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:clave:error:";

/// How the caller asked for its request to be run, sealed inside the request so that the
/// untrusted platform cannot change it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum InvokeMode {
    /// Sent to the synchronous invoke route; the engine accepts it only within its synchronous
    /// date window (default ±60 s).
    #[default]
    Sync,
    /// Sent to the asynchronous route (`?mode=async`): it may wait in the durable queue, so the
    /// engine accepts it within the wider asynchronous date window.
    Async,
}

impl InvokeMode {
    /// The `clave-mode` header value, or `None` for the default (synchronous, no header).
    #[must_use]
    pub fn header_value(self) -> Option<&'static str> {
        match self {
            Self::Sync => None,
            Self::Async => Some("async"),
        }
    }
}

/// A user's call of a function (the inner request).
#[derive(Clone, PartialEq, Eq)]
pub struct InvokeRequest {
    /// Project.
    pub project: ProjectName,
    /// Function.
    pub function: FunctionName,
    /// The code hash the caller pinned; the engine refuses any other code.
    pub code_hash: CodeHash,
    /// Request time, unix seconds (the engine rejects stale dates).
    pub date: u64,
    /// Synchronous (default) or asynchronous; sealed, so only the caller sets it.
    pub mode: InvokeMode,
    /// HTTP method the function sees (`POST` by default); an RFC 9110 token.
    pub method: String,
    /// Path and query after `/{project}/{function}` that the function sees in `request.url`:
    /// empty, or starting with `/` or `?` (e.g. `/items?id=3`); visible ASCII without `#`.
    pub target: String,
    /// Other headers, names lowercase (e.g. `content-type`); `clave-*` and `date` are reserved.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Vec<u8>,
}

impl fmt::Debug for InvokeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvokeRequest")
            .field("project", &self.project)
            .field("function", &self.function)
            .field("code_hash", &self.code_hash)
            .field("date", &self.date)
            .field("mode", &self.mode)
            .field("target_len", &self.target.len())
            .field("headers", &self.headers.len())
            .field("body_len", &self.body.len())
            .finish()
    }
}

fn is_reserved(name: &str) -> bool {
    is_clave(name) || name.eq_ignore_ascii_case(HEADER_DATE)
}

/// Method of a request made without one (`clave invoke` without `--method`).
pub const DEFAULT_METHOD: &str = "POST";
/// Longest [`InvokeRequest::target`], bytes.
pub const MAX_TARGET_BYTES: usize = 8192;

/// Check a method: an RFC 9110 token of at most 32 characters.
///
/// # Errors
/// [`Error::InvalidMethod`].
pub fn check_method(m: &[u8]) -> Result<()> {
    let tchar = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    if m.is_empty() || m.len() > 32 || !m.iter().all(tchar) {
        return Err(Error::InvalidMethod);
    }
    Ok(())
}

/// Check a path and query ([`InvokeRequest::target`]): empty, or `/…` or `?…` of visible ASCII
/// other than `#`, at most [`MAX_TARGET_BYTES`].
///
/// # Errors
/// [`Error::InvalidTarget`] saying which rule was broken.
pub fn check_target(t: &str) -> Result<()> {
    if t.len() > MAX_TARGET_BYTES {
        return Err(Error::InvalidTarget {
            reason: "the path and query are longer than 8192 bytes",
        });
    }
    if !(t.is_empty() || t.starts_with('/') || t.starts_with('?')) {
        return Err(Error::InvalidTarget {
            reason: "the path after the function name must start with / or ?",
        });
    }
    if !t.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'#') {
        return Err(Error::InvalidTarget {
            reason: "the path and query must be visible ASCII without # (percent-encode the rest)",
        });
    }
    Ok(())
}

fn bhttp_err(e: bhttp::Error) -> Error {
    Error::Bhttp(e.to_string())
}

/// Parse one BHTTP message (known or indeterminate length, possibly truncated); only zero
/// padding may follow it (RFC 9292 §3.8).
pub fn decode_bhttp(bytes: &[u8]) -> Result<bhttp::Message> {
    read_message(bytes)
}

fn read_message(bytes: &[u8]) -> Result<bhttp::Message> {
    let mut cursor = Cursor::new(bytes);
    let msg = bhttp::Message::read_bhttp::<Cursor<&[u8]>, Cursor<&[u8]>>(&mut cursor)
        .map_err(bhttp_err)?;
    let pos = usize::try_from(cursor.position())
        .unwrap_or(bytes.len())
        .min(bytes.len());
    let rest = &bytes[pos..];
    if rest.iter().any(|b| *b != 0) {
        return Err(Error::TrailingBytes {
            what: "binary HTTP message",
            count: rest.len(),
        });
    }
    Ok(msg)
}

fn text(b: &[u8]) -> Result<String> {
    String::from_utf8(b.to_vec()).map_err(|_| Error::InvalidHeaderText)
}

fn single<'a>(fields: &'a bhttp::FieldSection, name: &'static str) -> Result<&'a [u8]> {
    let mut it = fields.get_all(name.as_bytes());
    let first = it.next().ok_or(Error::MissingHeader(name))?;
    if it.next().is_some() {
        return Err(Error::InvalidHeader {
            name,
            reason: "repeated",
        });
    }
    Ok(first)
}

/// The `date` header: decimal unix seconds (what clave's clients send; no sign, no leading zeros), or
/// an RFC 9110 HTTP-date as any HTTP client writes it (IMF-fixdate `Sun, 06 Dec 2026 23:59:00 GMT`;
/// the obsolete RFC 850 and asctime forms, which RFC 9110 §5.6.7 says recipients accept, too).
fn parse_date(v: &[u8]) -> Result<u64> {
    let bad = Error::InvalidHeader {
        name: HEADER_DATE,
        reason: "neither decimal unix seconds nor an HTTP-date",
    };
    let s = std::str::from_utf8(v).map_err(|_| bad.clone())?;
    if s.bytes().all(|b| b.is_ascii_digit()) {
        if s.is_empty() || s.len() > 20 || (s.len() > 1 && s.starts_with('0')) {
            return Err(bad);
        }
        return s.parse().map_err(|_| bad);
    }
    let t = httpdate::parse_http_date(s).map_err(|_| bad.clone())?;
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| bad)
}

impl InvokeRequest {
    /// A request with no extra headers.
    #[must_use]
    pub fn new(
        project: ProjectName,
        function: FunctionName,
        code_hash: CodeHash,
        date: u64,
        body: Vec<u8>,
    ) -> Self {
        Self {
            project,
            function,
            code_hash,
            date,
            mode: InvokeMode::Sync,
            method: DEFAULT_METHOD.to_owned(),
            target: String::new(),
            headers: Vec::new(),
            body,
        }
    }

    /// The same request with another method and path-and-query (see [`InvokeRequest::target`]).
    ///
    /// # Errors
    /// A method that is not an HTTP token, or a target that is not empty and does not start with
    /// `/` or `?`, holds a character outside visible ASCII or `#`, or is longer than
    /// [`MAX_TARGET_BYTES`].
    pub fn with_target(mut self, method: &str, target: &str) -> Result<Self> {
        check_method(method.as_bytes())?;
        check_target(target)?;
        self.method = method.to_owned();
        self.target = target.to_owned();
        Ok(self)
    }

    /// The same request marked for asynchronous invocation (`?mode=async`).
    #[must_use]
    pub fn asynchronous(mut self) -> Self {
        self.mode = InvokeMode::Async;
        self
    }

    /// The inner path, `/{project}/{function}` followed by [`InvokeRequest::target`].
    #[must_use]
    pub fn path(&self) -> String {
        format!("/{}/{}{}", self.project, self.function, self.target)
    }

    /// Encode as known-length BHTTP. Fails on reserved or non-token header names.
    pub fn to_bhttp(&self) -> Result<Vec<u8>> {
        check_method(self.method.as_bytes())?;
        check_target(&self.target)?;
        let mut m = bhttp::Message::request(
            self.method.as_bytes().to_vec(),
            SCHEME.as_bytes().to_vec(),
            AUTHORITY.as_bytes().to_vec(),
            self.path().into_bytes(),
        );
        m.put_header(HEADER_CODE_HASH, self.code_hash.to_hex());
        m.put_header(HEADER_DATE, self.date.to_string());
        if let Some(mode) = self.mode.header_value() {
            m.put_header(HEADER_MODE, mode);
        }
        for (name, value) in &self.headers {
            if is_reserved(name) {
                return Err(Error::InvalidHeader {
                    name: "clave-*/date",
                    reason: "reserved",
                });
            }
            m.put_header(name.to_ascii_lowercase(), value.as_bytes());
        }
        m.write_content(&self.body);
        let mut out = Vec::new();
        m.write_bhttp(bhttp::Mode::KnownLength, &mut out)
            .map_err(bhttp_err)?;
        Ok(out)
    }

    /// Parse the inner BHTTP request (known or indeterminate length).
    pub fn from_bhttp(bytes: &[u8]) -> Result<Self> {
        let m = read_message(bytes)?;
        let bhttp::ControlData::Request {
            method,
            scheme,
            authority,
            path,
        } = m.control()
        else {
            return Err(Error::UnexpectedMessage {
                expected: "request",
            });
        };
        check_method(method)?;
        if scheme.as_slice() != SCHEME.as_bytes() || authority.as_slice() != AUTHORITY.as_bytes() {
            return Err(Error::InvalidTarget {
                reason: "scheme and authority must be https://clave",
            });
        }
        let path = std::str::from_utf8(path).map_err(|_| Error::InvalidTarget {
            reason: "path not UTF-8",
        })?;
        let rest = path.strip_prefix('/').ok_or(Error::InvalidTarget {
            reason: "path must start with /",
        })?;
        let (p, rest) = rest.split_once('/').ok_or(Error::InvalidTarget {
            reason: "path must be /{project}/{function}[/path][?query]",
        })?;
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (f, target) = rest.split_at(end);
        check_target(target)?;
        let project: ProjectName = p.parse()?;
        let function: FunctionName = f.parse()?;
        let fields = m.header();
        let hash_text = text(single(fields, HEADER_CODE_HASH)?)?;
        let code_hash: CodeHash = hash_text.parse().map_err(|_| Error::InvalidHeader {
            name: HEADER_CODE_HASH,
            reason: "not 64 lowercase hex digits",
        })?;
        let date = parse_date(single(fields, HEADER_DATE)?)?;
        let mode = match single(fields, HEADER_MODE) {
            Err(Error::MissingHeader(_)) => InvokeMode::Sync,
            Err(e) => return Err(e),
            Ok(b"async") => InvokeMode::Async,
            Ok(_) => {
                return Err(Error::InvalidHeader {
                    name: HEADER_MODE,
                    reason: "the only value is async",
                });
            }
        };
        let mut headers = Vec::new();
        for field in fields.iter() {
            let name = text(field.name())?;
            if name == HEADER_CODE_HASH || name == HEADER_DATE || name == HEADER_MODE {
                continue;
            }
            if is_reserved(&name) {
                return Err(Error::InvalidHeader {
                    name: "clave-*",
                    reason: "reserved",
                });
            }
            headers.push((name, text(field.value())?));
        }
        Ok(Self {
            project,
            function,
            code_hash,
            date,
            mode,
            method: String::from_utf8_lossy(method).into_owned(),
            target: target.to_owned(),
            headers,
            body: m.content().to_vec(),
        })
    }

    /// The value of header `name` (case-insensitive), if present.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// A function's response (the inner response).
#[derive(Clone, PartialEq, Eq)]
pub struct InvokeResponse {
    /// HTTP status, 200..=599.
    pub status: u16,
    /// Headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl fmt::Debug for InvokeResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvokeResponse")
            .field("status", &self.status)
            .field("headers", &self.headers.len())
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl InvokeResponse {
    /// Encode as known-length BHTTP, dropping any `clave-*` header (reserved for the engine).
    pub fn to_bhttp(&self) -> Result<Vec<u8>> {
        encode_response(self.status, self.sent_headers(), &self.body)
    }

    /// The headers [`Self::to_bhttp`] encodes: all but `clave-*` ones.
    fn sent_headers(&self) -> impl Iterator<Item = &(String, String)> + Clone {
        self.headers.iter().filter(|(n, _)| !is_clave(n))
    }

    /// The value of header `name` (case-insensitive), if present.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// The value of the first header called `name` (case-insensitive), if any.
fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn is_clave(name: &str) -> bool {
    name.as_bytes()
        .get(..RESERVED_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(RESERVED_PREFIX.as_bytes()))
}

fn encode_response<'a>(
    status: u16,
    headers: impl Iterator<Item = &'a (String, String)> + Clone,
    body: &[u8],
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(response_len(headers.clone(), body));
    write_response(&mut out, status, headers, body)?;
    Ok(out)
}

/// Bytes of the shortest QUIC variable-length integer (RFC 9000 §16) holding `v`; 8 for values
/// of 2^62 and more too, which no varint holds ([`put_varint`] refuses them).
fn varint_len(v: usize) -> usize {
    match v {
        0..0x40 => 1,
        0x40..0x4000 => 2,
        0x4000..0x4000_0000 => 4,
        _ => 8,
    }
}

/// Appends `v` as the shortest QUIC variable-length integer (as BHTTP writers do).
fn put_varint(out: &mut Vec<u8>, v: usize) -> Result<()> {
    let v = u64::try_from(v).map_err(|_| Error::Internal("length beyond 2^62"))?;
    match v {
        0..0x40 => out.push(v as u8),
        0x40..0x4000 => out.extend_from_slice(&(v as u16 | 0x4000).to_be_bytes()),
        0x4000..0x4000_0000 => out.extend_from_slice(&(v as u32 | 0x8000_0000).to_be_bytes()),
        0x4000_0000..0x4000_0000_0000_0000 => {
            out.extend_from_slice(&(v | 0xc000_0000_0000_0000).to_be_bytes());
        }
        _ => return Err(Error::Internal("length beyond 2^62")),
    }
    Ok(())
}

fn field_section_len<'a>(headers: impl Iterator<Item = &'a (String, String)>) -> usize {
    headers
        .map(|(n, v)| varint_len(n.len()) + n.len() + varint_len(v.len()) + v.len())
        .sum()
}

/// Bytes [`write_response`] writes (exactly).
fn response_len<'a>(headers: impl Iterator<Item = &'a (String, String)>, body: &[u8]) -> usize {
    let fields = field_section_len(headers);
    1 + 2 + varint_len(fields) + fields + varint_len(body.len()) + body.len() + 1
}

/// A function's response status must be final (not informational) and at most 599.
fn check_status(status: u16) -> Result<()> {
    if (200..=599).contains(&status) {
        Ok(())
    } else {
        Err(Error::InvalidStatus(status))
    }
}

/// Appends the known-length BHTTP response (RFC 9292 §3): framing indicator 1, the status, the
/// header section with names in lower case, the content and an empty trailer section; the same
/// bytes as the `bhttp` crate writes for it (tested), without building a message first.
fn write_response<'a>(
    out: &mut Vec<u8>,
    status: u16,
    headers: impl Iterator<Item = &'a (String, String)> + Clone,
    body: &[u8],
) -> Result<()> {
    check_status(status)?;
    out.push(1);
    put_varint(out, usize::from(status))?;
    put_varint(out, field_section_len(headers.clone()))?;
    for (name, value) in headers {
        put_varint(out, name.len())?;
        out.extend(name.bytes().map(|b| b.to_ascii_lowercase()));
        put_varint(out, value.len())?;
        out.extend_from_slice(value.as_bytes());
    }
    put_varint(out, body.len())?;
    out.extend_from_slice(body);
    out.push(0);
    Ok(())
}

/// Client side: build, encode and encapsulate `req` to the invoke key `config`.
pub fn seal_invoke(
    config: &KeyConfig,
    req: &InvokeRequest,
    rng: &mut impl CryptoRng,
) -> Result<(Vec<u8>, InvokeResponseOpener)> {
    let bhttp = req.to_bhttp()?;
    let (enc, ctx) = client_encapsulate(config, &bhttp, rng)?;
    Ok((enc, InvokeResponseOpener { ctx }))
}

/// [`seal_invoke`] with an encapsulation prepared ahead ([`crate::ohttp::prepare_request`]) for
/// the key configuration the request goes to: the X25519 work is then already done.
///
/// # Errors
/// As [`seal_invoke`].
pub fn seal_invoke_prepared(
    prepared: crate::ohttp::PreparedRequest,
    req: &InvokeRequest,
) -> Result<(Vec<u8>, InvokeResponseOpener)> {
    let bhttp = req.to_bhttp()?;
    let (enc, ctx) = prepared.encapsulate(&bhttp)?;
    Ok((enc, InvokeResponseOpener { ctx }))
}

/// Client state for one invocation's response. `Debug` prints no secret.
#[derive(Debug)]
pub struct InvokeResponseOpener {
    ctx: ClientResponseContext,
}

impl InvokeResponseOpener {
    /// Decrypt and parse the response: `Ok(Ok(response))` for the function's answer,
    /// `Ok(Err(problem))` for an engine error, `Err(_)` when the bytes are not a valid response
    /// to this request.
    pub fn open(
        &self,
        enc_response: &[u8],
    ) -> Result<std::result::Result<InvokeResponse, InvokeError>> {
        let bhttp = self.ctx.open(enc_response)?;
        let m = read_message(&bhttp)?;
        let bhttp::ControlData::Response(status) = m.control() else {
            return Err(Error::UnexpectedMessage {
                expected: "response",
            });
        };
        let status = status.code();
        if !(200..=599).contains(&status) {
            return Err(Error::InvalidStatus(status));
        }
        if m.header().get(HEADER_ERROR.as_bytes()).is_some() {
            return Ok(Err(InvokeError::from_problem_json(m.content())?));
        }
        let mut headers = Vec::new();
        for field in m.header().iter() {
            headers.push((text(field.name())?, text(field.value())?));
        }
        Ok(Ok(InvokeResponse {
            status,
            headers,
            body: m.content().to_vec(),
        }))
    }
}

/// A per-request replay identifier: SHA-256 of the request's encapsulated key `enc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplayId(pub [u8; 32]);

/// Server state for answering one invocation. `Debug` prints no secret.
#[derive(Debug)]
pub struct InvokeResponder {
    ctx: ServerResponseContext,
}

impl InvokeResponder {
    /// The replay identifier of the request (SHA-256 of its `enc`).
    #[must_use]
    pub fn replay_id(&self) -> ReplayId {
        ReplayId(Sha256::digest(self.ctx.enc()).into())
    }

    /// Encapsulate the function's response (`clave-*` headers are dropped).
    pub fn seal_response(
        &self,
        resp: &InvokeResponse,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<u8>> {
        check_status(resp.status)?;
        let len = response_len(resp.sent_headers(), &resp.body);
        self.ctx.encapsulate_written(len, rng, |out| {
            let start = out.len();
            write_response(out, resp.status, resp.sent_headers(), &resp.body)?;
            debug_assert_eq!(out.len() - start, len, "response_len is exact");
            Ok(())
        })
    }

    /// Encapsulate an engine error as problem JSON with the `clave-error` marker header.
    pub fn seal_error(&self, problem: &InvokeError, rng: &mut impl CryptoRng) -> Result<Vec<u8>> {
        let headers = [
            ("content-type".to_owned(), MEDIA_TYPE_PROBLEM.to_owned()),
            (HEADER_ERROR.to_owned(), problem.kind.slug().to_owned()),
        ];
        let bhttp = encode_response(problem.status, headers.iter(), &problem.to_problem_json())?;
        self.ctx.encapsulate(&bhttp, rng)
    }
}

/// Server side, step 1: decapsulate with the matching key. The BHTTP bytes are not parsed yet,
/// so that a malformed inner request can still be answered with an encrypted error.
pub fn decapsulate_invoke(
    keys: &[ServerKey],
    enc_request: &[u8],
) -> Result<(Vec<u8>, InvokeResponder)> {
    let (bhttp, ctx) = server_decapsulate(keys, enc_request)?;
    Ok((bhttp, InvokeResponder { ctx }))
}

/// Server side: decapsulate and parse into a typed request.
pub fn open_invoke(
    keys: &[ServerKey],
    enc_request: &[u8],
) -> Result<(InvokeRequest, InvokeResponder)> {
    let (bhttp, responder) = decapsulate_invoke(keys, enc_request)?;
    Ok((InvokeRequest::from_bhttp(&bhttp)?, responder))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt as _, SeedableRng as _};

    /// What the `bhttp` crate writes for the response (the encoder this one replaced).
    fn bhttp_crate_bytes(status: u16, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
        let mut m = bhttp::Message::response(bhttp::StatusCode::try_from(status).expect("status"));
        for (name, value) in headers {
            m.put_header(name.to_ascii_lowercase(), value.as_bytes());
        }
        m.write_content(body);
        let mut out = Vec::new();
        m.write_bhttp(bhttp::Mode::KnownLength, &mut out)
            .expect("write");
        out
    }

    #[test]
    fn the_response_encoder_writes_what_the_bhttp_crate_writes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9292);
        // Lengths on both sides of every varint size boundary that fits in memory here.
        let sizes = [0, 1, 63, 64, 65, 300, 16_383, 16_384, 70_000];
        for round in 0..400 {
            let status = rng.random_range(200..=599);
            let n = rng.random_range(0..6);
            let headers: Vec<(String, String)> = (0..n)
                .map(|_| {
                    let name_len = sizes[rng.random_range(0..5)].max(1);
                    let name: String = (0..name_len)
                        .map(|_| char::from(rng.random_range(b'A'..=b'z')))
                        .collect();
                    let value = "v".repeat(sizes[rng.random_range(0..sizes.len())]);
                    (name, value)
                })
                .collect();
            let body: Vec<u8> = (0..sizes[round % sizes.len()])
                .map(|_| rng.random())
                .collect();
            let want = bhttp_crate_bytes(status, &headers, &body);
            let got = encode_response(status, headers.iter(), &body).expect("encode");
            assert_eq!(
                got,
                want,
                "status {status}, {n} headers, {} body bytes",
                body.len()
            );
            assert_eq!(response_len(headers.iter(), &body), want.len());
            // And it parses back.
            let m = read_message(&got).expect("parse");
            assert_eq!(m.content(), &body[..]);
            assert_eq!(m.header().len(), headers.len());
        }
    }

    #[test]
    fn the_response_encoder_refuses_a_status_outside_200_to_599() {
        for status in [0, 100, 199, 600, 999, u16::MAX] {
            assert!(matches!(
                encode_response(status, [].iter(), b""),
                Err(Error::InvalidStatus(s)) if s == status
            ));
        }
    }

    #[test]
    fn varints_take_the_shortest_form() {
        for (v, want) in [
            (0usize, &[0u8][..]),
            (63, &[0x3f]),
            (64, &[0x40, 0x40]),
            (16_383, &[0x7f, 0xff]),
            (16_384, &[0x80, 0, 0x40, 0]),
            (0x3fff_ffff, &[0xbf, 0xff, 0xff, 0xff]),
            (0x4000_0000, &[0xc0, 0, 0, 0, 0x40, 0, 0, 0]),
            ((1 << 62) - 1, &[0xff; 8]),
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v).expect("varint");
            assert_eq!(out, want, "{v}");
            assert_eq!(varint_len(v), want.len());
        }
        assert!(put_varint(&mut Vec::new(), 1 << 62).is_err());
    }

    /// A server's response context for a fresh request to a fixed key.
    fn response_context() -> (
        crate::ohttp::ServerResponseContext,
        crate::ohttp::ClientResponseContext,
    ) {
        use crate::ohttp::{Kem, PrivateKey, ServerKey, SymmetricSuite};
        let private = PrivateKey::derive(Kem::X25519HkdfSha256, &[5; 32]);
        let config = KeyConfig::new(
            crate::types::KeyId(3),
            Kem::X25519HkdfSha256,
            private.public_key(),
            vec![SymmetricSuite::DEFAULT],
        )
        .expect("config");
        let key = ServerKey::new(config.clone(), private).expect("key");
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let (enc, client) =
            crate::ohttp::client_encapsulate(&config, b"request", &mut rng).expect("encapsulate");
        let (_, server) = key.decapsulate(&enc).expect("decapsulate");
        (server, client)
    }

    #[test]
    fn a_response_writer_may_only_append_after_the_nonce() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let (server, client) = response_context();
        let sealed = server
            .encapsulate_written(4, &mut rng, |out| {
                out.extend_from_slice(b"resp");
                Ok(())
            })
            .expect("an appending writer");
        assert_eq!(client.open(&sealed).expect("open"), b"resp");
        // A writer that replaced the buffer (its first bytes would go out where the nonce
        // stands, in the clear) or cut into the nonce is refused.
        for tamper in [
            (|out: &mut Vec<u8>| {
                out.clear();
                out.extend_from_slice(b"plaintext in the clear!");
            }) as fn(&mut Vec<u8>),
            |out| out.truncate(3),
            |out| out[0] ^= 1,
        ] {
            let (server, _) = response_context();
            let r = server.encapsulate_written(0, &mut rng, |out| {
                tamper(out);
                Ok(())
            });
            assert!(matches!(r, Err(Error::Internal(_))), "{r:?}");
        }
        // A writer's own error comes back as it was.
        let (server, _) = response_context();
        let r = server.encapsulate_written(0, &mut rng, |_| Err(Error::InvalidStatus(7)));
        assert!(matches!(r, Err(Error::InvalidStatus(7))));
    }

    #[test]
    fn the_response_encoder_agrees_on_unusual_names_too() {
        // Empty and non-ASCII names (a function may send any string), mixed case.
        let headers = [
            (String::new(), "empty name".to_owned()),
            ("X-Ünï".to_owned(), "ü".to_owned()),
            ("Content-Type".to_owned(), String::new()),
        ];
        let want = bhttp_crate_bytes(201, &headers, b"body");
        assert_eq!(
            encode_response(201, headers.iter(), b"body").expect("encode"),
            want
        );
        assert_eq!(response_len(headers.iter(), b"body"), want.len());
    }

    #[test]
    fn reserved_request_headers_are_recognised_in_any_case() {
        for name in [
            "date",
            "Date",
            "DATE",
            "clave-mode",
            "CLAVE-Code-Hash",
            "clave-",
        ] {
            assert!(is_reserved(name), "{name}");
        }
        for name in ["dates", "x-date", "dat", "clave", "x-clave-mode", ""] {
            assert!(!is_reserved(name), "{name}");
        }
    }

    #[test]
    fn clave_headers_are_recognised_in_any_case_without_allocating() {
        assert!(is_clave("clave-error"));
        assert!(is_clave("Clave-Code-Hash"));
        assert!(is_clave("CLAVE-"));
        assert!(!is_clave("clave"));
        assert!(!is_clave("x-clave-error"));
        assert!(!is_clave(""));
    }
}
