//! The bounded replay cache.
//!
//! An encapsulated request is identified by its [`ReplayId`] (SHA-256 of its HPKE `enc`). The
//! engine only accepts requests whose `date` lies within ±window of its clock, so an entry only
//! needs to be remembered until `date + window`: after that the date check refuses the replay
//! anyway. Memory is therefore bounded by the request rate times the window, and by a hard
//! capacity; when the cache is full of live entries a new request is refused (nothing runs)
//! rather than an entry forgotten early.
//!
//! Entries are kept compact (about 40 bytes each): the first 128 bits of the replay id (a
//! collision between two honest requests is a 2^-128-per-pair event; it would only refuse the
//! second one, never run anything twice) in a hash set, plus a per-second expiry bucket.
//!
//! Asynchronous redelivery (a queue handing the same job twice) is indistinguishable from a
//! replay: a redelivering queue must keep and reuse the first result instead of re-running the
//! job, which would be refused.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

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

fn fingerprint(id: &ReplayId) -> u128 {
    let mut b = [0u8; 16];
    b.copy_from_slice(&id.0[..16]);
    u128::from_le_bytes(b)
}

/// Replay ids with their expiry time (unix seconds).
#[derive(Debug)]
pub(crate) struct ReplayCache {
    capacity: usize,
    live: HashSet<u128>,
    /// Expiry second → the ids expiring then.
    by_expiry: BTreeMap<u64, Vec<u128>>,
}

impl ReplayCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            live: HashSet::new(),
            by_expiry: BTreeMap::new(),
        }
    }

    fn purge(&mut self, now: u64) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if *entry.key() >= now {
                break;
            }
            for id in entry.remove() {
                self.live.remove(&id);
            }
        }
    }

    /// Record `id` until `expires_at` unless it is already live.
    pub(crate) fn check_and_insert(&mut self, id: ReplayId, expires_at: u64, now: u64) -> Verdict {
        self.purge(now);
        let id = fingerprint(&id);
        if self.live.contains(&id) {
            return Verdict::Replayed;
        }
        if self.live.len() >= self.capacity {
            return Verdict::Full;
        }
        self.live.insert(id);
        self.by_expiry.entry(expires_at).or_default().push(id);
        Verdict::Fresh
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.live.len()
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

/// Sealed responses of asynchronous jobs ([`clave_proto::gateway_api::JobFlags::ASYNC`]), kept so
/// that a queue redelivering the same encapsulated request gets exactly the bytes of the first
/// run instead of a replay refusal (the bytes are sealed to the caller: repeating them reveals
/// nothing). Bounded by entries and bytes; when full, the entries closest to expiry go first (a
/// forgotten result only turns a later repeat into a replay refusal, never into a second run).
#[derive(Debug)]
pub(crate) struct ResultCache {
    max_entries: usize,
    max_bytes: usize,
    bytes: usize,
    results: HashMap<ReplayId, (u64, std::sync::Arc<Vec<u8>>)>,
    by_expiry: BTreeSet<(u64, ReplayId)>,
}

impl ResultCache {
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            max_entries,
            max_bytes,
            bytes: 0,
            results: HashMap::new(),
            by_expiry: BTreeSet::new(),
        }
    }

    fn remove_first(&mut self) {
        if let Some((_, id)) = self.by_expiry.pop_first()
            && let Some((_, r)) = self.results.remove(&id)
        {
            self.bytes -= r.len();
        }
    }

    fn purge(&mut self, now: u64) {
        while let Some(&(exp, _)) = self.by_expiry.first() {
            if exp >= now {
                break;
            }
            self.remove_first();
        }
    }

    /// The held response of `id`, if any.
    pub(crate) fn get(&mut self, id: &ReplayId, now: u64) -> Option<std::sync::Arc<Vec<u8>>> {
        self.purge(now);
        self.results.get(id).map(|(_, r)| r.clone())
    }

    /// Hold `response` for `id` until `expires_at`.
    pub(crate) fn insert(&mut self, id: ReplayId, response: Vec<u8>, expires_at: u64, now: u64) {
        self.purge(now);
        if self.max_entries == 0
            || response.len() > self.max_bytes
            || self.results.contains_key(&id)
        {
            return;
        }
        while !self.results.is_empty()
            && (self.results.len() >= self.max_entries
                || self.bytes + response.len() > self.max_bytes)
        {
            self.remove_first();
        }
        self.bytes += response.len();
        self.by_expiry.insert((expires_at, id));
        self.results
            .insert(id, (expires_at, std::sync::Arc::new(response)));
    }
}

#[cfg(test)]
mod result_tests {
    use super::*;

    #[test]
    fn held_until_expiry_and_bounded() {
        let mut c = ResultCache::new(2, 10);
        c.insert(ReplayId([1; 32]), vec![1; 4], 100, 50);
        assert_eq!(c.get(&ReplayId([1; 32]), 100).as_deref(), Some(&vec![1; 4]));
        assert!(c.get(&ReplayId([1; 32]), 101).is_none());
        c.insert(ReplayId([2; 32]), vec![2; 4], 200, 150);
        c.insert(ReplayId([3; 32]), vec![3; 4], 300, 150);
        c.insert(ReplayId([4; 32]), vec![4; 4], 400, 150);
        assert!(
            c.get(&ReplayId([2; 32]), 150).is_none(),
            "closest to expiry evicted"
        );
        assert!(c.get(&ReplayId([4; 32]), 150).is_some());
        c.insert(ReplayId([5; 32]), vec![5; 11], 400, 150);
        assert!(
            c.get(&ReplayId([5; 32]), 150).is_none(),
            "too large to hold"
        );
    }
}
