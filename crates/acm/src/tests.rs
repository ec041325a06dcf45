//! Lifecycle tests over a real SQLite store, a real CA and a hand-driven clock.

use super::*;
use crate::AcmSettings;
use crate::index::SortField;
use carapace_kernel::ca::{KeyAlgorithm, generate_key};
use carapace_kernel::clock::{Clock as _, ManualClock};

const START_MS: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

struct Env {
    manager: CertificateManager,
    clock: ManualClock,
}

fn env_with(dev: bool, acm: AcmSettings) -> Env {
    let (core, clock) = crate::testing::test_core(dev);
    Env { manager: CertificateManager::new(core, acm), clock }
}

fn env(dev: bool) -> Env {
    env_with(dev, AcmSettings { dev_auto_approve_ms: 100, ..AcmSettings::default() })
}

fn alice() -> Owner {
    Owner::new("111111111111", "us-east-1")
}

fn request(domain: &str) -> NewCertificate {
    NewCertificate {
        domain_name: domain.into(),
        subject_alternative_names: vec![format!("www.{domain}")],
        validation_method: Some(ValidationMethod::Dns),
        key_algorithm: Some(KeyAlgorithm::EcPrime256v1),
        ..Default::default()
    }
}

#[tokio::test]
async fn dev_request_is_issued_by_the_worker_once() {
    let Env { manager, clock } = env(true);
    let arn = manager.request_certificate(&alice(), request("example.com")).await.unwrap();
    let pending = manager.describe_certificate(&alice(), &arn).await.unwrap();
    assert_eq!(pending.status, Status::PendingValidation);
    assert!(pending.record.x509.is_none());
    let rr = pending.record.domains[0].resource_record.clone().unwrap();
    assert!(rr.name.starts_with('_') && rr.name.ends_with(".example.com."));
    assert!(matches!(manager.get_certificate(&alice(), &arn).await, Err(AcmError::RequestInProgress(_))));

    // Not due before the auto-approve delay.
    assert_eq!(manager.run_due_jobs().await.unwrap(), 0);
    clock.advance(100);
    assert_eq!(manager.run_due_jobs().await.unwrap(), 1);
    let issued = manager.describe_certificate(&alice(), &arn).await.unwrap();
    assert_eq!(issued.status, Status::Issued);
    assert!(issued.record.domains.iter().all(|d| d.status == state::DomainStatus::Success));
    let facts = issued.record.x509.clone().unwrap();
    assert_eq!(facts.dns_names, ["example.com", "www.example.com"]);
    assert_eq!(facts.key_usages, ["DIGITAL_SIGNATURE"]);
    let (leaf, chain) = manager.get_certificate(&alice(), &arn).await.unwrap();
    let parsed = carapace_kernel::ca::parse_certificate(&leaf).unwrap();
    assert_eq!(parsed.serial_hex, facts.serial);
    assert_eq!(carapace_kernel::ca::parse_certificates(&chain).unwrap().len(), 2);

    // Replaying the issue job (a crash before finish_job) changes nothing.
    let payload = jobs::IssueJob {
        scope: alice().scope(),
        id: arn.rsplit('/').next().unwrap().into(),
        issuance: 1,
        approve_all: true,
    };
    manager
        .core
        .store
        .apply(vec![carapace_store::Write::Enqueue(carapace_store::NewJob {
            id: "replay".into(),
            ..carapace_kernel::jobs::JobSpec::to_new_job(&jobs::AcmJob::Issue(payload), clock.now_ms()).unwrap()
        })])
        .await
        .unwrap();
    assert_eq!(manager.run_due_jobs().await.unwrap(), 1);
    let again = manager.describe_certificate(&alice(), &arn).await.unwrap();
    assert_eq!(again.record.x509.unwrap().serial, facts.serial, "not issued twice");

    manager.delete_certificate(&alice(), &arn).await.unwrap();
    assert!(matches!(manager.describe_certificate(&alice(), &arn).await, Err(AcmError::NotFound(_))));
    let err = manager.delete_certificate(&alice(), &arn).await.unwrap_err();
    assert_eq!(err.to_string(), format!("Could not find certificate {arn}."));
}

#[tokio::test]
async fn strict_mode_waits_for_validation_then_times_out() {
    // No name server answers (port 9 discards): every DNS check fails fast and is retried.
    let settings = AcmSettings {
        name_servers: vec!["127.0.0.1:9".parse().unwrap()],
        dns_timeout_ms: 200,
        ..AcmSettings::default()
    };
    let Env { manager, clock } = env_with(false, settings);
    let arn = manager.request_certificate(&alice(), request("example.org")).await.unwrap();
    clock.advance(60_000);
    manager.run_due_jobs().await.unwrap();
    assert_eq!(manager.describe_certificate(&alice(), &arn).await.unwrap().status, Status::PendingValidation);
    clock.advance(VALIDATION_WINDOW_MS);
    // The timeout job, and the validation job that stops at the deadline.
    assert_eq!(manager.run_due_jobs().await.unwrap(), 2);
    assert_eq!(manager.describe_certificate(&alice(), &arn).await.unwrap().status, Status::ValidationTimedOut);
}

#[tokio::test]
async fn accounts_and_regions_are_isolated() {
    let Env { manager, .. } = env(true);
    let arn = manager.request_certificate(&alice(), request("example.net")).await.unwrap();
    let bob = Owner::new("222222222222", "us-east-1");
    let other_arn = arn.replace("111111111111", "222222222222");
    for (owner, a) in [(&bob, &arn), (&bob, &other_arn), (&Owner::new("111111111111", "eu-west-1"), &arn)] {
        assert!(matches!(manager.describe_certificate(owner, a).await, Err(AcmError::NotFound(_))));
        assert!(matches!(manager.delete_certificate(owner, a).await, Err(AcmError::NotFound(_))));
        assert!(matches!(manager.add_tags(owner, a, &[]).await, Err(AcmError::NotFound(_))));
    }
    let all = ListQuery {
        filter: ListFilter { key_types: Some(KeyAlgorithm::ALL.to_vec()), ..Default::default() },
        max_items: 10,
        ..Default::default()
    };
    assert!(manager.list_certificates(&bob, &all).await.unwrap().items.is_empty());
    assert_eq!(manager.list_certificates(&alice(), &all).await.unwrap().items.len(), 1);
    // DNS records differ per account for the same domain.
    let bob_arn = manager.request_certificate(&bob, request("example.net")).await.unwrap();
    let a = manager.describe_certificate(&alice(), &arn).await.unwrap().record.domains[0].resource_record.clone();
    let b = manager.describe_certificate(&bob, &bob_arn).await.unwrap().record.domains[0].resource_record.clone();
    assert_ne!(a, b);
}

#[tokio::test]
async fn idempotency_tokens_return_the_first_arn_for_an_hour() {
    let Env { manager, clock } = env(true);
    let with_token = |domain: &str| NewCertificate { idempotency_token: Some("tok1".into()), ..request(domain) };
    let first = manager.request_certificate(&alice(), with_token("a.example.com")).await.unwrap();
    // The same token with different parameters still returns the first ARN (as ACM does).
    let second = manager.request_certificate(&alice(), with_token("b.example.com")).await.unwrap();
    assert_eq!(first, second);
    // Another account's identical token is its own.
    let bob = Owner::new("222222222222", "us-east-1");
    assert_ne!(manager.request_certificate(&bob, with_token("a.example.com")).await.unwrap(), first);
    clock.advance(IDEMPOTENCY_WINDOW_MS);
    let third = manager.request_certificate(&alice(), with_token("a.example.com")).await.unwrap();
    assert_ne!(third, first);
}

#[tokio::test]
async fn quotas_are_enforced() {
    let Env { manager, .. } = env_with(
        true,
        AcmSettings {
            certificates_per_account: 2,
            certificates_per_year: 3,
            domains_per_certificate: 2,
            ..AcmSettings::default()
        },
    );
    let too_many_names = NewCertificate {
        subject_alternative_names: vec!["a.example.com".into(), "b.example.com".into()],
        ..request("example.com")
    };
    assert!(matches!(manager.request_certificate(&alice(), too_many_names).await, Err(AcmError::LimitExceeded(_))));
    let a = manager.request_certificate(&alice(), request("one.com")).await.unwrap();
    manager.request_certificate(&alice(), request("two.com")).await.unwrap();
    let held = manager.request_certificate(&alice(), request("three.com")).await.unwrap_err();
    assert!(held.to_string().contains("limit of 2 certificates"), "{held}");
    manager.delete_certificate(&alice(), &a).await.unwrap();
    manager.request_certificate(&alice(), request("three.com")).await.unwrap();
    // Deleted certificates still count toward the yearly quota.
    manager
        .delete_certificate(
            &alice(),
            &manager
                .list_certificates(
                    &alice(),
                    &ListQuery {
                        filter: ListFilter { key_types: Some(vec![KeyAlgorithm::EcPrime256v1]), ..Default::default() },
                        max_items: 1,
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
                .items[0]
                .record
                .arn,
        )
        .await
        .unwrap();
    let yearly = manager.request_certificate(&alice(), request("four.com")).await.unwrap_err();
    assert!(yearly.to_string().contains("in the last year"), "{yearly}");
}

#[tokio::test]
async fn requests_are_checked() {
    let Env { manager, .. } = env(true);
    let bad_key = NewCertificate { key_algorithm: Some(KeyAlgorithm::Rsa4096), ..request("example.com") };
    assert!(matches!(manager.request_certificate(&alice(), bad_key).await, Err(AcmError::InvalidParameter(_))));
    let bad_vd = NewCertificate {
        domain_validation_options: vec![("www.example.com".into(), "other.com".into())],
        ..request("example.com")
    };
    assert!(matches!(
        manager.request_certificate(&alice(), bad_vd).await,
        Err(AcmError::InvalidDomainValidationOptions(_))
    ));
    let reserved = NewCertificate { tags: vec![Tag { key: "aws:x".into(), value: None }], ..request("example.com") };
    assert!(matches!(manager.request_certificate(&alice(), reserved).await, Err(AcmError::InvalidTag(_))));
    let email = NewCertificate { validation_method: None, ..request("www.example.com") };
    let arn = manager.request_certificate(&alice(), email).await.unwrap();
    let d = manager.describe_certificate(&alice(), &arn).await.unwrap();
    assert_eq!(d.record.validation_method, Some(ValidationMethod::Email));
    assert!(d.record.domains[0].validation_emails.contains(&"admin@example.com".to_owned()));
}

/// RequestCertificate's documented `ValidationException` cases for `RootHierarchyType` and
/// `CertificateUsage`; none stores anything.
#[tokio::test]
async fn root_hierarchy_requests_are_checked_as_documented() {
    let Env { manager, .. } = env(true);
    let n2 = |hierarchy, usage| NewCertificate {
        root_hierarchy: hierarchy,
        certificate_usage: usage,
        ..request("n2.example.com")
    };
    let refused = async |req: NewCertificate| match manager.request_certificate(&alice(), req).await {
        Err(AcmError::Validation(message)) => message,
        other => panic!("not a ValidationException: {other:?}"),
    };
    let usage_alone = refused(n2(None, Some(CertificateUsage::ClientAndServerAuth))).await;
    assert!(usage_alone.contains("CertificateUsage can be specified only when RootHierarchyType"), "{usage_alone}");
    let with_ca = NewCertificate {
        certificate_authority_arn: Some("arn:aws:acm-pca:us-east-1:111111111111:certificate-authority/x".into()),
        ..n2(Some(RootHierarchy::N2), None)
    };
    assert!(refused(with_ca).await.contains("together with CertificateAuthorityArn"));
    let client_only_cross_signed = n2(Some(RootHierarchy::N2CrossSigned), Some(CertificateUsage::ClientAuthOnly));
    assert!(refused(client_only_cross_signed).await.contains("CLIENT_AUTH_ONLY is valid only with"));
    let email =
        NewCertificate { validation_method: Some(ValidationMethod::Email), ..n2(Some(RootHierarchy::N2), None) };
    assert!(refused(email).await.contains("must use ValidationMethod DNS"));
    let everything = ListQuery {
        filter: ListFilter {
            key_types: Some(KeyAlgorithm::ALL.to_vec()),
            root_hierarchies: vec![RootHierarchy::N2, RootHierarchy::N2CrossSigned],
            ..Default::default()
        },
        max_items: 100,
        ..Default::default()
    };
    assert!(manager.list_certificates(&alice(), &everything).await.unwrap().items.is_empty());
}

/// N2 certificates: each hierarchy and usage signs from the N2 intermediates with its EKUs and
/// validity, ships its own chain, and ListCertificates leaves N2 certificates out by default
/// and lists only them with a `RootHierarchyTypes` filter.
#[tokio::test]
async fn n2_certificates_chain_to_their_hierarchy_with_their_usage() {
    let Env { manager, clock } = env(true);
    let standard = manager.request_certificate(&alice(), request("standard.example.com")).await.unwrap();
    let cases = [
        (RootHierarchy::N2, None, 395, vec!["TLS_WEB_SERVER_AUTHENTICATION", "TLS_WEB_CLIENT_AUTHENTICATION"], 2),
        (RootHierarchy::N2, Some(CertificateUsage::ClientAuthOnly), 395, vec!["TLS_WEB_CLIENT_AUTHENTICATION"], 2),
        (
            RootHierarchy::N2CrossSigned,
            Some(CertificateUsage::ClientAndServerAuth),
            98,
            vec!["TLS_WEB_SERVER_AUTHENTICATION", "TLS_WEB_CLIENT_AUTHENTICATION"],
            3,
        ),
    ];
    let mut arns = Vec::new();
    for (i, (hierarchy, usage, _, _, _)) in cases.iter().enumerate() {
        let req = NewCertificate {
            root_hierarchy: Some(*hierarchy),
            certificate_usage: *usage,
            ..request(&format!("n{i}.example.com"))
        };
        arns.push(manager.request_certificate(&alice(), req).await.unwrap());
    }
    clock.advance(100);
    manager.run_due_jobs().await.unwrap();

    let ca = &manager.core.ca;
    let n2_root = ca.n2_root_pem().expect("N2 root");
    let (_, standard_chain) = manager.get_certificate(&alice(), &standard).await.unwrap();
    assert!(standard_chain.ends_with(ca.root_pem()), "a standard certificate chains to the main root");
    for ((hierarchy, usage, days, ekus, chain_len), arn) in cases.iter().zip(&arns) {
        let view = manager.describe_certificate(&alice(), arn).await.unwrap();
        assert_eq!(view.status, Status::Issued);
        assert_eq!(view.record.root_hierarchy, Some(*hierarchy));
        assert_eq!(view.record.certificate_usage, Some(usage.unwrap_or(CertificateUsage::ClientAndServerAuth)));
        let x = view.record.x509.clone().unwrap();
        assert_eq!(x.not_after_ms - x.not_before_ms, days * 86_400_000, "{hierarchy:?}");
        assert_eq!(x.extended_key_usages.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), *ekus);
        let (leaf, chain) = manager.get_certificate(&alice(), arn).await.unwrap();
        let chain_certs = carapace_kernel::ca::parse_certificates(&chain).unwrap();
        assert_eq!(chain_certs.len(), *chain_len, "{hierarchy:?}");
        assert!(chain_certs[0].subject.contains("ECDSA 256 N01"), "{}", chain_certs[0].subject);
        let leaf = carapace_kernel::ca::parse_certificate(&leaf).unwrap();
        assert!(leaf.issuer_dn == chain_certs[0].subject, "signed by the N2 intermediate");
        match hierarchy {
            RootHierarchy::N2 => assert!(chain.ends_with(n2_root)),
            RootHierarchy::N2CrossSigned => {
                assert!(chain.ends_with(ca.root_pem()), "cross-signed: ends in the main root");
                assert!(chain_certs[1].subject.contains("Root CA N2"));
                assert!(chain_certs[1].issuer_dn.contains("Root CA 1"));
            }
        }
    }

    let list = async |root_hierarchies: Vec<RootHierarchy>| {
        let filter = ListFilter { key_types: Some(KeyAlgorithm::ALL.to_vec()), root_hierarchies, ..Default::default() };
        let query = ListQuery { filter, max_items: 100, ..Default::default() };
        let mut arns: Vec<String> = manager
            .list_certificates(&alice(), &query)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|v| v.record.arn)
            .collect();
        arns.sort();
        arns
    };
    assert_eq!(list(Vec::new()).await, [standard]);
    let mut n2_only = arns[..2].to_vec();
    n2_only.sort();
    assert_eq!(list(vec![RootHierarchy::N2]).await, n2_only);
    let mut all_n2 = arns.clone();
    all_n2.sort();
    assert_eq!(list(vec![RootHierarchy::N2, RootHierarchy::N2CrossSigned]).await, all_n2);
}

#[tokio::test]
async fn list_pages_survive_inserts_and_deletes() {
    let Env { manager, clock } = env(true);
    let mut arns = Vec::new();
    for i in 0..25 {
        arns.push(manager.request_certificate(&alice(), request(&format!("n{i}.example.com"))).await.unwrap());
        clock.advance(1);
    }
    let query = |token: Option<String>| ListQuery {
        filter: ListFilter { key_types: Some(vec![KeyAlgorithm::EcPrime256v1]), ..Default::default() },
        max_items: 10,
        next_token: token,
        ..Default::default()
    };
    let first = manager.list_certificates(&alice(), &query(None)).await.unwrap();
    assert_eq!(first.items.len(), 10);
    // Between pages: delete a listed and an unlisted certificate, add a new one.
    manager.delete_certificate(&alice(), &arns[0]).await.unwrap();
    manager.delete_certificate(&alice(), &arns[15]).await.unwrap();
    let added = manager.request_certificate(&alice(), request("late.example.com")).await.unwrap();
    let mut seen: Vec<String> = first.items.iter().map(|v| v.record.arn.clone()).collect();
    let mut token = first.next_token;
    while let Some(t) = token {
        let page = manager.list_certificates(&alice(), &query(Some(t))).await.unwrap();
        seen.extend(page.items.iter().map(|v| v.record.arn.clone()));
        token = page.next_token;
    }
    let mut expected: Vec<String> = arns.iter().enumerate().filter(|(i, _)| *i != 15).map(|(_, a)| a.clone()).collect();
    expected.push(added);
    assert_eq!(seen, expected, "every certificate that existed throughout, once, in order");
    // Default key types hide EC certificates; a token from another filter is refused.
    let default =
        manager.list_certificates(&alice(), &ListQuery { max_items: 10, ..Default::default() }).await.unwrap();
    assert!(default.items.is_empty());
    let page = manager.list_certificates(&alice(), &query(None)).await.unwrap();
    let foreign = ListQuery { next_token: page.next_token, max_items: 10, ..Default::default() };
    assert!(matches!(manager.list_certificates(&alice(), &foreign).await, Err(AcmError::InvalidArgs(_))));
}

fn self_signed(domain: &str, algorithm: KeyAlgorithm, days: i64) -> (String, String) {
    let key = generate_key(algorithm).unwrap();
    let pem = key.to_pem();
    let pair = rcgen::KeyPair::from_pem(&pem).unwrap();
    let mut params = rcgen::CertificateParams::new(vec![domain.to_owned()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, domain);
    let now = time::OffsetDateTime::from_unix_timestamp(START_MS / 1000).unwrap();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days);
    let cert = params.self_signed(&pair).unwrap();
    (cert.pem(), pem.to_string())
}

#[tokio::test]
async fn import_reimport_and_export_rules() {
    let Env { manager, .. } = env(true);
    let (cert, key) = self_signed("imported.example.com", KeyAlgorithm::EcPrime256v1, 30);
    let import = |cert: &str, key: &str, arn: Option<String>| ImportRequest {
        certificate_arn: arn,
        certificate: cert.as_bytes().to_vec(),
        private_key: zeroize::Zeroizing::new(key.as_bytes().to_vec()),
        certificate_chain: None,
        tags: Vec::new(),
    };
    let arn = manager.import_certificate(&alice(), import(&cert, &key, None)).await.unwrap();
    let v = manager.describe_certificate(&alice(), &arn).await.unwrap();
    assert_eq!((v.status, v.record.cert_type), (Status::Issued, CertificateType::Imported));
    assert_eq!(v.record.domain_name, "imported.example.com");
    // A key that belongs to another certificate is refused.
    let (_, other_key) = self_signed("x.example.com", KeyAlgorithm::EcPrime256v1, 30);
    assert!(matches!(
        manager.import_certificate(&alice(), import(&cert, &other_key, None)).await,
        Err(AcmError::Validation(_))
    ));
    // An oversized key is refused before anything else.
    let big = "A".repeat(6_000);
    assert!(
        manager.import_certificate(&alice(), import(&cert, &big, None)).await.unwrap_err().to_string().contains("5120")
    );
    // Re-import keeps the ARN.
    let (cert2, key2) = self_signed("renamed.example.com", KeyAlgorithm::EcSecp384r1, 60);
    let again = manager.import_certificate(&alice(), import(&cert2, &key2, Some(arn.clone()))).await.unwrap();
    assert_eq!(again, arn);
    let v = manager.describe_certificate(&alice(), &arn).await.unwrap();
    assert_eq!(
        (v.record.domain_name.as_str(), v.record.key_algorithm),
        ("renamed.example.com", KeyAlgorithm::EcSecp384r1)
    );
    // Imported certificates cannot be exported; exportable issued ones can, once issued.
    assert!(matches!(manager.export_certificate(&alice(), &arn, b"pass1234").await, Err(AcmError::Validation(_))));
    let exportable = NewCertificate { export: Some(true), ..request("export.example.com") };
    let issued = manager.request_certificate(&alice(), exportable).await.unwrap();
    assert!(matches!(
        manager.export_certificate(&alice(), &issued, b"pass1234").await,
        Err(AcmError::RequestInProgress(_))
    ));
    assert!(matches!(
        manager.revoke_certificate(&alice(), &issued, RevocationReason::KeyCompromise).await,
        Err(AcmError::Validation(_))
    ));
}

/// A CA certificate named `name` with a fresh key, and its rcgen issuer.
fn test_ca(name: &str) -> (rcgen::Certificate, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let pair = rcgen::KeyPair::from_pem(&generate_key(KeyAlgorithm::EcPrime256v1).unwrap().to_pem()).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let now = time::OffsetDateTime::from_unix_timestamp(START_MS / 1000).unwrap();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(365);
    let cert = params.self_signed(&pair).unwrap();
    (cert, rcgen::Issuer::new(params, pair))
}

#[tokio::test]
async fn an_import_chain_must_really_have_signed_the_certificate() {
    let Env { manager, .. } = env(true);
    let (ca, issuer) = test_ca("Example Issuing CA");
    // Same name, another key: without an authority key id in the leaf, only the signature
    // tells the two apart.
    let (impostor, _) = test_ca("Example Issuing CA");
    let key = generate_key(KeyAlgorithm::EcPrime256v1).unwrap().to_pem();
    let pair = rcgen::KeyPair::from_pem(&key).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["chained.example.com".to_owned()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "chained.example.com");
    let now = time::OffsetDateTime::from_unix_timestamp(START_MS / 1000).unwrap();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(30);
    params.use_authority_key_identifier_extension = false;
    let leaf = params.signed_by(&pair, &issuer).unwrap();
    let import = |chain: &rcgen::Certificate| ImportRequest {
        certificate_arn: None,
        certificate: leaf.pem().into_bytes(),
        private_key: zeroize::Zeroizing::new(key.as_bytes().to_vec()),
        certificate_chain: Some(chain.pem().into_bytes()),
        tags: Vec::new(),
    };
    match manager.import_certificate(&alice(), import(&impostor)).await {
        Err(AcmError::Validation(message)) => assert!(message.contains("does not link"), "{message}"),
        other => panic!("an impostor chain was accepted: {other:?}"),
    }
    manager.import_certificate(&alice(), import(&ca)).await.expect("the real issuer's chain");
}

#[tokio::test]
async fn certificates_in_use_cannot_be_deleted_or_revoked() {
    let Env { manager, clock } = env(true);
    let exportable = NewCertificate { export: Some(true), ..request("used.example.com") };
    let arn = manager.request_certificate(&alice(), exportable).await.unwrap();
    clock.advance(100);
    manager.run_due_jobs().await.unwrap();
    let distribution = "arn:aws:lightsail:us-east-1:111111111111:Distribution/d-1";
    manager.set_in_use(&alice(), &arn, distribution, true).await.unwrap();
    let v = manager.describe_certificate(&alice(), &arn).await.unwrap();
    assert_eq!(v.record.in_use_by, [distribution]);
    assert!(v.renewal_eligible, "in use and issued: eligible for managed renewal");
    assert!(matches!(manager.delete_certificate(&alice(), &arn).await, Err(AcmError::ResourceInUse(_))));
    manager.export_certificate(&alice(), &arn, b"pass1234").await.unwrap();
    assert!(matches!(
        manager.revoke_certificate(&alice(), &arn, RevocationReason::Superseded).await,
        Err(AcmError::ResourceInUse(_))
    ));
    manager.set_in_use(&alice(), &arn, distribution, false).await.unwrap();
    manager.revoke_certificate(&alice(), &arn, RevocationReason::Superseded).await.unwrap();
    let v = manager.describe_certificate(&alice(), &arn).await.unwrap();
    assert_eq!((v.status, v.record.revocation_reason), (Status::Revoked, Some(RevocationReason::Superseded)));
    assert_eq!(v.record.revoked_ms, Some(clock.now_ms()));
    // A revoked certificate is neither renewed nor revoked again.
    assert!(manager.renew_certificate(&alice(), &arn).await.is_err());
    assert!(matches!(
        manager.revoke_certificate(&alice(), &arn, RevocationReason::Superseded).await,
        Err(AcmError::Conflict(_))
    ));
    manager.delete_certificate(&alice(), &arn).await.unwrap();
}

#[tokio::test]
async fn issued_certificates_expire_on_read_and_renew_in_place() {
    let Env { manager, clock } = env(false);
    // Strict mode: simulate validation finishing by marking the domains and enqueuing issuance,
    // as the validation worker does.
    let exportable = NewCertificate { export: Some(true), ..request("renew.example.com") };
    let arn = manager.request_certificate(&alice(), exportable).await.unwrap();
    let id = arn.rsplit('/').next().unwrap().to_owned();
    manager
        .modify(&alice(), &arn, |r, _| {
            for d in &mut r.domains {
                d.status = state::DomainStatus::Success;
            }
            Ok(Vec::new())
        })
        .await
        .unwrap();
    manager.enqueue_issuance(&alice().scope(), &id).await.unwrap();
    manager.run_due_jobs().await.unwrap();
    let first = manager.describe_certificate(&alice(), &arn).await.unwrap();
    assert_eq!(first.status, Status::Issued);
    // RenewCertificate renews an exportable public certificate once it has been exported.
    assert!(matches!(manager.renew_certificate(&alice(), &arn).await, Err(AcmError::Validation(_))));
    manager.export_certificate(&alice(), &arn, b"pass1234").await.unwrap();
    manager.renew_certificate(&alice(), &arn).await.unwrap();
    manager.run_due_jobs().await.unwrap();
    let renewed = manager.describe_certificate(&alice(), &arn).await.unwrap();
    assert_ne!(renewed.record.x509.as_ref().unwrap().serial, first.record.x509.as_ref().unwrap().serial);
    assert_eq!(renewed.record.renewal.as_ref().unwrap().status, record::RenewalStatus::Success);
    assert_eq!(renewed.record.issuance, 2);
    let not_after = renewed.record.x509.unwrap().not_after_ms;
    clock.set(not_after + 1_000);
    assert_eq!(manager.describe_certificate(&alice(), &arn).await.unwrap().status, Status::Expired);
}

/// A reference sort key for `field`, written from the records independently of the index:
/// missing values first (for `IssuedAt`, leafless certificates before imported ones).
fn reference_key(field: SortField, v: &CertificateView, now_ms: i64) -> (u8, i64, String) {
    let r = &v.record;
    let present = |t: Option<i64>| t.map_or((0, 0, String::new()), |t| (1, t, String::new()));
    let text = |t: Option<String>| t.map_or((0, 0, String::new()), |t| (1, 0, t));
    let flag = |b: bool| (u8::from(b), 0, String::new());
    let x = r.x509.as_ref();
    match field {
        SortField::CreatedAt | SortField::AlwaysMissing => (0, 0, String::new()),
        SortField::CertificateArn => (0, 0, r.arn.clone()),
        SortField::NotAfter => present(x.map(|x| x.not_after_ms)),
        SortField::NotBefore => present(x.map(|x| x.not_before_ms)),
        SortField::IssuedAt => match (x, r.issued_ms) {
            (None, _) => (0, 0, String::new()),
            (Some(_), None) => (1, 0, String::new()),
            (Some(_), Some(t)) => (2, t, String::new()),
        },
        SortField::ImportedAt => present(r.imported_ms),
        SortField::RevokedAt => present(r.revoked_ms),
        SortField::Status => (0, 0, r.status.as_str().to_owned()),
        SortField::RenewalStatus => text(r.renewal.as_ref().map(|rn| name(&rn.status))),
        SortField::Exported => flag(r.exported),
        SortField::InUse => flag(!r.in_use_by.is_empty()),
        SortField::KeyAlgorithm => (0, 0, r.key_algorithm.as_str().to_owned()),
        SortField::Type => (0, 0, name(&r.cert_type)),
        SortField::CommonName => (0, 0, r.domain_name.clone()),
        SortField::RenewalEligibility => flag(r.renewal_eligible(now_ms)),
        SortField::ManagedBy => text(r.managed_by.map(|m| name(&m))),
        SortField::ExportOption => flag(r.options.export),
        SortField::ValidationMethod => text(r.validation_method.map(|m| name(&m))),
        SortField::KeyPairOrigin => (0, 0, name(&r.key_pair_origin)),
    }
}

/// A serde enum's wire name.
fn name(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value).unwrap().as_str().unwrap().to_owned()
}

/// Every SortBy, both directions, pages of 1, 4 and 100: each match once, in the order of a
/// reference sort of all certificates (ties by creation time, then id), read off the index.
#[tokio::test]
async fn search_sorts_by_every_field_and_pages_through_each_match_once() {
    let Env { manager, clock } = env(true);
    let owner = alice();
    // Issued (dev approval), some exportable, by DNS or email, in an order and with names
    // unrelated to their creation; then pending ones, and imported ones.
    for i in 0..9 {
        let method = if i % 2 == 0 { ValidationMethod::Dns } else { ValidationMethod::Email };
        let key = [KeyAlgorithm::EcPrime256v1, KeyAlgorithm::Rsa2048, KeyAlgorithm::EcSecp384r1][i % 3];
        let new = NewCertificate {
            validation_method: Some(method),
            key_algorithm: Some(key),
            export: Some(i % 4 == 0),
            managed_by: (i == 5).then_some(ManagedBy::Cloudfront),
            ..request(&format!("n{:02}.sort.example.com", (i * 7) % 9 / 2))
        };
        manager.request_certificate(&owner, new).await.unwrap();
        clock.advance(i64::try_from(i % 2).unwrap());
    }
    clock.advance(100);
    manager.run_due_jobs().await.unwrap();
    for i in 0..5 {
        manager.request_certificate(&owner, request(&format!("p{}.sort.example.com", 4 - i))).await.unwrap();
    }
    for i in 0..3 {
        // Later imports expire sooner: NotAfter and NotBefore (all equal) orders differ.
        let (cert, key) = self_signed(&format!("i{i}.sort.example.com"), KeyAlgorithm::EcPrime256v1, 40 - 5 * i);
        let import = ImportRequest {
            certificate_arn: None,
            certificate: cert.into_bytes(),
            private_key: zeroize::Zeroizing::new(key.into_bytes()),
            certificate_chain: None,
            tags: Vec::new(),
        };
        manager.import_certificate(&owner, import).await.unwrap();
        clock.advance(1);
    }
    let all = manager.all_certificates(&owner).await.unwrap();
    let issued: Vec<&CertificateView> = all.iter().filter(|v| v.record.issued_ms.is_some()).collect();
    assert_eq!(issued.len(), 9, "the requested ones were issued");
    // The three exportable ones exported, one of them then revoked (only exported ones can be).
    let exportable: Vec<String> =
        issued.iter().filter(|v| v.record.options.export).map(|v| v.record.arn.clone()).collect();
    assert_eq!(exportable.len(), 3);
    for arn in &exportable {
        manager.export_certificate(&owner, arn, b"pass1234").await.unwrap();
    }
    manager.revoke_certificate(&owner, &exportable[2], RevocationReason::KeyCompromise).await.unwrap();
    // Two renewals begun (RenewCertificate renews exported ones): one run to success, one
    // left pending.
    manager.renew_certificate(&owner, &exportable[0]).await.unwrap();
    manager.run_due_jobs().await.unwrap();
    manager.renew_certificate(&owner, &exportable[1]).await.unwrap();
    let all = manager.all_certificates(&owner).await.unwrap();
    assert_eq!(all.len(), 17);
    let renewals: Vec<_> = all.iter().filter_map(|v| v.record.renewal.as_ref().map(|r| r.status)).collect();
    assert_eq!(renewals.len(), 2, "{renewals:?}");
    assert!(all.iter().any(|v| v.record.managed_by.is_some()) && all.iter().any(|v| v.record.revoked_ms.is_some()));
    let now = clock.now_ms();

    // Unfiltered, and narrowed by an indexed condition (which reads enum orders one value
    // at a time).
    let every = |_: &CertificateView| true;
    let p256 = |v: &CertificateView| v.record.key_algorithm == KeyAlgorithm::EcPrime256v1;
    type Matches<'a> = &'a (dyn Fn(&CertificateView) -> bool + Send + Sync);
    let unexportable = |v: &CertificateView| !v.record.options.export;
    let filters: [(Matches<'_>, Vec<index::Narrow>); 3] = [
        (&every, Vec::new()),
        (&p256, vec![index::Narrow::KeyAlgorithm(KeyAlgorithm::EcPrime256v1)]),
        // An absence only: the index adds a clause to drive the walk.
        (&unexportable, vec![index::Narrow::Export(false)]),
    ];
    for ((matches, narrows), field) in filters.iter().flat_map(|f| SortField::ALL.map(|s| (f, s))) {
        let mut want: Vec<((u8, i64, String), i64, &str)> = all
            .iter()
            .filter(|v| matches(v))
            .map(|v| (reference_key(field, v, now), v.record.created_ms, v.record.arn.rsplit('/').next().unwrap()))
            .collect();
        want.sort();
        for descending in [false, true] {
            let mut want: Vec<&str> = want.iter().map(|(_, _, id)| *id).collect();
            if descending {
                want.reverse();
            }
            for max_results in [1, 4, 100] {
                let (mut seen, mut token, mut calls) = (Vec::new(), None, 0);
                loop {
                    let query = SearchQuery {
                        matches: *matches,
                        sort: field,
                        descending,
                        max_results,
                        next_token: token.take(),
                        fingerprint: format!("{field:?}{narrows:?}"),
                        narrows: narrows.clone(),
                    };
                    let page = manager.search_certificates(&owner, &query).await.unwrap();
                    assert!(page.items.len() <= max_results);
                    seen.extend(page.items.iter().map(|v| v.record.arn.rsplit('/').next().unwrap().to_owned()));
                    calls += 1;
                    assert!(calls < 100, "{field:?} does not end");
                    match page.next_token {
                        Some(t) => token = Some(t),
                        None => break,
                    }
                }
                assert_eq!(seen, want, "{field:?} {narrows:?} descending={descending} by {max_results}");
            }
        }
    }
}

/// An internal failure keeps what caused it: the log line (`chain`) names the cause, the
/// message shown as the error's text does not.
#[test]
fn faults_keep_their_source_for_the_log() {
    let cause = "x".parse::<u8>().unwrap_err();
    let cause_text = cause.to_string();
    let e = AcmError::fault("key of arn:aws:acm:us-east-1:111111111111:certificate/x")(cause);
    assert_eq!(e.to_string(), "internal: key of arn:aws:acm:us-east-1:111111111111:certificate/x");
    assert!(std::error::Error::source(&e).is_some());
    assert!(e.chain().ends_with(&cause_text), "{}", e.chain());
}
