//! Measures raw key generation on one core, the ceiling for certificate issuance throughput:
//! `cargo run --release -p carapace-core --example keygen_rate [seconds-per-measurement]`.
//!
//! Also measures leaf signing with pre-generated keys, to show how much of issuance is key
//! generation and how much is building and signing the certificate.
#![allow(clippy::disallowed_methods)] // a test or benchmark on the real clock

use std::time::{Duration, Instant};

use carapace_pki::crypto::MasterKey;
use carapace_pki::{CertificateAuthority, KeyAlgorithm, LeafRequest, generate_key};

/// Runs `op` repeatedly for about `budget`, returning operations per second.
fn rate(budget: Duration, mut op: impl FnMut()) -> f64 {
    op(); // warm up (first-use initialisation in aws-lc)
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        op();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs: f64 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(3.0);
    let budget = Duration::from_secs_f64(secs);
    println!("single thread, {secs} s per measurement");
    for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcPrime256v1, KeyAlgorithm::EcSecp384r1] {
        let per_sec = rate(budget, || {
            generate_key(alg).expect("key generation");
        });
        println!("keygen   {:<14} {per_sec:>10.1} keys/s", alg.as_str());
    }

    let master = MasterKey::generate()?;
    let now = time::OffsetDateTime::now_utc();
    let (ca, _) =
        CertificateAuthority::generate(&carapace_pki::CaProfile::new("Bench", "http://127.0.0.1:4566"), now, &master)?;
    let req = LeafRequest {
        common_name: "example.com".into(),
        sans: vec!["*.example.com".into()],
        ip_addresses: Vec::new(),
        not_before: now,
        not_after: now + time::Duration::days(395),
        serial: None,
        base_url: "http://127.0.0.1:4566".into(),
    };
    for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcPrime256v1] {
        let key = generate_key(alg)?;
        let per_sec = rate(budget, || {
            ca.issue(&req, &key, now).expect("issue");
        });
        println!("sign leaf {:<13} {per_sec:>10.1} certs/s (key pre-generated)", alg.as_str());
    }
    Ok(())
}
