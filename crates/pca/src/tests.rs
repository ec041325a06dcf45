//! The rules end to end over an in-memory store: hierarchies that openssl verifies, CRLs
//! that follow revocations, the CA lifecycle, and the checks IssueCertificate makes.

use std::process::Command;
use std::sync::Arc;

use carapace_kernel::ca::{KeyAlgorithm, SigningAlgorithm};
use carapace_kernel::jobs::{NoObserver, Worker};
use carapace_kernel::{Clock as _, Owner};

use super::*;
use crate::jobs::PcaJobs;
use crate::records::{CaStatus, CaSubject, CaType, CrlConfig, OcspConfig, Revocation, UsageMode};

struct Fixture {
    cas: PrivateCas,
    clock: carapace_kernel::ManualClock,
    worker: Worker<PcaJobs>,
    buckets: tempfile::TempDir,
    owner: Owner,
}

fn fixture() -> Fixture {
    let (core, clock) = carapace_kernel::runtime::test_core(false, Vec::new());
    let buckets = tempfile::tempdir().unwrap();
    let cas = PrivateCas::new(core.clone(), PcaSettings { buckets_dir: buckets.path().to_owned() });
    let worker = Worker::new(core, PcaJobs(cas.clone()), Arc::new(NoObserver));
    Fixture { cas, clock, worker, buckets, owner: Owner::new("111122223333", "us-east-1") }
}

fn new_ca(ca_type: CaType, key: KeyAlgorithm, cn: &str) -> NewAuthority {
    NewAuthority {
        ca_type,
        key_algorithm: key,
        signing_algorithm: SigningAlgorithm::default_for(key),
        subject: CaSubject { common_name: Some(cn.into()), organization: Some("Example".into()), ..Default::default() },
        revocation: Revocation::default(),
        usage_mode: UsageMode::GeneralPurpose,
        key_storage: "FIPS_140_2_LEVEL_3_OR_HIGHER".into(),
        tags: Vec::new(),
        idempotency_token: None,
    }
}

fn years(n: i64) -> Validity {
    Validity { value: n, kind: ValidityType::Years }
}

fn issue(ca_arn: &str, csr: &[u8], alg: SigningAlgorithm, template: &str, validity: Validity) -> IssueRequest {
    IssueRequest {
        ca_arn: ca_arn.into(),
        csr: csr.to_vec(),
        signing_algorithm: alg,
        template_arn: Some(format!("arn:aws:acm-pca:::template/{template}/V1")),
        validity,
        validity_not_before: None,
        idempotency_token: None,
        return_certificate: false,
    }
}

impl Fixture {
    /// Issues and waits for the worker: the certificate and its chain.
    async fn issued(&self, req: IssueRequest) -> (String, Option<String>) {
        let ca_arn = req.ca_arn.clone();
        let (arn, _) = self.cas.issue_certificate(&self.owner, req).await.unwrap();
        assert!(matches!(
            self.cas.get_certificate(&self.owner, &ca_arn, &arn).await,
            Err(PcaError::RequestInProgress(_))
        ));
        self.worker.run_due().await.unwrap();
        self.cas.get_certificate(&self.owner, &ca_arn, &arn).await.unwrap()
    }

    /// A root CA, active with its own certificate.
    async fn root(&self, revocation: Revocation) -> String {
        let mut new = new_ca(CaType::Root, KeyAlgorithm::EcSecp384r1, "Example Root");
        new.revocation = revocation;
        let arn = self.cas.create_authority(&self.owner, new).await.unwrap();
        let csr = self.cas.authority_csr(&self.owner, &arn).await.unwrap();
        let (cert, chain) = self
            .issued(issue(&arn, csr.as_bytes(), SigningAlgorithm::Sha384WithEcdsa, "RootCACertificate", years(10)))
            .await;
        assert!(chain.is_none());
        self.cas.import_authority_certificate(&self.owner, &arn, cert.as_bytes(), None).await.unwrap();
        arn
    }
}

fn openssl(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("/usr/bin/openssl").current_dir(dir).args(args).output().expect("run openssl");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hierarchy_built_through_the_rules_verifies_and_its_crl_follows_revocations() {
    let f = fixture();
    let root = f.root(Revocation::default()).await;
    let view = f.cas.describe_authority(&f.owner, &root).await.unwrap();
    assert_eq!(view.status, CaStatus::Active);

    // A subordinate that publishes a CRL into bucket `pki`.
    let crl = CrlConfig { enabled: true, bucket: Some("pki".into()), expiration_days: Some(7), ..Default::default() };
    let mut new = new_ca(CaType::Subordinate, KeyAlgorithm::Rsa2048, "Example Issuing");
    let ocsp = OcspConfig { enabled: true, custom_cname: None };
    new.revocation = Revocation { crl: Some(crl), ocsp: Some(ocsp) };
    let sub = f.cas.create_authority(&f.owner, new).await.unwrap();
    assert_eq!(f.cas.describe_authority(&f.owner, &sub).await.unwrap().status, CaStatus::PendingCertificate);
    let sub_csr = f.cas.authority_csr(&f.owner, &sub).await.unwrap();
    let (sub_cert, sub_chain) = f
        .issued(issue(
            &root,
            sub_csr.as_bytes(),
            SigningAlgorithm::Sha384WithEcdsa,
            "SubordinateCACertificate_PathLen0",
            years(5),
        ))
        .await;
    assert!(matches!(
        f.cas.import_authority_certificate(&f.owner, &sub, sub_cert.as_bytes(), None).await,
        Err(PcaError::InvalidRequest(_))
    ));
    f.cas
        .import_authority_certificate(&f.owner, &sub, sub_cert.as_bytes(), sub_chain.as_deref().map(str::as_bytes))
        .await
        .unwrap();
    f.worker.run_due().await.unwrap();
    let crl_path = f.buckets.path().join("pki/crl").join(format!("{}.crl", sub.rsplit('/').next().unwrap()));
    assert!(crl_path.exists(), "activation publishes the first CRL");

    // A leaf from an openssl request.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(d, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "leaf.key"]);
    let (ok, out) = openssl(
        d,
        &[
            "req",
            "-new",
            "-key",
            "leaf.key",
            "-subj",
            "/CN=svc.internal",
            "-addext",
            "subjectAltName=DNS:svc.internal",
            "-out",
            "leaf.csr",
        ],
    );
    assert!(ok, "{out}");
    let leaf_csr = std::fs::read(d.join("leaf.csr")).unwrap();
    let days = Validity { value: 30, kind: ValidityType::Days };
    let (leaf, chain) =
        f.issued(issue(&sub, &leaf_csr, SigningAlgorithm::Sha256WithRsa, "EndEntityServerAuthCertificate", days)).await;
    let chain = chain.unwrap();
    assert!(chain.starts_with(&sub_cert.trim_end()[..40]), "the chain starts with the issuing CA");
    let (root_cert, _) = f.cas.authority_certificate(&f.owner, &root).await.unwrap();
    std::fs::write(d.join("root.pem"), root_cert).unwrap();
    std::fs::write(d.join("sub.pem"), &sub_cert).unwrap();
    std::fs::write(d.join("leaf.pem"), &leaf).unwrap();
    std::fs::copy(&crl_path, d.join("crl.der")).unwrap();
    // At the test clock's time, which is not the machine's.
    let at = (f.clock.now_ms() / 1000).to_string();
    let verify = |d: &std::path::Path| {
        openssl(d, &["crl", "-inform", "DER", "-in", "crl.der", "-out", "crl.pem"]);
        openssl(
            d,
            &[
                "verify",
                "-attime",
                &at,
                "-crl_check",
                "-CRLfile",
                "crl.pem",
                "-CAfile",
                "root.pem",
                "-untrusted",
                "sub.pem",
                "-purpose",
                "sslserver",
                "leaf.pem",
            ],
        )
    };
    let (ok, out) = verify(d);
    assert!(ok, "{out}");
    let (_, text) =
        openssl(d, &["x509", "-in", "leaf.pem", "-noout", "-ext", "crlDistributionPoints,authorityInfoAccess"]);
    assert!(text.contains("http://127.0.0.1:4566/s3/pki/crl/"), "{text}");
    assert!(text.contains("OCSP - URI:http://127.0.0.1:4566/pca/ocsp"), "{text}");
    // The responder answers `good`, signed by the subordinate.
    let ocsp = |d: &std::path::Path| {
        let (ok, out) =
            openssl(d, &["ocsp", "-issuer", "sub.pem", "-cert", "leaf.pem", "-no_nonce", "-reqout", "req.der"]);
        assert!(ok, "{out}");
        let answer = futures_lite(f.cas.ocsp(&std::fs::read(d.join("req.der")).unwrap()));
        std::fs::write(d.join("resp.der"), answer).unwrap();
        openssl(
            d,
            &[
                "ocsp",
                "-respin",
                "resp.der",
                "-issuer",
                "sub.pem",
                "-cert",
                "leaf.pem",
                "-CAfile",
                "root.pem",
                "-verify_other",
                "sub.pem",
                "-attime",
                &at,
                "-validity_period",
                "100000000",
            ],
        )
    };
    let (ok, out) = ocsp(d);
    assert!(ok && out.contains("leaf.pem: good"), "{out}");

    // Revoked: the next CRL names it, once.
    let serial = leaf_serial(&leaf);
    f.cas.revoke_certificate(&f.owner, &sub, &serial, RevocationReason::KeyCompromise).await.unwrap();
    assert!(matches!(
        f.cas.revoke_certificate(&f.owner, &sub, &serial, RevocationReason::KeyCompromise).await,
        Err(PcaError::RequestAlreadyProcessed(_))
    ));
    f.worker.run_due().await.unwrap();
    std::fs::copy(&crl_path, d.join("crl.der")).unwrap();
    let (ok, out) = verify(d);
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    let (_, out) = ocsp(d);
    assert!(out.contains("leaf.pem: revoked"), "{out}");
}

/// Runs a future to completion from synchronous test code inside the test's runtime.
fn futures_lite<F: std::future::Future>(future: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

fn leaf_serial(pem: &str) -> String {
    carapace_kernel::ca::parse_certificate(pem).unwrap().serial_hex
}

#[tokio::test]
async fn the_lifecycle_follows_aws() {
    let f = fixture();
    // A CA that never had a certificate goes at once.
    let pending =
        f.cas.create_authority(&f.owner, new_ca(CaType::Root, KeyAlgorithm::EcPrime256v1, "P")).await.unwrap();
    f.cas.delete_authority(&f.owner, &pending, None).await.unwrap();
    assert!(matches!(f.cas.describe_authority(&f.owner, &pending).await, Err(PcaError::NotFound(_))));

    let root = f.root(Revocation::default()).await;
    assert!(matches!(f.cas.delete_authority(&f.owner, &root, Some(7)).await, Err(PcaError::InvalidState(_))));
    f.cas.update_authority(&f.owner, &root, Some(CaStatus::Disabled), None).await.unwrap();
    let csr = f.cas.authority_csr(&f.owner, &root).await.unwrap();
    let refused = f
        .cas
        .issue_certificate(
            &f.owner,
            issue(&root, csr.as_bytes(), SigningAlgorithm::Sha384WithEcdsa, "EndEntityCertificate", years(1)),
        )
        .await;
    assert!(matches!(refused, Err(PcaError::InvalidState(_))), "{refused:?}");
    f.cas.delete_authority(&f.owner, &root, Some(7)).await.unwrap();
    let view = f.cas.describe_authority(&f.owner, &root).await.unwrap();
    assert_eq!(view.status, CaStatus::Deleted);
    assert_eq!(view.record.restorable_until_ms, Some(f.clock.now_ms() + 7 * 86_400_000));
    f.cas.restore_authority(&f.owner, &root).await.unwrap();
    assert_eq!(f.cas.describe_authority(&f.owner, &root).await.unwrap().status, CaStatus::Disabled);

    // Past the window, a deleted CA is gone.
    f.cas.delete_authority(&f.owner, &root, Some(7)).await.unwrap();
    f.clock.advance(7 * 86_400_000);
    assert!(matches!(f.cas.restore_authority(&f.owner, &root).await, Err(PcaError::NotFound(_))));
    assert!(f.cas.list_authorities(&f.owner, None, None).await.unwrap().items.is_empty());

    // Another account may not read it without a policy; another Region does not see it.
    let other = Owner::new("444455556666", "us-east-1");
    let arn = f.cas.create_authority(&f.owner, new_ca(CaType::Root, KeyAlgorithm::EcPrime256v1, "Q")).await.unwrap();
    assert!(matches!(f.cas.describe_authority(&other, &arn).await, Err(PcaError::AccessDenied(_))));
    let elsewhere = Owner::new(f.owner.account.clone(), "eu-west-1");
    assert!(matches!(f.cas.describe_authority(&elsewhere, &arn).await, Err(PcaError::NotFound(_))));
}

#[tokio::test]
async fn issuance_checks_what_aws_checks() {
    let f = fixture();
    let root = f.root(Revocation::default()).await;
    let csr = f.cas.authority_csr(&f.owner, &root).await.unwrap();
    let try_issue = |req: IssueRequest| f.cas.issue_certificate(&f.owner, req);
    let ok = issue(&root, csr.as_bytes(), SigningAlgorithm::Sha384WithEcdsa, "EndEntityCertificate", years(1));

    let mut wrong_alg = ok.clone();
    wrong_alg.signing_algorithm = SigningAlgorithm::Sha256WithRsa;
    assert!(matches!(try_issue(wrong_alg).await, Err(PcaError::InvalidArgs(_))));
    let mut too_long = ok.clone();
    too_long.validity = years(11);
    assert!(matches!(try_issue(too_long).await, Err(PcaError::InvalidArgs(_))));
    let mut bad_csr = ok.clone();
    bad_csr.csr = b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n".to_vec();
    assert!(matches!(try_issue(bad_csr).await, Err(PcaError::MalformedCsr(_))));
    let mut passthrough = ok.clone();
    passthrough.template_arn = Some("arn:aws:acm-pca:::template/EndEntityCertificate_APIPassthrough/V1".into());
    assert!(matches!(try_issue(passthrough).await, Err(PcaError::InvalidArgs(_))));
    let mut root_again = ok.clone();
    root_again.template_arn = Some("arn:aws:acm-pca:::template/RootCACertificate/V1".into());
    assert!(matches!(try_issue(root_again).await, Err(PcaError::InvalidArgs(_))));

    // The same token answers the same certificate; returning the certificate signs at once.
    let mut once = ok.clone();
    once.idempotency_token = Some("t-1".into());
    let (first, _) = try_issue(once.clone()).await.unwrap();
    let (second, _) = try_issue(once).await.unwrap();
    assert_eq!(first, second);
    let mut now = ok.clone();
    now.return_certificate = true;
    let (arn, pem) = try_issue(now).await.unwrap();
    assert_eq!(f.cas.get_certificate(&f.owner, &root, &arn).await.unwrap().0, pem.unwrap());

    // A short-lived CA issues for at most seven days.
    let mut new = new_ca(CaType::Subordinate, KeyAlgorithm::EcPrime256v1, "Short");
    new.usage_mode = UsageMode::ShortLivedCertificate;
    let short = f.cas.create_authority(&f.owner, new).await.unwrap();
    let short_csr = f.cas.authority_csr(&f.owner, &short).await.unwrap();
    let (cert, chain) = f
        .issued(issue(
            &root,
            short_csr.as_bytes(),
            SigningAlgorithm::Sha384WithEcdsa,
            "SubordinateCACertificate_PathLen0",
            years(1),
        ))
        .await;
    f.cas
        .import_authority_certificate(&f.owner, &short, cert.as_bytes(), chain.as_deref().map(str::as_bytes))
        .await
        .unwrap();
    let eight_days = Validity { value: 8, kind: ValidityType::Days };
    let req = issue(&short, csr.as_bytes(), SigningAlgorithm::Sha256WithEcdsa, "EndEntityCertificate", eight_days);
    assert!(matches!(try_issue(req).await, Err(PcaError::InvalidArgs(_))));
    // Path length 0 signs no CA.
    let req = issue(
        &short,
        csr.as_bytes(),
        SigningAlgorithm::Sha256WithEcdsa,
        "SubordinateCACertificate_PathLen0",
        eight_days,
    );
    assert!(matches!(try_issue(req).await, Err(PcaError::InvalidArgs(_))));
}

#[test]
fn validity_types_resolve() {
    let now = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    let at = |value, kind| Validity { value, kind }.resolve(now, "Validity").unwrap();
    assert_eq!(at(20270101000000, ValidityType::EndDate), 1_798_761_600_000);
    assert_eq!(at(1_798_761_600, ValidityType::Absolute), 1_798_761_600_000);
    assert_eq!(at(365, ValidityType::Days), 1_798_761_600_000);
    assert_eq!(at(12, ValidityType::Months), 1_798_761_600_000);
    assert_eq!(at(1, ValidityType::Years), 1_798_761_600_000);
    assert!(Validity { value: 20271301000000, kind: ValidityType::EndDate }.resolve(now, "Validity").is_err());
    // Any positive long is a well-formed `Value`: spans past the calendar are invalid, not a panic.
    for kind in
        [ValidityType::Days, ValidityType::Months, ValidityType::Years, ValidityType::Absolute, ValidityType::EndDate]
    {
        assert!(Validity { value: i64::MAX, kind }.resolve(now, "Validity").is_err(), "{kind:?}");
    }
}

#[tokio::test]
async fn audit_reports_list_issues_and_revocations_and_permissions_are_kept() {
    let f = fixture();
    let root = f.root(Revocation::default()).await;
    let csr = f.cas.authority_csr(&f.owner, &root).await.unwrap();
    let mut req = issue(&root, csr.as_bytes(), SigningAlgorithm::Sha384WithEcdsa, "EndEntityCertificate", years(1));
    req.return_certificate = true;
    let (arn, pem) = f.cas.issue_certificate(&f.owner, req).await.unwrap();
    let serial = leaf_serial(&pem.unwrap());
    f.cas.revoke_certificate(&f.owner, &root, &serial, RevocationReason::Superseded).await.unwrap();

    let report = f.cas.create_audit_report(&f.owner, &root, "audit-bucket", reports::ReportFormat::Json).await.unwrap();
    assert_eq!(f.cas.describe_audit_report(&f.owner, &root, &report.id).await.unwrap(), report);
    let body = std::fs::read(f.buckets.path().join("audit-bucket").join(&report.key)).unwrap();
    let lines: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
    // The root's own certificate and the leaf.
    assert_eq!(lines.len(), 2, "{lines:?}");
    let leaf = lines.iter().find(|l| l["certificateArn"] == arn.as_str()).unwrap();
    assert_eq!(
        (leaf["serial"].as_str(), leaf["revocationReason"].as_str()),
        (Some(serial.as_str()), Some("SUPERSEDED"))
    );
    let csv = f.cas.create_audit_report(&f.owner, &root, "audit-bucket", reports::ReportFormat::Csv).await.unwrap();
    let text = std::fs::read_to_string(f.buckets.path().join("audit-bucket").join(&csv.key)).unwrap();
    assert!(text.starts_with("awsAccountId,certificateArn,serial,subject,"), "{text}");
    assert_eq!(text.lines().count(), 3);

    let actions = vec!["IssueCertificate".to_owned(), "GetCertificate".to_owned(), "ListPermissions".to_owned()];
    f.cas.create_permission(&f.owner, &root, "acm.amazonaws.com", None, actions.clone()).await.unwrap();
    assert!(matches!(
        f.cas.create_permission(&f.owner, &root, "acm.amazonaws.com", None, actions).await,
        Err(PcaError::PermissionAlreadyExists(_))
    ));
    assert_eq!(f.cas.list_permissions(&f.owner, &root, None, None).await.unwrap().items.len(), 1);
    f.cas.delete_permission(&f.owner, &root, "acm.amazonaws.com", None).await.unwrap();
    assert!(matches!(
        f.cas.delete_permission(&f.owner, &root, "acm.amazonaws.com", None).await,
        Err(PcaError::NotFound(_))
    ));
}
