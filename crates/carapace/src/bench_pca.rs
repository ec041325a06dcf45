//! `carapace bench pca`: AWS Private CA's IssueCertificate beside `cfssl serve` signing the
//! same requests with a CA of the same key type.
//!
//! Carapace runs `serve --dev` with a root CA made through the API; each call is a SigV4-signed
//! IssueCertificate with `ReturnValues: CERTIFICATE`, so the certificate is signed within the
//! call as cfssl's `/api/v1/cfssl/sign` signs it, and both answers carry the certificate.
//! cfssl (Debian's `golang-cfssl`) serves a CA openssl makes with the same key type. The
//! requests are the same CSRs for both, cycled; both servers stay up and are measured in
//! alternating rounds; the median round is reported.

use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use bytes::Bytes;
use carapace_kernel::ca::{KeyAlgorithm, generate_key, leaf_csr};
use http_body_util::Full;

use crate::bench::{Call, Child, Report, Signer, call_once, load_with, signed_request};

/// CSRs cycled through per key type.
const CSRS: usize = 64;

/// One key type: Carapace's names, and openssl's for cfssl's CA.
struct KeyType {
    label: &'static str,
    key: KeyAlgorithm,
    signing: &'static str,
    openssl_newkey: &'static [&'static str],
}

const KEY_TYPES: [KeyType; 2] = [
    KeyType {
        label: "EC P-256",
        key: KeyAlgorithm::EcPrime256v1,
        signing: "SHA256WITHECDSA",
        openssl_newkey: &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    },
    KeyType {
        label: "RSA-2048",
        key: KeyAlgorithm::Rsa2048,
        signing: "SHA256WITHRSA",
        openssl_newkey: &["-newkey", "rsa:2048"],
    },
];

/// `carapace bench pca`.
pub async fn pca(seconds: u64, rounds: usize) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    let data = dir.path().join("data");
    let data = data.to_str().context("temp dir path")?;
    let carapace = Child::spawn(&exe, &["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir", data], &[]).await?;
    let signer = Signer { key: "111111111111".into(), secret: "bench".into(), region: "us-east-1".into() };
    let cfssl = which("cfssl");
    if cfssl.is_none() {
        println!("cfssl not found (Debian: apt-get install golang-cfssl): measuring Carapace alone");
    }
    let (warmup, duration) = (Duration::from_secs(1), Duration::from_secs(seconds));
    println!("IssueCertificate (ReturnValues CERTIFICATE) beside cfssl serve, {rounds} rounds of {seconds} s");
    for kind in &KEY_TYPES {
        let ca = root_ca(&carapace.addr, &signer, kind).await?;
        let csrs = (0..CSRS)
            .map(|i| {
                let key = generate_key(kind.key)?;
                Ok(leaf_csr(&key, &format!("svc-{i}.bench.internal"), &[format!("svc-{i}.bench.internal")])?)
            })
            .collect::<anyhow::Result<Vec<String>>>()?;
        let calls: Vec<Call> = csrs
            .iter()
            .map(|csr| Call {
                target: "ACMPrivateCA.IssueCertificate".into(),
                service: "acm-pca",
                body: Bytes::from(
                    serde_json::json!({
                        "CertificateAuthorityArn": ca,
                        "Csr": base64::engine::general_purpose::STANDARD.encode(csr),
                        "SigningAlgorithm": kind.signing,
                        "Validity": {"Value": 30, "Type": "DAYS"},
                        "ReturnValues": "CERTIFICATE",
                    })
                    .to_string(),
                ),
            })
            .collect();
        let cfssl_server = match &cfssl {
            Some(path) => Some(start_cfssl(path, dir.path(), kind).await?),
            None => None,
        };
        for clients in [1usize, 16] {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            for round in 1..=rounds.max(1) {
                let signer = signer.clone();
                let calls = std::sync::Arc::new(calls.clone());
                let make = move |addr: &str, i: usize| signed_request(addr, &signer, &calls[i % calls.len()]);
                let report = load_with(std::slice::from_ref(&carapace.addr), make, clients, warmup, duration).await?;
                println!("  {} {clients:>2} clients round {round}: carapace {report}", kind.label);
                check(&report)?;
                ours.push(report);
                if let Some((addr, _)) = &cfssl_server {
                    let bodies: Vec<Bytes> = csrs
                        .iter()
                        .map(|csr| Bytes::from(serde_json::json!({ "certificate_request": csr }).to_string()))
                        .collect();
                    let make = move |addr: &str, i: usize| {
                        Ok(http::Request::post(format!("http://{addr}/api/v1/cfssl/sign"))
                            .header("host", addr)
                            .header("content-type", "application/json")
                            .body(Full::new(bodies[i % bodies.len()].clone()))?)
                    };
                    let report = load_with(std::slice::from_ref(addr), make, clients, warmup, duration).await?;
                    println!("  {} {clients:>2} clients round {round}: cfssl    {report}", kind.label);
                    check(&report)?;
                    theirs.push(report);
                }
            }
            let ours = median(ours);
            print!("median {} {clients:>2} clients: carapace {ours}", kind.label);
            if !theirs.is_empty() {
                let theirs = median(theirs);
                print!("; cfssl {theirs}; ratio {:.2}", ours.ops_per_sec / theirs.ops_per_sec);
            }
            println!();
        }
        if let Some((_, child)) = cfssl_server {
            let mut child = child;
            let _ = child.kill().await;
        }
    }
    carapace.stop().await;
    Ok(())
}

fn check(report: &Report) -> anyhow::Result<()> {
    if report.errors > 0 {
        bail!("{} calls failed", report.errors);
    }
    Ok(())
}

fn median(mut reports: Vec<Report>) -> Report {
    reports.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
    reports.swap_remove(reports.len() / 2)
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| std::path::Path::new(d).join(name)).find(|p| p.exists())
}

/// A root CA of `kind` made through the API, active: its ARN.
async fn root_ca(addr: &str, signer: &Signer, kind: &KeyType) -> anyhow::Result<String> {
    let call = |op: &str, body: serde_json::Value| Call {
        target: format!("ACMPrivateCA.{op}"),
        service: "acm-pca",
        body: Bytes::from(body.to_string()),
    };
    let json = |c: Call| async move {
        let (status, body) = call_once(addr, signer, &c).await?;
        if status != 200 {
            bail!("{}: {status} {}", c.target, String::from_utf8_lossy(&body));
        }
        anyhow::Ok(serde_json::from_slice::<serde_json::Value>(&body)?)
    };
    let created = json(call(
        "CreateCertificateAuthority",
        serde_json::json!({
            "CertificateAuthorityType": "ROOT",
            "CertificateAuthorityConfiguration": {
                "KeyAlgorithm": kind.key.as_str(),
                "SigningAlgorithm": kind.signing,
                "Subject": {"CommonName": format!("Bench Root {}", kind.label)},
            },
        }),
    ))
    .await?;
    let ca = created["CertificateAuthorityArn"].as_str().context("no CA ARN")?.to_owned();
    let csr = json(call("GetCertificateAuthorityCsr", serde_json::json!({"CertificateAuthorityArn": ca}))).await?;
    let csr = csr["Csr"].as_str().context("no CSR")?;
    let issued = json(call(
        "IssueCertificate",
        serde_json::json!({
            "CertificateAuthorityArn": ca,
            "Csr": base64::engine::general_purpose::STANDARD.encode(csr),
            "SigningAlgorithm": kind.signing,
            "TemplateArn": "arn:aws:acm-pca:::template/RootCACertificate/V1",
            "Validity": {"Value": 5, "Type": "YEARS"},
            "ReturnValues": "CERTIFICATE",
        }),
    ))
    .await?;
    let certificate = issued["Certificate"].as_str().context("no root certificate")?;
    json(call(
        "ImportCertificateAuthorityCertificate",
        serde_json::json!({
            "CertificateAuthorityArn": ca,
            "Certificate": base64::engine::general_purpose::STANDARD.encode(certificate),
        }),
    ))
    .await?;
    Ok(ca)
}

/// `cfssl serve` with a CA of `kind` made by openssl: its address and process.
async fn start_cfssl(
    cfssl: &std::path::Path,
    dir: &std::path::Path,
    kind: &KeyType,
) -> anyhow::Result<(String, tokio::process::Child)> {
    let (ca, key) = (dir.join(format!("cfssl-{}.pem", kind.key)), dir.join(format!("cfssl-{}.key", kind.key)));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-nodes", "-days", "365", "-subj", "/CN=cfssl bench root"])
        .args(kind.openssl_newkey)
        .args(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&ca)
        .output()?;
    if !made.status.success() {
        bail!("openssl could not make cfssl's CA: {}", String::from_utf8_lossy(&made.stderr));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = tokio::process::Command::new(cfssl)
        .args(["serve", "-address", "127.0.0.1", "-port", &port.to_string(), "-loglevel", "5"])
        .arg(format!("-ca={}", ca.display()))
        .arg(format!("-ca-key={}", key.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("spawning cfssl")?;
    let addr = format!("127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            return Ok((addr, child));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("cfssl serve did not listen on {addr}")
}
