//! TagResource, UntagResource (certificates and distributions).

use carapace_lightsail::LightsailManager;
use carapace_model::lightsail as m;
use carapace_proto::{Output, RequestContext};

use crate::convert;
use crate::error::{Result, decode, encode};

pub(crate) async fn tag(m: &LightsailManager, ctx: &RequestContext, input: serde_json::Value) -> Result<Output> {
    let req: m::TagResourceRequest = decode(input)?;
    let tags = convert::tags_from(req.tags);
    let ops = m.tag_resource(&crate::owner(ctx), &req.resource_name, req.resource_arn.as_deref(), &tags).await?;
    encode(m::TagResourceResult { operations: Some(ops.iter().map(convert::operation).collect()) })
}

pub(crate) async fn untag(m: &LightsailManager, ctx: &RequestContext, input: serde_json::Value) -> Result<Output> {
    let req: m::UntagResourceRequest = decode(input)?;
    let ops =
        m.untag_resource(&crate::owner(ctx), &req.resource_name, req.resource_arn.as_deref(), &req.tag_keys).await?;
    encode(m::UntagResourceResult { operations: Some(ops.iter().map(convert::operation).collect()) })
}
