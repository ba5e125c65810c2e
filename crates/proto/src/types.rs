//! Newtypes shared by every envelope: hashes, identifiers, names and the master secret.

use std::fmt;
use std::str::FromStr;

use rand_core::CryptoRng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::Error;

fn parse_hex32(s: &str, what: &'static str) -> Result<[u8; 32], Error> {
    // Lowercase only: one canonical textual form per value.
    if s.len() != 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(Error::InvalidHex { what });
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| Error::InvalidHex { what })?;
    Ok(out)
}

macro_rules! hash_newtype {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The raw 32 bytes.
            #[must_use]
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Lowercase hex (64 digits).
            #[must_use]
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                parse_hex32(s, $what).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hash_newtype!(
    /// SHA-256 of a function's code bytes; what users pin. Serialised as 64 lowercase hex digits.
    CodeHash,
    "code hash"
);
hash_newtype!(
    /// SHA-256 of a [`KeySpec`](crate::spec::KeySpec)'s canonical bytes. Serialised as hex.
    SpecId,
    "spec id"
);

impl CodeHash {
    /// Hash `code` (SHA-256).
    #[must_use]
    pub fn of(code: &[u8]) -> Self {
        Self(Sha256::digest(code).into())
    }
}

impl SpecId {
    /// Hash canonical spec bytes (SHA-256). Use [`KeySpec::id`](crate::spec::KeySpec::id) instead
    /// unless the bytes are all you have.
    #[must_use]
    pub fn of_bytes(spec_bytes: &[u8]) -> Self {
        Self(Sha256::digest(spec_bytes).into())
    }

    /// The OHTTP key id of keys derived for this spec: the first byte of the spec id.
    #[must_use]
    pub fn key_id(&self) -> KeyId {
        KeyId(self.0[0])
    }
}

/// The one-byte OHTTP key identifier (RFC 9458 §3). Serialised as a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(pub u8);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Longest allowed project or function name.
pub const MAX_NAME_LEN: usize = 63;

fn check_name(s: &str, kind: &'static str) -> Result<(), Error> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(Error::InvalidName {
            kind,
            reason: "empty",
        });
    }
    if b.len() > MAX_NAME_LEN {
        return Err(Error::InvalidName {
            kind,
            reason: "longer than 63 bytes",
        });
    }
    if !(b[0].is_ascii_lowercase() || b[0].is_ascii_digit()) {
        return Err(Error::InvalidName {
            kind,
            reason: "must start with [a-z0-9]",
        });
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    {
        return Err(Error::InvalidName {
            kind,
            reason: "only [a-z0-9-] allowed",
        });
    }
    Ok(())
}

macro_rules! name_newtype {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The name as text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                check_name(s, $kind)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self, Error> {
                check_name(&s, $kind)?;
                Ok(Self(s))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::try_from(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_newtype!(
    /// A function name: `[a-z0-9][a-z0-9-]{0,62}` (1 to 63 bytes, lowercase ASCII letters, digits
    /// and `-`, not starting with `-`). Parse with [`FromStr`].
    FunctionName,
    "function"
);
name_newtype!(
    /// A project name, with the same character set and length limit as [`FunctionName`].
    ProjectName,
    "project"
);

/// The KDS master secret `M` (32 bytes). Zeroized on drop; `Debug` prints no contents.
#[derive(Clone)]
pub struct MasterSecret(Zeroizing<[u8; 32]>);

impl MasterSecret {
    /// Wrap existing secret bytes (e.g. unsealed from storage).
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Draw a fresh master secret from `rng` (genesis).
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        Self(bytes)
    }

    /// The secret bytes, for sealing to storage or handing to a replica. Handle with care.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for MasterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterSecret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "0", "hello-world", "a-", &"a".repeat(63)] {
            assert!(ok.parse::<FunctionName>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "A",
            "a_b",
            "a.b",
            "a/b",
            "é",
            &"a".repeat(64),
            "a b",
        ] {
            assert!(
                matches!(
                    bad.parse::<ProjectName>(),
                    Err(Error::InvalidName {
                        kind: "project",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        let err = serde_json::from_str::<FunctionName>("\"Bad\"").expect_err("uppercase");
        assert!(
            err.to_string().starts_with("invalid function name"),
            "{err}"
        );
    }

    #[test]
    fn hashes() {
        let h = CodeHash::of(b"abc");
        assert_eq!(
            h.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(h.to_hex().parse::<CodeHash>(), Ok(h));
        assert_eq!(
            h.to_hex().to_uppercase().parse::<CodeHash>(),
            Err(Error::InvalidHex { what: "code hash" })
        );
        assert_eq!(
            "ab".parse::<CodeHash>(),
            Err(Error::InvalidHex { what: "code hash" })
        );
        let json = serde_json::to_string(&h).expect("serialise");
        assert_eq!(serde_json::from_str::<CodeHash>(&json).expect("parse"), h);
        assert_eq!(
            format!("{:?}", MasterSecret::from_bytes([7; 32])),
            "MasterSecret(..)"
        );
    }
}
