//! RenewCertificate and RevokeCertificate.

use carapace_acm::CertificateManager;
use carapace_model::acm as m;
use carapace_proto::RequestContext;

use crate::convert;
use crate::error::Result;

pub(crate) async fn renew(
    manager: &CertificateManager,
    ctx: &RequestContext,
    req: m::RenewCertificateRequest,
) -> Result<()> {
    manager.renew_certificate(&crate::owner(ctx), &req.certificate_arn).await?;
    Ok(())
}

pub(crate) async fn revoke(
    manager: &CertificateManager,
    ctx: &RequestContext,
    req: m::RevokeCertificateRequest,
) -> Result<m::RevokeCertificateResponse> {
    let reason = convert::revocation_from(req.revocation_reason);
    manager.revoke_certificate(&crate::owner(ctx), &req.certificate_arn, reason).await?;
    Ok(m::RevokeCertificateResponse { certificate_arn: Some(req.certificate_arn) })
}
