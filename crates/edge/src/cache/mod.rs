//! The edge's cache: freshness as CloudFront computes it, over storage kept apart from the
//! rules (the [`Storage`] trait; `storage`: memory and tiering; `disk`), the lock that
//! coalesces misses (`lock`), and the bounded streaming of misses into the cache (`fill`).
//!
//! RFC 9111 rules (storability, `s-maxage` over `max-age` over `Expires`, `Age`, `no-cache`,
//! `private`, `Vary: *`, merging a 304 into the stored response) come from
//! `http-cache-semantics`; this module only adds what CloudFront layers on top: the
//! distribution's TTL clamp, `defaultTTL` when the origin is silent, `minimumTTL` overriding
//! `no-store`/`no-cache`/`private`, and error caching.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode, header};
use http_cache_semantics::{CacheOptions, CachePolicy};

use crate::EdgeConfig;
use crate::snapshot::CacheSettings;

mod disk;
mod entry;
mod fill;
mod lock;
mod storage;

pub(crate) use entry::{CacheKey, Entry, XCache};
pub(crate) use fill::{Budget, Fill, Pending, Reservation};
pub(crate) use lock::{Leader, Lock, Outcome};
use storage::{Memory, Tiered};

/// A place entries are kept. Lookups of the memory tier never wait; a tier that touches
/// the disk does so off the runtime's worker threads.
pub(crate) trait Storage: Send + Sync {
    /// The entry for `key`, if it is held and not past its `keep_until` at `now`.
    fn get(&self, key: &CacheKey, now: SystemTime) -> impl Future<Output = Option<Arc<Entry>>> + Send;
    /// Stores `entry` for `key`, replacing what was there.
    fn put(&self, key: CacheKey, entry: Arc<Entry>);
    /// Drops every entry of one distribution; lookups stop seeing them at once.
    fn purge(&self, dist: &str);
    /// Bytes held now (approximate where the tier applies writes in batches).
    fn bytes(&self) -> u64;
}

/// CloudFront's default error caching minimum TTL (10 s) for cacheable error statuses
/// without a custom error response.
const DEFAULT_ERROR_TTL: Duration = Duration::from_secs(10);

/// Error statuses CloudFront caches ("How CloudFront processes and caches HTTP 4xx and 5xx
/// status codes from your origin").
const CACHED_ERRORS: &[u16] = &[400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504];

/// The cache as request handling sees it: storage (memory over the optional disk tier), the
/// lock that coalesces misses, and the budget of bytes being read into it.
pub(crate) struct Store {
    storage: Tiered,
    locks: lock::Locks,
    budget: Arc<Budget>,
    /// Largest body stored; larger ones stream through uncached.
    pub(crate) max_object_bytes: usize,
    pub(crate) stale_if_error: Duration,
    /// How long a request waits for another request's fetch of the same key.
    pub(crate) lock_timeout: Duration,
}

impl Store {
    pub(crate) fn new(config: &EdgeConfig) -> std::io::Result<Self> {
        let disk = match &config.cache_dir {
            Some(dir) => Some(disk::Disk::open(dir, config.cache_dir_bytes)?),
            None => None,
        };
        Ok(Self {
            storage: Tiered { memory: Memory::new(config.cache_bytes), disk },
            locks: lock::Locks::default(),
            budget: Arc::new(Budget::new(config.fill_bytes)),
            max_object_bytes: config.max_object_bytes,
            stale_if_error: config.stale_if_error,
            lock_timeout: config.cache_lock_timeout,
        })
    }

    /// The entry for `key`: from memory, else from disk (then kept in memory too).
    pub(crate) async fn get(&self, key: &CacheKey, now: SystemTime) -> Option<Arc<Entry>> {
        self.storage.get(key, now).await
    }

    pub(crate) fn insert(&self, key: CacheKey, entry: Arc<Entry>) {
        self.storage.put(key, entry);
    }

    /// Leads or joins the one fetch for `key`.
    pub(crate) fn lock(&self, key: &CacheKey) -> Lock {
        self.locks.lock(key)
    }

    /// The bytes of responses being read into the cache, across the edge.
    pub(crate) fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// Bytes the disk tier holds (0 without one).
    pub(crate) fn disk_bytes(&self) -> u64 {
        self.storage.disk.as_ref().map_or(0, Storage::bytes)
    }

    /// Drops every entry of a distribution. Lookups stop seeing them at once.
    pub(crate) fn purge(&self, dist: &str) {
        self.storage.purge(dist);
    }

    pub(crate) fn weighted_size(&self) -> u64 {
        self.storage.bytes()
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
