//! Test handles and doubles for Lightsail's unit tests.

/// The kernel's test handles, indexing ACM's and Lightsail's kinds.
pub(crate) fn test_core(dev: bool) -> (carapace_kernel::Core, carapace_kernel::ManualClock) {
    let modules = [carapace_acm::MODULE, crate::MODULE];
    carapace_kernel::runtime::test_core(dev, carapace_kernel::module::indexers(&modules))
}

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use carapace_store::{
    Clause, Error, FilteredPage, Job, JobInfo, JobQuery, Key, Result, Row, Scan, SortedPage, SortedScan, Store,
    Subscription, Write,
};

/// A store that stops committing after a set number of batches, as a process killed between
/// two of its writes would: every `apply` past the allowance fails and writes nothing, until
/// [`allow`](Self::allow) changes the allowance ("the restart"). Reads always work.
pub(crate) struct CrashingStore {
    inner: Arc<dyn Store>,
    /// Batches still allowed; negative: unlimited.
    allowance: AtomicI64,
}

impl CrashingStore {
    pub(crate) fn new(inner: Arc<dyn Store>) -> Self {
        Self { inner, allowance: AtomicI64::new(-1) }
    }

    /// Lets `batches` more batches commit (`None`: all of them), then fails every later one.
    pub(crate) fn allow(&self, batches: Option<u32>) {
        self.allowance.store(batches.map_or(-1, i64::from), Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl Store for CrashingStore {
    async fn get(&self, key: &Key) -> Result<Option<Row>> {
        self.inner.get(key).await
    }
    async fn scan(&self, scan: Scan<'_>) -> Result<Vec<Row>> {
        self.inner.scan(scan).await
    }
    async fn scan_filtered(&self, scan: Scan<'_>, clauses: &[Clause], budget: usize) -> Result<FilteredPage> {
        self.inner.scan_filtered(scan, clauses, budget).await
    }
    async fn scan_sorted(&self, scan: SortedScan<'_>, clauses: &[Clause], budget: usize) -> Result<SortedPage> {
        self.inner.scan_sorted(scan, clauses, budget).await
    }
    async fn count(&self, kind: &str, scope: &str, since_ms: i64) -> Result<u64> {
        self.inner.count(kind, scope, since_ms).await
    }
    async fn apply(&self, writes: Vec<Write>) -> Result<Vec<u64>> {
        let allowed = self
            .allowance
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
                n if n < 0 => Some(n),
                0 => None,
                n => Some(n - 1),
            })
            .is_ok();
        if !allowed {
            return Err(Error::Backend("injected crash: this batch was not committed".into()));
        }
        self.inner.apply(writes).await
    }
    async fn claim_jobs(&self, kind_prefix: &str, now_ms: i64, lease_ms: i64, limit: usize) -> Result<Vec<Job>> {
        self.inner.claim_jobs(kind_prefix, now_ms, lease_ms, limit).await
    }
    async fn finish_job(&self, id: &str, token: u64) -> Result<bool> {
        self.inner.finish_job(id, token).await
    }
    async fn retry_job(&self, id: &str, token: u64, run_at_ms: i64, failure: Option<&str>) -> Result<bool> {
        self.inner.retry_job(id, token, run_at_ms, failure).await
    }
    async fn bury_job(&self, id: &str, token: u64, now_ms: i64, reason: &str) -> Result<bool> {
        self.inner.bury_job(id, token, now_ms, reason).await
    }
    async fn list_jobs(&self, query: JobQuery) -> Result<Vec<JobInfo>> {
        self.inner.list_jobs(query).await
    }
    async fn revive_job(&self, id: &str, run_at_ms: i64) -> Result<bool> {
        self.inner.revive_job(id, run_at_ms).await
    }
    async fn discard_job(&self, id: &str) -> Result<bool> {
        self.inner.discard_job(id).await
    }
    fn subscribe(&self, kinds: &[&str]) -> Subscription {
        self.inner.subscribe(kinds)
    }
    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}
