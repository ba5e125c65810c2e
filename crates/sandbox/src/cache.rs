//! Bounded in-memory cache of compiled module bytecode, keyed by code hash.
//!
//! Bytecode enters only through [`BytecodeCache::insert_compiled`], called by this crate after it
//! compiled source whose SHA-256 equals the key: the cache never holds bytecode from outside.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Bounded cache of bytecode per code hash (least recently used entries are evicted first).
pub struct BytecodeCache {
    inner: Mutex<Inner>,
    max_bytes: usize,
}

struct Inner {
    map: HashMap<[u8; 32], (Arc<[u8]>, u64)>,
    bytes: usize,
    tick: u64,
}

impl std::fmt::Debug for BytecodeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BytecodeCache")
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl BytecodeCache {
    /// A cache holding at most `max_bytes` of bytecode (0 disables caching).
    pub fn new(max_bytes: usize) -> Self {
        BytecodeCache {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                bytes: 0,
                tick: 0,
            }),
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map inconsistent (no partial updates).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The bytecode cached for `hash`, if any.
    pub(crate) fn get(&self, hash: &[u8; 32]) -> Option<Arc<[u8]>> {
        let mut g = self.lock();
        g.tick += 1;
        let tick = g.tick;
        g.map.get_mut(hash).map(|(b, t)| {
            *t = tick;
            b.clone()
        })
    }

    /// Stores bytecode this crate compiled from source hashing to `hash`.
    pub(crate) fn insert_compiled(&self, hash: [u8; 32], bytecode: Arc<[u8]>) {
        if bytecode.len() > self.max_bytes {
            return;
        }
        let mut g = self.lock();
        g.tick += 1;
        let tick = g.tick;
        if let Some((old, _)) = g.map.insert(hash, (bytecode.clone(), tick)) {
            g.bytes -= old.len();
        }
        g.bytes += bytecode.len();
        while g.bytes > self.max_bytes {
            let Some((&k, _)) = g.map.iter().min_by_key(|(_, (_, t))| *t) else {
                break;
            };
            if let Some((old, _)) = g.map.remove(&k) {
                g.bytes -= old.len();
            }
        }
    }

    /// Number of cached entries.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// True if nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of bytecode held.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used() {
        let c = BytecodeCache::new(10);
        c.insert_compiled([1; 32], Arc::from(vec![0u8; 4]));
        c.insert_compiled([2; 32], Arc::from(vec![0u8; 4]));
        assert!(c.get(&[1; 32]).is_some());
        c.insert_compiled([3; 32], Arc::from(vec![0u8; 4]));
        assert!(c.get(&[2; 32]).is_none());
        assert!(c.get(&[1; 32]).is_some());
        assert!(c.get(&[3; 32]).is_some());
        assert_eq!(c.bytes(), 8);
        c.insert_compiled([4; 32], Arc::from(vec![0u8; 11]));
        assert!(c.get(&[4; 32]).is_none());
    }
}
