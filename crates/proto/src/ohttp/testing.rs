//! Test-only hooks that make RFC known-answer tests reproducible. Never use them in a service.

use super::*;

/// A "random" source that replays fixed bytes (cycling). With DHKEM(X25519) the ephemeral
/// key becomes `DeriveKeyPair(bytes)` (RFC 9180 `ikmE`); as the response RNG it fixes the
/// response nonce.
pub struct FixedBytes {
    bytes: Vec<u8>,
    pos: usize,
}

impl FixedBytes {
    /// Replay `bytes`.
    #[must_use]
    pub fn new(bytes: &[u8]) -> Self {
        assert!(!bytes.is_empty(), "FixedBytes needs at least one byte");
        Self {
            bytes: bytes.to_vec(),
            pos: 0,
        }
    }
}

impl rand_core::TryRng for FixedBytes {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for d in dst {
            *d = self.bytes[self.pos % self.bytes.len()];
            self.pos += 1;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for FixedBytes {}

/// Encapsulate with a given raw X25519 ephemeral *private key* (RFC 9458 Appendix A
/// publishes `skE`, not `ikmE`): the production encapsulation after its key generation.
/// Exists only for the known-answer test.
pub fn client_encapsulate_with_x25519_ephemeral(
    config: &KeyConfig,
    sk_e: &[u8; 32],
    request: &[u8],
) -> Result<(Vec<u8>, ClientResponseContext)> {
    if config.kem() != Kem::X25519HkdfSha256 {
        return Err(Error::UnsupportedKem(config.kem().id()));
    }
    x25519_encapsulate_with(config, &X25519PrivateKey::from_bytes(sk_e)?, request)
}
