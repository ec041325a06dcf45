//! What happens to a certificate with time: managed renewal, expiry, and ACM's events.
//!
//! Every leaf (issuance) gets two jobs in the batch that stores it:
//!
//! - [`AcmJob::Renew`], due `renewal_days_before_expiry` (45) days before `NotAfter`. A
//!   certificate Carapace issued that is eligible (in use, or exportable: see
//!   [`CertificateRecord::renewal_eligible`]) is renewed as ACM renews it: each domain is
//!   validated again the way it was first (DNS: the CNAME must still resolve; HTTP: the
//!   redirect; EMAIL: an approval mail), shown in `RenewalSummary` as `PENDING_AUTO_RENEWAL`,
//!   then `PENDING_VALIDATION` while a domain does not validate. When every domain has, an
//!   issue job signs a new key and leaf under the same ARN (`SUCCESS`). An attempt that has
//!   not validated within the validation window (72 hours) is `FAILED`, and a new attempt
//!   starts a day later, until `NotAfter`. An ineligible certificate is looked at again daily
//!   (attaching it to a distribution makes it eligible).
//! - [`AcmJob::Expiry`], due `DaysBeforeExpiry` (PutAccountConfiguration; 45) days before
//!   `NotAfter`: an `ACM Certificate Approaching Expiration` event a day until `NotAfter`,
//!   then the stored status becomes `EXPIRED` (readers see it at once anyway, see
//!   [`super::state::Status::at`]) with an `ACM Certificate Expired` event.
//!
//! Both name the issuance they are about and stop once the certificate has another leaf,
//! so a renewed certificate's old jobs end by themselves, and a job replayed after a crash
//! (or run by two nodes after a lease expired) finds its work done: the issue job it
//! enqueues has the id of the issuance it produces, and the record is written at the
//! version read.

use carapace_store::Write;
use serde_json::{Value, json};

use super::jobs::{AcmJob, IssueJob, LifecycleJob};
use super::record::{CertificateRecord, CertificateType, FailureReason, Renewal, RenewalStatus};
use super::state::{DomainStatus, Event, Status, transition};
use super::validate::DomainChecks;
use super::{AcmError, CertificateManager, Loaded, Owner, record_put};
use crate::events::{self, DetailType};
use carapace_kernel::jobs::Outcome;

/// A day, in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// Why a renewal whose domains did not validate in time failed (`RenewalStatusReason`). ACM
/// documents no narrower reason for a record that is gone.
const UNVALIDATED: FailureReason = FailureReason::Other;

/// The jobs and the `ACM Certificate Available` event for a leaf just stored:
/// `action` is `ISSUANCE`, `RENEWAL`, `IMPORT` or `REIMPORT`.
pub(crate) fn new_leaf_writes(
    m: &CertificateManager,
    scope: &str,
    id: &str,
    record: &CertificateRecord,
    action: &str,
    now_ms: i64,
) -> Result<Vec<Write>, AcmError> {
    let Some(x) = &record.x509 else {
        return Ok(Vec::new());
    };
    let job = LifecycleJob { scope: scope.to_owned(), id: id.to_owned(), issuance: record.issuance };
    let mut writes = Vec::new();
    if record.cert_type == CertificateType::AmazonIssued {
        let start = x.not_after_ms - i64::from(m.settings.renewal_days_before_expiry) * DAY_MS;
        writes.push(AcmJob::Renew(job.clone()).enqueue(start.max(now_ms))?);
    }
    // The expiry job reads the account's DaysBeforeExpiry when it runs; 45 days (the most
    // ACM allows) is the earliest it can matter.
    let first = x.not_after_ms - i64::from(super::account::DEFAULT_DAYS_BEFORE_EXPIRY) * DAY_MS;
    writes.push(AcmJob::Expiry(job).enqueue(first.max(now_ms))?);
    let mut detail = common_detail(record);
    detail.insert("Action".into(), json!(action));
    detail.insert("DaysToExpiry".into(), json!(days_to_expiry(x.not_after_ms, now_ms)));
    let identity = format!("{}/{}/available", record.arn, record.issuance);
    writes.extend(m.event_writes(&identity, DetailType::Available, record, Value::Object(detail), now_ms)?);
    Ok(writes)
}

/// Whole days left until `not_after_ms`, rounded up (a certificate expiring in 30.2 days
/// has 31 days to expiry, as ACM counts).
fn days_to_expiry(not_after_ms: i64, now_ms: i64) -> i64 {
    (not_after_ms - now_ms).max(0).div_euclid(DAY_MS) + i64::from((not_after_ms - now_ms).rem_euclid(DAY_MS) != 0)
}

/// The members most of ACM's event details share.
fn common_detail(r: &CertificateRecord) -> serde_json::Map<String, Value> {
    let mut d = serde_json::Map::new();
    d.insert("CertificateType".into(), json!(r.cert_type));
    d.insert("CommonName".into(), json!(r.domain_name));
    if let Some(method) = r.validation_method {
        d.insert("DomainValidationMethod".into(), json!(method));
    }
    d.insert("CertificateCreatedDate".into(), json!(events::rfc3339_seconds(r.created_ms)));
    if let Some(x) = &r.x509 {
        d.insert("CertificateExpirationDate".into(), json!(events::rfc3339_seconds(x.not_after_ms)));
    }
    d.insert("InUse".into(), json!(!r.in_use_by.is_empty()));
    d.insert("Exported".into(), json!(r.exported));
    d
}

impl CertificateManager {
    /// The delivery jobs of one event about `record` (none without webhooks).
    pub(crate) fn event_writes(
        &self,
        identity: &str,
        detail_type: DetailType,
        record: &CertificateRecord,
        detail: Value,
        now_ms: i64,
    ) -> Result<Vec<Write>, AcmError> {
        let Ok(arn) = super::names::CertificateArn::parse(&record.arn) else {
            return Err(AcmError::Internal(format!("bad stored ARN {}", record.arn)));
        };
        let event = events::Event::new(identity, detail_type, &arn.account, &arn.region, now_ms, &record.arn, detail);
        events::deliveries(&self.settings.events, &event, now_ms).map_err(AcmError::fault("encoding an event delivery"))
    }

    /// The `ACM Certificate Renewal Action Required` event for the renewal as it now stands.
    fn renewal_action_required(&self, record: &CertificateRecord, now_ms: i64) -> Result<Vec<Write>, AcmError> {
        let Some(renewal) = &record.renewal else {
            return Ok(Vec::new());
        };
        let mut detail = common_detail(record);
        detail.insert("RenewalStatus".into(), json!(renewal.status));
        if let Some(reason) = renewal.reason {
            detail.insert("FailureReason".into(), json!(reason));
        }
        if let Some(x) = &record.x509 {
            detail.insert("DaysToExpiry".into(), json!(days_to_expiry(x.not_after_ms, now_ms)));
        }
        let attempt = renewal.deadline_ms.unwrap_or_default();
        let identity = format!("{}/{}/renewal/{attempt}/{:?}", record.arn, record.issuance, renewal.status);
        self.event_writes(&identity, DetailType::RenewalActionRequired, record, Value::Object(detail), now_ms)
    }

    /// Runs an [`AcmJob::Renew`].
    pub(crate) async fn renew(&self, job: &LifecycleJob, attempts: u32) -> Result<Outcome, AcmError> {
        let Some(loaded) = self.load_id(&job.scope, &job.id).await? else {
            return Ok(Outcome::Finished);
        };
        let r = &loaded.record;
        let now = self.now_ms();
        let (Some(x), CertificateType::AmazonIssued, true) = (&r.x509, r.cert_type, r.issuance == job.issuance) else {
            return Ok(Outcome::Finished); // renewed, re-issued or never ours to renew
        };
        if r.status_at(now) != Status::Issued {
            return Ok(Outcome::Finished); // revoked or expired: ACM renews neither
        }
        let start = x.not_after_ms - i64::from(self.settings.renewal_days_before_expiry) * DAY_MS;
        if now < start {
            return Ok(Outcome::RetryAt(start));
        }
        if !r.renewal_eligible(now) {
            return Ok(Outcome::RetryAt((now + DAY_MS).min(x.not_after_ms + 1)));
        }
        match &r.renewal {
            // This attempt is under way: check its domains again.
            Some(rn) if rn.in_progress() && rn.deadline_ms.is_some() => self.check_renewal(loaded, job, attempts).await,
            // A renewal asked for with RenewCertificate is issuing: look again later.
            Some(rn) if rn.in_progress() => Ok(Outcome::RetryAt(now + self.retry_delay_ms(attempts))),
            // The last attempt failed: the next starts a day after it.
            Some(rn) if rn.status == RenewalStatus::Failed && now < rn.updated_ms + DAY_MS => {
                Ok(Outcome::RetryAt(rn.updated_ms + DAY_MS))
            }
            _ => self.start_renewal(loaded, job).await,
        }
    }

    /// Starts a renewal attempt: every domain pending again, mail for email domains; in
    /// `--dev` every domain is approved and the leaf issued at once.
    async fn start_renewal(&self, mut loaded: Loaded, job: &LifecycleJob) -> Result<Outcome, AcmError> {
        let now = self.now_ms();
        let dev = self.core.settings.dev;
        let deadline = now + self.settings.validation_window_ms;
        let target = job.issuance + 1;
        let record = &mut loaded.record;
        let mut domains = record.domains.clone();
        for d in &mut domains {
            d.status = if dev { DomainStatus::Success } else { DomainStatus::PendingValidation };
        }
        let mut writes = Vec::new();
        if dev {
            let issue = IssueJob { scope: job.scope.clone(), id: job.id.clone(), issuance: target, approve_all: true };
            writes.push(AcmJob::Issue(issue).enqueue(now)?);
        } else {
            for d in domains.iter().filter(|d| d.method == Some(super::record::ValidationMethod::Email)) {
                writes.push(super::validate::send_email_job(&job.scope, &job.id, &d.domain_name, now).enqueue(now)?);
            }
        }
        record.renewal = Some(Renewal {
            status: RenewalStatus::PendingAutoRenewal,
            reason: None,
            updated_ms: now,
            target_issuance: target,
            domains,
            deadline_ms: Some(deadline),
        });
        writes.insert(0, record_put(&job.scope, &loaded, Some(loaded.version))?);
        match self.core.store.apply(writes).await {
            Ok(_) => {
                tracing::info!(arn = %loaded.record.arn, issuance = target, "managed renewal started");
                self.core.wake_workers();
                Ok(Outcome::RetryAt(now)) // check the domains at once
            }
            Err(carapace_store::Error::Conflict(_)) => Ok(Outcome::RetryAt(now)),
            Err(e) => Err(e.into()),
        }
    }

    /// One round of an attempt under way: validate what can be checked, then issue, wait,
    /// or fail the attempt at its deadline.
    async fn check_renewal(&self, mut loaded: Loaded, job: &LifecycleJob, attempts: u32) -> Result<Outcome, AcmError> {
        let owner = Owner::from_scope(&job.scope).ok_or_else(|| AcmError::internal("bad scope"))?;
        let Some(renewal) = loaded.record.renewal.clone() else {
            return Ok(Outcome::Finished);
        };
        let deadline = renewal.deadline_ms.unwrap_or(i64::MAX);
        let DomainChecks { validated, caa_denied } =
            self.check_domains(&owner, &loaded.record.arn, &renewal.domains).await?;
        let now = self.now_ms();
        let record = &mut loaded.record;
        let Some(rn) = record.renewal.as_mut() else {
            return Ok(Outcome::Finished);
        };
        for d in &mut rn.domains {
            if validated.contains(&d.domain_name) {
                d.status = DomainStatus::Success;
            }
        }
        let before = rn.status;
        let mut writes = Vec::new();
        let next;
        if let Some(domain) = &caa_denied {
            tracing::warn!(arn = %record.arn, %domain, "CAA forbids renewal; the attempt failed");
            rn.status = RenewalStatus::Failed;
            rn.reason = Some(FailureReason::CaaError);
            next = now + DAY_MS;
        } else if rn.domains.iter().all(|d| d.status == DomainStatus::Success) {
            let issue = IssueJob {
                scope: job.scope.clone(),
                id: job.id.clone(),
                issuance: rn.target_issuance,
                approve_all: false,
            };
            writes.push(AcmJob::Issue(issue).enqueue(now)?);
            next = deadline; // the issue job finishes the renewal; this one then stops
        } else if now >= deadline {
            tracing::warn!(arn = %record.arn, "renewal not validated within the window; the attempt failed");
            rn.status = RenewalStatus::Failed;
            rn.reason = Some(UNVALIDATED);
            next = now + DAY_MS;
        } else {
            rn.status = RenewalStatus::PendingValidation;
            next = (now + self.retry_delay_ms(attempts)).min(deadline);
        }
        if rn.status != before {
            rn.updated_ms = now;
        }
        let changed = rn.status != before || !validated.is_empty() || !writes.is_empty();
        if !changed {
            return Ok(Outcome::RetryAt(next));
        }
        if rn.status != before {
            writes.extend(self.renewal_action_required(record, now)?);
        }
        writes.insert(0, record_put(&job.scope, &loaded, Some(loaded.version))?);
        match self.core.store.apply(writes).await {
            Ok(_) => {
                self.core.wake_workers();
                Ok(Outcome::RetryAt(next))
            }
            Err(carapace_store::Error::Conflict(_)) => Ok(Outcome::RetryAt(now)),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs an [`AcmJob::Expiry`].
    pub(crate) async fn expiry(&self, job: &LifecycleJob) -> Result<Outcome, AcmError> {
        let Some(mut loaded) = self.load_id(&job.scope, &job.id).await? else {
            return Ok(Outcome::Finished);
        };
        let r = &loaded.record;
        let (Some(x), Status::Issued, true) = (&r.x509, r.status, r.issuance == job.issuance) else {
            return Ok(Outcome::Finished); // another leaf, revoked, or expired already
        };
        let not_after = x.not_after_ms;
        let now = self.now_ms();
        if now > not_after {
            let record = &mut loaded.record;
            record.status =
                transition(record.status, Event::Expire).map_err(AcmError::fault("expiring a certificate"))?;
            let mut writes = vec![record_put(&job.scope, &loaded, Some(loaded.version))?];
            // ACM sends no Expired event for imported certificates.
            if loaded.record.cert_type != CertificateType::Imported {
                let detail = common_detail(&loaded.record);
                let identity = format!("{}/{}/expired", loaded.record.arn, job.issuance);
                writes.extend(self.event_writes(
                    &identity,
                    DetailType::Expired,
                    &loaded.record,
                    Value::Object(detail),
                    now,
                )?);
            }
            return match self.core.store.apply(writes).await {
                Ok(_) => {
                    tracing::info!(arn = %loaded.record.arn, "certificate expired");
                    Ok(Outcome::Finished)
                }
                Err(carapace_store::Error::Conflict(_)) => Ok(Outcome::RetryAt(now)),
                Err(e) => Err(e.into()),
            };
        }
        let owner = Owner::from_scope(&job.scope).ok_or_else(|| AcmError::internal("bad scope"))?;
        let days_before = i64::from(self.account_configuration(&owner).await?.days_before_expiry);
        let start = not_after - days_before * DAY_MS;
        if now < start {
            return Ok(Outcome::RetryAt(start));
        }
        let days = days_to_expiry(not_after, now);
        let detail = json!({ "DaysToExpiry": days, "CommonName": r.domain_name });
        let identity = format!("{}/{}/approaching/{days}", r.arn, job.issuance);
        let writes = self.event_writes(&identity, DetailType::ApproachingExpiration, r, detail, now)?;
        if !writes.is_empty() {
            self.core.store.apply(writes).await?;
            self.core.wake_workers();
        }
        Ok(Outcome::RetryAt((now + DAY_MS).min(not_after + 1)))
    }
}

#[cfg(test)]
mod tests {

    use carapace_checks::testing::{RecordType, TestDns};

    use super::*;
    use crate::AcmSettings;
    use crate::events::{EventSettings, Webhook};
    use crate::{NewCertificate, Owner, ValidationMethod};
    use carapace_kernel::ca::KeyAlgorithm;
    use carapace_kernel::clock::{Clock as _, ManualClock};

    const DISTRIBUTION: &str = "arn:aws:lightsail:us-east-1:111111111111:Distribution/d";

    async fn setup(dns: &TestDns) -> (CertificateManager, ManualClock) {
        let hook = Webhook { name: "ops".into(), url: "http://127.0.0.1:9/".into(), secret: "0123456789abcdef".into() };
        let acm = AcmSettings {
            name_servers: vec![dns.addr()],
            dns_timeout_ms: 1_000,
            events: EventSettings { webhooks: vec![hook], ..EventSettings::default() },
            ..AcmSettings::default()
        };
        let checkers = crate::validate::tests::checkers(&acm);
        let (core, clock) = crate::testing::test_core(false);
        (CertificateManager::new(core, acm).with_checkers(checkers), clock)
    }

    /// Requests a DNS-validated certificate for `domain`, publishes its record and issues it.
    async fn issued(m: &CertificateManager, dns: &TestDns, clock: &ManualClock, owner: &Owner, domain: &str) -> String {
        let request = NewCertificate {
            domain_name: domain.into(),
            validation_method: Some(ValidationMethod::Dns),
            key_algorithm: Some(KeyAlgorithm::EcPrime256v1),
            ..Default::default()
        };
        let arn = m.request_certificate(owner, request).await.unwrap();
        let rr = m.describe_certificate(owner, &arn).await.unwrap().record.domains[0].resource_record.clone().unwrap();
        dns.set_cname(&rr.name, &rr.value).await;
        clock.advance(1_000);
        m.run_due_jobs().await.unwrap();
        assert_eq!(m.describe_certificate(owner, &arn).await.unwrap().status, Status::Issued);
        arn
    }

    /// Moves the clock to `until` in steps of `step`, running due jobs at each.
    async fn walk(m: &CertificateManager, clock: &ManualClock, until: i64, step: i64) {
        while clock.now_ms() < until {
            clock.advance(step.min(until - clock.now_ms()));
            m.run_due_jobs().await.unwrap();
        }
    }

    /// The events queued for delivery about `arn`, as (detail-type, detail).
    async fn events(m: &CertificateManager, arn: &str) -> Vec<(String, Value)> {
        use carapace_kernel::jobs::JobSpec as _;
        let store = &m.core().store;
        let mut found = Vec::new();
        for job in store.claim_jobs("event.", i64::MAX / 2, 1, 100_000).await.unwrap() {
            store.retry_job(&job.id, job.token, 0, None).await.unwrap();
            let events::EventJob::Deliver(d) = events::EventJob::decode(&job.kind, &job.payload).unwrap();
            if d.event["resources"][0] == arn {
                found.push((d.event["detail-type"].as_str().unwrap().to_owned(), d.event["detail"].clone()));
            }
        }
        found
    }

    fn count(events: &[(String, Value)], detail_type: &str) -> usize {
        events.iter().filter(|(t, _)| t == detail_type).count()
    }

    /// 200 days in milliseconds: renewed while in use with its record; a removed record
    /// fails the attempt and a restored one lets the next succeed; not in use, never renewed
    /// and then expired. Each step raises the events ACM would.
    #[tokio::test]
    async fn certificates_live_two_hundred_days_on_their_own() {
        let dns = TestDns::start(&["example.com"]).await;
        let (m, clock) = setup(&dns).await;
        let alice = Owner::new("111111111111", "us-east-1");
        let kept = issued(&m, &dns, &clock, &alice, "kept.example.com").await;
        let flaky = issued(&m, &dns, &clock, &alice, "flaky.example.com").await;
        let unused = issued(&m, &dns, &clock, &alice, "unused.example.com").await;
        for arn in [&kept, &flaky] {
            m.set_in_use(&alice, arn, DISTRIBUTION, true).await.unwrap();
        }
        let view = |arn: String| {
            let m = m.clone();
            let alice = alice.clone();
            async move { m.describe_certificate(&alice, &arn).await.unwrap() }
        };
        let first = view(kept.clone()).await;
        let x = first.record.x509.clone().unwrap();
        assert_eq!(x.not_after_ms - x.not_before_ms, 198 * DAY_MS, "198-day certificates");
        assert!(first.renewal_eligible);
        assert!(!view(unused.clone()).await.renewal_eligible, "not in use: INELIGIBLE");

        // Just before the renewal window nothing has happened.
        let window = x.not_after_ms - 45 * DAY_MS;
        walk(&m, &clock, window - 1_000, DAY_MS).await;
        assert!(view(kept.clone()).await.record.renewal.is_none());

        // flaky's record disappears; the window opens.
        let flaky_rr = view(flaky.clone()).await.record.domains[0].resource_record.clone().unwrap();
        dns.remove(&flaky_rr.name, RecordType::CNAME).await;
        walk(&m, &clock, window + 60_000, 10_000).await;
        let renewed = view(kept.clone()).await;
        let rx = renewed.record.x509.clone().unwrap();
        assert_eq!(renewed.record.arn, kept, "same ARN");
        assert_ne!(rx.serial, x.serial, "a new leaf");
        assert!(rx.not_before_ms > x.not_before_ms && rx.not_after_ms > x.not_after_ms);
        assert_eq!(renewed.record.issuance, 2);
        let summary = renewed.record.renewal.clone().unwrap();
        assert_eq!(summary.status, RenewalStatus::Success);
        assert!(summary.domains.iter().all(|d| d.status == DomainStatus::Success));
        let pending = view(flaky.clone()).await.record.renewal.unwrap();
        assert_eq!(pending.status, RenewalStatus::PendingValidation);
        assert_eq!(pending.domains[0].status, DomainStatus::PendingValidation);

        // 72 hours later the attempt has failed.
        walk(&m, &clock, window + 73 * 3_600_000, 3_600_000).await;
        let failed = view(flaky.clone()).await.record.renewal.unwrap();
        assert_eq!(failed.status, RenewalStatus::Failed);
        assert_eq!(failed.reason, Some(FailureReason::Other));
        assert_eq!(view(flaky.clone()).await.record.issuance, 1);

        // The record comes back: the next attempt (a day after the failure) succeeds.
        dns.set_cname(&flaky_rr.name, &flaky_rr.value).await;
        walk(&m, &clock, window + 73 * 3_600_000 + DAY_MS + 60_000, 10 * 60_000).await;
        let recovered = view(flaky.clone()).await;
        assert_eq!(recovered.record.renewal.unwrap().status, RenewalStatus::Success);
        assert_eq!(recovered.record.issuance, 2);

        // The unused certificate was never renewed, and reads EXPIRED once past NotAfter,
        // stored so by its expiry job.
        walk(&m, &clock, x.not_after_ms + 2 * DAY_MS, DAY_MS).await;
        let expired = view(unused.clone()).await;
        assert_eq!(expired.status, Status::Expired);
        assert_eq!(expired.record.status, Status::Expired, "written down, not only derived");
        assert_eq!(expired.record.issuance, 1);
        assert!(expired.record.renewal.is_none());
        assert_eq!(view(kept.clone()).await.status, Status::Issued, "the renewed one lives on");

        // The events, as ACM raises them.
        let unused_events = events(&m, &unused).await;
        assert_eq!(count(&unused_events, "ACM Certificate Available"), 1);
        assert_eq!(count(&unused_events, "ACM Certificate Expired"), 1);
        let approaching: Vec<i64> = unused_events
            .iter()
            .filter(|(t, _)| t == "ACM Certificate Approaching Expiration")
            .map(|(_, d)| d["DaysToExpiry"].as_i64().unwrap())
            .collect();
        assert!(approaching.len() >= 44 && approaching.iter().all(|d| (1..=45).contains(d)), "{approaching:?}");
        let flaky_events = events(&m, &flaky).await;
        let mut actions: Vec<&str> = flaky_events
            .iter()
            .filter(|(t, _)| t == "ACM Certificate Renewal Action Required")
            .map(|(_, d)| d["RenewalStatus"].as_str().unwrap())
            .collect();
        actions.sort_unstable();
        assert_eq!(actions, ["FAILED", "PENDING_VALIDATION"], "one each");
        let available: Vec<&str> = flaky_events
            .iter()
            .filter(|(t, _)| t == "ACM Certificate Available")
            .map(|(_, d)| d["Action"].as_str().unwrap())
            .collect();
        assert_eq!(available.len(), 2);
        assert!(available.contains(&"ISSUANCE") && available.contains(&"RENEWAL"));
    }

    /// A renewal job replayed after a crash (its lease expired with the work done) or run
    /// by two workers renews once.
    #[tokio::test]
    async fn a_replayed_renewal_renews_once() {
        let dns = TestDns::start(&["example.com"]).await;
        let (m, clock) = setup(&dns).await;
        let alice = Owner::new("111111111111", "us-east-1");
        let arn = issued(&m, &dns, &clock, &alice, "once.example.com").await;
        m.set_in_use(&alice, &arn, DISTRIBUTION, true).await.unwrap();
        let x = m.describe_certificate(&alice, &arn).await.unwrap().record.x509.unwrap();
        clock.set(x.not_after_ms - 45 * DAY_MS + 1);
        let (scope, id) =
            super::super::issue::locate(&m.describe_certificate(&alice, &arn).await.unwrap().record).unwrap();
        let job = LifecycleJob { scope: scope.clone(), id: id.clone(), issuance: 1 };
        // Two runs of the same job, as two nodes would after a lost lease, then the queue.
        m.renew(&job, 0).await.unwrap();
        m.renew(&job, 0).await.unwrap();
        m.run_due_jobs().await.unwrap();
        m.renew(&job, 0).await.unwrap();
        m.run_due_jobs().await.unwrap();
        let after = m.describe_certificate(&alice, &arn).await.unwrap().record;
        assert_eq!(after.issuance, 2, "renewed exactly once");
        assert_eq!(m.renew(&job, 0).await.unwrap(), Outcome::Finished, "the old leaf's job is done");
        let issue = IssueJob { scope, id, issuance: 2, approve_all: false };
        m.issue(&issue).await.unwrap();
        assert_eq!(
            m.describe_certificate(&alice, &arn).await.unwrap().record.x509.unwrap().serial,
            after.x509.unwrap().serial
        );
    }

    #[test]
    fn days_to_expiry_rounds_up() {
        assert_eq!(days_to_expiry(10 * DAY_MS, 0), 10);
        assert_eq!(days_to_expiry(10 * DAY_MS, 1), 10);
        assert_eq!(days_to_expiry(10 * DAY_MS, DAY_MS - 1), 10);
        assert_eq!(days_to_expiry(10 * DAY_MS, DAY_MS), 9);
        assert_eq!(days_to_expiry(0, DAY_MS), 0);
    }
}
