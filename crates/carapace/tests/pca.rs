//! AWS Private CA through aws-sdk-rust against the real binary: a root that signs its own
//! certificate, a subordinate it signs, a leaf from an openssl request, verified by openssl;
//! the errors the SDK sees for a wrong signing algorithm and another account's CA.

mod common;

use std::process::Command;
use std::time::Duration;

use aws_sdk_acmpca::Client;
use aws_sdk_acmpca::error::ProvideErrorMetadata;
use aws_sdk_acmpca::primitives::Blob;
use aws_sdk_acmpca::types::{
    Asn1Subject, CertificateAuthorityConfiguration, CertificateAuthorityStatus, CertificateAuthorityType, KeyAlgorithm,
    SigningAlgorithm, Validity, ValidityPeriodType,
};
use common::Server;

const ALICE: &str = "111111111111";

async fn client(server: &Server, account: &str) -> Client {
    Client::new(&server.sdk_config(account, "dev-secret", "us-east-1").await)
}

fn config(key: KeyAlgorithm, signing: SigningAlgorithm, cn: &str) -> CertificateAuthorityConfiguration {
    CertificateAuthorityConfiguration::builder()
        .key_algorithm(key)
        .signing_algorithm(signing)
        .subject(Asn1Subject::builder().organization("Example Corp").common_name(cn).build())
        .build()
        .unwrap()
}

fn validity(value: i64, kind: ValidityPeriodType) -> Validity {
    Validity::builder().value(value).r#type(kind).build().unwrap()
}

/// Issues and waits for the certificate; its PEM.
async fn issue(pca: &Client, ca: &str, csr: &[u8], signing: SigningAlgorithm, template: &str, v: Validity) -> String {
    let arn = pca
        .issue_certificate()
        .certificate_authority_arn(ca)
        .csr(Blob::new(csr))
        .signing_algorithm(signing)
        .template_arn(format!("arn:aws:acm-pca:::template/{template}/V1"))
        .validity(v)
        .send()
        .await
        .unwrap()
        .certificate_arn
        .unwrap();
    for _ in 0..300 {
        match pca.get_certificate().certificate_authority_arn(ca).certificate_arn(&arn).send().await {
            Ok(out) => return out.certificate.unwrap(),
            Err(e) if e.code() == Some("RequestInProgressException") => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("GetCertificate: {e:?}"),
        }
    }
    panic!("{arn} was not issued");
}

async fn csr_of(pca: &Client, ca: &str) -> String {
    pca.get_certificate_authority_csr().certificate_authority_arn(ca).send().await.unwrap().csr.unwrap()
}

#[tokio::test]
async fn a_hierarchy_through_the_sdk_verifies_with_openssl() {
    let server = Server::dev();
    let pca = client(&server, ALICE).await;

    let root = pca
        .create_certificate_authority()
        .certificate_authority_type(CertificateAuthorityType::Root)
        .certificate_authority_configuration(config(
            KeyAlgorithm::EcSecp384r1,
            SigningAlgorithm::Sha384Withecdsa,
            "SDK Root",
        ))
        .send()
        .await
        .unwrap()
        .certificate_authority_arn
        .unwrap();
    let root_csr = csr_of(&pca, &root).await;
    let root_pem = issue(
        &pca,
        &root,
        root_csr.as_bytes(),
        SigningAlgorithm::Sha384Withecdsa,
        "RootCACertificate",
        validity(10, ValidityPeriodType::Years),
    )
    .await;
    pca.import_certificate_authority_certificate()
        .certificate_authority_arn(&root)
        .certificate(Blob::new(root_pem.as_bytes()))
        .send()
        .await
        .unwrap();

    let sub = pca
        .create_certificate_authority()
        .certificate_authority_type(CertificateAuthorityType::Subordinate)
        .certificate_authority_configuration(config(
            KeyAlgorithm::Rsa2048,
            SigningAlgorithm::Sha256Withrsa,
            "SDK Issuing",
        ))
        .send()
        .await
        .unwrap()
        .certificate_authority_arn
        .unwrap();
    let sub_csr = csr_of(&pca, &sub).await;
    let sub_pem = issue(
        &pca,
        &root,
        sub_csr.as_bytes(),
        SigningAlgorithm::Sha384Withecdsa,
        "SubordinateCACertificate_PathLen0",
        validity(5, ValidityPeriodType::Years),
    )
    .await;
    pca.import_certificate_authority_certificate()
        .certificate_authority_arn(&sub)
        .certificate(Blob::new(sub_pem.as_bytes()))
        .certificate_chain(Blob::new(root_pem.as_bytes()))
        .send()
        .await
        .unwrap();
    let described = pca.describe_certificate_authority().certificate_authority_arn(&sub).send().await.unwrap();
    assert_eq!(described.certificate_authority.unwrap().status, Some(CertificateAuthorityStatus::Active));

    let dir = tempfile::tempdir().unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").current_dir(dir.path()).args(args).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "leaf.key",
        "-subj",
        "/CN=sdk.internal",
        "-addext",
        "subjectAltName=DNS:sdk.internal",
        "-out",
        "leaf.csr",
    ]);
    let leaf_csr = std::fs::read(dir.path().join("leaf.csr")).unwrap();
    let days = validity(30, ValidityPeriodType::Days);
    let leaf =
        issue(&pca, &sub, &leaf_csr, SigningAlgorithm::Sha256Withrsa, "EndEntityServerAuthCertificate", days).await;
    for (name, pem) in [("root.pem", &root_pem), ("sub.pem", &sub_pem), ("leaf.pem", &leaf)] {
        std::fs::write(dir.path().join(name), pem).unwrap();
    }
    let out = openssl(&["verify", "-CAfile", "root.pem", "-untrusted", "sub.pem", "-purpose", "sslserver", "leaf.pem"]);
    assert!(out.contains("leaf.pem: OK"), "{out}");

    // What the SDK sees for a signing algorithm that does not fit the CA's key, and for
    // another account's CA.
    let err = pca
        .issue_certificate()
        .certificate_authority_arn(&sub)
        .csr(Blob::new(leaf_csr.clone()))
        .signing_algorithm(SigningAlgorithm::Sha256Withecdsa)
        .validity(validity(30, ValidityPeriodType::Days))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidArgsException"), "{err:?}");
    let bob = client(&server, "222222222222").await;
    let err = bob.describe_certificate_authority().certificate_authority_arn(&sub).send().await.unwrap_err();
    assert_eq!(err.code(), Some("AccessDeniedException"), "{err:?}");
}
