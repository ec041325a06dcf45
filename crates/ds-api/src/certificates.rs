//! RegisterCertificate, DescribeCertificate, ListCertificates, DeregisterCertificate.

use carapace_ds::machine::CertificateState as State;
use carapace_ds::records::CertificateKind;
use carapace_ds::{CertificateView, Directories, DsError, NewCertificate};
use carapace_model::ds::{
    Certificate, CertificateInfo, CertificateState, CertificateType, ClientCertAuthSettings,
    DeregisterCertificateRequest, DeregisterCertificateResult, DescribeCertificateRequest, DescribeCertificateResult,
    ListCertificatesRequest, ListCertificatesResult, RegisterCertificateRequest, RegisterCertificateResult,
};
use carapace_proto::RequestContext;

use crate::error::Result;
use crate::{limit, ts};

/// `RegisterCertificate`. `Type` defaults to `ClientLDAPS`; a `ClientCertAuth`
/// certificate needs `ClientCertAuthSettings.OCSPUrl` (smart-card logon checks revocation
/// there), which is ignored for `ClientLDAPS`.
pub(crate) async fn register_certificate(
    dirs: &Directories,
    ctx: &RequestContext,
    req: RegisterCertificateRequest,
) -> Result<RegisterCertificateResult> {
    let kind = match req.r#type.unwrap_or(CertificateType::ClientLDAPS) {
        CertificateType::ClientLDAPS => CertificateKind::ClientLdaps,
        CertificateType::ClientCertAuth => CertificateKind::ClientCertAuth,
    };
    let ocsp_url = match kind {
        CertificateKind::ClientLdaps => None,
        CertificateKind::ClientCertAuth => {
            let url = req.client_cert_auth_settings.and_then(|s| s.ocsp_url);
            if url.is_none() {
                return Err(DsError::InvalidParameter(
                    "ClientCertAuthSettings.OCSPUrl is required for ClientCertAuth certificates.".into(),
                )
                .into());
            }
            url
        }
    };
    let new = NewCertificate { data: req.certificate_data, kind, ocsp_url };
    let id = dirs.register_certificate(&ctx.scope(), &req.directory_id, &new).await?;
    Ok(RegisterCertificateResult { certificate_id: Some(id) })
}

/// `DescribeCertificate`.
pub(crate) async fn describe_certificate(
    dirs: &Directories,
    ctx: &RequestContext,
    req: DescribeCertificateRequest,
) -> Result<DescribeCertificateResult> {
    let view = dirs.describe_certificate(&ctx.scope(), &req.directory_id, &req.certificate_id).await?;
    let c = &view.record;
    Ok(DescribeCertificateResult {
        certificate: Some(Certificate {
            certificate_id: Some(c.id.clone()),
            state: Some(state(&view)),
            state_reason: Some(state_reason(&view).to_owned()),
            common_name: Some(c.common_name.clone()),
            registered_date_time: Some(ts(c.registered_ms)),
            expiry_date_time: Some(ts(c.not_after_ms)),
            r#type: Some(kind(c.kind)),
            client_cert_auth_settings: c
                .ocsp_url
                .as_ref()
                .map(|url| ClientCertAuthSettings { ocsp_url: Some(url.clone()) }),
        }),
    })
}

/// `ListCertificates`.
pub(crate) async fn list_certificates(
    dirs: &Directories,
    ctx: &RequestContext,
    req: ListCertificatesRequest,
) -> Result<ListCertificatesResult> {
    let page =
        dirs.list_certificates(&ctx.scope(), &req.directory_id, limit(req.limit), req.next_token.as_deref()).await?;
    Ok(ListCertificatesResult {
        certificates_info: Some(
            page.items
                .iter()
                .map(|v| CertificateInfo {
                    certificate_id: Some(v.record.id.clone()),
                    common_name: Some(v.record.common_name.clone()),
                    state: Some(state(v)),
                    expiry_date_time: Some(ts(v.record.not_after_ms)),
                    r#type: Some(kind(v.record.kind)),
                })
                .collect(),
        ),
        next_token: page.next_token,
    })
}

/// `DeregisterCertificate`.
pub(crate) async fn deregister_certificate(
    dirs: &Directories,
    ctx: &RequestContext,
    req: DeregisterCertificateRequest,
) -> Result<DeregisterCertificateResult> {
    dirs.deregister_certificate(&ctx.scope(), &req.directory_id, &req.certificate_id).await?;
    Ok(DeregisterCertificateResult {})
}

fn state(view: &CertificateView) -> CertificateState {
    match view.state {
        State::Registering => CertificateState::Registering,
        State::Registered => CertificateState::Registered,
        State::Deregistering => CertificateState::Deregistering,
        State::Deregistered => CertificateState::Deregistered,
    }
}

fn state_reason(view: &CertificateView) -> &'static str {
    match view.state {
        State::Registering => "Certificate registration is in progress.",
        State::Registered => "Certificate registered successfully.",
        State::Deregistering => "Certificate deregistration is in progress.",
        State::Deregistered => "Certificate deregistered successfully.",
    }
}

fn kind(kind: CertificateKind) -> CertificateType {
    match kind {
        CertificateKind::ClientLdaps => CertificateType::ClientLDAPS,
        CertificateKind::ClientCertAuth => CertificateType::ClientCertAuth,
    }
}
