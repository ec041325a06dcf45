//! ACM (AWS Certificate Manager) operations over the Carapace core.
//!
//! [`Acm`] implements the generated [`m::Operations`] trait: each method takes its
//! operation's typed input ([`carapace_model::acm`]), calls [`CertificateManager`] in the
//! core, and returns the typed output; the generated [`m::dispatch`] decodes the validated
//! input document once and calls it. One file per operation family. Errors are converted
//! once, in [`error`]. The model's other operations (ACME, the organisation inventory, the
//! `*Member*` family) are outside the generated list and answer `NotImplementedException`
//! from the dispatcher, before any handler runs.

mod account_configuration;
mod convert;
mod describe_certificate;
mod domain_validations;
mod error;
mod get_delete_certificate;
mod import_export;
mod list_certificates;
mod options;
mod renew_revoke;
mod request_certificate;
mod search_certificates;
mod tags;
mod throttle;

use carapace_acm::{CertificateManager, Owner};
use carapace_model::acm::{self as m, OperationName};
use carapace_model::schema::{Operation, Service};
use carapace_proto::{Output, RequestContext, ServiceHandler, WireError};

use crate::error::Result;

/// The ACM service handler.
pub struct Acm {
    manager: CertificateManager,
    throttle: throttle::Throttle,
}

impl Acm {
    /// ACM over this manager.
    pub fn new(manager: CertificateManager) -> Self {
        let enabled = manager.settings().throttling;
        Self { manager, throttle: throttle::Throttle::new(enabled) }
    }
}

/// The caller as the core knows it.
pub(crate) fn owner(ctx: &RequestContext) -> Owner {
    Owner::new(ctx.account_id.clone(), ctx.region.clone())
}

#[async_trait::async_trait]
impl ServiceHandler for Acm {
    fn service(&self) -> &'static Service {
        &m::SERVICE
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &'static Operation,
        input: serde_json::Value,
    ) -> std::result::Result<Output, WireError> {
        self.throttle.check(&ctx.account_id, &ctx.region, operation.name)?;
        let op = OperationName::of(operation)?;
        Output::from_dispatch(m::dispatch(self, ctx, op, input).await, |e| e.into_wire(&ctx.request_id, op))
    }
}

impl m::Operations for Acm {
    type Context = RequestContext;
    type Error = error::Error;

    async fn add_tags_to_certificate(&self, ctx: &RequestContext, input: m::AddTagsToCertificateRequest) -> Result<()> {
        tags::add_to_certificate(&self.manager, ctx, input).await
    }

    async fn delete_certificate(&self, ctx: &RequestContext, input: m::DeleteCertificateRequest) -> Result<()> {
        get_delete_certificate::delete(&self.manager, ctx, input).await
    }

    async fn describe_certificate(
        &self,
        ctx: &RequestContext,
        input: m::DescribeCertificateRequest,
    ) -> Result<m::DescribeCertificateResponse> {
        describe_certificate::handle(&self.manager, ctx, input).await
    }

    async fn export_certificate(
        &self,
        ctx: &RequestContext,
        input: m::ExportCertificateRequest,
    ) -> Result<m::ExportCertificateResponse> {
        import_export::export(&self.manager, ctx, input).await
    }

    async fn get_account_configuration(&self, ctx: &RequestContext) -> Result<m::GetAccountConfigurationResponse> {
        account_configuration::get(&self.manager, ctx).await
    }

    async fn get_certificate(
        &self,
        ctx: &RequestContext,
        input: m::GetCertificateRequest,
    ) -> Result<m::GetCertificateResponse> {
        get_delete_certificate::get(&self.manager, ctx, input).await
    }

    async fn import_certificate(
        &self,
        ctx: &RequestContext,
        input: m::ImportCertificateRequest,
    ) -> Result<m::ImportCertificateResponse> {
        import_export::import(&self.manager, ctx, input).await
    }

    async fn list_certificate_domain_validations(
        &self,
        ctx: &RequestContext,
        input: m::ListCertificateDomainValidationsRequest,
    ) -> Result<m::ListCertificateDomainValidationsResponse> {
        domain_validations::handle(&self.manager, ctx, input).await
    }

    async fn list_certificates(
        &self,
        ctx: &RequestContext,
        input: m::ListCertificatesRequest,
    ) -> Result<m::ListCertificatesResponse> {
        list_certificates::handle(&self.manager, ctx, input).await
    }

    async fn list_tags_for_certificate(
        &self,
        ctx: &RequestContext,
        input: m::ListTagsForCertificateRequest,
    ) -> Result<m::ListTagsForCertificateResponse> {
        tags::list_for_certificate(&self.manager, ctx, input).await
    }

    async fn list_tags_for_resource(
        &self,
        ctx: &RequestContext,
        input: m::ListTagsForResourceRequest,
    ) -> Result<m::ListTagsForResourceResponse> {
        tags::list_for_resource(&self.manager, ctx, input).await
    }

    async fn put_account_configuration(
        &self,
        ctx: &RequestContext,
        input: m::PutAccountConfigurationRequest,
    ) -> Result<()> {
        account_configuration::put(&self.manager, ctx, input).await
    }

    async fn remove_tags_from_certificate(
        &self,
        ctx: &RequestContext,
        input: m::RemoveTagsFromCertificateRequest,
    ) -> Result<()> {
        tags::remove_from_certificate(&self.manager, ctx, input).await
    }

    async fn renew_certificate(&self, ctx: &RequestContext, input: m::RenewCertificateRequest) -> Result<()> {
        renew_revoke::renew(&self.manager, ctx, input).await
    }

    async fn request_certificate(
        &self,
        ctx: &RequestContext,
        input: m::RequestCertificateRequest,
    ) -> Result<m::RequestCertificateResponse> {
        request_certificate::handle(&self.manager, ctx, input).await
    }

    async fn resend_validation_email(
        &self,
        ctx: &RequestContext,
        input: m::ResendValidationEmailRequest,
    ) -> Result<()> {
        options::resend_validation_email(&self.manager, ctx, input).await
    }

    async fn revoke_certificate(
        &self,
        ctx: &RequestContext,
        input: m::RevokeCertificateRequest,
    ) -> Result<m::RevokeCertificateResponse> {
        renew_revoke::revoke(&self.manager, ctx, input).await
    }

    async fn search_certificates(
        &self,
        ctx: &RequestContext,
        input: m::SearchCertificatesRequest,
    ) -> Result<m::SearchCertificatesResponse> {
        search_certificates::handle(&self.manager, ctx, input).await
    }

    async fn tag_resource(&self, ctx: &RequestContext, input: m::TagResourceRequest) -> Result<()> {
        tags::tag_resource(&self.manager, ctx, input).await
    }

    async fn untag_resource(&self, ctx: &RequestContext, input: m::UntagResourceRequest) -> Result<()> {
        tags::untag_resource(&self.manager, ctx, input).await
    }

    async fn update_certificate_options(
        &self,
        ctx: &RequestContext,
        input: m::UpdateCertificateOptionsRequest,
    ) -> Result<()> {
        options::update(&self.manager, ctx, input).await
    }
}
