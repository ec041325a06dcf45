//! ACM (AWS Certificate Manager) operations over the Carapace core.
//!
//! The wire layer hands each call a validated JSON document; this crate decodes it into the
//! generated DTOs ([`carapace_model::acm`]), calls [`CertificateManager`] in the core, and
//! encodes the answer. One file per operation family. Errors are converted once, in
//! [`error`]. The model's other operations (ACME, the organisation inventory, the `*Member*`
//! family) are outside the generated list and answer `NotImplementedException` from the
//! dispatcher, before any handler runs.

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
use carapace_model::acm::OperationName;
use carapace_model::acm::OperationName as Op;
use carapace_model::schema::{Operation, Service};
use carapace_proto::{Output, RequestContext, ServiceHandler, WireError};

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
        &carapace_model::acm::SERVICE
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &'static Operation,
        input: serde_json::Value,
    ) -> Result<Output, WireError> {
        self.throttle.check(&ctx.account_id, &ctx.region, operation.name)?;
        let m = &self.manager;
        // The dispatcher only calls with operations the model table marks generated, which
        // are exactly `OperationName`'s.
        let Some(op) = OperationName::from_wire(operation.name) else {
            return Err(WireError::not_implemented("acm", operation.name));
        };
        let result = match op {
            Op::RequestCertificate => request_certificate::handle(m, ctx, input).await,
            Op::DescribeCertificate => describe_certificate::handle(m, ctx, input).await,
            Op::ListCertificates => list_certificates::handle(m, ctx, input).await,
            Op::GetCertificate => get_delete_certificate::get(m, ctx, input).await,
            Op::DeleteCertificate => get_delete_certificate::delete(m, ctx, input).await,
            Op::AddTagsToCertificate => tags::add_to_certificate(m, ctx, input).await,
            Op::RemoveTagsFromCertificate => tags::remove_from_certificate(m, ctx, input).await,
            Op::ListTagsForCertificate => tags::list_for_certificate(m, ctx, input).await,
            Op::TagResource => tags::tag_resource(m, ctx, input).await,
            Op::UntagResource => tags::untag_resource(m, ctx, input).await,
            Op::ListTagsForResource => tags::list_for_resource(m, ctx, input).await,
            Op::ImportCertificate => import_export::import(m, ctx, input).await,
            Op::ExportCertificate => import_export::export(m, ctx, input).await,
            Op::RenewCertificate => renew_revoke::renew(m, ctx, input).await,
            Op::RevokeCertificate => renew_revoke::revoke(m, ctx, input).await,
            Op::UpdateCertificateOptions => options::update(m, ctx, input).await,
            Op::ResendValidationEmail => options::resend_validation_email(m, ctx, input).await,
            Op::GetAccountConfiguration => account_configuration::get(m, ctx).await,
            Op::PutAccountConfiguration => account_configuration::put(m, ctx, input).await,
            Op::ListCertificateDomainValidations => domain_validations::handle(m, ctx, input).await,
            Op::SearchCertificates => search_certificates::handle(m, ctx, input).await,
        };
        result.map_err(|e| e.into_wire(&ctx.request_id, op))
    }
}
