//! `carapace serve`: wires the pieces together and runs until told to stop.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use carapace_acm::AcmSettings;
use carapace_acm::events::EventDeliveries;
use carapace_acm::{AcmJobs, CertificateManager};
use carapace_kernel::jobs::{JobObserver, Worker};
use carapace_kernel::{Core, Settings};
use carapace_proto::sigv4::SecretKey;
use carapace_proto::{Credential, CredentialLookup, Dispatcher, DispatcherConfig, ServiceHandler, WireError};
use tokio::net::TcpListener;

use crate::app::App;
use crate::approval;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::server::{self, Front};

/// Runs the server until `shutdown` resolves, then drains and closes the store.
pub async fn serve(config: Config, shutdown: impl std::future::Future<Output = ()> + Send) -> anyhow::Result<()> {
    raise_open_file_limit(&config);
    let app = App::open(&config).await?;
    // Bound before the CA is loaded: a CA created now names `base_url`, by default the
    // address actually bound (port 0 picks one).
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let base_url = config.public_base_url(addr);
    let ca = Arc::new(app.ca(&config, &base_url).await?);
    if !config.dev
        && let Some(path) = app.bootstrap_admin(&config).await?
    {
        // The secret goes only to the 0600 file, never to stdout or the log.
        println!("admin credentials written to {} (profile {})", path.display(), crate::app::ADMIN_PROFILE);
    }
    // Bound before the core's settings are built: with `approval_listen` on port 0 the mail
    // links must carry the port actually bound.
    let approval_listener = approval_listener(&config).await;
    let approval_addr = match &approval_listener {
        Some(listener) => listener.local_addr()?,
        None => config.acm.approval_listen,
    };
    let core = core(&app, &ca, &config, base_url);
    let private_cas = carapace_pca::PrivateCas::new(core.clone(), config.pca_settings());
    let acm = CertificateManager::new(core.clone(), acm_settings(&config, approval_addr))
        .with_private_cas(private_cas.clone());
    let services: Vec<Arc<dyn ServiceHandler>> = vec![
        Arc::new(carapace_acm_api::Acm::new(acm.clone())),
        Arc::new(carapace_ds_api::Ds::new(core.clone(), config.ds_settings())),
        Arc::new(carapace_lightsail_api::Lightsail::new(carapace_lightsail::LightsailManager::new(
            core.clone(),
            config.lightsail_settings(),
            acm.clone(),
        ))),
        Arc::new(carapace_pca_api::Pca::new(private_cas.clone())),
    ];
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut metrics = Metrics::new();
    let api = carapace_net::Server::new("api", config.http.clone());
    metrics.watch_listener("api", api.stats());
    let approval_server = carapace_net::Server::new("approval", config.http.clone());
    metrics.watch_listener("approval", approval_server.stats());
    let metrics = Arc::new(metrics);
    // Resyncs reach every subscriber whatever its kinds; a rarely written kind keeps this
    // counter's subscription from waking for ordinary changes.
    let mut feed = app.store.subscribe(&[carapace_kernel::runtime::CA_KIND]);
    let counter = metrics.clone();
    tokio::spawn(async move {
        while let Some(event) = feed.next().await {
            if event == carapace_store::FeedEvent::Resync {
                counter.feed_resynced();
            }
        }
    });
    let observer: Arc<dyn JobObserver> = metrics.clone();
    let ds_checks = carapace_ds_api::ldaps::LdapsChecks::new(core.clone(), config.ds_settings().probe);
    // The outbound checks, built from the configuration and handed to the core.
    let settings = acm.settings();
    let checkers = carapace_checks::Checkers::live(
        settings.name_servers.clone(),
        Duration::from_millis(settings.dns_timeout_ms),
        settings.http_validation_port,
        settings.smtp.clone(),
    );
    let webhooks = carapace_checks::webhook::HttpsWebhooks::new(core.ca.root_der())
        .map_err(|e| anyhow::anyhow!("Carapace's root: {e}"))?;
    let acm_manager = acm.clone().with_checkers(checkers);
    let workers = vec![
        tokio::spawn(
            Worker::new(core.clone(), carapace_pca::jobs::PcaJobs(private_cas.clone()), observer.clone())
                .run(stop_rx.clone()),
        ),
        tokio::spawn(Worker::new(core.clone(), AcmJobs(acm_manager), observer.clone()).run(stop_rx.clone())),
        tokio::spawn(Worker::new(core.clone(), ds_checks, observer.clone()).run(stop_rx.clone())),
        tokio::spawn(
            Worker::new(
                core.clone(),
                EventDeliveries::new(core.clone(), acm.settings().events.clone(), Arc::new(webhooks)),
                observer,
            )
            .run(stop_rx.clone()),
        ),
    ];
    let dispatcher = Dispatcher::new(
        services,
        Arc::new(KeyLookup::new(app.accounts.clone(), app.store.as_ref(), Duration::from_secs(config.key_cache_secs))),
        DispatcherConfig {
            dev: config.dev,
            max_body_bytes: config.max_body_bytes,
            extra_regions: config.extra_regions.clone(),
            ..Default::default()
        },
    );
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let edge = start_edge(&config, &acm, &ca, &metrics, stop_rx.clone()).await?;
    let front = Arc::new(Front {
        clock: app.clock.clone(),
        signing_clock: Arc::new(carapace_kernel::SystemClock),
        edge_addrs: edge.as_ref().map(|(https, http, _)| (*https, *http)),
        dispatcher,
        metrics,
        store: app.store.clone(),
        static_routes: std::iter::once(("/ca/root.pem", ca.root_pem()))
            .chain(ca.n2_root_pem().map(|pem| ("/ca/n2-root.pem", pem)))
            .map(|(path, pem)| (String::from(path), "application/x-pem-file", Bytes::from(pem.to_owned())))
            .collect(),
        acm: Some(acm.clone()),
        ca: Some(ca.clone()),
        crls: carapace_kernel::revocation::CrlCache::new(time::Duration::seconds(
            i64::try_from(config.crl_refresh_secs).unwrap_or(i64::MAX),
        )),
        // Kept answers are ~1 KiB: at most ~100 MiB however many certificates are asked about.
        ocsp_answers: carapace_kernel::revocation::OcspCache::new(100_000),
        buckets_dir: Some(config.buckets_dir()),
        pca: Some(private_cas.clone()),
    });
    let approval_page = match approval_listener {
        Some(listener) => {
            let names = approval::certificate_names(&acm.settings().approval_base_url);
            let (tls, issued) =
                approval::tls_config(&ca, &names, &core.settings.base_url, config.acm.validity_days, core.clock.now())?;
            carapace_kernel::revocation::record_self_issued(core.store.as_ref(), &issued, core.clock.now_ms()).await?;
            Some(tokio::spawn(approval::run(approval_server, listener, tls, acm.clone(), stop_rx.clone(), grace)))
        }
        None => None,
    };
    tracing::info!(%addr, dev = config.dev, data_dir = %config.data_dir.display(), "carapace listening");
    // Tests and scripts read the bound addresses from these lines (the API's last).
    if let Some((https, http, _)) = &edge {
        tracing::info!(%https, %http, "edge listening");
        println!("carapace edge on https://{https} and http://{http}");
    }
    println!("carapace listening on http://{addr}");
    if approval_page.is_some() {
        tracing::info!(addr = %approval_addr, "approval page listening");
        println!("carapace approval page on https://{approval_addr}");
    }

    server::run(api, listener, front, shutdown, grace).await;
    let _ = stop_tx.send(true);
    let edge_tasks = edge.into_iter().flat_map(|(_, _, tasks)| tasks);
    for worker in workers.into_iter().chain(approval_page).chain(edge_tasks) {
        let _ = tokio::time::timeout(grace.max(Duration::from_secs(5)), worker).await;
    }
    app.store.close().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Runs an edge alone (`carapace edge`): no API, no background jobs, only the edge and the
/// task keeping it in step with the database the API nodes write. Several edges and API
/// nodes share one PostgreSQL database; each edge learns of changes through the change feed.
pub async fn edge(config: Config, shutdown: impl std::future::Future<Output = ()> + Send) -> anyhow::Result<()> {
    raise_open_file_limit(&config);
    let app = App::open(&config).await?;
    let base_url = config.public_base_url(config.listen);
    let ca = Arc::new(app.ca(&config, &base_url).await?);
    let core = core(&app, &ca, &config, base_url);
    let acm = CertificateManager::new(core.clone(), acm_settings(&config, config.acm.approval_listen));
    let admin = TcpListener::bind(config.edge.admin_listen).await?;
    let admin_addr = admin.local_addr()?;
    let metrics = Arc::new(Metrics::new());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let Some((https, http, mut tasks)) = start_edge(&config, &acm, &ca, &metrics, stop_rx.clone()).await? else {
        anyhow::bail!("the edge cannot run: edge.enabled is false or its listeners could not be bound (see the log)");
    };
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    tasks.push(tokio::spawn(edge_admin(
        config.http.clone(),
        admin,
        app.store.clone(),
        metrics,
        (https, http),
        stop_rx,
        grace,
    )));
    tracing::info!(%https, %http, admin = %admin_addr, "edge listening (edge only)");
    // Tests and scripts read the bound addresses from these lines (the edge's last).
    println!("carapace edge admin on http://{admin_addr}");
    println!("carapace edge on https://{https} and http://{http}");
    shutdown.await;
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = tokio::time::timeout(grace.max(Duration::from_secs(5)), task).await;
    }
    app.store.close().await?;
    tracing::info!("stopped");
    Ok(())
}

/// The admin port of an edge alone: `GET /health` (store reachable; the edge's addresses)
/// and `GET /metrics` (per-distribution counters and the certificate fallback gauge).
async fn edge_admin(
    limits: carapace_net::Limits,
    listener: TcpListener,
    store: Arc<dyn carapace_store::Store>,
    metrics: Arc<Metrics>,
    (https, http): (std::net::SocketAddr, std::net::SocketAddr),
    mut stop: tokio::sync::watch::Receiver<bool>,
    grace: Duration,
) {
    let stopped = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    let handler = move |req: hyper::Request<carapace_net::Body>| {
        let (store, metrics) = (store.clone(), metrics.clone());
        async move {
            match req.uri().path() {
                "/health" => server::health(store.as_ref(), Some((https, http))).await,
                "/metrics" => server::metrics(&metrics),
                _ => server::not_found(),
            }
        }
    };
    carapace_net::Server::new("edge-admin", limits).run(listener, handler, stopped, grace).await;
}

/// The edge beside the API: its listeners, its cache, and the task that keeps its snapshot
/// in step with the store. `None` when `edge.enabled` is false or its ports cannot be bound
/// (logged, not fatal, like the approval page: servers started side by side must come up).
async fn start_edge(
    config: &Config,
    acm: &CertificateManager,
    ca: &carapace_kernel::ca::CertificateAuthority,
    metrics: &Metrics,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<(std::net::SocketAddr, std::net::SocketAddr, Vec<tokio::task::JoinHandle<()>>)>> {
    if !config.edge.enabled {
        return Ok(None);
    }
    let core = acm.core();
    let bind = |addr| async move {
        TcpListener::bind(addr).await.map_err(|e| {
            tracing::error!(%addr, error = %e, "edge not served: cannot bind its listener");
        })
    };
    let (Ok(https), Ok(http)) = (bind(config.edge.https_listen).await, bind(config.edge.http_listen).await) else {
        return Ok(None);
    };
    let (https_addr, http_addr) = (https.local_addr()?, http.local_addr()?);
    use rustls::pki_types::pem::PemObject as _;
    let root = rustls::pki_types::CertificateDer::from_pem_slice(ca.root_pem().as_bytes())
        .map_err(|e| anyhow::anyhow!("root PEM: {e}"))?;
    let mut origin_roots = vec![root];
    if !config.edge.origin_ca_file.is_empty() {
        let path = &config.edge.origin_ca_file;
        let pem = std::fs::read(path).map_err(|e| anyhow::anyhow!("edge.origin_ca_file {path}: {e}"))?;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
            origin_roots.push(cert.map_err(|e| anyhow::anyhow!("edge.origin_ca_file {path}: {e}"))?);
        }
        if origin_roots.len() == 1 {
            anyhow::bail!("edge.origin_ca_file {path}: no PEM certificate in it");
        }
    }
    let edge = carapace_edge::Edge::new(carapace_edge::EdgeConfig {
        cache_bytes: config.edge.cache_bytes,
        cache_dir: (!config.edge.cache_dir.is_empty()).then(|| config.edge.cache_dir.clone().into()),
        cache_dir_bytes: config.edge.cache_dir_bytes,
        max_object_bytes: usize::try_from(config.edge.max_object_bytes).unwrap_or(usize::MAX),
        fill_bytes: config.edge.fill_bytes,
        cache_lock_timeout: Duration::from_millis(config.edge.cache_lock_timeout_ms),
        origin_connect_timeout: Duration::from_millis(config.edge.origin_connect_timeout_ms),
        origin_max_connections: usize::try_from(config.edge.origin_max_connections).unwrap_or(usize::MAX),
        origin_max_connections_per_origin: usize::try_from(config.edge.origin_max_connections_per_origin)
            .unwrap_or(usize::MAX),
        origin_roots,
        limits: config.edge.http.clone(),
        ..Default::default()
    })?;
    let domain = config.edge.domain.to_ascii_lowercase();
    let issue_default: carapace_edge_sync::IssueDefault = {
        let (ca, base_url, days) = (core.ca.clone(), core.settings.base_url.clone(), config.acm.validity_days);
        Box::new(move |now| carapace_edge_sync::default_certificate(&ca, &domain, &base_url, days, now))
    };
    let default_certificate = issue_default(core.clock.now())?;
    carapace_kernel::revocation::record_self_issued(
        core.store.as_ref(),
        &default_certificate.issued,
        core.clock.now_ms(),
    )
    .await?;
    metrics.watch_edge(edge.clone());
    let lightsail = carapace_lightsail::LightsailManager::new(core.clone(), config.lightsail_settings(), acm.clone());
    let node = format!("{}-{}", hostname(), std::process::id());
    let sync = carapace_edge_sync::EdgeSync::new(
        edge.clone(),
        lightsail,
        acm.clone(),
        (default_certificate, issue_default),
        node,
        metrics.edge_sync(),
    );
    let mut stop_serving = stop.clone();
    let serving = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop_serving.wait_for(|stopped| *stopped).await;
        };
        if let Err(e) = edge.serve(carapace_edge::Listeners { https, http: Some(http) }, shutdown).await {
            tracing::error!(error = %e, "edge stopped");
        }
    });
    Ok(Some((https_addr, http_addr, vec![serving, tokio::spawn(sync.run(stop))])))
}

/// This machine's name for edge reports (`localhost` when unknown).
fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Raises the soft open-file limit to the hard one (a connection is a descriptor; the usual
/// soft limit of 1,024 is what 1,100 idle connections exhausted), and warns when even that
/// is below what both listeners' `http.max_connections` can open plus room for the
/// database, DNS, SMTP and LDAP sockets.
fn raise_open_file_limit(config: &Config) {
    /// Descriptors kept for everything that is not a client connection.
    const RESERVE: u64 = 256;
    let needed =
        u64::try_from(config.http.max_connections).unwrap_or(u64::MAX).saturating_mul(2).saturating_add(RESERVE);
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < needed => tracing::warn!(
            limit,
            needed,
            max_connections = config.http.max_connections,
            "the open-file limit is below what the connection limits need: raise it (ulimit -n) or lower http.max_connections"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not read or raise the open-file limit"),
    }
}

/// The approval page's listener, or `None` when there is no page: in `--dev` (validation is
/// auto-approved, no mail is sent) or when `acm.approval_listen` cannot be bound. The latter
/// is logged, not fatal: the AWS APIs do not depend on the page, and servers started side by
/// side with the default port (tests, several local instances) must all come up.
async fn approval_listener(config: &Config) -> Option<TcpListener> {
    if config.dev {
        return None;
    }
    match TcpListener::bind(config.acm.approval_listen).await {
        Ok(listener) => Some(listener),
        Err(e) => {
            tracing::error!(
                addr = %config.acm.approval_listen, error = %e,
                "approval page not served: cannot bind acm.approval_listen; email validation links will not work"
            );
            None
        }
    }
}

/// The core's handles and settings for this node.
fn core(app: &App, ca: &Arc<carapace_kernel::ca::CertificateAuthority>, config: &Config, base_url: String) -> Core {
    Core {
        store: app.store.clone(),
        clock: app.clock.clone(),
        master_key: app.master_key.clone(),
        ca: ca.clone(),
        settings: Arc::new(Settings { dev: config.dev, base_url, jobs: job_settings(config) }),
        work: Arc::new(tokio::sync::Notify::new()),
    }
}

fn acm_settings(config: &Config, approval_addr: std::net::SocketAddr) -> AcmSettings {
    AcmSettings {
        domains_per_certificate: config.acm.domains_per_certificate,
        certificates_per_account: config.acm.certificates_per_account,
        certificates_per_year: config.acm.certificates_per_year,
        validity_days: config.acm.validity_days,
        renewal_days_before_expiry: config.acm.renewal_days_before_expiry,
        dev_auto_approve_ms: config.acm.dev_auto_approve_ms,
        throttling: config.acm.throttling && !config.dev,
        name_servers: config.acm.name_servers.clone(),
        dns_timeout_ms: config.acm.dns_timeout_ms,
        http_validation_port: config.acm.http_validation_port,
        issuer_domain: config.acm.issuer_domain.clone(),
        validation_retry_min_ms: config.acm.validation_retry_min_ms,
        validation_retry_max_ms: config.acm.validation_retry_max_ms,
        validation_window_ms: i64::try_from(config.acm.validation_timeout_secs.saturating_mul(1_000))
            .unwrap_or(i64::MAX),
        smtp: carapace_checks::SmtpSettings {
            host: config.acm.smtp_host.clone(),
            port: config.acm.smtp_port,
            starttls: config.acm.smtp_starttls,
            from: config.acm.smtp_from.clone(),
            timeout: Duration::from_millis(config.acm.dns_timeout_ms.max(1_000) * 2),
        },
        approval_base_url: approval_base_url(config, approval_addr),
        events: config.event_settings(),
    }
}

fn job_settings(config: &Config) -> carapace_kernel::jobs::JobSettings {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    carapace_kernel::jobs::JobSettings {
        lease_ms: i64::try_from(config.jobs.lease_ms).unwrap_or(i64::MAX),
        max_failures: config.jobs.max_failures,
        concurrency: if config.jobs.concurrency == 0 { cores } else { config.jobs.concurrency },
    }
}

/// The approval page's public base URL: configured, or `https://<address it listens on>`.
fn approval_base_url(config: &Config, bound: std::net::SocketAddr) -> String {
    if config.acm.approval_base_url.is_empty() {
        format!("https://{bound}")
    } else {
        config.acm.approval_base_url.trim_end_matches('/').to_owned()
    }
}

/// Access keys from the store, cached until the change feed says they changed. Without the
/// cache every request pays a store read and an AES-GCM unseal before its signature can be
/// checked. Revocation does not wait for the cache's TTL (`key_cache_secs`): the feed evicts
/// a key the moment its row changes (on this node, on another PostgreSQL node, or — SQLite —
/// by `carapace keys` in another process, within 100 ms); the TTL only bounds a feed that
/// is down.
struct KeyLookup {
    accounts: carapace_kernel::accounts::Accounts,
    cache: moka::future::Cache<String, Option<Credential>>,
    /// Bumped by every eviction: a lookup that read the store before an eviction does not
    /// cache what it read (it may be the revoked key).
    evictions: Arc<std::sync::atomic::AtomicU64>,
}

impl KeyLookup {
    fn new(accounts: carapace_kernel::accounts::Accounts, store: &dyn carapace_store::Store, ttl: Duration) -> Self {
        let cache = moka::future::Cache::builder().max_capacity(10_000).time_to_live(ttl).build();
        let mut feed = store.subscribe(&[carapace_kernel::accounts::KIND]);
        let evictions = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (evict, bump) = (cache.clone(), evictions.clone());
        tokio::spawn(async move {
            while let Some(event) = feed.next().await {
                bump.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                match event {
                    carapace_store::FeedEvent::Changed(change) => evict.invalidate(&change.key.id).await,
                    carapace_store::FeedEvent::Resync => evict.invalidate_all(),
                }
            }
        });
        Self { accounts, cache, evictions }
    }
}

#[async_trait::async_trait]
impl CredentialLookup for KeyLookup {
    async fn lookup(&self, access_key_id: &str) -> Result<Option<Credential>, WireError> {
        if let Some(hit) = self.cache.get(access_key_id).await {
            return Ok(hit);
        }
        let before = self.evictions.load(std::sync::atomic::Ordering::Acquire);
        match self.accounts.lookup(access_key_id).await {
            Ok(found) => {
                let credential = found.map(|(account_id, secret)| Credential {
                    account_id,
                    secret: SecretKey::new(secret.as_str().to_owned()),
                });
                if self.evictions.load(std::sync::atomic::Ordering::Acquire) == before {
                    self.cache.insert(access_key_id.to_owned(), credential.clone()).await;
                }
                Ok(credential)
            }
            Err(e) => {
                tracing::error!(error = carapace_kernel::error::chain(&e), "access key lookup failed");
                Err(WireError::internal())
            }
        }
    }
}
