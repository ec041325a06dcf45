//! AWS Private CA's background work, as one closed type, and its handler.
//!
//! IssueCertificate writes the pending certificate and an [`PcaJob::Issue`] in one batch, so
//! the certificate is signed even if the server restarts first (or on another node). Changes
//! that alter a CA's CRL write a [`PcaJob::PublishCrl`] with them.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use carapace_kernel::jobs::{DecodeError, JobFailure, JobHandler, JobSpec, Outcome, decode_payload};

use crate::PrivateCas;

/// Every kind of AWS Private CA job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PcaJob {
    /// Sign a pending certificate.
    Issue(IssueJob),
    /// Publish a CA's CRL.
    PublishCrl(CrlJob),
}

/// Arguments of [`PcaJob::Issue`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueJob {
    /// The CA's scope.
    pub scope: String,
    /// The CA.
    pub ca_id: String,
    /// The certificate's serial (its row id within the CA).
    pub serial: String,
}

/// Arguments of [`PcaJob::PublishCrl`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrlJob {
    /// The CA's scope.
    pub scope: String,
    /// The CA.
    pub ca_id: String,
    /// Makes each publication its own job: one queued while another runs must still run.
    pub nonce: String,
}

/// Stored kind of [`PcaJob::Issue`].
pub const ISSUE_KIND: &str = "pca.issue";
/// Stored kind of [`PcaJob::PublishCrl`].
pub const CRL_KIND: &str = "pca.crl";

impl JobSpec for PcaJob {
    const PREFIX: &'static str = "pca.";

    fn kind(&self) -> &'static str {
        match self {
            Self::Issue(_) => ISSUE_KIND,
            Self::PublishCrl(_) => CRL_KIND,
        }
    }

    fn id(&self) -> String {
        match self {
            Self::Issue(j) => format!("{ISSUE_KIND}/{}/{}/{}", j.scope, j.ca_id, j.serial),
            Self::PublishCrl(j) => format!("{CRL_KIND}/{}/{}/{}", j.scope, j.ca_id, j.nonce),
        }
    }

    fn payload(&self) -> serde_json::Result<Vec<u8>> {
        match self {
            Self::Issue(j) => serde_json::to_vec(j),
            Self::PublishCrl(j) => serde_json::to_vec(j),
        }
    }

    fn decode(kind: &str, payload: &[u8]) -> Result<Self, DecodeError> {
        match kind {
            ISSUE_KIND => decode_payload(payload).map(Self::Issue),
            CRL_KIND => decode_payload(payload).map(Self::PublishCrl),
            other => Err(DecodeError::UnknownKind(other.to_owned())),
        }
    }
}

/// Runs AWS Private CA's jobs.
pub struct PcaJobs(pub PrivateCas);

#[async_trait]
impl JobHandler for PcaJobs {
    type Job = PcaJob;

    fn service(&self) -> &'static str {
        "acm-pca"
    }

    async fn run(&self, job: PcaJob, _attempts: u32) -> Result<Outcome, JobFailure> {
        let failed = |e: crate::PcaError| JobFailure(carapace_kernel::error::chain(&e));
        match job {
            PcaJob::Issue(j) => self.0.sign_pending(&j.scope, &j.ca_id, &j.serial).await.map_err(failed)?,
            PcaJob::PublishCrl(j) => {
                self.0.publish_crl(&j.scope, &j.ca_id).await.map_err(failed)?;
            }
        }
        Ok(Outcome::Finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let job = PcaJob::Issue(IssueJob { scope: "a/r".into(), ca_id: "c".into(), serial: "0a".into() });
        let stored = job.to_new_job(7).unwrap();
        assert_eq!(stored.id, "pca.issue/a/r/c/0a");
        assert_eq!(PcaJob::decode(&stored.kind, &stored.payload).unwrap(), job);
    }
}
