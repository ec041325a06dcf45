//! Lightsail through aws-sdk-rust against the real binary: every built operation once, the
//! typed errors with Lightsail's `code`/`docs`/`tip`, and account isolation. (boto3 and the
//! AWS CLI cover each error in tests/python/test_lightsail.py; the whole life outside
//! `--dev` with real DNS is in tests/python/test_validation.py.)
#![allow(clippy::disallowed_methods)] // a test or benchmark on the real clock

mod common;

use std::time::{Duration, Instant};

use aws_sdk_lightsail::Client;
use aws_sdk_lightsail::primitives::DateTime;
use aws_sdk_lightsail::types::{
    BehaviorEnum, CacheBehavior, CacheSettings, CertificateStatus, DistributionMetricName, InputOrigin,
    MetricStatistic, MetricUnit, OperationStatus, OperationType, RegionName, Tag,
};
use common::Server;

const ALICE: &str = "111111111111";
const BOB: &str = "222222222222";

async fn client(server: &Server, account: &str) -> Client {
    Client::new(&server.sdk_config(account, "dev-secret", "us-east-1").await)
}

fn server() -> Server {
    Server::start(
        &["--dev"],
        &[("CARAPACE_LIGHTSAIL_ORIGINS", "web=http://127.0.0.1:9"), ("CARAPACE_ACM_DEV_AUTO_APPROVE_MS", "100")],
    )
}

async fn wait_issued(c: &Client, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = c.get_certificates().certificate_name(name).include_certificate_details(true).send().await.unwrap();
        let detail = out.certificates()[0].certificate_detail().unwrap();
        if detail.status() == Some(&CertificateStatus::Issued) {
            return;
        }
        assert!(Instant::now() < deadline, "{name} not issued");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn origin() -> InputOrigin {
    InputOrigin::builder().name("web").region_name(RegionName::UsEast1).build()
}

#[tokio::test]
async fn every_operation_through_aws_sdk_rust() {
    let server = server();
    let c = client(&server, ALICE).await;
    let created = c
        .create_certificate()
        .certificate_name("rust-cert")
        .domain_name("rust.example.com")
        .subject_alternative_names("www.rust.example.com")
        .send()
        .await
        .unwrap();
    let op = &created.operations()[0];
    assert_eq!(op.operation_type(), Some(&OperationType::CreateCertificate));
    assert_eq!(op.status(), Some(&OperationStatus::Started));
    let got = c.get_operation().operation_id(op.id().unwrap()).send().await.unwrap();
    assert_eq!(got.operation().unwrap().status(), Some(&OperationStatus::Succeeded));
    wait_issued(&c, "rust-cert").await;

    let d = c
        .create_distribution()
        .distribution_name("rust-site")
        .origin(origin())
        .default_cache_behavior(CacheBehavior::builder().behavior(BehaviorEnum::CacheSetting).build())
        .bundle_id("small_1_0")
        .tags(Tag::builder().key("k").value("v").build())
        .send()
        .await
        .unwrap();
    let dist = d.distribution().unwrap();
    assert!(dist.domain_name().unwrap().ends_with(".cdn.carapace.internal"));
    // InProgress until the edge beside the API has applied it, as on AWS; then Deployed.
    assert!(matches!(dist.status(), Some("InProgress" | "Deployed")), "{:?}", dist.status());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = c.get_distributions().distribution_name("rust-site").send().await.unwrap();
        if got.distributions()[0].status() == Some("Deployed") {
            break;
        }
        assert!(Instant::now() < deadline, "rust-site not Deployed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.attach_certificate_to_distribution()
        .distribution_name("rust-site")
        .certificate_name("rust-cert")
        .send()
        .await
        .unwrap();
    c.update_distribution()
        .distribution_name("rust-site")
        .cache_behavior_settings(CacheSettings::builder().default_ttl(60).minimum_ttl(0).maximum_ttl(120).build())
        .send()
        .await
        .unwrap();
    let listed = c.get_distributions().send().await.unwrap();
    let dist = &listed.distributions()[0];
    assert_eq!(dist.certificate_name(), Some("rust-cert"));
    assert_eq!(dist.alternative_domain_names(), ["rust.example.com", "www.rust.example.com"]);
    assert_eq!(dist.cache_behavior_settings().unwrap().default_ttl(), Some(60));
    c.detach_certificate_from_distribution().distribution_name("rust-site").send().await.unwrap();

    let reset = c.reset_distribution_cache().distribution_name("rust-site").send().await.unwrap();
    assert_eq!(reset.status(), Some("InProgress"));
    // Succeeded once the edge beside the API has purged (moments later).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let latest = c.get_distribution_latest_cache_reset().distribution_name("rust-site").send().await.unwrap();
        if latest.status() == Some("Succeeded") {
            break;
        }
        assert_eq!(latest.status(), Some("InProgress"));
        assert!(Instant::now() < deadline, "the reset did not succeed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bundles = c.get_distribution_bundles().send().await.unwrap();
    assert_eq!(bundles.bundles().len(), 3);
    c.update_distribution_bundle().distribution_name("rust-site").bundle_id("large_1_0").send().await.unwrap();
    let now = DateTime::from_secs(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64,
    );
    let metrics = c
        .get_distribution_metric_data()
        .distribution_name("rust-site")
        .metric_name(DistributionMetricName::Http5xxErrorRate)
        .start_time(DateTime::from_secs(now.secs() - 600))
        .end_time(now)
        .period(60)
        .unit(MetricUnit::Percent)
        .statistics(MetricStatistic::Average)
        .send()
        .await
        .unwrap();
    assert!(metrics.metric_data().is_empty());
    c.tag_resource().resource_name("rust-cert").tags(Tag::builder().key("a").value("b").build()).send().await.unwrap();
    c.untag_resource().resource_name("rust-site").tag_keys("k").send().await.unwrap();
    let ops = c.get_operations_for_resource().resource_name("rust-site").send().await.unwrap();
    let types: Vec<_> = ops.operations().iter().filter_map(|o| o.operation_type().cloned()).collect();
    assert_eq!(
        types,
        [
            OperationType::CreateDistribution,
            OperationType::AttachCertificateToDistribution,
            OperationType::UpdateDistribution,
            OperationType::DetachCertificateFromDistribution,
            OperationType::ResetDistributionCache,
            OperationType::UpdateDistributionBundle,
            // Outside the model's enum, as AWS sends it: the SDK's unknown-value variant.
            OperationType::from("UntagResource"),
        ]
    );
    assert!(c.get_operations().send().await.unwrap().operations().len() >= 9);
    let regions = c.get_regions().send().await.unwrap();
    assert!(regions.regions().iter().any(|r| r.name() == Some(&RegionName::EuWest2)));
    c.delete_distribution().distribution_name("rust-site").send().await.unwrap();
    c.delete_certificate().certificate_name("rust-cert").send().await.unwrap();
    assert!(c.get_certificates().send().await.unwrap().certificates().is_empty());
}

#[tokio::test]
async fn errors_are_typed_with_lightsails_members_and_accounts_isolated() {
    let server = server();
    let alice = client(&server, ALICE).await;
    let bob = client(&server, BOB).await;
    alice
        .create_distribution()
        .distribution_name("mine")
        .origin(origin())
        .default_cache_behavior(CacheBehavior::builder().behavior(BehaviorEnum::DontCacheSetting).build())
        .bundle_id("small_1_0")
        .send()
        .await
        .unwrap();
    let err = bob.get_distributions().distribution_name("mine").send().await.unwrap_err().into_service_error();
    let aws_sdk_lightsail::operation::get_distributions::GetDistributionsError::NotFoundException(e) = err else {
        panic!("expected NotFoundException, got {err:?}");
    };
    assert_eq!(e.code(), Some("DoesNotExist"));
    assert_eq!(e.docs(), Some("https://lightsail.aws.amazon.com/ls/docs"));
    assert!(e.tip().is_some() && e.message() == Some("The Distribution does not exist: mine"));

    alice.create_certificate().certificate_name("pending").domain_name("p.example.com").send().await.unwrap();
    let err = alice
        .attach_certificate_to_distribution()
        .distribution_name("mine")
        .certificate_name("pending")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    use aws_sdk_lightsail::operation::attach_certificate_to_distribution::AttachCertificateToDistributionError as E;
    let E::InvalidInputException(e) = err else { panic!("expected InvalidInputException, got {err:?}") };
    assert!(matches!(e.code(), Some("InvalidCertificateStatus") | Some("DoesNotExist")), "{e:?}");
    let outside = Client::new(&server.sdk_config(ALICE, "dev-secret", "ap-northeast-1").await);
    let err = outside.get_distributions().send().await.unwrap_err().into_service_error();
    assert!(err.is_invalid_input_exception(), "{err:?}");
}
