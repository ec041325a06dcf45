//! What running edges report, and the statuses derived from it.
//!
//! A distribution is `Deployed` once every running edge has applied its latest
//! `config_version`; a cache reset is `Succeeded` once every running edge has purged for it.
//! An operation that produced a configuration some running edge refused (an origin URL it
//! cannot use, a host name another distribution holds) reads `Failed`,
//! with the edge's reason as its `errorDetails`; the distribution stays `InProgress` and the
//! edges keep serving the version they had.
//! An edge is running while its [`EdgeNodeReport`] heartbeat is younger than
//! [`EDGE_NODE_TTL_MS`]. With no edge running (the edge is its own issue; `carapace serve`
//! without one), a change is applied when it is stored: distributions read `Deployed` and
//! resets `Succeeded` at once.

use carapace_kernel::error::chain;
use carapace_kernel::retry::commit;
use carapace_store::{Key, Order, Row, Scan, Write};

use super::records::{
    self, CacheResetRecord, DistributionRecord, EDGE_NODE_KIND, EdgeNodeReport, FailedChange, MinuteCounters,
};
use super::{LightsailError, LightsailManager, Result};

/// An edge silent for this long no longer holds distributions `InProgress`.
pub const EDGE_NODE_TTL_MS: i64 = 90_000;

/// A distribution's `status`: derived from the live edges' reports, never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistributionStatus {
    /// A running edge has not applied the latest configuration yet, or refused it.
    InProgress,
    /// Every running edge serves the latest configuration.
    Deployed,
}

impl DistributionStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "InProgress",
            Self::Deployed => "Deployed",
        }
    }
}

/// A cache reset's `status`: derived from the live edges' reports, never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheResetStatus {
    /// A running edge has not purged for it yet.
    InProgress,
    /// Every running edge has purged for it.
    Succeeded,
}

impl CacheResetStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "InProgress",
            Self::Succeeded => "Succeeded",
        }
    }
}

/// The reports of the edges running now.
#[derive(Debug, Clone, Default)]
pub struct LiveEdges(Vec<EdgeNodeReport>);

impl LiveEdges {
    /// The distribution's status.
    pub fn distribution_status(&self, d: &DistributionRecord) -> DistributionStatus {
        let behind = self.0.iter().any(|n| n.applied.get(&d.id).is_none_or(|v| *v < d.config_version));
        if behind { DistributionStatus::InProgress } else { DistributionStatus::Deployed }
    }

    /// Why a running edge refused this configuration of a distribution, if one did.
    pub fn failure(&self, distribution_id: &str, config_version: u64) -> Option<&FailedChange> {
        self.0.iter().filter_map(|n| n.failed.get(distribution_id)).find(|f| f.config_version == config_version)
    }

    /// The cache reset's status.
    pub fn reset_status(&self, r: &CacheResetRecord) -> CacheResetStatus {
        let pending = self.0.iter().any(|n| n.purged.get(&r.distribution_id) != Some(&r.id));
        if pending { CacheResetStatus::InProgress } else { CacheResetStatus::Succeeded }
    }
}

impl LightsailManager {
    /// The edges whose heartbeat is recent.
    pub async fn live_edges(&self) -> Result<LiveEdges> {
        let now = self.now_ms();
        let rows = self
            .core
            .store
            .scan(Scan {
                kind: EDGE_NODE_KIND,
                scope: "",
                id_prefix: None,
                after: None,
                order: Order::Ascending,
                limit: 1000,
            })
            .await?;
        let mut live = Vec::new();
        for row in rows {
            match records::decode::<EdgeNodeReport>(&row.body) {
                Ok(r) if now - r.heartbeat_ms < EDGE_NODE_TTL_MS => live.push(r),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(key = %row.key, error = chain(&e), "skipping an unreadable edge node report")
                }
            }
        }
        Ok(LiveEdges(live))
    }

    /// Stores an edge node's report (for the edge; replaces the node's previous one).
    pub async fn report_edge_node(&self, node: &str, mut report: EdgeNodeReport) -> Result<()> {
        report.schema = records::SCHEMA;
        let key = Key::new(EDGE_NODE_KIND, "", node);
        carapace_kernel::optimistic!(LightsailError, LightsailError::busy("edge node report"), |_| {
            let expect = self.core.store.get(&key).await?.map(|r| r.version);
            let row = Row { key: key.clone(), version: 0, created_ms: self.now_ms(), body: records::encode(&report)? };
            Ok(commit(self.core.store.as_ref(), vec![Write::Put { row, expect }]).await?.then_some(()))
        })
    }

    /// Adds an edge node's counters for one distribution and one minute (for the edge's
    /// per-minute flush; `minute_ms` is rounded down to the minute).
    pub async fn add_minute_counters(
        &self,
        distribution_id: &str,
        minute_ms: i64,
        node: &str,
        counters: &MinuteCounters,
    ) -> Result<()> {
        let minute = minute_ms - minute_ms.rem_euclid(60_000);
        let key = Key::new(records::METRICS_KIND, "", super::metrics::counter_id(distribution_id, minute, node));
        carapace_kernel::optimistic!(LightsailError, LightsailError::busy("metric counters"), |_| {
            let (mut sum, expect) = match self.core.store.get(&key).await? {
                Some(row) => (records::decode::<MinuteCounters>(&row.body)?, Some(row.version)),
                None => (MinuteCounters::default(), None),
            };
            sum.add(counters);
            sum.schema = records::SCHEMA;
            let row = Row { key: key.clone(), version: 0, created_ms: minute, body: records::encode(&sum)? };
            Ok(commit(self.core.store.as_ref(), vec![Write::Put { row, expect }]).await?.then_some(()))
        })
    }

    /// Every distribution of every account, for an edge building its snapshot (the rows
    /// are [`DistributionRecord`]s; certificates are found through
    /// [`records::AttachedCertificate`]).
    pub async fn all_distributions(&self) -> Result<Vec<DistributionRecord>> {
        self.scan_all(records::DISTRIBUTION_KIND, "", None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_live_edges() {
        let d = DistributionRecord { id: "d1".into(), config_version: 3, ..super::super::tests::sample_distribution() };
        assert_eq!(
            LiveEdges::default().distribution_status(&d),
            DistributionStatus::Deployed,
            "no edge: applied when stored"
        );
        let node = |v: u64| EdgeNodeReport { applied: [("d1".to_owned(), v)].into(), ..Default::default() };
        assert_eq!(LiveEdges(vec![node(3), node(2)]).distribution_status(&d), DistributionStatus::InProgress);
        assert_eq!(LiveEdges(vec![node(3), node(4)]).distribution_status(&d), DistributionStatus::Deployed);
        let r = CacheResetRecord { schema: 1, id: "r2".into(), distribution_id: "d1".into(), created_ms: 0 };
        let purged =
            |id: &str| EdgeNodeReport { purged: [("d1".to_owned(), id.to_owned())].into(), ..Default::default() };
        assert_eq!(LiveEdges::default().reset_status(&r), CacheResetStatus::Succeeded);
        assert_eq!(LiveEdges(vec![purged("r2"), purged("r1")]).reset_status(&r), CacheResetStatus::InProgress);
        assert_eq!(LiveEdges(vec![purged("r2")]).reset_status(&r), CacheResetStatus::Succeeded);
    }

    #[test]
    fn a_refused_configuration_is_found_by_its_version() {
        let failed = |v: u64| EdgeNodeReport {
            applied: [("d1".to_owned(), 2)].into(),
            failed: [("d1".to_owned(), FailedChange { config_version: v, reason: "bad".into(), at_ms: 5 })].into(),
            ..Default::default()
        };
        let edges = LiveEdges(vec![EdgeNodeReport::default(), failed(3)]);
        assert_eq!(edges.failure("d1", 3).map(|f| f.reason.as_str()), Some("bad"));
        assert!(edges.failure("d1", 2).is_none(), "an earlier version was applied");
        assert!(edges.failure("d2", 3).is_none());
        let d = DistributionRecord { id: "d1".into(), config_version: 3, ..super::super::tests::sample_distribution() };
        assert_eq!(
            edges.distribution_status(&d),
            DistributionStatus::InProgress,
            "not deployed while an edge refuses it"
        );
    }
}
