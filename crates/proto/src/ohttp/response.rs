//! The response half of RFC 9458 (§4.4): keying from the request's exported secret, and the
//! client's and the server's contexts.

use super::*;

/// What both sides keep to protect the response: AEAD id, `enc`, exported secret.
pub(super) struct ResponseKeying {
    pub(super) aead: u16,
    pub(super) enc: Vec<u8>,
    pub(super) secret: Zeroizing<Vec<u8>>,
}

impl ResponseKeying {
    /// `salt = enc || response_nonce; prk = Extract(salt, secret);
    /// key = Expand(prk, "key", Nk); nonce = Expand(prk, "nonce", Nn)`.
    fn aead_key_nonce(
        &self,
        response_nonce: &[u8],
    ) -> Result<(Zeroizing<[u8; 32]>, [u8; NONCE_LEN])> {
        let prk = x25519::hkdf_extract2(&self.enc, response_nonce, &self.secret);
        let prk = x25519::prk_key(prk.as_ref());
        let nk = aead_key_len(self.aead)?;
        let mut key = Zeroizing::new([0u8; 32]);
        x25519::expand(&prk, &[b"key"], &mut key[..nk])?;
        let mut nonce = [0u8; NONCE_LEN];
        x25519::expand(&prk, &[b"nonce"], &mut nonce)?;
        Ok((key, nonce))
    }

    /// `response_nonce || Seal(response)` in one buffer (sealed in place).
    fn seal(&self, response: &[u8], rng: &mut impl CryptoRng) -> Result<Vec<u8>> {
        self.seal_written(response.len(), rng, |out| {
            out.extend_from_slice(response);
            Ok(())
        })
    }

    /// [`Self::seal`] of the bytes `write` appends (about `len` of them) to the buffer that
    /// already holds the response nonce: the plaintext is written once, where it is sealed.
    /// A `write` that touched the nonce in front is refused (the buffer is wiped): what
    /// stands there goes out in the clear.
    fn seal_written(
        &self,
        len: usize,
        rng: &mut impl CryptoRng,
        write: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    ) -> Result<Vec<u8>> {
        let nlen = response_nonce_len(self.aead)?;
        let mut out = Vec::with_capacity(nlen.saturating_add(len).saturating_add(TAG_LEN));
        out.resize(nlen, 0);
        rng.fill_bytes(&mut out);
        let (key, nonce) = self.aead_key_nonce(&out)?;
        let mut saved = [0u8; 32];
        let saved = saved
            .get_mut(..nlen)
            .ok_or(Error::Internal("response nonce length"))?;
        saved.copy_from_slice(&out);
        let written = write(&mut out);
        if written.is_err() || out.get(..nlen) != Some(&*saved) {
            zeroize::Zeroize::zeroize(&mut out);
            return Err(written
                .err()
                .unwrap_or(Error::Internal("the response writer changed the nonce")));
        }
        let nk = aead_key_len(self.aead)?;
        x25519::aead_seal_in_place(self.aead, &key[..nk], nonce, b"", &mut out, nlen)?;
        Ok(out)
    }

    fn open(&self, enc_response: &[u8]) -> Result<Vec<u8>> {
        let nlen = response_nonce_len(self.aead)?;
        if enc_response.len() < nlen + TAG_LEN {
            return Err(Error::Truncated {
                what: "encapsulated response",
                needed: nlen + TAG_LEN,
                got: enc_response.len(),
            });
        }
        let (nonce_bytes, ct) = enc_response.split_at(nlen);
        let (key, nonce) = self.aead_key_nonce(nonce_bytes)?;
        let nk = aead_key_len(self.aead)?;
        x25519::aead_open(self.aead, &key[..nk], nonce, b"", ct)
    }
}

/// Client state for opening the response to one request. Holds secrets; `Debug` prints none.
pub struct ClientResponseContext(pub(super) ResponseKeying);

impl fmt::Debug for ClientResponseContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientResponseContext(..)")
    }
}

impl ClientResponseContext {
    /// Open an encapsulated response (`response_nonce || ct`, RFC 9458 §4.4).
    pub fn open(&self, enc_response: &[u8]) -> Result<Vec<u8>> {
        self.0.open(enc_response)
    }
}

/// Server state for answering one request. Holds secrets; `Debug` prints none.
pub struct ServerResponseContext(pub(super) ResponseKeying);

impl fmt::Debug for ServerResponseContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerResponseContext(..)")
    }
}

impl ServerResponseContext {
    /// Encapsulate `response`; the response nonce (max(Nn, Nk) bytes) is drawn from `rng`.
    pub fn encapsulate(&self, response: &[u8], rng: &mut impl CryptoRng) -> Result<Vec<u8>> {
        self.0.seal(response, rng)
    }

    /// [`Self::encapsulate`] of the bytes `write` appends to the buffer it is given (about
    /// `len` of them): for a response encoded straight into the buffer it is sealed in. The
    /// buffer already holds the response nonce; `write` must only append (anything else is
    /// refused).
    ///
    /// # Errors
    /// What `write` returns, a `write` that changed the bytes before its own, or a sealing
    /// failure.
    pub(crate) fn encapsulate_written(
        &self,
        len: usize,
        rng: &mut impl CryptoRng,
        write: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    ) -> Result<Vec<u8>> {
        self.0.seal_written(len, rng, write)
    }

    /// The request's encapsulated key `enc`: unique per request, so usable as a replay
    /// identifier.
    #[must_use]
    pub fn enc(&self) -> &[u8] {
        &self.0.enc
    }
}
