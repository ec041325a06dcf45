//! Durable validation: `kill -9` the server while 200 certificates are mid-validation (some
//! being issued, the rest still waiting for their DNS records), publish the missing records
//! while it is down, restart it on the same data, and check every certificate is issued
//! exactly once.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_acm::types::{CertificateStatus, Filters, KeyAlgorithm, ValidationMethod};
use carapace_checks::testing::TestDns;
use common::Server;

const COUNT: usize = 200;

fn env(dns: &TestDns) -> Vec<(&'static str, String)> {
    vec![
        ("CARAPACE_ACM_NAME_SERVERS", format!("[\"{}\"]", dns.addr())),
        ("CARAPACE_ACM_VALIDATION_RETRY_MIN_MS", "200".into()),
        ("CARAPACE_ACM_VALIDATION_RETRY_MAX_MS", "1000".into()),
        ("CARAPACE_ACM_DNS_TIMEOUT_MS", "1000".into()),
        ("CARAPACE_ACM_THROTTLING", "false".into()),
        // Jobs that were running at the kill are taken up again 2 s after they started.
        ("CARAPACE_JOBS_LEASE_MS", "2000".into()),
    ]
}

/// ARN → (status, serial) for every certificate.
async fn snapshot(acm: &aws_sdk_acm::Client, arns: &[String]) -> HashMap<String, (CertificateStatus, Option<String>)> {
    let mut out = HashMap::new();
    for arn in arns {
        let c = acm.describe_certificate().certificate_arn(arn).send().await.unwrap().certificate.unwrap();
        out.insert(arn.clone(), (c.status().cloned().unwrap(), c.serial().map(str::to_owned)));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_mid_validation_issues_each_certificate_exactly_once() {
    let dns = TestDns::start(&["crash.test"]).await;
    let env = env(&dns);
    let server = Server::strict_in(None, &env);
    let acm = server.admin_acm().await;

    let mut arns = Vec::new();
    let mut records = Vec::new();
    for i in 0..COUNT {
        let arn = acm
            .request_certificate()
            .domain_name(format!("c{i}.crash.test"))
            .validation_method(ValidationMethod::Dns)
            .key_algorithm(KeyAlgorithm::EcPrime256v1)
            .send()
            .await
            .unwrap()
            .certificate_arn
            .unwrap();
        let c = acm.describe_certificate().certificate_arn(&arn).send().await.unwrap().certificate.unwrap();
        let rr = c.domain_validation_options()[0].resource_record().unwrap().clone();
        records.push((rr.name().to_owned(), rr.value().to_owned()));
        arns.push(arn);
    }
    // Half the records now: those certificates validate and issue while the server runs.
    for (name, value) in &records[..COUNT / 2] {
        dns.set_cname(name, value).await;
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let before = snapshot(&acm, &arns).await;
    let issued_before = before.values().filter(|(s, _)| *s == CertificateStatus::Issued).count();
    assert!(issued_before < COUNT, "killed before everything was done");

    let data_dir = server.kill9();
    for (name, value) in &records[COUNT / 2..] {
        dns.set_cname(name, value).await;
    }
    let server = Server::strict_in(Some(data_dir), &env);
    let acm = server.admin_acm().await;

    let deadline = Instant::now() + Duration::from_secs(90);
    let after = loop {
        let snap = snapshot(&acm, &arns).await;
        if snap.values().all(|(s, _)| *s == CertificateStatus::Issued) {
            break snap;
        }
        let pending = snap.values().filter(|(s, _)| *s != CertificateStatus::Issued).count();
        assert!(Instant::now() < deadline, "{pending} certificates not issued after restart");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Exactly once: what was issued before the kill kept its leaf, and nothing is re-issued
    // later (replayed jobs find their issuance done).
    for (arn, (status, serial)) in &before {
        if *status == CertificateStatus::Issued {
            assert_eq!(&after[arn].1, serial, "{arn} was issued again after the restart");
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(snapshot(&acm, &arns).await, after, "a certificate changed after being issued");
    // (ListCertificates shows only RSA keys unless asked, as in ACM.)
    let filters = Filters::builder().key_types(KeyAlgorithm::EcPrime256v1).build();
    let listed = acm.list_certificates().includes(filters).max_items(1000).send().await.unwrap();
    assert_eq!(listed.certificate_summary_list().len(), COUNT, "no duplicate certificates");
}
