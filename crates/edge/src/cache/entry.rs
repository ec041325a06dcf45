//! What the cache stores: keys and entries. No rules and no storage here.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};

/// Fixed cost charged per entry on top of its bytes (key, policy, map overhead).
const ENTRY_OVERHEAD: usize = 512;

/// Key of a cached object: the distribution, then the rest (purge generation, method class,
/// normalised path, forwarded query/headers/cookies) as bytes. Bytes, not text: two header
/// values that differ only in bytes that are not UTF-8 are two keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    pub(crate) dist: Arc<str>,
    pub(crate) rest: Box<[u8]>,
}

/// How a response was obtained, for `X-Cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum XCache {
    /// Served from a fresh entry (or a stale one standing in for a failed origin).
    Hit,
    /// A stale entry the origin confirmed with 304.
    RefreshHit,
    /// Fetched from the origin.
    Miss,
}

/// A stored response.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// The response's age (RFC 9111 §4.2.3) when it was stored; it grows with the time since.
    pub(crate) age_at_store: Duration,
    /// Fresh (served as `Hit`) until then; revalidated after.
    pub(crate) fresh_until: SystemTime,
    /// Kept until then to revalidate or to serve when the origin fails.
    pub(crate) keep_until: SystemTime,
    /// When it was stored (the memory tier's expiry counts from insertion).
    pub(crate) stored_at: SystemTime,
}

impl Entry {
    pub(crate) fn new(
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
        age_at_store: Duration,
        ttl: Duration,
        now: SystemTime,
        stale_if_error: Duration,
    ) -> Self {
        let fresh_until = now + ttl;
        Self {
            status,
            headers,
            body,
            age_at_store,
            fresh_until,
            keep_until: fresh_until + stale_if_error,
            stored_at: now,
        }
    }

    /// The `Age` to send at `now`: the age it had when stored plus the time it has been held
    /// (RFC 9111 §4.2.3's corrected initial age plus resident time).
    pub(crate) fn age(&self, now: SystemTime) -> Duration {
        self.age_at_store + now.duration_since(self.stored_at).unwrap_or_default()
    }

    /// Worth storing: fresh for a while, or revalidatable with a validator.
    pub(crate) fn worth_storing(&self) -> bool {
        self.fresh_until > self.stored_at
            || self.headers.contains_key(header::ETAG)
            || self.headers.contains_key(header::LAST_MODIFIED)
    }

    /// What the entry costs the memory tier, in bytes.
    pub(crate) fn weight(&self, key: &CacheKey) -> u32 {
        let headers: usize = self.headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 32).sum();
        let total = ENTRY_OVERHEAD + key.dist.len() + key.rest.len() + headers + self.body.len();
        u32::try_from(total).unwrap_or(u32::MAX)
    }
}
