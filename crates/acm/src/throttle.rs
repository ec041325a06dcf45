//! Per-operation request rates, as ACM enforces them (off in `--dev`).
//!
//! One token bucket per (account, region, operation), refilled continuously at the
//! operation's rate with a burst of one second's worth. The rates are ACM's documented
//! "requests per second" quotas (ACM User Guide, *Quotas*, API rate quotas table);
//! operations the table does not list (added to ACM later) get 5 per second.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

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
        let bucket = buckets
            .entry((account.to_owned(), region.to_owned(), operation))
            .or_insert(Bucket { tokens: rate, at: now });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(WireError::client("ThrottlingException", "Rate exceeded"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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

    #[test]
    fn disabled_never_throttles() {
        let t = Throttle::new(false);
        for _ in 0..100 {
            assert!(t.check("1", "r", "ListCertificates").is_ok());
        }
    }
}
