//! One job system for every service: closed job types, one generic worker, dead letters.
//!
//! Each service names its background work as one closed enum implementing [`JobSpec`]
//! (`AcmJob`, `DsJob`, ...): the enum decides the stored kind (`<service>.<name>`), the
//! idempotent id and the payload, and decodes itself from what the store hands back. A
//! [`JobHandler`] runs one decoded job. [`Worker`] does the rest for every service alike:
//!
//! - claims due jobs of its service's kind prefix with a lease, runs a bounded number at
//!   once, and wakes on [`crate::Core::work`] or a slow poll;
//! - finishes, re-schedules or fails each job **with its lease token**, so a worker whose
//!   lease ran out (a long pause, a partition) cannot undo the claim another node took since;
//!   it is told, logs it and moves on (the job is the new holder's now);
//! - backs off exponentially after a failure, and after [`JobSettings::max_failures`]
//!   failures dead-letters the job: logged at ERROR, counted by the [`JobObserver`]
//!   (`/metrics`), listed by `carapace jobs list --dead`, never retried silently for ever.
//!   A job whose kind or payload its service cannot read is dead-lettered at once.
//!
//! Handlers must be idempotent: a job may run again after a crash, or on another node after
//! a lease expired, before its outcome was recorded.

use std::sync::Arc;
use std::time::Duration;

use carapace_store::{Job, NewJob};
use tokio::task::JoinSet;

use crate::Core;

/// How often an idle worker looks for due jobs without being woken.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Longest delay between two runs of a failing job.
const MAX_BACKOFF_MS: i64 = 15 * 60_000;

/// A service's closed set of jobs.
pub trait JobSpec: Sized + Send + Sync + 'static {
    /// The service's kind prefix, with its dot (`acm.`): its worker claims only these.
    const PREFIX: &'static str;

    /// The stored kind, [`Self::PREFIX`] followed by the job's name.
    fn kind(&self) -> &'static str;

    /// The job's id: enqueuing a job whose id is queued already is a no-op, so the id names
    /// the work (e.g. the issuance it produces), not the request that asked for it.
    fn id(&self) -> String;

    /// The arguments, as stored.
    fn payload(&self) -> serde_json::Result<Vec<u8>>;

    /// The job stored as `kind` with `payload`.
    fn decode(kind: &str, payload: &[u8]) -> Result<Self, DecodeError>;

    /// The queue entry for this job, due at `run_at_ms`. Fails (rather than storing an empty
    /// payload) if the arguments cannot be encoded.
    fn to_new_job(&self, run_at_ms: i64) -> Result<NewJob, DecodeError> {
        let payload = self.payload().map_err(DecodeError::Encode)?;
        Ok(NewJob { id: self.id(), kind: self.kind().to_owned(), run_at_ms, payload })
    }
}

/// Decodes a JSON payload for [`JobSpec::decode`].
pub fn decode_payload<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(payload).map_err(DecodeError::Payload)
}

/// Why a stored job could not be read, or a job's arguments could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The kind is not one of the service's jobs (written by a newer build, or a bug).
    #[error("unknown job kind {0}")]
    UnknownKind(String),
    /// The payload does not fit the kind.
    #[error("unreadable job payload")]
    Payload(#[source] serde_json::Error),
    /// The job's arguments do not encode.
    #[error("the job's arguments do not encode")]
    Encode(#[source] serde_json::Error),
}

/// What became of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done, or nothing left to do: remove the job.
    Finished,
    /// Not done yet (polling, a later deadline): run again at this time. Not a failure.
    RetryAt(i64),
}

/// A failed run: retried with backoff, dead-lettered after too many.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JobFailure(pub String);

/// Runs one service's jobs.
#[async_trait::async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// The service's jobs.
    type Job: JobSpec;

    /// The service's name in logs and metrics (`acm`).
    fn service(&self) -> &'static str;

    /// Runs one job. `attempts` is how many times it was claimed before (for polling
    /// intervals that grow).
    async fn run(&self, job: Self::Job, attempts: u32) -> Result<Outcome, JobFailure>;

    /// The delay before re-running `job` after its `failures`-th failure (1 for the
    /// first). Defaults to 1 s doubling, up to 15 minutes.
    fn retry_delay_ms(&self, job: &Self::Job, failures: u32) -> i64 {
        let _ = job;
        backoff_ms(1_000, failures)
    }
}

/// `base_ms` doubled for each failure after the first, up to 15 minutes.
pub fn backoff_ms(base_ms: i64, failures: u32) -> i64 {
    base_ms.saturating_mul(1i64 << failures.saturating_sub(1).min(30)).min(MAX_BACKOFF_MS)
}

/// Settings every worker shares.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// How long a claimed job is leased before another worker (or a restarted node) may
    /// run it again, milliseconds.
    pub lease_ms: i64,
    /// Failed runs after which a job is dead-lettered.
    pub max_failures: u32,
    /// Jobs one worker runs at once.
    pub concurrency: usize,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self { lease_ms: 60_000, max_failures: 12, concurrency: 2 }
    }
}

/// Told what workers do, for metrics.
pub trait JobObserver: Send + Sync + 'static {
    /// A run ended: `finished`, `rescheduled`, `failed`, `dead_lettered` or `lease_lost`.
    fn job_outcome(&self, service: &'static str, outcome: &'static str);
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct NoObserver;

impl JobObserver for NoObserver {
    fn job_outcome(&self, _service: &'static str, _outcome: &'static str) {}
}

/// Runs one service's jobs from the shared queue.
pub struct Worker<H: JobHandler> {
    core: Core,
    handler: Arc<H>,
    observer: Arc<dyn JobObserver>,
}

impl<H: JobHandler> Clone for Worker<H> {
    fn clone(&self) -> Self {
        Self { core: self.core.clone(), handler: Arc::clone(&self.handler), observer: Arc::clone(&self.observer) }
    }
}

impl<H: JobHandler> Worker<H> {
    /// A worker for `handler`'s jobs.
    pub fn new(core: Core, handler: H, observer: Arc<dyn JobObserver>) -> Self {
        Self { core, handler: Arc::new(handler), observer }
    }

    fn settings(&self) -> &JobSettings {
        &self.core.settings.jobs
    }

    /// Runs jobs until `stop` turns true (or its sender is dropped), then lets the runs in
    /// flight record their outcome. A run cut short is re-run after its lease.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let concurrency = self.settings().concurrency.max(1);
        let mut running: JoinSet<()> = JoinSet::new();
        let work = Arc::clone(&self.core.work);
        loop {
            if *stop.borrow() {
                break;
            }
            let free = concurrency.saturating_sub(running.len());
            let mut claimed = 0;
            if free > 0 {
                match self.claim(free).await {
                    Ok(jobs) => {
                        claimed = jobs.len();
                        for job in jobs {
                            let me = self.clone();
                            running.spawn(async move { me.run_one(job).await });
                        }
                    }
                    Err(e) => tracing::error!(service = self.handler.service(), error = %e, "claiming jobs failed"),
                }
            }
            // There may be more due jobs; look again at once when there is room.
            if claimed > 0 && running.len() < concurrency {
                continue;
            }
            tokio::select! {
                changed = stop.changed() => {
                    if changed.is_err() {
                        break; // the sender is gone: the server is shutting down
                    }
                }
                _ = work.notified() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
        }
        while running.join_next().await.is_some() {}
    }

    /// Runs every job due now, one after another, and returns how many ran. For tests that
    /// drive the clock by hand instead of running the worker.
    pub async fn run_due(&self) -> Result<usize, carapace_store::Error> {
        let mut ran = 0;
        loop {
            let jobs = self.claim(16).await?;
            if jobs.is_empty() {
                return Ok(ran);
            }
            for job in jobs {
                ran += 1;
                self.run_one(job).await;
            }
        }
    }

    async fn claim(&self, limit: usize) -> Result<Vec<Job>, carapace_store::Error> {
        let now = self.core.clock.now_ms();
        self.core.store.claim_jobs(H::Job::PREFIX, now, self.settings().lease_ms, limit).await
    }

    /// Runs one claimed job and records its outcome under its lease token.
    async fn run_one(&self, job: Job) {
        let service = self.handler.service();
        let store = &self.core.store;
        let decoded = match H::Job::decode(&job.kind, &job.payload) {
            Ok(decoded) => decoded,
            Err(e) => {
                // Retrying cannot help: a build that knows the kind can revive it.
                let error = crate::error::chain(&e);
                tracing::error!(service, job = %job.id, kind = %job.kind, error, "job dead-lettered: cannot read it");
                let now = self.core.clock.now_ms();
                return self.record(&job, "dead_lettered", store.bury_job(&job.id, job.token, now, &error)).await;
            }
        };
        let delay_after_failure = self.handler.retry_delay_ms(&decoded, job.failures.saturating_add(1));
        match self.handler.run(decoded, job.attempts).await {
            Ok(Outcome::Finished) => self.record(&job, "finished", store.finish_job(&job.id, job.token)).await,
            Ok(Outcome::RetryAt(at)) => {
                self.record(&job, "rescheduled", store.retry_job(&job.id, job.token, at, None)).await;
            }
            Err(failure) => {
                let failures = job.failures.saturating_add(1);
                let now = self.core.clock.now_ms();
                if failures >= self.settings().max_failures {
                    tracing::error!(
                        service, job = %job.id, failures, error = %failure,
                        "job dead-lettered after too many failures; `carapace jobs list --dead` shows it"
                    );
                    let reason = format!("{failures} failures; last: {failure}");
                    self.record(&job, "dead_lettered", store.bury_job(&job.id, job.token, now, &reason)).await;
                } else {
                    tracing::warn!(
                        service, job = %job.id, failures, retry_in_ms = delay_after_failure, error = %failure,
                        "job failed; will retry"
                    );
                    let retry = store.retry_job(&job.id, job.token, now + delay_after_failure, Some(&failure.0));
                    self.record(&job, "failed", retry).await;
                }
            }
        }
    }

    /// Reports what recording a run's outcome did.
    async fn record(
        &self,
        job: &Job,
        outcome: &'static str,
        recorded: impl std::future::Future<Output = carapace_store::Result<bool>>,
    ) {
        let service = self.handler.service();
        match recorded.await {
            Ok(true) => self.observer.job_outcome(service, outcome),
            Ok(false) => {
                // Another worker claimed it after this lease ran out; its run decides.
                tracing::warn!(service, job = %job.id, outcome, "job lease lost before its outcome was recorded");
                self.observer.job_outcome(service, "lease_lost");
            }
            Err(e) => {
                tracing::error!(service, job = %job.id, error = %e, "could not record the job's outcome; it will run again after its lease");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use carapace_store::{JobQuery, Write};
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::clock::{Clock as _, ManualClock};

    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct Args {
        n: u32,
    }

    enum TestJob {
        Ok(Args),
        Flaky(Args),
    }

    impl JobSpec for TestJob {
        const PREFIX: &'static str = "test.";
        fn kind(&self) -> &'static str {
            match self {
                Self::Ok(_) => "test.ok",
                Self::Flaky(_) => "test.flaky",
            }
        }
        fn id(&self) -> String {
            match self {
                Self::Ok(a) | Self::Flaky(a) => format!("{}/{}", self.kind(), a.n),
            }
        }
        fn payload(&self) -> serde_json::Result<Vec<u8>> {
            match self {
                Self::Ok(a) | Self::Flaky(a) => serde_json::to_vec(a),
            }
        }
        fn decode(kind: &str, payload: &[u8]) -> Result<Self, DecodeError> {
            match kind {
                "test.ok" => decode_payload(payload).map(Self::Ok),
                "test.flaky" => decode_payload(payload).map(Self::Flaky),
                other => Err(DecodeError::UnknownKind(other.to_owned())),
            }
        }
    }

    #[derive(Default)]
    struct Handler {
        runs: AtomicU32,
    }

    #[async_trait::async_trait]
    impl JobHandler for Handler {
        type Job = TestJob;
        fn service(&self) -> &'static str {
            "test"
        }
        async fn run(&self, job: TestJob, _attempts: u32) -> Result<Outcome, JobFailure> {
            self.runs.fetch_add(1, Ordering::SeqCst);
            match job {
                TestJob::Ok(_) => Ok(Outcome::Finished),
                TestJob::Flaky(a) => Err(JobFailure(format!("flaky {}", a.n))),
            }
        }
    }

    #[derive(Default)]
    struct Seen(Mutex<Vec<&'static str>>);
    impl JobObserver for Seen {
        fn job_outcome(&self, _service: &'static str, outcome: &'static str) {
            self.0.lock().unwrap().push(outcome);
        }
    }

    fn worker(max_failures: u32) -> (Worker<Handler>, ManualClock, Arc<Seen>) {
        let (mut core, clock) = crate::runtime::test_core(false, Vec::new());
        let mut settings = (*core.settings).clone();
        settings.jobs.max_failures = max_failures;
        core.settings = Arc::new(settings);
        let seen = Arc::new(Seen::default());
        (Worker::new(core, Handler::default(), seen.clone()), clock, seen)
    }

    #[tokio::test]
    async fn failures_back_off_then_dead_letter_and_unknown_kinds_die_at_once() {
        let (w, clock, seen) = worker(3);
        let store = w.core.store.clone();
        let flaky = TestJob::Flaky(Args { n: 1 }).to_new_job(clock.now_ms()).unwrap();
        let unknown = carapace_store::NewJob {
            id: "u".into(),
            kind: "test.from-the-future".into(),
            run_at_ms: 0,
            payload: b"{}".to_vec(),
        };
        let ok = TestJob::Ok(Args { n: 2 }).to_new_job(clock.now_ms()).unwrap();
        store.apply(vec![Write::Enqueue(flaky), Write::Enqueue(unknown), Write::Enqueue(ok)]).await.unwrap();

        assert_eq!(w.run_due().await.unwrap(), 3);
        assert_eq!(w.run_due().await.unwrap(), 0, "a failed job must wait for its backoff");
        clock.advance(999);
        assert_eq!(w.run_due().await.unwrap(), 0);
        clock.advance(1);
        assert_eq!(w.run_due().await.unwrap(), 1, "first retry after 1 s");
        clock.advance(1_999);
        assert_eq!(w.run_due().await.unwrap(), 0);
        clock.advance(1);
        assert_eq!(w.run_due().await.unwrap(), 1, "second retry after 2 s; third failure buries it");
        clock.advance(3_600_000);
        assert_eq!(w.run_due().await.unwrap(), 0, "a dead job never runs again");

        let dead = store.list_jobs(JobQuery { dead: true, after_id: None, limit: 10 }).await.unwrap();
        let mut ids: Vec<_> = dead.iter().map(|j| j.id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["test.flaky/1", "u"]);
        let flaky = dead.iter().find(|j| j.id == "test.flaky/1").unwrap();
        assert_eq!(flaky.failures, 2, "two failures recorded by retries; the third buried it");
        assert!(flaky.last_error.as_deref().unwrap().contains("3 failures; last: flaky 1"), "{flaky:?}");
        assert!(dead.iter().any(|j| j.id == "u" && j.last_error.as_deref().unwrap().contains("unknown job kind")));
        let mut outcomes = seen.0.lock().unwrap().clone();
        outcomes.sort();
        assert_eq!(outcomes, ["dead_lettered", "dead_lettered", "failed", "failed", "finished"]);
        assert_eq!(w.handler.runs.load(Ordering::SeqCst), 4, "the unknown kind never reached the handler");
    }

    #[tokio::test]
    async fn an_empty_payload_job_cannot_be_built() {
        // Every job is built through `to_new_job`, which encodes its arguments or fails.
        let job = TestJob::Ok(Args { n: 7 }).to_new_job(5).unwrap();
        assert_eq!((job.kind.as_str(), job.id.as_str(), job.run_at_ms), ("test.ok", "test.ok/7", 5));
        assert_eq!(job.payload, br#"{"n":7}"#);
        assert!(matches!(TestJob::decode("test.ok", b""), Err(DecodeError::Payload(_))));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!([1, 2, 3, 4].map(|f| backoff_ms(1_000, f)), [1_000, 2_000, 4_000, 8_000]);
        assert_eq!(backoff_ms(1_000, 40), MAX_BACKOFF_MS);
    }
}
