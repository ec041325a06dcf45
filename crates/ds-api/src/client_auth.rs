//! EnableClientAuthentication, DisableClientAuthentication,
//! DescribeClientAuthenticationSettings (smart-card logon on an AD Connector).

use carapace_ds::machine::ClientAuthStatus as Status;
use carapace_ds::records::ClientAuthKind;
use carapace_model::ds::{
    ClientAuthenticationSettingInfo, ClientAuthenticationStatus, ClientAuthenticationType,
    DescribeClientAuthenticationSettingsRequest, DescribeClientAuthenticationSettingsResult,
    DisableClientAuthenticationRequest, DisableClientAuthenticationResult, EnableClientAuthenticationRequest,
    EnableClientAuthenticationResult,
};
use carapace_proto::{Output, RequestContext, WireError, decode_input, encode_output};
use serde_json::Value;

use crate::{Ds, Missing, limit, ts, wire};

fn to_core(t: ClientAuthenticationType) -> ClientAuthKind {
    match t {
        ClientAuthenticationType::SmartCard => ClientAuthKind::SmartCard,
        ClientAuthenticationType::SmartCardOrPassword => ClientAuthKind::SmartCardOrPassword,
    }
}

/// `EnableClientAuthentication`.
pub async fn enable_client_authentication(ds: &Ds, ctx: &RequestContext, input: Value) -> Result<Output, WireError> {
    let req: EnableClientAuthenticationRequest = decode_input(input)?;
    ds.dirs
        .enable_client_auth(&ctx.scope(), &req.directory_id, to_core(req.r#type))
        .await
        .map_err(|e| wire(ctx, Missing::Directory, e))?;
    encode_output(EnableClientAuthenticationResult {})
}

/// `DisableClientAuthentication`.
pub async fn disable_client_authentication(ds: &Ds, ctx: &RequestContext, input: Value) -> Result<Output, WireError> {
    let req: DisableClientAuthenticationRequest = decode_input(input)?;
    ds.dirs
        .disable_client_auth(&ctx.scope(), &req.directory_id, to_core(req.r#type))
        .await
        .map_err(|e| wire(ctx, Missing::Directory, e))?;
    encode_output(DisableClientAuthenticationResult {})
}

/// `DescribeClientAuthenticationSettings`: the given type, or every type.
pub async fn describe_client_authentication_settings(
    ds: &Ds,
    ctx: &RequestContext,
    input: Value,
) -> Result<Output, WireError> {
    let req: DescribeClientAuthenticationSettingsRequest = decode_input(input)?;
    let page = ds
        .dirs
        .describe_client_auth(
            &ctx.scope(),
            &req.directory_id,
            req.r#type.map(to_core),
            limit(req.limit),
            req.next_token.as_deref(),
        )
        .await
        .map_err(|e| wire(ctx, Missing::Directory, e))?;
    encode_output(DescribeClientAuthenticationSettingsResult {
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
