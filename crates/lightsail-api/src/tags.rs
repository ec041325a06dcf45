//! TagResource, UntagResource (certificates and distributions).

use carapace_lightsail::LightsailManager;
use carapace_model::lightsail as m;
use carapace_proto::RequestContext;

use crate::convert;
use crate::error::Result;

pub(crate) async fn tag(
    m: &LightsailManager,
    ctx: &RequestContext,
    req: m::TagResourceRequest,
) -> Result<m::TagResourceResult> {
    let tags = convert::tags_from(req.tags);
    let ops = m.tag_resource(&crate::owner(ctx), &req.resource_name, req.resource_arn.as_deref(), &tags).await?;
    Ok(m::TagResourceResult { operations: Some(ops.iter().map(convert::operation).collect()) })
}

pub(crate) async fn untag(
    m: &LightsailManager,
    ctx: &RequestContext,
    req: m::UntagResourceRequest,
) -> Result<m::UntagResourceResult> {
    let ops =
        m.untag_resource(&crate::owner(ctx), &req.resource_name, req.resource_arn.as_deref(), &req.tag_keys).await?;
    Ok(m::UntagResourceResult { operations: Some(ops.iter().map(convert::operation).collect()) })
}
