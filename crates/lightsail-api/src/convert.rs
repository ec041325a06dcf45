//! Core values ↔ Lightsail DTOs.

use carapace_acm::record::{FailureReason, RenewalStatus, RevocationReason};
use carapace_acm::state::DomainStatus;
use carapace_acm::{CertificateView as AcmView, Status, Tag};
use carapace_lightsail::cache::{
    Behavior, CacheSettings, CacheSettingsInput, CustomErrorResponse, DEFAULT_ERROR_CACHING_MIN_TTL, Forward,
    Forwarded, ForwardedQueryStrings, PathBehavior,
};
use carapace_lightsail::edge::CacheResetStatus;
use carapace_lightsail::records::{
    DistributionRecord, IpAddressType, OriginProtocolPolicy, ResourceType, ViewerMinimumTls,
};
use carapace_lightsail::{CertificateView, DistributionView, OperationStatus, OperationView, OriginInput};
use carapace_model::Timestamp;
use carapace_model::lightsail as m;

pub(crate) fn ts(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(ms)
}

pub(crate) fn ms(t: &Timestamp) -> i64 {
    (t.0 * 1000.0).round() as i64
}

pub(crate) fn tags(tags: &[Tag]) -> Vec<m::Tag> {
    tags.iter().map(|t| m::Tag { key: Some(t.key.clone()), value: Some(t.value.clone().unwrap_or_default()) }).collect()
}

pub(crate) fn tags_from(tags: Vec<m::Tag>) -> Vec<Tag> {
    tags.into_iter().map(|t| Tag { key: t.key.unwrap_or_default(), value: t.value }).collect()
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

fn domain_status(s: DomainStatus) -> m::CertificateDomainValidationStatus {
    match s {
        DomainStatus::PendingValidation => m::CertificateDomainValidationStatus::PendingValidation,
        DomainStatus::Success => m::CertificateDomainValidationStatus::Success,
        DomainStatus::Failed => m::CertificateDomainValidationStatus::Failed,
    }
}

fn renewal_status(s: RenewalStatus) -> m::RenewalStatus {
    match s {
        RenewalStatus::PendingAutoRenewal => m::RenewalStatus::PendingAutoRenewal,
        RenewalStatus::PendingValidation => m::RenewalStatus::PendingValidation,
        RenewalStatus::Success => m::RenewalStatus::Success,
        RenewalStatus::Failed => m::RenewalStatus::Failed,
    }
}

/// ACM's failure reason names, which Lightsail's `requestFailureReason` shares.
fn failure(f: FailureReason) -> &'static str {
    match f {
        FailureReason::NoAvailableContacts => "NO_AVAILABLE_CONTACTS",
        FailureReason::DomainNotAllowed => "DOMAIN_NOT_ALLOWED",
        FailureReason::InvalidPublicDomain => "INVALID_PUBLIC_DOMAIN",
        FailureReason::DomainValidationDenied => "DOMAIN_VALIDATION_DENIED",
        FailureReason::CaaError => "CAA_ERROR",
        FailureReason::PcaInvalidState => "PCA_INVALID_STATE",
        FailureReason::PcaResourceNotFound => "PCA_RESOURCE_NOT_FOUND",
        FailureReason::PcaInvalidArgs => "PCA_INVALID_ARGS",
        FailureReason::PcaRequestFailed => "PCA_REQUEST_FAILED",
        FailureReason::PcaAccessDenied => "PCA_ACCESS_DENIED",
        FailureReason::Other => "OTHER",
    }
}

/// ACM's revocation reason names, which Lightsail's `revocationReason` (a string) shares.
fn revocation_reason(r: RevocationReason) -> &'static str {
    match r {
        RevocationReason::Unspecified => "UNSPECIFIED",
        RevocationReason::KeyCompromise => "KEY_COMPROMISE",
        RevocationReason::CaCompromise => "CA_COMPROMISE",
        RevocationReason::AffiliationChanged => "AFFILIATION_CHANGED",
        RevocationReason::Superceded => "SUPERCEDED",
        RevocationReason::Superseded => "SUPERSEDED",
        RevocationReason::CessationOfOperation => "CESSATION_OF_OPERATION",
        RevocationReason::CertificateHold => "CERTIFICATE_HOLD",
        RevocationReason::RemoveFromCrl => "REMOVE_FROM_CRL",
        RevocationReason::PrivilegeWithdrawn => "PRIVILEGE_WITHDRAWN",
        RevocationReason::AACompromise => "A_A_COMPROMISE",
    }
}

/// The validation records. Lightsail adds the CNAMEs itself only for domains hosted in
/// Lightsail DNS; Carapace hosts no zones, so `dnsRecordCreationState` says the owner
/// must publish them.
fn validation_records(v: &AcmView) -> Vec<m::DomainValidationRecord> {
    v.record
        .domains
        .iter()
        .map(|d| m::DomainValidationRecord {
            domain_name: Some(d.domain_name.clone()),
            resource_record: d.resource_record.as_ref().map(|r| m::ResourceRecord {
                name: Some(r.name.clone()),
                r#type: Some("CNAME".into()),
                value: Some(r.value.clone()),
            }),
            dns_record_creation_state: Some(m::DnsRecordCreationState {
                code: Some(m::DnsRecordCreationStateCode::Failed),
                message: Some(format!(
                    "{} is not hosted in a Lightsail DNS zone: add the CNAME record to the domain's DNS.",
                    d.validation_domain
                )),
            }),
            validation_status: Some(domain_status(d.status)),
        })
        .collect()
}

/// `Certificate`: every member AWS fills.
pub(crate) fn certificate_detail(c: &CertificateView, acm: &AcmView) -> m::Certificate {
    let r = &acm.record;
    let x = r.x509.as_ref();
    m::Certificate {
        arn: Some(c.record.arn.clone()),
        name: Some(c.record.name.clone()),
        domain_name: Some(r.domain_name.clone()),
        status: Some(status(acm.status)),
        serial_number: x.map(|x| x.serial.clone()),
        subject_alternative_names: Some(r.sans.clone()),
        domain_validation_records: Some(validation_records(acm)),
        request_failure_reason: if acm.status == Status::Failed {
            r.failure_reason.map(|f| failure(f).to_owned())
        } else {
            None
        },
        in_use_resource_count: Some(i32::try_from(r.in_use_by.len()).unwrap_or(i32::MAX)),
        key_algorithm: Some(r.key_algorithm.display_name().to_owned()),
        created_at: Some(ts(c.record.created_ms)),
        issued_at: r.issued_ms.map(ts),
        issuer_ca: x.map(|x| x.issuer.clone()),
        not_before: x.map(|x| Timestamp::from_unix(x.not_before_ms.div_euclid(1000))),
        not_after: x.map(|x| Timestamp::from_unix(x.not_after_ms.div_euclid(1000))),
        eligible_to_renew: Some(if acm.renewal_eligible { "ELIGIBLE" } else { "INELIGIBLE" }.into()),
        renewal_summary: r.renewal.as_ref().map(|rn| m::RenewalSummary {
            domain_validation_records: Some(validation_records(acm)),
            renewal_status: Some(renewal_status(rn.status)),
            renewal_status_reason: rn.reason.map(|f| failure(f).to_owned()),
            updated_at: Some(ts(rn.updated_ms)),
        }),
        revoked_at: r.revoked_ms.map(ts),
        revocation_reason: r.revocation_reason.map(|x| revocation_reason(x).to_owned()),
        tags: Some(tags(&c.record.tags)),
        support_code: Some(c.record.support_code.clone()),
    }
}

/// `CertificateSummary`: the summary members, plus the detail when it was read.
pub(crate) fn certificate_summary(c: &CertificateView) -> m::CertificateSummary {
    m::CertificateSummary {
        certificate_arn: Some(c.record.arn.clone()),
        certificate_name: Some(c.record.name.clone()),
        domain_name: Some(c.record.domain_name.clone()),
        certificate_detail: c.acm.as_ref().map(|acm| certificate_detail(c, acm)),
        tags: Some(tags(&c.record.tags)),
    }
}

fn operation_status(s: OperationStatus) -> m::OperationStatus {
    match s {
        OperationStatus::Started => m::OperationStatus::Started,
        OperationStatus::Succeeded => m::OperationStatus::Succeeded,
        OperationStatus::Failed => m::OperationStatus::Failed,
    }
}

fn location(region: &str) -> m::ResourceLocation {
    m::ResourceLocation { availability_zone: Some("all".into()), region_name: region.parse().ok() }
}

/// `Operation`. Its `operationType` is the operation's name, `TagResource` and
/// `UntagResource` included although the model's `OperationType` does not list them: AWS
/// sends them, and clients that index `operationType` need it.
pub(crate) fn operation(o: &OperationView) -> m::Operation {
    let r = &o.record;
    m::Operation {
        id: Some(r.id.clone()),
        resource_name: Some(r.resource_name.clone()),
        resource_type: Some(match r.resource_type {
            ResourceType::Distribution => m::ResourceType::Distribution,
            ResourceType::Certificate => m::ResourceType::Certificate,
        }),
        created_at: Some(ts(r.created_ms)),
        location: Some(location(&r.region)),
        is_terminal: Some(o.is_terminal()),
        operation_details: r.details.clone(),
        operation_type: Some(r.operation_type.as_str().to_owned()),
        status: Some(operation_status(o.status)),
        status_changed_at: Some(ts(o.status_changed_ms)),
        error_code: r.error_code.clone(),
        error_details: r.error_details.clone(),
    }
}

fn behavior(b: Behavior) -> m::BehaviorEnum {
    match b {
        Behavior::Cache => m::BehaviorEnum::Cache,
        Behavior::DontCache => m::BehaviorEnum::DontCache,
    }
}

pub(crate) fn behavior_from(b: m::BehaviorEnum) -> Behavior {
    match b {
        m::BehaviorEnum::Cache => Behavior::Cache,
        m::BehaviorEnum::DontCache => Behavior::DontCache,
    }
}

fn forward(f: Forward) -> m::ForwardValues {
    match f {
        Forward::None => m::ForwardValues::None,
        Forward::AllowList => m::ForwardValues::AllowList,
        Forward::All => m::ForwardValues::All,
    }
}

fn forward_from(f: m::ForwardValues) -> Forward {
    match f {
        m::ForwardValues::None => Forward::None,
        m::ForwardValues::AllowList => Forward::AllowList,
        m::ForwardValues::All => Forward::All,
    }
}

fn cache_settings(s: &CacheSettings) -> m::CacheSettings {
    m::CacheSettings {
        default_ttl: Some(s.default_ttl),
        minimum_ttl: Some(s.minimum_ttl),
        maximum_ttl: Some(s.maximum_ttl),
        allowed_http_methods: Some(s.allowed_methods.clone()),
        cached_http_methods: Some(s.cached_methods.clone()),
        forwarded_cookies: Some(m::CookieObject {
            option: Some(forward(s.forwarded_cookies.option)),
            cookies_allow_list: Some(s.forwarded_cookies.allow_list.clone()),
        }),
        forwarded_headers: Some(m::HeaderObject {
            option: Some(forward(s.forwarded_headers.option)),
            headers_allow_list: Some(s.forwarded_headers.allow_list.iter().filter_map(|h| h.parse().ok()).collect()),
        }),
        forwarded_query_strings: Some(m::QueryStringObject {
            option: Some(s.forwarded_query_strings.option),
            query_strings_allow_list: Some(s.forwarded_query_strings.allow_list.clone()),
        }),
    }
}

pub(crate) fn cache_settings_from(s: m::CacheSettings) -> CacheSettingsInput {
    CacheSettingsInput {
        default_ttl: s.default_ttl,
        minimum_ttl: s.minimum_ttl,
        maximum_ttl: s.maximum_ttl,
        allowed_methods: s.allowed_http_methods,
        cached_methods: s.cached_http_methods,
        forwarded_cookies: s.forwarded_cookies.map(|c| Forwarded {
            option: c.option.map(forward_from).unwrap_or_default(),
            allow_list: c.cookies_allow_list.unwrap_or_default(),
        }),
        forwarded_headers: s.forwarded_headers.map(|h| Forwarded {
            option: h.option.map(forward_from).unwrap_or_default(),
            allow_list: h.headers_allow_list.unwrap_or_default().iter().map(|x| x.as_str().to_owned()).collect(),
        }),
        forwarded_query_strings: s.forwarded_query_strings.map(|q| ForwardedQueryStrings {
            option: q.option.unwrap_or(false),
            allow_list: q.query_strings_allow_list.unwrap_or_default(),
        }),
    }
}

pub(crate) fn path_behaviors_from(list: Vec<m::CacheBehaviorPerPath>) -> Vec<PathBehavior> {
    list.into_iter()
        .map(|b| PathBehavior {
            path: b.path.unwrap_or_default(),
            behavior: b.behavior.map_or(Behavior::Cache, behavior_from),
        })
        .collect()
}

pub(crate) fn custom_errors_from(list: Vec<m::DistributionCustomErrorResponse>) -> Vec<CustomErrorResponse> {
    list.into_iter()
        .map(|e| CustomErrorResponse {
            error_code: e.error_code.unwrap_or_default(),
            response_code: e.response_code,
            response_page_path: e.response_page_path,
            error_caching_min_ttl: e.error_caching_min_ttl.unwrap_or(DEFAULT_ERROR_CACHING_MIN_TTL),
        })
        .collect()
}

fn protocol_policy(p: OriginProtocolPolicy) -> m::OriginProtocolPolicyEnum {
    match p {
        OriginProtocolPolicy::HttpOnly => m::OriginProtocolPolicyEnum::HttpOnly,
        OriginProtocolPolicy::HttpsOnly => m::OriginProtocolPolicyEnum::HttpsOnly,
    }
}

fn protocol_policy_from(p: m::OriginProtocolPolicyEnum) -> OriginProtocolPolicy {
    match p {
        m::OriginProtocolPolicyEnum::HttpOnly => OriginProtocolPolicy::HttpOnly,
        m::OriginProtocolPolicyEnum::HttpsOnly => OriginProtocolPolicy::HttpsOnly,
    }
}

/// `viewerMinimumTlsProtocolVersion` as requested (the answer's member is a plain string:
/// [`ViewerMinimumTls::as_str`]).
pub(crate) fn viewer_tls_from(v: m::ViewerMinimumTlsProtocolVersionEnum) -> ViewerMinimumTls {
    match v {
        m::ViewerMinimumTlsProtocolVersionEnum::TLSv1_1_2016 => ViewerMinimumTls::Tls11_2016,
        m::ViewerMinimumTlsProtocolVersionEnum::TLSv1_2_2018 => ViewerMinimumTls::Tls12_2018,
        m::ViewerMinimumTlsProtocolVersionEnum::TLSv1_2_2019 => ViewerMinimumTls::Tls12_2019,
        m::ViewerMinimumTlsProtocolVersionEnum::TLSv1_2_2021 => ViewerMinimumTls::Tls12_2021,
    }
}

fn ip_address_type(t: IpAddressType) -> m::IpAddressType {
    match t {
        IpAddressType::Dualstack => m::IpAddressType::Dualstack,
        IpAddressType::Ipv4 => m::IpAddressType::Ipv4,
        IpAddressType::Ipv6 => m::IpAddressType::Ipv6,
    }
}

/// A distribution's `ipAddressType`.
pub(crate) fn ip_address_type_from(t: m::IpAddressType) -> IpAddressType {
    match t {
        m::IpAddressType::Dualstack => IpAddressType::Dualstack,
        m::IpAddressType::Ipv4 => IpAddressType::Ipv4,
        m::IpAddressType::Ipv6 => IpAddressType::Ipv6,
    }
}

fn origin_ip_address_type(t: IpAddressType) -> m::OriginIpAddressTypeEnum {
    match t {
        IpAddressType::Dualstack => m::OriginIpAddressTypeEnum::Dualstack,
        IpAddressType::Ipv4 => m::OriginIpAddressTypeEnum::Ipv4,
        IpAddressType::Ipv6 => m::OriginIpAddressTypeEnum::Ipv6,
    }
}

fn origin_ip_address_type_from(t: m::OriginIpAddressTypeEnum) -> IpAddressType {
    match t {
        m::OriginIpAddressTypeEnum::Dualstack => IpAddressType::Dualstack,
        m::OriginIpAddressTypeEnum::Ipv4 => IpAddressType::Ipv4,
        m::OriginIpAddressTypeEnum::Ipv6 => IpAddressType::Ipv6,
    }
}

/// A cache reset's `status` (a plain string in the model).
pub(crate) fn cache_reset_status(s: CacheResetStatus) -> String {
    s.as_str().to_owned()
}

pub(crate) fn origin_from(o: m::InputOrigin) -> OriginInput {
    OriginInput {
        name: o.name.unwrap_or_default(),
        region: o.region_name.map(|r| r.as_str().to_owned()),
        protocol_policy: o.protocol_policy.map(protocol_policy_from),
        response_timeout: o.response_timeout,
        ip_address_type: o.ip_address_type.map(origin_ip_address_type_from),
    }
}

/// `LightsailDistribution`. `defaultRootObject` and `customErrorResponses` only when one
/// distribution was asked for by name (the GetDistributions page says so).
pub(crate) fn distribution(v: &DistributionView, single: bool) -> m::LightsailDistribution {
    let d: &DistributionRecord = &v.record;
    m::LightsailDistribution {
        name: Some(d.name.clone()),
        arn: Some(d.arn.clone()),
        support_code: Some(d.support_code.clone()),
        created_at: Some(ts(d.created_ms)),
        location: Some(location(carapace_lightsail::DISTRIBUTION_REGION)),
        resource_type: Some(m::ResourceType::Distribution),
        alternative_domain_names: Some(d.alternative_domain_names.clone()),
        status: Some(v.status.as_str().to_owned()),
        is_enabled: Some(d.is_enabled),
        domain_name: Some(d.domain_name.clone()),
        bundle_id: Some(d.bundle_id.clone()),
        certificate_name: d.certificate.as_ref().map(|c| c.name.clone()),
        origin: Some(m::Origin {
            name: Some(d.origin.name.clone()),
            resource_type: d.origin.resource_type.parse().ok(),
            region_name: d.origin.region.parse().ok(),
            protocol_policy: Some(protocol_policy(d.origin.protocol_policy)),
            response_timeout: Some(d.origin.response_timeout_secs),
            ip_address_type: d.origin.ip_address_type.map(origin_ip_address_type),
            is_private_origin_access_enabled: Some(false),
        }),
        origin_public_dns: Some(d.origin.public_dns.clone()),
        default_cache_behavior: Some(m::CacheBehavior { behavior: Some(behavior(d.default_behavior)) }),
        cache_behavior_settings: Some(cache_settings(&d.cache_settings)),
        cache_behaviors: Some(
            d.cache_behaviors
                .iter()
                .map(|b| m::CacheBehaviorPerPath { path: Some(b.path.clone()), behavior: Some(behavior(b.behavior)) })
                .collect(),
        ),
        able_to_update_bundle: Some(v.able_to_update_bundle),
        ip_address_type: Some(ip_address_type(d.ip_address_type)),
        tags: Some(tags(&d.tags)),
        viewer_minimum_tls_protocol_version: Some(d.viewer_minimum_tls.as_str().to_owned()),
        default_root_object: if single { d.default_root_object.clone() } else { None },
        custom_error_responses: single.then(|| {
            d.custom_error_responses
                .iter()
                .map(|e| m::DistributionCustomErrorResponse {
                    error_code: Some(e.error_code),
                    response_code: e.response_code.clone(),
                    response_page_path: e.response_page_path.clone(),
                    error_caching_min_ttl: Some(e.error_caching_min_ttl),
                })
                .collect()
        }),
        waf: None,
        subdomain: d.subdomain.as_ref().map(|s| m::LightsailDistributionSubdomain {
            name: s.name.clone(),
            state: m::LightsailDistributionSubdomainStateEnum::Attached,
            error_code: None,
            error_details: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names are ACM's, as the stored records spell them.
    #[test]
    fn revocation_reasons_are_acms_names() {
        use RevocationReason as R;
        for r in [
            R::Unspecified,
            R::KeyCompromise,
            R::CaCompromise,
            R::AffiliationChanged,
            R::Superceded,
            R::Superseded,
            R::CessationOfOperation,
            R::CertificateHold,
            R::RemoveFromCrl,
            R::PrivilegeWithdrawn,
            R::AACompromise,
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), revocation_reason(r), "{r:?}");
        }
    }
}
