//! Lightsail operations over the Carapace core: certificates, CDN distributions, their
//! operations, tags and regions.
//!
//! The wire layer hands each call a validated JSON document; this crate decodes it into the
//! generated DTOs ([`carapace_model::lightsail`]), calls [`LightsailManager`] in the core,
//! and encodes the answer. One file per operation family; errors are converted once, in
//! [`error`], into Lightsail's envelope (`code`, `docs`, `message`, `tip`). Every other
//! Lightsail operation answers `NotImplementedException` naming it.

mod bundles;
mod cache_reset;
mod certificate_attachment;
mod certificates;
mod convert;
mod distributions;
mod error;
mod metric_data;
mod operations;
mod regions;
mod tags;

use carapace_acm::Owner;
use carapace_lightsail::LightsailManager;
use carapace_model::lightsail::OperationName;
use carapace_model::lightsail::OperationName as Op;
use carapace_model::schema::{Operation, Service};
use carapace_proto::{Output, RequestContext, ServiceHandler, WireError};

/// Where every Lightsail error's `docs` member points, as AWS's do.
pub const DOCS_URL: &str = "https://lightsail.aws.amazon.com/ls/docs";

/// The Lightsail service handler.
pub struct Lightsail {
    manager: LightsailManager,
}

impl Lightsail {
    /// Lightsail over this manager.
    pub fn new(manager: LightsailManager) -> Self {
        Self { manager }
    }

    /// The core manager (for the edge and benchmarks).
    pub fn manager(&self) -> &LightsailManager {
        &self.manager
    }
}

/// The caller as the core knows it.
pub(crate) fn owner(ctx: &RequestContext) -> Owner {
    Owner::new(ctx.account_id.clone(), ctx.region.clone())
}

#[async_trait::async_trait]
impl ServiceHandler for Lightsail {
    fn service(&self) -> &'static Service {
        &carapace_model::lightsail::SERVICE
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &'static Operation,
        input: serde_json::Value,
    ) -> Result<Output, WireError> {
        let m = &self.manager;
        // The dispatcher only calls with operations the model table marks generated, which
        // are exactly `OperationName`'s.
        let Some(op) = OperationName::from_wire(operation.name) else {
            return Err(WireError::not_implemented("lightsail", operation.name));
        };
        let result = match op {
            Op::CreateCertificate => certificates::create(m, ctx, input).await,
            Op::GetCertificates => certificates::get(m, ctx, input).await,
            Op::DeleteCertificate => certificates::delete(m, ctx, input).await,
            Op::CreateDistribution => distributions::create(m, ctx, input).await,
            Op::GetDistributions => distributions::get(m, ctx, input).await,
            Op::UpdateDistribution => distributions::update(m, ctx, input).await,
            Op::DeleteDistribution => distributions::delete(m, ctx, input).await,
            Op::AttachCertificateToDistribution => certificate_attachment::attach(m, ctx, input).await,
            Op::DetachCertificateFromDistribution => certificate_attachment::detach(m, ctx, input).await,
            Op::ResetDistributionCache => cache_reset::reset(m, ctx, input).await,
            Op::GetDistributionLatestCacheReset => cache_reset::latest(m, ctx, input).await,
            Op::GetDistributionBundles => bundles::get(m, ctx).await,
            Op::UpdateDistributionBundle => bundles::update(m, ctx, input).await,
            Op::GetDistributionMetricData => metric_data::handle(m, ctx, input).await,
            Op::GetOperation => operations::get(m, ctx, input).await,
            Op::GetOperations => operations::list(m, ctx, input).await,
            Op::GetOperationsForResource => operations::for_resource(m, ctx, input).await,
            Op::TagResource => tags::tag(m, ctx, input).await,
            Op::UntagResource => tags::untag(m, ctx, input).await,
            Op::GetRegions => regions::get(input),
        };
        result.map_err(|e| e.into_wire(&ctx.request_id, operation.name))
    }

    /// Every Lightsail error carries the documentation link, whoever raised it.
    fn finish_error(&self, err: WireError) -> WireError {
        if err.extra.iter().any(|(name, _)| *name == "docs") { err } else { err.with_member("docs", DOCS_URL.into()) }
    }
}
