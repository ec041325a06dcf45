//! Directory Service through aws-sdk-rust (which speaks awsJson1.1 to DS) against the real
//! binary: every Directory Service operation Carapace serves and every error it answers.
//!
//! Test certificates come from `tests/ldap/make-test-pki.sh` (openssl; installed by
//! `tests/ldap/ensure-slapd.sh`) and `tests/ldap/fixtures/`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_directory::Client;
use aws_sdk_directory::error::ProvideErrorMetadata;
use aws_sdk_directory::types::{
    CertificateState, CertificateType, ClientAuthenticationStatus, ClientAuthenticationType, ClientCertAuthSettings,
    DirectoryConnectSettings, DirectoryEdition, DirectorySize, DirectoryStage, DirectoryType, DirectoryVpcSettings,
    LdapsStatus, LdapsType, Tag,
};
use common::Server;

const PASSWORD: &str = "Sup3r-Secret!";

/// Asserts that a fluent call fails with `code`; returns the message.
macro_rules! assert_err {
    ($call:expr, $code:expr) => {{
        let err = $call.send().await.expect_err(concat!("expected ", $code));
        assert_eq!(err.code(), Some($code), "{err:?}");
        err.message().map(String::from).unwrap_or_default()
    }};
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The test PKI of `make-test-pki.sh` in a temporary directory.
struct Pki(tempfile::TempDir);

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("bash")
            .arg(repo().join("tests/ldap/make-test-pki.sh"))
            .arg(dir.path())
            .status()
            .expect("run make-test-pki.sh (needs openssl: tests/ldap/ensure-slapd.sh installs it)");
        assert!(status.success(), "make-test-pki.sh failed");
        Self(dir)
    }

    fn pem(&self, name: &str) -> String {
        std::fs::read_to_string(self.0.path().join(format!("{name}.pem"))).unwrap()
    }
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo().join("tests/ldap/fixtures").join(name)).unwrap()
}

fn vpc() -> DirectoryVpcSettings {
    DirectoryVpcSettings::builder()
        .vpc_id("vpc-0123456789abcdef0")
        .subnet_ids("subnet-11111111")
        .subnet_ids("subnet-22222222")
        .build()
        .unwrap()
}

async fn simple_ad(c: &Client) -> String {
    let out = c
        .create_directory()
        .name("simple.example.com")
        .password(PASSWORD)
        .size(DirectorySize::Small)
        .vpc_settings(vpc())
        .send()
        .await
        .unwrap();
    out.directory_id().unwrap().to_owned()
}

async fn managed_ad(c: &Client) -> String {
    let out = c
        .create_microsoft_ad()
        .name("corp.example.com")
        .short_name("CORP")
        .password(PASSWORD)
        .edition(DirectoryEdition::Standard)
        .vpc_settings(vpc())
        .tags(Tag::builder().key("env").value("test").build().unwrap())
        .send()
        .await
        .unwrap();
    out.directory_id().unwrap().to_owned()
}

async fn connector(c: &Client, dns_ips: &[&str]) -> String {
    let mut settings = DirectoryConnectSettings::builder()
        .vpc_id("vpc-12345678")
        .subnet_ids("subnet-11111111")
        .subnet_ids("subnet-22222222")
        .customer_user_name("svc-connector");
    for ip in dns_ips {
        settings = settings.customer_dns_ips(*ip);
    }
    let out = c
        .connect_directory()
        .name("onprem.example.com")
        .password(PASSWORD)
        .size(DirectorySize::Small)
        .connect_settings(settings.build().unwrap())
        .send()
        .await
        .unwrap();
    out.directory_id().unwrap().to_owned()
}

/// Polls `probe` every 50 ms for up to 10 s until it returns `Some`.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(v) = probe().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn stage(c: &Client, id: &str) -> DirectoryStage {
    let out = c.describe_directories().directory_ids(id).send().await.unwrap();
    out.directory_descriptions()[0].stage().unwrap().clone()
}

async fn wait_active(c: &Client, id: &str) {
    eventually("Active", || async { (stage(c, id).await == DirectoryStage::Active).then_some(()) }).await;
}

async fn cert_state(c: &Client, dir: &str, cert: &str) -> Option<CertificateState> {
    match c.describe_certificate().directory_id(dir).certificate_id(cert).send().await {
        Ok(out) => out.certificate().and_then(|c| c.state().cloned()),
        Err(e) if e.code() == Some("CertificateDoesNotExistException") => None,
        Err(e) => panic!("{e:?}"),
    }
}

async fn register(c: &Client, dir: &str, pem: &str) -> String {
    let out = c.register_certificate().directory_id(dir).certificate_data(pem).send().await.unwrap();
    let id = out.certificate_id().unwrap().to_owned();
    eventually("Registered", || async {
        (cert_state(c, dir, &id).await == Some(CertificateState::Registered)).then_some(())
    })
    .await;
    id
}

/// Waits for LDAPS to leave `Enabling`; returns the status and reason.
async fn settled_ldaps(c: &Client, dir: &str) -> (LdapsStatus, Option<String>) {
    eventually("LDAPS to settle", || async {
        let out = c.describe_ldaps_settings().directory_id(dir).send().await.unwrap();
        let info = &out.ldaps_settings_info()[0];
        let status = info.ldaps_status().unwrap().clone();
        (status != LdapsStatus::Enabling).then(|| (status, info.ldaps_status_reason().map(str::to_owned)))
    })
    .await
}

#[tokio::test]
async fn directories_are_created_described_paged_and_deleted() {
    let server = Server::dev();
    let c = server.ds("123456789012").await;
    let simple = simple_ad(&c).await;
    assert!(simple.starts_with("d-") && simple.len() == 12, "{simple}");
    wait_active(&c, &simple).await;
    let managed = managed_ad(&c).await;
    let conn = connector(&c, &["192.0.2.10", "192.0.2.11"]).await;
    wait_active(&c, &managed).await;
    wait_active(&c, &conn).await;

    let out = c.describe_directories().directory_ids(&managed).directory_ids(&conn).send().await.unwrap();
    let [m, a] = out.directory_descriptions() else { panic!("two descriptions") };
    assert_eq!(m.r#type(), Some(&DirectoryType::MicrosoftAd));
    assert_eq!(m.edition(), Some(&DirectoryEdition::Standard));
    assert_eq!(m.short_name(), Some("CORP"));
    assert_eq!(m.access_url(), Some(format!("{managed}.awsapps.com").as_str()));
    assert_eq!(m.dns_ip_addrs().len(), 2);
    let vpc = m.vpc_settings().unwrap();
    assert_eq!(vpc.vpc_id(), Some("vpc-0123456789abcdef0"));
    assert_eq!(vpc.availability_zones(), ["us-east-1a", "us-east-1b"]);
    assert!(vpc.security_group_id().unwrap().starts_with("sg-"));
    assert!(m.launch_time().is_some() && m.stage_last_updated_date_time().is_some());
    assert_eq!(a.r#type(), Some(&DirectoryType::AdConnector));
    assert_eq!(a.size(), Some(&DirectorySize::Small));
    assert_eq!(a.dns_ip_addrs(), ["192.0.2.10", "192.0.2.11"]);
    assert_eq!(a.connect_settings().unwrap().customer_user_name(), Some("svc-connector"));

    // Paging through all three, one at a time.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = c.describe_directories().limit(1).set_next_token(token.clone()).send().await.unwrap();
        seen.extend(out.directory_descriptions().iter().map(|d| d.directory_id().unwrap().to_owned()));
        match out.next_token() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, [simple.clone(), managed.clone(), conn.clone()]);
    assert_err!(c.describe_directories().next_token("not-a-token"), "InvalidNextTokenException");
    assert_err!(c.describe_directories().directory_ids("d-0000000000"), "EntityDoesNotExistException");
    // Another account sees none of them.
    let other = server.ds("210987654321").await;
    assert!(other.describe_directories().send().await.unwrap().directory_descriptions().is_empty());
    assert_err!(other.describe_directories().directory_ids(&simple), "EntityDoesNotExistException");

    let limits = c.get_directory_limits().send().await.unwrap();
    let l = limits.directory_limits().unwrap();
    assert_eq!((l.cloud_only_directories_limit(), l.cloud_only_directories_current_count()), (Some(10), Some(1)));
    assert_eq!((l.cloud_only_microsoft_ad_limit(), l.cloud_only_microsoft_ad_current_count()), (Some(20), Some(1)));
    assert_eq!((l.connected_directories_limit(), l.connected_directories_current_count()), (Some(10), Some(1)));
    assert!(!l.connected_directories_limit_reached());

    let out = c.delete_directory().directory_id(&simple).send().await.unwrap();
    assert_eq!(out.directory_id(), Some(simple.as_str()));
    assert_err!(c.delete_directory().directory_id(&simple), "EntityDoesNotExistException");
    assert_err!(c.describe_directories().directory_ids(&simple), "EntityDoesNotExistException");
}

#[tokio::test]
async fn directory_creation_is_checked() {
    let server = Server::dev();
    let c = server.ds("123456789012").await;
    // One subnet: there must be two, in different zones.
    let one = DirectoryVpcSettings::builder().vpc_id("vpc-12345678").subnet_ids("subnet-11111111").build().unwrap();
    let msg = assert_err!(
        c.create_directory().name("a.example.com").password(PASSWORD).size(DirectorySize::Small).vpc_settings(one),
        "InvalidParameterException"
    );
    assert!(msg.contains("two subnets"), "{msg}");
    assert_err!(
        c.create_directory().name("a.example.com").password(PASSWORD).size(DirectorySize::Small),
        "InvalidParameterException"
    );
    // The model's patterns are enforced by the wire layer.
    let bad_vpc = DirectoryVpcSettings::builder().vpc_id("vpc-xyz").subnet_ids("subnet-1").build().unwrap();
    assert_err!(
        c.create_microsoft_ad().name("a.example.com").password(PASSWORD).vpc_settings(bad_vpc),
        "ValidationException"
    );
    // An AD Connector needs the customer's DNS servers.
    let no_dns = DirectoryConnectSettings::builder()
        .vpc_id("vpc-12345678")
        .subnet_ids("subnet-11111111")
        .subnet_ids("subnet-22222222")
        .customer_user_name("svc")
        .build()
        .unwrap();
    assert_err!(
        c.connect_directory()
            .name("a.example.com")
            .password(PASSWORD)
            .size(DirectorySize::Small)
            .connect_settings(no_dns),
        "InvalidParameterException"
    );
    assert_err!(c.describe_directories().set_directory_ids(Some(vec![])), "InvalidParameterException");

    // Ten Simple AD directories per account and region.
    for _ in 0..10 {
        simple_ad(&c).await;
    }
    let msg = assert_err!(
        c.create_directory().name("a.example.com").password(PASSWORD).size(DirectorySize::Small).vpc_settings(vpc()),
        "DirectoryLimitExceededException"
    );
    assert!(msg.contains("SimpleAD"), "{msg}");
    let limits = c.get_directory_limits().send().await.unwrap();
    assert!(limits.directory_limits().unwrap().cloud_only_directories_limit_reached());
    // Other kinds are counted separately.
    managed_ad(&c).await;
}

#[tokio::test]
async fn tags() {
    let server = Server::dev();
    let c = server.ds("123456789012").await;
    let id = managed_ad(&c).await;
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build().unwrap();
    c.add_tags_to_resource().resource_id(&id).tags(tag("team", "a")).tags(tag("env", "prod")).send().await.unwrap();
    let out = c.list_tags_for_resource().resource_id(&id).send().await.unwrap();
    let pairs: Vec<(&str, &str)> = out.tags().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(pairs, [("env", "prod"), ("team", "a")]);
    let page = c.list_tags_for_resource().resource_id(&id).limit(1).send().await.unwrap();
    assert_eq!(page.tags().len(), 1);
    let rest = c.list_tags_for_resource().resource_id(&id).next_token(page.next_token().unwrap()).send().await.unwrap();
    assert_eq!(rest.tags()[0].key(), "team");
    c.remove_tags_from_resource().resource_id(&id).tag_keys("env").send().await.unwrap();
    let out = c.list_tags_for_resource().resource_id(&id).send().await.unwrap();
    assert_eq!(out.tags().len(), 1);

    let mut many = c.add_tags_to_resource().resource_id(&id);
    for i in 0..50 {
        many = many.tags(tag(&format!("k{i}"), "v"));
    }
    assert_err!(many, "TagLimitExceededException");
    assert_err!(c.add_tags_to_resource().resource_id(&id).tags(tag("aws:reserved", "v")), "InvalidParameterException");
    assert_err!(
        c.add_tags_to_resource().resource_id("d-0000000000").tags(tag("a", "b")),
        "EntityDoesNotExistException"
    );
    assert_err!(c.remove_tags_from_resource().resource_id("d-0000000000").tag_keys("a"), "EntityDoesNotExistException");
    assert_err!(c.list_tags_for_resource().resource_id("d-0000000000"), "EntityDoesNotExistException");
    assert_err!(c.list_tags_for_resource().resource_id(&id).next_token("zz"), "InvalidNextTokenException");
}

#[tokio::test]
async fn certificates_are_registered_listed_and_deregistered() {
    let pki = Pki::new();
    let server = Server::dev();
    let c = server.ds("123456789012").await;
    let simple = simple_ad(&c).await;
    let managed = managed_ad(&c).await;
    let conn = connector(&c, &["192.0.2.10"]).await;
    for id in [&simple, &managed, &conn] {
        wait_active(&c, id).await;
    }
    let reg = |dir: &str, pem: String| c.register_certificate().directory_id(dir).certificate_data(pem);

    assert_err!(reg("d-0000000000", pki.pem("ca")), "DirectoryDoesNotExistException");
    assert_err!(reg(&simple, pki.pem("ca")), "UnsupportedOperationException");
    assert_err!(
        reg(&managed, pki.pem("smart-ca"))
            .r#type(CertificateType::ClientCertAuth)
            .client_cert_auth_settings(ClientCertAuthSettings::builder().ocsp_url("http://ocsp.example.com").build()),
        "UnsupportedOperationException"
    );
    assert!(assert_err!(reg(&managed, "not a certificate".into()), "InvalidCertificateException").contains("encoding"));
    assert!(assert_err!(reg(&managed, pki.pem("soon-ca")), "InvalidCertificateException").contains("90"));
    assert!(assert_err!(reg(&managed, fixture("expired-ca.pem")), "InvalidCertificateException").contains("expired"));
    assert!(
        assert_err!(reg(&managed, fixture("rsassa-pss-ca.pem")), "InvalidCertificateException").contains("RSASSA-PSS")
    );
    // The SDK maps the code onto the modeled exception.
    let err = reg(&managed, "x".into()).send().await.unwrap_err().into_service_error();
    assert!(err.is_invalid_certificate_exception(), "{err:?}");

    // Registering, then Registered, with what the certificate says.
    let out = reg(&managed, pki.pem("ca")).send().await.unwrap();
    let id = out.certificate_id().unwrap().to_owned();
    assert!(id.starts_with("c-") && id.len() == 12, "{id}");
    let first = cert_state(&c, &managed, &id).await.unwrap();
    assert!(matches!(first, CertificateState::Registering | CertificateState::Registered), "{first:?}");
    eventually("Registered", || async {
        (cert_state(&c, &managed, &id).await == Some(CertificateState::Registered)).then_some(())
    })
    .await;
    let out = c.describe_certificate().directory_id(&managed).certificate_id(&id).send().await.unwrap();
    let cert = out.certificate().unwrap();
    assert_eq!(cert.common_name(), Some("Carapace Test LDAP CA"));
    assert_eq!(cert.r#type(), Some(&CertificateType::ClientLdaps));
    let expiry = cert.expiry_date_time().unwrap().secs();
    let registered = cert.registered_date_time().unwrap().secs();
    assert!((expiry - registered - 365 * 86_400).abs() < 120, "{expiry} {registered}");

    assert_err!(reg(&managed, pki.pem("ca")), "CertificateAlreadyExistsException");
    for i in 1..=4 {
        reg(&managed, pki.pem(&format!("ca-{i}"))).send().await.unwrap();
    }
    assert_err!(reg(&managed, pki.pem("ca-5")), "CertificateLimitExceededException");

    // ClientCertAuth on an AD Connector, which needs an OCSP URL.
    assert_err!(reg(&conn, pki.pem("smart-ca")).r#type(CertificateType::ClientCertAuth), "InvalidParameterException");
    let smart = reg(&conn, pki.pem("smart-ca"))
        .r#type(CertificateType::ClientCertAuth)
        .client_cert_auth_settings(ClientCertAuthSettings::builder().ocsp_url("http://ocsp.example.com/").build())
        .send()
        .await
        .unwrap();
    let out = c
        .describe_certificate()
        .directory_id(&conn)
        .certificate_id(smart.certificate_id().unwrap())
        .send()
        .await
        .unwrap();
    let cert = out.certificate().unwrap();
    assert_eq!(cert.r#type(), Some(&CertificateType::ClientCertAuth));
    assert_eq!(cert.client_cert_auth_settings().unwrap().ocsp_url(), Some("http://ocsp.example.com/"));

    // Listing, two per page.
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out =
            c.list_certificates().directory_id(&managed).limit(2).set_next_token(token.clone()).send().await.unwrap();
        assert!(out.certificates_info().len() <= 2);
        all.extend(out.certificates_info().iter().map(|i| i.certificate_id().unwrap().to_owned()));
        match out.next_token() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(all.len(), 5);
    assert_eq!(all[0], id);
    assert_err!(c.list_certificates().directory_id(&managed).next_token("bogus"), "InvalidNextTokenException");
    assert_err!(c.list_certificates().directory_id(&managed).limit(51), "ValidationException");
    assert_err!(c.list_certificates().directory_id("d-0000000000"), "DirectoryDoesNotExistException");
    assert_err!(c.list_certificates().directory_id(&simple), "UnsupportedOperationException");
    assert_err!(
        c.describe_certificate().directory_id(&managed).certificate_id("c-0000000000"),
        "CertificateDoesNotExistException"
    );
    assert_err!(
        c.describe_certificate().directory_id("d-0000000000").certificate_id(&id),
        "DirectoryDoesNotExistException"
    );

    // Deregistering → Deregistered (gone), which frees a slot.
    c.deregister_certificate().directory_id(&managed).certificate_id(&id).send().await.unwrap();
    assert_err!(
        c.deregister_certificate().directory_id(&managed).certificate_id(&id),
        "CertificateDoesNotExistException"
    );
    eventually("Deregistered", || async { cert_state(&c, &managed, &id).await.is_none().then_some(()) }).await;
    let out = c.list_certificates().directory_id(&managed).send().await.unwrap();
    assert_eq!(out.certificates_info().len(), 4);
    reg(&managed, pki.pem("ca-5")).send().await.unwrap();
    assert_err!(
        c.deregister_certificate().directory_id("d-0000000000").certificate_id(&id),
        "DirectoryDoesNotExistException"
    );
}

#[tokio::test]
async fn stages_are_observable_and_only_active_directories_are_available() {
    let pki = Pki::new();
    // Two seconds per stage: long enough to observe each even on a loaded machine.
    let server = Server::start(&["--dev"], &[("CARAPACE_DS_STAGE_DELAY_MS", "2000")]);
    let c = server.ds("123456789012").await;
    let managed = managed_ad(&c).await;
    assert_eq!(stage(&c, &managed).await, DirectoryStage::Requested);
    assert_err!(
        c.register_certificate().directory_id(&managed).certificate_data(pki.pem("ca")),
        "DirectoryUnavailableException"
    );
    assert_err!(c.enable_ldaps().directory_id(&managed).r#type(LdapsType::Client), "DirectoryUnavailableException");
    assert_err!(c.disable_ldaps().directory_id(&managed).r#type(LdapsType::Client), "DirectoryUnavailableException");
    assert_err!(
        c.deregister_certificate().directory_id(&managed).certificate_id("c-0000000000"),
        "DirectoryUnavailableException"
    );
    eventually("Creating", || async { (stage(&c, &managed).await == DirectoryStage::Creating).then_some(()) }).await;
    wait_active(&c, &managed).await;
    let out = c.describe_directories().directory_ids(&managed).send().await.unwrap();
    let d = &out.directory_descriptions()[0];
    let launched = d.launch_time().unwrap().as_secs_f64();
    let active_since = d.stage_last_updated_date_time().unwrap().as_secs_f64();
    assert!((active_since - launched - 4.0).abs() < 0.01, "{launched} {active_since}");
    register(&c, &managed, &pki.pem("ca")).await;
    // Deleting is allowed in any stage.
    let other = simple_ad(&c).await;
    c.delete_directory().directory_id(&other).send().await.unwrap();
}

#[tokio::test]
async fn ldaps_errors_and_an_unreachable_domain_controller() {
    let pki = Pki::new();
    // A port nothing listens on: the probe must report the controller unreachable.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let server = Server::start(&["--dev"], &[("CARAPACE_DS_LDAPS_PORT", &port)]);
    let c = server.ds("123456789012").await;
    let simple = simple_ad(&c).await;
    let conn = connector(&c, &["127.0.0.1"]).await;
    wait_active(&c, &simple).await;
    wait_active(&c, &conn).await;
    let enable = |dir: &str| c.enable_ldaps().directory_id(dir).r#type(LdapsType::Client);
    let disable = |dir: &str| c.disable_ldaps().directory_id(dir).r#type(LdapsType::Client);

    assert_err!(enable("d-0000000000"), "DirectoryDoesNotExistException");
    assert_err!(enable(&simple), "UnsupportedOperationException");
    assert_err!(c.describe_ldaps_settings().directory_id(&simple), "UnsupportedOperationException");
    assert_err!(c.describe_ldaps_settings().directory_id("d-0000000000"), "DirectoryDoesNotExistException");
    let out = c.describe_ldaps_settings().directory_id(&conn).send().await.unwrap();
    assert_eq!(out.ldaps_settings_info()[0].ldaps_status(), Some(&LdapsStatus::Disabled));
    assert_err!(enable(&conn), "NoAvailableCertificateException");
    assert_err!(disable(&conn), "InvalidLDAPSStatusException");

    let cert = register(&c, &conn, &pki.pem("ca")).await;
    enable(&conn).send().await.unwrap();
    let out = c.describe_ldaps_settings().directory_id(&conn).r#type(LdapsType::Client).send().await.unwrap();
    let first = out.ldaps_settings_info()[0].ldaps_status().unwrap().clone();
    assert!(matches!(first, LdapsStatus::Enabling | LdapsStatus::EnableFailed), "{first:?}");
    if first == LdapsStatus::Enabling {
        assert_err!(enable(&conn), "InvalidLDAPSStatusException");
        assert_err!(c.deregister_certificate().directory_id(&conn).certificate_id(&cert), "CertificateInUseException");
    }
    let (status, reason) = settled_ldaps(&c, &conn).await;
    assert_eq!(status, LdapsStatus::EnableFailed);
    let reason = reason.unwrap();
    assert!(reason.contains("unreachable") && reason.contains(&format!("127.0.0.1:{port}")), "{reason}");
    let out = c.describe_ldaps_settings().directory_id(&conn).send().await.unwrap();
    assert!(out.ldaps_settings_info()[0].last_updated_date_time().is_some());
    assert_err!(c.describe_ldaps_settings().directory_id(&conn).next_token("x"), "InvalidNextTokenException");

    disable(&conn).send().await.unwrap();
    assert_err!(disable(&conn), "InvalidLDAPSStatusException");
    c.deregister_certificate().directory_id(&conn).certificate_id(&cert).send().await.unwrap();
    assert_err!(disable("d-0000000000"), "DirectoryDoesNotExistException");
}

#[tokio::test]
async fn managed_ad_ldaps_is_enabled_without_customer_servers() {
    let pki = Pki::new();
    let server = Server::dev();
    let c = server.ds("123456789012").await;
    let managed = managed_ad(&c).await;
    wait_active(&c, &managed).await;
    let cert = register(&c, &managed, &pki.pem("ca")).await;
    c.enable_ldaps().directory_id(&managed).r#type(LdapsType::Client).send().await.unwrap();
    assert_eq!(settled_ldaps(&c, &managed).await, (LdapsStatus::Enabled, None));
    assert_err!(c.enable_ldaps().directory_id(&managed).r#type(LdapsType::Client), "InvalidLDAPSStatusException");
    // The last ClientLDAPS certificate is in use while LDAPS is on; a second one frees it.
    assert_err!(c.deregister_certificate().directory_id(&managed).certificate_id(&cert), "CertificateInUseException");
    register(&c, &managed, &pki.pem("ca-1")).await;
    c.deregister_certificate().directory_id(&managed).certificate_id(&cert).send().await.unwrap();
}

#[tokio::test]
async fn smart_card_client_authentication() {
    let pki = Pki::new();
    let server = Server::dev();
    let c = server.ds("123456789012").await;
    let managed = managed_ad(&c).await;
    let conn = connector(&c, &["192.0.2.10"]).await;
    wait_active(&c, &managed).await;
    wait_active(&c, &conn).await;
    let enable = |dir: &str, t: ClientAuthenticationType| c.enable_client_authentication().directory_id(dir).r#type(t);
    let disable =
        |dir: &str, t: ClientAuthenticationType| c.disable_client_authentication().directory_id(dir).r#type(t);
    let smart = ClientAuthenticationType::SmartCard;
    let either = ClientAuthenticationType::SmartCardOrPassword;

    assert_err!(enable("d-0000000000", smart.clone()), "DirectoryDoesNotExistException");
    assert_err!(enable(&managed, smart.clone()), "UnsupportedOperationException");
    assert_err!(disable(&managed, smart.clone()), "UnsupportedOperationException");
    assert_err!(c.describe_client_authentication_settings().directory_id(&managed), "UnsupportedOperationException");
    assert_err!(
        c.describe_client_authentication_settings().directory_id("d-0000000000"),
        "DirectoryDoesNotExistException"
    );
    assert_err!(enable(&conn, smart.clone()), "NoAvailableCertificateException");
    assert_err!(disable(&conn, smart.clone()), "InvalidClientAuthStatusException");

    let out = c.describe_client_authentication_settings().directory_id(&conn).send().await.unwrap();
    let all: Vec<_> =
        out.client_authentication_settings_info().iter().map(|i| (i.r#type().cloned(), i.status().cloned())).collect();
    assert_eq!(
        all,
        [
            (Some(smart.clone()), Some(ClientAuthenticationStatus::Disabled)),
            (Some(either.clone()), Some(ClientAuthenticationStatus::Disabled)),
        ]
    );

    let out = c
        .register_certificate()
        .directory_id(&conn)
        .certificate_data(pki.pem("smart-ca"))
        .r#type(CertificateType::ClientCertAuth)
        .client_cert_auth_settings(ClientCertAuthSettings::builder().ocsp_url("http://ocsp.example.com").build())
        .send()
        .await
        .unwrap();
    let cert = out.certificate_id().unwrap().to_owned();
    eventually("Registered", || async {
        (cert_state(&c, &conn, &cert).await == Some(CertificateState::Registered)).then_some(())
    })
    .await;
    enable(&conn, smart.clone()).send().await.unwrap();
    assert_err!(enable(&conn, smart.clone()), "InvalidClientAuthStatusException");
    assert_err!(enable(&conn, either.clone()), "InvalidClientAuthStatusException");
    let out =
        c.describe_client_authentication_settings().directory_id(&conn).r#type(smart.clone()).send().await.unwrap();
    let info = &out.client_authentication_settings_info()[0];
    assert_eq!(info.status(), Some(&ClientAuthenticationStatus::Enabled));
    assert!(info.last_updated_date_time().is_some());
    let page = c.describe_client_authentication_settings().directory_id(&conn).limit(1).send().await.unwrap();
    assert_eq!(page.client_authentication_settings_info().len(), 1);
    assert!(page.next_token().is_some());
    assert_err!(c.deregister_certificate().directory_id(&conn).certificate_id(&cert), "CertificateInUseException");
    disable(&conn, smart.clone()).send().await.unwrap();
    enable(&conn, either.clone()).send().await.unwrap();
    disable(&conn, either).send().await.unwrap();
    c.deregister_certificate().directory_id(&conn).certificate_id(&cert).send().await.unwrap();
}
