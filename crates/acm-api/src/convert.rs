//! Core values ↔ ACM DTOs.

use carapace_acm::record::{
    CertificateType, DomainValidation, FailureReason, KeyPairOrigin, ManagedBy, RenewalStatus, RevocationReason,
    ValidationMethod, X509Facts,
};
use carapace_acm::state::DomainStatus;
use carapace_acm::{CertificateUsage, CertificateView, RootHierarchy, Status, Tag};
use carapace_kernel::ca::{KeyAlgorithm, KeyFamily};
use carapace_model::Timestamp;
use carapace_model::acm as m;

/// Most SANs a ListCertificates summary carries (ACM: 100, then
/// `HasAdditionalSubjectAlternativeNames`).
const SUMMARY_SAN_LIMIT: usize = 100;

pub(crate) fn ts(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(ms)
}

/// Timestamps ACM shows in whole seconds (X.509 validity is whole seconds anyway).
pub(crate) fn ts_secs(ms: i64) -> Timestamp {
    Timestamp::from_unix(ms.div_euclid(1000))
}

pub(crate) fn status(s: Status) -> m::CertificateStatus {
    match s {
        Status::PendingValidation => m::CertificateStatus::PendingValidation,
        Status::Issued => m::CertificateStatus::Issued,
        Status::Inactive => m::CertificateStatus::Inactive,
        Status::Expired => m::CertificateStatus::Expired,
        Status::ValidationTimedOut => m::CertificateStatus::ValidationTimedOut,
        Status::Revoked => m::CertificateStatus::Revoked,
        Status::Failed => m::CertificateStatus::Failed,
    }
}

pub(crate) fn status_from(s: m::CertificateStatus) -> Status {
    match s {
        m::CertificateStatus::PendingValidation => Status::PendingValidation,
        m::CertificateStatus::Issued => Status::Issued,
        m::CertificateStatus::Inactive => Status::Inactive,
        m::CertificateStatus::Expired => Status::Expired,
        m::CertificateStatus::ValidationTimedOut => Status::ValidationTimedOut,
        m::CertificateStatus::Revoked => Status::Revoked,
        m::CertificateStatus::Failed => Status::Failed,
    }
}

pub(crate) fn key_algorithm(k: KeyAlgorithm) -> m::KeyAlgorithm {
    match k {
        KeyAlgorithm::Rsa1024 => m::KeyAlgorithm::Rsa1024,
        KeyAlgorithm::Rsa2048 => m::KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072 => m::KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096 => m::KeyAlgorithm::Rsa4096,
        KeyAlgorithm::EcPrime256v1 => m::KeyAlgorithm::EcPrime256v1,
        KeyAlgorithm::EcSecp384r1 => m::KeyAlgorithm::EcSecp384r1,
        KeyAlgorithm::EcSecp521r1 => m::KeyAlgorithm::EcSecp521r1,
    }
}

pub(crate) fn key_algorithm_from(k: m::KeyAlgorithm) -> KeyAlgorithm {
    match k {
        m::KeyAlgorithm::Rsa1024 => KeyAlgorithm::Rsa1024,
        m::KeyAlgorithm::Rsa2048 => KeyAlgorithm::Rsa2048,
        m::KeyAlgorithm::Rsa3072 => KeyAlgorithm::Rsa3072,
        m::KeyAlgorithm::Rsa4096 => KeyAlgorithm::Rsa4096,
        m::KeyAlgorithm::EcPrime256v1 => KeyAlgorithm::EcPrime256v1,
        m::KeyAlgorithm::EcSecp384r1 => KeyAlgorithm::EcSecp384r1,
        m::KeyAlgorithm::EcSecp521r1 => KeyAlgorithm::EcSecp521r1,
    }
}

pub(crate) fn cert_type(t: CertificateType) -> m::CertificateType {
    match t {
        CertificateType::AmazonIssued => m::CertificateType::AmazonIssued,
        CertificateType::Imported => m::CertificateType::Imported,
        CertificateType::Private => m::CertificateType::Private,
    }
}

pub(crate) fn method(v: ValidationMethod) -> m::ValidationMethod {
    match v {
        ValidationMethod::Email => m::ValidationMethod::Email,
        ValidationMethod::Dns => m::ValidationMethod::Dns,
        ValidationMethod::Http => m::ValidationMethod::Http,
    }
}

pub(crate) fn method_from(v: m::ValidationMethod) -> ValidationMethod {
    match v {
        m::ValidationMethod::Email => ValidationMethod::Email,
        m::ValidationMethod::Dns => ValidationMethod::Dns,
        m::ValidationMethod::Http => ValidationMethod::Http,
    }
}

pub(crate) fn domain_status(s: DomainStatus) -> m::DomainStatus {
    match s {
        DomainStatus::PendingValidation => m::DomainStatus::PendingValidation,
        DomainStatus::Success => m::DomainStatus::Success,
        DomainStatus::Failed => m::DomainStatus::Failed,
    }
}

pub(crate) fn managed_by(v: ManagedBy) -> m::CertificateManagedBy {
    match v {
        ManagedBy::Cloudfront => m::CertificateManagedBy::Cloudfront,
    }
}

pub(crate) fn managed_by_from(v: m::CertificateManagedBy) -> ManagedBy {
    match v {
        m::CertificateManagedBy::Cloudfront => ManagedBy::Cloudfront,
    }
}

pub(crate) fn origin(v: KeyPairOrigin) -> m::CertificateKeyPairOrigin {
    match v {
        KeyPairOrigin::AwsManaged => m::CertificateKeyPairOrigin::AwsManaged,
        KeyPairOrigin::Acme => m::CertificateKeyPairOrigin::Acme,
        KeyPairOrigin::CustomerProvided => m::CertificateKeyPairOrigin::CustomerProvided,
    }
}

pub(crate) fn origin_from(v: m::CertificateKeyPairOrigin) -> KeyPairOrigin {
    match v {
        m::CertificateKeyPairOrigin::AwsManaged => KeyPairOrigin::AwsManaged,
        m::CertificateKeyPairOrigin::Acme => KeyPairOrigin::Acme,
        m::CertificateKeyPairOrigin::CustomerProvided => KeyPairOrigin::CustomerProvided,
    }
}

pub(crate) fn root_hierarchy_from(v: m::RootHierarchyType) -> RootHierarchy {
    match v {
        m::RootHierarchyType::N2AmazonManaged => RootHierarchy::N2,
        m::RootHierarchyType::N2Sfg2AmazonManaged => RootHierarchy::N2CrossSigned,
    }
}

pub(crate) fn root_hierarchy(v: RootHierarchy) -> m::RootHierarchyType {
    match v {
        RootHierarchy::N2 => m::RootHierarchyType::N2AmazonManaged,
        RootHierarchy::N2CrossSigned => m::RootHierarchyType::N2Sfg2AmazonManaged,
    }
}

pub(crate) fn certificate_usage(v: CertificateUsage) -> m::CertificateUsage {
    match v {
        CertificateUsage::ClientAndServerAuth => m::CertificateUsage::ClientAndServerAuth,
        CertificateUsage::ClientAuthOnly => m::CertificateUsage::ClientAuthOnly,
    }
}

pub(crate) fn failure(v: FailureReason) -> m::FailureReason {
    match v {
        FailureReason::NoAvailableContacts => m::FailureReason::NoAvailableContacts,
        FailureReason::DomainNotAllowed => m::FailureReason::DomainNotAllowed,
        FailureReason::InvalidPublicDomain => m::FailureReason::InvalidPublicDomain,
        FailureReason::DomainValidationDenied => m::FailureReason::DomainValidationDenied,
        FailureReason::CaaError => m::FailureReason::CaaError,
        FailureReason::PcaInvalidState => m::FailureReason::PcaInvalidState,
        FailureReason::PcaResourceNotFound => m::FailureReason::PcaResourceNotFound,
        FailureReason::PcaInvalidArgs => m::FailureReason::PcaInvalidArgs,
        FailureReason::PcaRequestFailed => m::FailureReason::PcaRequestFailed,
        FailureReason::PcaAccessDenied => m::FailureReason::PcaAccessDenied,
        FailureReason::Other => m::FailureReason::Other,
    }
}

pub(crate) fn renewal_status(v: RenewalStatus) -> m::RenewalStatus {
    match v {
        RenewalStatus::PendingAutoRenewal => m::RenewalStatus::PendingAutoRenewal,
        RenewalStatus::PendingValidation => m::RenewalStatus::PendingValidation,
        RenewalStatus::Success => m::RenewalStatus::Success,
        RenewalStatus::Failed => m::RenewalStatus::Failed,
    }
}

pub(crate) fn revocation(v: RevocationReason) -> m::RevocationReason {
    match v {
        RevocationReason::Unspecified => m::RevocationReason::Unspecified,
        RevocationReason::KeyCompromise => m::RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise => m::RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged => m::RevocationReason::AffiliationChanged,
        RevocationReason::Superceded => m::RevocationReason::Superceded,
        RevocationReason::Superseded => m::RevocationReason::Superseded,
        RevocationReason::CessationOfOperation => m::RevocationReason::CessationOfOperation,
        RevocationReason::CertificateHold => m::RevocationReason::CertificateHold,
        RevocationReason::RemoveFromCrl => m::RevocationReason::RemoveFromCrl,
        RevocationReason::PrivilegeWithdrawn => m::RevocationReason::PrivilegeWithdrawn,
        RevocationReason::AACompromise => m::RevocationReason::AACompromise,
    }
}

pub(crate) fn revocation_from(v: m::RevocationReason) -> RevocationReason {
    match v {
        m::RevocationReason::Unspecified => RevocationReason::Unspecified,
        m::RevocationReason::KeyCompromise => RevocationReason::KeyCompromise,
        m::RevocationReason::CaCompromise => RevocationReason::CaCompromise,
        m::RevocationReason::AffiliationChanged => RevocationReason::AffiliationChanged,
        m::RevocationReason::Superceded => RevocationReason::Superceded,
        m::RevocationReason::Superseded => RevocationReason::Superseded,
        m::RevocationReason::CessationOfOperation => RevocationReason::CessationOfOperation,
        m::RevocationReason::CertificateHold => RevocationReason::CertificateHold,
        m::RevocationReason::RemoveFromCrl => RevocationReason::RemoveFromCrl,
        m::RevocationReason::PrivilegeWithdrawn => RevocationReason::PrivilegeWithdrawn,
        m::RevocationReason::AACompromise => RevocationReason::AACompromise,
    }
}

pub(crate) fn export_option(enabled: bool) -> m::CertificateExport {
    if enabled { m::CertificateExport::Enabled } else { m::CertificateExport::Disabled }
}

pub(crate) fn eligibility(eligible: bool) -> m::RenewalEligibility {
    if eligible { m::RenewalEligibility::Eligible } else { m::RenewalEligibility::Ineligible }
}

/// An ACM key usage name; names this build does not know become `CUSTOM`.
pub(crate) fn key_usage(name: &str) -> m::KeyUsageName {
    name.parse().unwrap_or(m::KeyUsageName::Custom)
}

/// An ACM extended key usage name; unknown ones become `CUSTOM`.
pub(crate) fn extended_key_usage(name: &str) -> m::ExtendedKeyUsageName {
    name.parse().unwrap_or(m::ExtendedKeyUsageName::Custom)
}

/// The key usages a certificate shows. One without a key usage extension may be used for
/// anything (RFC 5280 §4.2.1.3), which the model's `KeyUsageName` calls `ANY`; one without an
/// extended key usage extension shows `NONE` (`ExtendedKeyUsageName`). A certificate not yet
/// signed shows none at all (LocalStack's recorded `test_domain_validation`: `[]`).
fn key_usages(x: Option<&X509Facts>) -> Vec<m::KeyUsageName> {
    match x {
        Some(x) if x.key_usages.is_empty() => vec![m::KeyUsageName::Any],
        Some(x) => x.key_usages.iter().map(|k| key_usage(k)).collect(),
        None => Vec::new(),
    }
}

/// The extended key usages a certificate shows, with their OIDs (see [`key_usages`]).
fn extended_key_usages(x: Option<&X509Facts>) -> Vec<(m::ExtendedKeyUsageName, Option<String>)> {
    match x {
        Some(x) if x.extended_key_usages.is_empty() => vec![(m::ExtendedKeyUsageName::None, None)],
        Some(x) => {
            x.extended_key_usages.iter().map(|(name, oid)| (extended_key_usage(name), Some(oid.clone()))).collect()
        }
        None => Vec::new(),
    }
}

pub(crate) fn tags(tags: Vec<Tag>) -> Vec<m::Tag> {
    tags.into_iter().map(|t| m::Tag { key: t.key, value: t.value }).collect()
}

pub(crate) fn tags_from(tags: Vec<m::Tag>) -> Vec<Tag> {
    tags.into_iter().map(|t| Tag { key: t.key, value: t.value }).collect()
}

pub(crate) fn domain_validation(d: &DomainValidation) -> m::DomainValidation {
    let Some(method_used) = d.method else {
        // Imported certificates (no validation domain): the domain name only, as ACM shows
        // them. Private ones, which nothing validates, show their domains pending until the
        // CA has signed, so `certificate-validated` waits for them as for any other.
        let private = !d.validation_domain.is_empty();
        return m::DomainValidation {
            domain_name: d.domain_name.clone(),
            validation_domain: private.then(|| d.validation_domain.clone()),
            validation_status: private.then(|| domain_status(d.status)),
            ..Default::default()
        };
    };
    m::DomainValidation {
        domain_name: d.domain_name.clone(),
        validation_emails: (method_used == ValidationMethod::Email).then(|| d.validation_emails.clone()),
        validation_domain: Some(d.validation_domain.clone()),
        validation_status: Some(domain_status(d.status)),
        resource_record: d.resource_record.as_ref().map(|r| m::ResourceRecord {
            name: r.name.clone(),
            r#type: m::RecordType::Cname,
            value: r.value.clone(),
        }),
        http_redirect: d.http_redirect.as_ref().map(|h| m::HttpRedirect {
            redirect_from: Some(h.redirect_from.clone()),
            redirect_to: Some(h.redirect_to.clone()),
        }),
        validation_method: Some(method(method_used)),
    }
}

/// ACM's signature algorithm name for a certificate not issued yet (the issuing CA's).
fn pending_signature_algorithm(k: KeyAlgorithm) -> &'static str {
    match k.family() {
        KeyFamily::Rsa => "SHA256WITHRSA",
        KeyFamily::Ec => "SHA256WITHECDSA",
    }
}

/// DescribeCertificate's `CertificateDetail`: every member ACM fills for this certificate.
pub(crate) fn detail(v: &CertificateView) -> m::CertificateDetail {
    let r = &v.record;
    let x = r.x509.as_ref();
    let dvos: Vec<m::DomainValidation> = r.domains.iter().map(domain_validation).collect();
    let issued_here = r.cert_type != CertificateType::Imported;
    m::CertificateDetail {
        certificate_arn: Some(r.arn.clone()),
        domain_name: Some(r.domain_name.clone()),
        subject_alternative_names: Some(r.sans.clone()),
        managed_by: r.managed_by.map(managed_by),
        domain_validation_options: Some(dvos.clone()),
        serial: x.map(|x| x.serial.clone()),
        subject: Some(x.map_or_else(|| format!("CN={}", r.domain_name), |x| x.subject.clone())),
        issuer: v.issuer.clone(),
        // Imported certificates too (LocalStack's recorded `test_import_certificate` shows
        // `CreatedAt` beside `ImportedAt`).
        created_at: Some(ts(r.created_ms)),
        issued_at: if issued_here { r.issued_ms.map(ts) } else { None },
        imported_at: r.imported_ms.map(ts),
        status: Some(status(v.status)),
        revoked_at: r.revoked_ms.map(ts),
        revocation_reason: r.revocation_reason.map(revocation),
        not_before: x.map(|x| ts_secs(x.not_before_ms)),
        not_after: x.map(|x| ts_secs(x.not_after_ms)),
        // Describe spells key algorithms with a hyphen (RSA-2048), unlike requests.
        key_algorithm: Some(r.key_algorithm.display_name().to_owned()),
        signature_algorithm: Some(x.map_or_else(
            || pending_signature_algorithm(r.key_algorithm).to_owned(),
            |x| x.signature_algorithm.clone(),
        )),
        in_use_by: Some(r.in_use_by.clone()),
        failure_reason: if v.status == Status::Failed { r.failure_reason.map(failure) } else { None },
        r#type: Some(cert_type(r.cert_type)),
        renewal_summary: r.renewal.as_ref().map(|rn| m::RenewalSummary {
            renewal_status: renewal_status(rn.status),
            // A managed renewal re-validates each domain; RenewCertificate re-uses the first.
            domain_validation_options: if rn.domains.is_empty() {
                dvos.clone()
            } else {
                rn.domains.iter().map(domain_validation).collect()
            },
            renewal_status_reason: rn.reason.map(failure),
            updated_at: ts(rn.updated_ms),
        }),
        key_usages: Some(key_usages(x).into_iter().map(|name| m::KeyUsage { name: Some(name) }).collect()),
        extended_key_usages: Some(
            extended_key_usages(x)
                .into_iter()
                .map(|(name, oid)| m::ExtendedKeyUsage { name: Some(name), oid })
                .collect(),
        ),
        certificate_authority_arn: r.certificate_authority_arn.clone(),
        renewal_eligibility: Some(eligibility(v.renewal_eligible)),
        options: Some(m::CertificateOptions {
            certificate_transparency_logging_preference: Some(if r.options.transparency_logging {
                m::CertificateTransparencyLoggingPreference::Enabled
            } else {
                m::CertificateTransparencyLoggingPreference::Disabled
            }),
            export: Some(export_option(r.options.export)),
            validation_method: None,
        }),
        update_summary: r.method_update.as_ref().map(|u| m::UpdateSummary {
            status: Some(if u.done { m::UpdateStatus::Success } else { m::UpdateStatus::PendingDomainValidation }),
            r#type: Some(m::UpdateType::DomainValidationMethod),
            domain_validation_method_update_summary: Some(m::DomainValidationMethodUpdateSummary {
                from: Some(method(u.from)),
                to: Some(method(u.to)),
            }),
            requested_at: Some(ts(u.requested_ms)),
            updated_at: Some(ts(u.updated_ms)),
        }),
        certificate_key_pair_origin: Some(origin(r.key_pair_origin)),
        acme_endpoint_arn: None,
        acme_account_id: None,
        // Both exist only for Amazon N2 certificates.
        root_hierarchy_type: r.root_hierarchy.map(root_hierarchy),
        certificate_usage: r.certificate_usage.map(certificate_usage),
    }
}

/// ListCertificates' `CertificateSummary`.
pub(crate) fn summary(v: &CertificateView) -> m::CertificateSummary {
    let r = &v.record;
    let x = r.x509.as_ref();
    let issued_here = r.cert_type != CertificateType::Imported;
    m::CertificateSummary {
        certificate_arn: Some(r.arn.clone()),
        domain_name: Some(r.domain_name.clone()),
        subject_alternative_name_summaries: Some(r.sans.iter().take(SUMMARY_SAN_LIMIT).cloned().collect()),
        has_additional_subject_alternative_names: Some(r.sans.len() > SUMMARY_SAN_LIMIT),
        status: Some(status(v.status)),
        r#type: Some(cert_type(r.cert_type)),
        // ACM spells key algorithms with a hyphen in summaries (`RSA-2048`), as in
        // DescribeCertificate, although requests and filters use the underscore: the
        // generated member is a string for it (codegen's STRING_OVERRIDES).
        key_algorithm: Some(r.key_algorithm.display_name().to_owned()),
        key_usages: Some(key_usages(x)),
        extended_key_usages: Some(extended_key_usages(x).into_iter().map(|(name, _)| name).collect()),
        export_option: Some(export_option(r.options.export)),
        in_use: Some(!r.in_use_by.is_empty()),
        exported: Some(r.exported),
        renewal_eligibility: Some(eligibility(v.renewal_eligible)),
        not_before: x.map(|x| ts_secs(x.not_before_ms)),
        not_after: x.map(|x| ts_secs(x.not_after_ms)),
        // Imported certificates too (LocalStack's recorded `test_import_certificate` shows
        // `CreatedAt` beside `ImportedAt`).
        created_at: Some(ts(r.created_ms)),
        issued_at: if issued_here { r.issued_ms.map(ts) } else { None },
        imported_at: r.imported_ms.map(ts),
        revoked_at: r.revoked_ms.map(ts),
        managed_by: r.managed_by.map(managed_by),
        certificate_key_pair_origin: Some(origin(r.key_pair_origin)),
        // Both exist only for Amazon N2 certificates.
        root_hierarchy_type: r.root_hierarchy.map(root_hierarchy),
        certificate_usage: r.certificate_usage.map(certificate_usage),
    }
}
