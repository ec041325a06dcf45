//! CreateCertificate, GetCertificates, DeleteCertificate.
//!
//! A Lightsail certificate is two things written in one batch: the ACM-engine certificate
//! (DNS-validated, RSA-2048, held by Lightsail so ACM's listings skip it) and a
//! [`CertificateRecord`] keyed by the certificate name, which makes the name unique per
//! account and region. Deletion removes the ACM certificate first (ACM refuses while a
//! distribution's in-use mark is on it), then the name; a name whose ACM certificate is
//! gone (a crash between the two) is treated as free and cleaned up.

use carapace_kernel::error::chain;
use carapace_store::{Cursor, Key, Order, Row, Scan, Write};

use super::operations::{self, OperationView, decode_token, encode_token, fingerprint, new_operation};
use super::records::{self, CERTIFICATE_KIND, CertificateRecord};
use super::{LightsailError, LightsailManager, Result, tags};
use crate::records::{OperationType, ResourceType};
use carapace_acm::{self as acm, AcmError, HeldBy, Holder, NewCertificate, Owner, Status, Tag, ValidationMethod};
use carapace_kernel::ca::KeyAlgorithm;

/// Most names besides `domainName` (the API reference: "a maximum of nine alternate domains").
pub const MAX_ALTERNATE_DOMAINS: usize = 9;
/// Certificates per GetCertificates page.
pub const PAGE_SIZE: usize = 100;
/// A name row older than this whose ACM certificate is missing was left by a crash.
const ORPHAN_AGE_MS: i64 = 60_000;

/// A CreateCertificate request.
#[derive(Debug, Clone, Default)]
pub struct NewLightsailCertificate {
    /// `certificateName`.
    pub name: String,
    /// `domainName`.
    pub domain_name: String,
    /// `subjectAlternativeNames` (the domain is added to them).
    pub subject_alternative_names: Vec<String>,
    /// `tags`.
    pub tags: Vec<Tag>,
}

/// A certificate as a reader sees it.
#[derive(Debug, Clone)]
pub struct CertificateView {
    /// The Lightsail record.
    pub record: CertificateRecord,
    /// The ACM-engine certificate (status, names, validation, leaf facts), when details
    /// were asked for or needed.
    pub acm: Option<acm::CertificateView>,
}

/// A GetCertificates request.
#[derive(Debug, Clone, Default)]
pub struct CertificateQuery {
    /// `certificateStatuses`; empty for all.
    pub statuses: Vec<Status>,
    /// `certificateName`.
    pub name: Option<String>,
    /// Read the ACM certificate for every item (`includeCertificateDetails`, or a lookup by
    /// name: see the handler).
    pub details: bool,
    /// `pageToken`.
    pub page_token: Option<String>,
}

/// One page of GetCertificates.
#[derive(Debug, Clone)]
pub struct CertificatesPage {
    /// The certificates, oldest first.
    pub items: Vec<CertificateView>,
    /// `nextPageToken`.
    pub next_token: Option<String>,
}

impl LightsailManager {
    /// CreateCertificate: returns the certificate and its operations.
    pub async fn create_certificate(
        &self,
        owner: &Owner,
        req: NewLightsailCertificate,
    ) -> Result<(CertificateView, Vec<OperationView>)> {
        let domain = acm::names::canonical(&req.domain_name);
        for name in std::iter::once(&req.domain_name).chain(&req.subject_alternative_names) {
            if name.contains('*') {
                return Err(LightsailError::invalid(
                    "InvalidDomainName",
                    format!("Wildcard domain names are not supported for Lightsail certificates: {name}"),
                    "Name each subdomain (for example www.example.com) instead of a wildcard.",
                ));
            }
        }
        let extra: Vec<String> = {
            let mut seen = vec![domain.clone()];
            for san in &req.subject_alternative_names {
                let san = acm::names::canonical(san);
                if !seen.contains(&san) {
                    seen.push(san);
                }
            }
            seen.split_off(1)
        };
        if extra.len() > MAX_ALTERNATE_DOMAINS {
            return Err(LightsailError::invalid(
                "TooManyDomainNames",
                format!(
                    "A certificate can have at most {MAX_ALTERNATE_DOMAINS} subject alternative names besides its domain name; {} were given.",
                    extra.len()
                ),
                "Split the domain names over several certificates.",
            ));
        }
        tags::check(&req.tags)?;
        let scope = owner.scope();
        let name_key = Key::new(CERTIFICATE_KIND, &scope, &req.name);
        carapace_kernel::optimistic!(LightsailError, LightsailError::busy("certificate"), |_| {
            let now = self.now_ms();
            let acm_id = uuid::Uuid::new_v4().to_string();
            let record = CertificateRecord {
                schema: records::SCHEMA,
                name: req.name.clone(),
                arn: format!(
                    "arn:aws:lightsail:{}:{}:Certificate/{}",
                    owner.region,
                    owner.account,
                    uuid::Uuid::new_v4()
                ),
                acm_arn: acm::CertificateArn::format(owner, &acm_id),
                acm_id: acm_id.clone(),
                domain_name: domain.clone(),
                support_code: format!("{}/{}", owner.account, super::random_alnum(12)?),
                created_ms: now,
                tags: req.tags.clone(),
            };
            let (op, op_writes) =
                new_operation(owner, ResourceType::Certificate, &req.name, OperationType::CreateCertificate, now)?;
            let mut writes = vec![Write::Put {
                row: Row { key: name_key.clone(), version: 0, created_ms: now, body: records::encode(&record)? },
                expect: None,
            }];
            writes.extend(op_writes);
            let new = NewCertificate {
                domain_name: domain.clone(),
                subject_alternative_names: extra.clone(),
                validation_method: Some(ValidationMethod::Dns),
                key_algorithm: Some(KeyAlgorithm::Rsa2048),
                held_by: Some(Holder { service: HeldBy::Lightsail, id: acm_id, writes }),
                ..Default::default()
            };
            match self.acm.request_certificate(owner, new).await {
                Ok(arn) => {
                    let view = self.acm.describe_certificate(owner, &arn).await?;
                    return Ok(Some((
                        CertificateView { record, acm: Some(view) },
                        vec![OperationView::as_answered(op)],
                    )));
                }
                Err(AcmError::Store(carapace_store::Error::Conflict(k))) if k == name_key => {
                    if !self.clear_orphan(owner, &name_key).await? {
                        return Err(LightsailError::name_exists(&req.name));
                    }
                }
                Err(e) => return Err(e.into()),
            }
            Ok(None)
        })
    }

    /// Removes a name row whose ACM certificate is gone (left by a crash mid-delete);
    /// `false` when the name is really taken.
    async fn clear_orphan(&self, owner: &Owner, key: &Key) -> Result<bool> {
        let Some(row) = self.core.store.get(key).await? else { return Ok(true) };
        let record: CertificateRecord = records::decode(&row.body)?;
        if self.acm.holds(&owner.scope(), &record.acm_id).await? || self.now_ms() - row.created_ms < ORPHAN_AGE_MS {
            return Ok(false);
        }
        tracing::warn!(name = %record.name, "removing a Lightsail certificate name whose ACM certificate is gone");
        match self.core.store.apply(vec![Write::Delete { key: key.clone(), expect: row.version }]).await {
            Ok(_) | Err(carapace_store::Error::Conflict(_)) => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a certificate by name; `None` when it does not exist (or its ACM certificate
    /// is gone).
    pub(crate) async fn load_certificate(&self, owner: &Owner, name: &str) -> Result<Option<(CertificateRecord, u64)>> {
        let Some(row) = self.core.store.get(&Key::new(CERTIFICATE_KIND, owner.scope(), name)).await? else {
            return Ok(None);
        };
        Ok(Some((records::decode(&row.body)?, row.version)))
    }

    /// The ACM view of a Lightsail certificate; `None` for an orphaned name.
    pub(crate) async fn acm_view(
        &self,
        owner: &Owner,
        record: &CertificateRecord,
    ) -> Result<Option<acm::CertificateView>> {
        match self.acm.describe_certificate(owner, &record.acm_arn).await {
            Ok(v) => Ok(Some(v)),
            Err(AcmError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// GetCertificates.
    pub async fn get_certificates(&self, owner: &Owner, query: &CertificateQuery) -> Result<CertificatesPage> {
        let need_acm = query.details || !query.statuses.is_empty();
        let keep = |v: &Option<acm::CertificateView>| match v {
            Some(v) => query.statuses.is_empty() || query.statuses.contains(&v.status),
            None => false, // orphaned name: its certificate is gone
        };
        if let Some(name) = &query.name {
            let mut items = Vec::new();
            if let Some((record, _)) = self.load_certificate(owner, name).await? {
                let view = self.acm_view(owner, &record).await?;
                if keep(&view) {
                    items.push(CertificateView { record, acm: if need_acm { view } else { None } });
                }
            }
            return Ok(CertificatesPage { items, next_token: None });
        }
        let scope = owner.scope();
        let f = fingerprint(&format!("certs|{scope}|{:?}|{}", query.statuses, query.details));
        let mut after = query.page_token.as_deref().map(|t| decode_token(t, &f)).transpose()?;
        if !query.statuses.is_empty() {
            return self.certificates_by_status(owner, query, after, &f).await;
        }
        let mut items = Vec::new();
        loop {
            let rows = self
                .core
                .store
                .scan(Scan {
                    kind: CERTIFICATE_KIND,
                    scope: &scope,
                    id_prefix: None,
                    after: after.clone(),
                    order: Order::Ascending,
                    limit: PAGE_SIZE + 1,
                })
                .await?;
            let exhausted = rows.len() <= PAGE_SIZE;
            for row in &rows {
                if items.len() == PAGE_SIZE {
                    // A further certificate exists: the next page starts after the last one kept.
                    let last: &CertificateView = &items[items.len() - 1];
                    let cursor = Cursor { created_ms: last.record.created_ms, id: last.record.name.clone() };
                    return Ok(CertificatesPage { items, next_token: Some(encode_token(&cursor, &f)?) });
                }
                after = Some(Cursor { created_ms: row.created_ms, id: row.key.id.clone() });
                let record: CertificateRecord = match records::decode(&row.body) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(key = %row.key, error = chain(&e), "skipping an unreadable certificate");
                        continue;
                    }
                };
                let view = self.acm_view(owner, &record).await?;
                if keep(&view) {
                    items.push(CertificateView { record, acm: if need_acm { view } else { None } });
                }
            }
            if exhausted {
                return Ok(CertificatesPage { items, next_token: None });
            }
        }
    }

    /// GetCertificates with a status filter: ACM's index of the certificates Lightsail
    /// holds, in ACM's order (the page token is a position in it), each named through the
    /// `acm` attribute of its Lightsail row. A page reads its own certificates, not every
    /// certificate of the account.
    async fn certificates_by_status(
        &self,
        owner: &Owner,
        query: &CertificateQuery,
        after: Option<Cursor>,
        fingerprint: &str,
    ) -> Result<CertificatesPage> {
        let scope = owner.scope();
        let (views, resume) = self.acm.list_held(owner, HeldBy::Lightsail, &query.statuses, after, PAGE_SIZE).await?;
        let mut items = Vec::with_capacity(views.len());
        for view in views {
            let Some(id) = view.record.arn.rsplit('/').next() else { continue };
            let scan = Scan {
                kind: CERTIFICATE_KIND,
                scope: &scope,
                id_prefix: None,
                after: None,
                order: Order::Ascending,
                limit: 1,
            };
            let found = self.core.store.scan_filtered(scan, &[super::index::acm_clause(id)], 1).await?;
            let Some(row) = found.rows.first() else { continue }; // its name is being deleted
            match records::decode::<CertificateRecord>(&row.body) {
                Ok(record) => items.push(CertificateView { record, acm: Some(view) }),
                Err(e) => {
                    tracing::error!(key = %row.key, error = chain(&e), "skipping an unreadable certificate")
                }
            }
        }
        let next_token = resume.map(|c| encode_token(&c, fingerprint)).transpose()?;
        Ok(CertificatesPage { items, next_token })
    }

    /// DeleteCertificate: refused while a distribution uses it.
    pub async fn delete_certificate(&self, owner: &Owner, name: &str) -> Result<Vec<OperationView>> {
        let (record, version) = self
            .load_certificate(owner, name)
            .await?
            .ok_or_else(|| LightsailError::does_not_exist("Certificate", name))?;
        let Some(view) = self.acm_view(owner, &record).await? else {
            return Err(LightsailError::does_not_exist("Certificate", name));
        };
        if !view.record.in_use_by.is_empty() {
            // The marks are set before a distribution names the certificate and cleared after;
            // one left by a crash in between names a distribution that does not use it.
            let using = self.distributions_using(&owner.account, &record.acm_id).await?;
            if let Some(d) = using.first() {
                return Err(LightsailError::invalid(
                    "ResourceInUse",
                    format!("The certificate {name} is attached to the distribution {d} and cannot be deleted."),
                    "Detach the certificate with DetachCertificateFromDistribution, then delete it.",
                ));
            }
            for arn in &view.record.in_use_by {
                self.acm.set_in_use(owner, &record.acm_arn, arn, false).await?;
            }
        }
        match self.acm.delete_certificate(owner, &record.acm_arn).await {
            Ok(()) | Err(AcmError::NotFound(_)) => {}
            Err(AcmError::ResourceInUse(_)) => {
                return Err(LightsailError::invalid(
                    "ResourceInUse",
                    format!("The certificate {name} is being attached to a distribution and cannot be deleted."),
                    "Detach the certificate with DetachCertificateFromDistribution, then delete it.",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        let (op, op_writes) =
            new_operation(owner, ResourceType::Certificate, name, OperationType::DeleteCertificate, self.now_ms())?;
        let mut writes = vec![Write::Delete { key: Key::new(CERTIFICATE_KIND, owner.scope(), name), expect: version }];
        writes.extend(op_writes);
        match self.core.store.apply(writes).await {
            // A concurrent delete of the same name already removed it.
            Ok(_) | Err(carapace_store::Error::Conflict(_)) => Ok(vec![operations::OperationView::as_answered(op)]),
            Err(e) => Err(e.into()),
        }
    }
}
