//! The handles every service shares: store, clock, master key, CA and settings.

use std::sync::Arc;

use carapace_store::{Key, Row, Store, Write};

use crate::ca::{CaMaterial, CaProfile, CertificateAuthority};
use crate::clock::Clock;
use crate::crypto::MasterKey;

/// Row kind of the CA material (one row, id [`CA_ID`], global scope).
pub const CA_KIND: &str = "ca.authority";
/// The id of the active CA.
pub const CA_ID: &str = "default";

/// Settings every service shares, filled from the binary's configuration. Each service's
/// own settings travel with that service's manager (ACM's in
/// `AcmSettings`), not here.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Emulator mode: validation is auto-approved after `acm.dev_auto_approve_ms`.
    pub dev: bool,
    /// Public base URL (AIA, CRL distribution points, approval links).
    pub base_url: String,
    /// Every service's background workers.
    pub jobs: crate::jobs::JobSettings,
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
    /// The CA could not be generated, loaded from its material or given its N2 hierarchy.
    #[error("certificate authority: {what}")]
    Ca {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: crate::ca::CaError,
    },
    /// The stored CA material does not encode or decode.
    #[error("certificate authority")]
    Material(#[from] crate::stored::RecordError),
    /// The CA row was gone right after it was written.
    #[error("certificate authority: the CA row vanished")]
    Vanished,
}

impl BootstrapError {
    /// A `map_err` for a CA failure while doing `what`.
    fn ca(what: &'static str) -> impl FnOnce(crate::ca::CaError) -> Self {
        move |source| Self::Ca { what, source }
    }
}

/// Loads the CA from the store, creating (and storing) a new one as `profile` describes on
/// first start. A stored CA is loaded as it is: `profile` applies to new CAs only, and to the
/// N2 hierarchy (ACM's `RootHierarchyType`), which is added to stored material that lacks it.
/// When two nodes start at once, the loser of each write race loads the winner's CA.
pub async fn load_or_create_ca(
    store: &dyn Store,
    master_key: &MasterKey,
    profile: &CaProfile,
    clock: &dyn Clock,
) -> Result<(CertificateAuthority, bool), BootstrapError> {
    let key = Key::new(CA_KIND, "", CA_ID);
    let mut created = false;
    if store.get(&key).await?.is_none() {
        let (_, material) = CertificateAuthority::generate(profile, clock.now(), master_key)
            .map_err(BootstrapError::ca("generating the CA"))?;
        let row = Row { key: key.clone(), version: 0, created_ms: clock.now_ms(), body: encode_material(&material)? };
        match store.apply(vec![Write::Put { row, expect: None }]).await {
            Ok(_) => created = true,
            Err(carapace_store::Error::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let row = store.get(&key).await?.ok_or(BootstrapError::Vanished)?;
    let mut material = decode_material(&row)?;
    let ca = CertificateAuthority::from_material(&material, master_key)
        .map_err(BootstrapError::ca("loading the stored CA"))?;
    if material.n2.is_some() {
        return Ok((ca, created));
    }
    let ca = ca
        .add_n2(&mut material, profile, clock.now(), master_key)
        .map_err(BootstrapError::ca("adding the N2 hierarchy"))?;
    let body = encode_material(&material)?;
    let put = Write::Put {
        row: Row { key: key.clone(), version: 0, created_ms: row.created_ms, body },
        expect: Some(row.version),
    };
    match store.apply(vec![put]).await {
        Ok(_) => Ok((ca, created)),
        Err(carapace_store::Error::Conflict(_)) => {
            let row = store.get(&key).await?.ok_or(BootstrapError::Vanished)?;
            Ok((load_ca(&row, master_key)?, created))
        }
        Err(e) => Err(e.into()),
    }
}

fn encode_material(material: &CaMaterial) -> Result<Vec<u8>, BootstrapError> {
    Ok(crate::stored::encode("CA material", material)?)
}

fn decode_material(row: &Row) -> Result<CaMaterial, BootstrapError> {
    Ok(crate::stored::decode("CA material", &row.body)?)
}

/// Replaces the stored CA material (used by `carapace ca import`).
pub async fn store_ca(store: &dyn Store, material: &CaMaterial, now_ms: i64) -> Result<(), BootstrapError> {
    let key = Key::new(CA_KIND, "", CA_ID);
    let expect = store.get(&key).await?.map(|r| r.version);
    let body = encode_material(material)?;
    store.apply(vec![Write::Put { row: Row { key, version: 0, created_ms: now_ms, body }, expect }]).await?;
    Ok(())
}

fn load_ca(row: &Row, master_key: &MasterKey) -> Result<CertificateAuthority, BootstrapError> {
    CertificateAuthority::from_material(&decode_material(row)?, master_key)
        .map_err(BootstrapError::ca("loading the stored CA"))
}

/// Core handles for unit tests: an in-memory store indexing the kinds of `indexers`, a fresh
/// CA (with its N2 hierarchy) and master key, and a hand-driven clock at
/// 2026-01-01T00:00:00Z.
#[cfg(any(test, feature = "testing"))]
pub fn test_core(dev: bool, indexers: Vec<crate::index::Indexer>) -> (Core, crate::clock::ManualClock) {
    let clock = crate::clock::ManualClock::new(1_767_225_600_000);
    let master = Arc::new(MasterKey::generate().expect("master key"));
    let profile = CaProfile::new("Carapace Test", "http://127.0.0.1:4566");
    let (ca, mut material) =
        CertificateAuthority::generate(&profile, clock.now() - time::Duration::days(1), &master).expect("test CA");
    let ca = ca.add_n2(&mut material, &profile, clock.now() - time::Duration::days(1), &master).expect("test CA's N2");
    let core = Core {
        store: Arc::new(crate::index::IndexedStore::new(
            Arc::new(carapace_store::sqlite::SqliteStore::open_in_memory().expect("in-memory store")),
            indexers,
        )),
        clock: Arc::new(clock.clone()),
        master_key: master,
        ca: Arc::new(ca),
        settings: Arc::new(Settings {
            dev,
            base_url: "http://127.0.0.1:4566".into(),
            jobs: crate::jobs::JobSettings::default(),
        }),
        work: Arc::new(tokio::sync::Notify::new()),
    };
    (core, clock)
}
