//! Processes for `scripts/bench-edge.sh` (release build): the shared origin, certificates from
//! Carapace's CA, and an edge serving one distribution. Prints what it did; asserts nothing.
//!
//! ```text
//! edge_bench certs  DIR ec|rsa      # DIR/{root,cert,key}.pem for localhost
//! edge_bench origin ADDR            # /1k, /obj/<n> (cacheable 1 KiB), /miss/<n> (no-store)
//! edge_bench edge   ADDR DIR ORIGIN # HTTPS on ADDR for localhost, pulling from ORIGIN
//! edge_bench hostile ADDR DIR SECS  # attack attacked.localhost, time localhost's /1k meanwhile
//! ```
//!
//! `hostile` opens a slowloris (TLS, then a request head dribbled a byte a second) and an idle
//! HTTP/2 flood (TLS, the client preface, then nothing) against the distribution
//! `attacked.localhost`, from many loopback addresses (127.0.1.x and up) so that the
//! per-client limit alone does not stop it, while one viewer on 127.0.0.1 fetches
//! `localhost`'s `/1k` over new connections and keep-alive; it prints that viewer's latency
//! percentiles and how many attack connections the edge refused or closed.
#![allow(clippy::disallowed_methods)] // a test or benchmark on the real clock

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use carapace_edge::{
    Behavior, Distribution, Edge, EdgeConfig, Listeners, Origin, PathBehavior, ProtocolPolicy, Snapshot,
    certified_key_from_pem,
};
use carapace_kernel::ca::{CertificateAuthority, KeyAlgorithm, LeafRequest, generate_key};
use carapace_kernel::crypto::MasterKey;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads = std::env::var("THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().unwrap();
    match args.get(1).map(String::as_str) {
        Some("certs") => certs(&args[2], &args[3]),
        Some("origin") => runtime.block_on(origin(&args[2])),
        Some("edge") => runtime.block_on(edge(&args[2], &args[3], &args[4])),
        Some("hostile") => runtime.block_on(hostile(&args[2], &args[3], args[4].parse().unwrap())),
        _ => {
            eprintln!("usage: edge_bench certs DIR ec|rsa | origin ADDR | edge ADDR DIR ORIGIN | hostile ADDR DIR SECS")
        }
    }
}

fn certs(dir: &str, kind: &str) {
    let now = time::OffsetDateTime::now_utc();
    let (ca, _) = CertificateAuthority::generate(
        &carapace_kernel::ca::CaProfile::new("Bench", "http://127.0.0.1:4566"),
        now,
        &MasterKey::generate().unwrap(),
    )
    .unwrap();
    let algorithm = if kind == "rsa" { KeyAlgorithm::Rsa2048 } else { KeyAlgorithm::EcPrime256v1 };
    let key = generate_key(algorithm).unwrap();
    let req = LeafRequest {
        common_name: "localhost".into(),
        sans: vec!["localhost".into(), "attacked.localhost".into()],
        ip_addresses: vec![],
        not_before: now - time::Duration::hours(1),
        not_after: now + time::Duration::days(30),
        serial: None,
        base_url: "http://127.0.0.1:4566".into(),
    };
    let issued = ca.issue(&req, &key, now).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(format!("{dir}/root.pem"), ca.root_pem()).unwrap();
    std::fs::write(format!("{dir}/cert.pem"), format!("{}{}", issued.certificate_pem, issued.chain_pem)).unwrap();
    std::fs::write(format!("{dir}/key.pem"), key.to_pem().as_bytes()).unwrap();
    println!("wrote {dir}/{{root,cert,key}}.pem ({kind})");
}

async fn origin(addr: &str) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let body = Bytes::from(vec![b'x'; 1024]);
    println!("origin on {addr}");
    loop {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = tcp.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let cc = if req.uri().path().starts_with("/miss/") { "no-store" } else { "max-age=3600" };
                let res = hyper::Response::builder()
                    .header("cache-control", cc)
                    .header("content-type", "text/plain")
                    .body(Full::new(body.clone()))
                    .unwrap();
                async move { Ok::<_, hyper::Error>(res) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}

async fn edge(addr: &str, dir: &str, origin: &str) {
    let chain = std::fs::read_to_string(format!("{dir}/cert.pem")).unwrap();
    let key = std::fs::read_to_string(format!("{dir}/key.pem")).unwrap();
    let cert = certified_key_from_pem(&chain, &key).unwrap();
    let origin = Origin::new(format!("http://{origin}").parse().unwrap(), ProtocolPolicy::HttpOnly);
    let mut dist = Distribution::new("bench", "localhost", origin.clone(), cert.clone());
    dist.cache_behaviors = vec![PathBehavior { path: "miss/*".into(), behavior: Behavior::DontCache }];
    let attacked = Distribution::new("attacked", "attacked.localhost", origin, cert);
    // As nginx in scripts/bench-edge.sh (`keepalive_requests 100000000`): h2load and the
    // memory run do not reconnect once a connection has served its requests.
    let limits = carapace_net::Limits { max_requests_per_connection: 100_000_000, ..EdgeConfig::default_limits() };
    let config = EdgeConfig { cache_bytes: 1 << 30, system_roots: false, limits, ..EdgeConfig::default() };
    let edge = Edge::new(config).unwrap();
    edge.swap(Snapshot::new([dist, attacked]).unwrap());
    let https = tokio::net::TcpListener::bind(addr).await.unwrap();
    let reporter = edge.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let counters = reporter.counters();
            eprintln!("cache bytes {} requests {}", reporter.cache_bytes_used(), counters[0].1.requests);
        }
    });
    println!("edge on {addr}");
    let edge = Arc::new(edge);
    edge.serve(Listeners { https, http: None }, std::future::pending()).await.unwrap();
}

fn client_config(dir: &str, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let root = std::fs::read(format!("{dir}/root.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&root) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(config)
}

/// A TLS connection to `addr` for `name`, from the loopback address `from`.
async fn attacker(
    addr: std::net::SocketAddr,
    from: std::net::IpAddr,
    config: Arc<rustls::ClientConfig>,
    name: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::new(from, 0))?;
    let tcp = socket.connect(addr).await?;
    let server = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
    tokio_rustls::TlsConnector::from(config).connect(server, tcp).await
}

async fn hostile(addr: &str, dir: &str, secs: u64) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    let (opened, closed, refused) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let h1 = client_config(dir, b"http/1.1");
    let h2 = client_config(dir, b"h2");
    let mut tasks = tokio::task::JoinSet::new();
    // 1,000 slowloris and 4,000 idle HTTP/2 connections, 20 per source address.
    for i in 0..5_000u32 {
        let from = std::net::IpAddr::from([127, 0, 1 + (i / 20 / 250) as u8, 1 + ((i / 20) % 250) as u8]);
        let slow = i < 1_000;
        let config = if slow { h1.clone() } else { h2.clone() };
        let (opened, closed, refused) = (opened.clone(), closed.clone(), refused.clone());
        tasks.spawn(async move {
            let Ok(mut tls) = attacker(addr, from, config, "attacked.localhost").await else {
                refused.fetch_add(1, Ordering::Relaxed);
                return;
            };
            opened.fetch_add(1, Ordering::Relaxed);
            let start: &[u8] = if slow {
                b"GET /1k HTTP/1.1\r\nHost: attacked.localhost\r\n"
            } else {
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"
            };
            if tls.write_all(start).await.is_err() {
                closed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let mut buf = [0u8; 1024];
            loop {
                if tokio::time::Instant::now() >= until {
                    return;
                }
                if slow && tls.write_all(b"X").await.is_err() {
                    break;
                }
                match tokio::time::timeout(Duration::from_secs(1), tls.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    _ => {}
                }
            }
            closed.fetch_add(1, Ordering::Relaxed);
        });
    }
    // The viewer of the other distribution: new TLS connections and keep-alive requests.
    let mut latencies = Vec::new();
    let viewer = client_config(dir, b"http/1.1");
    tokio::time::sleep(Duration::from_secs(2)).await;
    while tokio::time::Instant::now() < until {
        let start = std::time::Instant::now();
        let Ok(mut tls) = attacker(addr, [127, 0, 0, 1].into(), viewer.clone(), "localhost").await else {
            latencies.push(Duration::from_secs(60));
            continue;
        };
        for i in 0..10 {
            // The first request of each connection includes its TLS handshake.
            let t = if i == 0 { start } else { std::time::Instant::now() };
            let ok = tls.write_all(b"GET /1k HTTP/1.1\r\nHost: localhost\r\n\r\n").await.is_ok() && {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    match tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf)).await {
                        Ok(Ok(n)) if n > 0 => {
                            got.extend_from_slice(&buf[..n]);
                            if got.len() >= 1024 && got.windows(4).any(|w| w == b"\r\n\r\n") {
                                break true;
                            }
                        }
                        _ => break false,
                    }
                }
            };
            latencies.push(if ok { t.elapsed() } else { Duration::from_secs(60) });
        }
    }
    tasks.abort_all();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "hostile viewer_requests={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} attack_opened={} attack_closed_by_edge={} attack_refused={}",
        latencies.len(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
        opened.load(Ordering::Relaxed),
        closed.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    );
}
