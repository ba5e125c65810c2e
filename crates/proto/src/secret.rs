//! Sealed secrets: a value HPKE-sealed by the developer's client to the attested `code` key,
//! bound to where it may be used.
//!
//! Wire form of one sealed secret: `header (7) || enc || ct` (the OHTTP request header: key id,
//! KEM, KDF, AEAD), HPKE `info = "clave/v1/secret" || 0x00 || header` and
//! `aad = `[`SecretScope::aad`]: the project, the function (empty for a project-wide secret), the
//! secret's name and its version. A gateway that hands a secret to another project, function or
//! name, or under another version number, makes opening fail.
//!
//! The gateway hands an engine the sealed secrets of a function as a [`SecretSet`] inside the
//! engine job (framing: `count u16 || { scope u8 || name (u16 length) || version u64 ||
//! sealed (u32 length) }*`, scope `0` project-wide, `1` the job's function).

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::ohttp::{self, KeyConfig, REQUEST_HEADER_LEN, Reader, ServerKey, parse_sealed};
use crate::types::{FunctionName, ProjectName};

/// HPKE info label of a sealed secret.
pub const LABEL_SECRET: &[u8] = b"clave/v1/secret";
/// Domain label at the start of a secret's AAD.
pub const LABEL_SECRET_AAD: &[u8] = b"clave/v1/secret-aad";
/// Longest secret name, bytes.
pub const MAX_SECRET_NAME: usize = 64;
/// Largest secret value, bytes.
pub const MAX_SECRET_VALUE: usize = 32 << 10;
/// Most secrets in one [`SecretSet`].
pub const MAX_SECRETS: usize = 256;

/// Whether `name` is a valid secret (or var) name: 1..=64 bytes of `A-Z a-z 0-9 _`, not starting
/// with a digit (what `env.NAME` can spell).
#[must_use]
pub fn is_valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SECRET_NAME
        && !name.as_bytes()[0].is_ascii_digit()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn check_name(name: &str) -> Result<()> {
    if is_valid_secret_name(name) {
        Ok(())
    } else {
        Err(Error::InvalidName {
            kind: "secret",
            reason: "1 to 64 characters of A-Z, a-z, 0-9 and _, not starting with a digit",
        })
    }
}

/// Where a secret may be used: the AAD it is sealed under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretScope {
    /// The project.
    pub project: ProjectName,
    /// The function, or `None` for every function of the project.
    pub function: Option<FunctionName>,
    /// The secret's name (what the function reads as `env.NAME`).
    pub name: String,
    /// The version (1 for the first value, one more for each replacement).
    pub version: u64,
}

impl SecretScope {
    /// `LABEL_SECRET_AAD || 0 || u16 len || project || u16 len || function (empty: project-wide)
    /// || u16 len || name || version (u64 big-endian)`.
    #[must_use]
    pub fn aad(&self) -> Vec<u8> {
        let function = self.function.as_ref().map_or("", |f| f.as_str());
        let mut out = Vec::with_capacity(
            LABEL_SECRET_AAD.len() + 1 + 6 + 8 + self.project.as_str().len() + function.len(),
        );
        out.extend_from_slice(LABEL_SECRET_AAD);
        out.push(0);
        for part in [self.project.as_str(), function, self.name.as_str()] {
            // Names are at most 64 bytes.
            out.extend_from_slice(&u16::try_from(part.len()).unwrap_or(u16::MAX).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out.extend_from_slice(&self.version.to_be_bytes());
        out
    }
}

/// Seal `value` to the code key `config` for `scope`.
///
/// # Errors
/// [`Error::InvalidName`] for a bad name, [`Error::LengthOutOfRange`] for a value larger than
/// [`MAX_SECRET_VALUE`], HPKE errors.
pub fn seal_secret(
    config: &KeyConfig,
    scope: &SecretScope,
    value: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>> {
    check_name(&scope.name)?;
    if value.len() > MAX_SECRET_VALUE {
        return Err(Error::LengthOutOfRange {
            what: "secret value",
            len: value.len(),
        });
    }
    let sealed = ohttp::seal_to_config(config, LABEL_SECRET, &scope.aad(), value, rng)?;
    let mut out = Vec::with_capacity(REQUEST_HEADER_LEN + sealed.enc.len() + sealed.ct.len());
    out.extend_from_slice(&sealed.header.encode());
    out.extend_from_slice(&sealed.enc);
    out.extend_from_slice(&sealed.ct);
    Ok(out)
}

/// Open a sealed secret for `scope` with one of the code keys. Fails unless it was sealed for
/// exactly this project, function, name and version.
///
/// # Errors
/// Parse errors, [`Error::UnknownKeyId`], [`Error::DecryptionFailed`].
pub fn open_secret(
    keys: &[ServerKey],
    scope: &SecretScope,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let parsed = parse_sealed(sealed)?;
    let (value, _) = ohttp::open_with_keys(keys, &parsed, LABEL_SECRET, &scope.aad())?;
    Ok(Zeroizing::new(value))
}

/// One sealed secret as the gateway hands it to an engine.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// Whether it is the job's function's own secret (`false`: project-wide).
    pub function_scoped: bool,
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: u64,
    /// The sealed value (opaque).
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret")
            .field("function_scoped", &self.function_scoped)
            .field("name", &self.name)
            .field("version", &self.version)
            .field("sealed_len", &self.sealed.len())
            .finish()
    }
}

/// The sealed secrets of one function (its own and the project-wide ones).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretSet {
    /// The secrets, in any order.
    pub secrets: Vec<SealedSecret>,
}

impl SecretSet {
    /// Encode (see the module documentation).
    ///
    /// # Errors
    /// [`Error::LengthOutOfRange`] for more than [`MAX_SECRETS`] secrets or an oversized field.
    pub fn encode(&self) -> Result<Vec<u8>> {
        if self.secrets.len() > MAX_SECRETS {
            return Err(Error::LengthOutOfRange {
                what: "secret set",
                len: self.secrets.len(),
            });
        }
        let mut out = Vec::new();
        out.extend_from_slice(&(self.secrets.len() as u16).to_be_bytes());
        for s in &self.secrets {
            check_name(&s.name)?;
            out.push(u8::from(s.function_scoped));
            out.extend_from_slice(&(s.name.len() as u16).to_be_bytes());
            out.extend_from_slice(s.name.as_bytes());
            out.extend_from_slice(&s.version.to_be_bytes());
            let len = u32::try_from(s.sealed.len()).map_err(|_| Error::LengthOutOfRange {
                what: "sealed secret",
                len: s.sealed.len(),
            })?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&s.sealed);
        }
        Ok(out)
    }

    /// Decode; rejects truncation, trailing bytes, bad names, unknown scopes and more than
    /// [`MAX_SECRETS`] entries. The empty input is the empty set.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::TrailingBytes`], [`Error::InvalidName`],
    /// [`Error::LengthOutOfRange`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        let mut r = Reader::new(bytes);
        let count = usize::from(r.u16("secret count")?);
        if count > MAX_SECRETS {
            return Err(Error::LengthOutOfRange {
                what: "secret set",
                len: count,
            });
        }
        let mut secrets = Vec::with_capacity(count);
        for _ in 0..count {
            let function_scoped = match r.u8("secret scope")? {
                0 => false,
                1 => true,
                other => {
                    return Err(Error::LengthOutOfRange {
                        what: "secret scope",
                        len: usize::from(other),
                    });
                }
            };
            let name_len = usize::from(r.u16("secret name length")?);
            let name = std::str::from_utf8(r.take(name_len, "secret name")?)
                .map_err(|_| Error::InvalidName {
                    kind: "secret",
                    reason: "not UTF-8",
                })?
                .to_owned();
            check_name(&name)?;
            let mut v = [0u8; 8];
            v.copy_from_slice(r.take(8, "secret version")?);
            let mut l = [0u8; 4];
            l.copy_from_slice(r.take(4, "sealed secret length")?);
            let len = u32::from_be_bytes(l) as usize;
            let sealed = r.take(len, "sealed secret")?.to_vec();
            secrets.push(SealedSecret {
                function_scoped,
                name,
                version: u64::from_be_bytes(v),
                sealed,
            });
        }
        r.finish("secret set")?;
        Ok(Self { secrets })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ohttp::testing::FixedBytes;
    use crate::ohttp::{Kem, PrivateKey, SymmetricSuite};
    use crate::types::KeyId;

    fn key() -> ServerKey {
        let private = PrivateKey::derive(Kem::X25519HkdfSha256, &[5; 32]);
        let config = KeyConfig::new(
            KeyId(3),
            Kem::X25519HkdfSha256,
            private.public_key(),
            vec![SymmetricSuite::DEFAULT],
        )
        .expect("config");
        ServerKey::new(config, private).expect("key")
    }

    fn scope(project: &str, function: Option<&str>, name: &str, version: u64) -> SecretScope {
        SecretScope {
            project: project.parse().expect("project"),
            function: function.map(|f| f.parse().expect("function")),
            name: name.to_owned(),
            version,
        }
    }

    #[test]
    fn opens_only_for_its_exact_scope() {
        let k = key();
        let s = scope("p", Some("f"), "API_KEY", 2);
        let sealed = seal_secret(k.config(), &s, b"v", &mut FixedBytes::new(&[1])).expect("seal");
        assert_eq!(
            open_secret(std::slice::from_ref(&k), &s, &sealed)
                .expect("open")
                .as_slice(),
            b"v"
        );
        for other in [
            scope("q", Some("f"), "API_KEY", 2),
            scope("p", Some("g"), "API_KEY", 2),
            scope("p", None, "API_KEY", 2),
            scope("p", Some("f"), "API_KEY2", 2),
            scope("p", Some("f"), "API_KEY", 1),
            scope("p", Some("f"), "API_KEY", 3),
        ] {
            assert!(
                matches!(
                    open_secret(std::slice::from_ref(&k), &other, &sealed),
                    Err(Error::DecryptionFailed)
                ),
                "{other:?}"
            );
        }
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x80;
            let r = open_secret(std::slice::from_ref(&k), &s, &bad);
            assert!(
                crate::ohttp::refused_flip(i, &r),
                "flip {i}: {:?}",
                r.map(|_| ())
            );
        }
        let r = open_secret(std::slice::from_ref(&k), &s, &sealed[..30]);
        assert!(
            matches!(r, Err(Error::Truncated { .. })),
            "{:?}",
            r.map(|_| ())
        );
        // The AAD separates its fields: ("ab", "c") is not ("a", "bc").
        assert_ne!(
            scope("ab", Some("c"), "N", 1).aad(),
            scope("a", Some("bc"), "N", 1).aad()
        );
    }

    #[test]
    fn names_and_sizes_are_checked() {
        for ok in ["A", "API_KEY", "_x", "a1", &"A".repeat(64)] {
            assert!(is_valid_secret_name(ok), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "Ä", &"A".repeat(65)] {
            assert!(!is_valid_secret_name(bad), "{bad}");
        }
        let k = key();
        let big = vec![0u8; MAX_SECRET_VALUE + 1];
        assert!(matches!(
            seal_secret(
                k.config(),
                &scope("p", None, "A", 1),
                &big,
                &mut FixedBytes::new(&[1])
            ),
            Err(Error::LengthOutOfRange { .. })
        ));
        assert!(matches!(
            seal_secret(
                k.config(),
                &scope("p", None, "1A", 1),
                b"v",
                &mut FixedBytes::new(&[1])
            ),
            Err(Error::InvalidName { .. })
        ));
    }

    #[test]
    fn secret_set_round_trips_and_refuses_bad_bytes() {
        let set = SecretSet {
            secrets: vec![
                SealedSecret {
                    function_scoped: true,
                    name: "A".into(),
                    version: 7,
                    sealed: vec![1, 2, 3],
                },
                SealedSecret {
                    function_scoped: false,
                    name: "B_2".into(),
                    version: 1,
                    sealed: vec![],
                },
            ],
        };
        let bytes = set.encode().expect("encode");
        assert_eq!(SecretSet::decode(&bytes).expect("decode"), set);
        assert_eq!(SecretSet::decode(&[]).expect("empty"), SecretSet::default());
        for n in 1..bytes.len() {
            assert!(
                matches!(SecretSet::decode(&bytes[..n]), Err(Error::Truncated { .. })),
                "truncated at {n}"
            );
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            SecretSet::decode(&trailing),
            Err(Error::TrailingBytes { .. })
        ));
        let mut scope_byte = bytes.clone();
        scope_byte[2] = 2;
        assert!(
            matches!(
                SecretSet::decode(&scope_byte),
                Err(Error::LengthOutOfRange {
                    what: "secret scope",
                    ..
                })
            ),
            "unknown scope"
        );
        let mut bad_name = bytes.clone();
        bad_name[5] = b'-';
        assert!(
            matches!(SecretSet::decode(&bad_name), Err(Error::InvalidName { .. })),
            "invalid name"
        );
        let mut too_many = bytes;
        too_many[..2].copy_from_slice(&((MAX_SECRETS + 1) as u16).to_be_bytes());
        assert!(
            matches!(
                SecretSet::decode(&too_many),
                Err(Error::LengthOutOfRange {
                    what: "secret set",
                    ..
                })
            ),
            "too many"
        );
    }
}
