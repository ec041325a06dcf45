//! DescribeCertificate.

use carapace_acm::CertificateManager;
use carapace_model::acm as m;
use carapace_proto::Output;
use carapace_proto::RequestContext;

use crate::convert;
use crate::error::{Result, decode, encode};

pub(crate) async fn handle(
    manager: &CertificateManager,
    ctx: &RequestContext,
    input: serde_json::Value,
) -> Result<Output> {
    let req: m::DescribeCertificateRequest = decode(input)?;
    let view = manager.describe_certificate(&crate::owner(ctx), &req.certificate_arn).await?;
    encode(m::DescribeCertificateResponse { certificate: Some(convert::detail(&view)) })
}
