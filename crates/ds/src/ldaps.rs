//! EnableLDAPS, DisableLDAPS, DescribeLDAPSSettings, and the task that runs a check.
//!
//! `EnableLDAPS` stores `Enabling` with a fresh check id and spawns a task: after
//! a short delay it asks the core what to verify ([`Directories::ldaps_plan`]), probes the
//! customer's domain controllers ([`crate::probe`]) and reports the outcome
//! ([`Directories::finish_ldaps_check`]). The outcome is dropped if LDAPS was disabled or
//! re-enabled meanwhile. `DescribeLDAPSSettings` restarts the task for a directory still
//! `Enabling` after a restart (the check id is in the store; the task was in memory).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use carapace_core::Clock;
use carapace_core::ds::machine::LdapsStatus as Status;
use carapace_core::ds::{Directories, PendingCheck};
use carapace_model::ds::{
    DescribeLDAPSSettingsRequest, DescribeLDAPSSettingsResult, DisableLDAPSRequest, DisableLDAPSResult,
    EnableLDAPSRequest, EnableLDAPSResult, LDAPSSettingInfo, LDAPSStatus,
};
use carapace_proto::{Output, RequestContext, WireError, decode_input, encode_output};
use serde_json::Value;

use crate::probe::{self, ProbeSettings};
use crate::{Ds, Missing, ts, wire};

/// Longest a check task waits for its due time (a guard against a clock far ahead).
const MAX_WAIT: Duration = Duration::from_secs(5);

/// `EnableLDAPS` (`Type` is `Client`, the only value the model has).
pub async fn enable_ldaps(ds: &Ds, ctx: &RequestContext, input: Value) -> Result<Output, WireError> {
    let req: EnableLDAPSRequest = decode_input(input)?;
    let scope = ctx.scope();
    let check = ds.dirs.enable_ldaps(&scope, &req.directory_id).await.map_err(|e| wire(ctx, Missing::Directory, e))?;
    ds.checks.ensure_running(scope, req.directory_id, check);
    encode_output(EnableLDAPSResult {})
}

/// `DisableLDAPS`.
pub async fn disable_ldaps(ds: &Ds, ctx: &RequestContext, input: Value) -> Result<Output, WireError> {
    let req: DisableLDAPSRequest = decode_input(input)?;
    ds.dirs.disable_ldaps(&ctx.scope(), &req.directory_id).await.map_err(|e| wire(ctx, Missing::Directory, e))?;
    encode_output(DisableLDAPSResult {})
}

/// `DescribeLDAPSSettings`: one entry, for `Client` LDAPS. Carapace never pages this
/// one-entry list, so any `NextToken` is one it did not issue.
pub async fn describe_ldaps_settings(ds: &Ds, ctx: &RequestContext, input: Value) -> Result<Output, WireError> {
    let req: DescribeLDAPSSettingsRequest = decode_input(input)?;
    let scope = ctx.scope();
    let view = ds.dirs.describe_ldaps(&scope, &req.directory_id).await.map_err(|e| wire(ctx, Missing::Directory, e))?;
    if req.next_token.is_some() {
        return Err(WireError::client("InvalidNextTokenException", "The NextToken value is not valid."));
    }
    if let Some(pending) = view.pending {
        ds.checks.ensure_running(scope, req.directory_id, pending);
    }
    encode_output(DescribeLDAPSSettingsResult {
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

/// Runs LDAPS checks in the background, at most one task per check id in this process.
#[derive(Clone)]
pub(crate) struct Checks {
    dirs: Directories,
    clock: Arc<dyn Clock>,
    settings: Arc<ProbeSettings>,
    in_flight: Arc<Mutex<HashSet<String>>>,
}

impl Checks {
    pub(crate) fn new(dirs: Directories, clock: Arc<dyn Clock>, settings: ProbeSettings) -> Self {
        Self { dirs, clock, settings: Arc::new(settings), in_flight: Arc::default() }
    }

    /// Spawns the task for `check` unless one is already running here.
    pub(crate) fn ensure_running(&self, scope: String, directory_id: String, check: PendingCheck) {
        if !self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(check.check_id.clone()) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let wait = u64::try_from(check.due_ms - this.clock.now_ms()).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(wait).min(MAX_WAIT)).await;
            if let Err(e) = this.run(&scope, &directory_id, &check.check_id).await {
                // The status stays Enabling; the next DescribeLDAPSSettings tries again.
                tracing::error!(directory = %directory_id, error = %e, "LDAPS check could not complete");
            }
            this.in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&check.check_id);
        });
    }

    async fn run(&self, scope: &str, directory_id: &str, check_id: &str) -> Result<(), carapace_core::ds::DsError> {
        let Some(plan) = self.dirs.ldaps_plan(scope, directory_id, check_id).await? else {
            return Ok(());
        };
        let outcome = probe::check(&plan, &self.settings).await;
        match &outcome {
            Ok(()) => tracing::info!(directory = %directory_id, "LDAPS enabled"),
            Err(failure) => tracing::info!(directory = %directory_id, reason = %failure, "LDAPS enable failed"),
        }
        self.dirs.finish_ldaps_check(scope, directory_id, check_id, outcome).await?;
        Ok(())
    }
}
