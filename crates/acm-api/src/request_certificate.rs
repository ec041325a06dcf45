//! RequestCertificate.

use carapace_acm::{CertificateManager, CertificateUsage, NewCertificate};
use carapace_model::acm as m;
use carapace_proto::RequestContext;

use crate::convert;
use crate::error::Result;

pub(crate) async fn handle(
    manager: &CertificateManager,
    ctx: &RequestContext,
    req: m::RequestCertificateRequest,
) -> Result<m::RequestCertificateResponse> {
    let options = req.options.unwrap_or_default();
    let new = NewCertificate {
        domain_name: req.domain_name,
        subject_alternative_names: req.subject_alternative_names.unwrap_or_default(),
        validation_method: req.validation_method.map(convert::method_from),
        domain_validation_options: req
            .domain_validation_options
            .unwrap_or_default()
            .into_iter()
            .map(|o| (o.domain_name, o.validation_domain))
            .collect(),
        idempotency_token: req.idempotency_token,
        export: options.export.map(|e| e == m::CertificateExport::Enabled),
        transparency_logging: options
            .certificate_transparency_logging_preference
            .map(|p| p == m::CertificateTransparencyLoggingPreference::Enabled),
        key_algorithm: req.key_algorithm.map(convert::key_algorithm_from),
        managed_by: req.managed_by.map(convert::managed_by_from),
        certificate_authority_arn: req.certificate_authority_arn,
        root_hierarchy: req.root_hierarchy_type.map(convert::root_hierarchy_from),
        certificate_usage: req.certificate_usage.map(|u| match u {
            m::CertificateUsage::ClientAndServerAuth => CertificateUsage::ClientAndServerAuth,
            m::CertificateUsage::ClientAuthOnly => CertificateUsage::ClientAuthOnly,
        }),
        tags: convert::tags_from(req.tags.unwrap_or_default()),
        held_by: None,
    };
    let arn = manager.request_certificate(&crate::owner(ctx), new).await?;
    Ok(m::RequestCertificateResponse { certificate_arn: Some(arn) })
}
