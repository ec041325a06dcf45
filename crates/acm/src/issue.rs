//! Issuance: signing a leaf once every domain is validated (or, for a renewal, again).
//!
//! A worker can run up to one issuance per core at once: RSA key generation dominates (tens
//! of milliseconds per key) and runs on the blocking pool, so issuance throughput follows
//! the raw key-generation rate of the machine.
//!
//! Every run is idempotent. An issue job names the issuance it produces
//! ([`CertificateRecord::issuance`] after it), and the record is written at the version
//! read, so a job replayed after a crash — or run twice by two nodes after a lease expired —
//! finds the issuance done and stops: a certificate is never issued twice.

use std::sync::Arc;

use base64::Engine as _;
use carapace_store::{Key, Row, Write};

use super::jobs::{AcmJob, AcmJobs, CertificateJob, IssueJob};
use super::lifecycle;
use super::record::{self, CertificateRecord, FailureReason, Material, RenewalStatus, X509Facts};
use super::state::{DomainStatus, Event, Status, transition};
use super::{AcmError, CertificateManager, Loaded, record_put};
use carapace_kernel::ca::{self, LeafRequest, ParsedCertificate, PrivateKey};
use carapace_kernel::jobs::{NoObserver, Outcome, Worker};

/// The facts ACM shows about a leaf.
pub(crate) fn facts(parsed: &ParsedCertificate) -> X509Facts {
    X509Facts {
        serial: parsed.serial_hex.clone(),
        subject: parsed.subject.clone(),
        common_name: parsed.common_name.clone(),
        issuer: parsed.issuer.clone(),
        issuer_dn: parsed.issuer_dn.clone(),
        dns_names: parsed.subject_alternative_names.clone(),
        not_before_ms: (parsed.not_before.unix_timestamp_nanos() / 1_000_000) as i64,
        not_after_ms: (parsed.not_after.unix_timestamp_nanos() / 1_000_000) as i64,
        signature_algorithm: parsed.signature_algorithm.clone(),
        key_usages: parsed.key_usages.clone(),
        extended_key_usages: parsed.extended_key_usages.iter().map(|e| (e.name.clone(), e.oid.clone())).collect(),
    }
}

/// Seals a private key for storage in the material row, bound to the certificate ARN.
pub(crate) fn seal_key(core: &carapace_kernel::Core, key: &PrivateKey, arn: &str) -> Result<String, AcmError> {
    seal_bytes(core, key.pkcs8_der(), arn)
}

/// Seals secret bytes for the material row, bound to the certificate ARN.
pub(crate) fn seal_bytes(core: &carapace_kernel::Core, secret: &[u8], arn: &str) -> Result<String, AcmError> {
    let sealed =
        core.master_key.seal(secret, arn.as_bytes()).map_err(AcmError::fault(format!("sealing a secret of {arn}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(sealed))
}

/// The material write for `scope`/`id`: an insert, or a replace at the version found.
pub(crate) async fn material_put(
    m: &CertificateManager,
    scope: &str,
    id: &str,
    created_ms: i64,
    material: &Material,
) -> Result<Write, AcmError> {
    let key = Key::new(record::MATERIAL_KIND, scope, id);
    let expect = m.core.store.get(&key).await?.map(|r| r.version);
    Ok(Write::Put { row: Row { key, version: 0, created_ms, body: material.encode()? }, expect })
}

impl CertificateManager {
    /// Runs one issue job: approve (in `--dev`), generate the key, sign, store.
    pub(crate) async fn issue(&self, job: &IssueJob) -> Result<Outcome, AcmError> {
        let Some(first) = self.load_id(&job.scope, &job.id).await? else {
            return Ok(Outcome::Finished); // deleted meanwhile
        };
        if !self.issuance_wanted(&first, job) {
            return Ok(Outcome::Finished);
        }
        // In `--dev` every domain is approved; a private CA validates none.
        let approve_all_domains =
            (job.approve_all && self.core.settings.dev) || first.record.certificate_authority_arn.is_some();
        if !approve_all_domains && first.record.domains.iter().any(|d| d.status != DomainStatus::Success) {
            // Validation is not complete; the validation worker enqueues a new job when it is.
            return Ok(Outcome::Finished);
        }

        // The slow part, off the async threads. The names cannot change while a request is
        // pending or renewing, so the leaf signed here stays right across write retries.
        let algorithm = first.record.key_algorithm;
        let names = first.record.sans.clone();
        let now = self.core.clock.now();
        let record = &first.record;
        let validity_days = match (&record.certificate_authority_arn, record.root_hierarchy) {
            // ACM's private certificates are valid for 13 months (within their CA's validity).
            (Some(_), _) => PRIVATE_VALIDITY_DAYS,
            (None, Some(h)) => h.validity_days(),
            (None, None) => self.settings.validity_days,
        };
        let validity = time::Duration::days(i64::from(validity_days));
        let hierarchy = record.root_hierarchy.map(|h| h.ca_hierarchy()).unwrap_or_default();
        let usage = record.certificate_usage.map(|u| u.leaf_usage()).unwrap_or_default();
        let leaf = LeafRequest {
            common_name: first.record.domain_name.clone(),
            sans: names,
            ip_addresses: Vec::new(),
            // Whole seconds: X.509 times have no fractions, and Describe must match the PEM.
            not_before: now.replace_nanosecond(0).unwrap_or(now),
            not_after: now.replace_nanosecond(0).unwrap_or(now) + validity,
            serial: None,
            base_url: self.core.settings.base_url.clone(),
        };
        let signed = match &record.certificate_authority_arn {
            Some(ca_arn) => match self.sign_private(job, ca_arn, &leaf, algorithm).await? {
                Ok(signed) => signed,
                Err(reason) => return self.fail_private(job, reason).await,
            },
            None => {
                let ca_handle = Arc::clone(&self.core.ca);
                tokio::task::spawn_blocking(move || -> Result<_, ca::CaError> {
                    let key = ca::generate_key(algorithm)?;
                    let issued = ca_handle.issue_in(hierarchy, usage, &leaf, &key, now)?;
                    Ok(Signed {
                        key,
                        certificate_pem: issued.certificate_pem,
                        chain_pem: issued.chain_pem,
                        intermediate_id: Some(issued.intermediate_id),
                    })
                })
                .await
                .map_err(AcmError::fault("issuance task"))?
                .map_err(AcmError::fault(format!("issuing {}", first.record.arn)))?
            }
        };
        let parsed = ca::parse_certificate(&signed.certificate_pem)
            .map_err(AcmError::fault("reading the issued certificate"))?;
        let facts = facts(&parsed);
        let material = Material {
            schema: record::SCHEMA,
            certificate_pem: signed.certificate_pem,
            chain_pem: signed.chain_pem,
            sealed_key: seal_key(&self.core, &signed.key, &first.record.arn)?,
            key_format: record::KeyFormat::Pkcs8Der,
        };

        let mut loaded = first;
        carapace_kernel::optimistic!(
            AcmError,
            AcmError::Conflict(format!("certificate {} kept changing during issuance", loaded.record.arn)),
            |_| {
                if !self.issuance_wanted(&loaded, job) {
                    return Ok(Some(Outcome::Finished));
                }
                let now_ms = self.now_ms();
                let record = &mut loaded.record;
                let event = if record.status == Status::PendingValidation { Event::Issue } else { Event::Renew };
                record.status = transition(record.status, event).map_err(AcmError::fault("issuance"))?;
                if approve_all_domains {
                    for d in &mut record.domains {
                        d.status = DomainStatus::Success;
                    }
                }
                record.x509 = Some(facts.clone());
                record.issued_ms = Some(now_ms);
                record.issuance = job.issuance;
                record.failure_reason = None;
                if let Some(renewal) = &mut record.renewal {
                    renewal.status = RenewalStatus::Success;
                    renewal.reason = None;
                    renewal.updated_ms = now_ms;
                }
                let action = if event == Event::Issue { "ISSUANCE" } else { "RENEWAL" };
                let mut writes = vec![
                    record_put(&job.scope, &loaded, Some(loaded.version))?,
                    material_put(self, &job.scope, &job.id, loaded.created_ms, &material).await?,
                ];
                writes.extend(lifecycle::new_leaf_writes(self, &job.scope, &job.id, &loaded.record, action, now_ms)?);
                // Carapace's own CA records what it issued for its OCSP responder; a private
                // CA keeps its own certificates.
                if let (Some(intermediate), Some(serial)) =
                    (&signed.intermediate_id, carapace_kernel::revocation::serial_from_display(&parsed.serial_hex))
                {
                    writes.push(carapace_kernel::revocation::record_issued(intermediate, &serial, now_ms));
                }
                match self.core.store.apply(writes).await {
                    Ok(_) => {
                        tracing::info!(arn = %loaded.record.arn, issuance = job.issuance, "certificate issued");
                        return Ok(Some(Outcome::Finished));
                    }
                    Err(carapace_store::Error::Conflict(_)) => match self.load_id(&job.scope, &job.id).await? {
                        Some(fresh) => loaded = fresh,
                        None => return Ok(Some(Outcome::Finished)),
                    },
                    Err(e) => return Err(e.into()),
                }
                Ok(None)
            }
        )
    }

    /// Generates the key and has the private CA `ca_arn` sign it; `Err(reason)` when the CA
    /// refuses, which fails the request (or the renewal) with that reason.
    async fn sign_private(
        &self,
        job: &IssueJob,
        ca_arn: &str,
        leaf: &LeafRequest,
        algorithm: ca::KeyAlgorithm,
    ) -> Result<Result<Signed, FailureReason>, AcmError> {
        let cas = self
            .private_cas
            .as_ref()
            .ok_or_else(|| AcmError::internal("no AWS Private CA for a private certificate"))?;
        let owner = super::Owner::from_scope(&job.scope).ok_or_else(|| AcmError::internal("bad scope"))?;
        let (cn, names) = (leaf.common_name.clone(), leaf.sans.clone());
        let (key, csr) = tokio::task::spawn_blocking(move || -> Result<_, ca::CaError> {
            let key = ca::generate_key(algorithm)?;
            let csr = ca::leaf_csr(&key, &cn, &names)?;
            Ok((key, csr))
        })
        .await
        .map_err(AcmError::fault("issuance task"))?
        .map_err(AcmError::fault("a private certificate's key"))?;
        let not_after_ms = (leaf.not_after.unix_timestamp_nanos() / 1_000_000) as i64;
        use carapace_pca::PcaError as P;
        let reason = match cas.sign_for_acm(&owner, ca_arn, &csr, not_after_ms).await {
            Ok(issued) => {
                return Ok(Ok(Signed {
                    key,
                    certificate_pem: issued.certificate_pem,
                    chain_pem: issued.chain_pem,
                    intermediate_id: None,
                }));
            }
            Err(P::NotFound(_) | P::InvalidArn(_)) => FailureReason::PcaResourceNotFound,
            Err(P::InvalidState(_)) => FailureReason::PcaInvalidState,
            Err(P::AccessDenied(_)) => FailureReason::PcaAccessDenied,
            Err(P::InvalidArgs(_) | P::MalformedCsr(_)) => FailureReason::PcaInvalidArgs,
            Err(e @ (P::Store(_) | P::Fault { .. } | P::ConcurrentModification(_))) => {
                return Err(AcmError::fault(format!("private CA {ca_arn}"))(e));
            }
            Err(_) => FailureReason::PcaRequestFailed,
        };
        tracing::info!(ca = ca_arn, ?reason, "the private CA refused to sign");
        Ok(Err(reason))
    }

    /// Fails a private certificate's issuance (or its renewal) for `reason`.
    async fn fail_private(&self, job: &IssueJob, reason: FailureReason) -> Result<Outcome, AcmError> {
        carapace_kernel::optimistic!(AcmError, AcmError::Conflict("certificate kept changing".into()), |_| {
            let Some(mut loaded) = self.load_id(&job.scope, &job.id).await? else {
                return Ok(Some(Outcome::Finished));
            };
            if !self.issuance_wanted(&loaded, job) {
                return Ok(Some(Outcome::Finished));
            }
            let record = &mut loaded.record;
            match &mut record.renewal {
                Some(renewal) if record.status != Status::PendingValidation => {
                    renewal.status = RenewalStatus::Failed;
                    renewal.reason = Some(reason);
                    renewal.updated_ms = self.now_ms();
                }
                _ => {
                    record.status = transition(record.status, Event::Fail).map_err(AcmError::fault("failing"))?;
                    record.failure_reason = Some(reason);
                }
            }
            let writes = vec![record_put(&job.scope, &loaded, Some(loaded.version))?];
            Ok(carapace_kernel::retry::commit(self.core.store.as_ref(), writes).await?.then_some(Outcome::Finished))
        })
    }

    /// Whether the record still needs the issuance `job` produces.
    fn issuance_wanted(&self, loaded: &Loaded, job: &IssueJob) -> bool {
        let r = &loaded.record;
        if r.issuance >= job.issuance || r.issuance + 1 != job.issuance {
            return false;
        }
        match r.status {
            Status::PendingValidation => job.issuance == 1,
            Status::Issued | Status::Expired => {
                r.renewal.as_ref().is_some_and(|x| x.in_progress() && x.target_issuance == job.issuance)
            }
            _ => false,
        }
    }

    /// Runs a timeout job.
    pub(crate) async fn time_out(&self, job: &CertificateJob) -> Result<Outcome, AcmError> {
        carapace_kernel::optimistic!(
            AcmError,
            AcmError::Conflict("certificate kept changing while timing out".into()),
            |_| {
                let Some(mut loaded) = self.load_id(&job.scope, &job.id).await? else {
                    return Ok(Some(Outcome::Finished));
                };
                if loaded.record.status != Status::PendingValidation {
                    return Ok(Some(Outcome::Finished));
                }
                let deadline = loaded
                    .record
                    .validation_deadline_ms
                    .unwrap_or(loaded.record.created_ms + self.settings.validation_window_ms);
                let now = self.now_ms();
                if now < deadline {
                    // The window was extended (ResendValidationEmail) or the clock is behind.
                    return Ok(Some(Outcome::RetryAt(deadline)));
                }
                loaded.record.status =
                    transition(loaded.record.status, Event::TimeOut).map_err(AcmError::fault("timing out"))?;
                let writes = vec![record_put(&job.scope, &loaded, Some(loaded.version))?];
                if !carapace_kernel::retry::commit(self.core.store.as_ref(), writes).await? {
                    return Ok(None);
                }
                tracing::info!(arn = %loaded.record.arn, "certificate request timed out");
                return Ok(Some(Outcome::Finished));
            }
        )
    }

    /// Runs every ACM job due now, one after another, and returns how many ran. For tests
    /// that drive the clock by hand instead of running the worker.
    pub async fn run_due_jobs(&self) -> Result<usize, AcmError> {
        let worker = Worker::new(self.core.clone(), AcmJobs(self.clone()), Arc::new(NoObserver));
        Ok(worker.run_due().await?)
    }

    /// Enqueues issuance for a certificate whose domains are all validated. The validation
    /// workers call this when the last domain succeeds.
    pub async fn enqueue_issuance(&self, scope: &str, id: &str) -> Result<(), AcmError> {
        let Some(loaded) = self.load_id(scope, id).await? else {
            return Err(AcmError::NotFound(id.to_owned()));
        };
        let job = AcmJob::Issue(IssueJob {
            scope: scope.to_owned(),
            id: id.to_owned(),
            issuance: loaded.record.issuance + 1,
            approve_all: false,
        });
        self.core.store.apply(vec![job.enqueue(self.now_ms())?]).await?;
        self.core.wake_workers();
        Ok(())
    }
}

/// How long ACM's private certificates are valid (13 months, as ACM issues them; capped by the
/// CA's own validity).
const PRIVATE_VALIDITY_DAYS: u32 = 395;

/// A leaf signed with its new key, by Carapace's CA (with the issuing intermediate, for its
/// OCSP responder) or by a private CA.
struct Signed {
    key: PrivateKey,
    certificate_pem: String,
    chain_pem: String,
    intermediate_id: Option<String>,
}

/// The scope and id of a record, for jobs.
pub(crate) fn locate(record: &CertificateRecord) -> Option<(String, String)> {
    let parsed = super::names::CertificateArn::parse(&record.arn).ok()?;
    Some((format!("{}/{}", parsed.account, parsed.region), parsed.id))
}
