//! The rules end to end over an in-memory store and a hand-moved clock.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use zeroize::Zeroizing;

use super::machine::LdapsStatus;
use super::records::{
    CertificateKind, ClientAuthKind, DEREGISTER_DELAY_MS, DIRECTORY_STEP_MS, LDAPS_CHECK_DELAY_MS, REGISTER_DELAY_MS,
};
use super::*;
use carapace_kernel::ca::CertificateAuthority;
use carapace_kernel::clock::{Clock, ManualClock};
use carapace_kernel::crypto::MasterKey;
use carapace_kernel::runtime::Settings;

const T0: i64 = 1_750_000_000_000;
const SCOPE: &str = "123456789012/us-east-1";

fn ca() -> Arc<CertificateAuthority> {
    static CA: OnceLock<Arc<CertificateAuthority>> = OnceLock::new();
    CA.get_or_init(|| {
        let key = MasterKey::from_bytes([7; 32]);
        let now = time::OffsetDateTime::from_unix_timestamp(T0 / 1000).unwrap();
        Arc::new(
            CertificateAuthority::generate(
                &carapace_kernel::ca::CaProfile::new("Test", "http://127.0.0.1:4566"),
                now,
                &key,
            )
            .unwrap()
            .0,
        )
    })
    .clone()
}

fn setup() -> (Directories, ManualClock, Arc<dyn carapace_store::Store>) {
    let clock = ManualClock::new(T0);
    let store: Arc<dyn carapace_store::Store> = Arc::new(carapace_kernel::index::IndexedStore::new(
        Arc::new(carapace_store::sqlite::SqliteStore::open_in_memory().unwrap()),
        crate::MODULE.indexers.to_vec(),
    ));
    let core = Core {
        store: store.clone(),
        clock: Arc::new(clock.clone()),
        master_key: Arc::new(MasterKey::from_bytes([7; 32])),
        ca: ca(),
        settings: Arc::new(Settings { dev: true, base_url: "http://127.0.0.1".into(), jobs: Default::default() }),
        work: Arc::new(tokio::sync::Notify::new()),
    };
    (Directories::new(core), clock, store)
}

fn new_dir(kind: DirectoryKind) -> NewDirectory {
    NewDirectory {
        kind,
        name: "corp.example.com".into(),
        short_name: None,
        password: Zeroizing::new("Sup3r-Secret!".into()),
        description: Some("test".into()),
        size: (kind != DirectoryKind::MicrosoftAd).then(|| "Small".into()),
        edition: None,
        network_type: None,
        vpc_id: "vpc-0123456789abcdef0".into(),
        subnet_ids: vec!["subnet-11111111".into(), "subnet-22222222".into()],
        customer_dns_ips: if kind == DirectoryKind::AdConnector { vec!["127.0.0.1".into()] } else { vec![] },
        customer_dns_ips_v6: vec![],
        customer_user_name: (kind == DirectoryKind::AdConnector).then(|| "svc".into()),
        tags: vec![("env".into(), "test".into())],
    }
}

/// A self-signed CA certificate valid from `T0 - 1 day` for `days` days.
fn ca_pem(cn: &str, days: i64) -> String {
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let now = time::OffsetDateTime::from_unix_timestamp(T0 / 1000).unwrap();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    params.self_signed(&key).unwrap().pem()
}

fn cert(data: String, kind: CertificateKind) -> NewCertificate {
    NewCertificate { data, kind, ocsp_url: None }
}

async fn active_dir(ds: &Directories, clock: &ManualClock, kind: DirectoryKind) -> String {
    let id = ds.create(SCOPE, new_dir(kind)).await.unwrap();
    clock.advance(2 * DIRECTORY_STEP_MS);
    id
}

#[tokio::test]
async fn directories_move_through_their_stages_and_keep_no_password() {
    let (ds, clock, store) = setup();
    let id = ds.create(SCOPE, new_dir(DirectoryKind::SimpleAd)).await.unwrap();
    assert!(id.starts_with("d-") && id.len() == 12 && id[2..].chars().all(|c| c.is_ascii_hexdigit()));
    let ids = [id.clone()];
    let stage = |p: Page<DirectoryView>| p.items[0].stage;
    assert_eq!(stage(ds.describe(SCOPE, Some(&ids), None, None).await.unwrap()), DirectoryStage::Requested);
    clock.advance(DIRECTORY_STEP_MS);
    assert_eq!(stage(ds.describe(SCOPE, Some(&ids), None, None).await.unwrap()), DirectoryStage::Creating);
    clock.advance(DIRECTORY_STEP_MS);
    let page = ds.describe(SCOPE, Some(&ids), None, None).await.unwrap();
    assert_eq!(page.items[0].stage, DirectoryStage::Active);
    assert_eq!(page.items[0].stage_since_ms, T0 + 2 * DIRECTORY_STEP_MS);
    let record = &page.items[0].record;
    assert_eq!(record.short_name, "corp");
    assert!(password::verify("Sup3r-Secret!", &record.password_hash));
    // The clear password is nowhere in the stored row.
    let row = store.get(&Key::new(DIRECTORY_KIND, SCOPE, &id)).await.unwrap().unwrap();
    assert!(!String::from_utf8_lossy(&row.body).contains("Sup3r-Secret!"));
    // Other scopes do not see it.
    let other = ds.describe("210987654321/us-east-1", Some(&ids), None, None).await.unwrap_err();
    assert!(matches!(other, DsError::DirectoryNotFound(ref d) if *d == id), "{other:?}");
    ds.delete(SCOPE, &id).await.unwrap();
    assert!(matches!(ds.delete(SCOPE, &id).await, Err(DsError::DirectoryNotFound(_))));
    assert!(ds.describe(SCOPE, None, None, None).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn creation_checks_subnets_connect_settings_and_tags() {
    let (ds, _, _) = setup();
    let mut one_subnet = new_dir(DirectoryKind::SimpleAd);
    one_subnet.subnet_ids.pop();
    assert!(matches!(ds.create(SCOPE, one_subnet).await, Err(DsError::InvalidParameter(_))));
    let mut same = new_dir(DirectoryKind::MicrosoftAd);
    same.subnet_ids = vec!["subnet-11111111".into(), "subnet-11111111".into()];
    assert!(matches!(ds.create(SCOPE, same).await, Err(DsError::InvalidParameter(_))));
    let mut no_dns = new_dir(DirectoryKind::AdConnector);
    no_dns.customer_dns_ips.clear();
    assert!(matches!(ds.create(SCOPE, no_dns).await, Err(DsError::InvalidParameter(_))));
    let mut hybrid = new_dir(DirectoryKind::MicrosoftAd);
    hybrid.edition = Some("Hybrid".into());
    assert!(matches!(ds.create(SCOPE, hybrid).await, Err(DsError::Unsupported(_))));
    let mut reserved = new_dir(DirectoryKind::SimpleAd);
    reserved.tags = vec![("aws:x".into(), "y".into())];
    assert!(matches!(ds.create(SCOPE, reserved).await, Err(DsError::InvalidParameter(_))));
    let id = ds.create(SCOPE, new_dir(DirectoryKind::MicrosoftAd)).await.unwrap();
    let page = ds.describe(SCOPE, Some(&[id]), None, None).await.unwrap();
    assert_eq!(page.items[0].record.edition.as_deref(), Some("Enterprise"));
}

#[tokio::test]
async fn limits_are_per_kind_and_enforced() {
    let (ds, _, _) = setup();
    for _ in 0..directory_limit(DirectoryKind::SimpleAd) {
        ds.create(SCOPE, new_dir(DirectoryKind::SimpleAd)).await.unwrap();
    }
    let err = ds.create(SCOPE, new_dir(DirectoryKind::SimpleAd)).await.unwrap_err();
    assert!(matches!(err, DsError::DirectoryLimitExceeded(_)), "{err:?}");
    assert!(err.to_string().contains("SimpleAD"), "{err}");
    // Another kind and another account are unaffected.
    ds.create(SCOPE, new_dir(DirectoryKind::AdConnector)).await.unwrap();
    ds.create("210987654321/us-east-1", new_dir(DirectoryKind::SimpleAd)).await.unwrap();
    let limits = ds.limits(SCOPE).await.unwrap();
    assert_eq!(limits.simple_ad, LimitUsage { limit: 10, current: 10 });
    assert_eq!(limits.ad_connector, LimitUsage { limit: 10, current: 1 });
    assert_eq!(limits.microsoft_ad, LimitUsage { limit: 20, current: 0 });
}

#[tokio::test]
async fn describe_pages_with_tokens() {
    let (ds, clock, _) = setup();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(ds.create(SCOPE, new_dir(DirectoryKind::SimpleAd)).await.unwrap());
        clock.advance(1);
    }
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = ds.describe(SCOPE, None, Some(2), token.as_deref()).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|v| v.record.id));
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    assert!(matches!(ds.describe(SCOPE, None, None, Some("zz")).await, Err(DsError::InvalidNextToken)));
    assert!(matches!(ds.describe(SCOPE, Some(&[]), None, None).await, Err(DsError::InvalidParameter(_))));
}

#[tokio::test]
async fn tags_are_added_overwritten_removed_and_limited() {
    let (ds, _, _) = setup();
    let id = ds.create(SCOPE, new_dir(DirectoryKind::SimpleAd)).await.unwrap();
    ds.add_tags(SCOPE, &id, &[("env".into(), "prod".into()), ("team".into(), "a".into())]).await.unwrap();
    let tags = ds.list_tags(SCOPE, &id, None, None).await.unwrap().items;
    assert_eq!(tags, vec![("env".into(), "prod".into()), ("team".into(), "a".into())]);
    let first = ds.list_tags(SCOPE, &id, Some(1), None).await.unwrap();
    assert_eq!(first.items.len(), 1);
    let second = ds.list_tags(SCOPE, &id, Some(1), first.next_token.as_deref()).await.unwrap();
    assert_eq!(second.items, vec![("team".to_owned(), "a".to_owned())]);
    assert!(second.next_token.is_none());
    ds.remove_tags(SCOPE, &id, &["env".into(), "missing".into()]).await.unwrap();
    assert_eq!(ds.list_tags(SCOPE, &id, None, None).await.unwrap().items.len(), 1);
    let many: Vec<(String, String)> = (0..50).map(|i| (format!("k{i}"), String::new())).collect();
    assert!(matches!(ds.add_tags(SCOPE, &id, &many).await, Err(DsError::TagLimitExceeded(_))));
    assert!(matches!(
        ds.add_tags(SCOPE, &id, &[("AWS:x".into(), String::new())]).await,
        Err(DsError::InvalidParameter(_))
    ));
    assert!(matches!(ds.add_tags(SCOPE, "d-0000000000", &[]).await, Err(DsError::DirectoryNotFound(_))));
    assert!(matches!(ds.list_tags(SCOPE, &id, None, Some("6f3a3939")).await, Err(DsError::InvalidNextToken)));
}

#[tokio::test]
async fn certificate_registration_checks() {
    let (ds, clock, store) = setup();
    let simple = active_dir(&ds, &clock, DirectoryKind::SimpleAd).await;
    let managed = active_dir(&ds, &clock, DirectoryKind::MicrosoftAd).await;
    let connector = active_dir(&ds, &clock, DirectoryKind::AdConnector).await;
    let pem = ca_pem("Corp Root CA", 365);

    // Unsupported directory kinds.
    let err = ds.register_certificate(SCOPE, &simple, &cert(pem.clone(), CertificateKind::ClientLdaps)).await;
    assert!(matches!(err, Err(DsError::Unsupported(_))), "{err:?}");
    let err = ds.register_certificate(SCOPE, &managed, &cert(pem.clone(), CertificateKind::ClientCertAuth)).await;
    assert!(matches!(err, Err(DsError::Unsupported(_))), "{err:?}");
    // Not yet active.
    let fresh = ds.create(SCOPE, new_dir(DirectoryKind::MicrosoftAd)).await.unwrap();
    let err = ds.register_certificate(SCOPE, &fresh, &cert(pem.clone(), CertificateKind::ClientLdaps)).await;
    assert!(matches!(err, Err(DsError::DirectoryUnavailable(_))), "{err:?}");
    // Missing directory.
    let err = ds.register_certificate(SCOPE, "d-0000000000", &cert(pem.clone(), CertificateKind::ClientLdaps)).await;
    assert!(matches!(err, Err(DsError::DirectoryNotFound(_))), "{err:?}");
    // Bad certificates.
    for (bad, want) in
        [("garbage".to_owned(), "incorrect encoding"), (ca_pem("Soon", 30), "90"), (ca_pem("Old", -1), "expired")]
    {
        let err = ds.register_certificate(SCOPE, &managed, &cert(bad, CertificateKind::ClientLdaps)).await.unwrap_err();
        assert!(matches!(err, DsError::InvalidCertificate(_)), "{err:?}");
        assert!(err.to_string().contains(want), "{err}");
    }

    // Accepted: Registering, then Registered, with the certificate's fields.
    let id = ds.register_certificate(SCOPE, &managed, &cert(pem.clone(), CertificateKind::ClientLdaps)).await.unwrap();
    assert!(id.starts_with("c-") && id.len() == 12);
    let v = ds.describe_certificate(SCOPE, &managed, &id).await.unwrap();
    assert_eq!(v.state, CertificateState::Registering);
    assert_eq!(v.record.common_name, "Corp Root CA");
    assert_eq!(v.record.not_after_ms, T0 + 365 * 86_400_000);
    assert_eq!(v.record.registered_ms, T0 + 6 * DIRECTORY_STEP_MS);
    clock.advance(REGISTER_DELAY_MS);
    assert_eq!(ds.describe_certificate(SCOPE, &managed, &id).await.unwrap().state, CertificateState::Registered);

    // The same certificate twice.
    let err = ds.register_certificate(SCOPE, &managed, &cert(pem.clone(), CertificateKind::ClientLdaps)).await;
    assert!(matches!(err, Err(DsError::CertificateAlreadyExists(_))), "{err:?}");
    // ... but it may serve the other purpose on an AD Connector.
    ds.register_certificate(SCOPE, &connector, &cert(pem.clone(), CertificateKind::ClientLdaps)).await.unwrap();
    ds.register_certificate(SCOPE, &connector, &cert(pem.clone(), CertificateKind::ClientCertAuth)).await.unwrap();

    // At most five ClientLDAPS certificates.
    for i in 1..5 {
        ds.register_certificate(SCOPE, &managed, &cert(ca_pem(&format!("CA {i}"), 365), CertificateKind::ClientLdaps))
            .await
            .unwrap();
    }
    let err = ds.register_certificate(SCOPE, &managed, &cert(ca_pem("CA 6", 365), CertificateKind::ClientLdaps)).await;
    assert!(matches!(err, Err(DsError::CertificateLimitExceeded(_))), "{err:?}");

    // Listing pages through them; unknown ids and SimpleAD are refused.
    let first = ds.list_certificates(SCOPE, &managed, Some(3), None).await.unwrap();
    assert_eq!(first.items.len(), 3);
    let rest = ds.list_certificates(SCOPE, &managed, Some(3), first.next_token.as_deref()).await.unwrap();
    assert_eq!(rest.items.len(), 2);
    assert!(rest.next_token.is_none());
    assert!(matches!(ds.list_certificates(SCOPE, &simple, None, None).await, Err(DsError::Unsupported(_))));
    assert!(matches!(
        ds.describe_certificate(SCOPE, &managed, "c-0000000000").await,
        Err(DsError::CertificateNotFound(_))
    ));
    assert!(matches!(ds.list_certificates(SCOPE, &managed, None, Some("!")).await, Err(DsError::InvalidNextToken)));

    // Deregistering frees a slot once it is done.
    ds.deregister_certificate(SCOPE, &managed, &id).await.unwrap();
    assert_eq!(ds.describe_certificate(SCOPE, &managed, &id).await.unwrap().state, CertificateState::Deregistering);
    let err = ds.deregister_certificate(SCOPE, &managed, &id).await;
    assert!(matches!(err, Err(DsError::CertificateNotFound(_))), "{err:?}");
    clock.advance(DEREGISTER_DELAY_MS);
    assert!(matches!(ds.describe_certificate(SCOPE, &managed, &id).await, Err(DsError::CertificateNotFound(_))));
    assert_eq!(ds.list_certificates(SCOPE, &managed, None, None).await.unwrap().items.len(), 4);
    let rows =
        |s: Arc<dyn carapace_store::Store>| async move { s.count(CERTIFICATE_KIND, SCOPE, i64::MIN).await.unwrap() };
    let before = rows(store.clone()).await;
    // Registering again sweeps the deregistered row.
    ds.register_certificate(SCOPE, &managed, &cert(pem, CertificateKind::ClientLdaps)).await.unwrap();
    assert_eq!(rows(store.clone()).await, before);
}

#[tokio::test]
async fn at_most_100_client_cert_auth_certificates() {
    let (ds, clock, _) = setup();
    let dir = active_dir(&ds, &clock, DirectoryKind::AdConnector).await;
    let ocsp = Some("http://ocsp.example.com".to_owned());
    for i in 0..100 {
        let new = NewCertificate {
            data: ca_pem(&format!("CA {i}"), 365),
            kind: CertificateKind::ClientCertAuth,
            ocsp_url: ocsp.clone(),
        };
        ds.register_certificate(SCOPE, &dir, &new).await.unwrap();
    }
    let new = NewCertificate { data: ca_pem("CA 100", 365), kind: CertificateKind::ClientCertAuth, ocsp_url: ocsp };
    let err = ds.register_certificate(SCOPE, &dir, &new).await.unwrap_err();
    assert!(matches!(err, DsError::CertificateLimitExceeded(_)), "{err:?}");
    assert!(err.to_string().contains("100 ClientCertAuth"), "{err}");
    // LDAPS certificates are counted separately.
    ds.register_certificate(SCOPE, &dir, &cert(ca_pem("LDAPS", 365), CertificateKind::ClientLdaps)).await.unwrap();
}

#[tokio::test]
async fn ldaps_enable_check_disable() {
    let (ds, clock, _) = setup();
    let simple = active_dir(&ds, &clock, DirectoryKind::SimpleAd).await;
    let dir = active_dir(&ds, &clock, DirectoryKind::AdConnector).await;
    assert!(matches!(ds.enable_ldaps(SCOPE, &simple).await, Err(DsError::Unsupported(_))));
    assert!(matches!(ds.describe_ldaps(SCOPE, &simple).await, Err(DsError::Unsupported(_))));
    let view = ds.describe_ldaps(SCOPE, &dir).await.unwrap();
    assert_eq!((view.status, view.updated_ms), (LdapsStatus::Disabled, None));
    assert!(matches!(ds.enable_ldaps(SCOPE, &dir).await, Err(DsError::NoAvailableCertificate(_))));
    assert!(matches!(ds.disable_ldaps(SCOPE, &dir).await, Err(DsError::InvalidLdapsStatus(_))));

    let pem = ca_pem("LDAPS CA", 365);
    let cert_id = ds.register_certificate(SCOPE, &dir, &cert(pem, CertificateKind::ClientLdaps)).await.unwrap();
    // Still registering: not available yet.
    assert!(matches!(ds.enable_ldaps(SCOPE, &dir).await, Err(DsError::NoAvailableCertificate(_))));
    clock.advance(REGISTER_DELAY_MS);

    let check = ds.enable_ldaps(SCOPE, &dir).await.unwrap();
    assert_eq!(check.due_ms, clock.now_ms() + LDAPS_CHECK_DELAY_MS);
    assert!(matches!(ds.enable_ldaps(SCOPE, &dir).await, Err(DsError::InvalidLdapsStatus(_))));
    let view = ds.describe_ldaps(SCOPE, &dir).await.unwrap();
    assert_eq!(view.status, LdapsStatus::Enabling);
    assert_eq!(view.pending, Some(check.clone()));
    let plan = ds.ldaps_plan(SCOPE, &dir, &check.check_id).await.unwrap().unwrap();
    assert_eq!(plan.targets, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
    assert_eq!(plan.anchors.len(), 1);
    assert!(ds.ldaps_plan(SCOPE, &dir, "stale").await.unwrap().is_none());

    // The last ClientLDAPS certificate cannot go while LDAPS is on.
    let err = ds.deregister_certificate(SCOPE, &dir, &cert_id).await;
    assert!(matches!(err, Err(DsError::CertificateInUse(_))), "{err:?}");

    // A failed check, then a retry that passes.
    let failure = LdapsFailure::Unreachable { addr: "127.0.0.1:636".into(), detail: "connection refused".into() };
    assert!(!ds.finish_ldaps_check(SCOPE, &dir, "stale", Ok(())).await.unwrap());
    assert!(ds.finish_ldaps_check(SCOPE, &dir, &check.check_id, Err(failure)).await.unwrap());
    let view = ds.describe_ldaps(SCOPE, &dir).await.unwrap();
    assert_eq!(view.status, LdapsStatus::EnableFailed);
    assert!(view.reason.unwrap().contains("unreachable"));
    assert!(view.pending.is_none());
    // A late duplicate of the same check changes nothing.
    assert!(!ds.finish_ldaps_check(SCOPE, &dir, &check.check_id, Ok(())).await.unwrap());
    // EnableFailed does not hold the certificate.
    let check = ds.enable_ldaps(SCOPE, &dir).await.unwrap();
    assert!(ds.finish_ldaps_check(SCOPE, &dir, &check.check_id, Ok(())).await.unwrap());
    let view = ds.describe_ldaps(SCOPE, &dir).await.unwrap();
    assert_eq!((view.status, view.reason), (LdapsStatus::Enabled, None));
    assert!(matches!(ds.enable_ldaps(SCOPE, &dir).await, Err(DsError::InvalidLdapsStatus(_))));

    ds.disable_ldaps(SCOPE, &dir).await.unwrap();
    assert_eq!(ds.describe_ldaps(SCOPE, &dir).await.unwrap().status, LdapsStatus::Disabled);
    ds.deregister_certificate(SCOPE, &dir, &cert_id).await.unwrap();

    // A disable while a check runs makes the check stale.
    let pem = ca_pem("LDAPS CA 2", 365);
    ds.register_certificate(SCOPE, &dir, &cert(pem, CertificateKind::ClientLdaps)).await.unwrap();
    clock.advance(REGISTER_DELAY_MS);
    let check = ds.enable_ldaps(SCOPE, &dir).await.unwrap();
    ds.disable_ldaps(SCOPE, &dir).await.unwrap();
    assert!(ds.ldaps_plan(SCOPE, &dir, &check.check_id).await.unwrap().is_none());
    assert!(!ds.finish_ldaps_check(SCOPE, &dir, &check.check_id, Ok(())).await.unwrap());
    assert_eq!(ds.describe_ldaps(SCOPE, &dir).await.unwrap().status, LdapsStatus::Disabled);
}

#[tokio::test]
async fn managed_ad_ldaps_has_no_customer_targets() {
    let (ds, clock, _) = setup();
    let dir = active_dir(&ds, &clock, DirectoryKind::MicrosoftAd).await;
    ds.register_certificate(SCOPE, &dir, &cert(ca_pem("CA", 365), CertificateKind::ClientLdaps)).await.unwrap();
    clock.advance(REGISTER_DELAY_MS);
    let check = ds.enable_ldaps(SCOPE, &dir).await.unwrap();
    let plan = ds.ldaps_plan(SCOPE, &dir, &check.check_id).await.unwrap().unwrap();
    assert!(plan.targets.is_empty());
}

#[tokio::test]
async fn client_authentication() {
    let (ds, clock, _) = setup();
    let managed = active_dir(&ds, &clock, DirectoryKind::MicrosoftAd).await;
    let dir = active_dir(&ds, &clock, DirectoryKind::AdConnector).await;
    let smart = ClientAuthKind::SmartCard;
    let either = ClientAuthKind::SmartCardOrPassword;
    assert!(matches!(ds.enable_client_auth(SCOPE, &managed, smart).await, Err(DsError::Unsupported(_))));
    assert!(matches!(ds.describe_client_auth(SCOPE, &managed, None, None, None).await, Err(DsError::Unsupported(_))));
    assert!(matches!(ds.enable_client_auth(SCOPE, &dir, smart).await, Err(DsError::NoAvailableCertificate(_))));
    assert!(matches!(ds.disable_client_auth(SCOPE, &dir, smart).await, Err(DsError::InvalidClientAuthStatus(_))));
    let all = ds.describe_client_auth(SCOPE, &dir, None, None, None).await.unwrap().items;
    assert_eq!(
        all.iter().map(|c| (c.kind, c.status)).collect::<Vec<_>>(),
        vec![(smart, machine::ClientAuthStatus::Disabled), (either, machine::ClientAuthStatus::Disabled)]
    );

    let cert_id = ds
        .register_certificate(SCOPE, &dir, &cert(ca_pem("Smart CA", 365), CertificateKind::ClientCertAuth))
        .await
        .unwrap();
    clock.advance(REGISTER_DELAY_MS);
    ds.enable_client_auth(SCOPE, &dir, smart).await.unwrap();
    assert!(matches!(ds.enable_client_auth(SCOPE, &dir, smart).await, Err(DsError::InvalidClientAuthStatus(_))));
    assert!(matches!(ds.enable_client_auth(SCOPE, &dir, either).await, Err(DsError::InvalidClientAuthStatus(_))));
    let one = ds.describe_client_auth(SCOPE, &dir, Some(smart), None, None).await.unwrap().items;
    assert_eq!(one.len(), 1);
    assert_eq!((one[0].status, one[0].updated_ms), (machine::ClientAuthStatus::Enabled, clock.now_ms()));
    let err = ds.deregister_certificate(SCOPE, &dir, &cert_id).await;
    assert!(matches!(err, Err(DsError::CertificateInUse(_))), "{err:?}");
    ds.disable_client_auth(SCOPE, &dir, smart).await.unwrap();
    ds.enable_client_auth(SCOPE, &dir, either).await.unwrap();
    ds.disable_client_auth(SCOPE, &dir, either).await.unwrap();
    ds.deregister_certificate(SCOPE, &dir, &cert_id).await.unwrap();
}

#[tokio::test]
async fn deleting_a_directory_removes_its_certificates() {
    let (ds, clock, store) = setup();
    let dir = active_dir(&ds, &clock, DirectoryKind::MicrosoftAd).await;
    ds.register_certificate(SCOPE, &dir, &cert(ca_pem("CA", 365), CertificateKind::ClientLdaps)).await.unwrap();
    ds.delete(SCOPE, &dir).await.unwrap();
    assert_eq!(store.count(CERTIFICATE_KIND, SCOPE, i64::MIN).await.unwrap(), 0);
    assert!(matches!(ds.list_certificates(SCOPE, &dir, None, None).await, Err(DsError::DirectoryNotFound(_))));
}
