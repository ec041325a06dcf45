//! Cache storage (moka, weighted by bytes), freshness as CloudFront computes it, and the
//! coalescing of concurrent misses.
//!
//! RFC 9111 rules (storability, `s-maxage` over `max-age` over `Expires`, `Age`, `no-cache`,
//! `private`, `Vary: *`, merging a 304 into the stored response) come from
//! `http-cache-semantics`; this module only adds what CloudFront layers on top: the
//! distribution's TTL clamp, `defaultTTL` when the origin is silent, `minimumTTL` overriding
//! `no-store`/`no-cache`/`private`, and error caching.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use http_cache_semantics::{CacheOptions, CachePolicy};
use tokio::sync::OnceCell;

use crate::EdgeConfig;
use crate::snapshot::CacheSettings;

/// CloudFront's default error caching minimum TTL (10 s) for cacheable error statuses
/// without a custom error response.
const DEFAULT_ERROR_TTL: Duration = Duration::from_secs(10);

/// Error statuses CloudFront caches ("How CloudFront processes and caches HTTP 4xx and 5xx
/// status codes from your origin").
const CACHED_ERRORS: &[u16] = &[400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504];

/// Fixed cost charged per entry on top of its bytes (key, policy, map overhead).
const ENTRY_OVERHEAD: usize = 512;

/// Key of a cached object: the distribution, then the rest (purge generation, method class,
/// path, forwarded query/headers/cookies) as one string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    pub(crate) dist: Arc<str>,
    pub(crate) rest: Box<str>,
}

/// A stored response.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// The crate's view of the response, for `Age` and for merging a 304.
    pub(crate) policy: CachePolicy,
    /// Fresh (served as `Hit`) until then; revalidated after.
    pub(crate) fresh_until: SystemTime,
    /// Kept until then to revalidate or to serve when the origin fails.
    pub(crate) keep_until: SystemTime,
    stored_at: SystemTime,
}

impl Entry {
    pub(crate) fn new(
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
        policy: CachePolicy,
        ttl: Duration,
        now: SystemTime,
        stale_if_error: Duration,
    ) -> Self {
        let fresh_until = now + ttl;
        Self { status, headers, body, policy, fresh_until, keep_until: fresh_until + stale_if_error, stored_at: now }
    }

    /// An entry read back from the disk tier at `now`.
    pub(crate) fn restored(
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
        policy: CachePolicy,
        fresh_until: SystemTime,
        keep_until: SystemTime,
        now: SystemTime,
    ) -> Self {
        // Stored "now" for the memory tier's expiry, which counts from insertion.
        Self { status, headers, body, policy, fresh_until, keep_until, stored_at: now }
    }

    /// Worth storing: fresh for a while, or revalidatable with a validator.
    pub(crate) fn worth_storing(&self) -> bool {
        self.fresh_until > self.stored_at
            || self.headers.contains_key(header::ETAG)
            || self.headers.contains_key(header::LAST_MODIFIED)
    }

    fn weight(&self, key: &CacheKey) -> u32 {
        let headers: usize = self.headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 32).sum();
        let total = ENTRY_OVERHEAD + key.dist.len() + key.rest.len() + headers + self.body.len();
        u32::try_from(total).unwrap_or(u32::MAX)
    }
}

/// Result of one coalesced origin fetch, shared with every request that waited for it.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// Serve this entry with this `X-Cache` value (stored, or the stale one on origin failure).
    Entry(Arc<Entry>, crate::proxy::XCache),
    /// The origin failed and nothing stale could stand in: this status.
    Failed(StatusCode),
    /// The response was not shareable (not cacheable, or too large): each waiter fetches on
    /// its own; the request that fetched streams what it got.
    NotShared,
}

/// One request's membership in a coalesced fetch. Leaving it (done, or cancelled because the
/// viewer went away) forgets the fetch once no other request waits on it, so abandoned misses
/// leave nothing behind.
pub(crate) struct Waiting<'a> {
    store: &'a Store,
    key: CacheKey,
    pub(crate) cell: Arc<OnceCell<Outcome>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut map = self.store.inflight.lock().unwrap_or_else(|e| e.into_inner());
        // Clones are only made under this lock: the map's and ours means nobody else waits.
        if map.get(&self.key).is_some_and(|c| Arc::ptr_eq(c, &self.cell)) && Arc::strong_count(&self.cell) <= 2 {
            map.remove(&self.key);
        }
    }
}

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

/// The memory tier, and the disk tier behind it when `EdgeConfig::cache_dir` is set.
pub(crate) struct Store {
    cache: moka::sync::Cache<CacheKey, Arc<Entry>>,
    disk: Option<crate::disk::Disk>,
    clock: Arc<dyn crate::Clock>,
    inflight: Mutex<HashMap<CacheKey, Arc<OnceCell<Outcome>>>>,
    pub(crate) max_object_bytes: usize,
    pub(crate) stale_if_error: Duration,
}

impl Store {
    pub(crate) fn new(config: &EdgeConfig) -> std::io::Result<Self> {
        let cache = moka::sync::Cache::builder()
            .max_capacity(config.cache_bytes)
            .weigher(|k: &CacheKey, v: &Arc<Entry>| v.weight(k))
            .expire_after(KeepUntil)
            .support_invalidation_closures()
            .build();
        let disk = match &config.cache_dir {
            Some(dir) => Some(crate::disk::Disk::open(dir, config.cache_dir_bytes)?),
            None => None,
        };
        Ok(Self {
            cache,
            disk,
            clock: config.clock.clone(),
            inflight: Mutex::new(HashMap::new()),
            max_object_bytes: config.max_object_bytes,
            stale_if_error: config.stale_if_error,
        })
    }

    /// The entry for `key`: from memory, else from disk (then kept in memory too).
    pub(crate) fn get(&self, key: &CacheKey) -> Option<Arc<Entry>> {
        if let Some(entry) = self.cache.get(key) {
            return Some(entry);
        }
        let entry = Arc::new(self.disk.as_ref()?.get(key, self.clock.now())?);
        self.cache.insert(key.clone(), entry.clone());
        Some(entry)
    }

    pub(crate) fn insert(&self, key: CacheKey, entry: Arc<Entry>) {
        if let Some(disk) = &self.disk {
            disk.put(&key, &entry);
        }
        self.cache.insert(key, entry);
    }

    /// Bytes the disk tier holds (0 without one).
    pub(crate) fn disk_bytes(&self) -> u64 {
        self.disk.as_ref().map_or(0, crate::disk::Disk::bytes)
    }

    /// Joins the fetch every concurrent request for `key` awaits; the first to initialise its
    /// cell fetches.
    pub(crate) fn join(&self, key: &CacheKey) -> Waiting<'_> {
        let mut map = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        let cell = map.entry(key.clone()).or_default().clone();
        Waiting { store: self, key: key.clone(), cell }
    }

    /// Drops every entry of a distribution. Lookups stop seeing them at once (moka applies the
    /// predicate to reads immediately); memory is reclaimed in the background.
    pub(crate) fn purge(&self, dist: &str) {
        let dist: Arc<str> = Arc::from(dist);
        if let Some(disk) = &self.disk {
            disk.purge(&dist);
        }
        if let Err(e) = self.cache.invalidate_entries_if(move |k, _| k.dist == dist) {
            tracing::warn!(error = %e, "cache purge predicate refused");
        }
    }

    pub(crate) fn weighted_size(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.weighted_size()
    }
}

/// The crate's options for a shared cache. No heuristic freshness: when the origin is silent
/// CloudFront uses `defaultTTL`, which [`freshness`] applies.
pub(crate) fn policy_options() -> CacheOptions {
    CacheOptions { shared: true, cache_heuristic: 0.0, ..CacheOptions::default() }
}

/// Whether the origin said anything about freshness (`Cache-Control` freshness or storage
/// directives, or `Expires`). Only decides which CloudFront rule applies; the values
/// themselves are the crate's.
fn origin_speaks(headers: &HeaderMap) -> bool {
    headers.contains_key(header::EXPIRES)
        || headers.get_all(header::CACHE_CONTROL).iter().filter_map(|v| v.to_str().ok()).any(|v| {
            v.split(',').any(|d| {
                let name = d.split('=').next().unwrap_or("").trim().to_ascii_lowercase();
                matches!(name.as_str(), "max-age" | "s-maxage" | "no-cache" | "no-store" | "private")
            })
        })
}

/// How long a response stays fresh in this distribution's cache, or `None` if it must not be
/// stored. CloudFront's rules ("Managing how long content stays in the cache"):
/// - origin silent: `defaultTTL` (if the status is cacheable at all);
/// - origin gives a lifetime: that lifetime, clamped to `[minimumTTL, maximumTTL]`;
/// - origin forbids storing (`no-store`, `private`): not cached, unless `minimumTTL` > 0;
/// - cacheable error statuses: `error_ttl` if a custom error response names the status,
///   otherwise the origin's lifetime or 10 s.
pub(crate) fn freshness(
    policy: &CachePolicy,
    status: StatusCode,
    headers: &HeaderMap,
    settings: &CacheSettings,
    error_ttl: Option<Duration>,
    now: SystemTime,
) -> Option<Duration> {
    let clamp = |d: Duration| d.clamp(settings.minimum_ttl, settings.maximum_ttl);
    if status.is_client_error() || status.is_server_error() {
        if let Some(ttl) = error_ttl {
            return Some(ttl);
        }
        if !CACHED_ERRORS.contains(&status.as_u16()) {
            return None;
        }
        return Some(if origin_speaks(headers) && policy.is_storable() {
            policy.time_to_live(now)
        } else {
            DEFAULT_ERROR_TTL
        });
    }
    if !origin_speaks(headers) {
        return policy.is_storable().then(|| clamp(settings.default_ttl));
    }
    if policy.is_storable() {
        return Some(clamp(policy.time_to_live(now)));
    }
    // no-store / private: CloudFront caches anyway for minimumTTL when it is above zero, for
    // statuses it would cache otherwise.
    let cacheable_status = matches!(status.as_u16(), 200 | 203 | 204 | 300 | 301 | 308 | 410);
    (settings.minimum_ttl > Duration::ZERO && cacheable_status).then_some(settings.minimum_ttl)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read the real clock where no clock is injected
mod tests {
    use super::*;

    fn policy_for(cc: &[(&str, &str)], now: SystemTime) -> (CachePolicy, StatusCode, HeaderMap) {
        let req = http::Request::get("http://o/x").body(()).unwrap();
        let mut res = http::Response::builder().status(200);
        for (n, v) in cc {
            res = res.header(*n, *v);
        }
        let res = res.body(()).unwrap();
        let policy = CachePolicy::new_options(&req, &res, now, policy_options());
        (policy, res.status(), res.headers().clone())
    }

    fn ttl(headers: &[(&str, &str)], settings: &CacheSettings) -> Option<u64> {
        let now = SystemTime::now();
        let (p, s, h) = policy_for(headers, now);
        freshness(&p, s, &h, settings, None, now).map(|d| d.as_secs())
    }

    #[test]
    fn a_fetch_is_forgotten_when_its_last_waiter_leaves() {
        let store = Store::new(&EdgeConfig::default()).unwrap();
        let key = CacheKey { dist: Arc::from("d"), rest: "0\nG\n/x\n".into() };
        let inflight = |s: &Store| s.inflight.lock().unwrap().len();
        let leader = store.join(&key);
        let follower = store.join(&key);
        assert!(Arc::ptr_eq(&leader.cell, &follower.cell), "one fetch per key");
        drop(leader); // e.g. the leader's viewer went away before the origin answered
        assert_eq!(inflight(&store), 1, "the follower still waits on it");
        drop(follower);
        assert_eq!(inflight(&store), 0);
    }

    #[test]
    fn cloudfront_ttl_rules() {
        let mut s = CacheSettings {
            default_ttl: Duration::from_secs(100),
            minimum_ttl: Duration::ZERO,
            maximum_ttl: Duration::from_secs(1000),
            ..CacheSettings::default()
        };
        assert_eq!(ttl(&[], &s), Some(100), "silent origin: defaultTTL");
        assert_eq!(ttl(&[("cache-control", "max-age=50")], &s), Some(50));
        assert_eq!(ttl(&[("cache-control", "max-age=5000")], &s), Some(1000), "clamped to maximumTTL");
        assert_eq!(ttl(&[("cache-control", "max-age=10, s-maxage=70")], &s), Some(70), "s-maxage wins");
        assert_eq!(ttl(&[("cache-control", "no-store")], &s), None);
        assert_eq!(ttl(&[("cache-control", "private, max-age=60")], &s), None);
        assert_eq!(ttl(&[("cache-control", "no-cache")], &s), Some(0), "stored, always revalidated");
        s.minimum_ttl = Duration::from_secs(30);
        assert_eq!(ttl(&[("cache-control", "max-age=5")], &s), Some(30), "raised to minimumTTL");
        assert_eq!(ttl(&[("cache-control", "no-store")], &s), Some(30), "minimumTTL overrides no-store");
        assert_eq!(ttl(&[("cache-control", "no-cache")], &s), Some(30));
    }
}
