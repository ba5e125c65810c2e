//! Key configurations (RFC 9458 §3.1) and their list encoding (`application/ohttp-keys`, RFC 9540).

use super::*;

/// An OHTTP key configuration (RFC 9458 §3.1): key id, KEM, public key, symmetric suites.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyConfig {
    key_id: KeyId,
    kem: Kem,
    public_key: Vec<u8>,
    suites: Vec<SymmetricSuite>,
}

impl fmt::Debug for KeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyConfig")
            .field("key_id", &self.key_id)
            .field("kem", &self.kem)
            .field("public_key", &hex::encode(&self.public_key))
            .field("suites", &self.suites)
            .finish()
    }
}

impl KeyConfig {
    /// Build a configuration from its parts, validating the public key and suites.
    pub fn new(
        key_id: KeyId,
        kem: Kem,
        public_key: Vec<u8>,
        suites: Vec<SymmetricSuite>,
    ) -> Result<Self> {
        validate_public_key(kem, &public_key)?;
        if suites.is_empty() || suites.len() > usize::from(u16::MAX) / 4 {
            return Err(Error::LengthOutOfRange {
                what: "symmetric suites",
                len: suites.len(),
            });
        }
        if !suites.iter().any(|s| s.is_supported()) {
            return Err(Error::NoSupportedSuite);
        }
        Ok(Self {
            key_id,
            kem,
            public_key,
            suites,
        })
    }

    /// A configuration whose public key the caller has validated before (or whose invalid key
    /// makes sealing fail, which the caller accepts). Skips the low-order check's X25519 operation.
    pub(crate) fn new_prevalidated(
        key_id: KeyId,
        kem: Kem,
        public_key: Vec<u8>,
        suites: Vec<SymmetricSuite>,
    ) -> Self {
        Self {
            key_id,
            kem,
            public_key,
            suites,
        }
    }

    /// The key identifier.
    #[must_use]
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The KEM.
    #[must_use]
    pub fn kem(&self) -> Kem {
        self.kem
    }

    /// The serialised public key (`Npk` bytes).
    #[must_use]
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// The (KDF, AEAD) pairs, in the order the server listed them.
    #[must_use]
    pub fn suites(&self) -> &[SymmetricSuite] {
        &self.suites
    }

    /// The first listed suite clave supports; what [`client_encapsulate`] uses.
    pub fn selected_suite(&self) -> Result<SymmetricSuite> {
        self.suites
            .iter()
            .copied()
            .find(|s| s.is_supported())
            .ok_or(Error::NoSupportedSuite)
    }

    /// Encode as RFC 9458 §3.1 `Key Config`.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + self.public_key.len() + 4 * self.suites.len());
        out.push(self.key_id.0);
        out.extend_from_slice(&self.kem.id().to_be_bytes());
        out.extend_from_slice(&self.public_key);
        // Bounded by `new`/`decode`: at most 16383 suites.
        let len = u16::try_from(4 * self.suites.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        for s in &self.suites {
            out.extend_from_slice(&s.kdf.to_be_bytes());
            out.extend_from_slice(&s.aead.to_be_bytes());
        }
        out
    }

    /// Decode exactly one `Key Config`; trailing bytes are an error.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let key_id = KeyId(r.u8("key config header")?);
        let kem = Kem::from_id(r.u16("key config header")?)?;
        let public_key = r.take(kem.public_key_len(), "public key")?.to_vec();
        let suites_len = usize::from(r.u16("symmetric suites length")?);
        if suites_len == 0 || suites_len % 4 != 0 {
            return Err(Error::LengthOutOfRange {
                what: "symmetric suites",
                len: suites_len,
            });
        }
        let raw = r.take(suites_len, "symmetric suites")?;
        r.finish("key config")?;
        let suites = raw
            .chunks_exact(4)
            .map(|c| SymmetricSuite {
                kdf: u16::from_be_bytes([c[0], c[1]]),
                aead: u16::from_be_bytes([c[2], c[3]]),
            })
            .collect();
        Self::new(key_id, kem, public_key, suites)
    }

    /// Encode a list as `application/ohttp-keys` (RFC 9458 §3.2): each configuration
    /// prefixed by its 2-byte length.
    #[must_use]
    pub fn encode_list(configs: &[KeyConfig]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in configs {
            let enc = c.encode();
            let len = u16::try_from(enc.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&enc);
        }
        out
    }

    /// Decode an `application/ohttp-keys` list. Configurations with a KEM or suites clave does
    /// not implement are skipped (RFC 9458 §3.2); any malformed entry is an error, and so is
    /// a list with nothing usable.
    pub fn decode_list(bytes: &[u8]) -> Result<Vec<Self>> {
        let mut r = Reader::new(bytes);
        let mut out = Vec::new();
        while !r.is_empty() {
            let len = usize::from(r.u16("key config length")?);
            let item = r.take(len, "key config")?;
            match Self::decode(item) {
                Ok(c) => out.push(c),
                Err(Error::UnsupportedKem(_) | Error::NoSupportedSuite) => {}
                Err(e) => return Err(e),
            }
        }
        if out.is_empty() {
            return Err(Error::NoSupportedKeyConfig);
        }
        Ok(out)
    }
}
