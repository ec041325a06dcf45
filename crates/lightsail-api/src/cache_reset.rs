//! ResetDistributionCache, GetDistributionLatestCacheReset.

use carapace_lightsail::LightsailManager;
use carapace_model::lightsail as m;
use carapace_proto::RequestContext;

use crate::convert;
use crate::distributions::required;
use crate::error::Result;

pub(crate) async fn reset(
    m: &LightsailManager,
    ctx: &RequestContext,
    req: m::ResetDistributionCacheRequest,
) -> Result<m::ResetDistributionCacheResult> {
    let name = required(req.distribution_name, "distributionName")?;
    let (reset, op) = m.reset_distribution_cache(&crate::owner(ctx), &name).await?;
    Ok(m::ResetDistributionCacheResult {
        status: Some(convert::cache_reset_status(reset.status)),
        create_time: Some(convert::ts(reset.created_ms)),
        operation: Some(convert::operation(&op)),
    })
}

pub(crate) async fn latest(
    m: &LightsailManager,
    ctx: &RequestContext,
    req: m::GetDistributionLatestCacheResetRequest,
) -> Result<m::GetDistributionLatestCacheResetResult> {
    let name = required(req.distribution_name, "distributionName")?;
    let reset = m.latest_cache_reset(&crate::owner(ctx), &name).await?;
    Ok(m::GetDistributionLatestCacheResetResult {
        status: reset.as_ref().map(|r| convert::cache_reset_status(r.status)),
        create_time: reset.map(|r| convert::ts(r.created_ms)),
    })
}
