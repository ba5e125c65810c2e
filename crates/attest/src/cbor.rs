//! A minimal, strict CBOR (RFC 8949) reader and writer: just what Nitro attestation documents
//! and NSM requests need. Definite lengths only, bounded nesting, no floats; every length is
//! checked against the remaining input before anything is allocated.

use crate::Error;

const WHAT: &str = "CBOR";
const MAX_DEPTH: usize = 16;

/// A decoded CBOR data item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    Uint(u64),
    /// A negative integer `-1 - n`, stored as `n`.
    Neg(u64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Tag(u64, Box<Value>),
    Bool(bool),
    Null,
}

impl Value {
    pub(crate) fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub(crate) fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    pub(crate) fn as_map(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The value under a text key of a map.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_text() == Some(key))
            .map(|(_, v)| v)
    }
}

fn malformed(reason: &'static str) -> Error {
    Error::Malformed { what: WHAT, reason }
}

/// Decodes exactly one item; trailing bytes are an error.
pub(crate) fn decode(bytes: &[u8]) -> Result<Value, Error> {
    let mut pos = 0;
    let v = item(bytes, &mut pos, 0)?;
    if pos != bytes.len() {
        return Err(Error::TrailingBytes {
            what: WHAT,
            count: bytes.len() - pos,
        });
    }
    Ok(v)
}

fn take<'a>(b: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], Error> {
    let end = pos
        .checked_add(n)
        .filter(|&e| e <= b.len())
        .ok_or(Error::Truncated { what: WHAT })?;
    let s = &b[*pos..end];
    *pos = end;
    Ok(s)
}

fn argument(b: &[u8], pos: &mut usize, info: u8) -> Result<u64, Error> {
    Ok(match info {
        0..=23 => info.into(),
        24 => take(b, pos, 1)?[0].into(),
        25 => {
            let s = take(b, pos, 2)?;
            u16::from_be_bytes([s[0], s[1]]).into()
        }
        26 => {
            let s = take(b, pos, 4)?;
            u32::from_be_bytes([s[0], s[1], s[2], s[3]]).into()
        }
        27 => {
            let s = take(b, pos, 8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_be_bytes(a)
        }
        31 => return Err(malformed("indefinite lengths are not supported")),
        _ => return Err(malformed("reserved additional information")),
    })
}

fn len_within(b: &[u8], pos: usize, n: u64, min_item: usize) -> Result<usize, Error> {
    // Each element needs at least `min_item` bytes, so a count larger than what remains is a lie.
    let n = usize::try_from(n).map_err(|_| Error::Truncated { what: WHAT })?;
    if n.saturating_mul(min_item) > b.len() - pos {
        return Err(Error::Truncated { what: WHAT });
    }
    Ok(n)
}

fn item(b: &[u8], pos: &mut usize, depth: usize) -> Result<Value, Error> {
    if depth > MAX_DEPTH {
        return Err(malformed("nesting too deep"));
    }
    let ib = take(b, pos, 1)?[0];
    let major = ib >> 5;
    let info = ib & 0x1f;
    if major == 7 {
        return match info {
            20 => Ok(Value::Bool(false)),
            21 => Ok(Value::Bool(true)),
            22 => Ok(Value::Null),
            _ => Err(malformed("unsupported simple value or float")),
        };
    }
    let arg = argument(b, pos, info)?;
    Ok(match major {
        0 => Value::Uint(arg),
        1 => Value::Neg(arg),
        2 => {
            let n = len_within(b, *pos, arg, 1)?;
            Value::Bytes(take(b, pos, n)?.to_vec())
        }
        3 => {
            let n = len_within(b, *pos, arg, 1)?;
            let s = take(b, pos, n)?;
            Value::Text(
                std::str::from_utf8(s)
                    .map_err(|_| malformed("text is not UTF-8"))?
                    .to_owned(),
            )
        }
        4 => {
            let n = len_within(b, *pos, arg, 1)?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(item(b, pos, depth + 1)?);
            }
            Value::Array(v)
        }
        5 => {
            let n = len_within(b, *pos, arg, 2)?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let k = item(b, pos, depth + 1)?;
                let val = item(b, pos, depth + 1)?;
                v.push((k, val));
            }
            Value::Map(v)
        }
        6 => Value::Tag(arg, Box::new(item(b, pos, depth + 1)?)),
        _ => return Err(malformed("unknown major type")),
    })
}

#[cfg_attr(not(feature = "nitro-nsm"), allow(dead_code))]
/// Writes a head (major type and argument) in the shortest form.
pub(crate) fn put_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    if arg < 24 {
        out.push(m | arg as u8);
    } else if arg <= 0xff {
        out.extend_from_slice(&[m | 24, arg as u8]);
    } else if arg <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(arg as u16).to_be_bytes());
    } else if arg <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(arg as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}

#[cfg_attr(not(feature = "nitro-nsm"), allow(dead_code))]
pub(crate) fn put_text(out: &mut Vec<u8>, s: &str) {
    put_head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

#[cfg_attr(not(feature = "nitro-nsm"), allow(dead_code))]
pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_head(out, 2, b.len() as u64);
    out.extend_from_slice(b);
}

#[cfg_attr(not(feature = "nitro-nsm"), allow(dead_code))]
pub(crate) fn put_null(out: &mut Vec<u8>) {
    out.push(0xf6);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_heads() {
        for n in [
            0u64,
            23,
            24,
            255,
            256,
            65535,
            65536,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_head(&mut out, 0, n);
            assert_eq!(decode(&out).expect("decode"), Value::Uint(n));
        }
    }

    #[test]
    fn rfc_examples() {
        assert_eq!(decode(&[0x20]).expect("-1"), Value::Neg(0));
        assert_eq!(decode(&[0xf6]).expect("null"), Value::Null);
        assert_eq!(decode(&[0xf5]).expect("true"), Value::Bool(true));
        assert_eq!(
            decode(&[0x63, b'a', b'b', b'c']).expect("text"),
            Value::Text("abc".into())
        );
        let v = decode(&[0xa1, 0x61, b'k', 0x82, 0x01, 0x40]).expect("map");
        assert_eq!(
            v.get("k"),
            Some(&Value::Array(vec![Value::Uint(1), Value::Bytes(vec![])]))
        );
        assert_eq!(
            decode(&[0xd2, 0x80]).expect("tag"),
            Value::Tag(18, Box::new(Value::Array(vec![])))
        );
    }

    #[test]
    fn negative() {
        let truncated = || Error::Truncated { what: WHAT };
        let bad_form = |reason| Error::Malformed { what: WHAT, reason };
        for (bad, want) in [
            (&[][..], truncated()),
            (&[0x18], truncated()), // missing argument byte
            (&[0x5f], bad_form("indefinite lengths are not supported")), // indefinite bytes
            (&[0x1c], bad_form("reserved additional information")), // reserved info
            (&[0xf9, 0, 0], bad_form("unsupported simple value or float")), // half float
            (&[0x43, 1, 2], truncated()), // bytes longer than input
            (
                &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                truncated(),
            ), // huge array
            (&[0x62, 0xff, 0xfe], bad_form("text is not UTF-8")), // invalid UTF-8
            (
                &[0x01, 0x01],
                Error::TrailingBytes {
                    what: WHAT,
                    count: 1,
                },
            ), // trailing
            (&[0xa1, 0x01], truncated()), // map missing value
        ] {
            assert_eq!(
                decode(bad).map(|_| ()).map_err(|e| e.to_string()),
                Err(want.to_string()),
                "{bad:x?}"
            );
        }
        let deep = vec![0x81u8; 100];
        assert_eq!(
            decode(&deep).map(|_| ()).map_err(|e| e.to_string()),
            Err(bad_form("nesting too deep").to_string())
        );
    }
}
