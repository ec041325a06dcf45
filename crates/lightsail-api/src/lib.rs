//! Lightsail operations over the Carapace core: certificates, CDN distributions, their
//! operations, tags and regions.
//!
//! [`Lightsail`] implements the generated [`m::Operations`] trait: each method takes its
//! operation's typed input ([`carapace_model::lightsail`]), calls [`LightsailManager`] in
//! the core, and returns the typed output; the generated [`m::dispatch`] decodes the
//! validated input document once and calls it. One file per operation family; errors are
//! converted once, in [`error`], into Lightsail's envelope (`code`, `docs`, `message`,
//! `tip`). Every other Lightsail operation answers `NotImplementedException` naming it.

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
use carapace_model::lightsail::{self as m, OperationName};
use carapace_model::schema::{Operation, Service};
use carapace_proto::{Output, RequestContext, ServiceHandler, WireError};

use crate::error::Result;

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
        &m::SERVICE
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &'static Operation,
        input: serde_json::Value,
    ) -> std::result::Result<Output, WireError> {
        let op = OperationName::of(operation)?;
        Output::from_dispatch(m::dispatch(self, ctx, op, input).await, |e| e.into_wire(&ctx.request_id, op.as_str()))
    }

    /// Every Lightsail error carries the documentation link, whoever raised it.
    fn finish_error(&self, err: WireError) -> WireError {
        if err.extra.iter().any(|(name, _)| *name == "docs") { err } else { err.with_member("docs", DOCS_URL.into()) }
    }
}

impl m::Operations for Lightsail {
    type Context = RequestContext;
    type Error = error::Error;

    async fn attach_certificate_to_distribution(
        &self,
        ctx: &RequestContext,
        input: m::AttachCertificateToDistributionRequest,
    ) -> Result<m::AttachCertificateToDistributionResult> {
        certificate_attachment::attach(&self.manager, ctx, input).await
    }

    async fn create_certificate(
        &self,
        ctx: &RequestContext,
        input: m::CreateCertificateRequest,
    ) -> Result<m::CreateCertificateResult> {
        certificates::create(&self.manager, ctx, input).await
    }

    async fn create_distribution(
        &self,
        ctx: &RequestContext,
        input: m::CreateDistributionRequest,
    ) -> Result<m::CreateDistributionResult> {
        distributions::create(&self.manager, ctx, input).await
    }

    async fn delete_certificate(
        &self,
        ctx: &RequestContext,
        input: m::DeleteCertificateRequest,
    ) -> Result<m::DeleteCertificateResult> {
        certificates::delete(&self.manager, ctx, input).await
    }

    async fn delete_distribution(
        &self,
        ctx: &RequestContext,
        input: m::DeleteDistributionRequest,
    ) -> Result<m::DeleteDistributionResult> {
        distributions::delete(&self.manager, ctx, input).await
    }

    async fn detach_certificate_from_distribution(
        &self,
        ctx: &RequestContext,
        input: m::DetachCertificateFromDistributionRequest,
    ) -> Result<m::DetachCertificateFromDistributionResult> {
        certificate_attachment::detach(&self.manager, ctx, input).await
    }

    async fn get_certificates(
        &self,
        ctx: &RequestContext,
        input: m::GetCertificatesRequest,
    ) -> Result<m::GetCertificatesResult> {
        certificates::get(&self.manager, ctx, input).await
    }

    async fn get_distribution_bundles(
        &self,
        ctx: &RequestContext,
        _input: m::GetDistributionBundlesRequest,
    ) -> Result<m::GetDistributionBundlesResult> {
        bundles::get(&self.manager, ctx).await
    }

    async fn get_distribution_latest_cache_reset(
        &self,
        ctx: &RequestContext,
        input: m::GetDistributionLatestCacheResetRequest,
    ) -> Result<m::GetDistributionLatestCacheResetResult> {
        cache_reset::latest(&self.manager, ctx, input).await
    }

    async fn get_distribution_metric_data(
        &self,
        ctx: &RequestContext,
        input: m::GetDistributionMetricDataRequest,
    ) -> Result<m::GetDistributionMetricDataResult> {
        metric_data::handle(&self.manager, ctx, input).await
    }

    async fn get_distributions(
        &self,
        ctx: &RequestContext,
        input: m::GetDistributionsRequest,
    ) -> Result<m::GetDistributionsResult> {
        distributions::get(&self.manager, ctx, input).await
    }

    async fn get_operation(
        &self,
        ctx: &RequestContext,
        input: m::GetOperationRequest,
    ) -> Result<m::GetOperationResult> {
        operations::get(&self.manager, ctx, input).await
    }

    async fn get_operations(
        &self,
        ctx: &RequestContext,
        input: m::GetOperationsRequest,
    ) -> Result<m::GetOperationsResult> {
        operations::list(&self.manager, ctx, input).await
    }

    async fn get_operations_for_resource(
        &self,
        ctx: &RequestContext,
        input: m::GetOperationsForResourceRequest,
    ) -> Result<m::GetOperationsForResourceResult> {
        operations::for_resource(&self.manager, ctx, input).await
    }

    async fn get_regions(&self, _ctx: &RequestContext, input: m::GetRegionsRequest) -> Result<m::GetRegionsResult> {
        Ok(regions::get(input))
    }

    async fn reset_distribution_cache(
        &self,
        ctx: &RequestContext,
        input: m::ResetDistributionCacheRequest,
    ) -> Result<m::ResetDistributionCacheResult> {
        cache_reset::reset(&self.manager, ctx, input).await
    }

    async fn tag_resource(&self, ctx: &RequestContext, input: m::TagResourceRequest) -> Result<m::TagResourceResult> {
        tags::tag(&self.manager, ctx, input).await
    }

    async fn untag_resource(
        &self,
        ctx: &RequestContext,
        input: m::UntagResourceRequest,
    ) -> Result<m::UntagResourceResult> {
        tags::untag(&self.manager, ctx, input).await
    }

    async fn update_distribution(
        &self,
        ctx: &RequestContext,
        input: m::UpdateDistributionRequest,
    ) -> Result<m::UpdateDistributionResult> {
        distributions::update(&self.manager, ctx, input).await
    }

    async fn update_distribution_bundle(
        &self,
        ctx: &RequestContext,
        input: m::UpdateDistributionBundleRequest,
    ) -> Result<m::UpdateDistributionBundleResult> {
        bundles::update(&self.manager, ctx, input).await
    }
}
