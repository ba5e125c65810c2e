//! Unpadded base64url (RFC 4648 §5), the one binary-as-text encoding of the wire modules.
//!
//! Encoding never pads. Decoding is strict (padding refused) everywhere except where a wire
//! format documents that it also accepts padding ([`decode_padding_optional`]).

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::error::{Error, Result};

/// Like [`URL_SAFE_NO_PAD`], but decoding also accepts padded text.
const URL_SAFE_PAD_OPTIONAL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Encodes as unpadded base64url.
pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url (padded text is refused).
pub(crate) fn decode(text: &str) -> core::result::Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD.decode(text)
}

/// Decodes base64url, padded or not.
pub(crate) fn decode_padding_optional(
    text: &str,
) -> core::result::Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_PAD_OPTIONAL.decode(text)
}

/// [`decode`], with a failure reported as [`Error::InvalidBase64`] naming `field`.
pub(crate) fn decode_field(text: &str, field: &'static str) -> Result<Vec<u8>> {
    decode(text).map_err(|_| Error::InvalidBase64 { field })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_decoders_read_what_encode_writes_and_differ_only_on_padding() {
        for n in 0..40usize {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 % 256) as u8).collect();
            let text = encode(&bytes);
            assert!(!text.contains('='));
            assert_eq!(decode(&text).expect("strict"), bytes);
            assert_eq!(decode_padding_optional(&text).expect("lenient"), bytes);
        }
        assert_eq!(decode("e30="), Err(base64::DecodeError::InvalidPadding));
        assert_eq!(decode_padding_optional("e30=").expect("padded"), b"{}");
        assert_eq!(
            decode("e3+/"),
            Err(base64::DecodeError::InvalidByte(2, b'+')),
            "standard alphabet refused"
        );
        assert_eq!(
            decode_padding_optional("e3+/"),
            Err(base64::DecodeError::InvalidByte(2, b'+')),
            "standard alphabet refused"
        );
    }
}
