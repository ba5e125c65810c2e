//! Structural checks of fetched bytes: DER framing, PEM certificate blocks, the percent-encoded
//! issuer-chain headers, the signed JSON of Intel PCS, `Cache-Control`. These only decide
//! whether bytes are *shaped* right (so garbage is refetched or reported); every signature is
//! checked by `clave-attest`.

/// Why bytes are not what they should be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    Truncated,
    Malformed(&'static str),
}

/// Checks that `b` is exactly one DER SEQUENCE (a certificate or CRL), nothing before or after.
pub(crate) fn check_der_sequence(b: &[u8]) -> Result<(), Shape> {
    let Some((&tag, rest)) = b.split_first() else {
        return Err(Shape::Truncated);
    };
    if tag != 0x30 {
        return Err(Shape::Malformed("not a DER SEQUENCE"));
    }
    let Some((&l0, rest)) = rest.split_first() else {
        return Err(Shape::Truncated);
    };
    let (len, rest) = if l0 < 0x80 {
        (usize::from(l0), rest)
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 4 {
            return Err(Shape::Malformed("bad DER length"));
        }
        if rest.len() < n {
            return Err(Shape::Truncated);
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
        (len, &rest[n..])
    };
    match rest.len().cmp(&len) {
        std::cmp::Ordering::Less => Err(Shape::Truncated),
        std::cmp::Ordering::Greater => Err(Shape::Malformed("bytes after the DER structure")),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// The DER of every `CERTIFICATE` block of a PEM text ([`clave_attest::pem`]), each checked as a
/// DER SEQUENCE. At least one block is required.
pub(crate) fn pem_certificates(text: &[u8]) -> Result<Vec<Vec<u8>>, Shape> {
    use clave_attest::pem::{self, PemError};
    let certs = pem::decode_blocks(text, pem::CERTIFICATE, usize::MAX).map_err(|e| match e {
        PemError::Unterminated => Shape::Truncated,
        PemError::NoBlock if find_begin(text) => Shape::Truncated,
        PemError::NoBlock => Shape::Malformed("no PEM certificate"),
        _ => Shape::Malformed("malformed PEM certificate block"),
    })?;
    for der in &certs {
        check_der_sequence(der)?;
    }
    Ok(certs)
}

fn find_begin(text: &[u8]) -> bool {
    text.windows(10).any(|w| w == b"-----BEGIN")
}

/// A certificate as DER: DER passes through (checked), PEM with one certificate is decoded.
pub(crate) fn certificate_der(b: &[u8]) -> Result<Vec<u8>, Shape> {
    if b.starts_with(b"-----BEGIN") {
        let mut certs = pem_certificates(b)?;
        if certs.len() != 1 {
            return Err(Shape::Malformed("more than one certificate"));
        }
        return Ok(certs.remove(0));
    }
    check_der_sequence(b)?;
    Ok(b.to_vec())
}

/// A CRL as DER: DER passes through (checked); hex-encoded DER (what a PCCS serves) is decoded.
pub(crate) fn crl_der(b: &[u8]) -> Result<Vec<u8>, Shape> {
    if b.first() == Some(&0x30) {
        check_der_sequence(b)?;
        return Ok(b.to_vec());
    }
    let t: Vec<u8> = b
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if t.is_empty() {
        return Err(Shape::Truncated);
    }
    let der = hex::decode(&t).map_err(|_| Shape::Malformed("neither DER nor hex"))?;
    check_der_sequence(&der)?;
    Ok(der)
}

/// RFC 3986 percent-decoding (Intel's issuer-chain headers). `+` stays `+`. `None` for a `%` not
/// followed by two hex digits (the crate would keep it literally) or for text that is not UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let well_formed = s.split('%').skip(1).all(|escape| {
        escape
            .as_bytes()
            .get(..2)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// Everything but RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// RFC 3986 percent-encoding of everything but unreserved characters (used by tests and by
/// anyone serving a mirror).
pub fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}

/// Intel PCS signed JSON `{"<key>": {...}, "signature": "<hex>"}`: returns the exact text of the
/// inner object (the signature covers those bytes, so it must not be re-serialised) and the
/// signature bytes. A repeated key counts once, the last time (as in `serde_json::Value`).
pub(crate) fn signed_json(body: &[u8], key: &str) -> Result<(String, Vec<u8>), Shape> {
    use serde_json::value::RawValue;
    let text = std::str::from_utf8(body).map_err(|_| Shape::Malformed("not UTF-8"))?;
    let whole: &RawValue = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) if e.is_eof() => return Err(Shape::Truncated),
        Err(_) => return Err(Shape::Malformed("not JSON")),
    };
    // The top-level members, each value as its exact text.
    let obj: std::collections::BTreeMap<String, &RawValue> =
        serde_json::from_str(whole.get()).map_err(|_| Shape::Malformed("not a JSON object"))?;
    let raw = obj
        .get(key)
        .map(|v| v.get())
        .filter(|v| v.starts_with('{'))
        .ok_or(Shape::Malformed("the signed object is missing"))?;
    let sig: String = obj
        .get("signature")
        .and_then(|v| serde_json::from_str(v.get()).ok())
        .ok_or(Shape::Malformed("the signature is missing"))?;
    let sig = hex::decode(sig).map_err(|_| Shape::Malformed("the signature is not hex"))?;
    if sig.len() != 64 {
        return Err(Shape::Malformed("the signature is not 64 bytes"));
    }
    Ok((raw.to_owned(), sig))
}

/// The freshness lifetime a `Cache-Control` header grants: `Some(0)` for `no-store`/`no-cache`,
/// `Some(n)` for `max-age=n`, `None` when it says neither.
pub(crate) fn cache_control_max_age(value: &str) -> Option<u64> {
    let mut max_age = None;
    for d in value.split(',') {
        let d = d.trim().to_ascii_lowercase();
        if d == "no-store" || d == "no-cache" {
            return Some(0);
        }
        if let Some(n) = d.strip_prefix("max-age=") {
            max_age = n.trim_matches('"').parse::<u64>().ok();
        }
    }
    max_age
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    const PEM_BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const PEM_END: &str = "-----END CERTIFICATE-----";

    #[test]
    fn der_framing() {
        assert_eq!(check_der_sequence(&[0x30, 0x02, 1, 2]), Ok(()));
        assert_eq!(
            check_der_sequence(&[0x30, 0x03, 1, 2]),
            Err(Shape::Truncated)
        );
        assert!(matches!(
            check_der_sequence(&[0x30, 0x01, 1, 2]),
            Err(Shape::Malformed(_))
        ));
        assert!(matches!(
            check_der_sequence(b"<html>"),
            Err(Shape::Malformed(_))
        ));
        assert_eq!(check_der_sequence(&[]), Err(Shape::Truncated));
        assert_eq!(check_der_sequence(&[0x30]), Err(Shape::Truncated));
        assert_eq!(
            check_der_sequence(&[0x30, 0x82, 0x01]),
            Err(Shape::Truncated)
        );
        let mut long = vec![0x30, 0x82, 0x01, 0x00];
        long.extend(vec![0u8; 256]);
        assert_eq!(check_der_sequence(&long), Ok(()));
        assert_eq!(
            check_der_sequence(&[0x30, 0x80]),
            Err(Shape::Malformed("bad DER length"))
        );
        assert_eq!(
            check_der_sequence(&[0x30, 0x85, 0, 0, 0, 0, 0]),
            Err(Shape::Malformed("bad DER length"))
        );
    }

    #[test]
    fn crl_hex_or_der() {
        assert_eq!(crl_der(&[0x30, 0x01, 7]).expect("der"), vec![0x30, 1, 7]);
        assert_eq!(crl_der(b"300107\n").expect("hex"), vec![0x30, 1, 7]);
        assert_eq!(crl_der(b"zz"), Err(Shape::Malformed("neither DER nor hex")));
        assert_eq!(crl_der(b""), Err(Shape::Truncated));
    }

    #[test]
    fn percent_round_trip() {
        let s = "-----BEGIN CERTIFICATE-----\nMII+/=\n";
        assert_eq!(percent_decode(&percent_encode(s)).as_deref(), Some(s));
        assert_eq!(percent_decode("a%2"), None);
        assert_eq!(percent_decode("a%zz"), None);
        assert_eq!(percent_decode("a+b").as_deref(), Some("a+b"));
        assert_eq!(percent_decode("%41%2f%2F").as_deref(), Some("A//"));
        assert_eq!(percent_decode("%").as_deref(), None);
        assert_eq!(percent_decode("%g0").as_deref(), None);
        assert_eq!(percent_decode("%ff").as_deref(), None, "not UTF-8");
        assert_eq!(percent_encode("a b~-._/+é"), "a%20b~-._%2F%2B%C3%A9");
    }

    #[test]
    fn signed_json_keeps_exact_text() {
        let inner = r#"{"id":"TDX","x":[1,{"y":"}\""}],"z":1.50}"#;
        let sig = "ab".repeat(64);
        let body = format!(r#"{{ "tcbInfo" : {inner} , "signature":"{sig}"}}"#);
        let (raw, s) = signed_json(body.as_bytes(), "tcbInfo").expect("parse");
        assert_eq!(raw, inner);
        assert_eq!(s, vec![0xab; 64]);
        // Signature first, too.
        let body = format!(r#"{{"signature":"{sig}","tcbInfo":{inner}}}"#);
        assert_eq!(signed_json(body.as_bytes(), "tcbInfo").expect("p").0, inner);
        assert_eq!(
            signed_json(&body.as_bytes()[..body.len() / 2], "tcbInfo"),
            Err(Shape::Truncated)
        );
        assert_eq!(
            signed_json(b"<html>", "tcbInfo"),
            Err(Shape::Malformed("not JSON"))
        );
        assert_eq!(
            signed_json(body.as_bytes(), "enclaveIdentity"),
            Err(Shape::Malformed("the signed object is missing"))
        );
        let short = format!(r#"{{"tcbInfo":{inner},"signature":"abcd"}}"#);
        assert_eq!(
            signed_json(short.as_bytes(), "tcbInfo"),
            Err(Shape::Malformed("the signature is not 64 bytes"))
        );
        // Not an object at the top, or the signed value not an object, or the signature not a string.
        assert_eq!(
            signed_json(format!("[{inner}]").as_bytes(), "tcbInfo"),
            Err(Shape::Malformed("not a JSON object"))
        );
        let not_obj = format!(r#"{{"tcbInfo":[1],"signature":"{sig}"}}"#);
        assert_eq!(
            signed_json(not_obj.as_bytes(), "tcbInfo"),
            Err(Shape::Malformed("the signed object is missing"))
        );
        let num_sig = format!(r#"{{"tcbInfo":{inner},"signature":1}}"#);
        assert_eq!(
            signed_json(num_sig.as_bytes(), "tcbInfo"),
            Err(Shape::Malformed("the signature is missing"))
        );
        // Escapes inside the signed text survive byte for byte; an escaped key still matches.
        let escaped = r#"{"a":"\u00e9\n","b":"\/"}"#;
        let body = format!(r#"{{"tcb\u0049nfo":{escaped},"signature":"{sig}"}}"#);
        assert_eq!(
            signed_json(body.as_bytes(), "tcbInfo").expect("p").0,
            escaped
        );
        // A repeated key: the last one, as the JSON value that was checked.
        let body = format!(r#"{{"tcbInfo":{{"old":1}},"tcbInfo":{inner},"signature":"{sig}"}}"#);
        assert_eq!(signed_json(body.as_bytes(), "tcbInfo").expect("p").0, inner);
    }

    #[test]
    fn cache_control() {
        assert_eq!(cache_control_max_age("public, max-age=3600"), Some(3600));
        assert_eq!(cache_control_max_age("no-store"), Some(0));
        assert_eq!(cache_control_max_age("Max-Age=5, No-Cache"), Some(0));
        assert_eq!(cache_control_max_age("public"), None);
        assert_eq!(cache_control_max_age("max-age=abc"), None);
    }

    #[test]
    fn pem_blocks() {
        let der = [0x30u8, 0x01, 0x05];
        let pem = format!("{PEM_BEGIN}\n{}\n{PEM_END}\n", STANDARD.encode(der));
        assert_eq!(
            pem_certificates(pem.as_bytes()).expect("pem"),
            vec![der.to_vec()]
        );
        assert_eq!(certificate_der(pem.as_bytes()).expect("pem"), der.to_vec());
        assert_eq!(
            pem_certificates(&pem.as_bytes()[..20]),
            Err(Shape::Truncated)
        );
        assert_eq!(
            pem_certificates(b"hello"),
            Err(Shape::Malformed("no PEM certificate"))
        );
        assert_eq!(
            pem_certificates(format!("{PEM_BEGIN}\n!!\n{PEM_END}").as_bytes()),
            Err(Shape::Malformed("malformed PEM certificate block"))
        );
    }
}
