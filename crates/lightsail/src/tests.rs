//! Lightsail rules over a real SQLite store, a real CA and a hand-driven clock.

use super::cache::{Behavior, CacheSettings};
use super::edge::{CacheResetStatus, DistributionStatus};
use super::records::{
    DistributionRecord, IpAddressType, MinuteCounters, OriginProtocolPolicy, OriginRecord, ViewerMinimumTls,
};
use super::*;
use carapace_acm::AcmSettings;
use carapace_acm::{ListQuery, Status};
use carapace_kernel::clock::ManualClock;

const START_MS: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z, test_core's clock

struct Env {
    ls: LightsailManager,
    clock: ManualClock,
}

fn env() -> Env {
    let (core, clock) = crate::testing::test_core(true);
    let settings = LightsailSettings {
        origins: vec![DeclaredOrigin {
            name: "web".into(),
            url: "http://origin.example.com:8080".into(),
            account: None,
            region: None,
            resource_type: "Instance".into(),
        }],
        ..LightsailSettings::default()
    };
    Env { ls: LightsailManager::new(core.clone(), settings, test_acm(core)), clock }
}

/// ACM as Lightsail's tests drive it: domains approved 100 ms after a request.
fn test_acm(core: carapace_kernel::Core) -> CertificateManager {
    CertificateManager::new(core, AcmSettings { dev_auto_approve_ms: 100, ..AcmSettings::default() })
}

fn alice() -> Owner {
    Owner::new("111111111111", DISTRIBUTION_REGION)
}

/// A distribution record for unit tests elsewhere in this module.
pub(crate) fn sample_distribution() -> DistributionRecord {
    DistributionRecord {
        schema: 1,
        id: "d".into(),
        account: "111111111111".into(),
        name: "n".into(),
        arn: "arn".into(),
        support_code: "s".into(),
        created_ms: 0,
        changed_ms: 0,
        config_version: 1,
        domain_name: "d1.cdn.carapace.internal".into(),
        subdomain: None,
        bundle_id: "small_1_0".into(),
        bundle_changed_ms: None,
        is_enabled: true,
        origin: OriginRecord {
            name: "web".into(),
            region: "us-east-1".into(),
            resource_type: "Instance".into(),
            url: "http://o".into(),
            public_dns: "o".into(),
            protocol_policy: OriginProtocolPolicy::HttpOnly,
            response_timeout_secs: 30,
            ip_address_type: None,
        },
        default_behavior: Behavior::Cache,
        cache_settings: CacheSettings::default(),
        cache_behaviors: Vec::new(),
        ip_address_type: IpAddressType::Dualstack,
        viewer_minimum_tls: ViewerMinimumTls::Tls12_2021,
        default_root_object: None,
        custom_error_responses: Vec::new(),
        certificate: None,
        alternative_domain_names: Vec::new(),
        tags: Vec::new(),
    }
}

fn new_distribution(name: &str) -> NewDistribution {
    NewDistribution {
        name: name.into(),
        origin: OriginInput { name: "web".into(), ..Default::default() },
        default_behavior: Behavior::Cache,
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

async fn issued_certificate(env: &Env, name: &str, domain: &str) {
    let req = NewLightsailCertificate {
        name: name.into(),
        domain_name: domain.into(),
        subject_alternative_names: vec![format!("www.{domain}")],
        tags: Vec::new(),
    };
    env.ls.create_certificate(&alice(), req).await.unwrap();
    env.clock.advance(200);
    env.ls.acm.run_due_jobs().await.unwrap();
}

fn code(e: LightsailError) -> &'static str {
    match e {
        LightsailError::NotFound { code, .. }
        | LightsailError::InvalidInput { code, .. }
        | LightsailError::OperationFailure { code, .. } => code,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn certificates_are_acm_certificates_acm_does_not_list() {
    let env = env();
    issued_certificate(&env, "cert-1", "example.com").await;
    let q = CertificateQuery { details: true, ..Default::default() };
    let page = env.ls.get_certificates(&alice(), &q).await.unwrap();
    let acm = page.items[0].acm.as_ref().unwrap();
    assert_eq!(acm.status, Status::Issued);
    assert_eq!(acm.record.sans, ["example.com", "www.example.com"]);
    let listed =
        env.ls.acm.list_certificates(&alice(), &ListQuery { max_items: 100, ..Default::default() }).await.unwrap();
    assert!(listed.items.is_empty(), "ACM's ListCertificates must not show Lightsail certificates");
    let dup = NewLightsailCertificate { name: "cert-1".into(), domain_name: "other.com".into(), ..Default::default() };
    assert_eq!(code(env.ls.create_certificate(&alice(), dup).await.unwrap_err()), "NameExists");
    let wild = NewLightsailCertificate { name: "w".into(), domain_name: "*.example.com".into(), ..Default::default() };
    assert_eq!(code(env.ls.create_certificate(&alice(), wild).await.unwrap_err()), "InvalidDomainName");
}

#[tokio::test]
async fn attach_claims_domains_and_blocks_deletion() {
    let env = env();
    issued_certificate(&env, "cert-1", "example.com").await;
    let (d, op) = env.ls.create_distribution(&alice(), new_distribution("site")).await.unwrap();
    assert_eq!(op.status, OperationStatus::Started, "answered as AWS answers: started");
    assert_eq!(env.ls.get_operation(&alice(), &op.record.id).await.unwrap().status, OperationStatus::Succeeded);
    assert!(d.record.domain_name.starts_with('d') && d.record.domain_name.ends_with(".cdn.carapace.internal"));
    assert_eq!(d.record.domain_name.len(), 14 + ".cdn.carapace.internal".len());
    assert_eq!(d.status, DistributionStatus::Deployed);
    env.ls.create_distribution(&alice(), new_distribution("other")).await.unwrap();
    env.ls.attach_certificate(&alice(), "site", "cert-1").await.unwrap();
    let site = &env.ls.get_distributions(&alice(), Some("site"), None).await.unwrap().items[0].record;
    assert_eq!(site.alternative_domain_names, ["example.com", "www.example.com"]);
    assert_eq!(site.config_version, 2);
    assert_eq!(code(env.ls.attach_certificate(&alice(), "other", "cert-1").await.unwrap_err()), "DomainInUse");
    assert_eq!(code(env.ls.delete_certificate(&alice(), "cert-1").await.unwrap_err()), "ResourceInUse");
    env.ls.detach_certificate(&alice(), "site").await.unwrap();
    env.ls.attach_certificate(&alice(), "other", "cert-1").await.unwrap();
    env.ls.delete_distribution(&alice(), "other").await.unwrap();
    env.ls.delete_certificate(&alice(), "cert-1").await.unwrap();
    let left = env.ls.get_certificates(&alice(), &CertificateQuery::default()).await.unwrap();
    assert!(left.items.is_empty());
}

#[tokio::test]
async fn distribution_rules() {
    let env = env();
    let elsewhere = Owner::new("111111111111", "eu-west-1");
    assert_eq!(code(env.ls.create_distribution(&elsewhere, new_distribution("x")).await.unwrap_err()), "InvalidRegion");
    let mut unknown = new_distribution("x");
    unknown.origin.name = "nope".into();
    assert_eq!(code(env.ls.create_distribution(&alice(), unknown).await.unwrap_err()), "DoesNotExist");
    env.ls.create_distribution(&alice(), new_distribution("x")).await.unwrap();
    assert_eq!(code(env.ls.create_distribution(&alice(), new_distribution("x")).await.unwrap_err()), "NameExists");
    // Another account has its own names.
    env.ls.create_distribution(&Owner::new("222222222222", DISTRIBUTION_REGION), new_distribution("x")).await.unwrap();
    env.ls.update_distribution_bundle(&alice(), "x", "medium_1_0").await.unwrap();
    assert_eq!(
        code(env.ls.update_distribution_bundle(&alice(), "x", "large_1_0").await.unwrap_err()),
        "BundleUpdateNotAllowed"
    );
    env.clock.advance(31 * 86_400_000);
    env.ls.update_distribution_bundle(&alice(), "x", "large_1_0").await.unwrap();
    let (reset, _) = env.ls.reset_distribution_cache(&alice(), "x").await.unwrap();
    assert_eq!(reset.status, CacheResetStatus::InProgress);
    assert_eq!(env.ls.latest_cache_reset(&alice(), "x").await.unwrap().unwrap().status, CacheResetStatus::Succeeded);
}

#[tokio::test]
async fn metrics_from_counters() {
    let env = env();
    let (d, _) = env.ls.create_distribution(&alice(), new_distribution("m")).await.unwrap();
    let c = MinuteCounters { requests: 10, status_4xx: 2, ..Default::default() };
    for node in ["edge-a", "edge-b"] {
        env.ls.add_minute_counters(&d.record.id, START_MS + 5_000, node, &c).await.unwrap();
    }
    env.ls.add_minute_counters(&d.record.id, START_MS + 60_000, "edge-a", &c).await.unwrap();
    let q = metrics::MetricQuery {
        metric: metrics::Metric::Requests,
        start_ms: START_MS,
        end_ms: START_MS + 3_600_000,
        period_secs: 3600,
        unit: "None".into(),
        statistics: vec![metrics::Statistic::Sum, metrics::Statistic::SampleCount],
    };
    let points = env.ls.distribution_metric_data(&alice(), "m", &q).await.unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!((points[0].sum, points[0].sample_count), (Some(30.0), Some(2.0)));
}

#[tokio::test]
async fn listings_select_by_index_status_account_and_resource() {
    let env = env();
    issued_certificate(&env, "issued-1", "one.example.com").await;
    issued_certificate(&env, "issued-2", "two.example.com").await;
    for name in ["pending-1", "pending-2"] {
        let req = NewLightsailCertificate {
            name: name.into(),
            domain_name: format!("{name}.example.com"),
            ..Default::default()
        };
        env.ls.create_certificate(&alice(), req).await.unwrap();
        env.clock.advance(1); // creation order is listing order
    }
    // An ACM certificate of the same account and region is not Lightsail's to list.
    let acm = carapace_acm::NewCertificate { domain_name: "acm.example.com".into(), ..Default::default() };
    env.ls.acm.request_certificate(&alice(), acm).await.unwrap();

    let names = |page: &CertificatesPage| page.items.iter().map(|c| c.record.name.clone()).collect::<Vec<_>>();
    let by = |statuses: Vec<Status>| CertificateQuery { statuses, ..Default::default() };
    let issued = env.ls.get_certificates(&alice(), &by(vec![Status::Issued])).await.unwrap();
    assert_eq!(names(&issued), ["issued-1", "issued-2"]);
    assert!(issued.items.iter().all(|c| c.acm.as_ref().is_some_and(|a| a.status == Status::Issued)));
    assert_eq!(issued.next_token, None);
    let pending = env.ls.get_certificates(&alice(), &by(vec![Status::PendingValidation])).await.unwrap();
    assert_eq!(names(&pending), ["pending-1", "pending-2"]);
    let both = env.ls.get_certificates(&alice(), &by(vec![Status::Issued, Status::PendingValidation])).await.unwrap();
    assert_eq!(both.items.len(), 4);
    assert!(env.ls.get_certificates(&alice(), &by(vec![Status::Revoked])).await.unwrap().items.is_empty());
    // Another account's certificates never show.
    let bob = Owner::new("222222222222", DISTRIBUTION_REGION);
    assert!(env.ls.get_certificates(&bob, &by(vec![Status::Issued])).await.unwrap().items.is_empty());

    // Distributions: one global scope, each account sees its own.
    env.ls.create_distribution(&alice(), new_distribution("alice-site")).await.unwrap();
    env.ls.create_distribution(&bob, new_distribution("bob-site")).await.unwrap();
    let listed = |owner: Owner| {
        let ls = &env.ls;
        async move {
            let page = ls.get_distributions(&owner, None, None).await.unwrap();
            page.items.iter().map(|d| d.record.name.clone()).collect::<Vec<_>>()
        }
    };
    assert_eq!(listed(alice()).await, ["alice-site"]);
    assert_eq!(listed(bob.clone()).await, ["bob-site"]);

    // Operations by resource: one resource's, not every operation of the account.
    let ops = env.ls.get_operations_for_resource(&alice(), "alice-site", None).await.unwrap();
    assert_eq!(ops.items.len(), 1);
    assert_eq!(ops.items[0].record.resource_name, "alice-site");
    assert!(env.ls.get_operations_for_resource(&alice(), "issued", None).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn an_operation_fails_when_a_running_edge_refuses_its_configuration() {
    let env = env();
    let (view, created) = env.ls.create_distribution(&alice(), new_distribution("site")).await.unwrap();
    let id = view.record.id.clone();
    let change = DistributionChange { is_enabled: Some(false), ..Default::default() };
    let updated =
        env.ls.update_distribution(&alice(), "site", change, records::OperationType::UpdateDistribution).await.unwrap();
    assert_eq!(updated.record.change.as_ref().map(|c| c.config_version), Some(2));
    let bundle = env.ls.update_distribution_bundle(&alice(), "site", "small_1_0").await.unwrap();
    assert!(bundle.record.change.is_none(), "a bundle change is nothing the edge applies");

    // An edge serves version 1 and refuses version 2.
    let report = records::EdgeNodeReport {
        heartbeat_ms: env.ls.now_ms(),
        applied: [(id.clone(), 1)].into(),
        failed: [(
            id.clone(),
            records::FailedChange { config_version: 2, reason: "origin URL \"x\"".into(), at_ms: 7 },
        )]
        .into(),
        ..Default::default()
    };
    env.ls.report_edge_node("edge-1", report).await.unwrap();
    let first = env.ls.get_operation(&alice(), &created.record.id).await.unwrap();
    assert_eq!(first.status, OperationStatus::Succeeded, "version 1 was applied");
    let failed = env.ls.get_operation(&alice(), &updated.record.id).await.unwrap();
    assert_eq!(failed.status, OperationStatus::Failed);
    assert_eq!(failed.record.error_code.as_deref(), Some(operations::NOT_APPLIED));
    assert_eq!(failed.record.error_details.as_deref(), Some("origin URL \"x\""));
    assert_eq!(failed.status_changed_ms, 7);
    let listed = env.ls.get_operations_for_resource(&alice(), "site", None).await.unwrap();
    let failed_ids: Vec<&str> =
        listed.items.iter().filter(|o| o.status == OperationStatus::Failed).map(|o| o.record.id.as_str()).collect();
    assert_eq!((listed.items.len(), failed_ids), (3, vec![updated.record.id.as_str()]));
    let page = env.ls.get_distributions(&alice(), Some("site"), None).await.unwrap();
    assert_eq!(page.items[0].status, DistributionStatus::InProgress);

    // Once the edge's report is older than the TTL, nothing holds the operation failed.
    env.clock.advance(edge::EDGE_NODE_TTL_MS + 1);
    assert_eq!(env.ls.get_operation(&alice(), &updated.record.id).await.unwrap().status, OperationStatus::Succeeded);
}

/// AttachCertificateToDistribution writes the distribution and both certificates' in-use marks
/// in one batch: cut short after any number of its batches (a crash between two writes), it
/// leaves the old attachment or the new one whole, never a mark without its distribution.
#[tokio::test]
async fn an_attach_cut_short_leaves_no_stale_in_use_mark() {
    let (core, clock) = crate::testing::test_core(true);
    let crashing = std::sync::Arc::new(crate::testing::CrashingStore::new(core.store.clone()));
    let core = carapace_kernel::Core { store: crashing.clone(), ..core };
    let env = Env { ls: LightsailManager::new(core.clone(), (*env().ls.settings).clone(), test_acm(core)), clock };
    issued_certificate(&env, "cert-a", "a.example.com").await;
    issued_certificate(&env, "cert-b", "b.example.com").await;
    let distribution = NewDistribution { certificate_name: Some("cert-a".into()), ..new_distribution("site") };
    env.ls.create_distribution(&alice(), distribution).await.unwrap();

    let certificates = env.ls.get_certificates(&alice(), &CertificateQuery::default()).await.unwrap().items;
    let acm_arn = |name: &str| certificates.iter().find(|c| c.record.name == name).unwrap().record.acm_arn.clone();
    let mut attached = "cert-a";
    for batches in [0, 1, 0, 2, 0, 1] {
        let target = if attached == "cert-a" { "cert-b" } else { "cert-a" };
        crashing.allow(Some(batches));
        let result = env.ls.attach_certificate(&alice(), "site", target).await;
        crashing.allow(None);
        let site = env.ls.get_distributions(&alice(), Some("site"), None).await.unwrap().items.remove(0).record;
        let now_attached = site.certificate.as_ref().map(|c| c.name.clone()).unwrap();
        if result.is_ok() {
            assert_eq!(now_attached, target, "an answered attach is applied");
        }
        for name in ["cert-a", "cert-b"] {
            let acm = env.ls.acm.describe_certificate(&alice(), &acm_arn(name)).await.unwrap();
            assert_eq!(
                acm.record.in_use_by.contains(&site.arn),
                now_attached == name,
                "after {batches} committed batches, {name}'s in-use mark must match the distribution ({now_attached} attached)"
            );
        }
        attached = if now_attached == "cert-a" { "cert-a" } else { "cert-b" };
    }
}
