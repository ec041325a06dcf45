//! GetCertificate and DeleteCertificate.

use carapace_acm::CertificateManager;
use carapace_model::acm as m;
use carapace_proto::RequestContext;

use crate::error::Result;

/// GetCertificate: the leaf and chain; never the private key.
pub(crate) async fn get(
    manager: &CertificateManager,
    ctx: &RequestContext,
    req: m::GetCertificateRequest,
) -> Result<m::GetCertificateResponse> {
    let (certificate, chain) = manager.get_certificate(&crate::owner(ctx), &req.certificate_arn).await?;
    Ok(m::GetCertificateResponse {
        certificate: Some(certificate),
        certificate_chain: (!chain.is_empty()).then_some(chain),
    })
}

/// DeleteCertificate.
pub(crate) async fn delete(
    manager: &CertificateManager,
    ctx: &RequestContext,
    req: m::DeleteCertificateRequest,
) -> Result<()> {
    manager.delete_certificate(&crate::owner(ctx), &req.certificate_arn).await?;
    Ok(())
}
