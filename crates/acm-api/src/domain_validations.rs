//! ListCertificateDomainValidations.

use carapace_acm::CertificateManager;
use carapace_acm::record::ValidationMethod;
use carapace_model::acm as m;
use carapace_proto::RequestContext;

use crate::convert;
use crate::error::Result;

pub(crate) async fn handle(
    manager: &CertificateManager,
    ctx: &RequestContext,
    req: m::ListCertificateDomainValidationsRequest,
) -> Result<m::ListCertificateDomainValidationsResponse> {
    let max = req.max_items.and_then(|n| usize::try_from(n).ok()).unwrap_or(1000);
    let page = manager
        .list_domain_validations(&crate::owner(ctx), &req.certificate_arn, max, req.next_token.as_deref())
        .await?;
    let summaries = page
        .domains
        .iter()
        .zip(&page.requested_dns)
        .map(|(d, requested)| {
            let challenge = match d.method {
                Some(ValidationMethod::Dns) => Some(m::ValidationChallenge {
                    dns_validation_challenge: Some(m::DnsValidationChallenge {
                        resource_record: d.resource_record.as_ref().map(record),
                    }),
                    ..Default::default()
                }),
                Some(ValidationMethod::Email) => Some(m::ValidationChallenge {
                    email_validation_challenge: Some(m::EmailValidationChallenge {
                        validation_emails: Some(d.validation_emails.clone()),
                        validation_domain: Some(d.validation_domain.clone()),
                    }),
                    ..Default::default()
                }),
                Some(ValidationMethod::Http) | None => None,
            };
            m::DomainValidationSummary {
                domain_name: d.domain_name.clone(),
                active_validation_configuration: Some(m::ValidationConfiguration {
                    validation_method: d.method.map(convert::method),
                    validation_challenge: challenge,
                    validation_status: Some(convert::domain_status(d.status)),
                }),
                requested_validation_configuration: requested.as_ref().map(|r| m::ValidationConfiguration {
                    validation_method: Some(m::ValidationMethod::Dns),
                    validation_challenge: Some(m::ValidationChallenge {
                        dns_validation_challenge: Some(m::DnsValidationChallenge { resource_record: Some(record(r)) }),
                        ..Default::default()
                    }),
                    validation_status: Some(m::DomainStatus::PendingValidation),
                }),
            }
        })
        .collect();
    Ok(m::ListCertificateDomainValidationsResponse {
        domain_validation_summary_list: Some(summaries),
        next_token: page.next_token,
    })
}

fn record(r: &carapace_acm::validation::ResourceRecord) -> m::ResourceRecord {
    m::ResourceRecord { name: r.name.clone(), r#type: m::RecordType::Cname, value: r.value.clone() }
}
