//! DescribeCertificate.

use carapace_acm::CertificateManager;
use carapace_model::acm as m;
use carapace_proto::RequestContext;

use crate::convert;
use crate::error::Result;

pub(crate) async fn handle(
    manager: &CertificateManager,
    ctx: &RequestContext,
    req: m::DescribeCertificateRequest,
) -> Result<m::DescribeCertificateResponse> {
    let view = manager.describe_certificate(&crate::owner(ctx), &req.certificate_arn).await?;
    Ok(m::DescribeCertificateResponse { certificate: Some(convert::detail(&view)) })
}
