//! Keeps a running edge in step with the store: Lightsail's distributions (and the ACM
//! certificates attached to them) become the edge's snapshot.
//!
//! - **Per change, not per burst.** The change feed names each row written (kind, scope,
//!   id). A distribution write re-reads that distribution; a cache reset purges that
//!   distribution; a write of an ACM certificate (its record or its material) re-reads only
//!   the distributions attaching it, and costs a hash lookup for any other certificate of any
//!   account. The edge gets the changed distributions only ([`Edge::update`]): every other
//!   distribution, its counters and its cached objects stay as they are.
//! - **Certificates are unsealed once per version.** An attached certificate's key is kept
//!   by its material row's version; a re-read checks the record's status (revoked, expired)
//!   and the material's version, and unseals only a version it has not seen.
//! - **Full rebuilds** happen at start, after a gap in the feed ([`FeedEvent::Resync`]),
//!   after an update that failed on the store, and when the default certificate is renewed.
//! - **A distribution the edge cannot apply fails alone** (an origin URL it cannot use,
//!   TTLs out of order, a method list it does not know, a host name another distribution
//!   holds): the node reports it in [`EdgeNodeReport::failed`], which makes the
//!   operation of that change `Failed` with the reason; the edge keeps serving the
//!   distribution's previous version, if any, and every other distribution.
//! - **Reports** go out after every applied change and every [`HEARTBEAT`]; counters are
//!   added to the store every [`FLUSH`] (GetDistributionMetricData). Neither rebuilds.
//!
//! The mapping is the only place that knows both sides: `carapace_edge` knows no Lightsail
//! record, and the Lightsail core knows no edge.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use carapace_acm::record::{self as acm_record, MATERIAL_KIND};
use carapace_acm::{CertificateManager, Owner, Status};
use carapace_edge::{
    Behavior, CacheSettings, CustomErrorResponse, Distribution, Edge, Forwarded, Methods, Origin, PathBehavior,
    ProtocolPolicy, QueryStrings, Snapshot, SnapshotChange, TlsPolicy,
};
use carapace_kernel::error::chain;
use carapace_lightsail::LightsailManager;
use carapace_lightsail::cache as ls;
use carapace_lightsail::records::{
    self, AttachedCertificate, CACHE_RESET_KIND, CacheResetRecord, DISTRIBUTION_KIND, DistributionRecord,
    EdgeNodeReport, FailedChange, MinuteCounters, OriginProtocolPolicy, ViewerMinimumTls,
};
use carapace_store::{FeedEvent, Key, Order, Scan};
use rustls::sign::CertifiedKey;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

/// Longest time between two reports: well inside Lightsail's
/// [`carapace_lightsail::edge::EDGE_NODE_TTL_MS`], so a live edge never looks gone.
const HEARTBEAT: Duration = Duration::from_secs(30);

/// How often counters are added to the store.
const FLUSH: Duration = Duration::from_secs(60);

/// Feed events gathered into one update at most (a burst is applied in batches this big).
const BATCH: usize = 4_096;

/// Labels of an edge snapshot update.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SnapshotUpdateLabels {
    /// `full` (every distribution re-read: at start, after a feed gap or a failed update,
    /// when the default certificate is renewed), `distribution` (one distribution re-read for
    /// a write of its own) or `certificate` (a new version of an attached certificate, or
    /// its expiry, re-read for the distributions that use it).
    pub kind: &'static str,
}

/// What the edge's owner ([`EdgeSync`]) reports on `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct EdgeSyncMetrics {
    /// Distributions served with the default certificate because their own is unusable.
    pub fallbacks: Gauge,
    /// Snapshot updates by kind.
    pub updates: Family<SnapshotUpdateLabels, Counter>,
}

/// Signs a new default certificate valid from the given time.
pub type IssueDefault = Box<dyn Fn(time::OffsetDateTime) -> anyhow::Result<DefaultCertificate> + Send + Sync>;

/// The `*.<edge.domain>` certificate: served on every distribution's default domain and
/// subdomain, and on the alternative names of a distribution whose own certificate is
/// unusable; renewed by the edge's owner before it expires.
pub struct DefaultCertificate {
    /// What the TLS resolver serves.
    pub key: Arc<CertifiedKey>,
    /// The leaf as issued (for the issued-serial index).
    pub issued: carapace_kernel::ca::IssuedCertificate,
    /// Its validity, Unix milliseconds.
    pub not_before_ms: i64,
    /// Its `NotAfter`, Unix milliseconds.
    pub not_after_ms: i64,
}

impl DefaultCertificate {
    /// When to replace it: two thirds into its life, as ACM renews 45 days before the end
    /// of 198.
    fn renew_at_ms(&self) -> i64 {
        self.not_before_ms + (self.not_after_ms - self.not_before_ms) * 2 / 3
    }
}

/// What a snapshot update was, for `carapace_edge_snapshot_updates_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// Every distribution re-read.
    Full,
    /// One distribution re-read for a write of its own.
    Distribution,
    /// One certificate's new version (or expiry) applied to the distributions using it.
    Certificate,
}

impl UpdateKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Distribution => "distribution",
            Self::Certificate => "certificate",
        }
    }
}

/// An ACM certificate as the feed names it: the store scope and id of its record and
/// material rows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct CertificateId {
    scope: String,
    acm_id: String,
}

impl CertificateId {
    fn of(c: &AttachedCertificate) -> Self {
        Self { scope: c.scope.clone(), acm_id: c.acm_id.clone() }
    }
}

/// An unsealed certificate and the material version it was read from.
struct CachedKey {
    material_version: u64,
    key: Arc<CertifiedKey>,
    not_after_ms: i64,
}

/// What the edge serves for one distribution row.
#[derive(Debug, Clone)]
struct Tracked {
    /// [`DistributionRecord::id`] (the edge's [`Distribution::id`]).
    id: String,
    /// The attached certificate of the version served.
    certificate: Option<CertificateId>,
    /// The `config_version` served (`None`: no version was ever applied).
    applied: Option<u64>,
    /// The latest version refused, and why.
    failed: Option<FailedChange>,
    /// The served attached certificate's `NotAfter`: re-read then.
    expires_ms: Option<i64>,
    /// The attached certificate is unusable; the default one is served instead.
    fallback: bool,
}

/// What the feed announced since the last update.
#[derive(Debug, Default)]
struct Pending {
    /// Re-read everything.
    full: bool,
    /// Distribution rows (`<account>/<name>`) written.
    distributions: BTreeSet<String>,
    /// Attached certificates written.
    certificates: BTreeSet<CertificateId>,
    /// Cache-reset rows written.
    resets: BTreeSet<String>,
    /// A served certificate may have expired.
    expired: bool,
}

impl Pending {
    fn is_empty(&self) -> bool {
        !self.full
            && !self.expired
            && self.distributions.is_empty()
            && self.certificates.is_empty()
            && self.resets.is_empty()
    }
}

/// A distribution mapped for the edge, with what to remember about its certificate.
struct Mapped {
    distribution: Distribution,
    state: MappedState,
}

/// The edge's owner on this node.
pub struct EdgeSync {
    edge: Edge,
    lightsail: LightsailManager,
    acm: CertificateManager,
    /// Served on default domains and subdomains.
    default_certificate: DefaultCertificate,
    issue_default: IssueDefault,
    /// This node's name in edge reports and metric rows.
    node: String,
    /// The latest reset purged per distribution id.
    purged: BTreeMap<String, String>,
    /// Distribution row id (`<account>/<name>`) → what is served for it.
    tracked: HashMap<String, Tracked>,
    /// Attached certificate → the distribution rows whose served version attaches it.
    users: HashMap<CertificateId, BTreeSet<String>>,
    /// Unsealed attached certificates.
    keys: HashMap<CertificateId, CachedKey>,
    /// The last update failed on the store: the next one re-reads everything.
    stale: bool,
    /// The earliest time a served certificate must be replaced (an attached certificate's
    /// `NotAfter`, the default's renewal time).
    next_expiry_ms: i64,
    /// After a failed renewal of the default certificate, when to try again.
    default_retry_ms: i64,
    metrics: EdgeSyncMetrics,
}

impl EdgeSync {
    /// An owner for `edge`, reading through `lightsail` and `acm`.
    pub fn new(
        edge: Edge,
        lightsail: LightsailManager,
        acm: CertificateManager,
        (default_certificate, issue_default): (DefaultCertificate, IssueDefault),
        node: String,
        metrics: EdgeSyncMetrics,
    ) -> Self {
        Self {
            edge,
            lightsail,
            acm,
            default_certificate,
            issue_default,
            node,
            purged: BTreeMap::new(),
            tracked: HashMap::new(),
            users: HashMap::new(),
            keys: HashMap::new(),
            stale: true,
            next_expiry_ms: i64::MAX,
            default_retry_ms: i64::MIN,
            metrics,
        }
    }

    /// Applies every relevant change until `stop` turns true.
    pub async fn run(mut self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let store = self.lightsail.core().store.clone();
        let mut feed = store.subscribe(&[DISTRIBUTION_KIND, CACHE_RESET_KIND, acm_record::KIND, MATERIAL_KIND]);
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.tick().await;
        let mut flush = tokio::time::interval(FLUSH);
        flush.tick().await;
        let mut last_counters = BTreeMap::new();
        let mut pending = Pending { full: true, ..Pending::default() };
        loop {
            if !pending.is_empty() {
                self.apply(std::mem::take(&mut pending)).await;
            }
            tokio::select! {
                event = feed.next() => {
                    let Some(event) = event else { return };
                    self.note(&mut pending, event);
                    // A burst is gathered into one update.
                    for _ in 0..BATCH {
                        match feed.try_next() {
                            Some(event) => self.note(&mut pending, event),
                            None => break,
                        }
                    }
                }
                _ = heartbeat.tick() => {
                    if self.stale || self.default_due() {
                        pending.full = true;
                    } else if let Err(e) = self.report().await {
                        tracing::error!(error = format!("{e:#}"), "edge: heartbeat not stored");
                    }
                }
                _ = flush.tick() => self.flush_counters(&mut last_counters).await,
                _ = tokio::time::sleep(self.next_wake()) => {
                    if self.default_due() { pending.full = true } else { pending.expired = true }
                }
                _ = stop.changed() => {
                    self.flush_counters(&mut last_counters).await;
                    return;
                }
            }
        }
    }

    /// Files one feed event. A certificate nobody attaches is forgotten here.
    fn note(&self, pending: &mut Pending, event: FeedEvent) {
        let change = match event {
            FeedEvent::Resync => {
                pending.full = true;
                return;
            }
            FeedEvent::Changed(change) => change,
        };
        let key = change.key;
        match key.kind.as_str() {
            DISTRIBUTION_KIND => {
                pending.distributions.insert(key.id);
            }
            CACHE_RESET_KIND => {
                pending.resets.insert(key.id);
            }
            _ => {
                let id = CertificateId { scope: key.scope, acm_id: key.id };
                if self.users.contains_key(&id) {
                    pending.certificates.insert(id);
                }
            }
        }
    }

    /// Applies what is pending, then reports it. A store failure leaves the next update a
    /// full one (the events it consumed are gone).
    async fn apply(&mut self, pending: Pending) {
        let outcome =
            if pending.full || self.stale { self.rebuild().await.map(|()| true) } else { self.update(pending).await };
        match outcome {
            Ok(changed) => {
                self.stale = false;
                self.after_change();
                if changed && let Err(e) = self.report().await {
                    tracing::error!(error = format!("{e:#}"), "edge: report not stored");
                }
            }
            Err(e) => {
                self.stale = true;
                tracing::error!(
                    error = format!("{e:#}"),
                    "edge: updating the snapshot failed; serving the previous one, rebuilding at the next heartbeat"
                );
            }
        }
    }

    fn count(&self, kind: UpdateKind, n: u64) {
        if n > 0 {
            self.metrics.updates.get_or_create(&SnapshotUpdateLabels { kind: kind.as_str() }).inc_by(n);
        }
    }

    fn default_due(&self) -> bool {
        self.now_ms() >= self.default_certificate.renew_at_ms().max(self.default_retry_ms)
    }

    /// How long to wait before re-reading: until a served certificate expires or the default
    /// one is due for renewal (at most a heartbeat, to look again).
    fn next_wake(&self) -> Duration {
        let now = self.lightsail.core().clock.now_ms();
        let until = u64::try_from(self.next_expiry_ms.saturating_sub(now).saturating_add(1)).unwrap_or(0);
        HEARTBEAT.min(Duration::from_millis(until))
    }

    /// Replaces the default certificate once it is two thirds through its life.
    async fn renew_default(&mut self) -> anyhow::Result<()> {
        if !self.default_due() {
            return Ok(());
        }
        let core = self.lightsail.core();
        let fresh = (self.issue_default)(core.clock.now())?;
        carapace_kernel::revocation::record_self_issued(core.store.as_ref(), &fresh.issued, core.clock.now_ms())
            .await?;
        tracing::info!("edge: default certificate renewed");
        self.default_certificate = fresh;
        Ok(())
    }

    /// Re-reads every distribution and swaps in a snapshot of them all. A distribution that
    /// cannot be applied keeps the version served before, as in an update.
    async fn rebuild(&mut self) -> anyhow::Result<()> {
        if let Err(e) = self.renew_default().await {
            tracing::error!(
                error = format!("{e:#}"),
                "edge: renewing the default certificate failed; will retry in a minute"
            );
            self.default_retry_ms = self.now_ms() + 60_000;
        }
        let records = self.lightsail.all_distributions().await?;
        let mut distributions = Vec::with_capacity(records.len());
        let mut attempts = Vec::with_capacity(records.len());
        for record in &records {
            let (attempt, distribution) = self.attempt(record).await?;
            attempts.push(attempt);
            distributions.extend(distribution);
        }
        let (snapshot, rejected) = Snapshot::build(distributions);
        let mut refused: HashMap<String, String> = rejected.into_iter().map(|r| (r.id, r.error.to_string())).collect();
        refused.extend(attempts.iter().filter_map(|a| a.result.as_ref().err().map(|e| (a.id.clone(), e.clone()))));
        // What was served for a refused distribution stays served.
        let current = self.edge.snapshot();
        let restore = refused.keys().filter_map(|id| current.get(id)).map(|d| SnapshotChange::Upsert(d.clone()));
        let (snapshot, lost) = snapshot.updated(restore.collect::<Vec<_>>());
        let lost: BTreeSet<String> = lost.into_iter().map(|r| r.id).collect();
        self.edge.swap(snapshot);
        let previous = std::mem::take(&mut self.tracked);
        self.users.clear();
        for attempt in &attempts {
            if refused.contains_key(&attempt.id)
                && !lost.contains(&attempt.id)
                && current.get(&attempt.id).is_some()
                && let Some(before) = previous.get(&attempt.row).filter(|t| t.id == attempt.id)
            {
                self.track(attempt.row.clone(), before.clone());
            }
        }
        self.settle(attempts, &refused);
        let ids: BTreeSet<&str> = self.tracked.values().map(|t| t.id.as_str()).collect();
        self.purged.retain(|id, _| ids.contains(id.as_str()));
        let users = &self.users;
        self.keys.retain(|id, _| users.contains_key(id));
        self.purge_resets(None).await?;
        self.count(UpdateKind::Full, 1);
        Ok(())
    }

    /// Applies the distributions and certificates the feed named, and the resets. `false`:
    /// nothing the edge serves changed.
    async fn update(&mut self, pending: Pending) -> anyhow::Result<bool> {
        let now = self.now_ms();
        let mut rows = pending.distributions;
        let mut certificates = 0;
        // Rows re-read for a write of their own (or a retry), as against for a certificate's.
        let mut own = rows.clone();
        for certificate in &pending.certificates {
            if let Some(users) = self.users.get(certificate) {
                certificates += 1;
                rows.extend(users.iter().cloned());
            }
        }
        if pending.expired {
            let expired: BTreeSet<&CertificateId> = self
                .tracked
                .values()
                .filter(|t| t.expires_ms.is_some_and(|at| at <= now))
                .filter_map(|t| t.certificate.as_ref())
                .collect();
            certificates += expired.len() as u64;
            for id in expired {
                rows.extend(self.users.get(id).into_iter().flatten().cloned());
            }
        }
        if !rows.is_empty() {
            // A change may free a host name a refused distribution wanted: try those again.
            let retries: Vec<String> =
                self.tracked.iter().filter(|(_, t)| t.failed.is_some()).map(|(row, _)| row.clone()).collect();
            own.extend(retries.iter().cloned());
            rows.extend(retries);
        }
        let store = self.lightsail.core().store.clone();
        let mut changes = Vec::new();
        let mut attempts = Vec::new();
        let mut own_ids = BTreeSet::new();
        for row in &rows {
            let Some(stored) = store.get(&Key::new(DISTRIBUTION_KIND, "", row)).await? else {
                if let Some(gone) = self.untrack(row) {
                    self.purged.remove(&gone.id);
                    own_ids.insert(gone.id.clone());
                    changes.push(SnapshotChange::Remove(gone.id));
                }
                continue;
            };
            let record = match records::decode::<DistributionRecord>(&stored.body) {
                Ok(record) => record,
                Err(e) => {
                    tracing::error!(distribution = %row, error = chain(&e), "edge: unreadable distribution left as served");
                    continue;
                }
            };
            if let Some(old) = self.tracked.get(row).filter(|t| t.id != record.id).map(|t| t.id.clone()) {
                // Deleted and created again under the same name: a new distribution.
                self.untrack(row);
                changes.push(SnapshotChange::Remove(old));
            }
            let (attempt, distribution) = self.attempt(&record).await?;
            attempts.push(attempt);
            if distribution.is_some() && own.contains(row) {
                own_ids.insert(record.id.clone());
            }
            changes.extend(distribution.map(SnapshotChange::upsert));
        }
        let changed = !changes.is_empty();
        let rejected = self.edge.update(changes);
        for r in &rejected {
            own_ids.remove(&r.id);
        }
        let distributions = own_ids.len() as u64;
        let mut refused: HashMap<String, String> = rejected.into_iter().map(|r| (r.id, r.error.to_string())).collect();
        refused.extend(attempts.iter().filter_map(|a| a.result.as_ref().err().map(|e| (a.id.clone(), e.clone()))));
        let settled = !attempts.is_empty();
        self.settle(attempts, &refused);
        let purged = self.purge_resets(Some(&pending.resets)).await?;
        self.count(UpdateKind::Certificate, certificates);
        self.count(UpdateKind::Distribution, distributions);
        Ok(changed || settled || purged)
    }

    /// Maps one record: the attempt to remember and, if it maps, the distribution to serve.
    async fn attempt(&mut self, record: &DistributionRecord) -> anyhow::Result<(Attempt, Option<Distribution>)> {
        let row = row_id(record);
        let (result, distribution) = match self.map(record).await? {
            Ok(mapped) => (Ok(mapped.state), Some(mapped.distribution)),
            Err(reason) => {
                tracing::warn!(distribution = %record.id, version = record.config_version, %reason, "edge: distribution not applied");
                (Err(reason), None)
            }
        };
        let attempt = Attempt { row, id: record.id.clone(), config_version: record.config_version, result };
        Ok((attempt, distribution))
    }

    /// Remembers what each attempt came to: applied, or refused for `refused[id]`.
    fn settle(&mut self, attempts: Vec<Attempt>, refused: &HashMap<String, String>) {
        let now = self.now_ms();
        for attempt in attempts {
            let mut tracked = self.untrack(&attempt.row).filter(|t| t.id == attempt.id).unwrap_or_else(|| Tracked {
                id: attempt.id.clone(),
                certificate: None,
                applied: None,
                failed: None,
                expires_ms: None,
                fallback: false,
            });
            let refusal = refused.get(&attempt.id).cloned().or_else(|| attempt.result.as_ref().err().cloned());
            match (refusal, attempt.result) {
                (None, Ok(state)) => {
                    tracked.applied = Some(attempt.config_version);
                    tracked.failed = None;
                    tracked.certificate = state.certificate;
                    tracked.expires_ms = state.expires_ms;
                    tracked.fallback = state.fallback;
                }
                (refusal, _) => {
                    let at_ms = match &tracked.failed {
                        Some(f) if f.config_version == attempt.config_version => f.at_ms,
                        _ => now,
                    };
                    let reason = refusal.unwrap_or_default();
                    tracked.failed = Some(FailedChange { config_version: attempt.config_version, reason, at_ms });
                }
            }
            self.track(attempt.row, tracked);
        }
    }

    fn track(&mut self, row: String, tracked: Tracked) {
        if let Some(id) = &tracked.certificate {
            self.users.entry(id.clone()).or_default().insert(row.clone());
        }
        self.tracked.insert(row, tracked);
    }

    fn untrack(&mut self, row: &str) -> Option<Tracked> {
        let tracked = self.tracked.remove(row)?;
        if let Some(id) = &tracked.certificate
            && let Some(users) = self.users.get_mut(id)
        {
            users.remove(row);
            if users.is_empty() {
                self.users.remove(id);
            }
        }
        Some(tracked)
    }

    /// The certificate fallback gauge and the next certificate deadline, after a change.
    fn after_change(&mut self) {
        let mut next = self.default_certificate.renew_at_ms().max(self.default_retry_ms);
        let mut fallbacks = 0;
        for t in self.tracked.values() {
            if let Some(at) = t.expires_ms {
                next = next.min(at);
            }
            fallbacks += i64::from(t.fallback);
        }
        self.next_expiry_ms = next;
        self.metrics.fallbacks.set(fallbacks);
    }

    /// Stores what this node serves: the applied and refused version of each distribution,
    /// and the resets purged.
    async fn report(&self) -> anyhow::Result<()> {
        let mut applied = BTreeMap::new();
        let mut failed = BTreeMap::new();
        for t in self.tracked.values() {
            if let Some(v) = t.applied {
                applied.insert(t.id.clone(), v);
            }
            if let Some(f) = &t.failed {
                failed.insert(t.id.clone(), f.clone());
            }
        }
        let report = EdgeNodeReport {
            heartbeat_ms: self.now_ms(),
            applied,
            purged: self.purged.clone(),
            failed,
            ..Default::default()
        };
        self.lightsail.report_edge_node(&self.node, report).await?;
        Ok(())
    }

    fn now_ms(&self) -> i64 {
        self.lightsail.core().clock.now_ms()
    }

    /// Purges the distributions whose cache was reset since: those of the `rows` written, or
    /// every reset (`None`). `true` when a purge happened.
    async fn purge_resets(&mut self, rows: Option<&BTreeSet<String>>) -> anyhow::Result<bool> {
        let resets = match rows {
            None => self.resets().await?,
            Some(rows) => {
                let store = &self.lightsail.core().store;
                let mut out = Vec::new();
                for row in rows {
                    if let Some(stored) = store.get(&Key::new(CACHE_RESET_KIND, "", row)).await? {
                        out.push(records::decode::<CacheResetRecord>(&stored.body)?);
                    }
                }
                out
            }
        };
        let mut purged = false;
        for reset in resets {
            if self.purged.get(&reset.distribution_id) != Some(&reset.id) {
                self.edge.purge(&reset.distribution_id);
                self.purged.insert(reset.distribution_id.clone(), reset.id.clone());
                purged = true;
            }
        }
        Ok(purged)
    }

    async fn resets(&self) -> anyhow::Result<Vec<CacheResetRecord>> {
        let store = &self.lightsail.core().store;
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let scan = Scan {
                kind: records::CACHE_RESET_KIND,
                scope: "",
                id_prefix: None,
                after,
                order: Order::Ascending,
                limit: 500,
            };
            let rows = store.scan(scan).await?;
            for row in &rows {
                out.push(records::decode::<CacheResetRecord>(&row.body)?);
            }
            match rows.last() {
                Some(last) if rows.len() == 500 => {
                    after = Some(carapace_store::Cursor { created_ms: last.created_ms, id: last.key.id.clone() });
                }
                _ => return Ok(out),
            }
        }
    }

    /// The attached certificate's key: from the cache while its material version is
    /// unchanged, unsealed otherwise. The inner `Err` says why it cannot be served (not
    /// issued, revoked, expired, unreadable); the outer one is a store failure.
    async fn attached_key(
        &mut self,
        attached: &AttachedCertificate,
    ) -> anyhow::Result<Result<(Arc<CertifiedKey>, i64), String>> {
        let id = CertificateId::of(attached);
        let store = self.lightsail.core().store.clone();
        let now = self.now_ms();
        let Some(record) = store.get(&Key::new(acm_record::KIND, &attached.scope, &attached.acm_id)).await? else {
            self.keys.remove(&id);
            return Ok(Err("the certificate no longer exists".into()));
        };
        // Revoked or expired certificates are never served past that point (a record write
        // that leaves the material alone, such as a revocation, is seen here).
        match acm_record::CertificateRecord::decode(&record.body) {
            Ok(r) if r.status_at(now) == Status::Issued => {}
            Ok(r) => {
                self.keys.remove(&id);
                return Ok(Err(format!("the certificate is {}", r.status_at(now).as_str())));
            }
            Err(e) => return Ok(Err(chain(&e))),
        }
        let Some(material) = store.get(&Key::new(MATERIAL_KIND, &attached.scope, &attached.acm_id)).await? else {
            self.keys.remove(&id);
            return Ok(Err("the certificate has no material".into()));
        };
        if let Some(cached) = self.keys.get(&id)
            && cached.material_version == material.version
            && now < cached.not_after_ms
        {
            return Ok(Ok((cached.key.clone(), cached.not_after_ms)));
        }
        let Some(owner) = Owner::from_scope(&attached.scope) else {
            return Ok(Err(format!("bad certificate scope {:?}", attached.scope)));
        };
        let material_version = material.version;
        let unsealed = match self.acm.tls_material(&owner, &attached.acm_arn).await {
            Ok(m) => carapace_edge::certified_key_from_der(m.chain_der, &m.key_pkcs8_der)
                .map(|key| (key, m.not_after_ms))
                .map_err(|e| chain(&e)),
            Err(e) => Err(chain(&e)),
        };
        match &unsealed {
            Ok((key, not_after_ms)) => {
                let cached = CachedKey { material_version, key: key.clone(), not_after_ms: *not_after_ms };
                self.keys.insert(id, cached);
            }
            Err(_) => {
                self.keys.remove(&id);
            }
        }
        Ok(unsealed)
    }

    /// The edge's view of one distribution; `Err` says why the edge cannot serve it (the
    /// outer error is a store failure). An unusable attached certificate is no reason: the
    /// default certificate is served on the alternative names instead, and counted.
    async fn map(&mut self, r: &DistributionRecord) -> anyhow::Result<Result<Mapped, String>> {
        let (certificate, expires_ms, fallback) = match &r.certificate {
            None => (None, None, false),
            Some(attached) => match self.attached_key(attached).await? {
                Ok((key, not_after)) => (Some(key), Some(not_after), false),
                Err(why) => {
                    tracing::warn!(distribution = %r.id, certificate = %attached.name, error = %why,
                        "edge: attached certificate unusable; serving the default certificate");
                    (None, None, true)
                }
            },
        };
        Ok(self.distribution(r, certificate).map(|distribution| Mapped {
            distribution,
            state: MappedState { certificate: r.certificate.as_ref().map(CertificateId::of), expires_ms, fallback },
        }))
    }

    /// The mapping proper. Policies are closed enums on both sides; what the edge checks
    /// beyond them (the origin URL, the TTLs, host names) refuses the distribution alone.
    fn distribution(
        &self,
        r: &DistributionRecord,
        certificate: Option<Arc<CertifiedKey>>,
    ) -> Result<Distribution, String> {
        let policy = match r.origin.protocol_policy {
            OriginProtocolPolicy::HttpOnly => ProtocolPolicy::HttpOnly,
            OriginProtocolPolicy::HttpsOnly => ProtocolPolicy::HttpsOnly,
        };
        let url = r.origin.url.parse().map_err(|e| format!("origin URL {:?}: {e}", r.origin.url))?;
        let mut origin = Origin::new(url, policy);
        origin.response_timeout = Duration::from_secs(u64::try_from(r.origin.response_timeout_secs).unwrap_or(30));
        let mut d = Distribution::new(&r.id, &r.domain_name, origin, self.default_certificate.key.clone());
        d.subdomain = r.subdomain.as_ref().map(|s| s.host.clone());
        d.alternative_domain_names = r.alternative_domain_names.clone();
        d.certificate = certificate;
        d.is_enabled = r.is_enabled;
        d.default_cache_behavior = behavior(r.default_behavior);
        d.cache_behavior_settings = cache_settings(&r.cache_settings)?;
        d.cache_behaviors = r
            .cache_behaviors
            .iter()
            .map(|b| PathBehavior { path: b.path.clone(), behavior: behavior(b.behavior) })
            .collect();
        d.viewer_minimum_tls_protocol_version = tls_policy(r.viewer_minimum_tls);
        d.default_root_object = r.default_root_object.clone().filter(|o| !o.is_empty());
        d.custom_error_responses = r
            .custom_error_responses
            .iter()
            .map(|c| {
                let error_code = u16::try_from(c.error_code)
                    .map_err(|_| format!("customErrorResponses errorCode {}", c.error_code))?;
                let response_code = match c.response_code.as_deref() {
                    None | Some("") => None,
                    Some(code) => {
                        Some(code.parse().map_err(|_| format!("customErrorResponses responseCode {code:?}"))?)
                    }
                };
                Ok(CustomErrorResponse {
                    error_code,
                    response_code,
                    response_page_path: c.response_page_path.clone(),
                    error_caching_min_ttl: secs(c.error_caching_min_ttl),
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(d)
    }

    /// Adds what each distribution served since the last flush to this minute's counters.
    async fn flush_counters(&self, last: &mut BTreeMap<String, carapace_edge::Counters>) {
        let now = self.lightsail.core().clock.now_ms();
        for (id, counters) in self.edge.counters() {
            let delta = match last.get(&id) {
                Some(earlier) => counters.since(earlier),
                None => counters,
            };
            last.insert(id.clone(), counters);
            if delta.requests == 0 && delta.bytes_downloaded == 0 && delta.bytes_uploaded == 0 {
                continue;
            }
            let minute = MinuteCounters {
                requests: delta.requests,
                bytes_downloaded: delta.bytes_downloaded,
                bytes_uploaded: delta.bytes_uploaded,
                status_4xx: delta.status_4xx,
                status_5xx: delta.status_5xx,
                ..Default::default()
            };
            if let Err(e) = self.lightsail.add_minute_counters(&id, now, &self.node, &minute).await {
                tracing::error!(distribution = %id, error = chain(&e), "edge: counters not stored");
            }
        }
    }
}

/// What is remembered of a mapped distribution's certificate.
struct MappedState {
    certificate: Option<CertificateId>,
    expires_ms: Option<i64>,
    fallback: bool,
}

/// One distribution version the edge tried to apply.
struct Attempt {
    row: String,
    id: String,
    config_version: u64,
    /// `Err`: why it could not be mapped.
    result: Result<MappedState, String>,
}

/// The store id of a distribution's row.
fn row_id(r: &DistributionRecord) -> String {
    format!("{}/{}", r.account, r.name)
}

fn tls_policy(t: ViewerMinimumTls) -> TlsPolicy {
    match t {
        ViewerMinimumTls::Tls11_2016 => TlsPolicy::Tls11_2016,
        ViewerMinimumTls::Tls12_2018 => TlsPolicy::Tls12_2018,
        ViewerMinimumTls::Tls12_2019 => TlsPolicy::Tls12_2019,
        ViewerMinimumTls::Tls12_2021 => TlsPolicy::Tls12_2021,
    }
}

fn behavior(b: ls::Behavior) -> Behavior {
    match b {
        ls::Behavior::Cache => Behavior::Cache,
        ls::Behavior::DontCache => Behavior::DontCache,
    }
}

fn secs(s: i64) -> Duration {
    Duration::from_secs(u64::try_from(s).unwrap_or(0))
}

fn forwarded(f: &ls::Forwarded) -> Forwarded {
    match f.option {
        ls::Forward::None => Forwarded::None,
        ls::Forward::AllowList => Forwarded::AllowList(f.allow_list.clone()),
        ls::Forward::All => Forwarded::All,
    }
}

fn cache_settings(s: &ls::CacheSettings) -> Result<CacheSettings, String> {
    let methods = |list: &str| Methods::parse(list).ok_or_else(|| format!("unknown HTTP method list {list:?}"));
    Ok(CacheSettings {
        default_ttl: secs(s.default_ttl),
        minimum_ttl: secs(s.minimum_ttl),
        maximum_ttl: secs(s.maximum_ttl),
        allowed_http_methods: methods(&s.allowed_methods)?,
        cached_http_methods: methods(&s.cached_methods)?,
        forwarded_cookies: forwarded(&s.forwarded_cookies),
        forwarded_headers: forwarded(&s.forwarded_headers),
        forwarded_query_strings: QueryStrings {
            forward: s.forwarded_query_strings.option,
            allow_list: s.forwarded_query_strings.allow_list.clone(),
        },
    })
}

/// A certificate from Carapace's CA for `*.<domain>` and `<domain>`: what distributions
/// without a certificate of their own serve (CloudFront's `*.cloudfront.net`).
pub fn default_certificate(
    ca: &carapace_kernel::ca::CertificateAuthority,
    domain: &str,
    base_url: &str,
    validity_days: u32,
    now: time::OffsetDateTime,
) -> anyhow::Result<DefaultCertificate> {
    use carapace_kernel::ca::{KeyAlgorithm, LeafRequest, generate_key};
    let key = generate_key(KeyAlgorithm::EcPrime256v1)?;
    let issued = ca.issue(
        &LeafRequest {
            common_name: format!("*.{domain}"),
            sans: vec![domain.to_owned()],
            ip_addresses: Vec::new(),
            not_before: now - time::Duration::minutes(5),
            not_after: now + time::Duration::days(i64::from(validity_days.max(1))),
            serial: None,
            base_url: base_url.to_owned(),
        },
        &key,
        now,
    )?;
    let chain = format!("{}{}", issued.certificate_pem, issued.chain_pem);
    let parsed = carapace_kernel::ca::parse_certificate(&issued.certificate_pem)?;
    let ms = |t: time::OffsetDateTime| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    Ok(DefaultCertificate {
        key: carapace_edge::certified_key_from_pem(&chain, &key.to_pem())?,
        not_before_ms: ms(parsed.not_before),
        not_after_ms: ms(parsed.not_after),
        issued,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use carapace_kernel::{Clock as _, Core, ManualClock};
    use carapace_lightsail::edge::DistributionStatus;
    use carapace_lightsail::{
        DeclaredOrigin, DistributionChange, LightsailSettings, NewDistribution, NewLightsailCertificate,
        OperationStatus, OriginInput,
    };
    use carapace_store::{Row, Write};

    const ALICE: &str = "111111111111";

    /// A real store, CA and Lightsail core, an edge (no listener: the tests read its
    /// snapshot) and its owner running.
    struct World {
        core: Core,
        clock: ManualClock,
        lightsail: LightsailManager,
        acm: CertificateManager,
        edge: Edge,
        metrics: EdgeSyncMetrics,
        _stop: tokio::sync::watch::Sender<bool>,
    }

    fn alice() -> Owner {
        Owner::new(ALICE, "us-east-1")
    }

    async fn world() -> World {
        let clock = ManualClock::new(1_767_225_600_000);
        let master = Arc::new(carapace_kernel::crypto::MasterKey::generate().unwrap());
        let (ca, _) = carapace_kernel::ca::CertificateAuthority::generate(
            &carapace_kernel::ca::CaProfile::new("Edge Sync Test", "http://127.0.0.1:4566"),
            clock.now() - time::Duration::days(1),
            &master,
        )
        .unwrap();
        let store = carapace_store::sqlite::SqliteStore::open_in_memory().unwrap();
        let core = Core {
            store: Arc::new(carapace_kernel::index::IndexedStore::new(
                Arc::new(store),
                carapace_kernel::module::indexers(&[carapace_acm::MODULE, carapace_lightsail::MODULE]),
            )),
            clock: Arc::new(clock.clone()),
            master_key: master,
            ca: Arc::new(ca),
            settings: Arc::new(carapace_kernel::Settings {
                dev: true,
                base_url: "http://127.0.0.1:4566".into(),
                jobs: carapace_kernel::jobs::JobSettings::default(),
            }),
            work: Arc::new(tokio::sync::Notify::new()),
        };
        let settings = LightsailSettings {
            origins: vec![
                DeclaredOrigin {
                    name: "web".into(),
                    url: "http://127.0.0.1:9".into(),
                    account: None,
                    region: None,
                    resource_type: "Instance".into(),
                },
                // The configuration's check (http:// or https://, no whitespace) lets this
                // pass; the edge refuses an origin URL with a query.
                DeclaredOrigin {
                    name: "queried".into(),
                    url: "http://127.0.0.1:9/?v=1".into(),
                    account: None,
                    region: None,
                    resource_type: "Instance".into(),
                },
            ],
            ..LightsailSettings::default()
        };
        let acm = CertificateManager::new(
            core.clone(),
            carapace_acm::AcmSettings { dev_auto_approve_ms: 100, ..Default::default() },
        );
        let lightsail = LightsailManager::new(core.clone(), settings, acm.clone());
        let root = rustls::pki_types::CertificateDer::from(core.ca.root_der().to_vec());
        let edge = Edge::new(carapace_edge::EdgeConfig {
            system_roots: false,
            origin_roots: vec![root],
            ..Default::default()
        })
        .unwrap();
        let issue: IssueDefault = {
            let ca = core.ca.clone();
            // 400 days: a test may move the clock to an ACM certificate's renewal window
            // (day 153 of 198) without the edge's own certificate falling due (two thirds in).
            Box::new(move |now| default_certificate(&ca, "cdn.carapace.internal", "http://127.0.0.1:4566", 400, now))
        };
        let default = issue(clock.now()).unwrap();
        let metrics = EdgeSyncMetrics::default();
        let sync = EdgeSync::new(
            edge.clone(),
            lightsail.clone(),
            acm.clone(),
            (default, issue),
            "node-1".into(),
            metrics.clone(),
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(sync.run(stopped));
        World { core, clock, lightsail, acm, edge, metrics, _stop: stop }
    }

    fn new_distribution(name: &str) -> NewDistribution {
        NewDistribution {
            name: name.into(),
            origin: OriginInput { name: "web".into(), ..Default::default() },
            default_behavior: ls::Behavior::Cache,
            cache_settings: None,
            cache_behaviors: Vec::new(),
            bundle_id: "small_1_0".into(),
            ip_address_type: None,
            tags: Vec::new(),
            certificate_name: None,
            viewer_minimum_tls: None,
            default_root_object: None,
            custom_error_responses: Vec::new(),
            subdomain: None,
        }
    }

    async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
        for _ in 0..200 {
            if let Some(v) = probe().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{what}: not within 5 s");
    }

    impl World {
        async fn status(&self, name: &str) -> DistributionStatus {
            self.lightsail.get_distributions(&alice(), Some(name), None).await.unwrap().items[0].status
        }

        /// Served by the edge and `Deployed` (which, before the edge's first report, any
        /// stored distribution reads).
        async fn deployed(&self, name: &str) {
            eventually(&format!("{name} served and Deployed"), async || {
                let page = self.lightsail.get_distributions(&alice(), Some(name), None).await.unwrap();
                let d = &page.items[0];
                let served = self.edge.snapshot().get(&d.record.id).is_some();
                (served && d.status == DistributionStatus::Deployed).then_some(())
            })
            .await;
        }

        fn updates(&self, kind: UpdateKind) -> u64 {
            self.metrics.updates.get_or_create(&SnapshotUpdateLabels { kind: kind.as_str() }).get()
        }

        /// The failure this node reports for a distribution, once it does.
        async fn failure(&self, id: &str, version: u64) -> FailedChange {
            eventually("the edge's failure report", async || {
                self.lightsail.live_edges().await.unwrap().failure(id, version).cloned()
            })
            .await
        }
    }

    /// A distribution the edge cannot apply fails its own operation with a reason; the edge
    /// keeps serving its previous version and every other distribution, which reads
    /// `Deployed`. A host-name collision written behind the API's back fails only the
    /// newcomer, which is served once the name is free.
    #[tokio::test]
    async fn a_distribution_the_edge_cannot_apply_fails_alone() {
        let w = world().await;
        let (good, _) = w.lightsail.create_distribution(&alice(), new_distribution("good")).await.unwrap();
        let (bad, _) = w.lightsail.create_distribution(&alice(), new_distribution("bad")).await.unwrap();
        w.deployed("good").await;
        w.deployed("bad").await;

        // An origin whose URL the edge refuses (a declared origin with a query).
        let origin = OriginInput { name: "queried".into(), ..Default::default() };
        let change = DistributionChange { origin: Some(origin), ..Default::default() };
        let op = w
            .lightsail
            .update_distribution(
                &alice(),
                "bad",
                change,
                carapace_lightsail::records::OperationType::UpdateDistribution,
            )
            .await
            .unwrap();
        let failed = eventually("the operation fails", async || {
            let op = w.lightsail.get_operation(&alice(), &op.record.id).await.unwrap();
            (op.status == OperationStatus::Failed).then_some(op)
        })
        .await;
        let details = failed.record.error_details.unwrap_or_default();
        assert!(details.contains("origin URL"), "{details}");
        assert_eq!(w.status("good").await, DistributionStatus::Deployed);
        assert_eq!(w.status("bad").await, DistributionStatus::InProgress);
        let snapshot = w.edge.snapshot();
        assert!(snapshot.find(&good.record.domain_name).is_some(), "the other distribution is served");
        let served = snapshot.find(&bad.record.domain_name).expect("the previous version is still served");
        assert_eq!(served.origin.url.query(), None, "the previous origin is still used");

        // A record claiming another distribution's default domain, written straight to the
        // store (the API's domain claims would refuse it).
        let mut thief = bad.record.clone();
        thief.id = "thief-id".into();
        thief.name = "thief".into();
        thief.domain_name = "dthief.cdn.carapace.internal".into();
        thief.alternative_domain_names = vec![good.record.domain_name.clone()];
        let row = Row {
            key: Key::new(DISTRIBUTION_KIND, "", format!("{ALICE}/thief")),
            version: 0,
            created_ms: w.clock.now_ms(),
            body: records::encode(&thief).unwrap(),
        };
        w.core.store.apply(vec![Write::Put { row, expect: None }]).await.unwrap();
        let failure = w.failure("thief-id", thief.config_version).await;
        assert!(failure.reason.contains("claimed"), "{}", failure.reason);
        let served = w.edge.snapshot().find(&good.record.domain_name).map(|d| d.id.clone());
        assert_eq!(served.as_deref(), Some(good.record.id.as_str()), "the holder keeps its name");
        assert!(w.edge.snapshot().get("thief-id").is_none());
        assert_eq!(w.status("good").await, DistributionStatus::Deployed);

        // Once the name is free, the refused distribution is tried again and served.
        w.lightsail.delete_distribution(&alice(), "good").await.unwrap();
        let served = eventually("the newcomer is served", async || {
            w.edge.snapshot().find(&good.record.domain_name).map(|d| d.id.clone()).filter(|id| id == "thief-id")
        })
        .await;
        assert_eq!(served, "thief-id");
        assert_eq!(w.updates(UpdateKind::Full), 1, "only the start was a full rebuild");
    }

    /// An attached certificate is re-read for its own writes only: a record write leaves its
    /// key as unsealed (the same `Arc`), a managed renewal (new material) is served at once, and
    /// certificates issued in another account cause nothing.
    #[tokio::test]
    async fn certificate_writes_reach_only_the_distributions_using_them() {
        let w = world().await;
        let req = NewLightsailCertificate {
            name: "site-cert".into(),
            domain_name: "example.com".into(),
            subject_alternative_names: vec!["www.example.com".into()],
            tags: Vec::new(),
        };
        let (cert, _) = w.lightsail.create_certificate(&alice(), req).await.unwrap();
        w.clock.advance(200);
        w.acm.run_due_jobs().await.unwrap();
        let mut site = new_distribution("site");
        site.certificate_name = Some("site-cert".into());
        let (site, _) = w.lightsail.create_distribution(&alice(), site).await.unwrap();
        w.deployed("site").await;
        let attached = w.edge.certificate_for("www.example.com").expect("the attached name is served");
        let default = w.edge.certificate_for(&site.record.domain_name).expect("the default domain");
        assert!(!Arc::ptr_eq(&attached, &default), "the default domain keeps the edge's certificate");
        let counts =
            || (w.updates(UpdateKind::Full), w.updates(UpdateKind::Distribution), w.updates(UpdateKind::Certificate));
        let before = counts();

        // Another account's certificates, requested and issued.
        let other = Owner::new("222222222222", "us-east-1");
        for i in 0..20 {
            let req = carapace_acm::NewCertificate {
                domain_name: format!("c{i}.other.example"),
                key_algorithm: Some(carapace_kernel::ca::KeyAlgorithm::EcPrime256v1),
                ..Default::default()
            };
            w.acm.request_certificate(&other, req).await.unwrap();
        }
        w.clock.advance(200);
        w.acm.run_due_jobs().await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(counts(), before, "(full, distribution, certificate) after another account's certificates");

        // A write of the certificate's record alone: re-read, not unsealed again.
        let arn = cert.record.acm_arn.clone();
        let tag = carapace_acm::Tag { key: "team".into(), value: Some("web".into()) };
        w.acm.add_tags(&alice(), &arn, &[tag]).await.unwrap();
        eventually("the tag write is a certificate update", async || {
            (w.updates(UpdateKind::Certificate) > before.2).then_some(())
        })
        .await;
        let now = w.edge.certificate_for("www.example.com").unwrap();
        assert!(Arc::ptr_eq(&now, &attached), "an unchanged version is not unsealed again");

        // Managed renewal (in use, so eligible) once its window opens 45 days before NotAfter:
        // a new key and leaf under the same ARN, served on the attached names.
        let issued = w.acm.describe_certificate(&alice(), &arn).await.unwrap();
        let not_after_ms = issued.record.x509.expect("issued").not_after_ms;
        w.clock.set(not_after_ms - 44 * 86_400_000);
        let renewed = eventually("the renewed certificate is served", async || {
            w.acm.run_due_jobs().await.ok()?;
            let now = w.edge.certificate_for("www.example.com")?;
            (!Arc::ptr_eq(&now, &attached)).then_some(now)
        })
        .await;
        assert_ne!(renewed.cert[0], attached.cert[0]);
        assert!(Arc::ptr_eq(&w.edge.certificate_for(&site.record.domain_name).unwrap(), &default));
        assert_eq!(w.metrics.fallbacks.get(), 0);
        assert_eq!(w.updates(UpdateKind::Full), before.0, "no full rebuild for any of it");
    }
}
