//! Keeps a running edge in step with the store: Lightsail's distributions (and the ACM
//! certificates attached to them) become the edge's snapshot, rebuilt whenever the change
//! feed reports a write of a distribution, a cache reset or certificate material, and at
//! least every [`HEARTBEAT`]. After each rebuild the node reports what it applied and purged
//! (Lightsail's `Deployed` and `Succeeded` wait for every running edge), and every minute
//! it adds its per-distribution counters to the store for GetDistributionMetricData.
//!
//! The mapping is the only place that knows both sides: `carapace_edge` knows no Lightsail
//! record, and the Lightsail core knows no edge.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use carapace_core::acm::{CertificateManager, Owner};
use carapace_core::lightsail::LightsailManager;
use carapace_core::lightsail::cache as ls;
use carapace_core::lightsail::records::{self, CacheResetRecord, DistributionRecord, EdgeNodeReport, MinuteCounters};
use carapace_edge::{
    Behavior, CacheSettings, CustomErrorResponse, Distribution, Edge, Forwarded, Methods, Origin, PathBehavior,
    ProtocolPolicy, QueryStrings, Snapshot, TlsPolicy,
};
use carapace_store::{FeedEvent, Order, Scan};
use rustls::sign::CertifiedKey;

/// Longest time between two rebuilds (and heartbeats): well inside Lightsail's
/// [`carapace_core::lightsail::edge::EDGE_NODE_TTL_MS`], so a live edge never looks gone.
const HEARTBEAT: Duration = Duration::from_secs(30);

/// How often counters are added to the store.
const FLUSH: Duration = Duration::from_secs(60);

/// Signs a new default certificate valid from the given time.
pub type IssueDefault = Box<dyn Fn(time::OffsetDateTime) -> anyhow::Result<DefaultCertificate> + Send + Sync>;

/// The `*.<edge.domain>` certificate, served for distributions without one of their own
/// (or whose own is unusable), and renewed by the edge's owner before it expires.
pub struct DefaultCertificate {
    /// What the TLS resolver serves.
    pub key: Arc<CertifiedKey>,
    /// The leaf as issued (for the issued-serial index).
    pub issued: carapace_core::ca::IssuedCertificate,
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

/// The edge's owner on this node.
pub struct EdgeSync {
    edge: Edge,
    lightsail: LightsailManager,
    acm: CertificateManager,
    /// Served for distributions without a usable certificate of their own.
    default_certificate: DefaultCertificate,
    issue_default: IssueDefault,
    /// This node's name in edge reports and metric rows.
    node: String,
    /// The latest reset purged per distribution id.
    purged: BTreeMap<String, String>,
    /// The earliest time a served certificate must be replaced (an attached certificate's
    /// `NotAfter`, the default's renewal time): the next rebuild happens no later.
    next_expiry_ms: i64,
    /// Distributions served with the default certificate instead of their own.
    fallbacks: prometheus_client::metrics::gauge::Gauge,
}

impl EdgeSync {
    /// An owner for `edge`, reading through `lightsail` and `acm`.
    pub fn new(
        edge: Edge,
        lightsail: LightsailManager,
        acm: CertificateManager,
        (default_certificate, issue_default): (DefaultCertificate, IssueDefault),
        node: String,
        fallbacks: prometheus_client::metrics::gauge::Gauge,
    ) -> Self {
        Self {
            edge,
            lightsail,
            acm,
            default_certificate,
            issue_default,
            node,
            purged: BTreeMap::new(),
            next_expiry_ms: i64::MAX,
            fallbacks,
        }
    }

    /// Rebuilds on every relevant change until `stop` turns true.
    pub async fn run(mut self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let store = self.lightsail.core().store.clone();
        let material = carapace_core::acm::record::MATERIAL_KIND;
        let mut feed = store.subscribe(&[records::DISTRIBUTION_KIND, records::CACHE_RESET_KIND, material]);
        let mut flush = tokio::time::interval(FLUSH);
        flush.tick().await;
        let mut last_counters = BTreeMap::new();
        loop {
            if let Err(e) = self.rebuild().await {
                tracing::error!(error = %e, "edge: rebuilding the snapshot failed; serving the previous one");
            }
            tokio::select! {
                event = feed.next() => {
                    if event.is_none() {
                        return;
                    }
                    // A burst of writes makes one rebuild.
                    while let Some(FeedEvent::Changed(_) | FeedEvent::Resync) = feed.try_next() {}
                }
                _ = flush.tick() => self.flush_counters(&mut last_counters).await,
                _ = tokio::time::sleep(self.next_wake()) => {}
                _ = stop.changed() => {
                    self.flush_counters(&mut last_counters).await;
                    return;
                }
            }
        }
    }

    /// How long to wait before the next rebuild: the heartbeat, or less when a served
    /// certificate expires sooner.
    fn next_wake(&self) -> Duration {
        let now = self.lightsail.core().clock.now_ms();
        let until = u64::try_from(self.next_expiry_ms.saturating_sub(now).saturating_add(1)).unwrap_or(0);
        HEARTBEAT.min(Duration::from_millis(until))
    }

    /// Replaces the default certificate once it is two thirds through its life.
    async fn renew_default(&mut self) -> anyhow::Result<()> {
        let core = self.lightsail.core();
        if core.clock.now_ms() < self.default_certificate.renew_at_ms() {
            return Ok(());
        }
        let fresh = (self.issue_default)(core.clock.now())?;
        crate::serve::record_issued(core, &fresh.issued).await?;
        tracing::info!("edge: default certificate renewed");
        self.default_certificate = fresh;
        Ok(())
    }

    /// Builds and swaps in a snapshot of every distribution, purges distributions whose
    /// cache was reset since, and reports the result.
    async fn rebuild(&mut self) -> anyhow::Result<()> {
        if let Err(e) = self.renew_default().await {
            tracing::error!(error = %e, "edge: renewing the default certificate failed; will retry");
        }
        let records = self.lightsail.all_distributions().await?;
        let mut distributions = Vec::with_capacity(records.len());
        let mut applied = BTreeMap::new();
        let mut next_expiry = self.default_certificate.renew_at_ms();
        let mut fallbacks = 0;
        for record in &records {
            match self.distribution(record).await {
                Ok((d, expiry)) => {
                    distributions.push(d);
                    applied.insert(record.id.clone(), record.config_version);
                    match expiry {
                        Some(not_after) => next_expiry = next_expiry.min(not_after),
                        None if record.certificate.is_some() => fallbacks += 1,
                        None => {}
                    }
                }
                Err(e) => tracing::error!(distribution = %record.id, error = %e, "edge: distribution not served"),
            }
        }
        self.next_expiry_ms = next_expiry;
        self.fallbacks.set(fallbacks);
        self.edge.swap(Snapshot::new(distributions)?);
        for reset in self.resets().await? {
            if self.purged.get(&reset.distribution_id) != Some(&reset.id) {
                self.edge.purge(&reset.distribution_id);
                self.purged.insert(reset.distribution_id.clone(), reset.id.clone());
            }
        }
        let report = EdgeNodeReport {
            heartbeat_ms: self.lightsail.core().clock.now_ms(),
            applied,
            purged: self.purged.clone().into_iter().collect(),
            ..Default::default()
        };
        self.lightsail.report_edge_node(&self.node, report).await?;
        Ok(())
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
                out.push(records::decode::<CacheResetRecord>(&row.body).map_err(anyhow::Error::msg)?);
            }
            match rows.last() {
                Some(last) if rows.len() == 500 => {
                    after = Some(carapace_store::Cursor { created_ms: last.created_ms, id: last.key.id.clone() });
                }
                _ => return Ok(out),
            }
        }
    }

    /// The edge's view of one distribution, and the `NotAfter` of its own certificate when
    /// it is served (`None`: the default certificate is).
    async fn distribution(&self, r: &DistributionRecord) -> anyhow::Result<(Distribution, Option<i64>)> {
        let (certificate, expiry) = match &r.certificate {
            None => (None, None),
            Some(attached) => {
                let owner =
                    Owner::from_scope(&attached.scope).ok_or_else(|| anyhow::anyhow!("bad certificate scope"))?;
                // Refused once expired (or revoked): never served past its NotAfter.
                match self.acm.tls_material(&owner, &attached.acm_arn).await {
                    Ok(m) => (
                        Some(carapace_edge::certified_key_from_der(m.chain_der, &m.key_pkcs8_der)?),
                        Some(m.not_after_ms),
                    ),
                    Err(e) => {
                        tracing::warn!(distribution = %r.id, certificate = %attached.name, error = %e,
                            "edge: attached certificate unusable; serving the default certificate");
                        (None, None)
                    }
                }
            }
        };
        let policy =
            if r.origin.protocol_policy == "https-only" { ProtocolPolicy::HttpsOnly } else { ProtocolPolicy::HttpOnly };
        let mut origin = Origin::new(r.origin.url.parse()?, policy);
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
        d.viewer_minimum_tls_protocol_version =
            r.viewer_minimum_tls.parse::<TlsPolicy>().unwrap_or(TlsPolicy::Tls12_2021);
        d.default_root_object = r.default_root_object.clone().filter(|o| !o.is_empty());
        d.custom_error_responses = r
            .custom_error_responses
            .iter()
            .filter_map(|c| {
                Some(CustomErrorResponse {
                    error_code: u16::try_from(c.error_code).ok()?,
                    response_code: c.response_code.as_deref().and_then(|s| s.parse().ok()),
                    response_page_path: c.response_page_path.clone(),
                    error_caching_min_ttl: secs(c.error_caching_min_ttl),
                })
            })
            .collect();
        Ok((d, expiry))
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
                tracing::error!(distribution = %id, error = %e, "edge: counters not stored");
            }
        }
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

fn cache_settings(s: &ls::CacheSettings) -> anyhow::Result<CacheSettings> {
    let methods = |list: &str| Methods::parse(list).ok_or_else(|| anyhow::anyhow!("unknown method list {list:?}"));
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
    ca: &carapace_core::ca::CertificateAuthority,
    domain: &str,
    base_url: &str,
    validity_days: u32,
    now: time::OffsetDateTime,
) -> anyhow::Result<DefaultCertificate> {
    use carapace_core::ca::{KeyAlgorithm, LeafRequest, generate_key};
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
    let parsed = carapace_core::ca::parse_certificate(&issued.certificate_pem)?;
    let ms = |t: time::OffsetDateTime| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    Ok(DefaultCertificate {
        key: carapace_edge::certified_key_from_pem(&chain, &key.to_pem())?,
        not_before_ms: ms(parsed.not_before),
        not_after_ms: ms(parsed.not_after),
        issued,
    })
}
