//! `carapace bench edge-sync`: how the edge keeps up with the store when it serves many
//! distributions.
//!
//! 1. A server (`serve --dev`, edge on) creates, through the API, the Lightsail certificates
//!    the run needs (issued at once in `--dev`) and one template distribution.
//! 2. With the server stopped, the distributions are written straight into its database in
//!    batches of [`BATCH`] (a distribution row and a domain claim each, through the core's
//!    [`IndexedStore`]), the first ones with a certificate attached.
//! 3. The server is started again on that database: its edge rebuilds once and serves them all.
//!    Then, through the real API with SigV4:
//!    - a burst of RequestCertificate in other accounts (issued at once: record and
//!      material writes the edge's feed announces) → the snapshot updates it caused, read
//!      from `/metrics` (the goal is none);
//!    - AttachCertificateToDistribution calls, each timed from the call's return until a
//!      TLS handshake with the certificate's name, verified against Carapace's root,
//!      succeeds on the edge → p50/p99 (the goal is p99 < 100 ms). The probe retries every
//!      millisecond, so the figures include up to a millisecond and one handshake.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use carapace_kernel::index::IndexedStore;
use carapace_lightsail::records::{
    self, AttachedCertificate, CERTIFICATE_KIND, CertificateRecord, DISTRIBUTION_KIND, DOMAIN_KIND, DistributionRecord,
    DomainClaim,
};
use carapace_store::{Key, Row, Store, Write};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::bench::{Call, Child, Signer, call_once};

/// Distributions written per batch.
const BATCH: usize = 1_000;

/// The account the distributions belong to (`--dev` takes the access key as the account).
const ACCOUNT: &str = "123456789012";

/// Accounts the RequestCertificate burst is spread over.
const OTHER_ACCOUNTS: usize = 10;

/// `carapace bench edge-sync`.
pub async fn edge_sync(distributions: usize, attached: usize, burst: usize, attaches: usize) -> anyhow::Result<()> {
    let distributions = distributions.max(attached + attaches + 1);
    let exe = std::env::current_exe()?;
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(
        dir.path(),
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o700),
    )?;
    let data = dir.path().to_str().context("temp dir path")?.to_owned();
    let env = [
        ("CARAPACE_LIGHTSAIL_ORIGINS", "web=http://127.0.0.1:9"),
        ("CARAPACE_ACM_DEV_AUTO_APPROVE_MS", "50"),
        ("CARAPACE_ACM_THROTTLING", "false"),
        ("CARAPACE_ACM_CERTIFICATES_PER_ACCOUNT", "1000000"),
        ("CARAPACE_ACM_CERTIFICATES_PER_YEAR", "1000000"),
        ("CARAPACE_ACM_APPROVAL_LISTEN", "127.0.0.1:0"),
        ("CARAPACE_EDGE_HTTPS_LISTEN", "127.0.0.1:0"),
        ("CARAPACE_EDGE_HTTP_LISTEN", "127.0.0.1:0"),
    ];
    let serve = ["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir", data.as_str()];
    let signer = Signer { key: ACCOUNT.into(), secret: "bench-secret".into(), region: "us-east-1".into() };
    let lightsail = |op: &str, body: String| Call {
        target: format!("Lightsail_20161128.{op}"),
        service: "lightsail",
        body: Bytes::from(body),
    };

    // 1. Certificates and the template, through the API.
    let began = Instant::now();
    let server = Child::spawn(&exe, &serve, &env).await?;
    let certificates = attached + attaches;
    for i in 0..certificates {
        let body = format!(r#"{{"certificateName":"cert-{i}","domainName":"{}"}}"#, certificate_domain(i));
        expect_ok(&server.addr, &signer, &lightsail("CreateCertificate", body)).await?;
    }
    let template = r#"{"distributionName":"template","origin":{"name":"web","regionName":"us-east-1","protocolPolicy":"http-only"},"defaultCacheBehavior":{"behavior":"cache"},"bundleId":"small_1_0"}"#;
    expect_ok(&server.addr, &signer, &lightsail("CreateDistribution", template.into())).await?;
    for i in 0..certificates {
        let get = lightsail(
            "GetCertificates",
            format!(r#"{{"certificateName":"cert-{i}","includeCertificateDetails":true}}"#),
        );
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let body = expect_ok(&server.addr, &signer, &get).await?;
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            if v["certificates"][0]["certificateDetail"]["status"] == "ISSUED" {
                break;
            }
            if Instant::now() > deadline {
                bail!("cert-{i} was not issued within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    server.stop().await;
    println!("  {certificates} certificates issued through the API in {:.1} s", began.elapsed().as_secs_f64());

    // 2. The distributions, straight into the database.
    let began = Instant::now();
    let store = IndexedStore::new(
        Arc::new(carapace_store::sqlite::SqliteStore::open(&dir.path().join("carapace.db"))?),
        crate::app::indexers(),
    );
    write_distributions(&store, distributions - 1, attached).await?;
    store.close().await?;
    println!(
        "  {} distributions written ({attached} with a certificate attached) in {:.1} s",
        distributions - 1,
        began.elapsed().as_secs_f64()
    );

    // 3. The edge serving them.
    let started = Instant::now();
    let server = Child::spawn(&exe, &serve, &env).await?;
    let edge = edge_address(&server.addr).await?;
    let probe = Probe::new(dir.path(), edge)?;
    let last = default_domain(distributions - 2);
    let names = [last.as_str(), &certificate_domain(0)];
    for name in names {
        let deadline = Instant::now() + Duration::from_secs(300);
        while !probe.handshake(name).await {
            if Instant::now() > deadline {
                bail!("the edge did not serve {name} within 300 s of its start");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    println!(
        "edge-sync benchmark: {distributions} distributions, the edge serving all of them {:.2} s after the server started",
        started.elapsed().as_secs_f64()
    );

    let before = Updates::read(&server.addr).await?;
    let began = Instant::now();
    let mut tasks = Vec::new();
    for a in 0..OTHER_ACCOUNTS {
        let addr = server.addr.clone();
        let count = burst / OTHER_ACCOUNTS + usize::from(a < burst % OTHER_ACCOUNTS);
        tasks.push(tokio::spawn(async move {
            let signer = Signer { key: other_account(a), secret: "x".into(), region: "us-east-1".into() };
            for i in 0..count {
                let call = Call {
                    target: "CertificateManager.RequestCertificate".into(),
                    service: "acm",
                    body: Bytes::from(format!(
                        r#"{{"DomainName":"c{i}.a{a}.other.example","KeyAlgorithm":"EC_prime256v1","ValidationMethod":"DNS"}}"#
                    )),
                };
                expect_ok(&addr, &signer, &call).await?;
            }
            anyhow::Ok(count)
        }));
    }
    for task in tasks {
        task.await??;
    }
    let requested = began.elapsed();
    let deadline = Instant::now() + Duration::from_secs(300);
    while issued_in_other_accounts(&server.addr).await? < burst {
        if Instant::now() > deadline {
            bail!("the burst was not issued within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let issued = began.elapsed();
    // The edge reads the feed as the writes commit; leave a late update the time to show.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = Updates::read(&server.addr).await?;
    println!(
        "  RequestCertificate burst: {burst} in {OTHER_ACCOUNTS} other accounts (requested in {:.1} s, all issued in {:.1} s): \
         full rebuilds +{}, distribution updates +{}, certificate updates +{} (feed resyncs +{})",
        requested.as_secs_f64(),
        issued.as_secs_f64(),
        after.full - before.full,
        after.distribution - before.distribution,
        after.certificate - before.certificate,
        after.resyncs - before.resyncs,
    );

    let mut latencies = Vec::with_capacity(attaches);
    for k in 0..attaches {
        let i = attached + k;
        let name = certificate_domain(i);
        let call = lightsail(
            "AttachCertificateToDistribution",
            format!(r#"{{"distributionName":"bench-{i}","certificateName":"cert-{i}"}}"#),
        );
        expect_ok(&server.addr, &signer, &call).await?;
        let returned = Instant::now();
        let deadline = returned + Duration::from_secs(30);
        while !probe.handshake(&name).await {
            if Instant::now() > deadline {
                bail!("{name} was not served within 30 s of its attach");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(returned.elapsed());
    }
    latencies.sort();
    let at = |q: f64| latencies.get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)));
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e3);
    let end = Updates::read(&server.addr).await?;
    println!(
        "  AttachCertificateToDistribution → the edge serves the name: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms \
         ({attaches} attaches; full rebuilds +{}, distribution updates +{})",
        ms(at(0.5)),
        ms(at(0.99)),
        ms(latencies.last()),
        end.full - after.full,
        end.distribution - after.distribution,
    );
    server.stop().await;
    Ok(())
}

/// The alternative domain name of certificate `i`.
fn certificate_domain(i: usize) -> String {
    format!("a{i}.bench.example")
}

/// The default domain of distribution `bench-{i}`: `d` and 13 digits, as Lightsail's.
fn default_domain(i: usize) -> String {
    format!("d{i:013}.cdn.carapace.internal")
}

fn other_account(a: usize) -> String {
    format!("2000000000{a:02}")
}

async fn expect_ok(addr: &str, signer: &Signer, call: &Call) -> anyhow::Result<Bytes> {
    let (status, body) = call_once(addr, signer, call).await?;
    if status != 200 {
        bail!("{} failed: {status} {}", call.target, String::from_utf8_lossy(&body));
    }
    Ok(body)
}

/// Writes `count` copies of the template distribution, `bench-0` … (the first `attached`
/// with `cert-<i>` attached), each with its domain claims.
async fn write_distributions(store: &IndexedStore, count: usize, attached: usize) -> anyhow::Result<()> {
    let row = store
        .get(&Key::new(DISTRIBUTION_KIND, "", format!("{ACCOUNT}/template")))
        .await?
        .context("the template distribution")?;
    let template: DistributionRecord = records::decode(&row.body).map_err(anyhow::Error::msg)?;
    let scope = format!("{ACCOUNT}/us-east-1");
    let mut written = 0;
    while written < count {
        let n = BATCH.min(count - written);
        let mut writes = Vec::with_capacity(3 * n);
        for i in written..written + n {
            let mut d = template.clone();
            d.id = format!("bench-{i:06}");
            d.name = format!("bench-{i}");
            d.arn = format!("arn:aws:lightsail:us-east-1:{ACCOUNT}:Distribution/{}", d.id);
            d.domain_name = default_domain(i);
            d.created_ms = template.created_ms + 1 + i as i64;
            d.changed_ms = d.created_ms;
            if i < attached {
                let key = Key::new(CERTIFICATE_KIND, &scope, format!("cert-{i}"));
                let stored = store.get(&key).await?.with_context(|| format!("certificate cert-{i}"))?;
                let c: CertificateRecord = records::decode(&stored.body).map_err(anyhow::Error::msg)?;
                d.alternative_domain_names = vec![c.domain_name.clone()];
                d.certificate = Some(AttachedCertificate {
                    name: c.name,
                    scope: scope.clone(),
                    acm_id: c.acm_id,
                    acm_arn: c.acm_arn,
                });
            }
            let claim = DomainClaim {
                schema: records::SCHEMA,
                account: ACCOUNT.into(),
                distribution: d.name.clone(),
                distribution_id: d.id.clone(),
            };
            for host in d.hosts() {
                let row = Row {
                    key: Key::new(DOMAIN_KIND, "", host.to_ascii_lowercase()),
                    version: 0,
                    created_ms: d.created_ms,
                    body: records::encode(&claim)?,
                };
                writes.push(Write::Put { row, expect: None });
            }
            let row = Row {
                key: Key::new(DISTRIBUTION_KIND, "", format!("{ACCOUNT}/{}", d.name)),
                version: 0,
                created_ms: d.created_ms,
                body: records::encode(&d)?,
            };
            writes.push(Write::Put { row, expect: None });
        }
        store.apply(writes).await?;
        written += n;
    }
    Ok(())
}

/// Certificates issued in the burst's accounts.
async fn issued_in_other_accounts(addr: &str) -> anyhow::Result<usize> {
    let mut issued = 0;
    for a in 0..OTHER_ACCOUNTS {
        let signer = Signer { key: other_account(a), secret: "x".into(), region: "us-east-1".into() };
        let call = Call {
            target: "CertificateManager.ListCertificates".into(),
            service: "acm",
            body: Bytes::from_static(
                br#"{"CertificateStatuses":["ISSUED"],"Includes":{"keyTypes":["EC_prime256v1"]},"MaxItems":1000}"#,
            ),
        };
        let body = expect_ok(addr, &signer, &call).await?;
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        issued += v["CertificateSummaryList"].as_array().map_or(0, Vec::len);
    }
    Ok(issued)
}

/// A plain GET on the API port.
async fn http_get(addr: &str, path: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default())
}

/// Where the server's edge serves HTTPS (from `/health`).
async fn edge_address(addr: &str) -> anyhow::Result<SocketAddr> {
    let health: serde_json::Value = serde_json::from_str(&http_get(addr, "/health").await?)?;
    Ok(health["edge"]["https"].as_str().context("the server runs no edge")?.parse()?)
}

/// The snapshot update counters on `/metrics`.
struct Updates {
    full: u64,
    distribution: u64,
    certificate: u64,
    resyncs: u64,
}

impl Updates {
    async fn read(addr: &str) -> anyhow::Result<Self> {
        let text = http_get(addr, "/metrics").await?;
        let sample = |name: &str| {
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse::<f64>().ok()))
                .map_or(0, |v| v as u64)
        };
        Ok(Self {
            full: sample(r#"carapace_edge_snapshot_updates_total{kind="full"}"#),
            distribution: sample(r#"carapace_edge_snapshot_updates_total{kind="distribution"}"#),
            certificate: sample(r#"carapace_edge_snapshot_updates_total{kind="certificate"}"#),
            resyncs: sample("carapace_feed_resyncs_total"),
        })
    }
}

/// TLS handshakes with the edge, verified against Carapace's root (chain and name).
struct Probe {
    connector: tokio_rustls::TlsConnector,
    edge: SocketAddr,
}

impl Probe {
    fn new(data_dir: &std::path::Path, edge: SocketAddr) -> anyhow::Result<Self> {
        use rustls::pki_types::pem::PemObject as _;
        let pem = std::fs::read(data_dir.join("ca-root.pem"))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.map_err(|e| anyhow::anyhow!("ca-root.pem: {e}"))?)?;
        }
        let config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
        Ok(Self { connector: tokio_rustls::TlsConnector::from(Arc::new(config)), edge })
    }

    /// Whether a handshake for `name` succeeds now (an unknown name gets an alert; the
    /// wrong certificate fails verification).
    async fn handshake(&self, name: &str) -> bool {
        let Ok(server_name) = rustls::pki_types::ServerName::try_from(name.to_owned()) else { return false };
        let Ok(tcp) = TcpStream::connect(self.edge).await else { return false };
        self.connector.connect(server_name, tcp).await.is_ok()
    }
}
