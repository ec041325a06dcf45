//! Viewer TLS and listeners: SNI, security policies (rustls, openssl s_client, curl), ALPN,
//! the HTTP redirect, HTTPS origins, certificate swaps under load, hostile clients.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use carapace_edge::{Distribution, EdgeConfig, ManualClock, ProtocolPolicy, Snapshot, TlsPolicy};
use carapace_kernel::ca::KeyAlgorithm;
use common::*;
use http::{Method, StatusCode, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct World {
    pki: Pki,
    clock: Arc<ManualClock>,
    origin: Arc<Origin>,
}

async fn world() -> World {
    let origin = Origin::start().await;
    origin.route("/page", 200, &[("cache-control", "max-age=60")], "page");
    World { pki: Pki::new(), clock: Arc::new(ManualClock::new()), origin }
}

/// The test CA's root in a fresh directory, for command-line clients.
fn root_file(pki: &Pki, tag: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("carapace-edge-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = dir.join("root.pem");
    std::fs::write(&root, pki.root_pem()).unwrap();
    (dir, root)
}

fn has(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok() || Command::new(tool).arg("version").output().is_ok()
}

#[tokio::test]
async fn sni_picks_each_distribution_certificate_and_unknown_names_get_an_alert() {
    let w = world().await;
    let ec = w.pki.leaf(&["a.test"], KeyAlgorithm::EcPrime256v1);
    let rsa = w.pki.leaf(&["b.test", "www.b.test", "*.shop.test"], KeyAlgorithm::Rsa2048);
    let a = dist("a", "a.test", &w.origin, &ec);
    let mut b = dist("b", "b.test", &w.origin, &rsa);
    b.alternative_domain_names = vec!["www.b.test".into(), "*.shop.test".into()];
    let edge = start_edge(config(&w.pki, &w.clock), Snapshot::new([a, b]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &w.pki);

    for (name, leaf) in [("a.test", &ec), ("b.test", &rsa), ("WWW.B.TEST", &rsa), ("eu.shop.test", &rsa)] {
        let (mut conn, cert) = viewer.connect(name, false).await.unwrap();
        assert_eq!(cert, leaf.leaf_der, "{name}");
        let res = conn.send(name, Method::GET, "/page", &[], "").await.unwrap();
        assert_eq!(res.text(), "page", "{name}");
    }
    for name in ["unknown.test", "a.b.shop.test", "127.0.0.1"] {
        let err = viewer.tls(name, &[]).await.expect_err(name);
        assert!(err.to_string().contains("fatal alert"), "{name}: {err}");
    }
    // The certificate chosen for one name does not open another distribution.
    let (mut conn, _) = viewer.connect("a.test", false).await.unwrap();
    let res = conn.send("a.test", Method::GET, "/page", &[("host", "b.test")], "").await.unwrap();
    assert_eq!(res.status, StatusCode::MISDIRECTED_REQUEST);
    edge.stop().await;
}

#[tokio::test]
async fn http_redirects_to_https_and_alpn_selects_h2() {
    let w = world().await;
    let leaf = w.pki.leaf(&["a.test"], KeyAlgorithm::EcPrime256v1);
    let edge =
        start_edge(config(&w.pki, &w.clock), Snapshot::new([dist("a", "a.test", &w.origin, &leaf)]).unwrap()).await;

    let http_addr = edge.http;
    let raw = |host: &'static str| async move {
        let mut tcp = tokio::net::TcpStream::connect(http_addr).await.unwrap();
        tcp.write_all(format!("GET /x?y=1 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        tcp.read_to_string(&mut out).await.unwrap();
        out
    };
    let redirect = raw("a.test").await;
    assert!(redirect.starts_with("HTTP/1.1 301"), "{redirect}");
    let location = format!("location: https://a.test:{}/x?y=1\r\n", edge.https.port());
    assert!(redirect.to_ascii_lowercase().contains(&location), "{redirect}");
    assert!(raw("evil.test").await.starts_with("HTTP/1.1 403"), "no open redirect for unknown hosts");

    let viewer = Viewer::new(edge.https, &w.pki);
    let (mut h2, _) = viewer.connect("a.test", true).await.unwrap();
    for _ in 0..2 {
        let res = h2.send("a.test", Method::GET, "/page", &[], "").await.unwrap();
        assert_eq!((res.version, res.text().as_str()), (Version::HTTP_2, "page"));
    }
    let (mut h1, _) = viewer.connect("a.test", false).await.unwrap();
    assert_eq!(h1.send("a.test", Method::GET, "/page", &[], "").await.unwrap().version, Version::HTTP_11);
    edge.stop().await;
}

#[tokio::test]
async fn https_origins_are_verified_against_the_extra_ca() {
    let w = world().await;
    let origin_leaf =
        w.pki.leaf_with_ips(&["origin.test"], &["127.0.0.1".parse().unwrap()], KeyAlgorithm::EcPrime256v1);
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            origin_leaf.key.cert.clone(),
            rustls::pki_types::PrivateKeyDer::try_from(pem_key_der(&origin_leaf.key_pem)).unwrap(),
        )
        .unwrap();
    let tls_origin = Origin::start_tls(server).await;
    tls_origin.route("/secure", 200, &[], "over tls");
    let leaf = w.pki.leaf(&["a.test"], KeyAlgorithm::EcPrime256v1);
    let mut a = Distribution::new(
        "a",
        "a.test",
        carapace_edge::Origin::new(format!("http://{}", tls_origin.addr).parse().unwrap(), ProtocolPolicy::HttpsOnly),
        leaf.key.clone(),
    );
    a.default_cache_behavior = carapace_edge::Behavior::DontCache;
    let snapshot = || Snapshot::new([a.clone()]).unwrap();

    let trusted = start_edge(config(&w.pki, &w.clock), snapshot()).await;
    let res = Viewer::new(trusted.https, &w.pki).get("a.test", "/secure").await;
    assert_eq!((res.status, res.text().as_str()), (StatusCode::OK, "over tls"));
    trusted.stop().await;

    let untrusting = EdgeConfig { origin_roots: vec![], ..config(&w.pki, &w.clock) };
    let untrusting = start_edge(untrusting, snapshot()).await;
    assert_eq!(Viewer::new(untrusting.https, &w.pki).get("a.test", "/secure").await.status, StatusCode::BAD_GATEWAY);
    untrusting.stop().await;
}

fn pem_key_der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap().secret_der().to_vec()
}

/// Attach, renew and detach swapped while viewers keep requesting: no request fails, and new
/// handshakes see the new certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_swaps_under_load_fail_no_request() {
    let w = world().await;
    let leaves: Vec<Leaf> = (0..4).map(|_| w.pki.leaf(&["a.test"], KeyAlgorithm::EcPrime256v1)).collect();
    let snapshot = |leaf: &Leaf| Snapshot::new([dist("a", "a.test", &w.origin, leaf)]).unwrap();
    let edge = start_edge(config(&w.pki, &w.clock), snapshot(&leaves[0])).await;
    let viewer = Viewer::new(edge.https, &w.pki);

    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (viewer, done, failures) = (viewer.clone(), done.clone(), failures.clone());
        load.push(tokio::spawn(async move {
            // Half the workers keep one connection alive, half open a new one per request.
            let mut kept = None;
            for _ in 0..60 {
                let result = if worker % 2 == 0 {
                    if kept.is_none() {
                        kept = viewer.connect("a.test", worker == 2).await.ok().map(|(c, _)| c);
                    }
                    match kept.as_mut() {
                        Some(conn) => conn.send("a.test", Method::GET, "/page", &[], "").await,
                        None => Err(std::io::Error::other("connect failed")),
                    }
                } else {
                    viewer.request("a.test", Method::GET, "/page", &[], "").await
                };
                match result {
                    Ok(res) if res.status == StatusCode::OK && res.body == "page" => {}
                    _ => {
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for round in 1..=11 {
        while done.load(Ordering::SeqCst) < 20 * round && !load.iter().all(|t| t.is_finished()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        edge.edge.swap(snapshot(&leaves[round % 4]));
    }
    for task in load {
        task.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::SeqCst), 0);
    assert_eq!(done.load(Ordering::SeqCst), 240);
    let last = &leaves[11 % 4];
    let (_, cert) = viewer.connect("a.test", false).await.unwrap();
    assert_eq!(cert, last.leaf_der, "new handshakes get the swapped certificate");
    edge.stop().await;
}

/// CloudFront's security policies as openssl sees them. rustls serves TLS 1.2 and 1.3 with
/// forward-secret AEAD suites only, so TLS 1.1 and CBC suites are refused for every policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_sees_the_tls_floor_and_sni() {
    if !has("openssl") {
        eprintln!("openssl not installed: skipped");
        return;
    }
    let w = world().await;
    let leaf = w.pki.leaf(&["a.test", "old.test"], KeyAlgorithm::Rsa2048);
    let a = dist("a", "a.test", &w.origin, &leaf);
    let mut old = dist("old", "old.test", &w.origin, &leaf);
    old.viewer_minimum_tls_protocol_version = TlsPolicy::Tls11_2016;
    let edge = start_edge(config(&w.pki, &w.clock), Snapshot::new([a, old]).unwrap()).await;
    let (dir, root) = root_file(&w.pki, "openssl");
    let port = edge.https.port();

    let s_client = move |name: &str, args: &[&str]| {
        let out = Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-servername", name, "-CAfile"])
            .arg(&root)
            .args(["-verify_return_error", "-brief"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    };
    let run = |name: &'static str, args: &'static [&'static str]| {
        let s_client = s_client.clone();
        tokio::task::spawn_blocking(move || s_client(name, args))
    };
    for name in ["a.test", "old.test"] {
        let (ok, text) = run(name, &["-tls1_3"]).await.unwrap();
        assert!(ok && text.contains("TLSv1.3") && text.contains("Verification: OK"), "{name} TLS 1.3: {text}");
        let (ok, text) = run(name, &["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"]).await.unwrap();
        assert!(ok && text.contains("TLSv1.2"), "{name} TLS 1.2 GCM: {text}");
        let (ok, text) = run(name, &["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA256"]).await.unwrap();
        assert!(!ok, "{name} CBC suite refused: {text}");
        let (ok, text) = run(name, &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]).await.unwrap();
        assert!(!ok, "{name} TLS 1.1 refused: {text}");
    }
    let (ok, text) = run("unknown.test", &[]).await.unwrap();
    assert!(!ok && text.contains("alert"), "unknown SNI: {text}");
    std::fs::remove_dir_all(&dir).ok();
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_resolve_verifies_the_chain_over_h1_and_h2() {
    if !has("curl") {
        eprintln!("curl not installed: skipped");
        return;
    }
    let w = world().await;
    let leaf = w.pki.leaf(&["www.example.test"], KeyAlgorithm::EcPrime256v1);
    let edge =
        start_edge(config(&w.pki, &w.clock), Snapshot::new([dist("a", "www.example.test", &w.origin, &leaf)]).unwrap())
            .await;
    let (dir, root) = root_file(&w.pki, "curl");
    let port = edge.https.port();
    for flag in ["--http1.1", "--http2"] {
        let root = root.clone();
        let out = tokio::task::spawn_blocking(move || {
            Command::new("curl")
                .args(["-sS", "-i", flag, "--resolve", &format!("www.example.test:{port}:127.0.0.1"), "--cacert"])
                .arg(&root)
                .arg(format!("https://www.example.test:{port}/page"))
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
        assert!(out.status.success(), "{flag}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("x-cache:") && text.ends_with("page"), "{flag}: {text}");
        assert!(text.starts_with(if flag == "--http2" { "http/2 200" } else { "http/1.1 200" }), "{flag}: {text}");
    }
    std::fs::remove_dir_all(&dir).ok();
    edge.stop().await;
}

/// Oversized heads and header floods get 431; a client that never finishes its headers is
/// disconnected after the header timeout, an idle keep-alive one after the idle timeout.
#[tokio::test]
async fn hostile_requests_are_bounded() {
    let w = world().await;
    let leaf = w.pki.leaf(&["a.test"], KeyAlgorithm::EcPrime256v1);
    let limits =
        carapace_net::Limits { header_timeout_ms: 1_000, idle_timeout_ms: 1_000, ..EdgeConfig::default_limits() };
    let config = EdgeConfig { limits, ..config(&w.pki, &w.clock) };
    let edge = start_edge(config, Snapshot::new([dist("a", "a.test", &w.origin, &leaf)]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &w.pki);

    let exchange = |request: Vec<u8>| {
        let viewer = viewer.clone();
        async move {
            let mut tls = viewer.tls("a.test", &[b"http/1.1"]).await.unwrap();
            tls.write_all(&request).await.unwrap();
            let mut out = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(30), tls.read_to_end(&mut out)).await;
            assert!(read.is_ok(), "the edge did not close the connection");
            String::from_utf8_lossy(&out).into_owned()
        }
    };
    let mut flood = b"GET /page HTTP/1.1\r\nHost: a.test\r\n".to_vec();
    for i in 0..200 {
        flood.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
    }
    flood.extend_from_slice(b"\r\n");
    assert!(exchange(flood).await.starts_with("HTTP/1.1 431"));
    let big = format!("GET /page HTTP/1.1\r\nHost: a.test\r\nx-big: {}\r\n\r\n", "a".repeat(64 * 1024));
    assert!(exchange(big.into_bytes()).await.starts_with("HTTP/1.1 431"));

    // Slowloris: half a request head, then silence; the edge closes the connection.
    let slow = exchange(b"GET /page HTTP/1.1\r\nHost: a.te".to_vec()).await;
    assert!(!slow.contains("200 OK"), "{slow}");
    // An idle keep-alive connection: answered, then closed once no request has come for the
    // idle timeout.
    let idle = exchange(b"GET /page HTTP/1.1\r\nHost: a.test\r\n\r\n".to_vec()).await;
    assert!(idle.starts_with("HTTP/1.1 200"), "{idle}");
    // The edge still serves others.
    assert_eq!(viewer.get("a.test", "/page").await.status, StatusCode::OK);
    edge.stop().await;
}

/// HTTP/2 rapid reset (CVE-2023-44487): a burst of streams opened and cancelled at once. The
/// edge may close that connection (GOAWAY), but keeps serving everyone else.
#[tokio::test]
async fn http2_stream_resets_do_not_take_the_edge_down() {
    let w = world().await;
    let leaf = w.pki.leaf(&["a.test"], KeyAlgorithm::EcPrime256v1);
    let edge =
        start_edge(config(&w.pki, &w.clock), Snapshot::new([dist("a", "a.test", &w.origin, &leaf)]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &w.pki);
    let (conn, _) = viewer.connect("a.test", true).await.unwrap();
    let Conn::H2(mut send) = conn else { unreachable!() };
    let mut cancelled = 0;
    for _ in 0..2000 {
        if send.ready().await.is_err() {
            break; // the edge sent GOAWAY
        }
        let req =
            http::Request::get("https://a.test/page").body(http_body_util::Full::new(bytes::Bytes::new())).unwrap();
        let pending = send.send_request(req);
        // Let the HEADERS frame go out, then cancel the stream (RST_STREAM).
        let _ = tokio::time::timeout(Duration::from_micros(1), pending).await;
        cancelled += 1;
    }
    assert!(cancelled > 0);
    let res = viewer.get("a.test", "/page").await;
    assert_eq!((res.status, res.text().as_str()), (StatusCode::OK, "page"));
    edge.stop().await;
}

/// CloudFront's rule: the default domain (and the Lightsail subdomain) keep the edge's own
/// certificate once a certificate is attached; the attached one serves the alternative names.
/// Attaching and detaching are per-distribution updates: counters carry over and the other
/// distribution is the same one, not a rebuilt copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_domain_keeps_the_edge_certificate_after_an_attach() {
    let w = world().await;
    let wildcard = w.pki.leaf(&["*.cdn.test", "cdn.test"], KeyAlgorithm::EcPrime256v1);
    let own = w.pki.leaf(&["www.example.test"], KeyAlgorithm::EcPrime256v1);
    let mut site = dist("site", "d1234567890abc.cdn.test", &w.origin, &wildcard);
    site.subdomain = Some("site.cdn.test".into());
    let other = dist("other", "d0987654321xyz.cdn.test", &w.origin, &wildcard);
    let edge = start_edge(config(&w.pki, &w.clock), Snapshot::new([site.clone(), other]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &w.pki);
    let res = viewer.get("d1234567890abc.cdn.test", "/page").await;
    assert_eq!(res.status, StatusCode::OK);
    let unchanged = edge.edge.snapshot().get("other").unwrap().clone();

    // AttachCertificateToDistribution.
    site.alternative_domain_names = vec!["www.example.test".into()];
    site.certificate = Some(own.key.clone());
    let rejected = edge.edge.update([carapace_edge::SnapshotChange::upsert(site.clone())]);
    assert!(rejected.is_empty(), "{rejected:?}");
    for (name, leaf) in [
        ("d1234567890abc.cdn.test", &wildcard),
        ("site.cdn.test", &wildcard),
        ("d0987654321xyz.cdn.test", &wildcard),
        ("www.example.test", &own),
    ] {
        // The viewer verifies the chain and the name: a mismatch fails the handshake.
        let (mut conn, cert) = viewer.connect(name, false).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(cert, leaf.leaf_der, "{name}");
        assert_eq!(conn.send(name, Method::GET, "/page", &[], "").await.unwrap().status, StatusCode::OK, "{name}");
    }
    assert!(Arc::ptr_eq(edge.edge.snapshot().get("other").unwrap(), &unchanged), "the other distribution is shared");
    let requests = |edge: &carapace_edge::Edge| {
        edge.counters().into_iter().find(|(id, _)| id == "site").map(|(_, c)| c.requests).unwrap()
    };
    assert_eq!(requests(&edge.edge), 4, "counters carry over the update (one before, three after)");

    // openssl agrees, verifying each name against the certificate it gets.
    if has("openssl") {
        let (dir, root) = root_file(&w.pki, "attach");
        let port = edge.https.port();
        for name in ["d1234567890abc.cdn.test", "www.example.test"] {
            let root = root.clone();
            let out = tokio::task::spawn_blocking(move || {
                Command::new("openssl")
                    .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-servername", name])
                    .args(["-verify_hostname", name, "-CAfile"])
                    .arg(&root)
                    .args(["-verify_return_error", "-brief"])
                    .stdin(std::process::Stdio::null())
                    .output()
                    .unwrap()
            })
            .await
            .unwrap();
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success() && text.contains("Verification: OK"), "{name}: {text}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    // DetachCertificateFromDistribution: the alternative name is gone, the default stays.
    site.alternative_domain_names.clear();
    site.certificate = None;
    assert!(edge.edge.update([carapace_edge::SnapshotChange::upsert(site)]).is_empty());
    assert!(viewer.tls("www.example.test", &[]).await.is_err(), "a detached name gets an alert");
    let (_, cert) = viewer.connect("d1234567890abc.cdn.test", false).await.unwrap();
    assert_eq!(cert, wildcard.leaf_der);
    edge.stop().await;
}

/// A distribution the edge cannot serve is refused alone: the others keep serving, and a
/// refused update keeps the distribution's previous version.
#[tokio::test]
async fn a_refused_update_keeps_the_previous_version_and_the_others() {
    let w = world().await;
    let leaf = w.pki.leaf(&["a.test", "b.test"], KeyAlgorithm::EcPrime256v1);
    let a = dist("a", "a.test", &w.origin, &leaf);
    let edge = start_edge(config(&w.pki, &w.clock), Snapshot::new([a]).unwrap()).await;
    let mut b = dist("b", "b.test", &w.origin, &leaf);
    b.alternative_domain_names = vec!["a.test".into()];
    let mut bad_a = dist("a", "a.test", &w.origin, &leaf);
    bad_a.origin.url = "http://origin.test/?q".parse().unwrap();
    let rejected =
        edge.edge.update([carapace_edge::SnapshotChange::upsert(b), carapace_edge::SnapshotChange::upsert(bad_a)]);
    let refused: Vec<&str> = rejected.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(refused, ["b", "a"], "{rejected:?}");
    let viewer = Viewer::new(edge.https, &w.pki);
    let res = viewer.get("a.test", "/page").await;
    assert_eq!((res.status, res.text().as_str()), (StatusCode::OK, "page"));
    assert!(viewer.tls("b.test", &[]).await.is_err());
    edge.stop().await;
}
