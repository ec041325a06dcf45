//! `carapace bench scale`: many stored certificates on one node.
//!
//! 1. A server is started once to create the account and two template certificates through
//!    the API (an `EC_prime256v1` and an `RSA_2048` request, both pending validation).
//! 2. With the server stopped, N certificates are written straight into its database in
//!    batches of [`BATCH`] (a record row each, through the core's
//!    [`IndexedStore`], so every record carries its indexed attributes): RequestCertificate
//!    over HTTP manages about 1,700 a second on 2 cores, ten minutes per million. One in a
//!    hundred is RSA_2048, the rest EC, all pending: so ACM's default listing (RSA key types
//!    only) is selective, `Includes.keyTypes=[EC_prime256v1]` broad, and
//!    `CertificateStatuses=[ISSUED]` matches nothing. Pending certificates have no material
//!    row yet (it is written at issuance), so none is written.
//! 3. The server is started again on that database and measured through the real API with
//!    SigV4: a RequestCertificate burst (p50/p99, the largest `-wal` file seen), then
//!    ListCertificates and SearchCertificates with selective, broad and empty filters, and
//!    the server's RSS.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use carapace_acm::Owner;
use carapace_acm::names::CertificateArn;
use carapace_acm::record::{self, CertificateRecord};
use carapace_kernel::ca::KeyAlgorithm;
use carapace_kernel::index::IndexedStore;
use carapace_store::{Clause, Key, Order, Row, Scan, Store, Write};

use crate::bench::{Call, Child, Signer, admin_credentials, call_once, load};

/// Certificates written per batch.
const BATCH: usize = 1_000;

/// `carapace bench scale`.
pub async fn scale(
    certificates: usize,
    database_url: Option<&str>,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().to_str().context("temp dir path")?.to_owned();
    let mut env = vec![
        ("CARAPACE_ACM_THROTTLING", "false"),
        ("CARAPACE_ACM_CERTIFICATES_PER_ACCOUNT", "100000000"),
        ("CARAPACE_ACM_CERTIFICATES_PER_YEAR", "100000000"),
    ];
    if let Some(url) = database_url {
        env.push(("CARAPACE_DATABASE_URL", url));
    }
    let serve = ["serve", "--listen", "127.0.0.1:0", "--data-dir", data.as_str()];
    let backend = if database_url.is_some() { "PostgreSQL" } else { "SQLite" };

    // 1. The account and the templates.
    let server = Child::spawn(&exe, &serve, &env).await?;
    let (key, secret, account) = admin_credentials(dir.path())?;
    let signer = Signer { key, secret, region: "us-east-1".into() };
    let ec = request(&server.addr, &signer, "template-ec.scale.example.com", "EC_prime256v1").await?;
    let rsa = request(&server.addr, &signer, "template-rsa.scale.example.com", "RSA_2048").await?;
    server.stop().await;

    // 2. The load.
    let owner = Owner::new(account.clone(), "us-east-1");
    let db = dir.path().join("carapace.db");
    let inner: Arc<dyn Store> = match database_url {
        Some(url) => Arc::new(carapace_store::postgres::PostgresStore::connect(url).await?),
        None => Arc::new(carapace_store::sqlite::SqliteStore::open(&db)?),
    };
    let store = IndexedStore::new(inner, crate::app::indexers());
    let templates = [template(&store, &owner, &ec).await?, template(&store, &owner, &rsa).await?];
    // The scope's first filtered listing indexes its two rows and marks it indexed; what is
    // written next through the IndexedStore carries its attributes already.
    let scope = owner.scope();
    let scan =
        Scan { kind: record::KIND, scope: &scope, id_prefix: None, after: None, order: Order::Ascending, limit: 1 };
    store.scan_filtered(scan, &[Clause::new("key", ["RSA_2048"])], 10).await?;
    let wal = WalWatch::start(database_url.is_none().then(|| wal_path(&db)));
    let began = Instant::now();
    let base_ms = templates[0].0.created_ms + 1;
    let mut written = 0usize;
    while written < certificates {
        let n = BATCH.min(certificates - written);
        let mut writes = Vec::with_capacity(2 * n);
        for i in written..written + n {
            let (template, material) = &templates[usize::from(i.is_multiple_of(100))];
            let id = scrambled_id(i as u64);
            let mut record = template.clone();
            record.arn = CertificateArn::format(&owner, &id);
            record.domain_name = format!("c{i}.scale.example.com");
            record.sans = vec![record.domain_name.clone()];
            record.created_ms = base_ms + (i / 4) as i64;
            let row = |kind: &str, body: Vec<u8>| Write::Put {
                row: Row { key: Key::new(kind, &scope, &id), version: 0, created_ms: record.created_ms, body },
                expect: None,
            };
            writes.push(row(record::KIND, record.encode()?));
            if let Some(material) = material {
                writes.push(row(record::MATERIAL_KIND, material.clone()));
            }
        }
        store.apply(writes).await?;
        written += n;
        if written.is_multiple_of(100_000) {
            println!("  loaded {written} certificates ({:.0}/s)", written as f64 / began.elapsed().as_secs_f64());
        }
    }
    let load_secs = began.elapsed().as_secs_f64();
    let load_wal = wal.take_max();
    store.close().await?;
    if let Some(url) = database_url {
        // Fresh tables filled in minutes have no planner statistics until autovacuum gets to
        // them: PostgreSQL then takes the attribute index for tiny and plans a probe per
        // row as a scan of it (a page of 100 cost 100-400 ms here). Analyze, as after any
        // bulk load.
        let analyzed = std::process::Command::new("psql").args([url, "-q", "-c", "ANALYZE"]).status();
        println!("  ANALYZE after the load: {}", if analyzed.is_ok_and(|s| s.success()) { "done" } else { "failed" });
    }
    let size = database_size(&db, database_url)?;
    println!("scale benchmark on {backend}: {certificates} certificates (+2 templates), 2 cores shared");
    println!(
        "  load: batches of {BATCH} straight into the store, {:.0} certificates/s ({load_secs:.1} s); largest WAL {}",
        certificates as f64 / load_secs,
        mib(load_wal)
    );
    match size {
        Some(bytes) => println!(
            "  database: {} ({:.2} KB per certificate: records and indexes)",
            mib(Some(bytes)),
            bytes as f64 / 1000.0 / (certificates + 2) as f64
        ),
        None => println!("  database: size unknown"),
    }

    // 3. The server on the loaded database. On SQLite the bursts run twice, each on its own
    // copy of the loaded data directory: first with the WAL limit out of reach (PASSIVE
    // checkpoints only: what the bound saves), then as configured by default; the listings
    // run on the second server, before its bursts.
    let request_call = Call {
        target: "CertificateManager.RequestCertificate".into(),
        service: "acm",
        body: Bytes::from_static(
            br#"{"DomainName":"burst.scale.example.com","KeyAlgorithm":"EC_prime256v1","ValidationMethod":"DNS"}"#,
        ),
    };
    let setups: &[(&str, Option<&str>)] = if database_url.is_some() {
        &[("", None)]
    } else {
        &[(" (WAL unbounded: PASSIVE only)", Some("1099511627776")), (" (WAL bounded at 64 MiB)", None)]
    };
    let mut server = None;
    for (n, (label, limit)) in setups.iter().enumerate() {
        if let Some(previous) = server.take() {
            Child::stop(previous).await;
        }
        let mut env = env.clone();
        if let Some(limit) = limit {
            env.push(("CARAPACE_SQLITE_WAL_LIMIT_BYTES", limit));
        }
        // Each setup starts from the loaded database as it was (a copy of the data
        // directory on SQLite), so neither burst inherits the other's WAL or jobs.
        let data_copy = format!("{data}-{n}");
        if database_url.is_none() {
            let copied = std::process::Command::new("cp").args(["-a", data.as_str(), data_copy.as_str()]).status()?;
            if !copied.success() {
                bail!("copying the data directory failed");
            }
        }
        let data_dir = if database_url.is_none() { data_copy.as_str() } else { data.as_str() };
        let serve = ["serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir];
        let child = Child::spawn(&exe, &serve, &env).await?;
        println!("  server started{label}; RSS {}", rss(&child));
        if n + 1 == setups.len() {
            // On the loaded database as it is: before the bursts, whose validation checks
            // would still be running (and retrying) in the background.
            listings(&child, &signer, (seconds / 2).max(3)).await?;
        }
        let db = Path::new(data_dir).join("carapace.db");
        let wal = WalWatch::start(database_url.is_none().then(|| wal_path(&db)));
        // One client: the latency of a request on its own. Then many: throughput, and the
        // latency under a queue (about connections / throughput).
        for clients in [1, connections] {
            wal.take_max();
            let report = load(
                &child.addr,
                &signer,
                vec![request_call.clone()],
                clients,
                Duration::from_secs(1),
                Duration::from_secs(seconds),
            )
            .await?;
            println!(
                "  RequestCertificate{label}, {clients} connection(s), {seconds} s: {report}; largest WAL {}",
                mib(wal.take_max())
            );
        }
        println!("  RSS after the burst: {}", rss(&child));
        server = Some(child);
    }
    let server = server.context("no server")?;
    server.stop().await;
    Ok(())
}

/// The listings, two clients at a time, on `server`.
async fn listings(server: &Child, signer: &Signer, seconds: u64) -> anyhow::Result<()> {
    let list = |body: &str| Call {
        target: "CertificateManager.ListCertificates".into(),
        service: "acm",
        body: Bytes::from(body.to_owned()),
    };
    let search = |body: &str| Call {
        target: "CertificateManager.SearchCertificates".into(),
        service: "acm",
        body: Bytes::from(body.to_owned()),
    };
    let calls = [
        (
            "ListCertificates MaxItems=1000, no match (ISSUED)",
            list(r#"{"MaxItems":1000,"CertificateStatuses":["ISSUED"]}"#),
        ),
        ("ListCertificates MaxItems=1000, default (RSA, 1%)", list(r#"{"MaxItems":1000}"#)),
        (
            "ListCertificates MaxItems=1000, EC (99%)",
            list(r#"{"MaxItems":1000,"Includes":{"keyTypes":["EC_prime256v1"]}}"#),
        ),
        (
            "ListCertificates MaxItems=1000, EC and ISSUED (none)",
            list(r#"{"MaxItems":1000,"CertificateStatuses":["ISSUED"],"Includes":{"keyTypes":["EC_prime256v1"]}}"#),
        ),
        ("SearchCertificates MaxResults=100, no filter", search(r#"{"MaxResults":100}"#)),
        (
            "SearchCertificates MaxResults=100, RSA_2048 (1%)",
            search(
                r#"{"MaxResults":100,"FilterStatement":{"Filter":{"X509AttributeFilter":{"KeyAlgorithm":"RSA_2048"}}}}"#,
            ),
        ),
        (
            "SearchCertificates MaxResults=100, ISSUED (none)",
            search(
                r#"{"MaxResults":100,"FilterStatement":{"Filter":{"AcmCertificateMetadataFilter":{"Status":"ISSUED"}}}}"#,
            ),
        ),
        ("SearchCertificates MaxResults=100, newest first", search(r#"{"MaxResults":100,"SortOrder":"DESCENDING"}"#)),
        // Other orders walk a sort attribute: none of the loaded certificates has a leaf, so
        // NOT_AFTER reads the part without one (in creation order); COMMON_NAME walks `cn`.
        (
            "SearchCertificates MaxResults=100, by NOT_AFTER",
            search(r#"{"MaxResults":100,"SortBy":"NOT_AFTER","SortOrder":"ASCENDING"}"#),
        ),
        (
            "SearchCertificates MaxResults=100, by COMMON_NAME, newest",
            search(r#"{"MaxResults":100,"SortBy":"COMMON_NAME","SortOrder":"DESCENDING"}"#),
        ),
        (
            "SearchCertificates MaxResults=100, by STATUS, RSA (1%)",
            search(
                r#"{"MaxResults":100,"SortBy":"STATUS","FilterStatement":{"Filter":{"X509AttributeFilter":{"KeyAlgorithm":"RSA_2048"}}}}"#,
            ),
        ),
    ];
    for (label, call) in calls {
        let (status, body) = call_once(&server.addr, signer, &call).await?;
        if status != 200 {
            bail!("{label}: {status} {}", String::from_utf8_lossy(&body));
        }
        let answer: serde_json::Value = serde_json::from_slice(&body)?;
        let items = answer["CertificateSummaryList"].as_array().or(answer["Results"].as_array()).map_or(0, Vec::len);
        let more = if answer["NextToken"].is_string() { ", NextToken" } else { "" };
        let report =
            load(&server.addr, signer, vec![call], 2, Duration::from_millis(500), Duration::from_secs(seconds)).await?;
        println!("  {label:<52} {items:>4} items{more:<11} {report}");
    }
    println!("  RSS after the listings: {}", rss(server));
    Ok(())
}

/// Requests a certificate through the API; returns its id.
async fn request(addr: &str, signer: &Signer, domain: &str, key: &str) -> anyhow::Result<String> {
    let call = Call {
        target: "CertificateManager.RequestCertificate".into(),
        service: "acm",
        body: Bytes::from(format!(r#"{{"DomainName":"{domain}","KeyAlgorithm":"{key}","ValidationMethod":"DNS"}}"#)),
    };
    let (status, body) = call_once(addr, signer, &call).await?;
    if status != 200 {
        bail!("RequestCertificate failed: {status} {}", String::from_utf8_lossy(&body));
    }
    let arn =
        serde_json::from_slice::<serde_json::Value>(&body)?["CertificateArn"].as_str().context("no ARN")?.to_owned();
    Ok(arn.rsplit('/').next().unwrap_or_default().to_owned())
}

/// A template's record and material body.
async fn template(store: &dyn Store, owner: &Owner, id: &str) -> anyhow::Result<(CertificateRecord, Option<Vec<u8>>)> {
    let scope = owner.scope();
    let record = store.get(&Key::new(record::KIND, &scope, id)).await?.context("template record")?;
    // A pending certificate has no material row yet (it is written at issuance).
    let material = store.get(&Key::new(record::MATERIAL_KIND, &scope, id)).await?;
    let record = CertificateRecord::decode(&record.body)?;
    if !matches!(record.key_algorithm, KeyAlgorithm::EcPrime256v1 | KeyAlgorithm::Rsa2048) {
        bail!("unexpected template key {:?}", record.key_algorithm);
    }
    Ok((record, material.map(|m| m.body)))
}

/// A UUID-shaped id whose order has nothing to do with creation order, as v4 UUIDs.
fn scrambled_id(i: u64) -> String {
    let h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5851_f42d_4c95_7f2d;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (i >> 48) & 0xfff,
        i & 0xffff_ffff_ffff
    )
}

fn wal_path(db: &Path) -> PathBuf {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    wal.into()
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "n/a".to_owned(), |b| format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20)))
}

/// Samples the `-wal` file's size every 25 ms and keeps the largest.
struct WalWatch {
    max: Arc<AtomicU64>,
    on: bool,
    _stop: Option<StopOnDrop>,
}

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

impl WalWatch {
    fn start(path: Option<PathBuf>) -> Self {
        let max = Arc::new(AtomicU64::new(0));
        let Some(path) = path else { return Self { max, on: false, _stop: None } };
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (max.clone(), stop.clone());
        tokio::spawn(async move {
            while !s.load(Ordering::Acquire) {
                if let Ok(meta) = std::fs::metadata(&path) {
                    m.fetch_max(meta.len(), Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        });
        Self { max, on: true, _stop: Some(StopOnDrop(stop)) }
    }

    /// The largest size seen since the last call.
    fn take_max(&self) -> Option<u64> {
        self.on.then(|| self.max.swap(0, Ordering::Relaxed))
    }
}

/// The database's size: the SQLite files, or PostgreSQL's `pg_database_size` (by `psql`).
fn database_size(db: &Path, database_url: Option<&str>) -> anyhow::Result<Option<u64>> {
    let Some(url) = database_url else {
        let file = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        return Ok(Some(file(db) + file(&wal_path(db))));
    };
    let out = std::process::Command::new("psql")
        .args([url, "-At", "-c", "SELECT pg_database_size(current_database())"])
        .output();
    Ok(out.ok().and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok()))
}

/// `VmRSS` and `RssAnon` of a child, from `/proc`.
fn rss(child: &Child) -> String {
    let Some(pid) = child.pid() else { return "n/a".into() };
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return "n/a".into() };
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned()).unwrap_or_else(|| "?".into())
    };
    format!("{} (anonymous {})", field("VmRSS:"), field("RssAnon:"))
}
