//! Two server processes sharing one PostgreSQL database, as a multi-node deployment runs:
//! a certificate requested on one node is issued by whichever node's worker claims the
//! job, and is read, listed and deleted through the other.
//!
//! Needs the PostgreSQL server at `CARAPACE_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`); fails, never skips, without it.

mod common;

use std::time::{Duration, Instant};

use common::Server;

const URL_ENV: &str = "CARAPACE_TEST_POSTGRES_URL";

/// A fresh database on the test server, dropped at the end.
struct Database {
    admin: tokio_postgres::Client,
    name: String,
    url: String,
}

impl Database {
    async fn create() -> Self {
        let base = std::env::var(URL_ENV).unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let (admin, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot reach the PostgreSQL test server at {base} (set {URL_ENV}): {e}"));
        tokio::spawn(conn);
        let name = format!("carapace_nodes_{:016x}", rand_u64());
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create database");
        let prefix = base.split('?').next().and_then(|b| b.rsplit_once('/')).map(|(p, _)| p).expect("URL form");
        Self { admin, url: format!("{prefix}/{name}"), name }
    }

    async fn drop_now(self) {
        let _ = self.admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await;
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_certificates_through_postgres() {
    let db = Database::create().await;
    let url = db.url.clone();
    let a = Server::start(&["--dev"], &[("CARAPACE_DATABASE_URL", &url)]);
    // Every node must open the CA with the same master key.
    let key_file = a.data_path().join("master.key");
    let key_file = key_file.to_str().expect("utf-8 path");
    let b = Server::start(&["--dev"], &[("CARAPACE_DATABASE_URL", &url), ("CARAPACE_MASTER_KEY_FILE", key_file)]);
    let (acm_a, acm_b) = (a.acm("123456789012").await, b.acm("123456789012").await);

    let arn = acm_a
        .request_certificate()
        .domain_name("nodes.example.com")
        .send()
        .await
        .expect("request on node A")
        .certificate_arn
        .expect("arn");

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let detail = acm_b.describe_certificate().certificate_arn(&arn).send().await.expect("describe on node B");
        let status = detail.certificate.and_then(|c| c.status).expect("status");
        if status == aws_sdk_acm::types::CertificateStatus::Issued {
            break;
        }
        assert!(Instant::now() < deadline, "not issued within 30 s: {status:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let from_a = acm_a.get_certificate().certificate_arn(&arn).send().await.expect("get on node A");
    let from_b = acm_b.get_certificate().certificate_arn(&arn).send().await.expect("get on node B");
    assert!(from_b.certificate().is_some_and(|c| c.starts_with("-----BEGIN CERTIFICATE-----")));
    assert_eq!(from_a.certificate(), from_b.certificate(), "one certificate, whichever node answers");
    assert_eq!(from_a.certificate_chain(), from_b.certificate_chain(), "both nodes use the one CA");

    let listed = acm_b.list_certificates().send().await.expect("list on node B");
    assert!(listed.certificate_summary_list().iter().any(|s| s.certificate_arn() == Some(arn.as_str())));

    acm_b.delete_certificate().certificate_arn(&arn).send().await.expect("delete on node B");
    let err = acm_a.describe_certificate().certificate_arn(&arn).send().await.expect_err("deleted on node B");
    let code = err.into_service_error().meta().code().map(str::to_owned);
    assert_eq!(code.as_deref(), Some("ResourceNotFoundException"));

    drop((a, b));
    db.drop_now().await;
}
