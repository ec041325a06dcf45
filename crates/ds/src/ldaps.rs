//! Client LDAPS: `EnableLDAPS`, `DisableLDAPS`, `DescribeLDAPSSettings`, and the check
//! they start (its plan out, its outcome back).

use carapace_store::Write;

use super::machine::{CertificateState, LdapsEvent, LdapsStatus};
use super::records::{CertificateKind, DirectoryKind, DirectoryRecord, LDAPS_CHECK_DELAY_MS};
use super::{
    Directories, DsError, LdapsFailure, LdapsPlan, Result, directory_row, jobs, random_hex, require_active, retry,
};

/// An LDAPS check that is due: who runs it reports back with this id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCheck {
    /// The check's id.
    pub check_id: String,
    /// Earliest time to run it, Unix milliseconds.
    pub due_ms: i64,
}

/// `DescribeLDAPSSettings` for one directory.
#[derive(Debug, Clone)]
pub struct LdapsView {
    /// Status.
    pub status: LdapsStatus,
    /// `LDAPSStatusReason`.
    pub reason: Option<String>,
    /// `LastUpdatedDateTime`, Unix milliseconds.
    pub updated_ms: Option<i64>,
    /// Set while `Enabling`: the check the status waits for.
    pub pending: Option<PendingCheck>,
}

impl Directories {
    /// `EnableLDAPS`: moves to `Enabling` and returns the check to run.
    pub async fn enable_ldaps(&self, scope: &str, directory_id: &str) -> Result<PendingCheck> {
        retry(|| async {
            let now = self.now();
            let (mut directory, version) = self.directory(scope, directory_id).await?;
            require_ldaps_supported(&directory)?;
            require_active(&directory, now)?;
            let next = directory.ldaps.status.on(LdapsEvent::EnableRequested).map_err(|_| {
                DsError::InvalidLdapsStatus(format!(
                    "LDAPS is already {} for directory {directory_id}.",
                    directory.ldaps.status.as_str().to_lowercase()
                ))
            })?;
            let registered = self
                .live_certificates(scope, directory_id, now)
                .await?
                .into_iter()
                .any(|c| c.record.kind == CertificateKind::ClientLdaps && c.state == CertificateState::Registered);
            if !registered {
                return Err(DsError::NoAvailableCertificate(format!(
                    "Directory {directory_id} has no registered ClientLDAPS certificate."
                )));
            }
            let check = PendingCheck { check_id: random_hex(8)?, due_ms: now + LDAPS_CHECK_DELAY_MS };
            directory.ldaps.status = next;
            directory.ldaps.reason = None;
            directory.ldaps.updated_ms = Some(now);
            directory.ldaps.check_id = Some(check.check_id.clone());
            directory.ldaps.check_due_ms = check.due_ms;
            // The check is a job written with the status: a restart (or another node) runs it.
            let job = jobs::DsJob::LdapsCheck(jobs::LdapsCheckJob {
                scope: scope.to_owned(),
                directory_id: directory_id.to_owned(),
                check_id: check.check_id.clone(),
            });
            let enqueue = carapace_kernel::jobs::JobSpec::to_new_job(&job, check.due_ms)
                .map_err(|e| DsError::fault("the LDAPS check job does not encode", e))?;
            let row = directory_row(scope, &directory, now)?;
            self.core.store.apply(vec![Write::Put { row, expect: Some(version) }, Write::Enqueue(enqueue)]).await?;
            self.core.wake_workers();
            Ok(check)
        })
        .await
    }

    /// `DisableLDAPS`.
    pub async fn disable_ldaps(&self, scope: &str, directory_id: &str) -> Result<()> {
        retry(|| async {
            let now = self.now();
            let (mut directory, version) = self.directory(scope, directory_id).await?;
            require_ldaps_supported(&directory)?;
            require_active(&directory, now)?;
            let next = directory.ldaps.status.on(LdapsEvent::DisableRequested).map_err(|_| {
                DsError::InvalidLdapsStatus(format!("LDAPS is already disabled for directory {directory_id}."))
            })?;
            directory.ldaps.status = next;
            directory.ldaps.reason = None;
            directory.ldaps.updated_ms = Some(now);
            directory.ldaps.check_id = None;
            self.put_directory(scope, &directory, version).await
        })
        .await
    }

    /// `DescribeLDAPSSettings`.
    pub async fn describe_ldaps(&self, scope: &str, directory_id: &str) -> Result<LdapsView> {
        let (directory, _) = self.directory(scope, directory_id).await?;
        require_ldaps_supported(&directory)?;
        let ldaps = directory.ldaps;
        let pending = match (ldaps.status, ldaps.check_id) {
            (LdapsStatus::Enabling, Some(check_id)) => Some(PendingCheck { check_id, due_ms: ldaps.check_due_ms }),
            _ => None,
        };
        Ok(LdapsView { status: ldaps.status, reason: ldaps.reason, updated_ms: ldaps.updated_ms, pending })
    }

    /// What check `check_id` must verify, or `None` when it is stale (the directory is
    /// gone, or LDAPS was disabled or re-enabled since).
    pub async fn ldaps_plan(&self, scope: &str, directory_id: &str, check_id: &str) -> Result<Option<LdapsPlan>> {
        let now = self.now();
        let directory = match self.directory(scope, directory_id).await {
            Ok((d, _)) => d,
            Err(DsError::DirectoryNotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        if directory.ldaps.status != LdapsStatus::Enabling || directory.ldaps.check_id.as_deref() != Some(check_id) {
            return Ok(None);
        }
        let mut anchors = Vec::new();
        for c in self.live_certificates(scope, directory_id, now).await? {
            if c.record.kind == CertificateKind::ClientLdaps && c.state == CertificateState::Registered {
                let block = pem::parse(&c.record.pem)
                    .map_err(|e| DsError::fault("a registered certificate's PEM does not parse", e))?;
                anchors.push(block.into_contents());
            }
        }
        let targets = match directory.kind {
            DirectoryKind::AdConnector => directory
                .customer_dns_ips
                .iter()
                .chain(&directory.customer_dns_ips_v6)
                .filter_map(|ip| ip.parse().ok())
                .collect(),
            DirectoryKind::MicrosoftAd | DirectoryKind::SimpleAd => Vec::new(),
        };
        Ok(Some(LdapsPlan { targets, anchors }))
    }

    /// Records the result of check `check_id`. Returns whether it was applied (false when
    /// the check is stale).
    pub async fn finish_ldaps_check(
        &self,
        scope: &str,
        directory_id: &str,
        check_id: &str,
        outcome: std::result::Result<(), LdapsFailure>,
    ) -> Result<bool> {
        retry(|| async {
            let now = self.now();
            let (mut directory, version) = match self.directory(scope, directory_id).await {
                Ok(found) => found,
                Err(DsError::DirectoryNotFound(_)) => return Ok(false),
                Err(e) => return Err(e),
            };
            if directory.ldaps.check_id.as_deref() != Some(check_id) {
                return Ok(false);
            }
            let event = if outcome.is_ok() { LdapsEvent::CheckPassed } else { LdapsEvent::CheckFailed };
            let Ok(next) = directory.ldaps.status.on(event) else { return Ok(false) };
            directory.ldaps.status = next;
            directory.ldaps.reason = outcome.as_ref().err().map(ToString::to_string);
            directory.ldaps.updated_ms = Some(now);
            directory.ldaps.check_id = None;
            self.put_directory(scope, &directory, version).await?;
            Ok(true)
        })
        .await
    }
}

fn require_ldaps_supported(directory: &DirectoryRecord) -> Result<()> {
    if CertificateKind::ClientLdaps.supported_on(directory.kind) {
        Ok(())
    } else {
        Err(DsError::Unsupported(format!("LDAPS is not supported for {} directories.", directory.kind.as_str())))
    }
}
