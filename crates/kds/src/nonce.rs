//! The KDS's single-use nonces (key release and replica join).
//!
//! Nonces are random, expire after a short time, are consumed by the first request that names
//! them (whether it succeeds or not), and live in a bounded in-memory store: when the store is
//! full the oldest nonce is forgotten (a request naming it is then refused as unknown). Nonces
//! are per replica and do not survive a restart; callers ask the same replica for the nonce and
//! the release.

use std::collections::{HashMap, VecDeque};

use crate::Error;

/// What a nonce was issued for; a nonce of one purpose is unknown to the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NoncePurpose {
    Release,
    Replica,
}

#[derive(Debug)]
struct Entry {
    purpose: NoncePurpose,
    expires_at: u64,
    used: bool,
}

/// A bounded store of issued nonces.
#[derive(Debug)]
pub(crate) struct NonceStore {
    entries: HashMap<[u8; 32], Entry>,
    order: VecDeque<[u8; 32]>,
    capacity: usize,
    ttl: u64,
}

impl NonceStore {
    pub(crate) fn new(capacity: usize, ttl: u64) -> Self {
        NonceStore {
            entries: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            ttl,
        }
    }

    /// Records a freshly drawn nonce; returns its expiry (unix seconds).
    pub(crate) fn issue(&mut self, nonce: [u8; 32], purpose: NoncePurpose, now: u64) -> u64 {
        self.purge(now);
        while self.entries.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.entries.remove(&old);
                }
                None => break,
            }
        }
        let expires_at = now.saturating_add(self.ttl);
        if self
            .entries
            .insert(
                nonce,
                Entry {
                    purpose,
                    expires_at,
                    used: false,
                },
            )
            .is_none()
        {
            self.order.push_back(nonce);
        }
        expires_at
    }

    /// Consumes a nonce: refuses unknown, reused, or expired ones (and marks it used anyway).
    pub(crate) fn consume(
        &mut self,
        nonce: &[u8; 32],
        purpose: NoncePurpose,
        now: u64,
    ) -> Result<(), Error> {
        let Some(entry) = self.entries.get_mut(nonce) else {
            return Err(Error::NonceUnknown);
        };
        if entry.purpose != purpose {
            return Err(Error::NonceUnknown);
        }
        if entry.used {
            return Err(Error::NonceReused);
        }
        entry.used = true;
        if now > entry.expires_at {
            return Err(Error::NonceExpired);
        }
        Ok(())
    }

    /// Forgets entries well past expiry (kept one extra TTL to report reuse precisely).
    fn purge(&mut self, now: u64) {
        while let Some(front) = self.order.front() {
            let keep_until = self
                .entries
                .get(front)
                .map(|e| e.expires_at.saturating_add(self.ttl));
            match keep_until {
                Some(t) if t >= now => break,
                _ => {
                    if let Some(old) = self.order.pop_front() {
                        self.entries.remove(&old);
                    }
                }
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_use_and_expiry() {
        let mut s = NonceStore::new(8, 60);
        assert_eq!(s.issue([1; 32], NoncePurpose::Release, 100), 160);
        assert!(s.consume(&[1; 32], NoncePurpose::Release, 160).is_ok());
        assert!(matches!(
            s.consume(&[1; 32], NoncePurpose::Release, 161),
            Err(Error::NonceReused)
        ));
        s.issue([2; 32], NoncePurpose::Release, 100);
        assert!(matches!(
            s.consume(&[2; 32], NoncePurpose::Release, 161),
            Err(Error::NonceExpired)
        ));
        // consumed even though it failed
        assert!(matches!(
            s.consume(&[2; 32], NoncePurpose::Release, 100),
            Err(Error::NonceReused)
        ));
        assert!(matches!(
            s.consume(&[3; 32], NoncePurpose::Release, 100),
            Err(Error::NonceUnknown)
        ));
    }

    #[test]
    fn purpose_separation() {
        let mut s = NonceStore::new(8, 60);
        s.issue([1; 32], NoncePurpose::Replica, 0);
        assert!(matches!(
            s.consume(&[1; 32], NoncePurpose::Release, 0),
            Err(Error::NonceUnknown)
        ));
        assert!(s.consume(&[1; 32], NoncePurpose::Replica, 0).is_ok());
    }

    #[test]
    fn bounded_and_purged() {
        let mut s = NonceStore::new(4, 60);
        for i in 0..10u8 {
            s.issue([i; 32], NoncePurpose::Release, 0);
            assert!(s.len() <= 4);
        }
        assert!(matches!(
            s.consume(&[0; 32], NoncePurpose::Release, 0),
            Err(Error::NonceUnknown)
        ));
        assert!(s.consume(&[9; 32], NoncePurpose::Release, 0).is_ok());
        s.issue([42; 32], NoncePurpose::Release, 1000);
        assert_eq!(s.len(), 1);
    }
}
