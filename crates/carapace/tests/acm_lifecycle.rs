//! ACM through aws-sdk-rust against the real binary: request → issue → get → verify →
//! delete, the errors users see, account isolation, import/export/renew/revoke, tags,
//! options and account configuration. (The pinned aws-sdk-acm predates SearchCertificates,
//! ListCertificateDomainValidations and the generic tagging operations; the boto3 tests in
//! tests/python/test_acm*.py cover those.)

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_acm::error::ProvideErrorMetadata as _;
use aws_sdk_acm::primitives::Blob;
use aws_sdk_acm::types::{
    CertificateExport, CertificateOptions, CertificateStatus, KeyAlgorithm, RevocationReason, Tag, ValidationMethod,
};
use common::Server;

const ALICE: &str = "111111111111";
const BOB: &str = "222222222222";

async fn wait_issued(acm: &aws_sdk_acm::Client, arn: &str) -> aws_sdk_acm::types::CertificateDetail {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = acm.describe_certificate().certificate_arn(arn).send().await.unwrap();
        let cert = out.certificate.unwrap();
        if cert.status() == Some(&CertificateStatus::Issued) {
            return cert;
        }
        assert!(Instant::now() < deadline, "not issued in time: {:?}", cert.status());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).output().expect("openssl");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// The root from `carapace ca export-root`.
fn exported_root(server: &Server, dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_carapace"))
        .args(["ca", "export-root", "--data-dir"])
        .arg(server.data_path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pem = String::from_utf8(out.stdout).unwrap();
    assert!(pem.contains("BEGIN CERTIFICATE"));
    write(dir, "root.pem", &pem)
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_request_issue_get_verify_delete() {
    let server = Server::start(&["--dev"], &[("CARAPACE_ACM_DEV_AUTO_APPROVE_MS", "1500")]);
    let acm = server.acm(ALICE).await;
    let dir = tempfile::tempdir().unwrap();
    let root = exported_root(&server, dir.path());

    for (algorithm, shown) in [(None, "RSA-2048"), (Some(KeyAlgorithm::EcPrime256v1), "EC-prime256v1")] {
        let arn = acm
            .request_certificate()
            .domain_name("example.com")
            .subject_alternative_names("www.example.com")
            .subject_alternative_names("*.example.com")
            .subject_alternative_names("WWW.example.com")
            .validation_method(ValidationMethod::Dns)
            .set_key_algorithm(algorithm)
            .send()
            .await
            .unwrap()
            .certificate_arn
            .unwrap();
        assert!(arn.starts_with(&format!("arn:aws:acm:us-east-1:{ALICE}:certificate/")), "{arn}");

        // Pending: no serial, validity or issue time; empty usages; hyphenated algorithm.
        let pending = acm.describe_certificate().certificate_arn(&arn).send().await.unwrap().certificate.unwrap();
        assert_eq!(pending.status(), Some(&CertificateStatus::PendingValidation));
        assert!(pending.serial.is_none() && pending.not_before.is_none() && pending.not_after.is_none());
        assert!(pending.issued_at.is_none());
        assert!(pending.key_usages().is_empty() && pending.extended_key_usages().is_empty());
        assert_eq!(pending.key_algorithm().map(|k| k.as_str()), Some(shown));
        assert_eq!(pending.subject_alternative_names(), ["example.com", "www.example.com", "*.example.com"]);
        let dvos = pending.domain_validation_options();
        assert_eq!(dvos.len(), 3);
        let record = dvos[0].resource_record().unwrap();
        assert!(record.name().starts_with('_') && record.name().ends_with(".example.com."));
        assert!(record.value().ends_with(".acm-validations.carapace.internal."));
        // The wildcard uses its base domain's record.
        assert_eq!(dvos[2].resource_record().unwrap().name(), record.name());
        let err = acm.get_certificate().certificate_arn(&arn).send().await.unwrap_err().into_service_error();
        assert_eq!(err.code(), Some("RequestInProgressException"));
        assert_eq!(err.message(), Some(format!("Certificate {arn} in account {ALICE} not yet issued").as_str()));

        let issued = wait_issued(&acm, &arn).await;
        assert!(issued.serial.is_some() && issued.not_after.is_some() && issued.issued_at.is_some());
        let got = acm.get_certificate().certificate_arn(&arn).send().await.unwrap();
        let leaf = write(dir.path(), "leaf.pem", got.certificate().unwrap());
        let chain = write(dir.path(), "chain.pem", got.certificate_chain().unwrap());
        assert_eq!(got.certificate_chain().unwrap().matches("BEGIN CERTIFICATE").count(), 2);
        let (ok, text) = openssl(&["verify", "-CAfile", &root, "-untrusted", &chain, &leaf]);
        assert!(ok, "{text}");

        // The certificate's SANs, key usage and EKU match DescribeCertificate.
        let (_, ext) = openssl(&["x509", "-in", &leaf, "-noout", "-ext", "subjectAltName,keyUsage,extendedKeyUsage"]);
        for name in issued.subject_alternative_names() {
            assert!(ext.contains(&format!("DNS:{name}")), "{name} in {ext}");
        }
        let usages: Vec<&str> = issued.key_usages().iter().filter_map(|k| k.name()).map(|n| n.as_str()).collect();
        assert!(ext.contains("Digital Signature") && usages.contains(&"DIGITAL_SIGNATURE"));
        assert_eq!(ext.contains("Key Encipherment"), usages.contains(&"KEY_ENCIPHERMENT"));
        let ekus: Vec<&str> =
            issued.extended_key_usages().iter().filter_map(|e| e.name()).map(|n| n.as_str()).collect();
        assert!(ext.contains("TLS Web Server Authentication") && ekus == ["TLS_WEB_SERVER_AUTHENTICATION"]);
        // ACM's public certificates have carried serverAuth alone since 11 June 2025.
        assert!(!ext.contains("TLS Web Client Authentication"), "{ext}");
        let (_, serial) = openssl(&["x509", "-in", &leaf, "-noout", "-serial"]);
        let serial_hex = serial.trim().trim_start_matches("serial=").to_ascii_lowercase();
        assert!(
            serial_hex.ends_with(&issued.serial().unwrap().replace(':', "")),
            "{serial_hex} vs {:?}",
            issued.serial()
        );

        acm.delete_certificate().certificate_arn(&arn).send().await.unwrap();
        let err = acm.describe_certificate().certificate_arn(&arn).send().await.unwrap_err().into_service_error();
        assert_eq!(err.code(), Some("ResourceNotFoundException"));
        assert_eq!(err.message(), Some(format!("Could not find certificate {arn}.").as_str()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_and_account_isolation() {
    let server = Server::dev();
    let alice = server.acm(ALICE).await;
    let bob = server.acm(BOB).await;
    let arn = alice
        .request_certificate()
        .domain_name("isolated.example.com")
        .validation_method(ValidationMethod::Dns)
        .send()
        .await
        .unwrap()
        .certificate_arn
        .unwrap();

    // A malformed ARN fails model validation.
    let err = alice.describe_certificate().certificate_arn("not-an-arn-at-all-xx").send().await.unwrap_err();
    let err = err.into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));
    assert!(err.message().unwrap().contains("failed to satisfy constraint"), "{err:?}");
    // A well-formed ARN that is not a certificate.
    let err = alice
        .delete_certificate()
        .certificate_arn(format!("arn:aws:acm:us-east-1:{ALICE}:acme-endpoint/abc"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("InvalidArnException"));

    // Bob sees nothing of Alice's: not via her ARN, not via his own account in the ARN.
    for a in [arn.clone(), arn.replace(ALICE, BOB), arn.replace("us-east-1", "eu-west-1")] {
        let err = bob.describe_certificate().certificate_arn(&a).send().await.unwrap_err().into_service_error();
        assert_eq!(err.code(), Some("ResourceNotFoundException"), "{a}");
        assert_eq!(err.message(), Some(format!("Could not find certificate {a}.").as_str()));
        let err = bob.delete_certificate().certificate_arn(&a).send().await.unwrap_err().into_service_error();
        assert_eq!(err.code(), Some("ResourceNotFoundException"));
        let tag = Tag::builder().key("k").value("v").build().unwrap();
        let err =
            bob.add_tags_to_certificate().certificate_arn(&a).tags(tag).send().await.unwrap_err().into_service_error();
        assert_eq!(err.code(), Some("ResourceNotFoundException"));
    }
    let listed = bob.list_certificates().send().await.unwrap();
    assert!(listed.certificate_summary_list().is_empty());
    assert_eq!(alice.list_certificates().send().await.unwrap().certificate_summary_list().len(), 1);
    // Alice's certificate survived Bob's attempts.
    assert!(alice.list_tags_for_certificate().certificate_arn(&arn).send().await.unwrap().tags().is_empty());

    // Request errors.
    let err = alice
        .request_certificate()
        .domain_name("example.com")
        .key_algorithm(KeyAlgorithm::Rsa4096)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("InvalidParameterException"));
    let many: Vec<String> = (0..10).map(|i| format!("n{i}.example.com")).collect();
    let err = alice
        .request_certificate()
        .domain_name("example.com")
        .set_subject_alternative_names(Some(many))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("LimitExceededException"));
    let err = alice
        .request_certificate()
        .domain_name("www.example.com")
        .domain_validation_options(
            aws_sdk_acm::types::DomainValidationOption::builder()
                .domain_name("www.example.com")
                .validation_domain("example.org")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("InvalidDomainValidationOptionsException"));
    let err = alice
        .request_certificate()
        .domain_name("example.com")
        .tags(Tag::builder().key("aws:reserved").build().unwrap())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("InvalidTagException"));
    let err = alice
        .request_certificate()
        .domain_name(format!("{}.example.com", "a".repeat(60)))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));

    // Idempotency: same token, same ARN (even with another domain); other account: its own.
    let token = |c: &aws_sdk_acm::Client, domain: &str| {
        c.request_certificate().domain_name(domain).idempotency_token("tok_1").send()
    };
    let first = token(&alice, "idem.example.com").await.unwrap().certificate_arn.unwrap();
    assert_eq!(token(&alice, "idem.example.com").await.unwrap().certificate_arn.unwrap(), first);
    assert_eq!(token(&alice, "changed.example.com").await.unwrap().certificate_arn.unwrap(), first);
    assert_ne!(token(&bob, "idem.example.com").await.unwrap().certificate_arn.unwrap(), first);
}

fn self_signed(dir: &Path, name: &str, cn: &str, key_args: &[&str]) -> (String, String) {
    let key = dir.join(format!("{name}.key"));
    let cert = dir.join(format!("{name}.pem"));
    let mut args = vec!["req", "-x509", "-nodes", "-days", "30", "-subj"];
    let subj = format!("/CN={cn}");
    let san = format!("subjectAltName=DNS:{cn}");
    args.extend([
        subj.as_str(),
        "-addext",
        san.as_str(),
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
    ]);
    args.extend(key_args);
    let (ok, text) = openssl(&args);
    assert!(ok, "{text}");
    (std::fs::read_to_string(cert).unwrap(), std::fs::read_to_string(key).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn import_export_renew_revoke() {
    let server = Server::dev();
    let acm = server.acm(ALICE).await;
    let dir = tempfile::tempdir().unwrap();

    // Import every key algorithm ACM knows.
    let algorithms: [(&str, &[&str]); 7] = [
        ("RSA-1024", &["-newkey", "rsa:1024"]),
        ("RSA-2048", &["-newkey", "rsa:2048"]),
        ("RSA-3072", &["-newkey", "rsa:3072"]),
        ("RSA-4096", &["-newkey", "rsa:4096"]),
        ("EC-prime256v1", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        ("EC-secp384r1", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"]),
        ("EC-secp521r1", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"]),
    ];
    let mut first_arn = None;
    for (i, (shown, args)) in algorithms.iter().enumerate() {
        let (cert, key) = self_signed(dir.path(), &format!("k{i}"), &format!("imp{i}.example.com"), args);
        let arn = acm
            .import_certificate()
            .certificate(Blob::new(cert))
            .private_key(Blob::new(key))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{shown}: {:?}", e.into_service_error()))
            .certificate_arn
            .unwrap();
        let d = acm.describe_certificate().certificate_arn(&arn).send().await.unwrap().certificate.unwrap();
        assert_eq!(d.key_algorithm().map(|k| k.as_str()), Some(*shown));
        assert_eq!(d.r#type().map(|t| t.as_str()), Some("IMPORTED"));
        assert!(d.imported_at.is_some());
        assert!(d.domain_validation_options()[0].validation_status().is_none());
        first_arn.get_or_insert(arn);
    }
    let imported = first_arn.unwrap();

    // A key that does not match; an oversized key.
    let (cert_a, _) =
        self_signed(dir.path(), "a", "a.example.com", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let (_, key_b) =
        self_signed(dir.path(), "b", "b.example.com", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let err = acm
        .import_certificate()
        .certificate(Blob::new(cert_a.clone()))
        .private_key(Blob::new(key_b))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("ValidationException"), "{err:?}");
    // Re-import to the same ARN keeps it.
    let (cert_c, key_c) = self_signed(dir.path(), "c", "c.example.com", &["-newkey", "rsa:2048"]);
    let again = acm
        .import_certificate()
        .certificate_arn(&imported)
        .certificate(Blob::new(cert_c))
        .private_key(Blob::new(key_c))
        .send()
        .await
        .unwrap()
        .certificate_arn
        .unwrap();
    assert_eq!(again, imported);
    let d = acm.describe_certificate().certificate_arn(&imported).send().await.unwrap().certificate.unwrap();
    assert_eq!(d.domain_name(), Some("c.example.com"));

    // Export: only for certificates requested with Export=ENABLED.
    let err = acm
        .export_certificate()
        .certificate_arn(&imported)
        .passphrase(Blob::new("passphrase"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));
    let exportable = acm
        .request_certificate()
        .domain_name("export.example.com")
        .validation_method(ValidationMethod::Dns)
        .options(CertificateOptions::builder().export(CertificateExport::Enabled).build())
        .send()
        .await
        .unwrap()
        .certificate_arn
        .unwrap();
    wait_issued(&acm, &exportable).await;
    // Revoking before export is refused.
    let err = acm
        .revoke_certificate()
        .certificate_arn(&exportable)
        .revocation_reason(RevocationReason::KeyCompromise)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));
    // So is renewing before export: RenewCertificate renews exported certificates only.
    let err = acm.renew_certificate().certificate_arn(&exportable).send().await.unwrap_err().into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));
    assert!(err.message().unwrap().contains("is not eligible for renewal"), "{err:?}");
    let out = acm
        .export_certificate()
        .certificate_arn(&exportable)
        .passphrase(Blob::new("correct horse"))
        .send()
        .await
        .unwrap();
    let key = write(dir.path(), "exported.key", out.private_key().unwrap());
    assert!(out.private_key().unwrap().starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    let (ok, text) = openssl(&["pkey", "-in", &key, "-passin", "pass:correct horse", "-noout"]);
    assert!(ok, "{text}");
    let (ok, _) = openssl(&["pkey", "-in", &key, "-passin", "pass:wrong", "-noout"]);
    assert!(!ok, "a wrong passphrase must not open the key");
    // The exported key belongs to the certificate.
    let cert = write(dir.path(), "exported.pem", out.certificate().unwrap());
    let (_, cert_pub) = openssl(&["x509", "-in", &cert, "-noout", "-pubkey"]);
    let (_, key_pub) = openssl(&["pkey", "-in", &key, "-passin", "pass:correct horse", "-pubout"]);
    assert_eq!(cert_pub.trim(), key_pub.trim());
    let summaries = acm
        .list_certificates()
        .includes(
            aws_sdk_acm::types::Filters::builder()
                .set_key_types(Some(KeyAlgorithm::values().iter().map(|k| KeyAlgorithm::from(*k)).collect()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let summary =
        summaries.certificate_summary_list().iter().find(|s| s.certificate_arn() == Some(&exportable)).unwrap();
    assert_eq!(summary.exported(), Some(true));

    // The export imports back with its chain (the chain links); with a foreign chain it does not.
    let (ok, plain_key) = openssl(&["pkey", "-in", &key, "-passin", "pass:correct horse"]);
    assert!(ok, "{plain_key}");
    let chain = out.certificate_chain().unwrap().to_owned();
    let reimported = acm
        .import_certificate()
        .certificate(Blob::new(out.certificate().unwrap()))
        .private_key(Blob::new(plain_key.clone()))
        .certificate_chain(Blob::new(chain))
        .send()
        .await
        .unwrap()
        .certificate_arn
        .unwrap();
    let got = acm.get_certificate().certificate_arn(&reimported).send().await.unwrap();
    assert_eq!(got.certificate_chain().unwrap().matches("BEGIN CERTIFICATE").count(), 2);
    let err = acm
        .import_certificate()
        .certificate(Blob::new(out.certificate().unwrap()))
        .private_key(Blob::new(plain_key))
        .certificate_chain(Blob::new(cert_a.clone()))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));
    assert!(err.message().unwrap().contains("does not link"), "{err:?}");

    // Renew: a new leaf under the same ARN.
    let before = acm.describe_certificate().certificate_arn(&exportable).send().await.unwrap().certificate.unwrap();
    acm.renew_certificate().certificate_arn(&exportable).send().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = acm.describe_certificate().certificate_arn(&exportable).send().await.unwrap().certificate.unwrap();
        if now.serial() != before.serial() {
            assert_eq!(now.renewal_summary().unwrap().renewal_status().as_str(), "SUCCESS");
            assert_eq!(now.status(), Some(&CertificateStatus::Issued));
            break;
        }
        assert!(Instant::now() < deadline, "renewal did not complete");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let err = acm.renew_certificate().certificate_arn(&imported).send().await.unwrap_err().into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));

    // Revoke an exported certificate; the reason and time are recorded.
    let out = acm
        .revoke_certificate()
        .certificate_arn(&exportable)
        .revocation_reason(RevocationReason::KeyCompromise)
        .send()
        .await
        .unwrap();
    assert_eq!(out.certificate_arn(), Some(exportable.as_str()));
    let d = acm.describe_certificate().certificate_arn(&exportable).send().await.unwrap().certificate.unwrap();
    assert_eq!(d.status(), Some(&CertificateStatus::Revoked));
    assert_eq!(d.revocation_reason(), Some(&RevocationReason::KeyCompromise));
    assert!(d.revoked_at.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_options_and_account_configuration() {
    let server = Server::start(&["--dev"], &[("CARAPACE_ACM_DEV_AUTO_APPROVE_MS", "60000")]);
    let acm = server.acm(ALICE).await;
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build().unwrap();
    let arn = acm
        .request_certificate()
        .domain_name("tags.example.com")
        .subject_alternative_names("www.tags.example.com")
        .tags(tag("team", "edge"))
        .send()
        .await
        .unwrap()
        .certificate_arn
        .unwrap();

    acm.add_tags_to_certificate()
        .certificate_arn(&arn)
        .tags(tag("env", "test"))
        .tags(tag("team", "core"))
        .send()
        .await
        .unwrap();
    let tags = acm.list_tags_for_certificate().certificate_arn(&arn).send().await.unwrap();
    let pairs: Vec<(&str, Option<&str>)> = tags.tags().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(pairs, [("team", Some("core")), ("env", Some("test"))]);
    acm.remove_tags_from_certificate().certificate_arn(&arn).tags(tag("team", "wrong")).send().await.unwrap();
    assert_eq!(acm.list_tags_for_certificate().certificate_arn(&arn).send().await.unwrap().tags().len(), 2);
    acm.remove_tags_from_certificate()
        .certificate_arn(&arn)
        .tags(Tag::builder().key("team").build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(acm.list_tags_for_certificate().certificate_arn(&arn).send().await.unwrap().tags().len(), 1);
    let fifty: Vec<Tag> = (0..50).map(|i| tag(&format!("k{i}"), "v")).collect();
    let err = acm
        .add_tags_to_certificate()
        .certificate_arn(&arn)
        .set_tags(Some(fifty))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("TooManyTagsException"));

    // Email validation (the default): the approval addresses; resend checks its inputs.
    let d = acm.describe_certificate().certificate_arn(&arn).send().await.unwrap().certificate.unwrap();
    let dvo = &d.domain_validation_options()[1];
    assert_eq!(dvo.validation_method().map(|m| m.as_str()), Some("EMAIL"));
    assert!(dvo.validation_emails().contains(&"admin@tags.example.com".to_owned()), "{:?}", dvo.validation_emails());
    acm.resend_validation_email()
        .certificate_arn(&arn)
        .domain("www.tags.example.com")
        .validation_domain("tags.example.com")
        .send()
        .await
        .unwrap();
    let err = acm
        .resend_validation_email()
        .certificate_arn(&arn)
        .domain("other.example.com")
        .validation_domain("example.com")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("InvalidDomainValidationOptionsException"));

    // Options: Export cannot change; transparency logging can. (Switching the validation
    // method needs a newer SDK; the boto3 tests cover it.)
    let err = acm
        .update_certificate_options()
        .certificate_arn(&arn)
        .options(CertificateOptions::builder().export(CertificateExport::Enabled).build())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));
    acm.update_certificate_options()
        .certificate_arn(&arn)
        .options(
            CertificateOptions::builder()
                .certificate_transparency_logging_preference(
                    aws_sdk_acm::types::CertificateTransparencyLoggingPreference::Disabled,
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let d = acm.describe_certificate().certificate_arn(&arn).send().await.unwrap().certificate.unwrap();
    assert_eq!(
        d.options().unwrap().certificate_transparency_logging_preference().map(|p| p.as_str()),
        Some("DISABLED")
    );

    // Account configuration, with its idempotency token.
    let cfg = acm.get_account_configuration().send().await.unwrap();
    assert_eq!(cfg.expiry_events().unwrap().days_before_expiry(), Some(45));
    let events = |d| aws_sdk_acm::types::ExpiryEventsConfiguration::builder().days_before_expiry(d).build();
    acm.put_account_configuration().idempotency_token("t1").expiry_events(events(30)).send().await.unwrap();
    acm.put_account_configuration().idempotency_token("t1").expiry_events(events(10)).send().await.unwrap();
    let cfg = acm.get_account_configuration().send().await.unwrap();
    assert_eq!(cfg.expiry_events().unwrap().days_before_expiry(), Some(30), "a reused token changes nothing");
    let err = acm
        .put_account_configuration()
        .idempotency_token("t2")
        .expiry_events(events(90))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));
}
