//! EnableClientAuthentication, DisableClientAuthentication,
//! DescribeClientAuthenticationSettings (smart-card logon on an AD Connector).

use carapace_ds::Directories;
use carapace_ds::machine::ClientAuthStatus as Status;
use carapace_ds::records::ClientAuthKind;
use carapace_model::ds::{
    ClientAuthenticationSettingInfo, ClientAuthenticationStatus, ClientAuthenticationType,
    DescribeClientAuthenticationSettingsRequest, DescribeClientAuthenticationSettingsResult,
    DisableClientAuthenticationRequest, DisableClientAuthenticationResult, EnableClientAuthenticationRequest,
    EnableClientAuthenticationResult,
};
use carapace_proto::RequestContext;

use crate::error::Result;
use crate::{limit, ts};

fn to_core(t: ClientAuthenticationType) -> ClientAuthKind {
    match t {
        ClientAuthenticationType::SmartCard => ClientAuthKind::SmartCard,
        ClientAuthenticationType::SmartCardOrPassword => ClientAuthKind::SmartCardOrPassword,
    }
}

/// `EnableClientAuthentication`.
pub(crate) async fn enable_client_authentication(
    dirs: &Directories,
    ctx: &RequestContext,
    req: EnableClientAuthenticationRequest,
) -> Result<EnableClientAuthenticationResult> {
    dirs.enable_client_auth(&ctx.scope(), &req.directory_id, to_core(req.r#type)).await?;
    Ok(EnableClientAuthenticationResult {})
}

/// `DisableClientAuthentication`.
pub(crate) async fn disable_client_authentication(
    dirs: &Directories,
    ctx: &RequestContext,
    req: DisableClientAuthenticationRequest,
) -> Result<DisableClientAuthenticationResult> {
    dirs.disable_client_auth(&ctx.scope(), &req.directory_id, to_core(req.r#type)).await?;
    Ok(DisableClientAuthenticationResult {})
}

/// `DescribeClientAuthenticationSettings`: the given type, or every type.
pub(crate) async fn describe_client_authentication_settings(
    dirs: &Directories,
    ctx: &RequestContext,
    req: DescribeClientAuthenticationSettingsRequest,
) -> Result<DescribeClientAuthenticationSettingsResult> {
    let page = dirs
        .describe_client_auth(
            &ctx.scope(),
            &req.directory_id,
            req.r#type.map(to_core),
            limit(req.limit),
            req.next_token.as_deref(),
        )
        .await?;
    Ok(DescribeClientAuthenticationSettingsResult {
        client_authentication_settings_info: Some(
            page.items
                .into_iter()
                .map(|c| ClientAuthenticationSettingInfo {
                    r#type: Some(match c.kind {
                        ClientAuthKind::SmartCard => ClientAuthenticationType::SmartCard,
                        ClientAuthKind::SmartCardOrPassword => ClientAuthenticationType::SmartCardOrPassword,
                    }),
                    status: Some(match c.status {
                        Status::Enabled => ClientAuthenticationStatus::Enabled,
                        Status::Disabled => ClientAuthenticationStatus::Disabled,
                    }),
                    last_updated_date_time: Some(ts(c.updated_ms)),
                })
                .collect(),
        ),
        next_token: page.next_token,
    })
}
