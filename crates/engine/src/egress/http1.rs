//! One HTTP/1.1 exchange over a TLS stream (`connection: close`): the request head the engine
//! writes, and the response read within the byte limit and the deadline.

use std::io::{Read, Write};
use std::time::Instant;

use clave_sandbox::{OutboundError, OutboundRequest, OutboundResponse};

use super::conn::{TlsStream, io_error};

/// Largest response head, bytes.
const MAX_HEAD: usize = 64 << 10;
/// Most response header fields.
const MAX_HEADERS: usize = 128;
/// Longest chunk-size line of a chunked body.
const MAX_CHUNK_LINE: usize = 1024;

fn token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The request head: request line, `host`, the function's fields, `accept-encoding: identity`
/// (bodies are not decompressed), `connection: close` and `content-length`.
pub(super) fn request_head(req: &OutboundRequest, host: &str) -> Result<Vec<u8>, OutboundError> {
    if !token(&req.method) {
        return Err(OutboundError::Protocol(
            "the method is not a valid token".into(),
        ));
    }
    let mut target = req.url.path().to_owned();
    if let Some(q) = req.url.query() {
        target.push('?');
        target.push_str(q);
    }
    let authority = match req.url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let mut head = format!("{} {target} HTTP/1.1\r\nhost: {authority}\r\n", req.method);
    for (k, v) in &req.headers {
        if !token(k) || v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(OutboundError::Protocol(format!(
                "the request header {k:?} is not valid"
            )));
        }
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str("accept-encoding: identity\r\nconnection: close\r\n");
    if !req.body.is_empty() || matches!(req.method.as_str(), "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("content-length: {}\r\n", req.body.len()));
    }
    head.push_str("\r\n");
    Ok(head.into_bytes())
}

/// Reads with the deadline; `Ok(0)` at a clean end (TLS close_notify or a TCP close the caller
/// may accept).
fn read_some(s: &mut TlsStream, buf: &mut [u8], deadline: Instant) -> Result<usize, OutboundError> {
    match s.read(buf) {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(OutboundError::Protocol(
            "the server closed the connection without TLS close_notify (the response may be cut)"
                .into(),
        )),
        Err(e) => Err(io_error(&e, deadline)),
    }
}

/// Buffered reading from the TLS stream with the byte limit of the whole response.
struct Reader {
    s: TlsStream,
    buf: Vec<u8>,
    pos: usize,
    /// Bytes read from the stream so far.
    total: usize,
    limit: usize,
    deadline: Instant,
}

impl Reader {
    /// Reads more into the buffer; false at the end of the stream.
    fn fill(&mut self) -> Result<bool, OutboundError> {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let mut chunk = [0u8; 16 << 10];
        let n = read_some(&mut self.s, &mut chunk, self.deadline)?;
        if n == 0 {
            return Ok(false);
        }
        self.total = self.total.saturating_add(n);
        if self.total > self.limit {
            return Err(OutboundError::ResponseTooLarge { limit: self.limit });
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(true)
    }

    fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Up to `n` bytes into `out`; errors at a premature end.
    fn take_exact(&mut self, mut n: usize, out: &mut Vec<u8>) -> Result<(), OutboundError> {
        while n > 0 {
            if self.available().is_empty() && !self.fill()? {
                return Err(OutboundError::Protocol(
                    "the connection ended inside the body".into(),
                ));
            }
            let k = n.min(self.available().len());
            out.extend_from_slice(&self.buf[self.pos..self.pos + k]);
            self.pos += k;
            n -= k;
        }
        Ok(())
    }

    /// One CRLF-terminated line (without it), at most `max` bytes.
    fn line(&mut self, max: usize) -> Result<Vec<u8>, OutboundError> {
        loop {
            if let Some(i) = self.available().windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[self.pos..self.pos + i].to_vec();
                self.pos += i + 2;
                return Ok(line);
            }
            if self.available().len() > max {
                return Err(OutboundError::Protocol("a chunk line is too long".into()));
            }
            if !self.fill()? {
                return Err(OutboundError::Protocol(
                    "the connection ended inside a chunked body".into(),
                ));
            }
        }
    }
}

/// Parsed head: status, reason, fields, and its length in the buffer.
type Head = (u16, String, Vec<(String, String)>, usize);

fn parse_head(buf: &[u8]) -> Result<Option<Head>, OutboundError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let n = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(OutboundError::Protocol(e.to_string())),
    };
    let status = resp.code.unwrap_or(0);
    // The reason phrase as Latin-1 text (what `Response.statusText` allows).
    let reason: String = resp
        .reason
        .unwrap_or("")
        .chars()
        .filter(|c| *c == '\t' || (' '..='~').contains(c))
        .collect();
    let mut fields = Vec::with_capacity(resp.headers.len());
    for h in resp.headers.iter() {
        let value: String = h.value.iter().map(|b| char::from(*b)).collect();
        fields.push((h.name.to_ascii_lowercase(), value));
    }
    Ok(Some((status, reason, fields, n)))
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Writes the request and reads the response (skipping 1xx answers).
pub(super) fn exchange(
    mut s: TlsStream,
    head: &[u8],
    body: &[u8],
    method: &str,
    limit: usize,
    deadline: Instant,
) -> Result<OutboundResponse, OutboundError> {
    s.write_all(head).map_err(|e| io_error(&e, deadline))?;
    s.write_all(body).map_err(|e| io_error(&e, deadline))?;
    s.flush().map_err(|e| io_error(&e, deadline))?;
    let mut r = Reader {
        s,
        buf: Vec::with_capacity(16 << 10),
        pos: 0,
        total: 0,
        limit,
        deadline,
    };
    let (status, reason, fields) = loop {
        match parse_head(r.available())? {
            Some((status, reason, fields, n)) => {
                r.pos += n;
                if (100..200).contains(&status) {
                    continue;
                }
                break (status, reason, fields);
            }
            None => {
                if r.available().len() > MAX_HEAD {
                    return Err(OutboundError::Protocol(
                        "the response head is too long".into(),
                    ));
                }
                if !r.fill()? {
                    return Err(OutboundError::Protocol(
                        "the server closed the connection before answering".into(),
                    ));
                }
            }
        }
    };
    if !(200..=599).contains(&status) {
        return Err(OutboundError::Protocol(format!("status {status}")));
    }
    let mut out = Vec::new();
    let no_body = method == "HEAD" || status == 204 || status == 304;
    if !no_body {
        let chunked = field(&fields, "transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        if chunked {
            read_chunked(&mut r, &mut out)?;
        } else if let Some(cl) = field(&fields, "content-length") {
            let n: usize = cl
                .trim()
                .parse()
                .map_err(|_| OutboundError::Protocol("content-length is not a number".into()))?;
            if n > limit {
                return Err(OutboundError::ResponseTooLarge { limit });
            }
            out.reserve(n);
            r.take_exact(n, &mut out)?;
        } else {
            // Delimited by the end of the connection (which must be a TLS close_notify).
            loop {
                out.extend_from_slice(r.available());
                r.pos = r.buf.len();
                if !r.fill()? {
                    break;
                }
            }
        }
    }
    let fields = fields
        .into_iter()
        .filter(|(k, _)| k != "transfer-encoding" && k != "connection" && k != "keep-alive")
        .collect();
    Ok(OutboundResponse {
        status,
        status_text: reason,
        headers: fields,
        body: out,
    })
}

fn read_chunked(r: &mut Reader, out: &mut Vec<u8>) -> Result<(), OutboundError> {
    loop {
        let line = r.line(MAX_CHUNK_LINE)?;
        let text = std::str::from_utf8(&line)
            .map_err(|_| OutboundError::Protocol("invalid chunk size".into()))?;
        let size = text.split(';').next().unwrap_or("").trim();
        let n = usize::from_str_radix(size, 16)
            .map_err(|_| OutboundError::Protocol("invalid chunk size".into()))?;
        if n == 0 {
            // Trailer fields up to the empty line.
            while !r.line(MAX_HEAD)?.is_empty() {}
            return Ok(());
        }
        if out.len().saturating_add(n) > r.limit {
            return Err(OutboundError::ResponseTooLarge { limit: r.limit });
        }
        r.take_exact(n, out)?;
        if !r.line(2)?.is_empty() {
            return Err(OutboundError::Protocol(
                "a chunk is longer than its size".into(),
            ));
        }
    }
}
