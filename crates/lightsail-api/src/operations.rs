//! GetOperation, GetOperations, GetOperationsForResource.

use carapace_lightsail::LightsailManager;
use carapace_model::lightsail as m;
use carapace_proto::RequestContext;

use crate::convert;
use crate::error::Result;

pub(crate) async fn get(
    m: &LightsailManager,
    ctx: &RequestContext,
    req: m::GetOperationRequest,
) -> Result<m::GetOperationResult> {
    let op = m.get_operation(&crate::owner(ctx), &req.operation_id).await?;
    Ok(m::GetOperationResult { operation: Some(convert::operation(&op)) })
}

pub(crate) async fn list(
    m: &LightsailManager,
    ctx: &RequestContext,
    req: m::GetOperationsRequest,
) -> Result<m::GetOperationsResult> {
    let page = m.get_operations(&crate::owner(ctx), req.page_token.as_deref()).await?;
    Ok(m::GetOperationsResult {
        operations: Some(page.items.iter().map(convert::operation).collect()),
        next_page_token: page.next_token,
    })
}

pub(crate) async fn for_resource(
    m: &LightsailManager,
    ctx: &RequestContext,
    req: m::GetOperationsForResourceRequest,
) -> Result<m::GetOperationsForResourceResult> {
    let page = m.get_operations_for_resource(&crate::owner(ctx), &req.resource_name, req.page_token.as_deref()).await?;
    Ok(m::GetOperationsForResourceResult {
        operations: Some(page.items.iter().map(convert::operation).collect()),
        next_page_count: None,
        next_page_token: page.next_token,
    })
}
