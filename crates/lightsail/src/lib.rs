//! Lightsail's rules: certificates on the ACM engine, CDN distributions, their operations,
//! cache resets and metrics. The Lightsail handler calls [`LightsailManager`] with plain
//! Rust values (no DTOs, no JSON); the edge reads what this module stores (see [`records`]).
//!
//! - [`certificates`]: CreateCertificate / GetCertificates / DeleteCertificate. A Lightsail
//!   certificate is an ACM-engine certificate (same CA, validation jobs and per-account DNS
//!   records) marked [`HeldBy::Lightsail`], so ACM's own listings never show it.
//! - [`distributions`]: the distribution lifecycle, certificate attachment, bundles.
//! - [`cache`]: the cache settings UpdateDistribution documents, and their checks.
//! - [`operations`]: the `operation` records every mutating call returns.
//! - [`metrics`]: per-minute counters (written by the edge) and their aggregation.
//! - [`edge`]: what edges report back (applied config versions, purges), from which a
//!   distribution's `Deployed` status and a cache reset's `Succeeded` are derived.
//!
//! Distribution APIs exist only in `us-east-1` (as in AWS); certificates live in every
//! region, per account, like ACM's.

pub mod cache;
#[cfg(test)]
mod testing;
/// Lightsail as the binary lists it: its indexed certificates, distributions and resource
/// operations, and its server-owned kinds.
pub const MODULE: carapace_kernel::module::ServiceModule = carapace_kernel::module::ServiceModule {
    name: "lightsail",
    indexers: &[index::CERTIFICATES, index::DISTRIBUTIONS, index::RESOURCE_OPERATIONS],
    server_owned_kinds: records::SERVER_OWNED_KINDS,
};
mod certificates;
mod distributions;
pub mod edge;
pub mod index;
pub mod metrics;
mod operations;
pub mod records;
pub mod regions;
mod settings;
mod tags;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use certificates::{CertificateQuery, CertificateView, CertificatesPage, NewLightsailCertificate};
pub use distributions::{
    CacheResetView, CertificateChange, DistributionChange, DistributionView, DistributionsPage, NewDistribution,
    OriginInput,
};
pub use operations::{OperationStatus, OperationView, OperationsPage};
pub use settings::{Bundle, DeclaredOrigin, LightsailSettings};

use carapace_acm::{AcmError, CertificateManager, Owner};
use carapace_kernel::Core;
use carapace_kernel::error::chain;
use carapace_kernel::stored::RecordError;

/// The only region with distribution APIs.
pub const DISTRIBUTION_REGION: &str = "us-east-1";

/// Everything that can go wrong in a Lightsail operation. Each client error carries the
/// sub-code Lightsail puts in `code` (e.g. `DoesNotExist`) and a `tip`, as AWS's errors do.
#[derive(Debug, thiserror::Error)]
pub enum LightsailError {
    /// `NotFoundException`.
    #[error("{message}")]
    NotFound {
        /// Sub-code, e.g. `DoesNotExist`.
        code: &'static str,
        /// Message.
        message: String,
        /// What to do about it.
        tip: String,
    },
    /// `InvalidInputException`.
    #[error("{message}")]
    InvalidInput {
        /// Sub-code, e.g. `NameExists`.
        code: &'static str,
        /// Message.
        message: String,
        /// What to do about it.
        tip: String,
    },
    /// `OperationFailureException`: a concurrent change won every retry.
    #[error("{message}")]
    OperationFailure {
        /// Sub-code.
        code: &'static str,
        /// Message.
        message: String,
        /// What to do about it.
        tip: String,
    },
    /// The store failed. Never shown to a client.
    #[error(transparent)]
    Store(#[from] carapace_store::Error),
    /// An internal failure without an underlying error. Never shown to a client.
    #[error("internal: {0}")]
    Internal(String),
    /// An internal failure caused by another error (a stored record, the certificate
    /// engine, the random source), kept as its source so the log shows the whole chain.
    /// Never shown to a client.
    #[error("internal: {what}")]
    Fault {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl LightsailError {
    /// A resource that does not exist for this caller. The message follows Lightsail's
    /// `The <ResourceType> does not exist: <name>` (Terraform's provider matches the
    /// `DoesNotExist` code in it: internal/service/lightsail/errs.go).
    pub fn does_not_exist(resource_type: &str, name: &str) -> Self {
        Self::NotFound {
            code: "DoesNotExist",
            message: format!("The {resource_type} does not exist: {name}"),
            tip: format!("Check the {} name and the AWS Region, then try again.", resource_type.to_lowercase()),
        }
    }

    /// Bad input, with Lightsail's sub-code.
    pub fn invalid(code: &'static str, message: impl Into<String>, tip: impl Into<String>) -> Self {
        Self::InvalidInput { code, message: message.into(), tip: tip.into() }
    }

    /// A member Carapace cannot honour yet: refused, never stored and ignored.
    pub fn unsupported(member: &str, why: &str) -> Self {
        Self::invalid(
            "UnsupportedParameter",
            format!("The parameter {member} is not supported by Carapace: {why}."),
            format!("Remove {member} from the request."),
        )
    }

    /// A name already taken, in Lightsail's words.
    pub fn name_exists(name: &str) -> Self {
        Self::invalid(
            "NameExists",
            format!("Some names are already in use: {name}"),
            "Choose a name that is not used by another resource of this type, then try again.",
        )
    }

    /// A distribution API called outside `us-east-1`, with the wording the model's
    /// documentation of `InvalidInputException` gives.
    pub fn distribution_region() -> Self {
        Self::invalid(
            "InvalidRegion",
            "Domain and distribution APIs are only available in the N. Virginia (us-east-1) Amazon Web Services \
             Region. Please set your Amazon Web Services Region configuration to us-east-1 to create, view, or edit \
             these resources.",
            "Set your AWS Region to us-east-1 (for example --region us-east-1) and try again.",
        )
    }

    /// A `map_err` for a failure of `what`, keeping the error as the source.
    pub(crate) fn fault<E: std::error::Error + Send + Sync + 'static>(what: &'static str) -> impl FnOnce(E) -> Self {
        move |source| Self::Fault { what, source: Box::new(source) }
    }

    fn busy(what: &str) -> Self {
        Self::OperationFailure {
            code: "ConcurrentModification",
            message: format!("The {what} is being changed by another request."),
            tip: "Try again in a moment.".into(),
        }
    }
}

/// ACM's rule failures in Lightsail's terms (the certificate engine is ACM's).
impl From<AcmError> for LightsailError {
    fn from(e: AcmError) -> Self {
        match e {
            AcmError::Store(e) => Self::Store(e),
            AcmError::Internal(e) => Self::Internal(e),
            e @ AcmError::Fault { .. } => Self::Fault { what: "the certificate engine failed", source: Box::new(e) },
            AcmError::NotFound(arn) => Self::does_not_exist("Certificate", &arn),
            AcmError::LimitExceeded(m) => {
                Self::invalid("LimitExceeded", m, "Delete certificates you no longer use, then try again.")
            }
            AcmError::Conflict(_) => Self::busy("certificate"),
            AcmError::ResourceInUse(m) => {
                Self::invalid("ResourceInUse", m, "Detach the certificate from its distributions first.")
            }
            AcmError::InvalidArn(m)
            | AcmError::RequestInProgress(m)
            | AcmError::InvalidState(m)
            | AcmError::InvalidDomainValidationOptions(m)
            | AcmError::InvalidParameter(m)
            | AcmError::InvalidArgs(m)
            | AcmError::InvalidTag(m)
            | AcmError::TooManyTags(m)
            | AcmError::Validation(m) => Self::invalid("InvalidInput", m, "Check your input and try again."),
        }
    }
}

/// A stored record that does not decode or encode is an internal failure.
impl From<RecordError> for LightsailError {
    fn from(e: RecordError) -> Self {
        Self::Fault { what: "a stored record", source: Box::new(e) }
    }
}

/// Result alias.
pub type Result<T, E = LightsailError> = std::result::Result<T, E>;

/// Lightsail over the core: certificates (through the ACM engine), distributions,
/// operations, cache resets, metrics.
#[derive(Clone)]
pub struct LightsailManager {
    core: Core,
    acm: CertificateManager,
    settings: Arc<LightsailSettings>,
}

impl LightsailManager {
    /// Lightsail over these core handles, with its own settings, reaching ACM through `acm`.
    pub fn new(core: Core, settings: LightsailSettings, acm: CertificateManager) -> Self {
        Self { acm, core, settings: Arc::new(settings) }
    }

    /// The core handles (the edge's owner reads the store and clock through them).
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// The settings.
    pub fn settings(&self) -> &LightsailSettings {
        &self.settings
    }

    fn now_ms(&self) -> i64 {
        self.core.clock.now_ms()
    }

    /// Up to `limit + 1` rows of `kind` in `scope` after `after`, oldest first (one more than
    /// a page, to tell whether another follows): all of them, or with `clause` only those
    /// the index says meet it, so a page reads its own rows whatever else the scope holds.
    async fn page_rows(
        &self,
        kind: &str,
        scope: &str,
        clause: Option<carapace_store::Clause>,
        mut after: Option<carapace_store::Cursor>,
        limit: usize,
    ) -> Result<Vec<carapace_store::Row>> {
        let scan = |after| carapace_store::Scan {
            kind,
            scope,
            id_prefix: None,
            after,
            order: carapace_store::Order::Ascending,
            limit: limit + 1,
        };
        let Some(clause) = clause else { return Ok(self.core.store.scan(scan(after)).await?) };
        let clauses = [clause];
        let mut rows = Vec::new();
        loop {
            let page = self.core.store.scan_filtered(scan(after), &clauses, limit + 1).await?;
            rows.extend(page.rows);
            match page.resume {
                Some(resume) if rows.len() <= limit => after = Some(resume),
                _ => {
                    rows.truncate(limit + 1);
                    return Ok(rows);
                }
            }
        }
    }

    /// Every row of `(kind, scope)` (with `id_prefix`), oldest first, decoded; unreadable
    /// rows are logged and skipped.
    async fn scan_all<T>(&self, kind: &str, scope: &str, id_prefix: Option<&str>) -> Result<Vec<T>>
    where
        T: serde::de::DeserializeOwned + records::Versioned,
    {
        const BATCH: usize = 500;
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let scan = carapace_store::Scan {
                kind,
                scope,
                id_prefix,
                after,
                order: carapace_store::Order::Ascending,
                limit: BATCH,
            };
            let rows = self.core.store.scan(scan).await?;
            for row in &rows {
                match records::decode::<T>(&row.body) {
                    Ok(v) => out.push(v),
                    Err(e) => {
                        tracing::error!(key = %row.key, error = chain(&e), "skipping an unreadable Lightsail row")
                    }
                }
            }
            match rows.last() {
                Some(last) if rows.len() == BATCH => {
                    after = Some(carapace_store::Cursor { created_ms: last.created_ms, id: last.key.id.clone() });
                }
                _ => return Ok(out),
            }
        }
    }
}

/// Refuses distribution APIs outside `us-east-1` (GetDistributionBundles has no rule of its own).
pub fn check_distribution_region(owner: &Owner) -> Result<()> {
    if owner.region == DISTRIBUTION_REGION { Ok(()) } else { Err(LightsailError::distribution_region()) }
}

/// Random lower-case letters and digits (the default domain's `d` + 13, support codes).
pub(crate) fn random_alnum(n: usize) -> Result<String> {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes).map_err(LightsailError::fault("drawing random bytes"))?;
    // 252 = 7 × 36: values at or above it would bias the alphabet, so they are re-drawn.
    let mut out = String::with_capacity(n);
    let mut i = 0;
    while out.len() < n {
        if i == bytes.len() {
            aws_lc_rs::rand::fill(&mut bytes).map_err(LightsailError::fault("drawing random bytes"))?;
            i = 0;
        }
        let b = bytes[i];
        i += 1;
        if b < 252 {
            out.push(ALPHABET[usize::from(b % 36)] as char);
        }
    }
    Ok(out)
}
