//! CreateCertificate, GetCertificates, DeleteCertificate.

use carapace_lightsail::{CertificateQuery, LightsailManager, NewLightsailCertificate};
use carapace_model::lightsail as m;
use carapace_proto::RequestContext;

use crate::convert;
use crate::error::Result;

pub(crate) async fn create(
    m: &LightsailManager,
    ctx: &RequestContext,
    req: m::CreateCertificateRequest,
) -> Result<m::CreateCertificateResult> {
    let new = NewLightsailCertificate {
        name: req.certificate_name,
        domain_name: req.domain_name,
        subject_alternative_names: req.subject_alternative_names.unwrap_or_default(),
        tags: convert::tags_from(req.tags.unwrap_or_default()),
    };
    let (cert, ops) = m.create_certificate(&crate::owner(ctx), new).await?;
    // The answer's summary carries the detail, so the validation records are known at once.
    Ok(m::CreateCertificateResult {
        certificate: Some(convert::certificate_summary(&cert)),
        operations: Some(ops.iter().map(convert::operation).collect()),
    })
}

/// Without `includeCertificateDetails` the summary holds only what the API reference lists
/// (ARN, name, domain name, tags) — except for a lookup by `certificateName`, which also
/// carries the detail: Terraform's provider reads `certificateDetail` from exactly that call
/// without asking for details (internal/service/lightsail/certificate.go, FindCertificateById),
/// and works against AWS.
pub(crate) async fn get(
    m: &LightsailManager,
    ctx: &RequestContext,
    req: m::GetCertificatesRequest,
) -> Result<m::GetCertificatesResult> {
    let query = CertificateQuery {
        statuses: req.certificate_statuses.unwrap_or_default().into_iter().map(convert::status_from).collect(),
        details: req.include_certificate_details.unwrap_or(false) || req.certificate_name.is_some(),
        name: req.certificate_name,
        page_token: req.page_token,
    };
    let page = m.get_certificates(&crate::owner(ctx), &query).await?;
    Ok(m::GetCertificatesResult {
        certificates: Some(page.items.iter().map(convert::certificate_summary).collect()),
        next_page_token: page.next_token,
    })
}

pub(crate) async fn delete(
    m: &LightsailManager,
    ctx: &RequestContext,
    req: m::DeleteCertificateRequest,
) -> Result<m::DeleteCertificateResult> {
    let ops = m.delete_certificate(&crate::owner(ctx), &req.certificate_name).await?;
    Ok(m::DeleteCertificateResult { operations: Some(ops.iter().map(convert::operation).collect()) })
}
