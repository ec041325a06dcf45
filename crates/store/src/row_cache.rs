//! Hot rows kept in memory in front of a store that this process alone writes.
//!
//! A point read of SQLite costs a read transaction: two file locks taken and released,
//! the pager's shared lock and a B-tree descent — most of the time of a cheap API call
//! such as DescribeCertificate, which waiters poll. Rows of the kinds named here are
//! served from memory once read.
//!
//! Only kinds that nothing but this store instance writes may be cached: another process
//! writing the same database file (the `carapace keys` commands write access keys) would
//! not invalidate the copy here. Every write batch invalidates the cached copies of the
//! rows it touches before it returns, so a read that starts after a write was
//! acknowledged never sees the row as it was before.
//!
//! A read that misses fills the cache only if no write touched a cached kind while it
//! read: it takes an epoch *ticket* first, and the fill is refused if a write has bumped
//! the epoch since. Fills and invalidations are serialised by one lock, so a stale row
//! cannot slip in between a write's invalidation and its epoch bump.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::{Key, Row};

/// Cached copies of rows, by key.
pub struct RowCache {
    kinds: HashSet<String>,
    rows: moka::sync::Cache<Key, Arc<Row>>,
    /// Bumped by every write that touches a cached kind.
    epoch: AtomicU64,
    /// Serialises fills against invalidations.
    fill: Mutex<()>,
}

impl RowCache {
    /// Caches up to `capacity` rows of the given kinds.
    pub fn new<I, S>(kinds: I, capacity: u64) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            kinds: kinds.into_iter().map(Into::into).collect(),
            rows: moka::sync::Cache::new(capacity),
            epoch: AtomicU64::new(0),
            fill: Mutex::new(()),
        }
    }

    /// True when rows of `kind` are cached.
    pub fn caches(&self, kind: &str) -> bool {
        self.kinds.contains(kind)
    }

    /// The cached copy of a row.
    pub fn get(&self, key: &Key) -> Option<Row> {
        self.rows.get(key).map(|row| Row::clone(&row))
    }

    /// Taken before reading the store; hand it back to [`RowCache::fill`].
    pub fn ticket(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Caches a row read from the store, unless a write may have changed it since `ticket`.
    pub fn fill(&self, ticket: u64, row: &Row) {
        if !self.caches(&row.key.kind) {
            return;
        }
        let _serialised = self.fill.lock().unwrap_or_else(PoisonError::into_inner);
        if self.epoch.load(Ordering::Acquire) == ticket {
            self.rows.insert(row.key.clone(), Arc::new(row.clone()));
        }
    }

    /// Forgets the given rows; call after a write batch touching them ends, whether it
    /// committed or not, and before acknowledging it.
    pub fn invalidate<'a>(&self, keys: impl IntoIterator<Item = &'a Key>) {
        let _serialised = self.fill.lock().unwrap_or_else(PoisonError::into_inner);
        let mut touched = false;
        for key in keys.into_iter().filter(|k| self.caches(&k.kind)) {
            self.rows.invalidate(key);
            touched = true;
        }
        if touched {
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Forgets everything.
    pub fn clear(&self) {
        let _serialised = self.fill.lock().unwrap_or_else(PoisonError::into_inner);
        self.rows.invalidate_all();
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, id: &str, version: u64) -> Row {
        Row { key: Key::new(kind, "s", id), version, created_ms: 1, body: version.to_be_bytes().to_vec() }
    }

    #[test]
    fn only_named_kinds_are_cached() {
        let cache = RowCache::new(["hot"], 10);
        let (hot, cold) = (row("hot", "a", 1), row("cold", "a", 1));
        cache.fill(cache.ticket(), &hot);
        cache.fill(cache.ticket(), &cold);
        assert_eq!(cache.get(&hot.key), Some(hot));
        assert_eq!(cache.get(&cold.key), None);
    }

    #[test]
    fn a_write_during_the_read_refuses_the_fill() {
        let cache = RowCache::new(["hot"], 10);
        let old = row("hot", "a", 1);
        let ticket = cache.ticket();
        // A write to the same row commits while the read is in flight.
        cache.invalidate([&old.key]);
        cache.fill(ticket, &old);
        assert_eq!(cache.get(&old.key), None, "a row read before the write must not be cached");
        let new = row("hot", "a", 2);
        cache.fill(cache.ticket(), &new);
        assert_eq!(cache.get(&new.key), Some(new));
    }

    #[test]
    fn invalidation_forgets_and_writes_to_other_kinds_do_not_bump() {
        let cache = RowCache::new(["hot"], 10);
        let a = row("hot", "a", 1);
        cache.fill(cache.ticket(), &a);
        let ticket = cache.ticket();
        cache.invalidate([&Key::new("cold", "s", "x")]);
        assert_eq!(cache.ticket(), ticket);
        assert_eq!(cache.get(&a.key), Some(a.clone()));
        cache.invalidate([&a.key]);
        assert_eq!(cache.get(&a.key), None);
        cache.fill(cache.ticket(), &a);
        cache.clear();
        assert_eq!(cache.get(&a.key), None);
    }
}
