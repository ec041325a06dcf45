//! GetAccountConfiguration and PutAccountConfiguration.

use carapace_acm::{AcmError, CertificateManager};
use carapace_model::acm as m;
use carapace_proto::RequestContext;

use crate::error::Result;

pub(crate) async fn get(
    manager: &CertificateManager,
    ctx: &RequestContext,
) -> Result<m::GetAccountConfigurationResponse> {
    let config = manager.account_configuration(&crate::owner(ctx)).await?;
    Ok(m::GetAccountConfigurationResponse {
        expiry_events: Some(m::ExpiryEventsConfiguration {
            days_before_expiry: Some(i32::try_from(config.days_before_expiry).unwrap_or(i32::MAX)),
        }),
    })
}

pub(crate) async fn put(
    manager: &CertificateManager,
    ctx: &RequestContext,
    req: m::PutAccountConfigurationRequest,
) -> Result<()> {
    let days = match req.expiry_events.and_then(|e| e.days_before_expiry) {
        Some(d) => Some(
            u32::try_from(d)
                .map_err(|_| AcmError::Validation(format!("DaysBeforeExpiry must be between 1 and 45; got {d}.")))?,
        ),
        None => None,
    };
    manager.put_account_configuration(&crate::owner(ctx), days, &req.idempotency_token).await?;
    Ok(())
}
