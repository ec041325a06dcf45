//! ImportCertificate and ExportCertificate.

use carapace_acm::{CertificateManager, ImportRequest};
use carapace_model::acm as m;
use carapace_proto::RequestContext;
use zeroize::Zeroizing;

use crate::convert;
use crate::error::Result;

pub(crate) async fn import(
    manager: &CertificateManager,
    ctx: &RequestContext,
    req: m::ImportCertificateRequest,
) -> Result<m::ImportCertificateResponse> {
    let import = ImportRequest {
        certificate_arn: req.certificate_arn,
        certificate: req.certificate.into_inner(),
        private_key: Zeroizing::new(req.private_key.into_inner()),
        certificate_chain: req.certificate_chain.map(carapace_model::Blob::into_inner),
        tags: convert::tags_from(req.tags.unwrap_or_default()),
    };
    let arn = manager.import_certificate(&crate::owner(ctx), import).await?;
    Ok(m::ImportCertificateResponse { certificate_arn: Some(arn) })
}

pub(crate) async fn export(
    manager: &CertificateManager,
    ctx: &RequestContext,
    req: m::ExportCertificateRequest,
) -> Result<m::ExportCertificateResponse> {
    let passphrase = Zeroizing::new(req.passphrase.into_inner());
    let out = manager.export_certificate(&crate::owner(ctx), &req.certificate_arn, &passphrase).await?;
    Ok(m::ExportCertificateResponse {
        certificate: Some(out.certificate),
        certificate_chain: (!out.certificate_chain.is_empty()).then_some(out.certificate_chain),
        private_key: Some(out.private_key.to_string()),
    })
}
