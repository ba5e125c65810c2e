//! Opened code, cached in memory only (never on disk), keyed by code hash and manifest digest,
//! bounded by entry count and total bytes with least-recently-used eviction.

use std::collections::HashMap;
use std::sync::Arc;

use clave_proto::CodeHash;

/// Cache key: the verified code hash and the digest of the manifest the code was sealed to.
pub(crate) type CodeKey = (CodeHash, [u8; 32]);

#[derive(Debug)]
struct Entry {
    code: Arc<str>,
    last_used: u64,
}

/// A small LRU of opened code.
#[derive(Debug)]
pub(crate) struct CodeCache {
    max_entries: usize,
    max_bytes: usize,
    bytes: usize,
    tick: u64,
    entries: HashMap<CodeKey, Entry>,
}

impl CodeCache {
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            max_entries,
            max_bytes,
            bytes: 0,
            tick: 0,
            entries: HashMap::new(),
        }
    }

    pub(crate) fn get(&mut self, key: &CodeKey) -> Option<Arc<str>> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(key).map(|e| {
            e.last_used = tick;
            e.code.clone()
        })
    }

    pub(crate) fn insert(&mut self, key: CodeKey, code: Arc<str>) {
        if self.max_entries == 0 || code.len() > self.max_bytes {
            return;
        }
        self.tick += 1;
        if let Some(old) = self.entries.remove(&key) {
            self.bytes -= old.code.len();
        }
        while !self.entries.is_empty()
            && (self.entries.len() >= self.max_entries || self.bytes + code.len() > self.max_bytes)
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
                self.bytes -= e.code.len();
            }
        }
        self.bytes += code.len();
        self.entries.insert(
            key,
            Entry {
                code,
                last_used: self.tick,
            },
        );
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> CodeKey {
        (CodeHash([b; 32]), [b; 32])
    }

    #[test]
    fn lru_by_entries_and_bytes() {
        let mut c = CodeCache::new(2, 10);
        c.insert(key(1), Arc::from("aaaa"));
        c.insert(key(2), Arc::from("bbbb"));
        assert!(c.get(&key(1)).is_some());
        c.insert(key(3), Arc::from("cccc"));
        assert!(c.get(&key(2)).is_none(), "least recently used evicted");
        assert!(c.get(&key(1)).is_some());
        c.insert(key(4), Arc::from("dddddddd"));
        assert_eq!(c.len(), 1);
        c.insert(key(5), Arc::from("x".repeat(11).as_str()));
        assert!(c.get(&key(5)).is_none(), "larger than the cache: not kept");
    }
}
