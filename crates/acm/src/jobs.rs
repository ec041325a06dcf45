//! ACM's background work, as one closed type.
//!
//! Requests, renewals, resends and approvals enqueue an [`AcmJob`] in the same batch that
//! writes the record, so a job exists exactly when there is work; [`AcmJobs`] runs them in
//! the generic [`carapace_kernel::jobs::Worker`]. Kinds and payloads are stored as they always were
//! (`acm.issue` with its arguments as JSON, ...), so queues written by earlier builds run.
//!
//! - [`AcmJob::Issue`]: sign the leaf once every domain is validated (in `--dev`, approve
//!   every domain first). Renewals use it too. See `issue.rs`.
//! - [`AcmJob::TimeOut`]: at the end of the validation window, move a still-pending request
//!   to `VALIDATION_TIMED_OUT`.
//! - [`AcmJob::Validate`]: check a DNS/HTTP request's records, again and again with a
//!   growing delay until they match or the window closes. See `validate.rs`.
//! - [`AcmJob::SendEmail`]: send one approval mail, retried with backoff while the relay
//!   is down.
//! - [`AcmJob::Renew`]: managed renewal of one issuance, from `renewal_days_before_expiry`
//!   before `NotAfter`. See `lifecycle.rs`.
//! - [`AcmJob::Expiry`]: the daily approaching-expiration events of one issuance, then
//!   `EXPIRED`. See `lifecycle.rs`.

use carapace_store::Write;
use serde::{Deserialize, Serialize};

use super::{AcmError, CertificateManager};
use carapace_kernel::jobs::{DecodeError, JobFailure, JobHandler, JobSpec, Outcome, decode_payload};

/// Every kind of ACM job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcmJob {
    /// Issue (or renew) a certificate.
    Issue(IssueJob),
    /// Time out a pending request.
    TimeOut(CertificateJob),
    /// Check a request's DNS (or HTTP) records.
    Validate(CertificateJob),
    /// Send one approval mail.
    SendEmail(SendEmailJob),
    /// Renew an issued certificate before it expires.
    Renew(LifecycleJob),
    /// Announce an approaching expiry, then expire.
    Expiry(LifecycleJob),
}

/// Arguments of a job about one issuance of a certificate: it stops once the certificate
/// has moved on to another leaf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleJob {
    /// The certificate's scope.
    pub scope: String,
    /// The certificate id.
    pub id: String,
    /// The issuance (leaf) the job is about.
    pub issuance: u32,
}

/// Arguments of [`AcmJob::Issue`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueJob {
    /// The certificate's scope.
    pub scope: String,
    /// The certificate id.
    pub id: String,
    /// The issuance this job produces (1 for the first leaf).
    pub issuance: u32,
    /// Emulator mode: approve every domain before issuing.
    pub approve_all: bool,
}

/// Arguments of a job about one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateJob {
    /// The certificate's scope.
    pub scope: String,
    /// The certificate id.
    pub id: String,
}

/// Arguments of [`AcmJob::SendEmail`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendEmailJob {
    /// The certificate's scope.
    pub scope: String,
    /// The certificate id.
    pub id: String,
    /// The domain (as on the certificate) the mail approves.
    pub domain: String,
    /// Which send this is (1 for the request's; resends use their request time).
    pub send: i64,
}

/// Stored kind of [`AcmJob::Issue`].
pub const ISSUE_KIND: &str = "acm.issue";
/// Stored kind of [`AcmJob::TimeOut`].
pub const TIMEOUT_KIND: &str = "acm.validation-timeout";
/// Stored kind of [`AcmJob::Validate`].
pub const VALIDATE_KIND: &str = "acm.validate";
/// Stored kind of [`AcmJob::SendEmail`].
pub const SEND_EMAIL_KIND: &str = "acm.send-email";
/// Stored kind of [`AcmJob::Renew`].
pub const RENEW_KIND: &str = "acm.renew";
/// Stored kind of [`AcmJob::Expiry`].
pub const EXPIRY_KIND: &str = "acm.expiry";

impl JobSpec for AcmJob {
    const PREFIX: &'static str = "acm.";

    fn kind(&self) -> &'static str {
        match self {
            Self::Issue(_) => ISSUE_KIND,
            Self::TimeOut(_) => TIMEOUT_KIND,
            Self::Validate(_) => VALIDATE_KIND,
            Self::SendEmail(_) => SEND_EMAIL_KIND,
            Self::Renew(_) => RENEW_KIND,
            Self::Expiry(_) => EXPIRY_KIND,
        }
    }

    /// The id names the work: the issuance produced, the request timed out or validated,
    /// the send made. So enqueuing the same work twice is a no-op.
    fn id(&self) -> String {
        let kind = self.kind();
        match self {
            Self::Issue(j) => format!("{kind}/{}/{}/{}", j.scope, j.id, j.issuance),
            Self::TimeOut(j) | Self::Validate(j) => format!("{kind}/{}/{}", j.scope, j.id),
            Self::SendEmail(j) => format!("{kind}/{}/{}/{}/{}", j.scope, j.id, j.domain, j.send),
            Self::Renew(j) | Self::Expiry(j) => format!("{kind}/{}/{}/{}", j.scope, j.id, j.issuance),
        }
    }

    fn payload(&self) -> serde_json::Result<Vec<u8>> {
        match self {
            Self::Issue(j) => serde_json::to_vec(j),
            Self::TimeOut(j) | Self::Validate(j) => serde_json::to_vec(j),
            Self::SendEmail(j) => serde_json::to_vec(j),
            Self::Renew(j) | Self::Expiry(j) => serde_json::to_vec(j),
        }
    }

    fn decode(kind: &str, payload: &[u8]) -> Result<Self, DecodeError> {
        match kind {
            ISSUE_KIND => decode_payload(payload).map(Self::Issue),
            TIMEOUT_KIND => decode_payload(payload).map(Self::TimeOut),
            VALIDATE_KIND => decode_payload(payload).map(Self::Validate),
            SEND_EMAIL_KIND => decode_payload(payload).map(Self::SendEmail),
            RENEW_KIND => decode_payload(payload).map(Self::Renew),
            EXPIRY_KIND => decode_payload(payload).map(Self::Expiry),
            other => Err(DecodeError::UnknownKind(other.to_owned())),
        }
    }
}

impl AcmJob {
    /// The queue write for this job, due at `run_at_ms`.
    pub(crate) fn enqueue(&self, run_at_ms: i64) -> Result<Write, AcmError> {
        self.to_new_job(run_at_ms).map(Write::Enqueue).map_err(AcmError::fault("encoding a job"))
    }
}

/// Runs ACM's jobs.
pub struct AcmJobs(pub CertificateManager);

#[async_trait::async_trait]
impl JobHandler for AcmJobs {
    type Job = AcmJob;

    fn service(&self) -> &'static str {
        "acm"
    }

    async fn run(&self, job: AcmJob, attempts: u32) -> Result<Outcome, JobFailure> {
        let m = &self.0;
        let outcome = match &job {
            AcmJob::Issue(j) => m.issue(j).await,
            AcmJob::TimeOut(j) => m.time_out(j).await,
            AcmJob::Validate(j) => m.validate(j, attempts).await,
            AcmJob::SendEmail(j) => m.send_email(j).await,
            AcmJob::Renew(j) => m.renew(j, attempts).await,
            AcmJob::Expiry(j) => m.expiry(j).await,
        };
        outcome.map_err(|e| JobFailure(e.chain()))
    }

    /// Mail waits for the relay as validation checks wait for records; the rest back off
    /// from one second.
    fn retry_delay_ms(&self, job: &AcmJob, failures: u32) -> i64 {
        match job {
            AcmJob::SendEmail(_) => self.0.retry_delay_ms(failures.saturating_sub(1)),
            _ => carapace_kernel::jobs::backoff_ms(1_000, failures),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_and_ids_name_the_work() {
        let issue = IssueJob { scope: "a/r".into(), id: "c".into(), issuance: 2, approve_all: false };
        let cert = CertificateJob { scope: "a/r".into(), id: "c".into() };
        let mail = SendEmailJob { scope: "a/r".into(), id: "c".into(), domain: "example.com".into(), send: 1 };
        let life = LifecycleJob { scope: "a/r".into(), id: "c".into(), issuance: 3 };
        let jobs = [
            (AcmJob::Renew(life.clone()), "acm.renew/a/r/c/3"),
            (AcmJob::Expiry(life), "acm.expiry/a/r/c/3"),
            (AcmJob::Issue(issue), "acm.issue/a/r/c/2"),
            (AcmJob::TimeOut(cert.clone()), "acm.validation-timeout/a/r/c"),
            (AcmJob::Validate(cert), "acm.validate/a/r/c"),
            (AcmJob::SendEmail(mail), "acm.send-email/a/r/c/example.com/1"),
        ];
        for (job, id) in jobs {
            let stored = job.to_new_job(0).unwrap();
            assert_eq!(stored.id, id);
            assert!(stored.kind.starts_with(AcmJob::PREFIX));
            assert_eq!(AcmJob::decode(&stored.kind, &stored.payload).unwrap(), job);
        }
        assert!(matches!(AcmJob::decode("acm.nope", b"{}"), Err(DecodeError::UnknownKind(k)) if k == "acm.nope"));
    }

    /// Queues written by earlier builds (payload = the bare arguments) still decode.
    #[test]
    fn payloads_of_earlier_builds_decode() {
        let old = br#"{"scope":"1/us-east-1","id":"x","issuance":1,"approve_all":true}"#;
        assert!(matches!(AcmJob::decode("acm.issue", old), Ok(AcmJob::Issue(j)) if j.approve_all && j.issuance == 1));
    }
}
