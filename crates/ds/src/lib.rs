//! Directory Service: directories, registered certificates, LDAPS, client authentication.
//!
//! The rules live here; the `carapace-ds` crate maps its DTOs onto [`Directories`] and
//! runs the network part of the LDAPS check with `carapace_checks::ldaps` (TCP, TLS, a root
//! DSE search), which takes a [`LdapsPlan`] and answers with a [`LdapsFailure`] or success.
//!
//! One file per operation family, each an `impl Directories` block: `directories.rs`
//! (create, connect, describe, delete, limits), `tags.rs`, `certificates.rs` (register,
//! describe, list, deregister), `ldaps.rs` (enable, disable, describe, the check's plan and
//! outcome) and `client_auth.rs`. This file keeps the [`Directories`] handle, [`DsError`],
//! the views and pages they share, and the row, paging and retry helpers.
//!
//! Storage: directories are rows of kind [`DIRECTORY_KIND`] under `<account>/<region>`
//! with id `d-<10 hex>`; certificates are rows of kind [`CERTIFICATE_KIND`] with id
//! `<directory id>/<certificate id>`, so a prefix scan lists one directory's certificates.
//! Every change that depends on another row (a limit, "the last certificate") writes the
//! directory row at the version it read, so concurrent requests serialise on it and the
//! loser retries.
//!
//! Time-driven states (directory stages, certificate registration) are computed from
//! stored timestamps on read (see [`records`]): durable without a worker. The LDAPS check,
//! which does I/O, is identified by a check id stored with the `Enabling` status; whoever
//! runs it reports back through [`Directories::finish_ldaps_check`], which ignores stale ids.
//!
//! Deliberate differences from AWS, all because Carapace has no EC2 and runs no domain
//! controllers: VPC and subnet ids are checked only against the model's patterns (and that
//! there are two distinct subnets); availability zones, security groups and the DNS
//! addresses of Simple AD / Managed Microsoft AD are synthetic; `DeleteDirectory` removes
//! the directory at once instead of passing through `Deleting`.

pub mod certificate;
pub mod index;
pub mod jobs;
pub mod machine;
pub mod password;
pub mod records;

mod certificates;
mod client_auth;
mod directories;
mod ldaps;
mod tags;

use std::future::Future;

use carapace_store::{Cursor, Key, Order, Row, Scan, Write};

use carapace_kernel::runtime::Core;
use certificate::CertificateProblem;
use machine::{CertificateState, DirectoryStage};
use records::{CertificateRecord, DirectoryKind, DirectoryRecord};

/// The LDAPS check's plan and failures are plain data of `carapace-checks`, which runs it.
pub use carapace_checks::ldaps::{LdapsFailure, LdapsPlan};
pub use certificates::NewCertificate;
pub use directories::{LimitUsage, Limits, NewDirectory, availability_zones};
pub use ldaps::{LdapsView, PendingCheck};

/// Row kind of directories.
pub const DIRECTORY_KIND: &str = "ds.directory";
/// Row kind of registered certificates.
pub const CERTIFICATE_KIND: &str = "ds.certificate";
/// Directory Service's row kinds that only the running server writes, so its store may
/// serve them from memory: directories and their registered certificates.
pub const SERVER_OWNED_KINDS: &[&str] = &[DIRECTORY_KIND, CERTIFICATE_KIND];
/// Directory Service as the binary lists it: its indexed certificates and its server-owned
/// kinds.
pub const MODULE: carapace_kernel::module::ServiceModule = carapace_kernel::module::ServiceModule {
    name: "ds",
    indexers: &[index::INDEXER],
    server_owned_kinds: SERVER_OWNED_KINDS,
};
/// Row kind of the per-scope quota guard (one row, id `directories`): creates write it at
/// the version they read, so two creates cannot both take the last slot.
const QUOTA_KIND: &str = "ds.quota";

/// Tags one directory may carry (AWS quota).
pub const MAX_TAGS: usize = 50;
/// Default page size when a request gives no (or a zero) `Limit`.
pub const DEFAULT_PAGE: usize = 100;

/// Directories one account may have per region, by kind (AWS default quotas).
pub fn directory_limit(kind: DirectoryKind) -> usize {
    match kind {
        DirectoryKind::SimpleAd => 10,
        DirectoryKind::MicrosoftAd => 20,
        DirectoryKind::AdConnector => 10,
    }
}

/// Everything that can go wrong, one variant per AWS error the rules produce.
#[derive(Debug, thiserror::Error)]
pub enum DsError {
    /// No such directory in the caller's account and region. Directory operations call
    /// this `EntityDoesNotExistException`, certificate and LDAPS operations
    /// `DirectoryDoesNotExistException`.
    #[error("Directory {0} does not exist.")]
    DirectoryNotFound(String),
    /// `CertificateDoesNotExistException`.
    #[error("Certificate {0} does not exist.")]
    CertificateNotFound(String),
    /// `DirectoryLimitExceededException`.
    #[error("{0}")]
    DirectoryLimitExceeded(String),
    /// `InvalidParameterException`.
    #[error("{0}")]
    InvalidParameter(String),
    /// `InvalidCertificateException`.
    #[error(transparent)]
    InvalidCertificate(#[from] CertificateProblem),
    /// `CertificateAlreadyExistsException`.
    #[error("{0}")]
    CertificateAlreadyExists(String),
    /// `CertificateLimitExceededException`.
    #[error("{0}")]
    CertificateLimitExceeded(String),
    /// `UnsupportedOperationException`.
    #[error("{0}")]
    Unsupported(String),
    /// `DirectoryUnavailableException`.
    #[error("{0}")]
    DirectoryUnavailable(String),
    /// `CertificateInUseException`.
    #[error("{0}")]
    CertificateInUse(String),
    /// `NoAvailableCertificateException`.
    #[error("{0}")]
    NoAvailableCertificate(String),
    /// `InvalidLDAPSStatusException`.
    #[error("{0}")]
    InvalidLdapsStatus(String),
    /// `InvalidClientAuthStatusException`.
    #[error("{0}")]
    InvalidClientAuthStatus(String),
    /// `InvalidNextTokenException`.
    #[error("The NextToken value is not valid.")]
    InvalidNextToken,
    /// `TagLimitExceededException`.
    #[error("{0}")]
    TagLimitExceeded(String),
    /// The store failed (a fault, never shown to a client).
    #[error(transparent)]
    Store(#[from] carapace_store::Error),
    /// Something else internal failed (a fault, never shown to a client).
    #[error("internal: {0}")]
    Internal(String),
    /// Something internal failed with an error of its own (a fault, never shown to a client).
    /// The message carries the source's whole chain as well, because the wire layer logs
    /// the message.
    #[error("internal: {what}: {}", carapace_kernel::error::chain(source.as_ref()))]
    Fault {
        /// What failed.
        what: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl DsError {
    /// A fault: `what` failed because of `source`.
    pub(crate) fn fault(what: &'static str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Fault { what, source: source.into() }
    }
}

/// A stored record that does not decode or encode is a fault.
impl From<carapace_kernel::stored::RecordError> for DsError {
    fn from(e: carapace_kernel::stored::RecordError) -> Self {
        Self::fault("a stored record", e)
    }
}

/// Result alias.
pub type Result<T, E = DsError> = std::result::Result<T, E>;

/// A directory as read at one instant.
#[derive(Debug, Clone)]
pub struct DirectoryView {
    /// The stored record.
    pub record: DirectoryRecord,
    /// Its stage now.
    pub stage: DirectoryStage,
    /// When that stage began, Unix milliseconds.
    pub stage_since_ms: i64,
}

/// A registered certificate as read at one instant.
#[derive(Debug, Clone)]
pub struct CertificateView {
    /// The stored record.
    pub record: CertificateRecord,
    /// Its state now.
    pub state: CertificateState,
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_token: Option<String>,
}

/// The Directory Service rules over the core's store and clock.
#[derive(Clone)]
pub struct Directories {
    core: Core,
    step_ms: i64,
}

impl Directories {
    /// The rules over these handles.
    pub fn new(core: Core) -> Self {
        Self { core, step_ms: records::DIRECTORY_STEP_MS }
    }

    /// Sets how long new directories stay in each of `Requested` and `Creating`.
    pub fn with_directory_step_ms(mut self, step_ms: i64) -> Self {
        self.step_ms = step_ms.max(0);
        self
    }

    fn now(&self) -> i64 {
        self.core.clock.now_ms()
    }

    // ----- rows ----------------------------------------------------------------------

    /// Reads a directory and its row version.
    async fn directory(&self, scope: &str, id: &str) -> Result<(DirectoryRecord, u64)> {
        let row = self
            .core
            .store
            .get(&Key::new(DIRECTORY_KIND, scope, id))
            .await?
            .ok_or_else(|| DsError::DirectoryNotFound(id.to_owned()))?;
        Ok((decode(&row)?, row.version))
    }

    async fn put_directory(&self, scope: &str, record: &DirectoryRecord, version: u64) -> Result<()> {
        let row = directory_row(scope, record, self.now())?;
        self.core.store.apply(vec![Write::Put { row, expect: Some(version) }]).await?;
        Ok(())
    }

    async fn all_directories(&self, scope: &str) -> Result<Vec<DirectoryRecord>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let rows = self
                .core
                .store
                .scan(Scan { kind: DIRECTORY_KIND, scope, id_prefix: None, after, order: Order::Ascending, limit: 500 })
                .await?;
            let done = rows.len() < 500;
            after = rows.last().map(|r| Cursor { created_ms: r.created_ms, id: r.key.id.clone() });
            for row in &rows {
                out.push(decode(row)?);
            }
            if done {
                return Ok(out);
            }
        }
    }

    async fn certificate_rows(&self, scope: &str, directory_id: &str) -> Result<Vec<Row>> {
        let prefix = format!("{directory_id}/");
        let mut out: Vec<Row> = Vec::new();
        loop {
            let after = out.last().map(|r| Cursor { created_ms: r.created_ms, id: r.key.id.clone() });
            let rows = self
                .core
                .store
                .scan(Scan {
                    kind: CERTIFICATE_KIND,
                    scope,
                    id_prefix: Some(&prefix),
                    after,
                    order: Order::Ascending,
                    limit: 500,
                })
                .await?;
            let done = rows.len() < 500;
            out.extend(rows);
            if done {
                return Ok(out);
            }
        }
    }

    /// Certificates of a directory that still count (registering or registered).
    async fn live_certificates(&self, scope: &str, directory_id: &str, now: i64) -> Result<Vec<CertificateView>> {
        let mut out = Vec::new();
        for row in self.certificate_rows(scope, directory_id).await? {
            let record: CertificateRecord = decode(&row)?;
            let state = record.state_at(now);
            if state.is_live() {
                out.push(CertificateView { record, state });
            }
        }
        Ok(out)
    }

    /// A certificate that has not finished deregistering, with its row version.
    async fn certificate(
        &self,
        scope: &str,
        directory_id: &str,
        certificate_id: &str,
        now: i64,
    ) -> Result<(CertificateView, u64)> {
        let key = Key::new(CERTIFICATE_KIND, scope, format!("{directory_id}/{certificate_id}"));
        let row =
            self.core.store.get(&key).await?.ok_or_else(|| DsError::CertificateNotFound(certificate_id.to_owned()))?;
        let record: CertificateRecord = decode(&row)?;
        let state = record.state_at(now);
        if state == CertificateState::Deregistered {
            return Err(DsError::CertificateNotFound(certificate_id.to_owned()));
        }
        Ok((CertificateView { record, state }, row.version))
    }
}

/// Runs `attempt` again when it lost a write race (a store conflict), as every service's
/// optimistic writes do ([`carapace_kernel::optimistic!`]): each attempt re-reads what it depends on.
/// A race lost every time answers the last conflict.
async fn retry<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut lost = None;
    carapace_kernel::optimistic!(
        DsError,
        DsError::Store(match lost {
            Some(key) => carapace_store::Error::Conflict(key),
            None => carapace_store::Error::Backend("write race lost".into()),
        }),
        |_| {
            match attempt().await {
                Err(DsError::Store(carapace_store::Error::Conflict(key))) => {
                    tracing::debug!(%key, "write race lost; retrying");
                    lost = Some(key);
                    Ok(None)
                }
                other => other.map(Some),
            }
        }
    )
}

fn view(record: DirectoryRecord, now: i64) -> DirectoryView {
    let (stage, stage_since_ms) = record.stage_at(now);
    DirectoryView { record, stage, stage_since_ms }
}

fn require_active(directory: &DirectoryRecord, now: i64) -> Result<()> {
    let (stage, _) = directory.stage_at(now);
    if stage == DirectoryStage::Active {
        Ok(())
    } else {
        Err(DsError::DirectoryUnavailable(format!(
            "Directory {} is not available: its stage is {}.",
            directory.id,
            stage.as_str()
        )))
    }
}

fn check_tag_keys<'a>(keys: impl Iterator<Item = &'a str>) -> Result<()> {
    for key in keys {
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(DsError::InvalidParameter(format!(
                "Tag key '{key}' is not valid: the prefix 'aws:' is reserved for AWS use."
            )));
        }
    }
    Ok(())
}

fn page_size(limit: Option<usize>) -> usize {
    match limit {
        None | Some(0) => DEFAULT_PAGE,
        Some(n) => n.min(DEFAULT_PAGE),
    }
}

fn offset_page<T>(items: Vec<T>, limit: Option<usize>, token: Option<&str>) -> Result<Page<T>> {
    let start = match token {
        None => 0,
        Some(t) => {
            let text = hex::decode(t).ok().and_then(|b| String::from_utf8(b).ok()).ok_or(DsError::InvalidNextToken)?;
            let n = text.strip_prefix("o:").and_then(|n| n.parse::<usize>().ok()).ok_or(DsError::InvalidNextToken)?;
            if n > items.len() {
                return Err(DsError::InvalidNextToken);
            }
            n
        }
    };
    let limit = page_size(limit);
    let end = (start + limit).min(items.len());
    let next_token = (end < items.len()).then(|| hex::encode(format!("o:{end}")));
    Ok(Page { items: items.into_iter().skip(start).take(end - start).collect(), next_token })
}

fn encode_cursor(c: &Cursor) -> String {
    hex::encode(format!("k:{}:{}", c.created_ms, c.id))
}

fn decode_cursor(token: &str) -> Result<Cursor> {
    let text = hex::decode(token).ok().and_then(|b| String::from_utf8(b).ok()).ok_or(DsError::InvalidNextToken)?;
    let rest = text.strip_prefix("k:").ok_or(DsError::InvalidNextToken)?;
    let (ms, id) = rest.split_once(':').ok_or(DsError::InvalidNextToken)?;
    let created_ms = ms.parse().map_err(|_| DsError::InvalidNextToken)?;
    Ok(Cursor { created_ms, id: id.to_owned() })
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).map_err(|e| DsError::fault("drawing random bytes", e))?;
    Ok(hex::encode(buf))
}

fn decode<T: serde::de::DeserializeOwned>(row: &Row) -> Result<T> {
    Ok(carapace_kernel::stored::decode("Directory Service record", &row.body)?)
}

fn directory_row(scope: &str, record: &DirectoryRecord, now: i64) -> Result<Row> {
    let body = carapace_kernel::stored::encode("directory record", record)?;
    Ok(Row { key: Key::new(DIRECTORY_KIND, scope, &record.id), version: 0, created_ms: now, body })
}

fn certificate_row(scope: &str, record: &CertificateRecord, now: i64) -> Result<Row> {
    let body = carapace_kernel::stored::encode("Directory Service certificate record", record)?;
    let id = format!("{}/{}", record.directory_id, record.id);
    Ok(Row { key: Key::new(CERTIFICATE_KIND, scope, id), version: 0, created_ms: now, body })
}

#[cfg(test)]
mod tests;
