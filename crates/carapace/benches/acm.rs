//! ACM benchmarks (not timed tests: they print figures and assert nothing about speed).
//!
//! Run (release build of the binary and of this driver):
//!
//! ```text
//! cargo bench -p carapace --bench acm            # all three
//! cargo bench -p carapace --bench acm -- issue   # only names containing "issue"
//! ```
//!
//! - RequestCertificate latency per key algorithm, from the client (aws-sdk-rust, SigV4 and
//!   HTTP included), with issuance held back so only the request path is measured.
//! - Certificates issued per second end to end (request → ISSUED) for EC_prime256v1 and
//!   RSA_2048, next to the raw key-generation rate of aws-lc-rs on the same cores.
//! - DescribeCertificate and ListCertificates (1,000 items) throughput and p99 with
//!   `CARAPACE_BENCH_CERTS` (default 100,000) certificates stored.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use aws_sdk_acm::types::{CertificateStatus, KeyAlgorithm};
use common::Server;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn report(name: &str, mut lat: Vec<Duration>, wall: Duration) {
    lat.sort();
    println!(
        "{name}: n={} throughput={:.0}/s p50={:.2}ms p99={:.2}ms max={:.2}ms",
        lat.len(),
        lat.len() as f64 / wall.as_secs_f64(),
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().unwrap().as_secs_f64() * 1e3,
    );
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const QUOTAS: [(&str, &str); 2] =
    [("CARAPACE_ACM_CERTIFICATES_PER_ACCOUNT", "1000000"), ("CARAPACE_ACM_CERTIFICATES_PER_YEAR", "1000000")];

async fn request_certificate_latency() {
    let mut env = QUOTAS.to_vec();
    env.push(("CARAPACE_ACM_DEV_AUTO_APPROVE_MS", "86400000"));
    let server = Server::start(&["--dev"], &env);
    let acm = server.acm("123456789012").await;
    let n = env_usize("CARAPACE_BENCH_REQUESTS", 2_000);
    for algorithm in [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcPrime256v1, KeyAlgorithm::EcSecp384r1] {
        // Warm up connections and caches.
        for i in 0..50 {
            acm.request_certificate()
                .domain_name(format!("w{i}.example.com"))
                .key_algorithm(algorithm.clone())
                .send()
                .await
                .unwrap();
        }
        let mut lat = Vec::with_capacity(n);
        let start = Instant::now();
        for i in 0..n {
            let t = Instant::now();
            acm.request_certificate()
                .domain_name(format!("r{i}.example.com"))
                .subject_alternative_names(format!("www.r{i}.example.com"))
                .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
                .key_algorithm(algorithm.clone())
                .send()
                .await
                .unwrap();
            lat.push(t.elapsed());
        }
        report(&format!("RequestCertificate {}", algorithm.as_str()), lat, start.elapsed());
    }
}

/// Raw aws-lc-rs key generation on every core, for `secs`.
fn raw_keygen_rate(algorithm: carapace_kernel::ca::KeyAlgorithm, secs: f64) -> f64 {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                let mut n = 0u64;
                while start.elapsed().as_secs_f64() < secs {
                    carapace_kernel::ca::generate_key(algorithm).unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    total as f64 / start.elapsed().as_secs_f64()
}

async fn issuance_throughput() {
    let mut env = QUOTAS.to_vec();
    env.push(("CARAPACE_ACM_DEV_AUTO_APPROVE_MS", "0"));
    let server = Server::start(&["--dev"], &env);
    let acm = server.acm("123456789012").await;
    for (algorithm, n) in [(KeyAlgorithm::EcPrime256v1, 2_000usize), (KeyAlgorithm::Rsa2048, 300)] {
        let n = env_usize("CARAPACE_BENCH_ISSUE", n);
        let start = Instant::now();
        let mut arns = Vec::with_capacity(n);
        for i in 0..n {
            let out = acm
                .request_certificate()
                .domain_name(format!("{}-{i}.example.com", algorithm.as_str().to_lowercase().replace('_', "-")))
                .key_algorithm(algorithm.clone())
                .send()
                .await
                .unwrap();
            arns.push(out.certificate_arn.unwrap());
        }
        // The queue is worked oldest first: wait for the last one, polling gently so the
        // polling itself takes no CPU from key generation, then check every one once.
        let last = arns.last().cloned().unwrap();
        loop {
            let d = acm.describe_certificate().certificate_arn(&last).send().await.unwrap().certificate.unwrap();
            if d.status() == Some(&CertificateStatus::Issued) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Workers run in parallel, so a few just before the last may still be finishing.
        for arn in &arns {
            loop {
                let d = acm.describe_certificate().certificate_arn(arn).send().await.unwrap().certificate.unwrap();
                if d.status() == Some(&CertificateStatus::Issued) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let elapsed = start.elapsed();
        let core_alg = if algorithm == KeyAlgorithm::Rsa2048 {
            carapace_kernel::ca::KeyAlgorithm::Rsa2048
        } else {
            carapace_kernel::ca::KeyAlgorithm::EcPrime256v1
        };
        let rate = n as f64 / elapsed.as_secs_f64();
        let raw = raw_keygen_rate(core_alg, 3.0);
        println!(
            "Issuance {}: {n} certificates in {:.2}s = {rate:.1}/s end to end; raw aws-lc-rs keygen on {} cores = {raw:.1}/s ({:.0}%)",
            algorithm.as_str(),
            elapsed.as_secs_f64(),
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            rate / raw * 100.0
        );
    }
}

async fn describe_and_list_with_many_certificates() {
    let mut env = QUOTAS.to_vec();
    env.push(("CARAPACE_ACM_DEV_AUTO_APPROVE_MS", "86400000"));
    let server = Server::start(&["--dev"], &env);
    let total = env_usize("CARAPACE_BENCH_CERTS", 100_000);
    let clients = 8usize;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let acm = server.acm("123456789012").await;
        tasks.push(tokio::spawn(async move {
            let mut arns = Vec::new();
            for i in (c..total).step_by(clients) {
                let out = acm.request_certificate().domain_name(format!("c{i}.example.com")).send().await.unwrap();
                arns.push(out.certificate_arn.unwrap());
            }
            arns
        }));
    }
    let mut arns = Vec::with_capacity(total);
    for t in tasks {
        arns.extend(t.await.unwrap());
    }
    println!("stored {total} certificates in {:.1}s", start.elapsed().as_secs_f64());

    let duration = Duration::from_secs(5);
    let arns = std::sync::Arc::new(arns);
    let run = |list: bool| {
        let arns = arns.clone();
        let server = &server;
        async move {
            let mut tasks = Vec::new();
            let start = Instant::now();
            for c in 0..clients {
                let acm = server.acm("123456789012").await;
                let arns = arns.clone();
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut i = c * 7919;
                    let mut token: Option<String> = None;
                    while start.elapsed() < duration {
                        let t = Instant::now();
                        if list {
                            let out = acm
                                .list_certificates()
                                .max_items(1000)
                                .set_next_token(token.take())
                                .send()
                                .await
                                .unwrap();
                            assert!(!out.certificate_summary_list().is_empty());
                            token = out.next_token;
                        } else {
                            acm.describe_certificate().certificate_arn(&arns[i % arns.len()]).send().await.unwrap();
                            i += 104_729;
                        }
                        lat.push(t.elapsed());
                    }
                    lat
                }));
            }
            let mut lat = Vec::new();
            for t in tasks {
                lat.extend(t.await.unwrap());
            }
            (lat, start.elapsed())
        }
    };
    let (lat, wall) = run(false).await;
    report(&format!("DescribeCertificate ({total} stored, {clients} clients)"), lat, wall);
    let (lat, wall) = run(true).await;
    report(&format!("ListCertificates MaxItems=1000 ({total} stored, {clients} clients)"), lat, wall);
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; any other argument selects benchmarks by name.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    if wanted("request_certificate_latency") {
        request_certificate_latency().await;
    }
    if wanted("issuance_throughput") {
        issuance_throughput().await;
    }
    if wanted("describe_and_list_with_many_certificates") {
        describe_and_list_with_many_certificates().await;
    }
}
