//! AttachCertificateToDistribution, DetachCertificateFromDistribution.

use carapace_lightsail::LightsailManager;
use carapace_model::lightsail as m;
use carapace_proto::RequestContext;

use crate::convert;
use crate::error::Result;

pub(crate) async fn attach(
    m: &LightsailManager,
    ctx: &RequestContext,
    req: m::AttachCertificateToDistributionRequest,
) -> Result<m::AttachCertificateToDistributionResult> {
    let op = m.attach_certificate(&crate::owner(ctx), &req.distribution_name, &req.certificate_name).await?;
    Ok(m::AttachCertificateToDistributionResult { operation: Some(convert::operation(&op)) })
}

pub(crate) async fn detach(
    m: &LightsailManager,
    ctx: &RequestContext,
    req: m::DetachCertificateFromDistributionRequest,
) -> Result<m::DetachCertificateFromDistributionResult> {
    let op = m.detach_certificate(&crate::owner(ctx), &req.distribution_name).await?;
    Ok(m::DetachCertificateFromDistributionResult { operation: Some(convert::operation(&op)) })
}
