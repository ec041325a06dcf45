//! Directory Service's background work, as one closed type.
//!
//! `EnableLDAPS` writes `Enabling` and an [`DsJob::LdapsCheck`] in one batch, so the check
//! runs even if the server restarts before it is due (or on another node). The job names
//! its check id: a check made stale by `DisableLDAPS` or a newer `EnableLDAPS` finds
//! nothing to do ([`super::Directories::ldaps_plan`] answers `None`). The network half — the
//! probe of the customer's domain controllers — is the DS crate's handler.

use serde::{Deserialize, Serialize};

use carapace_kernel::jobs::{DecodeError, JobSpec, decode_payload};

/// Every kind of Directory Service job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DsJob {
    /// Probe a directory's LDAPS and record `Enabled` or `EnableFailed`.
    LdapsCheck(LdapsCheckJob),
}

/// Arguments of [`DsJob::LdapsCheck`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LdapsCheckJob {
    /// The directory's scope.
    pub scope: String,
    /// The directory.
    pub directory_id: String,
    /// The check `EnableLDAPS` started.
    pub check_id: String,
}

/// Stored kind of [`DsJob::LdapsCheck`].
pub const LDAPS_CHECK_KIND: &str = "ds.ldaps-check";

impl JobSpec for DsJob {
    const PREFIX: &'static str = "ds.";

    fn kind(&self) -> &'static str {
        match self {
            Self::LdapsCheck(_) => LDAPS_CHECK_KIND,
        }
    }

    fn id(&self) -> String {
        match self {
            Self::LdapsCheck(j) => format!("{LDAPS_CHECK_KIND}/{}/{}/{}", j.scope, j.directory_id, j.check_id),
        }
    }

    fn payload(&self) -> serde_json::Result<Vec<u8>> {
        match self {
            Self::LdapsCheck(j) => serde_json::to_vec(j),
        }
    }

    fn decode(kind: &str, payload: &[u8]) -> Result<Self, DecodeError> {
        match kind {
            LDAPS_CHECK_KIND => decode_payload(payload).map(Self::LdapsCheck),
            other => Err(DecodeError::UnknownKind(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let job =
            DsJob::LdapsCheck(LdapsCheckJob { scope: "a/r".into(), directory_id: "d-1".into(), check_id: "c".into() });
        let stored = job.to_new_job(7).unwrap();
        assert_eq!(stored.id, "ds.ldaps-check/a/r/d-1/c");
        assert_eq!(DsJob::decode(&stored.kind, &stored.payload).unwrap(), job);
    }
}
