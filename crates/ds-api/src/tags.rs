//! AddTagsToResource, RemoveTagsFromResource, ListTagsForResource (directories only: the
//! model's `ResourceId` pattern is a directory id).

use carapace_ds::Directories;
use carapace_model::ds::{
    AddTagsToResourceRequest, AddTagsToResourceResult, ListTagsForResourceRequest, ListTagsForResourceResult,
    RemoveTagsFromResourceRequest, RemoveTagsFromResourceResult, Tag,
};
use carapace_proto::RequestContext;

use crate::directories::tag_pairs;
use crate::error::Result;
use crate::limit;

/// `AddTagsToResource`: adds, or overwrites the values of existing keys.
pub(crate) async fn add_tags_to_resource(
    dirs: &Directories,
    ctx: &RequestContext,
    req: AddTagsToResourceRequest,
) -> Result<AddTagsToResourceResult> {
    let tags = tag_pairs(Some(req.tags));
    dirs.add_tags(&ctx.scope(), &req.resource_id, &tags).await?;
    Ok(AddTagsToResourceResult {})
}

/// `RemoveTagsFromResource`.
pub(crate) async fn remove_tags_from_resource(
    dirs: &Directories,
    ctx: &RequestContext,
    req: RemoveTagsFromResourceRequest,
) -> Result<RemoveTagsFromResourceResult> {
    dirs.remove_tags(&ctx.scope(), &req.resource_id, &req.tag_keys).await?;
    Ok(RemoveTagsFromResourceResult {})
}

/// `ListTagsForResource`.
pub(crate) async fn list_tags_for_resource(
    dirs: &Directories,
    ctx: &RequestContext,
    req: ListTagsForResourceRequest,
) -> Result<ListTagsForResourceResult> {
    let page = dirs.list_tags(&ctx.scope(), &req.resource_id, limit(req.limit), req.next_token.as_deref()).await?;
    Ok(ListTagsForResourceResult {
        tags: Some(page.items.into_iter().map(|(key, value)| Tag { key, value }).collect()),
        next_token: page.next_token,
    })
}
