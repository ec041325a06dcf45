//! AttachCertificateToDistribution, DetachCertificateFromDistribution.

use carapace_lightsail::LightsailManager;
use carapace_model::lightsail as m;
use carapace_proto::{Output, RequestContext};

use crate::convert;
use crate::error::{Result, decode, encode};

pub(crate) async fn attach(m: &LightsailManager, ctx: &RequestContext, input: serde_json::Value) -> Result<Output> {
    let req: m::AttachCertificateToDistributionRequest = decode(input)?;
    let op = m.attach_certificate(&crate::owner(ctx), &req.distribution_name, &req.certificate_name).await?;
    encode(m::AttachCertificateToDistributionResult { operation: Some(convert::operation(&op)) })
}

pub(crate) async fn detach(m: &LightsailManager, ctx: &RequestContext, input: serde_json::Value) -> Result<Output> {
    let req: m::DetachCertificateFromDistributionRequest = decode(input)?;
    let op = m.detach_certificate(&crate::owner(ctx), &req.distribution_name).await?;
    encode(m::DetachCertificateFromDistributionResult { operation: Some(convert::operation(&op)) })
}
