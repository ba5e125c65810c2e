//! The bounded replay cache.
//!
//! An encapsulated request is identified by its [`ReplayId`] (SHA-256 of its HPKE `enc`). The
//! engine only accepts requests whose `date` lies within ±window of its clock, so an entry only
//! needs to be remembered until `date + window`: after that the date check refuses the replay
//! anyway. Memory is therefore bounded by the request rate times the window, and by a hard
//! capacity; when the cache is full of live entries a new request is refused (nothing runs)
//! rather than an entry forgotten early.
//!
//! Asynchronous redelivery (a queue handing the same job twice) is indistinguishable from a
//! replay: a redelivering queue must keep and reuse the first result instead of re-running the
//! job, which would be refused.

use std::collections::{BTreeSet, HashMap};

use clave_proto::ReplayId;

/// What [`ReplayCache::check_and_insert`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// First sighting: recorded.
    Fresh,
    /// Seen before and not yet expired.
    Replayed,
    /// The cache is full of live entries; not recorded.
    Full,
}

/// Replay ids with their expiry time (unix seconds).
#[derive(Debug)]
pub(crate) struct ReplayCache {
    capacity: usize,
    expiry: HashMap<ReplayId, u64>,
    by_expiry: BTreeSet<(u64, ReplayId)>,
}

impl ReplayCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            expiry: HashMap::new(),
            by_expiry: BTreeSet::new(),
        }
    }

    fn purge(&mut self, now: u64) {
        while let Some(&(exp, id)) = self.by_expiry.first() {
            if exp >= now {
                break;
            }
            self.by_expiry.pop_first();
            self.expiry.remove(&id);
        }
    }

    /// Record `id` until `expires_at` unless it is already live.
    pub(crate) fn check_and_insert(&mut self, id: ReplayId, expires_at: u64, now: u64) -> Verdict {
        self.purge(now);
        if self.expiry.contains_key(&id) {
            return Verdict::Replayed;
        }
        if self.expiry.len() >= self.capacity {
            return Verdict::Full;
        }
        self.expiry.insert(id, expires_at);
        self.by_expiry.insert((expires_at, id));
        Verdict::Fresh
    }

    pub(crate) fn len(&self) -> usize {
        self.expiry.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> ReplayId {
        ReplayId([b; 32])
    }

    #[test]
    fn replay_detected_until_expiry() {
        let mut c = ReplayCache::new(10);
        assert_eq!(c.check_and_insert(id(1), 160, 100), Verdict::Fresh);
        assert_eq!(c.check_and_insert(id(1), 160, 150), Verdict::Replayed);
        assert_eq!(c.check_and_insert(id(1), 160, 160), Verdict::Replayed);
        assert_eq!(c.check_and_insert(id(1), 230, 161), Verdict::Fresh);
    }

    #[test]
    fn bounded_and_purges() {
        let mut c = ReplayCache::new(2);
        assert_eq!(c.check_and_insert(id(1), 110, 100), Verdict::Fresh);
        assert_eq!(c.check_and_insert(id(2), 120, 100), Verdict::Fresh);
        assert_eq!(c.check_and_insert(id(3), 120, 100), Verdict::Full);
        assert_eq!(c.len(), 2);
        assert_eq!(c.check_and_insert(id(3), 130, 111), Verdict::Fresh);
        assert_eq!(c.len(), 2);
        assert_eq!(c.check_and_insert(id(1), 130, 111), Verdict::Full);
    }
}
