//! PEM text (RFC 7468) of certificates and CRLs: the one copy of the framing in clave, through
//! the `pem-rfc7468` crate. Each block follows the strict grammar (boundaries with matching
//! labels, base64 lines of the width the block's first line sets); text before, between and
//! after the blocks is ignored, as RFC 7468 §2 asks.

/// The label of certificate blocks.
pub const CERTIFICATE: &str = "CERTIFICATE";
/// The label of CRL blocks.
pub const X509_CRL: &str = "X509 CRL";

/// Why a PEM text was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PemError {
    /// The text has no block of the label (or is not UTF-8 where a block would be).
    #[error("no PEM block of that label")]
    NoBlock,
    /// A `-----BEGIN` line without its `-----END` line (a cut-off text).
    #[error("unterminated PEM block")]
    Unterminated,
    /// A block that is not RFC 7468 PEM: its boundaries, label or base64 lines.
    #[error("malformed PEM block")]
    Malformed,
    /// More blocks than the caller allows.
    #[error("too many PEM blocks")]
    TooMany,
}

/// Whether `bytes` are PEM text rather than DER or another encoding: they start, after
/// whitespace, with a `-----BEGIN` line.
#[must_use]
pub fn is_pem(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().starts_with(b"-----BEGIN")
}

/// The decoded bodies of the blocks labelled `label` in `text`, in order (at most `max`).
///
/// # Errors
/// [`PemError`]: no such block, a block cut off, a malformed block, more than `max` blocks.
pub fn decode_blocks(text: &[u8], label: &str, max: usize) -> Result<Vec<Vec<u8>>, PemError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = find(rest, begin.as_bytes()) {
        let block = &rest[start..];
        let stop = find(block, end.as_bytes()).ok_or(PemError::Unterminated)? + end.len();
        if out.len() == max {
            return Err(PemError::TooMany);
        }
        out.push(decode_block(&block[..stop], label)?);
        rest = &block[stop..];
    }
    if out.is_empty() {
        return Err(PemError::NoBlock);
    }
    Ok(out)
}

/// One block, boundary to boundary.
fn decode_block(block: &[u8], label: &str) -> Result<Vec<u8>, PemError> {
    let mut decoder =
        pem_rfc7468::Decoder::new_detect_wrap(block).map_err(|_| PemError::Malformed)?;
    if decoder.type_label() != label {
        return Err(PemError::Malformed);
    }
    let mut der = Vec::new();
    decoder
        .decode_to_end(&mut der)
        .map_err(|_| PemError::Malformed)?;
    Ok(der)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    fn block(label: &str, body: &[u8], width: usize, eol: &str) -> String {
        let b64 = STANDARD.encode(body);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(width)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect();
        format!(
            "-----BEGIN {label}-----{eol}{}{eol}-----END {label}-----{eol}",
            lines.join(eol)
        )
    }

    #[test]
    fn blocks_in_order_with_text_around_them() {
        let a: Vec<u8> = (0..=200).collect();
        let b = b"second".to_vec();
        let text = format!(
            "preamble\n{}between\n{}{}after",
            block(CERTIFICATE, &a, 64, "\n"),
            block(X509_CRL, b"other label", 64, "\n"),
            block(CERTIFICATE, &b, 76, "\r\n"),
        );
        assert_eq!(
            decode_blocks(text.as_bytes(), CERTIFICATE, 8),
            Ok(vec![a.clone(), b])
        );
        assert_eq!(
            decode_blocks(text.as_bytes(), X509_CRL, 8),
            Ok(vec![b"other label".to_vec()])
        );
        // One long line (any width the first line sets).
        let one = block(CERTIFICATE, &a, 1000, "\n");
        assert_eq!(decode_blocks(one.as_bytes(), CERTIFICATE, 1), Ok(vec![a]));
        assert!(is_pem(b"  \n-----BEGIN CERTIFICATE-----"));
        assert!(!is_pem(b"0x3082"));
    }

    #[test]
    fn refusals() {
        let good = block(CERTIFICATE, b"0123456789", 64, "\n");
        assert_eq!(
            decode_blocks(b"hello", CERTIFICATE, 8),
            Err(PemError::NoBlock)
        );
        assert_eq!(
            decode_blocks(&good.as_bytes()[..good.len() - 10], CERTIFICATE, 8),
            Err(PemError::Unterminated)
        );
        for bad in [
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----\nMTIz\nMTIzNDU2\n-----END CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----MTIz-----END CERTIFICATE-----",
        ] {
            assert_eq!(
                decode_blocks(bad.as_bytes(), CERTIFICATE, 8),
                Err(PemError::Malformed),
                "{bad:?}"
            );
        }
        let two = format!("{good}{good}");
        assert_eq!(
            decode_blocks(two.as_bytes(), CERTIFICATE, 1),
            Err(PemError::TooMany)
        );
        assert_eq!(
            decode_blocks(two.as_bytes(), CERTIFICATE, 2).map(|v| v.len()),
            Ok(2)
        );
    }
}
