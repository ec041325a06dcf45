//! Where entries live: the memory tier (moka, weighted by bytes) and the tiering of memory
//! over the optional disk tier, both [`Storage`]s.
//!
//! Storage knows keys and entries, never HTTP rules: what is cacheable and for how long is
//! decided before an entry reaches it (`cache::freshness`).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::Storage;
use super::disk::Disk;
use super::entry::{CacheKey, Entry};

/// Retains an entry as long as its `keep_until` says, measured from insertion.
struct KeepUntil;

impl moka::Expiry<CacheKey, Arc<Entry>> for KeepUntil {
    fn expire_after_create(&self, _key: &CacheKey, value: &Arc<Entry>, _created_at: Instant) -> Option<Duration> {
        Some(value.keep_until.duration_since(value.stored_at).unwrap_or_default())
    }

    fn expire_after_update(
        &self,
        _key: &CacheKey,
        value: &Arc<Entry>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.keep_until.duration_since(value.stored_at).unwrap_or_default())
    }
}

/// The memory tier: a byte-weighted moka cache (TinyLFU admission, LRU eviction).
pub(crate) struct Memory {
    cache: moka::sync::Cache<CacheKey, Arc<Entry>>,
}

impl Memory {
    /// A memory tier holding at most `max_bytes` of entries (as [`Entry::weight`] counts).
    pub(crate) fn new(max_bytes: u64) -> Self {
        let cache = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|k: &CacheKey, v: &Arc<Entry>| v.weight(k))
            .expire_after(KeepUntil)
            .support_invalidation_closures()
            .build();
        Self { cache }
    }

    fn lookup(&self, key: &CacheKey) -> Option<Arc<Entry>> {
        self.cache.get(key)
    }
}

impl Storage for Memory {
    fn get(&self, key: &CacheKey, _now: SystemTime) -> impl Future<Output = Option<Arc<Entry>>> + Send {
        std::future::ready(self.lookup(key))
    }

    fn put(&self, key: CacheKey, entry: Arc<Entry>) {
        self.cache.insert(key, entry);
    }

    fn purge(&self, dist: &str) {
        let dist: Arc<str> = Arc::from(dist);
        // moka applies the predicate to reads at once; memory is reclaimed in the background.
        if let Err(e) = self.cache.invalidate_entries_if(move |k, _| k.dist == dist) {
            tracing::warn!(error = %e, "cache purge predicate refused");
        }
    }

    fn bytes(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.weighted_size()
    }
}

/// Memory over the optional disk tier: a memory miss reads the disk (and keeps what it
/// found in memory); writes and purges go to both.
pub(crate) struct Tiered {
    pub(crate) memory: Memory,
    pub(crate) disk: Option<Disk>,
}

impl Storage for Tiered {
    async fn get(&self, key: &CacheKey, now: SystemTime) -> Option<Arc<Entry>> {
        if let Some(entry) = self.memory.lookup(key) {
            return Some(entry);
        }
        let entry = self.disk.as_ref()?.get(key, now).await?;
        self.memory.put(key.clone(), entry.clone());
        Some(entry)
    }

    fn put(&self, key: CacheKey, entry: Arc<Entry>) {
        if let Some(disk) = &self.disk {
            disk.put(key.clone(), entry.clone());
        }
        self.memory.put(key, entry);
    }

    fn purge(&self, dist: &str) {
        if let Some(disk) = &self.disk {
            disk.purge(dist);
        }
        self.memory.purge(dist);
    }

    fn bytes(&self) -> u64 {
        self.memory.bytes()
    }
}
