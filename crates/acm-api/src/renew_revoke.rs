//! RenewCertificate and RevokeCertificate.

use carapace_acm::CertificateManager;
use carapace_model::acm as m;
use carapace_proto::Output;
use carapace_proto::RequestContext;

use crate::convert;
use crate::error::{Result, decode, empty, encode};

pub(crate) async fn renew(
    manager: &CertificateManager,
    ctx: &RequestContext,
    input: serde_json::Value,
) -> Result<Output> {
    let req: m::RenewCertificateRequest = decode(input)?;
    manager.renew_certificate(&crate::owner(ctx), &req.certificate_arn).await?;
    empty()
}

pub(crate) async fn revoke(
    manager: &CertificateManager,
    ctx: &RequestContext,
    input: serde_json::Value,
) -> Result<Output> {
    let req: m::RevokeCertificateRequest = decode(input)?;
    let reason = convert::revocation_from(req.revocation_reason);
    manager.revoke_certificate(&crate::owner(ctx), &req.certificate_arn, reason).await?;
    encode(m::RevokeCertificateResponse { certificate_arn: Some(req.certificate_arn) })
}
