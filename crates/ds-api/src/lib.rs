//! Directory Service operations over the Carapace core.
//!
//! One file per operation family: [`directories`] (create, connect, describe, delete,
//! limits), [`tags`], [`certificates`] (register, describe, list, deregister), [`ldaps`]
//! (enable, disable, describe, and running the check), [`client_auth`] (smart-card
//! settings). Each maps the generated DTOs onto [`carapace_ds::Directories`], which
//! holds the rules; `carapace_checks::ldaps` is the network half of the LDAPS check.
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

pub mod certificates;
pub mod client_auth;
pub mod directories;
pub mod ldaps;
pub mod tags;

use carapace_ds::{Directories, DsError};
use carapace_kernel::Core;
use carapace_model::Timestamp;
use carapace_model::ds::OperationName as Op;
use carapace_model::ds::{ErrorCode, OperationName};
use carapace_model::schema::{Operation, Service};
use carapace_proto::{Output, RequestContext, ServiceHandler, WireError};

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
        &carapace_model::ds::SERVICE
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &'static Operation,
        input: serde_json::Value,
    ) -> Result<Output, WireError> {
        // The dispatcher only calls with operations the model table marks generated, which
        // are exactly `OperationName`'s.
        let Some(op) = OperationName::from_wire(operation.name) else {
            return Err(WireError::not_implemented("ds", operation.name));
        };
        match op {
            Op::CreateDirectory => directories::create_directory(self, ctx, input).await,
            Op::CreateMicrosoftAD => directories::create_microsoft_ad(self, ctx, input).await,
            Op::ConnectDirectory => directories::connect_directory(self, ctx, input).await,
            Op::DescribeDirectories => directories::describe_directories(self, ctx, input).await,
            Op::DeleteDirectory => directories::delete_directory(self, ctx, input).await,
            Op::GetDirectoryLimits => directories::get_directory_limits(self, ctx, input).await,
            Op::AddTagsToResource => tags::add_tags_to_resource(self, ctx, input).await,
            Op::RemoveTagsFromResource => tags::remove_tags_from_resource(self, ctx, input).await,
            Op::ListTagsForResource => tags::list_tags_for_resource(self, ctx, input).await,
            Op::RegisterCertificate => certificates::register_certificate(self, ctx, input).await,
            Op::DescribeCertificate => certificates::describe_certificate(self, ctx, input).await,
            Op::ListCertificates => certificates::list_certificates(self, ctx, input).await,
            Op::DeregisterCertificate => certificates::deregister_certificate(self, ctx, input).await,
            Op::EnableLDAPS => ldaps::enable_ldaps(self, ctx, input).await,
            Op::DisableLDAPS => ldaps::disable_ldaps(self, ctx, input).await,
            Op::DescribeLDAPSSettings => ldaps::describe_ldaps_settings(self, ctx, input).await,
            Op::EnableClientAuthentication => client_auth::enable_client_authentication(self, ctx, input).await,
            Op::DisableClientAuthentication => client_auth::disable_client_authentication(self, ctx, input).await,
            Op::DescribeClientAuthenticationSettings => {
                client_auth::describe_client_authentication_settings(self, ctx, input).await
            }
        }
    }
}

/// Which error a missing directory is: the directory operations (describe, delete, tags)
/// say `EntityDoesNotExistException`, the certificate, LDAPS and client authentication
/// operations `DirectoryDoesNotExistException` — as each operation's model lists.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Missing {
    Entity,
    Directory,
}

/// The one conversion from core errors to wire errors.
pub(crate) fn wire(ctx: &RequestContext, missing: Missing, err: DsError) -> WireError {
    let code = match &err {
        DsError::DirectoryNotFound(_) => match missing {
            Missing::Entity => ErrorCode::EntityDoesNotExistException,
            Missing::Directory => ErrorCode::DirectoryDoesNotExistException,
        },
        DsError::CertificateNotFound(_) => ErrorCode::CertificateDoesNotExistException,
        DsError::DirectoryLimitExceeded(_) => ErrorCode::DirectoryLimitExceededException,
        DsError::InvalidParameter(_) => ErrorCode::InvalidParameterException,
        DsError::InvalidCertificate(_) => ErrorCode::InvalidCertificateException,
        DsError::CertificateAlreadyExists(_) => ErrorCode::CertificateAlreadyExistsException,
        DsError::CertificateLimitExceeded(_) => ErrorCode::CertificateLimitExceededException,
        DsError::Unsupported(_) => ErrorCode::UnsupportedOperationException,
        DsError::DirectoryUnavailable(_) => ErrorCode::DirectoryUnavailableException,
        DsError::CertificateInUse(_) => ErrorCode::CertificateInUseException,
        DsError::NoAvailableCertificate(_) => ErrorCode::NoAvailableCertificateException,
        DsError::InvalidLdapsStatus(_) => ErrorCode::InvalidLDAPSStatusException,
        DsError::InvalidClientAuthStatus(_) => ErrorCode::InvalidClientAuthStatusException,
        DsError::InvalidNextToken => ErrorCode::InvalidNextTokenException,
        DsError::TagLimitExceeded(_) => ErrorCode::TagLimitExceededException,
        DsError::Store(_) | DsError::Internal(_) | DsError::Fault { .. } => {
            tracing::error!(request_id = %ctx.request_id, error = %err, "directory service fault");
            return WireError::internal();
        }
    };
    WireError::modelled(code, err.to_string())
}

/// A `Limit` member as a page size (`None` and 0 mean "the default").
pub(crate) fn limit(value: Option<i32>) -> Option<usize> {
    value.map(|v| usize::try_from(v).unwrap_or(0))
}

/// Unix milliseconds as a wire timestamp.
pub(crate) fn ts(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(ms)
}
