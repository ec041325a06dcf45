//! AWS Private CA: certificate authorities a customer runs, and the certificates they sign.
//!
//! A CA is created with a key (generated here, sealed with the master key) and a certificate
//! signing request, `PENDING_CERTIFICATE`. A root CA signs its own certificate through
//! IssueCertificate with the `RootCACertificate/V1` template; a subordinate's comes from
//! another CA, Carapace's or anyone's. ImportCertificateAuthorityCertificate installs it after
//! the checks AWS makes, and the CA is `ACTIVE`. IssueCertificate is asynchronous as in AWS:
//! it checks the request and answers the certificate's ARN; the [`jobs`] worker signs, and
//! GetCertificate answers `RequestInProgressException` until it has. Revocations go into a
//! CRL the CA signs and publishes into its bucket ([`crl`]).
//!
//! One file per operation family, each an `impl PrivateCas` block: `authorities.rs`
//! (create, describe, list, update, delete, restore, the CA's request and certificate),
//! `tags.rs`, `certificates.rs` (issue, get, revoke), `crl.rs`, `reports.rs` (audit reports)
//! and `permissions.rs`. This file keeps the
//! [`PrivateCas`] handle, [`PcaError`] and the row helpers.
//!
//! Storage: CAs are rows of kind [`CA_KIND`] under `<account>/<region>` with their id;
//! certificates are rows of kind [`CERTIFICATE_KIND`] in the CA's scope with id
//! `<CA id>/<serial>`, so a prefix scan lists one CA's certificates. Idempotency tokens are
//! rows of kind [`TOKEN_KIND`].

pub mod jobs;
pub mod ocsp;
pub mod permissions;
pub mod policy;
pub mod records;
pub mod reports;

mod authorities;
mod certificates;
mod crl;
mod tags;

use std::path::PathBuf;

use base64::Engine as _;
use carapace_kernel::Owner;
use carapace_kernel::ca::PrivateKey;
use carapace_kernel::runtime::Core;
use carapace_store::{Key, Row};

pub use authorities::{NewAuthority, Validity, ValidityType};
pub use certificates::{AcmIssued, IssueRequest, RevocationReason};
use records::{CaRecord, CertificateRecord};

/// Row kind of certificate authorities.
pub const CA_KIND: &str = "pca.authority";
/// Row kind of the certificates CAs sign.
pub const CERTIFICATE_KIND: &str = "pca.certificate";
/// Row kind of idempotency tokens (id `<operation>/<token>`).
pub const TOKEN_KIND: &str = "pca.token";
/// Row kind of the per-scope guard that serialises CA creation against the quota.
const QUOTA_KIND: &str = "pca.quota";

/// AWS Private CA as the binary lists it: nothing indexed, nothing served from memory
/// (a CA is read on every issuance, and certificates are written by the worker).
pub const MODULE: carapace_kernel::module::ServiceModule =
    carapace_kernel::module::ServiceModule { name: "acm-pca", indexers: &[], server_owned_kinds: &[] };

/// CAs one account may have per region (AWS's default quota).
pub const MAX_AUTHORITIES: usize = 200;
/// Tags one CA may carry.
pub const MAX_TAGS: usize = 50;

/// AWS Private CA's settings.
#[derive(Debug, Clone)]
pub struct PcaSettings {
    /// Where objects AWS Private CA would write to an S3 bucket go: `<dir>/<bucket>/<key>`.
    pub buckets_dir: PathBuf,
}

/// Everything that can go wrong, one variant per AWS error the rules produce.
#[derive(Debug, thiserror::Error)]
pub enum PcaError {
    /// `ResourceNotFoundException`.
    #[error("{0}")]
    NotFound(String),
    /// `InvalidArnException`.
    #[error("{0}")]
    InvalidArn(String),
    /// `InvalidArgsException`.
    #[error("{0}")]
    InvalidArgs(String),
    /// `InvalidStateException`.
    #[error("{0}")]
    InvalidState(String),
    /// `InvalidRequestException`.
    #[error("{0}")]
    InvalidRequest(String),
    /// `InvalidTagException`.
    #[error("{0}")]
    InvalidTag(String),
    /// `TooManyTagsException`.
    #[error("{0}")]
    TooManyTags(String),
    /// `LimitExceededException`.
    #[error("{0}")]
    LimitExceeded(String),
    /// `MalformedCSRException`.
    #[error("{0}")]
    MalformedCsr(String),
    /// `MalformedCertificateException`.
    #[error("{0}")]
    MalformedCertificate(String),
    /// `CertificateMismatchException`.
    #[error("{0}")]
    CertificateMismatch(String),
    /// `RequestInProgressException`.
    #[error("{0}")]
    RequestInProgress(String),
    /// `RequestFailedException`.
    #[error("{0}")]
    RequestFailed(String),
    /// `RequestAlreadyProcessedException`.
    #[error("{0}")]
    RequestAlreadyProcessed(String),
    /// `ConcurrentModificationException`: a row too contended to write.
    #[error("{0}")]
    ConcurrentModification(String),
    /// `InvalidPolicyException`.
    #[error("{0}")]
    InvalidPolicy(String),
    /// `AccessDeniedException`: another account's CA whose policy does not allow the call.
    #[error("{0}")]
    AccessDenied(String),
    /// `PermissionAlreadyExistsException`.
    #[error("{0}")]
    PermissionAlreadyExists(String),
    /// `InvalidNextTokenException`.
    #[error("The token is not valid.")]
    InvalidNextToken,
    /// The store failed (a fault, never shown to a client).
    #[error(transparent)]
    Store(#[from] carapace_store::Error),
    /// Something internal failed (a fault, never shown to a client).
    #[error("internal: {what}: {source}")]
    Fault {
        /// What failed.
        what: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl PcaError {
    /// A fault: `what` failed because of `source`.
    pub(crate) fn fault(what: &'static str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Fault { what, source: source.into() }
    }
}

/// Result alias.
pub type Result<T, E = PcaError> = std::result::Result<T, E>;

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_token: Option<String>,
}

/// A CA as read at one instant.
#[derive(Debug, Clone)]
pub struct AuthorityView {
    /// The stored record.
    pub record: CaRecord,
    /// Its status now.
    pub status: records::CaStatus,
}

/// AWS Private CA's rules over the kernel's store, clock and master key.
#[derive(Clone)]
pub struct PrivateCas {
    core: Core,
    settings: std::sync::Arc<PcaSettings>,
    /// Publishes one CRL at a time in this process, so a CRL never overwrites a newer one.
    publishing: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// CA signers loaded for issuance (unsealing and loading a key costs more than signing).
    signers: std::sync::Arc<certificates::SignerCache>,
}

impl PrivateCas {
    /// The rules over these handles.
    pub fn new(core: Core, settings: PcaSettings) -> Self {
        Self {
            core,
            settings: std::sync::Arc::new(settings),
            publishing: Default::default(),
            signers: Default::default(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &PcaSettings {
        &self.settings
    }

    fn now(&self) -> i64 {
        self.core.clock.now_ms()
    }

    /// Reads a CA named by `arn` for `owner`, with its row version. A CA of another account
    /// or region, a malformed ARN's CA and a deleted CA past its window are all not found.
    async fn authority(&self, owner: &Owner, arn: &str) -> Result<(CaRecord, u64)> {
        let id = ca_id(owner, arn)?;
        let row = self.core.store.get(&Key::new(CA_KIND, owner.scope(), id)).await?;
        let not_found = || PcaError::NotFound(format!("Could not find certificate authority {arn}."));
        let row = row.ok_or_else(not_found)?;
        let record: CaRecord = decode(&row)?;
        if record.is_gone(self.now()) {
            return Err(not_found());
        }
        Ok((record, row.version))
    }

    /// The CA named by `arn` as `caller` may use it for `action` (with `template`, for
    /// IssueCertificate): the caller's own, or another account's in the same Region whose
    /// resource policy allows it ([`policy`]). Also gives the CA's owner, whose scope holds
    /// its certificates.
    async fn shared_authority(
        &self,
        caller: &Owner,
        arn: &str,
        action: &str,
        template: Option<&str>,
    ) -> Result<(CaRecord, u64, Owner)> {
        let (ca_owner, _) = parse_ca_arn(arn)?;
        if ca_owner.region != caller.region {
            return Err(PcaError::NotFound(format!("Could not find certificate authority {arn}.")));
        }
        let (record, version) = self.authority(&ca_owner, arn).await?;
        if ca_owner.account != caller.account
            && !policy::allows(record.policy.as_deref(), arn, &caller.account, action, template)
        {
            return Err(PcaError::AccessDenied(format!(
                "Account {} is not authorized to perform acm-pca:{action} on {arn}.",
                caller.account
            )));
        }
        Ok((record, version, ca_owner))
    }

    /// The CA's private key, unsealed.
    fn key(&self, record: &CaRecord) -> Result<PrivateKey> {
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(&record.key_sealed)
            .map_err(|e| PcaError::fault("decoding a CA key", e))?;
        let pkcs8 = self
            .core
            .master_key
            .open(&sealed, record.arn.as_bytes())
            .map_err(|e| PcaError::fault("unsealing a CA key", e))?;
        PrivateKey::from_pkcs8_der(&pkcs8).map_err(|e| PcaError::fault("loading a CA key", e))
    }
}

/// The id of the CA named by `arn`, which must be a CA ARN of `owner`'s account and Region.
fn ca_id<'a>(owner: &Owner, arn: &'a str) -> Result<&'a str> {
    let (ca_owner, id) = parse_ca_arn(arn)?;
    if ca_owner != *owner {
        return Err(PcaError::NotFound(format!("Could not find certificate authority {arn}.")));
    }
    Ok(id)
}

/// The owner and id of the CA named by `arn`
/// (`arn:<partition>:acm-pca:<region>:<account>:certificate-authority/<id>`).
fn parse_ca_arn(arn: &str) -> Result<(Owner, &str)> {
    let invalid = || PcaError::InvalidArn(format!("Invalid ARN: {arn}"));
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_partition), Some("acm-pca"), Some(region), Some(account), Some(resource)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let id = resource.strip_prefix("certificate-authority/").ok_or_else(invalid)?;
    if id.is_empty() || id.contains('/') {
        return Err(invalid());
    }
    Ok((Owner::new(account, region), id))
}

/// A CA's ARN.
fn ca_arn(owner: &Owner, id: &str) -> String {
    format!("arn:aws:acm-pca:{}:{}:certificate-authority/{id}", owner.region, owner.account)
}

fn decode<T: serde::de::DeserializeOwned>(row: &Row) -> Result<T> {
    carapace_kernel::stored::decode("AWS Private CA row", &row.body).map_err(|e| PcaError::fault("a stored row", e))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    carapace_kernel::stored::encode("AWS Private CA row", value).map_err(|e| PcaError::fault("a row", e))
}

/// A CA's row.
fn ca_row(owner: &Owner, record: &CaRecord) -> Result<Row> {
    Ok(Row {
        key: Key::new(CA_KIND, owner.scope(), &record.id),
        version: 0,
        created_ms: record.created_ms,
        body: encode(record)?,
    })
}

/// A certificate's row.
fn certificate_row(owner: &Owner, record: &CertificateRecord, created_ms: i64) -> Result<Row> {
    Ok(Row {
        key: Key::new(CERTIFICATE_KIND, owner.scope(), format!("{}/{}", record.ca_id, record.serial)),
        version: 0,
        created_ms,
        body: encode(record)?,
    })
}

/// "Busy, try again" after a row lost every write race.
fn contended() -> PcaError {
    PcaError::ConcurrentModification("A conflicting operation is in progress on this resource. Try again.".into())
}

/// Milliseconds as a time.
fn time_of(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests;
