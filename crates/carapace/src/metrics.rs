//! Prometheus metrics served at `GET /metrics`.

use std::borrow::Cow;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of one API request. Service and operation names come from the models, so the
/// labels of a successful request are built without allocating.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Service short name (`acm`, `ds`, `lightsail`, `-`).
    pub service: &'static str,
    /// Operation name, `-` when none was recognised.
    pub operation: &'static str,
    /// Error code, empty on success.
    pub code: Cow<'static, str>,
}

/// Labels of a latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    /// Service short name.
    pub service: &'static str,
    /// Operation name.
    pub operation: &'static str,
}

/// Labels of a background job's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// Service short name (`acm`, `ds`).
    pub service: &'static str,
    /// `finished`, `rescheduled`, `failed`, `dead_lettered` or `lease_lost`.
    pub outcome: &'static str,
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram>,
    jobs: Family<JobLabels, Counter>,
    feed_resyncs: Counter,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("carapace");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("api_requests", "API requests by service, operation and error code", requests.clone());
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(|| {
            // 100 µs to ~3 s.
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 16))
        });
        registry.register("api_request_duration_seconds", "API request latency", latency.clone());
        let jobs = Family::<JobLabels, Counter>::default();
        registry.register("jobs", "Background job runs by service and outcome", jobs.clone());
        let feed_resyncs = Counter::default();
        registry.register(
            "feed_resyncs",
            "Times the change feed told this node to re-read (lost LISTEN connection, lag, another process's write)",
            feed_resyncs.clone(),
        );
        Self { registry, requests, latency, jobs, feed_resyncs }
    }

    /// Records one request.
    pub fn observe(&self, service: &'static str, operation: &'static str, code: Option<&str>, seconds: f64) {
        let code = code.map_or(Cow::Borrowed(""), |c| Cow::Owned(c.to_owned()));
        self.requests.get_or_create(&RequestLabels { service, operation, code }).inc();
        self.latency.get_or_create(&LatencyLabels { service, operation }).observe(seconds);
    }

    /// Counts a change-feed resync.
    pub fn feed_resynced(&self) {
        self.feed_resyncs.inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl carapace_core::jobs::JobObserver for Metrics {
    fn job_outcome(&self, service: &'static str, outcome: &'static str) {
        self.jobs.get_or_create(&JobLabels { service, outcome }).inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::new();
        m.observe("acm", "ListCertificates", None, 0.001);
        m.observe("acm", "DescribeCertificate", Some("ValidationException"), 0.002);
        let text = m.render();
        assert!(
            text.contains(r#"carapace_api_requests_total{service="acm",operation="ListCertificates",code=""} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"code="ValidationException""#), "{text}");
        assert!(text.contains("carapace_api_request_duration_seconds_bucket"), "{text}");
    }
}
