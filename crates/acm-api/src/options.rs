//! UpdateCertificateOptions and ResendValidationEmail.

use carapace_acm::{CertificateManager, OptionsUpdate};
use carapace_model::acm as m;
use carapace_proto::Output;
use carapace_proto::RequestContext;

use crate::convert;
use crate::error::{Result, decode, empty};

pub(crate) async fn update(
    manager: &CertificateManager,
    ctx: &RequestContext,
    input: serde_json::Value,
) -> Result<Output> {
    let req: m::UpdateCertificateOptionsRequest = decode(input)?;
    let o = req.options;
    let update = OptionsUpdate {
        transparency_logging: o
            .certificate_transparency_logging_preference
            .map(|p| p == m::CertificateTransparencyLoggingPreference::Enabled),
        export: o.export.map(|e| e == m::CertificateExport::Enabled),
        validation_method: o.validation_method.map(convert::method_from),
    };
    manager.update_options(&crate::owner(ctx), &req.certificate_arn, update).await?;
    empty()
}

pub(crate) async fn resend_validation_email(
    manager: &CertificateManager,
    ctx: &RequestContext,
    input: serde_json::Value,
) -> Result<Output> {
    let req: m::ResendValidationEmailRequest = decode(input)?;
    manager
        .resend_validation_email(&crate::owner(ctx), &req.certificate_arn, &req.domain, &req.validation_domain)
        .await?;
    empty()
}
