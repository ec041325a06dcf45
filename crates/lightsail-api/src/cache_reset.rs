//! ResetDistributionCache, GetDistributionLatestCacheReset.

use carapace_lightsail::LightsailManager;
use carapace_model::lightsail as m;
use carapace_proto::{Output, RequestContext};

use crate::convert;
use crate::distributions::required;
use crate::error::{Result, decode, encode};

pub(crate) async fn reset(m: &LightsailManager, ctx: &RequestContext, input: serde_json::Value) -> Result<Output> {
    let req: m::ResetDistributionCacheRequest = decode(input)?;
    let name = required(req.distribution_name, "distributionName")?;
    let (reset, op) = m.reset_distribution_cache(&crate::owner(ctx), &name).await?;
    encode(m::ResetDistributionCacheResult {
        status: Some(convert::cache_reset_status(reset.status)),
        create_time: Some(convert::ts(reset.created_ms)),
        operation: Some(convert::operation(&op)),
    })
}

pub(crate) async fn latest(m: &LightsailManager, ctx: &RequestContext, input: serde_json::Value) -> Result<Output> {
    let req: m::GetDistributionLatestCacheResetRequest = decode(input)?;
    let name = required(req.distribution_name, "distributionName")?;
    let reset = m.latest_cache_reset(&crate::owner(ctx), &name).await?;
    encode(m::GetDistributionLatestCacheResetResult {
        status: reset.as_ref().map(|r| convert::cache_reset_status(r.status)),
        create_time: reset.map(|r| convert::ts(r.created_ms)),
    })
}
