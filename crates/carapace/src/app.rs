//! Opening a data directory: store, master key, CA, first-start admin key.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use carapace_kernel::accounts::{Accounts, random_account_id};
use carapace_kernel::ca::CertificateAuthority;
use carapace_kernel::crypto::MasterKey;
use carapace_kernel::module::ServiceModule;
use carapace_kernel::{Clock, OffsetClock, SystemClock};
use carapace_store::Store;
use carapace_store::postgres::PostgresStore;
use carapace_store::row_cache::RowCache;
use carapace_store::sqlite::{SqliteOptions, SqliteStore};

use crate::config::Config;

/// The profile name of the first-start admin credentials.
pub const ADMIN_PROFILE: &str = "carapace-admin";

/// An opened data directory.
pub struct App {
    /// The database.
    pub store: Arc<dyn Store>,
    /// The master key.
    pub master_key: Arc<MasterKey>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Access keys.
    pub accounts: Accounts,
}

impl App {
    /// Creates the data directory if needed and opens the store and master key, for the
    /// server.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        Self::open_as(config, false).await
    }

    /// Opens the data directory for a command (`carapace keys`, `ca`, `jobs`) that writes
    /// while a server may be running: no row cache, and on SQLite every batch tells the
    /// server's store that another process wrote (its caches resync at once).
    pub async fn open_command(config: &Config) -> anyhow::Result<Self> {
        Self::open_as(config, true).await
    }

    async fn open_as(config: &Config, command: bool) -> anyhow::Result<Self> {
        create_private_dir(&config.data_dir)?;
        let master_key = MasterKey::load_or_create(&config.master_key_path())
            .with_context(|| format!("master key {}", config.master_key_path().display()))?;
        let cache = (config.cache_rows > 0 && !command)
            .then(|| RowCache::new(carapace_kernel::module::server_owned_kinds(SERVICES), config.cache_rows));
        let store: Arc<dyn Store> = match &config.database_url {
            Some(url) => {
                // The URL may carry a password: name the database only by its kind.
                let mut store = PostgresStore::connect(url).await.context("PostgreSQL database (database_url)")?;
                if let Some(cache) = cache {
                    store = store.with_row_cache(cache);
                }
                Arc::new(store)
            }
            None => {
                let options = SqliteOptions {
                    wal_limit_bytes: config.sqlite_wal_limit_bytes,
                    cache_kib: config.sqlite_cache_kib,
                };
                let mut store = SqliteStore::open_with(&config.database_file(), options)
                    .with_context(|| format!("database {}", config.database_file().display()))?;
                if let Some(cache) = cache {
                    store = store.with_row_cache(cache);
                }
                if command {
                    store = store.external_writer();
                }
                Arc::new(store)
            }
        };
        // Every write goes through the core's indexer, so listings can filter on indexes.
        let store: Arc<dyn Store> = Arc::new(carapace_kernel::index::IndexedStore::new(store, indexers()));
        let master_key = Arc::new(master_key);
        let clock: Arc<dyn Clock> = if config.clock_offset_secs == 0 {
            Arc::new(SystemClock)
        } else {
            tracing::warn!(
                offset_secs = config.clock_offset_secs,
                "clock_offset_secs is set: this server's clock runs ahead of (or behind) the real time"
            );
            Arc::new(OffsetClock { offset_ms: config.clock_offset_secs.saturating_mul(1_000) })
        };
        let accounts = Accounts::new(store.clone(), master_key.clone(), clock.clone());
        Ok(Self { store, master_key, clock, accounts })
    }

    /// Loads the CA, creating it on first start with the subject `config` gives and its URLs
    /// under `base_url`.
    pub async fn ca(&self, config: &Config, base_url: &str) -> anyhow::Result<CertificateAuthority> {
        let (ca, created) = carapace_kernel::runtime::load_or_create_ca(
            self.store.as_ref(),
            &self.master_key,
            &config.ca_profile(base_url),
            self.clock.as_ref(),
        )
        .await?;
        let root = config.data_dir.join("ca-root.pem");
        if created || !root.exists() {
            write_private(&root, ca.root_pem().as_bytes()).with_context(|| format!("writing {}", root.display()))?;
        }
        if created {
            tracing::info!(root = %root.display(), "created a new certificate authority");
        }
        Ok(ca)
    }

    /// On first start in strict mode, creates an admin key for a fresh account and writes it
    /// as an AWS credentials-file profile (0600). Returns the file when one was written.
    pub async fn bootstrap_admin(&self, config: &Config) -> anyhow::Result<Option<PathBuf>> {
        if !self.accounts.list_keys().await?.is_empty() {
            return Ok(None);
        }
        let key = self.accounts.create_key(&random_account_id()).await?;
        let path = config.data_dir.join("admin-credentials");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        writeln!(
            file,
            "# Carapace admin credentials for account {}.\n# Use with: AWS_SHARED_CREDENTIALS_FILE={} AWS_PROFILE={ADMIN_PROFILE}\n[{ADMIN_PROFILE}]\naws_access_key_id = {}\naws_secret_access_key = {}",
            key.info.account_id,
            path.display(),
            key.info.access_key_id,
            key.secret.as_str()
        )?;
        file.sync_all()?;
        Ok(Some(path))
    }
}

/// Creates the data directory 0700, or warns when an existing one lets group or others in
/// (refusing to start would not undo what they may have read).
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        if let Some(mode) = shared_mode(dir) {
            tracing::warn!(
                dir = %dir.display(),
                mode = format_args!("{mode:o}"),
                "data directory is accessible to group or others; run `chmod 700` on it"
            );
        }
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))
}

/// The permission bits of `path` when group or others have any access, else `None`.
fn shared_mode(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Writes a file readable by its owner only (everything in the data directory is).
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(contents)?;
    // An existing file keeps its mode through `open`: tighten it.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
}

use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};

/// The services this binary runs: the one list the shared machinery takes its indexers and
/// cached kinds from. Access keys (written by `carapace keys`) and the CA
/// (`carapace ca import`) belong to no service and are never cached.
pub const SERVICES: &[ServiceModule] =
    &[carapace_acm::MODULE, carapace_ds::MODULE, carapace_lightsail::MODULE, carapace_pca::MODULE];

/// Every service's indexers, for the [`IndexedStore`](carapace_kernel::index::IndexedStore)
/// every write goes through.
pub fn indexers() -> Vec<carapace_kernel::index::Indexer> {
    carapace_kernel::module::indexers(SERVICES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_directories_and_private_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(shared_mode(dir.path()), Some(0o755));
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(shared_mode(dir.path()), None);
        let file = dir.path().join("f");
        std::fs::write(&file, "old").unwrap();
        write_private(&file, b"new").unwrap();
        assert_eq!(shared_mode(&file), None);
        assert_eq!(std::fs::read(&file).unwrap(), b"new");
    }
}
