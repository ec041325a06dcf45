//! Per-operation request rates, as ACM enforces them (off in `--dev`).
//!
//! One token bucket per (account, region, operation), refilled continuously at the
//! operation's rate with a burst of one second's worth. The rates are ACM's documented
//! "requests per second" quotas (ACM User Guide, *Quotas*, API rate quotas table);
//! operations the table does not list (added to ACM later) get 5 per second.
//!
//! The keys are the caller's to choose (every account, region and operation gets a bucket),
//! so the table is bounded (issue 13, finding 3): a bucket untouched for [`REFILL`] is full
//! again — the same as no bucket — and is dropped when the table reaches [`MAX_BUCKETS`].
//! Only callers active within the last second hold one; should more than [`MAX_BUCKETS`] of
//! them be active at once, newcomers are throttled until some go quiet.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use carapace_model::acm::ErrorCode;
use carapace_proto::WireError;

/// ACM's documented requests-per-second quota for `operation`.
pub(crate) fn rate(operation: &str) -> f64 {
    match operation {
        "AddTagsToCertificate" => 5.0,
        "DeleteCertificate" => 10.0,
        "DescribeCertificate" => 10.0,
        "ExportCertificate" => 5.0,
        "GetAccountConfiguration" => 1.0,
        "GetCertificate" => 10.0,
        "ImportCertificate" => 1.0,
        "ListCertificates" => 1.0,
        "ListTagsForCertificate" => 10.0,
        "PutAccountConfiguration" => 1.0,
        "RemoveTagsFromCertificate" => 5.0,
        "RenewCertificate" => 5.0,
        "RequestCertificate" => 5.0,
        "ResendValidationEmail" => 1.0,
        "UpdateCertificateOptions" => 5.0,
        _ => 5.0,
    }
}

/// Time for an empty bucket to fill (the burst is one second's worth).
const REFILL: Duration = Duration::from_secs(1);

/// Buckets kept at most.
pub(crate) const MAX_BUCKETS: usize = 50_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets.
pub(crate) struct Throttle {
    enabled: bool,
    buckets: Mutex<HashMap<(String, String, &'static str), Bucket>>,
}

impl Throttle {
    /// A throttle; when `enabled` is false every request passes.
    pub(crate) fn new(enabled: bool) -> Self {
        Self { enabled, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token for the call, or answers `ThrottlingException`.
    pub(crate) fn check(&self, account: &str, region: &str, operation: &'static str) -> Result<(), WireError> {
        if !self.enabled {
            return Ok(());
        }
        self.take(account, region, operation, Instant::now())
    }

    fn take(&self, account: &str, region: &str, operation: &'static str, now: Instant) -> Result<(), WireError> {
        let rate = rate(operation);
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (account.to_owned(), region.to_owned(), operation);
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&key) {
            buckets.retain(|_, b| now.saturating_duration_since(b.at) < REFILL);
            if buckets.len() >= MAX_BUCKETS {
                return Err(WireError::modelled(ErrorCode::ThrottlingException, "Rate exceeded"));
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket { tokens: rate, at: now });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(WireError::modelled(ErrorCode::ThrottlingException, "Rate exceeded"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_at_the_documented_rate() {
        let t = Throttle::new(true);
        let start = Instant::now();
        // ListCertificates: 1 per second.
        assert!(t.take("111111111111", "us-east-1", "ListCertificates", start).is_ok());
        let err = t.take("111111111111", "us-east-1", "ListCertificates", start).unwrap_err();
        assert_eq!(err.code, "ThrottlingException");
        // Other accounts, regions and operations have their own buckets.
        assert!(t.take("222222222222", "us-east-1", "ListCertificates", start).is_ok());
        assert!(t.take("111111111111", "eu-west-1", "ListCertificates", start).is_ok());
        assert!(t.take("111111111111", "us-east-1", "DescribeCertificate", start).is_ok());
        assert!(t.take("111111111111", "us-east-1", "ListCertificates", start + Duration::from_millis(1_000)).is_ok());
        // DescribeCertificate: a burst of 10.
        let later = start + Duration::from_secs(10);
        for _ in 0..10 {
            assert!(t.take("3", "r", "DescribeCertificate", later).is_ok());
        }
        assert!(t.take("3", "r", "DescribeCertificate", later).is_err());
    }

    /// Issue 13, finding 3: buckets do not grow without bound on caller-chosen keys.
    #[test]
    fn the_table_stays_bounded_whatever_the_callers() {
        let t = Throttle::new(true);
        let start = Instant::now();
        // 100,000 distinct accounts, one call each, a millisecond apart.
        for i in 0..100_000u64 {
            let now = start + Duration::from_millis(i);
            assert!(t.take(&format!("{i:012}"), "us-east-1", "DescribeCertificate", now).is_ok());
        }
        let kept = t.buckets.lock().unwrap().len();
        assert!(kept <= MAX_BUCKETS, "{kept} buckets");
        // All at once: the table fills, newcomers are throttled, known callers are not.
        let t = Throttle::new(true);
        for i in 0..MAX_BUCKETS {
            assert!(t.take(&i.to_string(), "r", "GetCertificate", start).is_ok());
        }
        assert!(t.take("newcomer", "r", "GetCertificate", start).is_err());
        assert!(t.take("0", "r", "GetCertificate", start).is_ok());
        assert!(t.take("newcomer", "r", "GetCertificate", start + REFILL).is_ok(), "the quiet ones made room");
    }

    #[test]
    fn disabled_never_throttles() {
        let t = Throttle::new(false);
        for _ in 0..100 {
            assert!(t.check("1", "r", "ListCertificates").is_ok());
        }
    }
}
