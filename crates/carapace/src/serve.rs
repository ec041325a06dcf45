//! `carapace serve`: wires the pieces together and runs until told to stop.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use carapace_core::acm::CertificateManager;
use carapace_core::{AcmSettings, Core, Settings};
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
    let app = App::open(&config).await?;
    let ca = Arc::new(app.ca(&config).await?);
    if !config.dev
        && let Some(path) = app.bootstrap_admin(&config).await?
    {
        // The secret goes only to the 0600 file, never to stdout or the log.
        println!("admin credentials written to {} (profile {})", path.display(), crate::app::ADMIN_PROFILE);
    }
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let base_url = config.base_url.clone().unwrap_or_else(|| format!("http://{addr}"));
    // Bound before the core's settings are built: with `approval_listen` on port 0 the mail
    // links must carry the port actually bound.
    let approval_listener = approval_listener(&config).await;
    let approval_addr = match &approval_listener {
        Some(listener) => listener.local_addr()?,
        None => config.acm.approval_listen,
    };
    let core = Core {
        store: app.store.clone(),
        clock: app.clock.clone(),
        master_key: app.master_key.clone(),
        ca: ca.clone(),
        settings: Arc::new(Settings { dev: config.dev, base_url, acm: acm_settings(&config, approval_addr) }),
        work: Arc::new(tokio::sync::Notify::new()),
    };
    let services: Vec<Arc<dyn ServiceHandler>> = vec![
        Arc::new(carapace_acm::Acm::new(core.clone())),
        Arc::new(carapace_ds::Ds::new(core.clone())),
        Arc::new(carapace_lightsail::Lightsail::new(core.clone(), config.lightsail_settings())),
    ];
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workers = carapace_acm::spawn_workers(core.clone(), stop_rx.clone());
    let dispatcher = Dispatcher::new(
        services,
        Arc::new(KeyLookup::new(app.accounts.clone())),
        DispatcherConfig { dev: config.dev, max_body_bytes: config.max_body_bytes, ..Default::default() },
    );
    let front = Arc::new(Front {
        dispatcher,
        metrics: Metrics::new(),
        store: app.store.clone(),
        static_routes: vec![(
            String::from("/ca/root.pem"),
            "application/x-pem-file",
            Bytes::from(ca.root_pem().to_owned()),
        )],
        acm: Some(CertificateManager::new(core.clone())),
        ca: Some(ca.clone()),
    });
    let approval_page = match approval_listener {
        Some(listener) => {
            let names = approval::certificate_names(&core.settings.acm.approval_base_url);
            let tls = approval::tls_config(&ca, &names, &core.settings.base_url, config.acm.validity_days)?;
            let manager = CertificateManager::new(core.clone());
            Some(tokio::spawn(approval::run(listener, tls, manager, stop_rx.clone())))
        }
        None => None,
    };
    tracing::info!(%addr, dev = config.dev, data_dir = %config.data_dir.display(), "carapace listening");
    // Tests and scripts read the bound addresses from these lines.
    println!("carapace listening on http://{addr}");
    if approval_page.is_some() {
        tracing::info!(addr = %approval_addr, "approval page listening");
        println!("carapace approval page on https://{approval_addr}");
    }
    server::run(listener, front, shutdown, Duration::from_secs(config.shutdown_grace_secs)).await;
    let _ = stop_tx.send(true);
    for worker in workers.into_iter().chain(approval_page) {
        let _ = tokio::time::timeout(Duration::from_secs(5), worker).await;
    }
    app.store.close().await?;
    tracing::info!("stopped");
    Ok(())
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

fn acm_settings(config: &Config, approval_addr: std::net::SocketAddr) -> AcmSettings {
    AcmSettings {
        domains_per_certificate: config.acm.domains_per_certificate,
        certificates_per_account: config.acm.certificates_per_account,
        certificates_per_year: config.acm.certificates_per_year,
        validity_days: config.acm.validity_days,
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
        job_lease_ms: i64::try_from(config.acm.job_lease_ms).unwrap_or(i64::MAX),
        smtp: carapace_core::validation::SmtpSettings {
            host: config.acm.smtp_host.clone(),
            port: config.acm.smtp_port,
            starttls: config.acm.smtp_starttls,
            from: config.acm.smtp_from.clone(),
            timeout: Duration::from_millis(config.acm.dns_timeout_ms.max(1_000) * 2),
        },
        approval_base_url: approval_base_url(config, approval_addr),
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

/// How long a looked-up key (or its absence) is trusted before the store is asked again:
/// `carapace keys revoke` takes effect within this time. Without the cache every request
/// pays a store read and an AES-GCM unseal before its signature can be checked.
const KEY_CACHE_TTL: Duration = Duration::from_secs(5);

/// Access keys from the store, cached briefly.
struct KeyLookup {
    accounts: carapace_core::accounts::Accounts,
    cache: moka::future::Cache<String, Option<Credential>>,
}

impl KeyLookup {
    fn new(accounts: carapace_core::accounts::Accounts) -> Self {
        Self {
            accounts,
            cache: moka::future::Cache::builder().max_capacity(10_000).time_to_live(KEY_CACHE_TTL).build(),
        }
    }
}

#[async_trait::async_trait]
impl CredentialLookup for KeyLookup {
    async fn lookup(&self, access_key_id: &str) -> Result<Option<Credential>, WireError> {
        if let Some(hit) = self.cache.get(access_key_id).await {
            return Ok(hit);
        }
        match self.accounts.lookup(access_key_id).await {
            Ok(found) => {
                let credential = found.map(|(account_id, secret)| Credential {
                    account_id,
                    secret: SecretKey::new(secret.as_str().to_owned()),
                });
                self.cache.insert(access_key_id.to_owned(), credential.clone()).await;
                Ok(credential)
            }
            Err(e) => {
                tracing::error!(error = %e, "access key lookup failed");
                Err(WireError::internal())
            }
        }
    }
}
