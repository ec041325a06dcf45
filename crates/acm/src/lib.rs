//! ACM certificate lifecycle: records, state machine, requests, issuance, import/export.
//!
//! [`CertificateManager`] is the one entry point: the ACM handler calls its methods with
//! plain Rust values (no DTOs, no JSON), and [`AcmJobs`] runs, in the generic
//! [`carapace_kernel::jobs::Worker`], the background jobs (issuance, renewal, validation, timeouts)
//! that requests enqueue.
//!
//! - [`state`]: the closed state machine; every status change goes through
//!   [`state::transition`].
//! - [`record`]: what is stored (a small record row and a material row per certificate).
//! - [`names`]: domain names, ARNs and tags.
//! - [`validation`]: the DNS records, HTTP redirects and addresses that prove ownership.
//!
//! Accounts and regions are isolated by the store scope `<account>/<region>`: a certificate
//! ARN naming another account or region is answered exactly like one that does not exist.

mod account;
mod error;
pub mod events;
mod filter;
mod import_export;
pub mod index;
mod issue;
pub mod jobs;
pub mod lifecycle;
mod manage;
pub mod names;
pub mod ownership;
mod query;
mod quota;
pub mod record;
mod request;
mod settings;
pub mod state;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
mod validate;
pub mod validation;

use std::sync::Arc;

pub use error::AcmError;
pub(crate) use error::busy;

use carapace_store::{Key, Row, Write};

pub use account::AccountConfiguration;
pub use filter::{DEFAULT_LIST_KEY_TYPES, ListFilter};
pub use import_export::{ExportedCertificate, ImportRequest, TlsMaterial};
pub use jobs::{AcmJob, AcmJobs};
pub use manage::OptionsUpdate;
pub use names::{CertificateArn, Tag};
pub use query::{CertificateView, DomainValidationPage, ListPage, ListQuery, SearchPage, SearchQuery};
pub use record::{
    CertificateRecord, CertificateType, HeldBy, KeyPairOrigin, ManagedBy, Options, RevocationReason, ValidationMethod,
};
pub use request::{CertificateUsage, Holder, NewCertificate, RootHierarchy};
pub use settings::AcmSettings;
pub use state::Status;
pub use validate::{ApprovalView, EMAIL_SENT_KIND};

use crate::ownership::Checkers;
use carapace_kernel::Core;
use carapace_kernel::retry::commit;
use validation::ValidationSecret;

/// ACM's row kinds that only the running server writes (no `carapace` command touches
/// them), so its store may serve them from memory: certificates and their material.
pub const SERVER_OWNED_KINDS: &[&str] = &[record::KIND, record::MATERIAL_KIND];

/// ACM as the binary lists it: its indexed certificates and its server-owned kinds.
pub const MODULE: carapace_kernel::module::ServiceModule = carapace_kernel::module::ServiceModule {
    name: "acm",
    indexers: &[index::INDEXER],
    server_owned_kinds: SERVER_OWNED_KINDS,
};

/// The default validation window: a request not validated within 72 hours times out (ACM).
/// The server's window is [`crate::AcmSettings::validation_window_ms`].
pub const VALIDATION_WINDOW_MS: i64 = 72 * 3_600_000;
/// How long an idempotency token keeps returning the same ARN (ACM: one hour).
pub const IDEMPOTENCY_WINDOW_MS: i64 = 3_600_000;

/// Who is asking: an account in a region. Certificates live per account and region.
pub use carapace_kernel::owner::Owner;

/// A record read from the store with the version to write it back at.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    /// The certificate id (the ARN's last part).
    pub id: String,
    /// The row version read.
    pub version: u64,
    /// The row's creation time (list order).
    pub created_ms: i64,
    /// The record.
    pub record: CertificateRecord,
}

/// ACM over the core: requests, queries, management and the background worker.
#[derive(Clone)]
pub struct CertificateManager {
    core: Core,
    settings: Arc<AcmSettings>,
    secret: Arc<tokio::sync::OnceCell<ValidationSecret>>,
    usage_locks: Arc<quota::ScopeLocks>,
    checkers: Option<Checkers>,
    private_cas: Option<carapace_pca::PrivateCas>,
}

impl CertificateManager {
    /// ACM over these core handles. It runs no DNS, HTTP or email validation check until
    /// given [`Self::with_checkers`]: requests, queries and `--dev` need none.
    pub fn new(core: Core, settings: AcmSettings) -> Self {
        Self {
            core,
            settings: Arc::new(settings),
            secret: Arc::new(tokio::sync::OnceCell::new()),
            usage_locks: Arc::default(),
            checkers: None,
            private_cas: None,
        }
    }

    /// The manager that asks AWS Private CA's `cas` for private certificates
    /// (RequestCertificate with `CertificateAuthorityArn`). Without them such a request is
    /// refused.
    pub fn with_private_cas(self, cas: carapace_pca::PrivateCas) -> Self {
        Self { private_cas: Some(cas), ..self }
    }

    /// ACM's settings.
    pub fn settings(&self) -> &AcmSettings {
        &self.settings
    }

    /// The manager whose validation jobs ask `checkers` (the ACM worker's: the binary passes
    /// `carapace_checks::Checkers::live`). Without them a validation or approval-mail job
    /// fails, is retried and in the end dead-lettered, loudly.
    pub fn with_checkers(self, checkers: Checkers) -> Self {
        Self { checkers: Some(checkers), ..self }
    }

    /// The validation checkers, or why there are none.
    pub(crate) fn checkers(&self) -> Result<&Checkers, AcmError> {
        self.checkers.as_ref().ok_or_else(|| {
            AcmError::internal(
                "no validation checkers: this manager was built without CertificateManager::with_checkers",
            )
        })
    }

    /// The core handles.
    pub fn core(&self) -> &Core {
        &self.core
    }

    fn now_ms(&self) -> i64 {
        self.core.clock.now_ms()
    }

    /// The validation secret, loaded (or created) once per process.
    pub(crate) async fn secret(&self) -> Result<&ValidationSecret, AcmError> {
        self.secret
            .get_or_try_init(|| async {
                ValidationSecret::load_or_create(self.core.store.as_ref(), &self.core.master_key, self.now_ms()).await
            })
            .await
    }

    /// Reads a certificate by id within a scope.
    pub(crate) async fn load_id(&self, scope: &str, id: &str) -> Result<Option<Loaded>, AcmError> {
        let Some(row) = self.core.store.get(&Key::new(record::KIND, scope, id)).await? else {
            return Ok(None);
        };
        let record = CertificateRecord::decode(&row.body)?;
        Ok(Some(Loaded { id: id.to_owned(), version: row.version, created_ms: row.created_ms, record }))
    }

    /// Whether a certificate with this id exists in `scope` (another service checking the
    /// certificate it holds is still there).
    pub async fn holds(&self, scope: &str, id: &str) -> Result<bool, AcmError> {
        Ok(self.load_id(scope, id).await?.is_some())
    }

    /// Reads the caller's certificate named by `arn`, or [`AcmError::NotFound`].
    pub(crate) async fn load(&self, owner: &Owner, arn: &str) -> Result<Loaded, AcmError> {
        let id = CertificateArn::id_for(arn, owner)?;
        self.load_id(&owner.scope(), &id).await?.ok_or_else(|| AcmError::NotFound(arn.to_owned()))
    }

    /// Read-modify-write of the caller's certificate: `change` edits the record (and may add
    /// writes to the same batch); the result is written at the version read, and the whole
    /// thing is retried from a fresh read if another writer got there first.
    pub(crate) async fn modify<F>(&self, owner: &Owner, arn: &str, mut change: F) -> Result<CertificateRecord, AcmError>
    where
        F: FnMut(&mut CertificateRecord, i64) -> Result<Vec<Write>, AcmError>,
    {
        carapace_kernel::optimistic!(AcmError, busy(arn), |_| {
            let mut loaded = self.load(owner, arn).await?;
            let extra = change(&mut loaded.record, self.now_ms())?;
            let mut writes = vec![record_put(&owner.scope(), &loaded, Some(loaded.version))?];
            writes.extend(extra);
            Ok(commit(self.core.store.as_ref(), writes).await?.then_some(loaded.record))
        })
    }
}

/// A `Put` of a loaded record at `expect`.
pub(crate) fn record_put(scope: &str, loaded: &Loaded, expect: Option<u64>) -> Result<Write, AcmError> {
    Ok(Write::Put {
        row: Row {
            key: Key::new(record::KIND, scope, &loaded.id),
            version: 0,
            created_ms: loaded.created_ms,
            body: loaded.record.encode()?,
        },
        expect,
    })
}
