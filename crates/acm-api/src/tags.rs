//! Tags: AddTagsToCertificate, RemoveTagsFromCertificate, ListTagsForCertificate, and the
//! generic TagResource, UntagResource, ListTagsForResource.
//!
//! ACM meant the generic operations for its other resource types (ACME endpoints and the
//! like), which Carapace does not have yet; given a certificate ARN they act on the
//! certificate's tags (a convenience real ACM does not offer), and any other ACM resource
//! is not found.

use carapace_acm::{AcmError, CertificateManager, Tag};
use carapace_model::acm as m;
use carapace_proto::RequestContext;

use crate::convert;
use crate::error::Result;

pub(crate) async fn add_to_certificate(
    manager: &CertificateManager,
    ctx: &RequestContext,
    req: m::AddTagsToCertificateRequest,
) -> Result<()> {
    manager.add_tags(&crate::owner(ctx), &req.certificate_arn, &convert::tags_from(req.tags)).await?;
    Ok(())
}

pub(crate) async fn remove_from_certificate(
    manager: &CertificateManager,
    ctx: &RequestContext,
    req: m::RemoveTagsFromCertificateRequest,
) -> Result<()> {
    manager.remove_tags(&crate::owner(ctx), &req.certificate_arn, &convert::tags_from(req.tags)).await?;
    Ok(())
}

pub(crate) async fn list_for_certificate(
    manager: &CertificateManager,
    ctx: &RequestContext,
    req: m::ListTagsForCertificateRequest,
) -> Result<m::ListTagsForCertificateResponse> {
    let tags = manager.list_tags(&crate::owner(ctx), &req.certificate_arn).await?;
    Ok(m::ListTagsForCertificateResponse { tags: Some(convert::tags(tags)) })
}

/// Only certificates are taggable resources in Carapace; any other ACM ARN names nothing.
fn certificate_only(arn: &str) -> Result<()> {
    match arn.splitn(6, ':').nth(5) {
        Some(resource) if resource.starts_with("certificate/") => Ok(()),
        _ => Err(AcmError::NotFound(arn.to_owned()).into()),
    }
}

pub(crate) async fn tag_resource(
    manager: &CertificateManager,
    ctx: &RequestContext,
    req: m::TagResourceRequest,
) -> Result<()> {
    certificate_only(&req.resource_arn)?;
    manager.add_tags(&crate::owner(ctx), &req.resource_arn, &convert::tags_from(req.tags)).await?;
    Ok(())
}

pub(crate) async fn untag_resource(
    manager: &CertificateManager,
    ctx: &RequestContext,
    req: m::UntagResourceRequest,
) -> Result<()> {
    certificate_only(&req.resource_arn)?;
    let keys: Vec<Tag> = req.tag_keys.into_iter().map(|key| Tag { key, value: None }).collect();
    manager.remove_tags(&crate::owner(ctx), &req.resource_arn, &keys).await?;
    Ok(())
}

pub(crate) async fn list_for_resource(
    manager: &CertificateManager,
    ctx: &RequestContext,
    req: m::ListTagsForResourceRequest,
) -> Result<m::ListTagsForResourceResponse> {
    certificate_only(&req.resource_arn)?;
    let tags = manager.list_tags(&crate::owner(ctx), &req.resource_arn).await?;
    Ok(m::ListTagsForResourceResponse { tags: Some(convert::tags(tags)) })
}
