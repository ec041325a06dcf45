//! UpdateCertificateOptions and ResendValidationEmail.

use carapace_acm::{CertificateManager, OptionsUpdate};
use carapace_model::acm as m;
use carapace_proto::RequestContext;

use crate::convert;
use crate::error::Result;

pub(crate) async fn update(
    manager: &CertificateManager,
    ctx: &RequestContext,
    req: m::UpdateCertificateOptionsRequest,
) -> Result<()> {
    let o = req.options;
    let update = OptionsUpdate {
        transparency_logging: o
            .certificate_transparency_logging_preference
            .map(|p| p == m::CertificateTransparencyLoggingPreference::Enabled),
        export: o.export.map(|e| e == m::CertificateExport::Enabled),
        validation_method: o.validation_method.map(convert::method_from),
    };
    manager.update_options(&crate::owner(ctx), &req.certificate_arn, update).await?;
    Ok(())
}

pub(crate) async fn resend_validation_email(
    manager: &CertificateManager,
    ctx: &RequestContext,
    req: m::ResendValidationEmailRequest,
) -> Result<()> {
    manager
        .resend_validation_email(&crate::owner(ctx), &req.certificate_arn, &req.domain, &req.validation_domain)
        .await?;
    Ok(())
}
