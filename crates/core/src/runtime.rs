//! The handles every service shares: store, clock, master key, CA and settings.

use std::sync::Arc;

use carapace_store::{Key, Row, Store, Write};

use crate::ca::{CaMaterial, CertificateAuthority};
use crate::clock::Clock;
use crate::crypto::MasterKey;

/// Row kind of the CA material (one row, id [`CA_ID`], global scope).
pub const CA_KIND: &str = "ca.authority";
/// The id of the active CA.
pub const CA_ID: &str = "default";

/// Row kinds that only the running server writes (no `carapace` command touches them), so
/// its store may serve them from memory: certificates and their material, directories and
/// their registered certificates. Access keys (written by `carapace keys`) and the CA
/// (`carapace ca import`) are not among them.
pub const SERVER_OWNED_KINDS: &[&str] = &[
    crate::acm::record::KIND,
    crate::acm::record::MATERIAL_KIND,
    crate::ds::DIRECTORY_KIND,
    crate::ds::CERTIFICATE_KIND,
];

/// Settings the core needs, filled from the binary's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Emulator mode: validation is auto-approved after `acm.dev_auto_approve_ms`.
    pub dev: bool,
    /// Public base URL (AIA, CRL distribution points, approval links).
    pub base_url: String,
    /// ACM quotas and behaviour.
    pub acm: AcmSettings,
    /// Every service's background workers.
    pub jobs: crate::jobs::JobSettings,
    /// Where ACM's events are delivered.
    pub events: crate::events::EventSettings,
}

/// ACM quotas and behaviour.
#[derive(Debug, Clone)]
pub struct AcmSettings {
    /// Domain names allowed on one certificate.
    pub domains_per_certificate: u32,
    /// Certificates one account may hold in one region.
    pub certificates_per_account: u32,
    /// Certificates one account may request in one region in a rolling 365 days.
    pub certificates_per_year: u32,
    /// Validity of issued certificates, days (ACM: 198 since 15 March 2026).
    pub validity_days: u32,
    /// Managed renewal starts this many days before `NotAfter` (ACM: about 45).
    pub renewal_days_before_expiry: u32,
    /// Auto-approve delay in `--dev`, milliseconds.
    pub dev_auto_approve_ms: u64,
    /// Enforce per-operation request rates.
    pub throttling: bool,
    /// Name servers validation lookups ask (UDP, then TCP); empty = the system resolvers.
    pub name_servers: Vec<std::net::SocketAddr>,
    /// Timeout of one DNS query, milliseconds.
    pub dns_timeout_ms: u64,
    /// Port HTTP validation connects to for `http://` URLs that name none (ACM: 80).
    pub http_validation_port: u16,
    /// The issuer domain CAA records must name for Carapace to issue (RFC 8659 `issue`).
    pub issuer_domain: String,
    /// First delay between validation checks, milliseconds; doubles per check.
    pub validation_retry_min_ms: u64,
    /// Longest delay between validation checks, milliseconds.
    pub validation_retry_max_ms: u64,
    /// How long a request may stay pending before `VALIDATION_TIMED_OUT`, milliseconds
    /// (ACM: 72 hours).
    pub validation_window_ms: i64,
    /// The SMTP relay approval mail goes through.
    pub smtp: crate::validation::SmtpSettings,
    /// Base URL of the approval page links in validation mail point to.
    pub approval_base_url: String,
}

impl Default for AcmSettings {
    fn default() -> Self {
        Self {
            domains_per_certificate: 10,
            certificates_per_account: 2_500,
            certificates_per_year: 12_500,
            validity_days: 198,
            renewal_days_before_expiry: 45,
            dev_auto_approve_ms: 500,
            throttling: false,
            name_servers: Vec::new(),
            dns_timeout_ms: 5_000,
            http_validation_port: 80,
            issuer_domain: String::from("carapace.internal"),
            validation_retry_min_ms: 2_000,
            validation_retry_max_ms: 300_000,
            validation_window_ms: 72 * 3_600_000,
            smtp: crate::validation::SmtpSettings::default(),
            approval_base_url: String::from("https://127.0.0.1:4567"),
        }
    }
}

/// Shared handles. Cheap to clone.
#[derive(Clone)]
pub struct Core {
    /// Persistence.
    pub store: Arc<dyn Store>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Seals private keys and secrets at rest.
    pub master_key: Arc<MasterKey>,
    /// The issuing CA.
    pub ca: Arc<CertificateAuthority>,
    /// Settings.
    pub settings: Arc<Settings>,
    /// Wakes background workers when new work is enqueued (they also poll, slowly).
    pub work: Arc<tokio::sync::Notify>,
}

impl Core {
    /// Wakes every service's worker after enqueuing work (each claims only its own kinds;
    /// one that is busy finds the job when it next claims, or at its idle poll).
    pub fn wake_workers(&self) {
        self.work.notify_waiters();
        self.work.notify_one();
    }
}

/// Errors bringing the CA up.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] carapace_store::Error),
    /// The CA could not be generated or loaded.
    #[error("certificate authority: {0}")]
    Ca(String),
}

/// Loads the CA from the store, creating (and storing) a new one on first start. When two
/// nodes start at once, the loser of the insert race loads the winner's CA.
pub async fn load_or_create_ca(
    store: &dyn Store,
    master_key: &MasterKey,
    name: &str,
    clock: &dyn Clock,
) -> Result<(CertificateAuthority, bool), BootstrapError> {
    let key = Key::new(CA_KIND, "", CA_ID);
    if let Some(row) = store.get(&key).await? {
        return Ok((load_ca(&row, master_key)?, false));
    }
    let (ca, material) =
        CertificateAuthority::generate(name, clock.now(), master_key).map_err(|e| BootstrapError::Ca(e.to_string()))?;
    let body = serde_json::to_vec(&material).map_err(|e| BootstrapError::Ca(e.to_string()))?;
    let row = Row { key: key.clone(), version: 0, created_ms: clock.now_ms(), body };
    match store.apply(vec![Write::Put { row, expect: None }]).await {
        Ok(_) => Ok((ca, true)),
        Err(carapace_store::Error::Conflict(_)) => {
            let row = store.get(&key).await?.ok_or_else(|| BootstrapError::Ca("CA row vanished".into()))?;
            Ok((load_ca(&row, master_key)?, false))
        }
        Err(e) => Err(e.into()),
    }
}

/// Replaces the stored CA material (used by `carapace ca import`).
pub async fn store_ca(store: &dyn Store, material: &CaMaterial, now_ms: i64) -> Result<(), BootstrapError> {
    let key = Key::new(CA_KIND, "", CA_ID);
    let expect = store.get(&key).await?.map(|r| r.version);
    let body = serde_json::to_vec(material).map_err(|e| BootstrapError::Ca(e.to_string()))?;
    store.apply(vec![Write::Put { row: Row { key, version: 0, created_ms: now_ms, body }, expect }]).await?;
    Ok(())
}

fn load_ca(row: &Row, master_key: &MasterKey) -> Result<CertificateAuthority, BootstrapError> {
    let material: CaMaterial = serde_json::from_slice(&row.body).map_err(|e| BootstrapError::Ca(e.to_string()))?;
    CertificateAuthority::from_material(&material, master_key).map_err(|e| BootstrapError::Ca(e.to_string()))
}

/// Core handles for unit tests: an in-memory store, a fresh CA and master key, and a
/// hand-driven clock at 2026-01-01T00:00:00Z.
#[cfg(test)]
pub(crate) fn test_core(dev: bool, acm: AcmSettings) -> (Core, crate::clock::ManualClock) {
    let clock = crate::clock::ManualClock::new(1_767_225_600_000);
    let master = Arc::new(MasterKey::generate().expect("master key"));
    let (ca, _) = CertificateAuthority::generate("Carapace Test", clock.now() - time::Duration::days(1), &master)
        .expect("test CA");
    let core = Core {
        store: Arc::new(crate::index::IndexedStore::new(Arc::new(
            carapace_store::sqlite::SqliteStore::open_in_memory().expect("in-memory store"),
        ))),
        clock: Arc::new(clock.clone()),
        master_key: master,
        ca: Arc::new(ca),
        settings: Arc::new(Settings {
            dev,
            base_url: "http://127.0.0.1:4566".into(),
            acm,
            jobs: crate::jobs::JobSettings::default(),
            events: crate::events::EventSettings::default(),
        }),
        work: Arc::new(tokio::sync::Notify::new()),
    };
    (core, clock)
}
