//! GetDistributionBundles, UpdateDistributionBundle.

use carapace_lightsail::LightsailManager;
use carapace_model::lightsail as m;
use carapace_proto::RequestContext;

use crate::convert;
use crate::distributions::required;
use crate::error::Result;

pub(crate) async fn get(m: &LightsailManager, ctx: &RequestContext) -> Result<m::GetDistributionBundlesResult> {
    carapace_lightsail::check_distribution_region(&crate::owner(ctx))?;
    let bundles = m
        .settings()
        .bundles
        .iter()
        .map(|b| m::DistributionBundle {
            bundle_id: Some(b.id.clone()),
            name: Some(b.name.clone()),
            price: Some(b.price),
            transfer_per_month_in_gb: Some(b.transfer_per_month_in_gb),
            is_active: Some(b.is_active),
        })
        .collect();
    Ok(m::GetDistributionBundlesResult { bundles: Some(bundles) })
}

pub(crate) async fn update(
    m: &LightsailManager,
    ctx: &RequestContext,
    req: m::UpdateDistributionBundleRequest,
) -> Result<m::UpdateDistributionBundleResult> {
    let name = required(req.distribution_name, "distributionName")?;
    let bundle = required(req.bundle_id, "bundleId")?;
    let op = m.update_distribution_bundle(&crate::owner(ctx), &name, &bundle).await?;
    Ok(m::UpdateDistributionBundleResult { operation: Some(convert::operation(&op)) })
}
