//! Prometheus metrics served at `GET /metrics`.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use carapace_edge_sync::EdgeSyncMetrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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

/// Labels of a listener's connection figures.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    /// The listener (`api`, `approval`).
    pub listener: &'static str,
}

/// Labels of one distribution's edge figures.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DistributionLabels {
    /// The distribution's id (its Lightsail `name` is not unique across accounts).
    pub distribution: String,
}

/// One distribution's counters on this node's edge.
#[derive(Default)]
struct EdgeFamilies {
    requests: Family<DistributionLabels, Counter>,
    bytes_downloaded: Family<DistributionLabels, Counter>,
    bytes_uploaded: Family<DistributionLabels, Counter>,
    status_4xx: Family<DistributionLabels, Counter>,
    status_5xx: Family<DistributionLabels, Counter>,
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram>,
    jobs: Family<JobLabels, Counter>,
    feed_resyncs: Counter,
    /// Listeners whose [`carapace_net::Stats`] are copied into the gauges below at render.
    listeners: Vec<(&'static str, Arc<carapace_net::Stats>)>,
    open: Family<ListenerLabels, Gauge>,
    accepted: Family<ListenerLabels, Gauge>,
    limit_reached: Family<ListenerLabels, Gauge>,
    closed_by_limit: Family<ListenerLabels, Gauge>,
    panics: Family<ListenerLabels, Gauge>,
    /// The edge whose per-distribution counters are copied at render, once it runs.
    edge: std::sync::OnceLock<carapace_edge::Edge>,
    edge_families: EdgeFamilies,
    edge_sync: EdgeSyncMetrics,
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
        let mut gauge = |name: &str, help: &str| {
            let family = Family::<ListenerLabels, Gauge>::default();
            registry.register(name, help, family.clone());
            family
        };
        let open = gauge("connections_open", "Connections open now, per listener");
        let accepted = gauge("connections_accepted", "Connections accepted since start, per listener");
        let limit_reached =
            gauge("connection_limit_reached", "Times a listener waited because max_connections were open");
        let closed_by_limit =
            gauge("connections_closed_by_limit", "Connections closed for a timeout or a per-connection limit");
        let panics = gauge("handler_panics", "Requests whose handling panicked (answered with a 500)");
        let edge_families = EdgeFamilies::default();
        for (name, help, family) in [
            ("edge_requests", "Viewer requests per distribution on this node's edge", &edge_families.requests),
            (
                "edge_bytes_downloaded",
                "Response bytes sent to viewers per distribution",
                &edge_families.bytes_downloaded,
            ),
            (
                "edge_bytes_uploaded",
                "Request bytes received from viewers per distribution",
                &edge_families.bytes_uploaded,
            ),
            ("edge_responses_4xx", "Responses with a 4xx status per distribution", &edge_families.status_4xx),
            ("edge_responses_5xx", "Responses with a 5xx status per distribution", &edge_families.status_5xx),
        ] {
            registry.register(name, help, family.clone());
        }
        let edge_sync = EdgeSyncMetrics::default();
        registry.register(
            "edge_certificate_fallbacks",
            "Distributions served with the default certificate because their own is unusable (expired, revoked, unreadable)",
            edge_sync.fallbacks.clone(),
        );
        registry.register(
            "edge_snapshot_updates",
            "Edge snapshot updates by kind: full (every distribution re-read), distribution, certificate",
            edge_sync.updates.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            jobs,
            feed_resyncs,
            listeners: Vec::new(),
            open,
            accepted,
            limit_reached,
            closed_by_limit,
            panics,
            edge: std::sync::OnceLock::new(),
            edge_families,
            edge_sync,
        }
    }

    /// Exports `edge`'s per-distribution counters from now on.
    pub fn watch_edge(&self, edge: carapace_edge::Edge) {
        let _ = self.edge.set(edge);
    }

    /// What the edge's owner updates: the certificate fallback gauge and the snapshot
    /// update counters.
    pub fn edge_sync(&self) -> EdgeSyncMetrics {
        self.edge_sync.clone()
    }

    /// Reports the connection figures of a listener (copied at every render).
    pub fn watch_listener(&mut self, listener: &'static str, stats: Arc<carapace_net::Stats>) {
        self.listeners.push((listener, stats));
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
        for (listener, stats) in &self.listeners {
            let labels = ListenerLabels { listener };
            let load = |n: &std::sync::atomic::AtomicU64| i64::try_from(n.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
            self.open.get_or_create(&labels).set(load(&stats.open));
            self.accepted.get_or_create(&labels).set(load(&stats.accepted));
            self.limit_reached.get_or_create(&labels).set(load(&stats.limit_reached));
            self.closed_by_limit.get_or_create(&labels).set(load(&stats.closed_by_limit));
            self.panics.get_or_create(&labels).set(load(&stats.panics));
        }
        if let Some(edge) = self.edge.get() {
            let f = &self.edge_families;
            for (distribution, c) in edge.counters() {
                let labels = DistributionLabels { distribution };
                for (family, now) in [
                    (&f.requests, c.requests),
                    (&f.bytes_downloaded, c.bytes_downloaded),
                    (&f.bytes_uploaded, c.bytes_uploaded),
                    (&f.status_4xx, c.status_4xx),
                    (&f.status_5xx, c.status_5xx),
                ] {
                    // The edge counts from its start; the counter catches up with it.
                    let counter = family.get_or_create(&labels);
                    counter.inc_by(now.saturating_sub(counter.get()));
                }
            }
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl carapace_kernel::jobs::JobObserver for Metrics {
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
        let mut m = Metrics::new();
        let stats = Arc::new(carapace_net::Stats::default());
        stats.open.store(3, Ordering::Relaxed);
        m.watch_listener("api", stats);
        assert!(m.render().contains(r#"carapace_connections_open{listener="api"} 3"#));
        m.edge_sync().updates.get_or_create(&carapace_edge_sync::SnapshotUpdateLabels { kind: "full" }).inc();
        assert!(m.render().contains(r#"carapace_edge_snapshot_updates_total{kind="full"} 1"#), "{}", m.render());
    }
}
