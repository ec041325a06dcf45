//! The wire's DTOs to the rules' types and back.

use carapace_kernel::ca::{KeyAlgorithm, SigningAlgorithm};
use carapace_model::Timestamp;
use carapace_model::acm_pca as m;
use carapace_pca::records::{CaStatus, CaSubject, CaType, CrlConfig, OcspConfig, Revocation, UsageMode};
use carapace_pca::{AuthorityView, PcaError, Validity, ValidityType};

/// A key algorithm Carapace generates, or the value refused by name.
pub(crate) fn key_algorithm(alg: m::KeyAlgorithm) -> Result<KeyAlgorithm, PcaError> {
    alg.as_str().parse().map_err(|_| {
        PcaError::InvalidArgs(format!(
            "KeyAlgorithm {} is not supported by Carapace (RSA_2048, RSA_3072, RSA_4096, EC_prime256v1, EC_secp384r1 and EC_secp521r1 are).",
            alg.as_str()
        ))
    })
}

/// A signing algorithm Carapace signs with, or the value refused by name.
pub(crate) fn signing_algorithm(alg: m::SigningAlgorithm) -> Result<SigningAlgorithm, PcaError> {
    SigningAlgorithm::from_name(alg.as_str()).ok_or_else(|| {
        PcaError::InvalidArgs(format!(
            "SigningAlgorithm {} is not supported by Carapace (SHA256/384/512WITHRSA and SHA256/384/512WITHECDSA are).",
            alg.as_str()
        ))
    })
}

fn unsupported(member: &str) -> PcaError {
    PcaError::InvalidArgs(format!("{member} is not supported by Carapace."))
}

/// CreateCertificateAuthority's request as the rules take it. Members Carapace cannot
/// honour are refused by name.
pub(crate) fn new_authority(req: m::CreateCertificateAuthorityRequest) -> Result<carapace_pca::NewAuthority, PcaError> {
    if req.service_affiliation.is_some() {
        return Err(unsupported("ServiceAffiliation"));
    }
    let usage_mode = match req.usage_mode {
        None | Some(m::CertificateAuthorityUsageMode::GeneralPurpose) => UsageMode::GeneralPurpose,
        Some(m::CertificateAuthorityUsageMode::ShortLivedCertificate) => UsageMode::ShortLivedCertificate,
        Some(other) => return Err(unsupported(&format!("UsageMode {}", other.as_str()))),
    };
    let config = req.certificate_authority_configuration;
    if config.csr_extensions.is_some() {
        return Err(unsupported("CertificateAuthorityConfiguration.CsrExtensions"));
    }
    Ok(carapace_pca::NewAuthority {
        ca_type: match req.certificate_authority_type {
            m::CertificateAuthorityType::Root => CaType::Root,
            m::CertificateAuthorityType::Subordinate => CaType::Subordinate,
        },
        key_algorithm: key_algorithm(config.key_algorithm)?,
        signing_algorithm: signing_algorithm(config.signing_algorithm)?,
        subject: subject(config.subject),
        revocation: revocation(req.revocation_configuration)?,
        usage_mode,
        key_storage: req
            .key_storage_security_standard
            .map_or("FIPS_140_2_LEVEL_3_OR_HIGHER", |k| k.as_str())
            .to_owned(),
        tags: tags(req.tags.unwrap_or_default()),
        idempotency_token: req.idempotency_token,
    })
}

/// Tags as the rules take them.
pub(crate) fn tags(tags: Vec<m::Tag>) -> Vec<(String, Option<String>)> {
    tags.into_iter().map(|t| (t.key, t.value)).collect()
}

fn subject(s: m::ASN1Subject) -> CaSubject {
    CaSubject {
        country: s.country,
        organization: s.organization,
        organizational_unit: s.organizational_unit,
        distinguished_name_qualifier: s.distinguished_name_qualifier,
        state: s.state,
        common_name: s.common_name,
        serial_number: s.serial_number,
        locality: s.locality,
        title: s.title,
        surname: s.surname,
        given_name: s.given_name,
        initials: s.initials,
        pseudonym: s.pseudonym,
        generation_qualifier: s.generation_qualifier,
        custom_attributes: s
            .custom_attributes
            .unwrap_or_default()
            .into_iter()
            .map(|a| (a.object_identifier, a.value))
            .collect(),
    }
}

fn subject_dto(s: &CaSubject) -> m::ASN1Subject {
    m::ASN1Subject {
        country: s.country.clone(),
        organization: s.organization.clone(),
        organizational_unit: s.organizational_unit.clone(),
        distinguished_name_qualifier: s.distinguished_name_qualifier.clone(),
        state: s.state.clone(),
        common_name: s.common_name.clone(),
        serial_number: s.serial_number.clone(),
        locality: s.locality.clone(),
        title: s.title.clone(),
        surname: s.surname.clone(),
        given_name: s.given_name.clone(),
        initials: s.initials.clone(),
        pseudonym: s.pseudonym.clone(),
        generation_qualifier: s.generation_qualifier.clone(),
        custom_attributes: (!s.custom_attributes.is_empty()).then(|| {
            s.custom_attributes
                .iter()
                .map(|(oid, value)| m::CustomAttribute { object_identifier: oid.clone(), value: value.clone() })
                .collect()
        }),
    }
}

/// A revocation configuration as the rules take it: partitioned CRLs are refused by name.
pub(crate) fn revocation(config: Option<m::RevocationConfiguration>) -> Result<Revocation, PcaError> {
    let Some(config) = config else { return Ok(Revocation::default()) };
    let ocsp = config
        .ocsp_configuration
        .map(|o| OcspConfig { enabled: o.enabled, custom_cname: o.ocsp_custom_cname.filter(|c| !c.is_empty()) });
    let crl = match config.crl_configuration {
        None => None,
        Some(c) => {
            if c.crl_type == Some(m::CrlType::Partitioned) {
                return Err(unsupported("RevocationConfiguration.CrlConfiguration.CrlType PARTITIONED"));
            }
            Some(CrlConfig {
                enabled: c.enabled,
                expiration_days: c.expiration_in_days,
                custom_cname: c.custom_cname,
                bucket: c.s3_bucket_name,
                object_acl: c.s3_object_acl.map(|a| a.as_str().to_owned()),
                omit_extension: c.crl_distribution_point_extension_configuration.is_some_and(|e| e.omit_extension),
                custom_path: c.custom_path,
            })
        }
    };
    Ok(Revocation { crl, ocsp })
}

fn revocation_dto(r: &Revocation) -> m::RevocationConfiguration {
    m::RevocationConfiguration {
        crl_configuration: Some(match &r.crl {
            None => m::CrlConfiguration { enabled: false, ..Default::default() },
            Some(c) => m::CrlConfiguration {
                enabled: c.enabled,
                expiration_in_days: c.expiration_days,
                custom_cname: c.custom_cname.clone(),
                s3_bucket_name: c.bucket.clone(),
                s3_object_acl: c.object_acl.as_deref().map(|a| {
                    if a == "BUCKET_OWNER_FULL_CONTROL" {
                        m::S3ObjectAcl::BucketOwnerFullControl
                    } else {
                        m::S3ObjectAcl::PublicRead
                    }
                }),
                crl_distribution_point_extension_configuration: c
                    .omit_extension
                    .then_some(m::CrlDistributionPointExtensionConfiguration { omit_extension: true }),
                crl_type: c.enabled.then_some(m::CrlType::Complete),
                custom_path: c.custom_path.clone(),
            },
        }),
        ocsp_configuration: Some(match &r.ocsp {
            None => m::OcspConfiguration { enabled: false, ocsp_custom_cname: None },
            Some(o) => m::OcspConfiguration { enabled: o.enabled, ocsp_custom_cname: o.custom_cname.clone() },
        }),
    }
}

/// A `Validity`.
pub(crate) fn validity(v: m::Validity) -> Validity {
    let kind = match v.r#type {
        m::ValidityPeriodType::EndDate => ValidityType::EndDate,
        m::ValidityPeriodType::Absolute => ValidityType::Absolute,
        m::ValidityPeriodType::Days => ValidityType::Days,
        m::ValidityPeriodType::Months => ValidityType::Months,
        m::ValidityPeriodType::Years => ValidityType::Years,
    };
    Validity { value: v.value, kind }
}

fn status_dto(s: CaStatus) -> m::CertificateAuthorityStatus {
    match s {
        CaStatus::PendingCertificate => m::CertificateAuthorityStatus::PendingCertificate,
        CaStatus::Active => m::CertificateAuthorityStatus::Active,
        CaStatus::Disabled => m::CertificateAuthorityStatus::Disabled,
        CaStatus::Expired => m::CertificateAuthorityStatus::Expired,
        CaStatus::Deleted => m::CertificateAuthorityStatus::Deleted,
    }
}

/// A status UpdateCertificateAuthority may set.
pub(crate) fn status(s: m::CertificateAuthorityStatus) -> Result<CaStatus, PcaError> {
    match s {
        m::CertificateAuthorityStatus::Active => Ok(CaStatus::Active),
        m::CertificateAuthorityStatus::Disabled => Ok(CaStatus::Disabled),
        other => {
            Err(PcaError::InvalidArgs(format!("Status {} cannot be set; use ACTIVE or DISABLED.", other.as_str())))
        }
    }
}

/// A CA as DescribeCertificateAuthority and ListCertificateAuthorities show it.
pub(crate) fn authority(view: &AuthorityView) -> m::CertificateAuthority {
    let r = &view.record;
    let key_algorithm = by_name(r.key_algorithm.as_str()).unwrap_or_default();
    let signing_algorithm = by_name(r.signing_algorithm.as_str()).unwrap_or_default();
    m::CertificateAuthority {
        arn: Some(r.arn.clone()),
        owner_account: Some(r.account.clone()),
        created_at: Some(Timestamp::from_unix_millis(r.created_ms)),
        last_state_change_at: Some(Timestamp::from_unix_millis(r.last_state_change_ms)),
        r#type: Some(match r.ca_type {
            CaType::Root => m::CertificateAuthorityType::Root,
            CaType::Subordinate => m::CertificateAuthorityType::Subordinate,
        }),
        serial: r.serial.clone(),
        status: Some(status_dto(view.status)),
        not_before: r.not_before_ms.map(Timestamp::from_unix_millis),
        not_after: r.not_after_ms.map(Timestamp::from_unix_millis),
        failure_reason: None,
        certificate_authority_configuration: Some(m::CertificateAuthorityConfiguration {
            key_algorithm,
            signing_algorithm,
            subject: subject_dto(&r.subject),
            csr_extensions: None,
        }),
        revocation_configuration: Some(revocation_dto(&r.revocation)),
        restorable_until: r
            .restorable_until_ms
            .filter(|_| view.status == CaStatus::Deleted)
            .map(Timestamp::from_unix_millis),
        key_storage_security_standard: by_name(&r.key_storage),
        usage_mode: Some(match r.usage_mode {
            UsageMode::GeneralPurpose => m::CertificateAuthorityUsageMode::GeneralPurpose,
            UsageMode::ShortLivedCertificate => m::CertificateAuthorityUsageMode::ShortLivedCertificate,
        }),
        service_affiliation: None,
        multi_region_configuration: None,
    }
}

/// The generated enum value whose wire name is `name`: the rules name key and signing
/// algorithms by the API's own names, so the wire enum is found by name, not re-listed.
fn by_name<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

/// A stored action name as the wire enum.
pub(crate) fn action(name: &str) -> Option<m::ActionType> {
    by_name(name)
}
