//! `carapace serve` runs the edge: a distribution created through aws-sdk-lightsail is
//! served over HTTPS by the edge (curl verifying the chain against Carapace's root), from a
//! real origin, cached as its behaviour says; attaching a certificate serves its domain;
//! a cache reset purges; the status reads `Deployed` once the edge applied the change.

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
