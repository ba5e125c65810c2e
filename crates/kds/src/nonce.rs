//! The KDS's single-use nonces (key release and replica join).
//!
//! A nonce is self-authenticating, so that any replica sharing the master secret can check a nonce
//! that another replica issued (engines behind one service name may reach a different replica for
//! the nonce and for the release):
//!
//! ```text
//! purpose (1) ‖ random (11) ‖ expires_at (8, big-endian unix seconds) ‖ tag (12)
//! tag = HMAC-SHA256(nonce_key, "clave/v1/kds-nonce" ‖ first 20 bytes)[..12]
//! nonce_key = HKDF-SHA256(master, info = "clave/v1/kds-nonce-key")
//! ```
//!
//! A nonce is refused when its tag does not verify (`NonceUnknown`: not issued by a KDS holding
//! this master, or a nonce of the other purpose), when it has expired (`NonceExpired`), or when this
//! replica has already seen it (`NonceReused`; consumed by the first request that names it, whether
//! that request succeeds or not). The set of used nonces is bounded and holds each one only until
//! it expires; when it is full, new requests are refused (`NonceStoreFull`) rather than forgetting
//! a used nonce, which would allow its reuse.
//!
//! Single use is per replica: a nonce used at one replica could be presented once more at another
//! before it expires. That gains an attacker nothing: the evidence binds the requester's ephemeral
//! public key, and the released key is sealed to that key, which only the attested enclave holds.

use std::collections::{HashMap, VecDeque};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::Error;

const TAG_LABEL: &[u8] = b"clave/v1/kds-nonce";
const TAG_LEN: usize = 12;
const SIGNED_LEN: usize = 32 - TAG_LEN;

/// What a nonce was issued for; a nonce of one purpose is unknown to the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NoncePurpose {
    Release,
    Replica,
}

impl NoncePurpose {
    fn byte(self) -> u8 {
        match self {
            NoncePurpose::Release => 1,
            NoncePurpose::Replica => 2,
        }
    }
}

/// Issues and checks nonces; remembers used ones until they expire.
pub(crate) struct NonceStore {
    key: Zeroizing<[u8; 32]>,
    used: HashMap<[u8; 32], u64>,
    order: VecDeque<([u8; 32], u64)>,
    capacity: usize,
    ttl: u64,
}

impl std::fmt::Debug for NonceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceStore")
            .field("used", &self.used.len())
            .field("capacity", &self.capacity)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl NonceStore {
    /// `key` is the nonce key derived from the master secret (identical on every replica).
    pub(crate) fn new(key: Zeroizing<[u8; 32]>, capacity: usize, ttl: u64) -> Self {
        NonceStore {
            key,
            used: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            ttl,
        }
    }

    fn tag(&self, signed: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.key.as_slice())
            .expect("HMAC accepts a key of any length");
        mac.update(TAG_LABEL);
        mac.update(signed);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    /// Builds a nonce from 11 fresh random bytes; returns it with its expiry (unix seconds).
    pub(crate) fn issue(
        &mut self,
        random: [u8; 11],
        purpose: NoncePurpose,
        now: u64,
    ) -> ([u8; 32], u64) {
        let expires_at = now.saturating_add(self.ttl);
        let mut nonce = [0u8; 32];
        nonce[0] = purpose.byte();
        nonce[1..12].copy_from_slice(&random);
        nonce[12..20].copy_from_slice(&expires_at.to_be_bytes());
        let tag = self.tag(&nonce[..SIGNED_LEN]);
        nonce[SIGNED_LEN..].copy_from_slice(&tag);
        (nonce, expires_at)
    }

    /// Consumes a nonce: refuses forged or foreign, reused, or expired ones (a genuine nonce is
    /// marked used even when it is refused as expired).
    pub(crate) fn consume(
        &mut self,
        nonce: &[u8; 32],
        purpose: NoncePurpose,
        now: u64,
    ) -> Result<(), Error> {
        let expected = self.tag(&nonce[..SIGNED_LEN]);
        let tag_ok: bool =
            subtle::ConstantTimeEq::ct_eq(&expected[..], &nonce[SIGNED_LEN..]).into();
        if !tag_ok || nonce[0] != purpose.byte() {
            return Err(Error::NonceUnknown);
        }
        let mut expiry = [0u8; 8];
        expiry.copy_from_slice(&nonce[12..20]);
        let expires_at = u64::from_be_bytes(expiry);
        if expires_at > now.saturating_add(self.ttl) {
            // Only a KDS with a longer TTL (misconfigured replica) issues such a nonce.
            return Err(Error::NonceUnknown);
        }
        self.purge(now);
        if self.used.contains_key(nonce) {
            return Err(Error::NonceReused);
        }
        if now > expires_at {
            return Err(Error::NonceExpired);
        }
        if self.used.len() >= self.capacity {
            return Err(Error::NonceStoreFull);
        }
        self.used.insert(*nonce, expires_at);
        self.order.push_back((*nonce, expires_at));
        Ok(())
    }

    /// Forgets used nonces once they have expired (they can no longer be accepted anyway).
    fn purge(&mut self, now: u64) {
        // `order` is in insertion order; expiries are monotone per replica because the TTL is fixed,
        // and entries with a later expiry never block earlier ones for longer than one TTL.
        while let Some(&(front, expires_at)) = self.order.front() {
            if expires_at >= now {
                break;
            }
            self.order.pop_front();
            self.used.remove(&front);
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.used.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(key: u8, capacity: usize) -> NonceStore {
        NonceStore::new(Zeroizing::new([key; 32]), capacity, 60)
    }

    #[test]
    fn single_use_and_expiry() {
        let mut s = store(7, 8);
        let (n1, exp) = s.issue([1; 11], NoncePurpose::Release, 100);
        assert_eq!(exp, 160);
        assert!(s.consume(&n1, NoncePurpose::Release, 160).is_ok());
        assert!(matches!(
            s.consume(&n1, NoncePurpose::Release, 160),
            Err(Error::NonceReused)
        ));
        let (n2, _) = s.issue([2; 11], NoncePurpose::Release, 100);
        assert!(matches!(
            s.consume(&n2, NoncePurpose::Release, 161),
            Err(Error::NonceExpired)
        ));
        let mut forged = n2;
        forged[5] ^= 1;
        assert!(matches!(
            s.consume(&forged, NoncePurpose::Release, 100),
            Err(Error::NonceUnknown)
        ));
        assert!(matches!(
            s.consume(&[3; 32], NoncePurpose::Release, 100),
            Err(Error::NonceUnknown)
        ));
    }

    #[test]
    fn every_bit_flip_is_refused() {
        let mut s = store(7, 8);
        let (n, _) = s.issue([9; 11], NoncePurpose::Release, 0);
        for i in 0..32 {
            for bit in 0..8 {
                let mut m = n;
                m[i] ^= 1 << bit;
                assert!(
                    matches!(
                        s.consume(&m, NoncePurpose::Release, 0),
                        Err(Error::NonceUnknown)
                    ),
                    "flip at byte {i} bit {bit}"
                );
            }
        }
        assert!(s.consume(&n, NoncePurpose::Release, 0).is_ok());
    }

    #[test]
    fn replicas_sharing_the_key_accept_each_other_and_others_do_not() {
        let mut a = store(7, 8);
        let mut b = store(7, 8);
        let mut other = store(8, 8);
        let (n, _) = a.issue([4; 11], NoncePurpose::Release, 0);
        assert!(matches!(
            other.consume(&n, NoncePurpose::Release, 0),
            Err(Error::NonceUnknown)
        ));
        assert!(b.consume(&n, NoncePurpose::Release, 0).is_ok());
        assert!(matches!(
            b.consume(&n, NoncePurpose::Release, 0),
            Err(Error::NonceReused)
        ));
    }

    #[test]
    fn purpose_separation() {
        let mut s = store(7, 8);
        let (n, _) = s.issue([1; 11], NoncePurpose::Replica, 0);
        assert!(matches!(
            s.consume(&n, NoncePurpose::Release, 0),
            Err(Error::NonceUnknown)
        ));
        assert!(s.consume(&n, NoncePurpose::Replica, 0).is_ok());
    }

    #[test]
    fn bounded_and_purged_without_forgetting_live_nonces() {
        let mut s = store(7, 4);
        let nonces: Vec<_> = (0..5u8)
            .map(|i| s.issue([i; 11], NoncePurpose::Release, 0).0)
            .collect();
        for n in &nonces[..4] {
            assert!(s.consume(n, NoncePurpose::Release, 0).is_ok());
        }
        // Full: a fifth live nonce is refused, and the used ones are still remembered.
        assert!(matches!(
            s.consume(&nonces[4], NoncePurpose::Release, 0),
            Err(Error::NonceStoreFull)
        ));
        assert!(matches!(
            s.consume(&nonces[0], NoncePurpose::Release, 0),
            Err(Error::NonceReused)
        ));
        assert_eq!(s.len(), 4);
        // After expiry the used set empties and new nonces are accepted again.
        let (fresh, _) = s.issue([42; 11], NoncePurpose::Release, 1000);
        assert!(s.consume(&fresh, NoncePurpose::Release, 1000).is_ok());
        assert_eq!(s.len(), 1);
    }
}
