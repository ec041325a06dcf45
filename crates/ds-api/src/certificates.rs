//! RegisterCertificate, DescribeCertificate, ListCertificates, DeregisterCertificate.

use carapace_ds::machine::CertificateState as State;
use carapace_ds::records::CertificateKind;
use carapace_ds::{CertificateView, NewCertificate};
use carapace_model::ds::{
    Certificate, CertificateInfo, CertificateState, CertificateType, ClientCertAuthSettings,
    DeregisterCertificateRequest, DeregisterCertificateResult, DescribeCertificateRequest, DescribeCertificateResult,
    ErrorCode, ListCertificatesRequest, ListCertificatesResult, RegisterCertificateRequest, RegisterCertificateResult,
};
use carapace_proto::{Output, RequestContext, WireError, decode_input, encode_output};
use serde_json::Value;

use crate::{Ds, Missing, limit, ts, wire};

/// `RegisterCertificate`. `Type` defaults to `ClientLDAPS`; a `ClientCertAuth`
/// certificate needs `ClientCertAuthSettings.OCSPUrl` (smart-card logon checks revocation
/// there), which is ignored for `ClientLDAPS`.
pub async fn register_certificate(ds: &Ds, ctx: &RequestContext, input: Value) -> Result<Output, WireError> {
    let req: RegisterCertificateRequest = decode_input(input)?;
    let kind = match req.r#type.unwrap_or(CertificateType::ClientLDAPS) {
        CertificateType::ClientLDAPS => CertificateKind::ClientLdaps,
        CertificateType::ClientCertAuth => CertificateKind::ClientCertAuth,
    };
    let ocsp_url = match kind {
        CertificateKind::ClientLdaps => None,
        CertificateKind::ClientCertAuth => {
            let url = req.client_cert_auth_settings.and_then(|s| s.ocsp_url);
            if url.is_none() {
                return Err(WireError::modelled(
                    ErrorCode::InvalidParameterException,
                    "ClientCertAuthSettings.OCSPUrl is required for ClientCertAuth certificates.",
                ));
            }
            url
        }
    };
    let new = NewCertificate { data: req.certificate_data, kind, ocsp_url };
    let id = ds
        .dirs
        .register_certificate(&ctx.scope(), &req.directory_id, &new)
        .await
        .map_err(|e| wire(ctx, Missing::Directory, e))?;
    encode_output(RegisterCertificateResult { certificate_id: Some(id) })
}

/// `DescribeCertificate`.
pub async fn describe_certificate(ds: &Ds, ctx: &RequestContext, input: Value) -> Result<Output, WireError> {
    let req: DescribeCertificateRequest = decode_input(input)?;
    let view = ds
        .dirs
        .describe_certificate(&ctx.scope(), &req.directory_id, &req.certificate_id)
        .await
        .map_err(|e| wire(ctx, Missing::Directory, e))?;
    let c = &view.record;
    encode_output(DescribeCertificateResult {
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
pub async fn list_certificates(ds: &Ds, ctx: &RequestContext, input: Value) -> Result<Output, WireError> {
    let req: ListCertificatesRequest = decode_input(input)?;
    let page = ds
        .dirs
        .list_certificates(&ctx.scope(), &req.directory_id, limit(req.limit), req.next_token.as_deref())
        .await
        .map_err(|e| wire(ctx, Missing::Directory, e))?;
    encode_output(ListCertificatesResult {
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
pub async fn deregister_certificate(ds: &Ds, ctx: &RequestContext, input: Value) -> Result<Output, WireError> {
    let req: DeregisterCertificateRequest = decode_input(input)?;
    ds.dirs
        .deregister_certificate(&ctx.scope(), &req.directory_id, &req.certificate_id)
        .await
        .map_err(|e| wire(ctx, Missing::Directory, e))?;
    encode_output(DeregisterCertificateResult {})
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
