//! `carapace serve` runs the edge: a distribution created through aws-sdk-lightsail is
//! served over HTTPS by the edge (curl verifying the chain against Carapace's root), from a
//! real origin, cached as its behaviour says; attaching a certificate serves its domain;
//! a cache reset purges; the status reads `Deployed` once the edge applied the change; the
//! default domain keeps the edge's certificate after an attach (the README's edge
//! quickstart); certificate writes in other accounts cost the edge no snapshot update.

mod common;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Server, curl, origin};

async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_serves_caches_attaches_and_purges() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("SKIPPED: curl is not installed");
        return;
    }
    let (port, hits) = origin().await;
    let origins = format!("web=http://127.0.0.1:{port}");
    let server = Server::start(
        &["--dev"],
        &[("CARAPACE_LIGHTSAIL_ORIGINS", &origins), ("CARAPACE_ACM_DEV_AUTO_APPROVE_MS", "100")],
    );
    // `/health` reports where the edge listens.
    let health = common::http_get(&format!("{}/health", server.endpoint)).await;
    let health: serde_json::Value = serde_json::from_str(&health).expect("health JSON");
    assert_eq!(health["edge"]["https"].as_str(), server.edge.as_ref().map(|(https, _)| https.as_str()), "{health}");
    let c = aws_sdk_lightsail::Client::new(&server.sdk_config("111111111111", "dev-secret", "us-east-1").await);
    let domain = common::create_distribution(&c, "site").await;

    // The default domain is served with the edge's wildcard certificate, from the origin,
    // then from the cache.
    let (status, x_cache, body) = eventually("the edge serves the new distribution", || curl(&server, &domain)).await;
    assert_eq!((status, x_cache.as_str(), body.as_str()), (200, "miss from carapace", "hello from the origin"));
    let (_, x_cache, _) = curl(&server, &domain).expect("second request");
    assert_eq!(x_cache, "hit from carapace");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the second request came from the cache");
    let status = |c: &aws_sdk_lightsail::Client| {
        let c = c.clone();
        async move {
            let out = c.get_distributions().distribution_name("site").send().await.unwrap();
            out.distributions()[0].status().unwrap_or_default().to_owned()
        }
    };
    assert_eq!(status(&c).await, "Deployed");

    // A certificate of our own, attached: its domain is served, verified by name.
    c.create_certificate().certificate_name("www").domain_name("www.edge.example").send().await.unwrap();
    eventually_issued(&c, "www").await;
    assert!(curl(&server, "www.edge.example").is_none(), "an unknown name must get a TLS alert");
    c.attach_certificate_to_distribution().distribution_name("site").certificate_name("www").send().await.unwrap();
    let (status, _, body) = eventually("the attached domain is served", || curl(&server, "www.edge.example")).await;
    assert_eq!((status, body.as_str()), (200, "hello from the origin"));
    // The default domain keeps the edge's certificate (curl checks the name).
    let (status, _, _) = curl(&server, &domain).expect("the default domain after the attach");
    assert_eq!(status, 200);

    // A cache reset purges: the next request goes to the origin again.
    let before = hits.load(Ordering::SeqCst);
    c.reset_distribution_cache().distribution_name("site").send().await.unwrap();
    eventually("the reset purges the cache", || {
        let (_, x_cache, _) = curl(&server, "www.edge.example")?;
        (x_cache == "miss from carapace").then_some(())
    })
    .await;
    assert!(hits.load(Ordering::SeqCst) > before);
    let reset = c.get_distribution_latest_cache_reset().distribution_name("site").send().await.unwrap();
    assert_eq!(reset.status(), Some("Succeeded"));
}

/// The README's Lightsail and edge quickstarts, in order: a certificate for `example.com` and
/// `www.example.com`, a distribution, the attach, a settings update, then curl on the default
/// domain (the edge's `*.<edge.domain>` certificate, whatever is attached) and on the
/// attached name; every operation succeeds and the distribution reads `Deployed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_edge_quickstart_serves_the_default_domain_after_an_attach() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("SKIPPED: curl is not installed");
        return;
    }
    let (port, _) = origin().await;
    let origins = format!("web=http://127.0.0.1:{port}");
    let server = Server::start(
        &["--dev"],
        &[("CARAPACE_LIGHTSAIL_ORIGINS", &origins), ("CARAPACE_ACM_DEV_AUTO_APPROVE_MS", "100")],
    );
    let c = aws_sdk_lightsail::Client::new(&server.sdk_config("123456789012", "x", "us-east-1").await);
    c.create_certificate()
        .certificate_name("site-cert")
        .domain_name("example.com")
        .subject_alternative_names("www.example.com")
        .send()
        .await
        .unwrap();
    eventually_issued(&c, "site-cert").await;
    let domain = common::create_distribution(&c, "site").await;
    c.attach_certificate_to_distribution()
        .distribution_name("site")
        .certificate_name("site-cert")
        .send()
        .await
        .unwrap();
    let settings =
        aws_sdk_lightsail::types::CacheSettings::builder().default_ttl(300).minimum_ttl(0).maximum_ttl(3600).build();
    c.update_distribution().distribution_name("site").cache_behavior_settings(settings).send().await.unwrap();
    let deployed = || {
        let c = c.clone();
        async move {
            let out = c.get_distributions().distribution_name("site").send().await.unwrap();
            out.distributions()[0].status() == Some("Deployed")
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !deployed().await {
        assert!(Instant::now() < deadline, "site not Deployed within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (status, x_cache, body) = curl(&server, &domain).expect("the default domain verifies after the attach");
    assert_eq!((status, x_cache.as_str(), body.as_str()), (200, "miss from carapace", "hello from the origin"));
    let (_, x_cache, _) = curl(&server, &domain).expect("again");
    assert_eq!(x_cache, "hit from carapace");
    let (status, _, _) = curl(&server, "www.example.com").expect("the attached certificate's name");
    assert_eq!(status, 200);
    assert!(curl(&server, "example.com").is_some(), "the certificate's other name is served too");
    let ops = c.get_operations_for_resource().resource_name("site").send().await.unwrap();
    for op in ops.operations() {
        assert_eq!(op.status(), Some(&aws_sdk_lightsail::types::OperationStatus::Succeeded), "{op:?}");
    }
}

/// The edge is updated per distribution and per certificate: a burst of certificates
/// requested and issued in another account (record and material writes the edge's feed
/// announces) causes no full rebuild and no distribution update, while a distribution's own
/// change does cause one (`carapace_edge_snapshot_updates_total` on `/metrics`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_writes_in_other_accounts_cause_no_snapshot_update() {
    let (port, _) = origin().await;
    let origins = format!("web=http://127.0.0.1:{port}");
    let server = Server::start(
        &["--dev"],
        &[
            ("CARAPACE_LIGHTSAIL_ORIGINS", &origins),
            ("CARAPACE_ACM_DEV_AUTO_APPROVE_MS", "50"),
            ("CARAPACE_ACM_THROTTLING", "false"),
        ],
    );
    let c = aws_sdk_lightsail::Client::new(&server.sdk_config("111111111111", "x", "us-east-1").await);
    let sample = |kind: &str| format!("carapace_edge_snapshot_updates_total{{kind=\"{kind}\"}}");
    let updates = || async {
        (
            server.metric(&sample("full")).await,
            server.metric(&sample("distribution")).await,
            server.metric(&sample("certificate")).await,
        )
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while updates().await.0 < 1.0 {
        assert!(Instant::now() < deadline, "the start is a full rebuild");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    common::create_distribution(&c, "site").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while updates().await.1 < 1.0 {
        assert!(Instant::now() < deadline, "the new distribution was not applied as a distribution update");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = updates().await;

    let acm = server.acm("222222222222").await;
    let burst = 100;
    for i in 0..burst {
        acm.request_certificate()
            .domain_name(format!("c{i}.other.example"))
            .key_algorithm(aws_sdk_acm::types::KeyAlgorithm::EcPrime256v1)
            .send()
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let issued = acm
            .list_certificates()
            .certificate_statuses(aws_sdk_acm::types::CertificateStatus::Issued)
            .includes(
                aws_sdk_acm::types::Filters::builder()
                    .key_types(aws_sdk_acm::types::KeyAlgorithm::EcPrime256v1)
                    .build(),
            )
            .max_items(1000)
            .send()
            .await
            .unwrap();
        if issued.certificate_summary_list().len() == burst {
            break;
        }
        assert!(Instant::now() < deadline, "the burst was not issued within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The edge has seen every write by now (it reads the feed as the API writes); give a
    // late update the time to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(updates().await, before, "(full, distribution, certificate) updates after the burst");

    // A change of the distribution itself is one distribution update, not a rebuild.
    let change = aws_sdk_lightsail::types::CacheSettings::builder().default_ttl(60).build();
    c.update_distribution().distribution_name("site").cache_behavior_settings(change).send().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while updates().await.1 < before.1 + 1.0 {
        assert!(Instant::now() < deadline, "the update was not applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(updates().await.0, before.0, "no full rebuild for one distribution's change");
}

async fn eventually_issued(c: &aws_sdk_lightsail::Client, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = c.get_certificates().certificate_name(name).include_certificate_details(true).send().await.unwrap();
        let status = out.certificates()[0].certificate_detail().and_then(|d| d.status().cloned());
        if status == Some(aws_sdk_lightsail::types::CertificateStatus::Issued) {
            return;
        }
        assert!(Instant::now() < deadline, "{name} not issued");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `edge.origin_ca_file` must hold PEM certificates: a file without any stops the start with
/// a message naming the field (a valid one is exercised by the edge crate's HTTPS-origin test).
#[test]
fn an_origin_ca_file_without_certificates_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("not-a-ca.pem");
    std::fs::write(&bad, "hello").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_carapace"))
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("CARAPACE_EDGE_ORIGIN_CA_FILE", &bad)
        .env("CARAPACE_EDGE_HTTPS_LISTEN", "127.0.0.1:0")
        .env("CARAPACE_EDGE_HTTP_LISTEN", "127.0.0.1:0")
        .env("CARAPACE_ACM_APPROVAL_LISTEN", "127.0.0.1:0")
        .output()
        .expect("run carapace");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("edge.origin_ca_file"), "{stderr}");
}
