//! Directory Service operations over the Carapace core.
//!
//! [`Ds`] implements the generated [`m::Operations`] trait, and the generated
//! [`m::dispatch`] decodes each validated input document once and calls it. One file per
//! operation family: `directories` (create, connect, describe, delete, limits), `tags`,
//! `certificates` (register, describe, list, deregister), [`ldaps`] (enable, disable,
//! describe, and running the check), `client_auth` (smart-card settings). Each maps the
//! generated DTOs onto [`carapace_ds::Directories`], which holds the rules;
//! `carapace_checks::ldaps` is the network half of the LDAPS check. Errors are converted
//! once, in `error`.
//!
//! Time-driven states are computed on read by the core. An LDAPS check is a job enqueued
//! with `EnableLDAPS` and run by [`ldaps::LdapsChecks`] in the generic worker, so a restart
//! mid-check resumes it by itself.
//!
//! What the LDAPS check does: for an AD Connector, connect to every
//! `ConnectSettings.CustomerDnsIps` / `CustomerDnsIpsV6` address on the LDAPS port
//! ([`DsSettings::probe`]; 636 by default), complete a TLS handshake trusting only the directory's
//! registered `ClientLDAPS` certificates, and read the root DSE; any failure is the
//! `LDAPSStatusReason` of `EnableFailed` (see `carapace_checks::ldaps` for why host names are not
//! checked). A Managed Microsoft AD's domain controllers are AWS's, and Carapace runs none,
//! so once a `ClientLDAPS` certificate is registered its LDAPS goes `Enabling` → `Enabled`
//! with nothing to probe. Simple AD has no LDAPS (`UnsupportedOperationException`).
//!
//! Its settings ([`DsSettings`]: the probed port, how long a new directory stays in each
//! of `Requested` and `Creating`) are given by the caller, which reads them from its
//! configuration.

mod certificates;
mod client_auth;
mod directories;
mod error;
pub mod ldaps;
mod tags;

use carapace_ds::Directories;
use carapace_kernel::Core;
use carapace_model::Timestamp;
use carapace_model::ds::{self as m, OperationName};
use carapace_model::schema::{Operation, Service};
use carapace_proto::{Output, RequestContext, ServiceHandler, WireError};

use crate::error::Result;

/// The Directory Service handler.
pub struct Ds {
    dirs: Directories,
}

/// Knobs of the Directory Service handler.
#[derive(Debug, Clone)]
pub struct DsSettings {
    /// How the LDAPS check probes customer domain controllers.
    pub probe: carapace_checks::ldaps::ProbeSettings,
    /// How long new directories stay in each of `Requested` and `Creating`, milliseconds.
    /// Tests lengthen it to observe those stages.
    pub directory_step_ms: i64,
}

impl Default for DsSettings {
    /// Port 636 and 150 ms per stage.
    fn default() -> Self {
        Self {
            probe: carapace_checks::ldaps::ProbeSettings::default(),
            directory_step_ms: carapace_ds::records::DIRECTORY_STEP_MS,
        }
    }
}

impl Ds {
    /// Directory Service over these core handles, with these settings.
    pub fn new(core: Core, settings: DsSettings) -> Self {
        Self { dirs: Directories::new(core).with_directory_step_ms(settings.directory_step_ms) }
    }
}

#[async_trait::async_trait]
impl ServiceHandler for Ds {
    fn service(&self) -> &'static Service {
        &m::SERVICE
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &'static Operation,
        input: serde_json::Value,
    ) -> std::result::Result<Output, WireError> {
        let op = OperationName::of(operation)?;
        Output::from_dispatch(m::dispatch(self, ctx, op, input).await, |e| e.into_wire(ctx, op))
    }
}

impl m::Operations for Ds {
    type Context = RequestContext;
    type Error = error::Error;

    async fn add_tags_to_resource(
        &self,
        ctx: &RequestContext,
        input: m::AddTagsToResourceRequest,
    ) -> Result<m::AddTagsToResourceResult> {
        tags::add_tags_to_resource(&self.dirs, ctx, input).await
    }

    async fn connect_directory(
        &self,
        ctx: &RequestContext,
        input: m::ConnectDirectoryRequest,
    ) -> Result<m::ConnectDirectoryResult> {
        directories::connect_directory(&self.dirs, ctx, input).await
    }

    async fn create_directory(
        &self,
        ctx: &RequestContext,
        input: m::CreateDirectoryRequest,
    ) -> Result<m::CreateDirectoryResult> {
        directories::create_directory(&self.dirs, ctx, input).await
    }

    async fn create_microsoft_ad(
        &self,
        ctx: &RequestContext,
        input: m::CreateMicrosoftADRequest,
    ) -> Result<m::CreateMicrosoftADResult> {
        directories::create_microsoft_ad(&self.dirs, ctx, input).await
    }

    async fn delete_directory(
        &self,
        ctx: &RequestContext,
        input: m::DeleteDirectoryRequest,
    ) -> Result<m::DeleteDirectoryResult> {
        directories::delete_directory(&self.dirs, ctx, input).await
    }

    async fn deregister_certificate(
        &self,
        ctx: &RequestContext,
        input: m::DeregisterCertificateRequest,
    ) -> Result<m::DeregisterCertificateResult> {
        certificates::deregister_certificate(&self.dirs, ctx, input).await
    }

    async fn describe_certificate(
        &self,
        ctx: &RequestContext,
        input: m::DescribeCertificateRequest,
    ) -> Result<m::DescribeCertificateResult> {
        certificates::describe_certificate(&self.dirs, ctx, input).await
    }

    async fn describe_client_authentication_settings(
        &self,
        ctx: &RequestContext,
        input: m::DescribeClientAuthenticationSettingsRequest,
    ) -> Result<m::DescribeClientAuthenticationSettingsResult> {
        client_auth::describe_client_authentication_settings(&self.dirs, ctx, input).await
    }

    async fn describe_directories(
        &self,
        ctx: &RequestContext,
        input: m::DescribeDirectoriesRequest,
    ) -> Result<m::DescribeDirectoriesResult> {
        directories::describe_directories(&self.dirs, ctx, input).await
    }

    async fn describe_ldaps_settings(
        &self,
        ctx: &RequestContext,
        input: m::DescribeLDAPSSettingsRequest,
    ) -> Result<m::DescribeLDAPSSettingsResult> {
        ldaps::describe_ldaps_settings(&self.dirs, ctx, input).await
    }

    async fn disable_client_authentication(
        &self,
        ctx: &RequestContext,
        input: m::DisableClientAuthenticationRequest,
    ) -> Result<m::DisableClientAuthenticationResult> {
        client_auth::disable_client_authentication(&self.dirs, ctx, input).await
    }

    async fn disable_ldaps(
        &self,
        ctx: &RequestContext,
        input: m::DisableLDAPSRequest,
    ) -> Result<m::DisableLDAPSResult> {
        ldaps::disable_ldaps(&self.dirs, ctx, input).await
    }

    async fn enable_client_authentication(
        &self,
        ctx: &RequestContext,
        input: m::EnableClientAuthenticationRequest,
    ) -> Result<m::EnableClientAuthenticationResult> {
        client_auth::enable_client_authentication(&self.dirs, ctx, input).await
    }

    async fn enable_ldaps(&self, ctx: &RequestContext, input: m::EnableLDAPSRequest) -> Result<m::EnableLDAPSResult> {
        ldaps::enable_ldaps(&self.dirs, ctx, input).await
    }

    async fn get_directory_limits(
        &self,
        ctx: &RequestContext,
        _input: m::GetDirectoryLimitsRequest,
    ) -> Result<m::GetDirectoryLimitsResult> {
        directories::get_directory_limits(&self.dirs, ctx).await
    }

    async fn list_certificates(
        &self,
        ctx: &RequestContext,
        input: m::ListCertificatesRequest,
    ) -> Result<m::ListCertificatesResult> {
        certificates::list_certificates(&self.dirs, ctx, input).await
    }

    async fn list_tags_for_resource(
        &self,
        ctx: &RequestContext,
        input: m::ListTagsForResourceRequest,
    ) -> Result<m::ListTagsForResourceResult> {
        tags::list_tags_for_resource(&self.dirs, ctx, input).await
    }

    async fn register_certificate(
        &self,
        ctx: &RequestContext,
        input: m::RegisterCertificateRequest,
    ) -> Result<m::RegisterCertificateResult> {
        certificates::register_certificate(&self.dirs, ctx, input).await
    }

    async fn remove_tags_from_resource(
        &self,
        ctx: &RequestContext,
        input: m::RemoveTagsFromResourceRequest,
    ) -> Result<m::RemoveTagsFromResourceResult> {
        tags::remove_tags_from_resource(&self.dirs, ctx, input).await
    }
}

/// A `Limit` member as a page size (`None` and 0 mean "the default").
pub(crate) fn limit(value: Option<i32>) -> Option<usize> {
    value.map(|v| usize::try_from(v).unwrap_or(0))
}

/// Unix milliseconds as a wire timestamp.
pub(crate) fn ts(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(ms)
}
