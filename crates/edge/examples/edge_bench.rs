//! Processes for `scripts/bench-edge.sh` (release build): the shared origin, certificates from
//! Carapace's CA, and an edge serving one distribution. Prints what it did; asserts nothing.
//!
//! ```text
//! edge_bench certs  DIR ec|rsa      # DIR/{root,cert,key}.pem for localhost
//! edge_bench origin ADDR            # /1k, /obj/<n> (cacheable 1 KiB), /miss/<n> (no-store)
//! edge_bench edge   ADDR DIR ORIGIN # HTTPS on ADDR for localhost, pulling from ORIGIN
//! ```
#![allow(clippy::disallowed_methods)] // a test or benchmark on the real clock

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use carapace_core::ca::{CertificateAuthority, KeyAlgorithm, LeafRequest, generate_key};
use carapace_core::crypto::MasterKey;
use carapace_edge::{
    Behavior, Distribution, Edge, EdgeConfig, Listeners, Origin, PathBehavior, ProtocolPolicy, Snapshot,
    certified_key_from_pem,
};
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
        _ => eprintln!("usage: edge_bench certs DIR ec|rsa | origin ADDR | edge ADDR DIR ORIGIN"),
    }
}

fn certs(dir: &str, kind: &str) {
    let now = time::OffsetDateTime::now_utc();
    let (ca, _) = CertificateAuthority::generate("Bench", now, &MasterKey::generate().unwrap()).unwrap();
    let algorithm = if kind == "rsa" { KeyAlgorithm::Rsa2048 } else { KeyAlgorithm::EcPrime256v1 };
    let key = generate_key(algorithm).unwrap();
    let req = LeafRequest {
        common_name: "localhost".into(),
        sans: vec!["localhost".into()],
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
    let mut dist = Distribution::new("bench", "localhost", origin, cert);
    dist.cache_behaviors = vec![PathBehavior { path: "miss/*".into(), behavior: Behavior::DontCache }];
    let config = EdgeConfig { cache_bytes: 1 << 30, system_roots: false, ..EdgeConfig::default() };
    let edge = Edge::new(config).unwrap();
    edge.swap(Snapshot::new([dist]).unwrap());
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
