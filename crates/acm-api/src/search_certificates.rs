//! SearchCertificates: a filter statement (`And`/`Or`/`Not`/`Filter`, nested) over X.509
//! attributes and ACM metadata, any of ACM's sort fields, and position-based pagination.
//!
//! Matching rules Carapace applies where ACM's documentation is silent: name comparisons
//! (`CommonName`, `DnsName`) ignore ASCII case, as DNS does; `CONTAINS` is a substring
//! match; a SAN filter matches when any DNS name matches; serial numbers compare without
//! colons and case; timestamp ranges include both ends; every criterion present in one
//! `Filter` must match; a certificate without the attribute (e.g. `NotAfter` while
//! pending) does not match a criterion on it. Default order: `CREATED_AT` ascending; default
//! page size 100.

use carapace_acm::index::{Narrow, SortField};
use carapace_acm::{AcmError, CertificateManager, CertificateView, SearchQuery};
use carapace_model::acm as m;
use carapace_proto::RequestContext;

use crate::convert;
use crate::error::Result;

const DEFAULT_MAX_RESULTS: usize = 100;

pub(crate) async fn handle(
    manager: &CertificateManager,
    ctx: &RequestContext,
    req: m::SearchCertificatesRequest,
) -> Result<m::SearchCertificatesResponse> {
    if let Some(statement) = &req.filter_statement {
        check_statement(statement)?;
    }
    let sort_by = req.sort_by.unwrap_or(m::SearchCertificatesSortBy::CreatedAt);
    let fingerprint =
        format!("{}|{}", serde_json::to_string(&req.filter_statement).unwrap_or_default(), sort_by.as_str());
    let statement = req.filter_statement.clone();
    let matches = move |v: &CertificateView| statement.as_ref().is_none_or(|s| eval(s, v));
    let query = SearchQuery {
        matches: &matches,
        sort: sort_field(sort_by),
        descending: req.sort_order == Some(m::SearchCertificatesSortOrder::Descending),
        max_results: req.max_results.and_then(|n| usize::try_from(n).ok()).unwrap_or(DEFAULT_MAX_RESULTS),
        next_token: req.next_token,
        fingerprint,
        narrows: req.filter_statement.as_ref().map(narrows).unwrap_or_default(),
    };
    let page = manager.search_certificates(&crate::owner(ctx), &query).await?;
    Ok(m::SearchCertificatesResponse {
        results: Some(page.items.iter().map(result).collect()),
        next_token: page.next_token,
    })
}

/// Each statement must be exactly one of And, Or, Not or Filter.
fn check_statement(s: &m::CertificateFilterStatement) -> Result<()> {
    let set = [s.and.is_some(), s.or.is_some(), s.not.is_some(), s.filter.is_some()].iter().filter(|b| **b).count();
    if set != 1 {
        return Err(AcmError::Validation(
            "Each FilterStatement must specify exactly one of And, Or, Not or Filter.".into(),
        )
        .into());
    }
    for child in s.and.iter().chain(s.or.iter()).flatten() {
        check_statement(child)?;
    }
    if let Some(not) = &s.not {
        check_statement(not)?;
    }
    Ok(())
}

fn eval(s: &m::CertificateFilterStatement, v: &CertificateView) -> bool {
    if let Some(all) = &s.and {
        return all.iter().all(|c| eval(c, v));
    }
    if let Some(any) = &s.or {
        return any.iter().any(|c| eval(c, v));
    }
    if let Some(not) = &s.not {
        return !eval(not, v);
    }
    s.filter.as_ref().is_none_or(|f| filter(f, v))
}

/// The conditions of `s` that every match meets and the index holds: those of a `Filter`,
/// or of the `Filter`s of an `And` (an `Or` or `Not` promises none). The core still checks
/// `eval` on each certificate it reads; these only let it read fewer.
fn narrows(s: &m::CertificateFilterStatement) -> Vec<Narrow> {
    if let Some(all) = &s.and {
        return all.iter().flat_map(narrows).collect();
    }
    let Some(f) = &s.filter else { return Vec::new() };
    let mut out = Vec::new();
    if let Some(x) = &f.x509_attribute_filter {
        out.extend(x.extended_key_usage.map(|e| Narrow::ExtendedKeyUsage(e.as_str().to_owned())));
        out.extend(x.key_usage.map(|k| Narrow::KeyUsage(k.as_str().to_owned())));
        out.extend(x.key_algorithm.map(|k| Narrow::KeyAlgorithm(convert::key_algorithm_from(k))));
    }
    if let Some(md) = &f.acm_certificate_metadata_filter {
        out.extend(md.status.map(|s| Narrow::Status(convert::status_from(s))));
        out.extend(md.export_option.map(|e| Narrow::Export(e == m::CertificateExport::Enabled)));
        out.extend(md.managed_by.map(|mb| Narrow::ManagedBy(convert::managed_by_from(mb))));
        out.extend(md.certificate_key_pair_origin.map(|o| Narrow::Origin(convert::origin_from(o))));
    }
    out
}

fn text_match(value: &str, wanted: &str, op: m::ComparisonOperator) -> bool {
    let (value, wanted) = (value.to_ascii_lowercase(), wanted.to_ascii_lowercase());
    match op {
        m::ComparisonOperator::Equals => value == wanted,
        m::ComparisonOperator::Contains => value.contains(&wanted),
    }
}

fn in_range(ms: Option<i64>, range: &m::TimestampRange) -> bool {
    let Some(ms) = ms else { return false };
    let secs = ms as f64 / 1000.0;
    range.start.is_none_or(|s| secs >= s.as_secs_f64()) && range.end.is_none_or(|e| secs <= e.as_secs_f64())
}

fn filter(f: &m::CertificateFilter, v: &CertificateView) -> bool {
    let r = &v.record;
    if let Some(arn) = &f.certificate_arn
        && *arn != r.arn
    {
        return false;
    }
    if let Some(x) = &f.x509_attribute_filter {
        let facts = r.x509.as_ref();
        if let Some(cn) = x.subject.as_ref().and_then(|s| s.common_name.as_ref()) {
            let common_name = facts.and_then(|f| f.common_name.clone()).unwrap_or_else(|| r.domain_name.clone());
            if !text_match(&common_name, &cn.value, cn.comparison_operator) {
                return false;
            }
        }
        if let Some(dns) = x.subject_alternative_name.as_ref().and_then(|s| s.dns_name.as_ref())
            && !r.sans.iter().any(|n| text_match(n, &dns.value, dns.comparison_operator))
        {
            return false;
        }
        if let Some(eku) = x.extended_key_usage
            && !facts.is_some_and(|f| f.extended_key_usages.iter().any(|(n, _)| n == eku.as_str()))
        {
            return false;
        }
        if let Some(ku) = x.key_usage
            && !facts.is_some_and(|f| f.key_usages.iter().any(|n| n == ku.as_str()))
        {
            return false;
        }
        if let Some(k) = x.key_algorithm
            && convert::key_algorithm_from(k) != r.key_algorithm
        {
            return false;
        }
        if let Some(serial) = &x.serial_number {
            let norm = |s: &str| s.replace(':', "").to_ascii_lowercase();
            if facts.is_none_or(|f| norm(&f.serial) != norm(serial)) {
                return false;
            }
        }
        if let Some(range) = &x.not_after
            && !in_range(facts.map(|f| f.not_after_ms), range)
        {
            return false;
        }
        if let Some(range) = &x.not_before
            && !in_range(facts.map(|f| f.not_before_ms), range)
        {
            return false;
        }
    }
    if let Some(md) = &f.acm_certificate_metadata_filter {
        let checks = [
            md.status.is_none_or(|s| convert::status_from(s) == v.status),
            md.renewal_status
                .is_none_or(|s| r.renewal.as_ref().is_some_and(|rn| convert::renewal_status(rn.status) == s)),
            md.r#type.is_none_or(|t| convert::cert_type(r.cert_type) == t),
            md.in_use.is_none_or(|u| u != r.in_use_by.is_empty()),
            md.exported.is_none_or(|e| e == r.exported),
            md.export_option.is_none_or(|e| convert::export_option(r.options.export) == e),
            md.managed_by.is_none_or(|mb| r.managed_by.map(convert::managed_by) == Some(mb)),
            md.validation_method.is_none_or(|vm| r.validation_method.map(convert::method) == Some(vm)),
            md.certificate_key_pair_origin.is_none_or(|o| convert::origin(r.key_pair_origin) == o),
            // Carapace issues nothing through ACME yet.
            md.acme_endpoint_arn.is_none(),
            md.acme_account_id.is_none(),
            md.root_hierarchy_type.is_none_or(|h| r.root_hierarchy.map(convert::root_hierarchy) == Some(h)),
        ];
        if !checks.iter().all(|c| *c) {
            return false;
        }
    }
    true
}

fn sort_field(by: m::SearchCertificatesSortBy) -> SortField {
    use m::SearchCertificatesSortBy as S;
    match by {
        S::CreatedAt => SortField::CreatedAt,
        S::NotAfter => SortField::NotAfter,
        S::NotBefore => SortField::NotBefore,
        S::IssuedAt => SortField::IssuedAt,
        S::ImportedAt => SortField::ImportedAt,
        S::RevokedAt => SortField::RevokedAt,
        S::Status => SortField::Status,
        S::RenewalStatus => SortField::RenewalStatus,
        S::Exported => SortField::Exported,
        S::InUse => SortField::InUse,
        S::KeyAlgorithm => SortField::KeyAlgorithm,
        S::Type => SortField::Type,
        S::CertificateArn => SortField::CertificateArn,
        S::CommonName => SortField::CommonName,
        S::RenewalEligibility => SortField::RenewalEligibility,
        S::ManagedBy => SortField::ManagedBy,
        S::ExportOption => SortField::ExportOption,
        S::ValidationMethod => SortField::ValidationMethod,
        S::CertificateKeyPairOrigin => SortField::KeyPairOrigin,
        // Carapace issues nothing through ACME: every certificate lacks these.
        S::AcmeEndpointArn | S::AcmeAccountId => SortField::AlwaysMissing,
    }
}

/// Parses `CN=a, O=b` (the form the CA's parser renders) into a `DistinguishedName`.
fn distinguished_name(text: &str) -> m::DistinguishedName {
    let mut dn = m::DistinguishedName::default();
    for part in text.split(", ") {
        let Some((k, v)) = part.split_once('=') else { continue };
        let v = Some(v.to_owned());
        match k.trim() {
            "CN" => dn.common_name = v,
            "O" => dn.organization = v,
            "OU" => dn.organizational_unit = v,
            "C" => dn.country = v,
            "ST" => dn.state = v,
            "L" => dn.locality = v,
            "serialNumber" => dn.serial_number = v,
            "DC" => dn.domain_components.get_or_insert_with(Vec::new).extend(v),
            _ => {}
        }
    }
    dn
}

fn result(v: &CertificateView) -> m::CertificateSearchResult {
    let r = &v.record;
    let x = r.x509.as_ref();
    let summary = convert::summary(v);
    m::CertificateSearchResult {
        certificate_arn: Some(r.arn.clone()),
        x509_attributes: Some(m::X509Attributes {
            issuer: x.map(|x| distinguished_name(&x.issuer_dn)),
            subject: Some(x.map_or_else(
                || m::DistinguishedName { common_name: Some(r.domain_name.clone()), ..Default::default() },
                |x| distinguished_name(&x.subject),
            )),
            subject_alternative_names: Some(
                r.sans.iter().map(|n| m::GeneralName { dns_name: Some(n.clone()), ..Default::default() }).collect(),
            ),
            extended_key_usages: summary.extended_key_usages,
            key_algorithm: Some(convert::key_algorithm(r.key_algorithm)),
            key_usages: summary.key_usages,
            serial_number: x.map(|x| x.serial.clone()),
            not_after: summary.not_after,
            not_before: summary.not_before,
        }),
        certificate_metadata: Some(m::CertificateMetadata {
            acm_certificate_metadata: Some(m::AcmCertificateMetadata {
                created_at: summary.created_at,
                exported: summary.exported,
                imported_at: summary.imported_at,
                in_use: summary.in_use,
                issued_at: summary.issued_at,
                renewal_eligibility: summary.renewal_eligibility,
                revoked_at: summary.revoked_at,
                status: summary.status,
                renewal_status: r.renewal.as_ref().map(|rn| convert::renewal_status(rn.status)),
                r#type: summary.r#type,
                export_option: summary.export_option,
                managed_by: summary.managed_by,
                validation_method: r.validation_method.map(convert::method),
                certificate_key_pair_origin: summary.certificate_key_pair_origin,
                acme_endpoint_arn: None,
                acme_account_id: None,
                root_hierarchy_type: summary.root_hierarchy_type,
                certificate_usage: summary.certificate_usage,
            }),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinguished_names() {
        let dn = distinguished_name("CN=Carapace RSA 2048 M01, O=Carapace, C=US");
        assert_eq!(dn.common_name.as_deref(), Some("Carapace RSA 2048 M01"));
        assert_eq!(dn.organization.as_deref(), Some("Carapace"));
        assert_eq!(dn.country.as_deref(), Some("US"));
    }

    #[test]
    fn statements_need_exactly_one_member() {
        let empty = m::CertificateFilterStatement::default();
        assert!(check_statement(&empty).is_err());
        let ok = m::CertificateFilterStatement {
            not: Some(Box::new(m::CertificateFilterStatement {
                filter: Some(m::CertificateFilter::default()),
                ..Default::default()
            })),
            ..Default::default()
        };
        assert!(check_statement(&ok).is_ok());
    }
}
