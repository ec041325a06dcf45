//! Two server processes sharing one PostgreSQL database, as a multi-node deployment runs:
//! a certificate requested on one node is issued by whichever node's worker claims the
//! job, and is read, listed and deleted through the other.
//!
//! Needs the PostgreSQL server at `CARAPACE_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`); fails, never skips, without it.
#![allow(clippy::disallowed_methods)] // a test or benchmark on the real clock

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

/// Polls `check` every 50 ms until it returns true, for at most `secs` seconds.
async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(secs), "{what}: not within {secs} s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

/// Whether node `acm` shows tag `key` on the certificate (served from its row cache once
/// read, so only the change feed can make it see another node's write).
async fn has_tag(acm: &aws_sdk_acm::Client, arn: &str, key: &str) -> bool {
    let tags = acm.list_tags_for_certificate().certificate_arn(arn).send().await.expect("list tags");
    tags.tags().iter().any(|t| t.key() == key)
}

/// The change feed across processes: a write on node A reaches node B's row cache at once;
/// when B's LISTEN connection is killed, B reconnects, resyncs, and converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_node_reaches_the_other_through_the_feed() {
    let db = Database::create().await;
    let url = db.url.clone();
    let a = Server::start(&["--dev"], &[("CARAPACE_DATABASE_URL", &url)]);
    let key_file = a.data_path().join("master.key");
    let key_file = key_file.to_str().expect("utf-8 path");
    let b = Server::start(&["--dev"], &[("CARAPACE_DATABASE_URL", &url), ("CARAPACE_MASTER_KEY_FILE", key_file)]);
    let (acm_a, acm_b) = (a.acm("123456789012").await, b.acm("123456789012").await);
    let arn = acm_a.request_certificate().domain_name("feed.example.com").send().await.expect("request");
    let arn = arn.certificate_arn.expect("arn");
    assert!(!has_tag(&acm_b, &arn, "first").await); // B reads (and caches) the row

    let tag = |k: &str| aws_sdk_acm::types::Tag::builder().key(k).value("v").build().expect("tag");
    acm_a.add_tags_to_certificate().certificate_arn(&arn).tags(tag("first")).send().await.expect("tag on A");
    let latency = eventually(10, "node B sees node A's write", || has_tag(&acm_b, &arn, "first")).await;
    println!("a write on node A visible on node B after {latency:?} (SDK round trips included)");

    // Kill B's LISTEN connection; write on A while B is without it.
    let resyncs = b.metric("carapace_feed_resyncs_total").await;
    let killed = db
        .admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&format!("carapace-feed {}", b.pid())],
        )
        .await
        .expect("terminate");
    assert_eq!(killed, 1, "node B's listening connection");
    acm_a.add_tags_to_certificate().certificate_arn(&arn).tags(tag("second")).send().await.expect("tag on A");
    eventually(20, "node B reconnects and resyncs", || async {
        b.metric("carapace_feed_resyncs_total").await > resyncs
    })
    .await;
    eventually(10, "node B converges", || has_tag(&acm_b, &arn, "second")).await;
    // And the restored connection carries new writes again.
    assert!(!has_tag(&acm_b, &arn, "third").await);
    acm_a.add_tags_to_certificate().certificate_arn(&arn).tags(tag("third")).send().await.expect("tag on A");
    eventually(10, "node B sees writes after reconnecting", || has_tag(&acm_b, &arn, "third")).await;

    drop((a, b));
    db.drop_now().await;
}

/// Lease tokens across processes: DNS lookups that hang (a name server that never answers)
/// keep a validation job running past its 1 s lease, so the other node claims it meanwhile.
/// The first node's late outcome must change nothing: it is told its lease was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_lease_expired_cannot_touch_the_new_claim() {
    let db = Database::create().await;
    let url = db.url.clone();
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let name_server = silent.local_addr().expect("addr").to_string();
    let name_servers = format!("[\"{name_server}\"]");
    let env = [
        ("CARAPACE_DATABASE_URL", url.as_str()),
        ("CARAPACE_ACM_NAME_SERVERS", name_servers.as_str()),
        ("CARAPACE_ACM_DNS_TIMEOUT_MS", "3000"),
        ("CARAPACE_JOBS_LEASE_MS", "1000"),
    ];
    let a = Server::start(&[], &env);
    let key_file = a.data_path().join("master.key");
    let key_file = key_file.to_str().expect("utf-8 path").to_owned();
    let mut env_b = env.to_vec();
    env_b.push(("CARAPACE_MASTER_KEY_FILE", &key_file));
    let b = Server::start(&[], &env_b);
    let (key, secret, _) = a.admin_credentials();
    let acm = aws_sdk_acm::Client::new(&a.sdk_config(&key, &secret, "us-east-1").await);
    acm.request_certificate()
        .domain_name("lease.example.com")
        .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
        .send()
        .await
        .expect("request");

    let lost = || async {
        a.metric("carapace_jobs_total{service=\"acm\",outcome=\"lease_lost\"}").await
            + b.metric("carapace_jobs_total{service=\"acm\",outcome=\"lease_lost\"}").await
    };
    eventually(60, "a worker is told its lease was lost", || async { lost().await >= 1.0 }).await;
    // The job survives (a stale finish would have deleted it): it is still queued, live.
    let queued: i64 = db_client(&url)
        .await
        .query_one("SELECT COUNT(*) FROM jobs WHERE kind = 'acm.validate' AND dead_at_ms IS NULL", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(queued, 1, "the validation job must still be queued");
    drop(silent);
    drop((a, b));
    db.drop_now().await;
}

/// A client of the test database itself.
async fn db_client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

/// `carapace edge` twice beside one API node, all on one PostgreSQL database: a distribution
/// created through the API is served by both edges; a configuration change reaches both
/// (and reads `Deployed` only once both applied it); a cache reset purges both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_edges_on_one_database_apply_changes_and_purges() {
    if std::process::Command::new("curl").arg("--version").output().is_err() {
        eprintln!("SKIPPED: curl is not installed");
        return;
    }
    let db = Database::create().await;
    let url = db.url.clone();
    let (port, hits) = common::origin().await;
    let origins = format!("web=http://127.0.0.1:{port}");
    let api = Server::start(
        &["--dev"],
        &[
            ("CARAPACE_DATABASE_URL", &url),
            ("CARAPACE_EDGE_ENABLED", "false"),
            ("CARAPACE_LIGHTSAIL_ORIGINS", &origins),
        ],
    );
    assert!(api.edge.is_none(), "the API node runs no edge");
    let key_file = api.data_path().join("master.key");
    let key_file = key_file.to_str().expect("utf-8 path");
    let edge_env = [("CARAPACE_DATABASE_URL", url.as_str()), ("CARAPACE_MASTER_KEY_FILE", key_file)];
    let edges = [Server::edge_only(&[], &edge_env), Server::edge_only(&[], &edge_env)];
    let c = aws_sdk_lightsail::Client::new(&api.sdk_config("111111111111", "dev-secret", "us-east-1").await);
    let domain = common::create_distribution(&c, "shared").await;
    let status = || {
        let c = c.clone();
        async move {
            let out = c.get_distributions().distribution_name("shared").send().await.unwrap();
            out.distributions()[0].status().unwrap_or_default().to_owned()
        }
    };
    let until = |what: &'static str, probe: &dyn Fn(&Server) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        for edge in &edges {
            while !probe(edge) {
                assert!(Instant::now() < deadline, "{what}: not within 30 s");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };

    // Both edges serve it, each filling its own cache from the origin once.
    until("both edges serve the distribution", &|e| common::curl(e, &domain).is_some_and(|r| r.0 == 200));
    until("both edges cache it", &|e| common::curl(e, &domain).is_some_and(|r| r.1 == "hit from carapace"));
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 2, "one origin fetch per edge");
    assert_eq!(status().await, "Deployed");

    // A configuration change reaches both.
    c.update_distribution().distribution_name("shared").is_enabled(false).send().await.unwrap();
    until("both edges apply isEnabled=false", &|e| common::curl(e, &domain).is_some_and(|r| r.0 == 403));
    let deadline = Instant::now() + Duration::from_secs(30);
    while status().await != "Deployed" {
        assert!(Instant::now() < deadline, "not Deployed after both edges applied the change");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.update_distribution().distribution_name("shared").is_enabled(true).send().await.unwrap();
    until("both edges serve again", &|e| common::curl(e, &domain).is_some_and(|r| r.1 == "hit from carapace"));

    // Each edge alone exports its counters on its admin port.
    for edge in &edges {
        let health = common::http_get(&format!("{}/health", edge.endpoint)).await;
        assert!(health.contains(r#""status":"ok""#), "{health}");
        let text = common::http_get(&format!("{}/metrics", edge.endpoint)).await;
        let served: f64 = text
            .lines()
            .find(|l| l.starts_with("carapace_edge_requests_total{distribution="))
            .and_then(|l| l.split_whitespace().last()?.parse().ok())
            .unwrap_or_else(|| panic!("no per-distribution counter:\n{text}"));
        assert!(served >= 2.0, "{text}");
    }

    // A cache reset purges both.
    c.reset_distribution_cache().distribution_name("shared").send().await.unwrap();
    until("both edges purge", &|e| common::curl(e, &domain).is_some_and(|r| r.1 == "miss from carapace"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reset = c.get_distribution_latest_cache_reset().distribution_name("shared").send().await.unwrap();
        if reset.status() == Some("Succeeded") {
            break;
        }
        assert!(Instant::now() < deadline, "the reset never read Succeeded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(edges);
    drop(api);
    db.drop_now().await;
}
