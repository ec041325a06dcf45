//! EnableLDAPS, DisableLDAPS, DescribeLDAPSSettings, and the task that runs a check.
//!
//! `EnableLDAPS` stores `Enabling` with a fresh check id and, in the same batch, a job
//! ([`carapace_ds::jobs::DsJob`]) due a moment later. [`LdapsChecks`] runs it in the
//! generic worker: it asks the core what to verify ([`Directories::ldaps_plan`]), probes the
//! customer's domain controllers ([`carapace_checks::ldaps::check`]) and reports the outcome
//! ([`Directories::finish_ldaps_check`]). The outcome is dropped if LDAPS was disabled or
//! re-enabled meanwhile. A restart mid-check re-runs the job after its lease, by itself.

use carapace_checks::ldaps::{self, ProbeSettings};
use carapace_ds::jobs::DsJob;
use carapace_ds::machine::LdapsStatus as Status;
use carapace_ds::{Directories, DsError};
use carapace_kernel::jobs::{JobFailure, JobHandler, Outcome};
use carapace_model::ds::{
    DescribeLDAPSSettingsRequest, DescribeLDAPSSettingsResult, DisableLDAPSRequest, DisableLDAPSResult,
    EnableLDAPSRequest, EnableLDAPSResult, LDAPSSettingInfo, LDAPSStatus,
};
use carapace_proto::RequestContext;

use crate::error::Result;
use crate::ts;

/// `EnableLDAPS` (`Type` is `Client`, the only value the model has).
pub(crate) async fn enable_ldaps(
    dirs: &Directories,
    ctx: &RequestContext,
    req: EnableLDAPSRequest,
) -> Result<EnableLDAPSResult> {
    let scope = ctx.scope();
    dirs.enable_ldaps(&scope, &req.directory_id).await?;
    Ok(EnableLDAPSResult {})
}

/// `DisableLDAPS`.
pub(crate) async fn disable_ldaps(
    dirs: &Directories,
    ctx: &RequestContext,
    req: DisableLDAPSRequest,
) -> Result<DisableLDAPSResult> {
    dirs.disable_ldaps(&ctx.scope(), &req.directory_id).await?;
    Ok(DisableLDAPSResult {})
}

/// `DescribeLDAPSSettings`: one entry, for `Client` LDAPS. Carapace never pages this
/// one-entry list, so any `NextToken` is one it did not issue.
pub(crate) async fn describe_ldaps_settings(
    dirs: &Directories,
    ctx: &RequestContext,
    req: DescribeLDAPSSettingsRequest,
) -> Result<DescribeLDAPSSettingsResult> {
    let scope = ctx.scope();
    let view = dirs.describe_ldaps(&scope, &req.directory_id).await?;
    if req.next_token.is_some() {
        return Err(DsError::InvalidNextToken.into());
    }
    Ok(DescribeLDAPSSettingsResult {
        ldaps_settings_info: Some(vec![LDAPSSettingInfo {
            ldaps_status: Some(match view.status {
                Status::Disabled => LDAPSStatus::Disabled,
                Status::Enabling => LDAPSStatus::Enabling,
                Status::Enabled => LDAPSStatus::Enabled,
                Status::EnableFailed => LDAPSStatus::EnableFailed,
            }),
            ldaps_status_reason: view.reason,
            last_updated_date_time: view.updated_ms.map(ts),
        }]),
        next_token: None,
    })
}

/// Runs Directory Service's jobs (LDAPS checks) in the generic worker.
pub struct LdapsChecks {
    dirs: Directories,
    settings: ProbeSettings,
}

impl LdapsChecks {
    /// The checks of the directories in `core`'s store, probing as `settings` say.
    pub fn new(core: carapace_kernel::Core, settings: ProbeSettings) -> Self {
        Self { dirs: Directories::new(core), settings }
    }
}

#[async_trait::async_trait]
impl JobHandler for LdapsChecks {
    type Job = DsJob;

    fn service(&self) -> &'static str {
        "ds"
    }

    async fn run(&self, job: DsJob, _attempts: u32) -> Result<Outcome, JobFailure> {
        let DsJob::LdapsCheck(check) = job;
        let (scope, directory_id) = (&check.scope, &check.directory_id);
        let fail = |e: carapace_ds::DsError| JobFailure(e.to_string());
        let Some(plan) = self.dirs.ldaps_plan(scope, directory_id, &check.check_id).await.map_err(fail)? else {
            return Ok(Outcome::Finished); // disabled or re-enabled since: stale
        };
        let outcome = ldaps::check(&plan, &self.settings).await;
        match &outcome {
            Ok(()) => tracing::info!(directory = %directory_id, "LDAPS enabled"),
            Err(failure) => tracing::info!(directory = %directory_id, reason = %failure, "LDAPS enable failed"),
        }
        self.dirs.finish_ldaps_check(scope, directory_id, &check.check_id, outcome).await.map_err(fail)?;
        Ok(Outcome::Finished)
    }
}
