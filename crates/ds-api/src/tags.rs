//! AddTagsToResource, RemoveTagsFromResource, ListTagsForResource (directories only: the
//! model's `ResourceId` pattern is a directory id).

use carapace_model::ds::{
    AddTagsToResourceRequest, AddTagsToResourceResult, ListTagsForResourceRequest, ListTagsForResourceResult,
    RemoveTagsFromResourceRequest, RemoveTagsFromResourceResult, Tag,
};
use carapace_proto::{Output, RequestContext, WireError, decode_input, encode_output};
use serde_json::Value;

use crate::directories::tag_pairs;
use crate::{Ds, Missing, limit, wire};

/// `AddTagsToResource`: adds, or overwrites the values of existing keys.
pub async fn add_tags_to_resource(ds: &Ds, ctx: &RequestContext, input: Value) -> Result<Output, WireError> {
    let req: AddTagsToResourceRequest = decode_input(input)?;
    let tags = tag_pairs(Some(req.tags));
    ds.dirs.add_tags(&ctx.scope(), &req.resource_id, &tags).await.map_err(|e| wire(ctx, Missing::Entity, e))?;
    encode_output(AddTagsToResourceResult {})
}

/// `RemoveTagsFromResource`.
pub async fn remove_tags_from_resource(ds: &Ds, ctx: &RequestContext, input: Value) -> Result<Output, WireError> {
    let req: RemoveTagsFromResourceRequest = decode_input(input)?;
    ds.dirs
        .remove_tags(&ctx.scope(), &req.resource_id, &req.tag_keys)
        .await
        .map_err(|e| wire(ctx, Missing::Entity, e))?;
    encode_output(RemoveTagsFromResourceResult {})
}

/// `ListTagsForResource`.
pub async fn list_tags_for_resource(ds: &Ds, ctx: &RequestContext, input: Value) -> Result<Output, WireError> {
    let req: ListTagsForResourceRequest = decode_input(input)?;
    let page = ds
        .dirs
        .list_tags(&ctx.scope(), &req.resource_id, limit(req.limit), req.next_token.as_deref())
        .await
        .map_err(|e| wire(ctx, Missing::Entity, e))?;
    encode_output(ListTagsForResourceResult {
        tags: Some(page.items.into_iter().map(|(key, value)| Tag { key, value }).collect()),
        next_token: page.next_token,
    })
}
