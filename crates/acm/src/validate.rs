//! Real domain validation (outside `--dev`): the jobs that check DNS and HTTP records, send
//! approval mail, and accept approvals.
//!
//! Jobs (see [`super::jobs::AcmJob`]):
//! - `AcmJob::Validate` — one per pending DNS/HTTP request. Each run looks every pending domain
//!   up (through the manager's [`crate::ownership::DnsChecker`]; the real one uses a fresh,
//!   cache-less resolver: see `carapace_checks::dns::Resolver`), marks the domains
//!   whose record matches `SUCCESS` — after checking CAA, which may fail the request with
//!   `CAA_ERROR` — and, when all have succeeded, enqueues issuance in the same batch. Until
//!   then it runs again with a growing delay (`validation_retry_min_ms` doubling up to
//!   `validation_retry_max_ms`). It stops at the validation deadline; the timeout job then
//!   moves the request to `VALIDATION_TIMED_OUT`.
//! - `AcmJob::SendEmail` — one per (certificate, domain, send). It stores the approval token's
//!   hash, sends the mail, then records the send (row [`EMAIL_SENT_KIND`]). A relay that is
//!   down fails the run, and the job is retried with backoff: the mail is never lost. The
//!   token is derived from the send (HMAC under the server secret), so a send repeated after
//!   a crash carries the same token and Message-ID as the first (see
//!   [`crate::ownership::email`] and [`carapace_checks::email`]).
//!
//! Approval ([`super::CertificateManager::approve`]) marks the domain `SUCCESS`, consumes the
//! token and, for the last domain, enqueues issuance — one batch.

use carapace_store::{Key, Row, Write};
use serde::{Deserialize, Serialize};

use super::jobs::{AcmJob, CertificateJob, IssueJob, SendEmailJob};
use super::record::{CertificateRecord, DomainValidation, FailureReason, ValidationMethod};
use super::state::{DomainStatus, Event, Status, transition};
use super::{AcmError, CertificateManager, Owner, record_put};
use crate::ownership::email::{self, TOKEN_KIND, approval_addresses};
use crate::ownership::{ApprovalMail, CnameCheck};
use carapace_kernel::jobs::Outcome;

/// Row kind recording a finished send (scope = certificate scope, id = `<cert>/<domain>/<send>`).
pub const EMAIL_SENT_KIND: &str = "acm.email-sent";

/// A stored approval token (row [`TOKEN_KIND`], id = hash of the token).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenRow {
    scope: String,
    id: String,
    domain: String,
    expires_ms: i64,
}

/// What the approval page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalView {
    /// The domain being approved.
    pub domain: String,
    /// The account that requested the certificate.
    pub account: String,
    /// The certificate ARN.
    pub arn: String,
    /// Every name on the certificate.
    pub sans: Vec<String>,
}

/// What one round of [`CertificateManager::check_domains`] found.
pub(crate) struct DomainChecks {
    /// Domains whose record (or redirect) matched and whose CAA allows Carapace.
    pub validated: Vec<String>,
    /// A domain whose CAA records forbid Carapace, if one was met.
    pub caa_denied: Option<String>,
}

/// The validation of `domain` that is waiting for its owner (an approval mail), and when it
/// gives up: the request's while it is pending, or a managed renewal's under way.
fn awaiting_owner<'a>(record: &'a CertificateRecord, domain: &str) -> Option<(&'a DomainValidation, i64)> {
    let pending = |domains: &'a [DomainValidation]| {
        domains.iter().find(|d| d.domain_name == domain && d.status == DomainStatus::PendingValidation)
    };
    if record.status == Status::PendingValidation {
        return pending(&record.domains).map(|d| (d, record.validation_deadline_ms.unwrap_or(i64::MAX)));
    }
    let renewal = record.renewal.as_ref().filter(|r| r.in_progress())?;
    pending(&renewal.domains).zip(renewal.deadline_ms)
}

/// The jobs a new request (outside `--dev`) starts with.
pub(crate) fn initial_jobs(
    scope: &str,
    id: &str,
    method: ValidationMethod,
    domains: &[String],
    now_ms: i64,
) -> Result<Vec<Write>, AcmError> {
    match method {
        ValidationMethod::Dns | ValidationMethod::Http => {
            let job = AcmJob::Validate(CertificateJob { scope: scope.to_owned(), id: id.to_owned() });
            Ok(vec![job.enqueue(now_ms)?])
        }
        ValidationMethod::Email => domains.iter().map(|d| send_email_job(scope, id, d, 1).enqueue(now_ms)).collect(),
    }
}

/// The job sending approval mail number `send` for `domain`.
pub(crate) fn send_email_job(scope: &str, id: &str, domain: &str, send: i64) -> AcmJob {
    AcmJob::SendEmail(SendEmailJob { scope: scope.to_owned(), id: id.to_owned(), domain: domain.to_owned(), send })
}

impl CertificateManager {
    /// The delay before check number `attempts + 1`: fast at first, then slower.
    pub(crate) fn retry_delay_ms(&self, attempts: u32) -> i64 {
        let acm = &*self.settings;
        let delay = acm.validation_retry_min_ms.saturating_mul(1u64 << attempts.min(30));
        delay.min(acm.validation_retry_max_ms.max(acm.validation_retry_min_ms)) as i64
    }

    /// Checks every pending DNS or HTTP domain of `domains` once (domains sharing a record
    /// are looked up once), then CAA for those that matched. Email domains are validated by
    /// approval, not here.
    pub(crate) async fn check_domains(
        &self,
        owner: &Owner,
        arn: &str,
        domains: &[DomainValidation],
    ) -> Result<DomainChecks, AcmError> {
        let checkers = self.checkers()?;
        let (dns, http) = (&checkers.dns, &checkers.http);
        let issuer = self.settings.issuer_domain.clone();
        let mut validated = Vec::new();
        let mut caa_denied = None;
        let mut checked: Vec<(String, bool)> = Vec::new(); // record name → matched (wildcards share)
        for d in domains {
            if d.status != DomainStatus::PendingValidation {
                continue;
            }
            let matched = match (d.method, &d.resource_record, &d.http_redirect) {
                (Some(ValidationMethod::Dns), Some(rr), _) => {
                    if let Some((_, m)) = checked.iter().find(|(n, _)| *n == rr.name) {
                        *m
                    } else {
                        let m = match dns.check_cname(&rr.name, &rr.value).await {
                            Ok(CnameCheck::Match) => true,
                            Ok(CnameCheck::Missing) => false,
                            Ok(CnameCheck::Mismatch(found)) => {
                                tracing::debug!(%arn, name = %rr.name, %found, "validation CNAME has the wrong value");
                                false
                            }
                            Err(e) => {
                                tracing::info!(%arn, error = %e, "validation lookup failed; will retry");
                                false
                            }
                        };
                        checked.push((rr.name.clone(), m));
                        m
                    }
                }
                (Some(ValidationMethod::Http), _, Some(redirect)) => {
                    let secret = self.secret().await?;
                    let expected = secret.http_content(&owner.account, &d.domain_name);
                    match http.check(&redirect.redirect_from, &expected).await {
                        Ok(m) => m,
                        Err(e) => {
                            tracing::debug!(%arn, error = %e, "HTTP validation fetch failed; will retry");
                            false
                        }
                    }
                }
                _ => false,
            };
            if !matched {
                continue;
            }
            match dns.caa_allows(&d.domain_name, &issuer).await {
                Ok(true) => validated.push(d.domain_name.clone()),
                Ok(false) => {
                    caa_denied = Some(d.domain_name.clone());
                    break;
                }
                Err(e) => tracing::info!(%arn, error = %e, "CAA lookup failed; will retry"),
            }
        }
        Ok(DomainChecks { validated, caa_denied })
    }

    /// Runs one round of an `AcmJob::Validate`.
    pub(crate) async fn validate(&self, job: &CertificateJob, attempts: u32) -> Result<Outcome, AcmError> {
        let Some(loaded) = self.load_id(&job.scope, &job.id).await? else {
            return Ok(Outcome::Finished);
        };
        let now = self.now_ms();
        let record = &loaded.record;
        if record.status != Status::PendingValidation || record.validation_deadline_ms.is_some_and(|d| now >= d) {
            return Ok(Outcome::Finished);
        }
        let owner = Owner::from_scope(&job.scope).ok_or_else(|| AcmError::internal("bad scope"))?;
        let DomainChecks { validated, caa_denied } = self.check_domains(&owner, &record.arn, &record.domains).await?;

        if validated.is_empty() && caa_denied.is_none() {
            return Ok(Outcome::RetryAt(now + self.retry_delay_ms(attempts)));
        }
        let mut loaded = loaded;
        let record = &mut loaded.record;
        let mut writes = Vec::new();
        let done;
        if let Some(domain) = &caa_denied {
            record.status = transition(record.status, Event::Fail).map_err(AcmError::fault("failing a validation"))?;
            record.failure_reason = Some(FailureReason::CaaError);
            for d in &mut record.domains {
                if d.domain_name == *domain {
                    d.status = DomainStatus::Failed;
                }
            }
            tracing::info!(arn = %record.arn, %domain, "CAA forbids issuance; request failed");
            done = true;
        } else {
            for d in &mut record.domains {
                if validated.contains(&d.domain_name) {
                    d.status = DomainStatus::Success;
                }
            }
            done = record.domains.iter().all(|d| d.status == DomainStatus::Success);
            if done {
                let job = AcmJob::Issue(IssueJob {
                    scope: job.scope.clone(),
                    id: job.id.clone(),
                    issuance: record.issuance + 1,
                    approve_all: false,
                });
                writes.push(job.enqueue(now)?);
            }
        }
        writes.insert(0, record_put(&job.scope, &loaded, Some(loaded.version))?);
        match self.core.store.apply(writes).await {
            Ok(_) => {
                if done {
                    self.core.wake_workers();
                    Ok(Outcome::Finished)
                } else {
                    Ok(Outcome::RetryAt(now + self.retry_delay_ms(attempts)))
                }
            }
            // Changed meanwhile (tags, a resend): check again at once.
            Err(carapace_store::Error::Conflict(_)) => Ok(Outcome::RetryAt(now)),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs an `AcmJob::SendEmail`.
    pub(crate) async fn send_email(&self, job: &SendEmailJob) -> Result<Outcome, AcmError> {
        let sent_key = Key::new(EMAIL_SENT_KIND, &job.scope, format!("{}/{}/{}", job.id, job.domain, job.send));
        if self.core.store.get(&sent_key).await?.is_some() {
            return Ok(Outcome::Finished); // sent before a crash; only the job's removal was lost
        }
        let Some(loaded) = self.load_id(&job.scope, &job.id).await? else {
            return Ok(Outcome::Finished);
        };
        let record = &loaded.record;
        let now = self.now_ms();
        let Some((d, deadline)) = awaiting_owner(record, &job.domain) else {
            return Ok(Outcome::Finished);
        };
        if now >= deadline {
            return Ok(Outcome::Finished);
        }
        let owner = Owner::from_scope(&job.scope).ok_or_else(|| AcmError::internal("bad scope"))?;
        let send_id = format!("{}/{}/{}/{}", job.scope, job.id, job.domain, job.send);
        let token = self.secret().await?.approval_token(&send_id);
        let hash = email::token_hash(&token);

        // The token first (so the link works the moment the mail arrives); an existing row
        // means a crashed earlier run stored it already.
        let token_row =
            TokenRow { scope: job.scope.clone(), id: job.id.clone(), domain: job.domain.clone(), expires_ms: deadline };
        let body = carapace_kernel::stored::encode("approval token", &token_row)?;
        let put = Write::Put {
            row: Row { key: Key::new(TOKEN_KIND, "", &hash), version: 0, created_ms: now, body },
            expect: None,
        };
        match self.core.store.apply(vec![put]).await {
            Ok(_) | Err(carapace_store::Error::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }

        let settings = &*self.settings;
        let mail = ApprovalMail {
            to: approval_addresses(&d.validation_domain),
            domain: d.domain_name.clone(),
            account: owner.account.clone(),
            arn: record.arn.clone(),
            sans: record.sans.clone(),
            link: format!("{}/approve/{token}", settings.approval_base_url.trim_end_matches('/')),
            message_id: hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, send_id.as_bytes()).as_ref()),
        };
        self.checkers()?.mail.send(&mail).await.map_err(AcmError::fault("sending approval mail"))?;
        let marker = Row { key: sent_key, version: 0, created_ms: now, body: b"{}".to_vec() };
        match self.core.store.apply(vec![Write::Put { row: marker, expect: None }]).await {
            Ok(_) | Err(carapace_store::Error::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!(arn = %record.arn, domain = %job.domain, "approval mail sent");
        Ok(Outcome::Finished)
    }

    async fn token(&self, token: &str) -> Result<(Key, u64, TokenRow), AcmError> {
        let invalid = || {
            AcmError::NotFound(
                "This approval link is not valid: it was already used, it expired, or it never existed.".into(),
            )
        };
        // A well-formed token is 32 hex digits; anything else cannot match a stored hash.
        if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        let key = Key::new(TOKEN_KIND, "", email::token_hash(token));
        let row = self.core.store.get(&key).await?.ok_or_else(invalid)?;
        let stored: TokenRow = carapace_kernel::stored::decode("approval token", &row.body)?;
        if self.now_ms() >= stored.expires_ms {
            return Err(invalid());
        }
        Ok((key, row.version, stored))
    }

    /// The body Carapace serves at an HTTP validation `RedirectTo` URL
    /// (`<base_url>/acm-validations/<account>/.well-known/pki-validation/<token>.txt`), or
    /// `None` when `account` or `token` is malformed (the caller answers 404). Computed, not
    /// looked up: the content is public by design (the domain's redirect exposes it), and an
    /// unauthenticated page must not cost a store scan.
    pub async fn http_validation_content(&self, account: &str, token: &str) -> Result<Option<String>, AcmError> {
        let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        let token_ok = token.len() == 32 && token.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !account_ok || !token_ok {
            return Ok(None);
        }
        Ok(Some(self.secret().await?.http_content_for_token(account, token)))
    }

    /// What the approval page shows for `token`, or an error for a used, expired or forged
    /// token.
    pub async fn approval(&self, token: &str) -> Result<ApprovalView, AcmError> {
        let (_, _, t) = self.token(token).await?;
        let loaded = self
            .load_id(&t.scope, &t.id)
            .await?
            .ok_or_else(|| AcmError::NotFound("The certificate no longer exists.".into()))?;
        let owner = Owner::from_scope(&t.scope).ok_or_else(|| AcmError::internal("bad scope"))?;
        Ok(ApprovalView { domain: t.domain, account: owner.account, arn: loaded.record.arn, sans: loaded.record.sans })
    }

    /// Approves the domain `token` was issued for: marks it `SUCCESS`, consumes the token,
    /// and enqueues issuance when it was the last domain.
    pub async fn approve(&self, token: &str) -> Result<ApprovalView, AcmError> {
        carapace_kernel::optimistic!(
            AcmError,
            AcmError::Conflict("The certificate is being changed; try again.".into()),
            |_| {
                let (token_key, token_version, t) = self.token(token).await?;
                let mut loaded = self
                    .load_id(&t.scope, &t.id)
                    .await?
                    .ok_or_else(|| AcmError::NotFound("The certificate no longer exists.".into()))?;
                let owner = Owner::from_scope(&t.scope).ok_or_else(|| AcmError::internal("bad scope"))?;
                let now = self.now_ms();
                let record = &mut loaded.record;
                if awaiting_owner(record, &t.domain).is_none() {
                    return Err(AcmError::InvalidState(format!(
                        "The certificate request is no longer pending ({}).",
                        record.status.as_str()
                    )));
                }
                let mut writes = vec![Write::Delete { key: token_key, expect: token_version }];
                // The request's validation, or (for an issued certificate) its renewal's.
                let (domains, issuance) = match &mut record.renewal {
                    Some(renewal) if record.status != Status::PendingValidation => {
                        (&mut renewal.domains, renewal.target_issuance)
                    }
                    _ => (&mut record.domains, record.issuance + 1),
                };
                for d in domains.iter_mut() {
                    if d.domain_name == t.domain {
                        d.status = DomainStatus::Success;
                    }
                }
                if domains.iter().all(|d| d.status == DomainStatus::Success) {
                    let job = AcmJob::Issue(IssueJob {
                        scope: t.scope.clone(),
                        id: t.id.clone(),
                        issuance,
                        approve_all: false,
                    });
                    writes.push(job.enqueue(now)?);
                }
                let view = ApprovalView {
                    domain: t.domain.clone(),
                    account: owner.account,
                    arn: record.arn.clone(),
                    sans: record.sans.clone(),
                };
                writes.insert(0, record_put(&t.scope, &loaded, Some(loaded.version))?);
                if !carapace_kernel::retry::commit(self.core.store.as_ref(), writes).await? {
                    return Ok(None);
                }
                self.core.wake_workers();
                tracing::info!(arn = %view.arn, domain = %view.domain, "domain approved by email");
                return Ok(Some(view));
            }
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::AcmSettings;
    use crate::ownership::Checkers;
    use crate::{NewCertificate, Owner};
    use carapace_checks::testing::TestDns;
    use carapace_kernel::ca::KeyAlgorithm;
    use carapace_kernel::clock::ManualClock;

    /// The real checkers of `acm`'s settings, as the binary builds them.
    pub(crate) fn checkers(acm: &AcmSettings) -> Checkers {
        let timeout = std::time::Duration::from_millis(acm.dns_timeout_ms);
        Checkers::live(acm.name_servers.clone(), timeout, acm.http_validation_port, acm.smtp.clone())
    }

    async fn setup(dns: &TestDns, smtp_port: u16) -> (CertificateManager, ManualClock) {
        let acm = AcmSettings {
            name_servers: vec![dns.addr()],
            dns_timeout_ms: 1_000,
            smtp: crate::ownership::SmtpSettings { port: smtp_port, ..Default::default() },
            ..AcmSettings::default()
        };
        let checkers = checkers(&acm);
        let (core, clock) = crate::testing::test_core(false);
        (CertificateManager::new(core, acm).with_checkers(checkers), clock)
    }

    fn dns_request(domain: &str, sans: &[&str]) -> NewCertificate {
        NewCertificate {
            domain_name: domain.into(),
            subject_alternative_names: sans.iter().map(|s| (*s).to_owned()).collect(),
            validation_method: Some(ValidationMethod::Dns),
            key_algorithm: Some(KeyAlgorithm::EcPrime256v1),
            ..Default::default()
        }
    }

    async fn status(m: &CertificateManager, owner: &Owner, arn: &str) -> Status {
        m.describe_certificate(owner, arn).await.unwrap().status
    }

    /// Runs due jobs after moving the clock past any retry delay.
    async fn round(m: &CertificateManager, clock: &ManualClock) {
        clock.advance(400_000);
        m.run_due_jobs().await.unwrap();
    }

    #[tokio::test]
    async fn dns_validation_issues_times_out_and_honours_caa() {
        let dns = TestDns::start(&["example.com", "caa.test"]).await;
        let (m, clock) = setup(&dns, 9).await;
        let alice = Owner::new("111111111111", "us-east-1");
        let bob = Owner::new("222222222222", "us-east-1");

        // Wildcard + base share one record; two accounts get different ones.
        let arn = m.request_certificate(&alice, dns_request("example.com", &["*.example.com"])).await.unwrap();
        let rec = m.describe_certificate(&alice, &arn).await.unwrap().record;
        assert_eq!(rec.domains[0].resource_record, rec.domains[1].resource_record);
        let rr = rec.domains[0].resource_record.clone().unwrap();
        let bob_arn = m.request_certificate(&bob, dns_request("example.com", &[])).await.unwrap();
        let bob_rr = m.describe_certificate(&bob, &bob_arn).await.unwrap().record.domains[0].resource_record.clone();
        assert_ne!(bob_rr.as_ref(), Some(&rr));

        // Missing → pending; wrong value → pending; right value → issued (once).
        round(&m, &clock).await;
        assert_eq!(status(&m, &alice, &arn).await, Status::PendingValidation);
        dns.set_cname(&rr.name, "_wrong.acm-validations.carapace.internal.").await;
        round(&m, &clock).await;
        assert_eq!(status(&m, &alice, &arn).await, Status::PendingValidation);
        dns.set_cname(&rr.name, &rr.value).await;
        round(&m, &clock).await;
        assert_eq!(status(&m, &alice, &arn).await, Status::Issued);
        let serial = m.describe_certificate(&alice, &arn).await.unwrap().record.x509.unwrap().serial;
        round(&m, &clock).await;
        assert_eq!(m.describe_certificate(&alice, &arn).await.unwrap().record.x509.unwrap().serial, serial);
        // Bob never published his record: his request times out after 72 hours.
        clock.advance(72 * 3_600_000);
        m.run_due_jobs().await.unwrap();
        assert_eq!(status(&m, &bob, &bob_arn).await, Status::ValidationTimedOut);

        // CAA naming another CA → FAILED / CAA_ERROR.
        let arn = m.request_certificate(&alice, dns_request("shop.caa.test", &[])).await.unwrap();
        let rr = m.describe_certificate(&alice, &arn).await.unwrap().record.domains[0].resource_record.clone().unwrap();
        dns.add_caa("caa.test", false, "letsencrypt.org").await;
        dns.set_cname(&rr.name, &rr.value).await;
        round(&m, &clock).await;
        let view = m.describe_certificate(&alice, &arn).await.unwrap();
        assert_eq!(view.status, Status::Failed);
        assert_eq!(view.record.failure_reason, Some(FailureReason::CaaError));
    }

    /// An SMTP sink on loopback capturing every message's DATA; refuses nothing.
    async fn smtp_sink() -> (u16, Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = mails.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sink = sink.clone();
                tokio::spawn(async move {
                    let (r, mut w) = stream.into_split();
                    let mut lines = BufReader::new(r).lines();
                    let _ = w.write_all(b"220 sink\r\n").await;
                    let (mut data, mut in_data) = (String::new(), false);
                    while let Ok(Some(line)) = lines.next_line().await {
                        let reply: &[u8] = if in_data {
                            if line == "." {
                                in_data = false;
                                sink.lock().unwrap().push(std::mem::take(&mut data));
                                b"250 ok\r\n"
                            } else {
                                data.push_str(&line);
                                data.push('\n');
                                continue;
                            }
                        } else if line.to_ascii_uppercase().starts_with("DATA") {
                            in_data = true;
                            b"354 go\r\n"
                        } else if line.to_ascii_uppercase().starts_with("QUIT") {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            break;
                        } else {
                            b"250 ok\r\n"
                        };
                        let _ = w.write_all(reply).await;
                    }
                });
            }
        });
        (port, mails)
    }

    #[tokio::test]
    async fn email_validation_sends_once_and_tokens_are_single_use() {
        let dns = TestDns::start(&["example.com"]).await;
        // First with no relay listening: the send fails and is retried, never dropped.
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_port = probe.local_addr().unwrap().port();
        drop(probe);
        let (m, clock) = setup(&dns, dead_port).await;
        let alice = Owner::new("111111111111", "us-east-1");
        let req = NewCertificate {
            domain_name: "mail.example.com".into(),
            validation_method: Some(ValidationMethod::Email),
            key_algorithm: Some(KeyAlgorithm::EcPrime256v1),
            ..Default::default()
        };
        let arn = m.request_certificate(&alice, req).await.unwrap();
        m.run_due_jobs().await.unwrap();
        assert_eq!(status(&m, &alice, &arn).await, Status::PendingValidation);

        // The relay comes up (same manager, new settings are not needed: point a second
        // manager over the same store at the sink).
        let (port, mails) = smtp_sink().await;
        let mut settings = m.settings().clone();
        settings.smtp.port = port;
        let checkers = checkers(&settings);
        let m = CertificateManager::new(m.core().clone(), settings).with_checkers(checkers);
        round(&m, &clock).await;
        round(&m, &clock).await;
        let sent = mails.lock().unwrap().clone();
        assert_eq!(sent.len(), 1, "one mail for one send: {sent:?}");
        assert!(sent[0].contains("admin@mail.example.com") && sent[0].contains("webmaster@mail.example.com"));
        let link = sent[0].lines().find(|l| l.starts_with("https://")).unwrap().to_owned();
        let token = link.rsplit('/').next().unwrap();

        assert!(m.approval("0123456789abcdef0123456789abcdef").await.is_err(), "forged token");
        let view = m.approval(token).await.unwrap();
        assert_eq!(view.domain, "mail.example.com");
        assert_eq!(view.account, "111111111111");
        m.approve(token).await.unwrap();
        assert!(m.approve(token).await.is_err(), "single use");
        m.run_due_jobs().await.unwrap();
        assert_eq!(status(&m, &alice, &arn).await, Status::Issued);
    }

    /// Managed renewal of an email-validated certificate mails the approval addresses
    /// again; the link approves the renewal (not a new request), and the leaf is renewed.
    #[tokio::test]
    async fn email_renewal_mails_again_and_the_link_renews() {
        use crate::record::RenewalStatus;
        const DAY_MS: i64 = 86_400_000;
        let dns = TestDns::start(&["example.com"]).await;
        let (port, mails) = smtp_sink().await;
        let (m, clock) = setup(&dns, port).await;
        let alice = Owner::new("111111111111", "us-east-1");
        let req = NewCertificate {
            domain_name: "renew.example.com".into(),
            validation_method: Some(ValidationMethod::Email),
            key_algorithm: Some(KeyAlgorithm::EcPrime256v1),
            ..Default::default()
        };
        let arn = m.request_certificate(&alice, req).await.unwrap();
        m.run_due_jobs().await.unwrap();
        let token = |mail: &str| {
            mail.lines().find(|l| l.starts_with("https://")).unwrap().rsplit('/').next().unwrap().to_owned()
        };
        let first = mails.lock().unwrap()[0].clone();
        m.approve(&token(&first)).await.unwrap();
        m.run_due_jobs().await.unwrap();
        assert_eq!(status(&m, &alice, &arn).await, Status::Issued);
        m.set_in_use(&alice, &arn, "arn:aws:lightsail:us-east-1:111111111111:Distribution/d", true).await.unwrap();
        let not_after = m.describe_certificate(&alice, &arn).await.unwrap().record.x509.unwrap().not_after_ms;

        // The renewal window opens: a second mail, and the renewal waits for the owner.
        clock.set(not_after - 45 * DAY_MS + 1);
        m.run_due_jobs().await.unwrap();
        let sent = mails.lock().unwrap().clone();
        assert_eq!(sent.len(), 2, "one renewal mail: {sent:?}");
        assert_ne!(token(&sent[1]), token(&first), "a fresh token");
        let waiting = m.describe_certificate(&alice, &arn).await.unwrap().record;
        let renewal = waiting.renewal.clone().unwrap();
        assert_eq!(renewal.status, RenewalStatus::PendingValidation);
        assert_eq!(waiting.status, Status::Issued, "still serving the first leaf");
        assert_eq!(m.approval(&token(&sent[1])).await.unwrap().domain, "renew.example.com");

        // Approved: renewed under the same ARN; the used link approves nothing more.
        m.approve(&token(&sent[1])).await.unwrap();
        clock.advance(1_000);
        m.run_due_jobs().await.unwrap();
        let renewed = m.describe_certificate(&alice, &arn).await.unwrap().record;
        assert_eq!(renewed.issuance, 2);
        assert_eq!(renewed.renewal.unwrap().status, RenewalStatus::Success);
        assert!(renewed.x509.unwrap().not_after_ms > not_after);
        assert!(m.approve(&token(&sent[1])).await.is_err());
    }
}
