//! The in-memory artifact cache: immutable version bytes and which version is active.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Most artifacts (manifest + sealed code of one version) kept in memory per store.
pub(super) const ARTIFACT_CACHE_ENTRIES: usize = 1024;
/// Most bytes of artifacts kept in memory per store.
pub(super) const ARTIFACT_CACHE_BYTES: usize = 64 << 20;

/// The bytes of one immutable version (shared with every job that dispatches it, not copied).
#[derive(Debug)]
pub(super) struct CachedArtifact {
    pub(super) manifest: bytes::Bytes,
    pub(super) sealed_code: bytes::Bytes,
    pub(super) last_used: u64,
}

impl CachedArtifact {
    pub(super) fn size(&self) -> usize {
        self.manifest.len() + self.sealed_code.len()
    }
}

/// (function id, active version, remembered at).
pub(super) type ActiveEntry = (i64, i64, Instant);

/// Artifact bytes by (function row id, version), least recently used out first. Both halves of
/// the key are never reused: function ids come from an autoincrement/identity column (a deleted
/// and re-created function gets a new id) and version rows are never updated, so an entry can
/// never go stale.
///
/// Which version is active is remembered too, exactly as long as the store can vouch that it
/// learns of every change ([`ChangeSource`]): each change of any function of the database moves
/// the *change stamp*, and a moved stamp forgets every remembered active version at once. When
/// the store cannot vouch (PostgreSQL with its LISTEN connection down), the active version is
/// read from the database on every call, or, with the opt-in `active_ttl` > 0, remembered for at
/// most that long. Every deploy, activate, rollback and delete through this store also forgets
/// all of it at once (and a lookup that raced with one is not remembered: `generation`).
#[derive(Debug)]
pub(super) struct ArtifactCache {
    pub(super) max_entries: usize,
    pub(super) max_bytes: usize,
    pub(super) bytes: usize,
    pub(super) tick: u64,
    pub(super) entries: HashMap<(i64, i64), CachedArtifact>,
    pub(super) active_ttl: Duration,
    pub(super) generation: u64,
    /// The change stamp the remembered active versions were read under.
    pub(super) stamp: Option<u64>,
    /// project → function → active entry (looked up without allocating).
    pub(super) active: HashMap<String, HashMap<String, ActiveEntry>>,
    pub(super) active_len: usize,
    /// (project, function) → its sealed secret set, remembered exactly like the active
    /// versions (and forgotten with them).
    pub(super) secrets: HashMap<String, HashMap<String, (bytes::Bytes, Instant)>>,
    pub(super) secrets_len: usize,
}

impl ArtifactCache {
    pub(super) fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            max_entries,
            max_bytes,
            bytes: 0,
            tick: 0,
            entries: HashMap::new(),
            active_ttl: Duration::ZERO,
            generation: 0,
            stamp: None,
            active: HashMap::new(),
            active_len: 0,
            secrets: HashMap::new(),
            secrets_len: 0,
        }
    }

    /// Bring the cache to the current change stamp (`None`: unknown, nothing exact).
    pub(super) fn observe(&mut self, stamp: Option<u64>) {
        if stamp != self.stamp {
            self.stamp = stamp;
            self.invalidate_active();
        }
    }

    /// A remembered active version: exact while the stamp is known (see [`Self::observe`]),
    /// else only younger than the TTL.
    pub(super) fn active(&self, project: &str, function: &str) -> Option<(i64, i64)> {
        if self.stamp.is_none() && self.active_ttl.is_zero() {
            return None;
        }
        let (fid, version, at) = self.active.get(project)?.get(function)?;
        (self.stamp.is_some() || at.elapsed() < self.active_ttl).then_some((*fid, *version))
    }

    /// Remember an active version looked up while the generation was `generation`.
    pub(super) fn remember_active(
        &mut self,
        generation: u64,
        project: &str,
        function: &str,
        fid: i64,
        version: i64,
    ) {
        if (self.stamp.is_none() && self.active_ttl.is_zero()) || generation != self.generation {
            return;
        }
        if self.active_len >= self.max_entries.max(1) * 4 {
            self.active.clear();
            self.active_len = 0;
        }
        let functions = self.active.entry(project.to_owned()).or_default();
        if functions
            .insert(function.to_owned(), (fid, version, Instant::now()))
            .is_none()
        {
            self.active_len += 1;
        }
    }

    /// Something changed which version is active: forget every remembered one.
    pub(super) fn invalidate_active(&mut self) {
        self.generation += 1;
        self.active.clear();
        self.active_len = 0;
        self.secrets.clear();
        self.secrets_len = 0;
    }

    /// A remembered secret set, under the rules of [`Self::active`].
    pub(super) fn secrets(&self, project: &str, function: &str) -> Option<bytes::Bytes> {
        if self.stamp.is_none() && self.active_ttl.is_zero() {
            return None;
        }
        let (set, at) = self.secrets.get(project)?.get(function)?;
        (self.stamp.is_some() || at.elapsed() < self.active_ttl).then(|| set.clone())
    }

    /// Remember a secret set read while the generation was `generation`.
    pub(super) fn remember_secrets(
        &mut self,
        generation: u64,
        project: &str,
        function: &str,
        set: bytes::Bytes,
    ) {
        if (self.stamp.is_none() && self.active_ttl.is_zero()) || generation != self.generation {
            return;
        }
        if self.secrets_len >= self.max_entries.max(1) * 4 {
            self.secrets.clear();
            self.secrets_len = 0;
        }
        let functions = self.secrets.entry(project.to_owned()).or_default();
        if functions
            .insert(function.to_owned(), (set, Instant::now()))
            .is_none()
        {
            self.secrets_len += 1;
        }
    }

    pub(super) fn get(&mut self, key: (i64, i64)) -> Option<(bytes::Bytes, bytes::Bytes)> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(&key).map(|e| {
            e.last_used = tick;
            (e.manifest.clone(), e.sealed_code.clone())
        })
    }

    pub(super) fn insert(
        &mut self,
        key: (i64, i64),
        manifest: &bytes::Bytes,
        sealed_code: &bytes::Bytes,
    ) {
        let size = manifest.len() + sealed_code.len();
        if self.max_entries == 0 || size > self.max_bytes / 4 {
            return;
        }
        self.tick += 1;
        if let Some(old) = self.entries.remove(&key) {
            self.bytes -= old.size();
        }
        while !self.entries.is_empty()
            && (self.entries.len() >= self.max_entries || self.bytes + size > self.max_bytes)
        {
            let Some(victim) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(e) = self.entries.remove(&victim) {
                self.bytes -= e.size();
            }
        }
        self.bytes += size;
        self.entries.insert(
            key,
            CachedArtifact {
                manifest: manifest.clone(),
                sealed_code: sealed_code.clone(),
                last_used: self.tick,
            },
        );
    }

    pub(super) fn remove_function(&mut self, function_id: i64) {
        let bytes = &mut self.bytes;
        self.entries.retain(|(fid, _), e| {
            if *fid == function_id {
                *bytes -= e.size();
                false
            } else {
                true
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_cache_is_bounded_lru() {
        let b = bytes::Bytes::copy_from_slice;
        let mut c = ArtifactCache::new(2, 40);
        c.insert((1, 1), &b(b"m"), &b(b"aaaa"));
        c.insert((1, 2), &b(b"m"), &b(b"bbbb"));
        assert!(c.get((1, 1)).is_some());
        c.insert((2, 1), &b(b"m"), &b(b"cccc"));
        assert!(c.get((1, 2)).is_none(), "least recently used evicted");
        assert_eq!(c.entries.len(), 2);
        c.insert((3, 1), &b(b"m"), &b(&[0u8; 11]));
        assert!(c.get((3, 1)).is_none(), "larger than a quarter: not kept");
        c.insert((3, 2), &b(b""), &b(&[0u8; 10]));
        assert!(c.bytes <= 40);
        c.remove_function(3);
        assert!(c.get((3, 2)).is_none());
        assert_eq!(
            c.bytes,
            c.entries.values().map(CachedArtifact::size).sum::<usize>()
        );
        // Shared, not copied.
        let code = b(b"sealed");
        c.insert((4, 1), &b(b"m"), &code);
        assert_eq!(c.get((4, 1)).expect("cached").1.as_ptr(), code.as_ptr());
    }

    #[test]
    fn active_versions_live_exactly_as_long_as_the_change_stamp() {
        let mut c = ArtifactCache::new(8, 1 << 20);
        // Unknown stamp, no TTL: nothing is remembered.
        c.observe(None);
        let g = c.generation;
        c.remember_active(g, "p", "f", 1, 1);
        assert_eq!(c.active("p", "f"), None);
        // Known stamp: remembered until the stamp moves.
        c.observe(Some(5));
        let g = c.generation;
        c.remember_active(g, "p", "f", 1, 2);
        c.remember_active(g, "p", "g", 2, 7);
        assert_eq!(c.active("p", "f"), Some((1, 2)));
        assert_eq!(c.active("p", "g"), Some((2, 7)));
        assert_eq!(c.active("q", "f"), None);
        c.observe(Some(5));
        assert_eq!(c.active("p", "f"), Some((1, 2)));
        c.observe(Some(6));
        assert_eq!(c.active("p", "f"), None, "a moved stamp forgets everything");
        assert_eq!(c.active("p", "g"), None);
        // A lookup that started before the stamp moved is not remembered.
        c.remember_active(g, "p", "f", 1, 1);
        assert_eq!(c.active("p", "f"), None);
        // A local change forgets too.
        let g = c.generation;
        c.remember_active(g, "p", "f", 1, 3);
        c.invalidate_active();
        assert_eq!(c.active("p", "f"), None);
        // Losing the stamp forgets, and then only the TTL applies.
        let g = c.generation;
        c.remember_active(g, "p", "f", 1, 3);
        c.observe(None);
        assert_eq!(c.active("p", "f"), None);
        c.active_ttl = Duration::from_secs(60);
        let g = c.generation;
        c.remember_active(g, "p", "f", 1, 4);
        assert_eq!(c.active("p", "f"), Some((1, 4)));
        // Bounded: never more than four times the artifact entries.
        c.observe(Some(9));
        let g = c.generation;
        for i in 0..100 {
            c.remember_active(g, "p", &format!("f{i}"), i, 1);
            assert!(c.active_len <= 32);
        }
    }
}
