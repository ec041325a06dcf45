//! Changing certificates: delete, tags, options, renew, revoke, resend validation mail, and
//! the in-use marks other services set.

use carapace_store::{Key, Write};

use super::issue::locate;
use super::jobs::{AcmJob, IssueJob, LifecycleJob};
use super::names::{self, Tag};
use super::query::not_yet_issued;
use super::quota::{backoff, usage_put};
use super::record::{
    self, CertificateRecord, CertificateType, MethodUpdate, Renewal, RenewalStatus, RevocationReason, ValidationMethod,
};
use super::state::{DomainStatus, Event, Status, transition};
use super::{AcmError, CertificateManager, Owner, record_put};
use carapace_kernel::retry::commit;

/// What UpdateCertificateOptions may change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OptionsUpdate {
    /// Transparency logging preference.
    pub transparency_logging: Option<bool>,
    /// Export (cannot change after the request; repeating the current value is accepted).
    pub export: Option<bool>,
    /// Validation method (ACM supports migrating EMAIL → DNS).
    pub validation_method: Option<ValidationMethod>,
}

impl CertificateManager {
    /// DeleteCertificate: removes the record and its material (key included).
    pub async fn delete_certificate(&self, owner: &Owner, arn: &str) -> Result<(), AcmError> {
        let scope = owner.scope();
        let _turn = self.usage_locks.lock(&scope).await;
        carapace_kernel::optimistic!(AcmError, super::busy(arn), |attempt| {
            let loaded = self.load(owner, arn).await?;
            if !loaded.record.in_use_by.is_empty() {
                return Err(AcmError::ResourceInUse(format!(
                    "Certificate {arn} in account {} is in use.",
                    owner.account
                )));
            }
            let mut usage = self.usage(&scope).await?;
            usage.usage.remove();
            let mut writes = vec![
                Write::Delete { key: Key::new(record::KIND, &scope, &loaded.id), expect: loaded.version },
                usage_put(&scope, &usage)?,
            ];
            let material_key = Key::new(record::MATERIAL_KIND, &scope, &loaded.id);
            if let Some(row) = self.core.store.get(&material_key).await? {
                writes.push(Write::Delete { key: material_key, expect: row.version });
            }
            if commit(self.core.store.as_ref(), writes).await? {
                return Ok(Some(()));
            }
            backoff(attempt).await;
            Ok(None)
        })
    }

    /// AddTagsToCertificate / TagResource.
    pub async fn add_tags(&self, owner: &Owner, arn: &str, tags: &[Tag]) -> Result<(), AcmError> {
        names::check_tags(tags)?;
        self.modify(owner, arn, |r, _| names::merge_tags(&mut r.tags, tags).map(|()| Vec::new())).await?;
        Ok(())
    }

    /// RemoveTagsFromCertificate / UntagResource.
    pub async fn remove_tags(&self, owner: &Owner, arn: &str, tags: &[Tag]) -> Result<(), AcmError> {
        names::check_tags(tags)?;
        self.modify(owner, arn, |r, _| names::remove_tags(&mut r.tags, tags).map(|()| Vec::new())).await?;
        Ok(())
    }

    /// ListTagsForCertificate / ListTagsForResource.
    pub async fn list_tags(&self, owner: &Owner, arn: &str) -> Result<Vec<Tag>, AcmError> {
        Ok(self.load(owner, arn).await?.record.tags)
    }

    /// UpdateCertificateOptions.
    pub async fn update_options(&self, owner: &Owner, arn: &str, update: OptionsUpdate) -> Result<(), AcmError> {
        let dev = self.core.settings.dev;
        let secret = match update.validation_method {
            Some(_) => Some(self.secret().await?),
            None => None,
        };
        let base_url = self.core.settings.base_url.clone();
        self.modify(owner, arn, |r, now| {
            if r.cert_type == CertificateType::Imported {
                return Err(AcmError::InvalidState(format!(
                    "Certificate {arn} is imported; the options of imported certificates cannot be updated."
                )));
            }
            if let Some(export) = update.export
                && export != r.options.export
            {
                return Err(AcmError::Validation(
                    "You cannot update the value of Export after the certificate is created.".into(),
                ));
            }
            if let Some(ct) = update.transparency_logging {
                r.options.transparency_logging = ct;
            }
            if let Some(to) = update.validation_method
                && Some(to) != r.validation_method
            {
                if to == ValidationMethod::Http && r.managed_by.is_none() {
                    return Err(AcmError::Validation(
                        "HTTP validation is only available for certificates managed by CloudFront.".into(),
                    ));
                }
                let from = r.validation_method.unwrap_or(ValidationMethod::Email);
                // A pending request simply switches; an issued certificate migrates, which
                // completes once the domains validate with the new method (at once in --dev).
                let switch_now = r.status == Status::PendingValidation || dev;
                if switch_now {
                    r.validation_method = Some(to);
                    for d in &mut r.domains {
                        d.method = Some(to);
                        d.resource_record = None;
                        d.http_redirect = None;
                        d.validation_emails.clear();
                        match to {
                            ValidationMethod::Dns => {
                                d.resource_record = secret.map(|s| s.dns_record(&owner.account, &d.domain_name));
                            }
                            ValidationMethod::Http => {
                                d.http_redirect =
                                    secret.map(|s| s.http_redirect(&owner.account, &d.domain_name, &base_url));
                            }
                            ValidationMethod::Email => {
                                d.validation_emails =
                                    names::validation_emails(&names::default_email_domain(&d.validation_domain));
                            }
                        }
                    }
                }
                if r.status != Status::PendingValidation {
                    r.method_update =
                        Some(MethodUpdate { from, to, done: switch_now, requested_ms: now, updated_ms: now });
                }
            }
            Ok(Vec::new())
        })
        .await?;
        Ok(())
    }

    /// RenewCertificate: starts a renewal of an issued certificate (same ARN, new key and
    /// leaf). The domains were validated for the first issuance; in `--dev` the renewal
    /// completes within moments.
    pub async fn renew_certificate(&self, owner: &Owner, arn: &str) -> Result<(), AcmError> {
        let dev = self.core.settings.dev;
        let mut scheduled = false;
        self.modify(owner, arn, |r, now| {
            scheduled = false;
            match r.status_at(now) {
                Status::PendingValidation => return Err(not_yet_issued(arn, owner)),
                Status::Issued if r.renewable_on_request() => {}
                _ => {
                    return Err(AcmError::Validation(format!(
                        "Certificate {arn} is not eligible for renewal: RenewCertificate renews issued private \
                         certificates and exportable public certificates that have been exported."
                    )));
                }
            }
            transition(r.status, Event::Renew).map_err(|e| AcmError::Validation(e.to_string()))?;
            if r.renewal.as_ref().is_some_and(Renewal::in_progress) {
                return Ok(Vec::new()); // already renewing
            }
            let target = r.issuance + 1;
            r.renewal = Some(Renewal {
                status: RenewalStatus::PendingAutoRenewal,
                reason: None,
                updated_ms: now,
                target_issuance: target,
                domains: Vec::new(),
                deadline_ms: None,
            });
            let (scope, id) = locate(r).ok_or_else(|| AcmError::Internal(format!("bad stored ARN {}", r.arn)))?;
            scheduled = true;
            Ok(vec![AcmJob::Issue(IssueJob { scope, id, issuance: target, approve_all: dev }).enqueue(now)?])
        })
        .await?;
        if scheduled {
            self.core.wake_workers();
        }
        Ok(())
    }

    /// Revokes a private certificate at the AWS Private CA that signed it: it goes into that
    /// CA's CRL. Revoked there already is done.
    async fn revoke_at_ca(
        &self,
        owner: &Owner,
        ca_arn: &str,
        serial: &str,
        reason: RevocationReason,
    ) -> Result<(), AcmError> {
        use carapace_pca::RevocationReason as Pca;
        let cas = self.private_cas.as_ref().ok_or_else(|| AcmError::internal("no AWS Private CA"))?;
        let reason = match reason {
            RevocationReason::Unspecified => Pca::Unspecified,
            RevocationReason::KeyCompromise => Pca::KeyCompromise,
            RevocationReason::CaCompromise => Pca::CaCompromise,
            RevocationReason::AffiliationChanged => Pca::AffiliationChanged,
            RevocationReason::Superceded | RevocationReason::Superseded => Pca::Superseded,
            RevocationReason::CessationOfOperation => Pca::CessationOfOperation,
            RevocationReason::PrivilegeWithdrawn => Pca::PrivilegeWithdrawn,
            RevocationReason::AACompromise => Pca::AaCompromise,
            RevocationReason::CertificateHold | RevocationReason::RemoveFromCrl => {
                return Err(AcmError::InvalidParameter(
                    "AWS Private CA does not put certificates on hold: use another RevocationReason.".into(),
                ));
            }
        };
        match cas.revoke_certificate(owner, ca_arn, serial, reason).await {
            Ok(()) | Err(carapace_pca::PcaError::RequestAlreadyProcessed(_)) => Ok(()),
            Err(e) => Err(AcmError::fault(format!("revoking at {ca_arn}"))(e)),
        }
    }

    /// RevokeCertificate: for exported certificates (as ACM) and private ones, which their CA
    /// revokes. Records the reason and time for the CRL and OCSP responder.
    pub async fn revoke_certificate(&self, owner: &Owner, arn: &str, reason: RevocationReason) -> Result<(), AcmError> {
        // The CRL and OCSP index the revocation by the issuing intermediate (the leaf's
        // authority key id) and serial, both read off the certificate itself.
        let issued = self.load(owner, arn).await?;
        let private = issued.record.cert_type == CertificateType::Private;
        if let (Some(ca_arn), Some(x509)) = (&issued.record.certificate_authority_arn, &issued.record.x509)
            && issued.record.status != Status::Revoked
            && issued.record.in_use_by.is_empty()
        {
            self.revoke_at_ca(owner, ca_arn, &x509.serial, reason).await?;
        }
        let revocation_index = match issued.record.x509.as_ref().filter(|_| !private) {
            Some(_) => {
                let material = self.material(owner, &issued.id).await?;
                let leaf = carapace_kernel::ca::parse_certificate(&material.certificate_pem)
                    .map_err(AcmError::fault(format!("stored certificate {arn} does not parse")))?;
                let serial = carapace_kernel::revocation::serial_from_display(&leaf.serial_hex);
                leaf.authority_key_id.map(hex::encode).zip(serial)
            }
            None => None,
        };
        self.modify(owner, arn, |r, now| {
            if !r.in_use_by.is_empty() {
                return Err(AcmError::ResourceInUse(format!(
                    "Certificate {arn} in account {} is in use.",
                    owner.account
                )));
            }
            if r.status == Status::Revoked {
                return Err(AcmError::Conflict(format!("Certificate {arn} is already revoked.")));
            }
            if !r.exported && !private {
                return Err(AcmError::Validation(format!(
                    "Certificate {arn} cannot be revoked: only exported certificates can be revoked."
                )));
            }
            r.status = transition(r.status_at(now), Event::Revoke).map_err(|e| AcmError::Validation(e.to_string()))?;
            r.revoked_ms = Some(now);
            r.revocation_reason = Some(reason);
            Ok(revocation_index
                .iter()
                .map(|(issuer, serial)| {
                    carapace_kernel::revocation::record(issuer, serial, now, Some(reason.crl_code()))
                })
                .collect())
        })
        .await?;
        Ok(())
    }

    /// ResendValidationEmail: for pending EMAIL requests within their window. Checks the
    /// domain and validation domain, and restarts the 72-hour window (ACM's documented
    /// behaviour). Sending the mail is the email validation worker's job.
    pub async fn resend_validation_email(
        &self,
        owner: &Owner,
        arn: &str,
        domain: &str,
        validation_domain: &str,
    ) -> Result<(), AcmError> {
        let domain = names::canonical(domain);
        let validation_domain = names::canonical(validation_domain);
        let window = self.settings.validation_window_ms;
        let dev = self.core.settings.dev;
        self.modify(owner, arn, |r, now| {
            if r.status_at(now) != Status::PendingValidation
                || r.validation_method != Some(ValidationMethod::Email)
                || r.validation_deadline_ms.is_some_and(|d| now >= d)
            {
                return Err(AcmError::InvalidState(format!(
                    "Certificate {arn} is not a pending request validated by email; no validation email can be sent."
                )));
            }
            let d = r.domains.iter().find(|d| d.domain_name == domain).ok_or_else(|| {
                AcmError::InvalidDomainValidationOptions(format!("{domain} is not a domain name of certificate {arn}."))
            })?;
            if d.status != DomainStatus::PendingValidation {
                return Err(AcmError::InvalidState(format!(
                    "Domain {domain} of certificate {arn} is already validated."
                )));
            }
            names::check_validation_domain(&domain, &validation_domain)?;
            if d.validation_domain != validation_domain
                && names::default_email_domain(&d.validation_domain) != validation_domain
            {
                return Err(AcmError::InvalidDomainValidationOptions(format!(
                    "The validation domain {validation_domain} does not match the one requested for {domain} ({}).",
                    d.validation_domain
                )));
            }
            r.validation_deadline_ms = Some(now + window);
            if dev {
                return Ok(Vec::new()); // --dev approves without mail
            }
            // A new send (its id is the resend time). The request's timeout job sees the new
            // deadline and waits for it.
            let (scope, id) = locate(r).ok_or_else(|| AcmError::Internal(format!("bad stored ARN {}", r.arn)))?;
            Ok(vec![super::validate::send_email_job(&scope, &id, &domain, now).enqueue(now)?])
        })
        .await?;
        Ok(())
    }

    /// Marks the certificate as used (or no longer used) by `resource_arn` — for services
    /// that attach certificates (Lightsail distributions). A used certificate cannot be
    /// deleted and shows the resource in `InUseBy`.
    pub async fn set_in_use(&self, owner: &Owner, arn: &str, resource_arn: &str, in_use: bool) -> Result<(), AcmError> {
        let renewal_lead = self.renewal_lead_ms();
        self.modify(owner, arn, |r, now| mark_in_use(r, resource_arn, in_use, renewal_lead, now)).await?;
        Ok(())
    }

    /// The writes that mark (or unmark) the caller's certificate `arn` as used by
    /// `resource_arn`, at the version read now, for another service to apply in one batch
    /// with its own rows: a conflict on the certificate's row (see
    /// [`is_certificate_key`](Self::is_certificate_key)) means it changed since, and the
    /// caller reads again.
    pub async fn in_use_writes(
        &self,
        owner: &Owner,
        arn: &str,
        resource_arn: &str,
        in_use: bool,
    ) -> Result<Vec<Write>, AcmError> {
        let mut loaded = self.load(owner, arn).await?;
        let mut writes = mark_in_use(&mut loaded.record, resource_arn, in_use, self.renewal_lead_ms(), self.now_ms())?;
        writes.insert(0, record_put(&owner.scope(), &loaded, Some(loaded.version))?);
        Ok(writes)
    }

    /// Whether `key` is a certificate's row: what a conflict of an
    /// [`in_use_writes`](Self::in_use_writes) batch names when the certificate changed.
    pub fn is_certificate_key(key: &carapace_store::Key) -> bool {
        key.kind == record::KIND
    }

    fn renewal_lead_ms(&self) -> i64 {
        i64::from(self.settings.renewal_days_before_expiry) * super::lifecycle::DAY_MS
    }
}

/// Marks `r` as used by `resource_arn` (or not). In use makes it eligible for managed renewal:
/// the current leaf gets its renewal job (a no-op when it has one; certificates issued by
/// builds before managed renewal have none).
fn mark_in_use(
    r: &mut CertificateRecord,
    resource_arn: &str,
    in_use: bool,
    renewal_lead_ms: i64,
    now: i64,
) -> Result<Vec<Write>, AcmError> {
    r.in_use_by.retain(|a| a != resource_arn);
    if !in_use {
        return Ok(Vec::new());
    }
    r.in_use_by.push(resource_arn.to_owned());
    match (&r.x509, r.cert_type, locate(r)) {
        (Some(x), CertificateType::AmazonIssued, Some((scope, id))) => {
            let job = LifecycleJob { scope, id, issuance: r.issuance };
            Ok(vec![AcmJob::Renew(job).enqueue((x.not_after_ms - renewal_lead_ms).max(now))?])
        }
        _ => Ok(Vec::new()),
    }
}
