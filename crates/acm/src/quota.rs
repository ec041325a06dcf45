//! Certificate quotas: how many certificates an account holds in a region, and how many it
//! requested (or imported) in the last 365 days.
//!
//! Both are kept in one small counter row per scope ([`USAGE_KIND`]) written in the same
//! batch as the certificate it counts, at the version read — so concurrent requests cannot
//! both take the last slot, and checking a quota costs one row read instead of counting
//! every certificate (which grew with the account and broke RequestCertificate's latency).
//! Requests are counted per UTC day, so the "rolling year" moves a day at a time. ACM counts
//! deleted certificates toward the yearly quota; so does this.

use std::collections::BTreeMap;

use carapace_store::{Key, Row, Write};
use serde::{Deserialize, Serialize};

use super::{AcmError, CertificateManager, record};

/// Row kind of the usage counters (`<scope>`, id [`USAGE_ID`]).
pub const USAGE_KIND: &str = "acm.quota-usage";
/// Id of the usage row.
pub const USAGE_ID: &str = "usage";

const DAY_MS: i64 = 86_400_000;
const YEAR_DAYS: i64 = 365;

/// The counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Usage {
    /// Certificates held now.
    pub held: u64,
    /// Certificates requested or imported, per UTC day number, for the last 365 days.
    pub days: BTreeMap<i64, u64>,
}

impl Usage {
    fn today(now_ms: i64) -> i64 {
        now_ms.div_euclid(DAY_MS)
    }

    /// Certificates requested in the rolling year ending `now_ms`.
    pub fn this_year(&self, now_ms: i64) -> u64 {
        let first = Self::today(now_ms) - (YEAR_DAYS - 1);
        self.days.range(first..).map(|(_, n)| n).sum()
    }

    /// Counts a new certificate.
    pub fn add(&mut self, now_ms: i64) {
        let today = Self::today(now_ms);
        self.held += 1;
        *self.days.entry(today).or_insert(0) += 1;
        self.days.retain(|day, _| *day > today - YEAR_DAYS);
    }

    /// Counts a deleted certificate (it still counts toward the year).
    pub fn remove(&mut self) {
        self.held = self.held.saturating_sub(1);
    }
}

/// The usage row as read, with the version to write it back at.
#[derive(Debug, Clone)]
pub(crate) struct LoadedUsage {
    /// The counters.
    pub usage: Usage,
    /// The row version; `None` when the row does not exist yet.
    pub version: Option<u64>,
    /// The row's creation time.
    pub created_ms: i64,
}

/// Idle scope locks kept before [`ScopeLocks::lock`] prunes them.
const SCOPE_LOCKS_KEPT: usize = 1_024;

/// Per-scope locks: within one process, writers of a scope's usage row take turns instead
/// of racing (a lost race costs a re-read and a retry). Other nodes sharing the database
/// still race, and the versioned write keeps that correct.
#[derive(Default)]
pub(crate) struct ScopeLocks(
    std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
);

impl ScopeLocks {
    /// Waits for this process's turn to change `scope`'s usage.
    pub(crate) async fn lock(&self, scope: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // One lock per scope ever written would grow without bound (in dev mode every
            // well-formed access key is its own account): drop the locks nobody holds or
            // waits for (the map's own reference is the only one) once there are many.
            if map.len() >= SCOPE_LOCKS_KEPT {
                map.retain(|_, lock| std::sync::Arc::strong_count(lock) > 1);
            }
            std::sync::Arc::clone(map.entry(scope.to_owned()).or_default())
        };
        lock.lock_owned().await
    }
}

/// A short random pause before retrying after losing a race to another node.
pub(crate) async fn backoff(attempt: usize) {
    let mut b = [0u8; 1];
    let _ = aws_lc_rs::rand::fill(&mut b);
    let ms = u64::from(b[0] % 4) + attempt.min(8) as u64;
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

impl CertificateManager {
    /// Reads the usage counters of `scope`. A scope without a counter row starts from the
    /// certificates it holds (all counted as requested today).
    pub(crate) async fn usage(&self, scope: &str) -> Result<LoadedUsage, AcmError> {
        let store = self.core.store.as_ref();
        if let Some(row) = store.get(&Key::new(USAGE_KIND, scope, USAGE_ID)).await? {
            let usage = carapace_kernel::stored::decode("quota usage", &row.body)?;
            return Ok(LoadedUsage { usage, version: Some(row.version), created_ms: row.created_ms });
        }
        let now = self.now_ms();
        let held = store.count(record::KIND, scope, i64::MIN).await?;
        let mut usage = Usage { held, days: BTreeMap::new() };
        if held > 0 {
            usage.days.insert(Usage::today(now), held);
        }
        Ok(LoadedUsage { usage, version: None, created_ms: now })
    }

    /// Refuses a new certificate when a quota is reached.
    pub(crate) fn check_quotas(&self, usage: &Usage, now_ms: i64) -> Result<(), AcmError> {
        let quotas = &*self.settings;
        if usage.held >= u64::from(quotas.certificates_per_account) {
            return Err(AcmError::LimitExceeded(format!(
                "Error: you have reached your limit of {} certificates.",
                quotas.certificates_per_account
            )));
        }
        if usage.this_year(now_ms) >= u64::from(quotas.certificates_per_year) {
            return Err(AcmError::LimitExceeded(format!(
                "Error: you have reached your limit of {} certificates in the last year.",
                quotas.certificates_per_year
            )));
        }
        Ok(())
    }
}

/// The write storing `usage` for `scope` at the version it was read.
pub(crate) fn usage_put(scope: &str, usage: &LoadedUsage) -> Result<Write, AcmError> {
    Ok(Write::Put {
        row: Row {
            key: Key::new(USAGE_KIND, scope, USAGE_ID),
            version: 0,
            created_ms: usage.created_ms,
            body: carapace_kernel::stored::encode("quota usage", &usage.usage)?,
        },
        expect: usage.version,
    })
}

/// Whether a store conflict is on the usage row (another request took a slot first).
pub(crate) fn is_usage_conflict(key: &Key) -> bool {
    key.kind == USAGE_KIND
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_year_rolls_by_day() {
        let mut u = Usage::default();
        let day0 = 20_000 * DAY_MS;
        u.add(day0);
        u.add(day0 + 1);
        assert_eq!((u.held, u.this_year(day0)), (2, 2));
        u.remove();
        assert_eq!((u.held, u.this_year(day0)), (1, 2), "deleted certificates still count for the year");
        assert_eq!(u.this_year(day0 + 364 * DAY_MS), 2);
        assert_eq!(u.this_year(day0 + 365 * DAY_MS), 0);
        u.add(day0 + 400 * DAY_MS);
        assert_eq!(u.days.len(), 1, "old days are pruned");
    }
}

#[cfg(test)]
mod scope_lock_tests {
    use super::*;

    /// Idle locks are dropped once many scopes were seen; held ones stay (and still exclude).
    #[tokio::test]
    async fn idle_scope_locks_are_pruned() {
        let locks = ScopeLocks::default();
        let held = locks.lock("held").await;
        for i in 0..3 * SCOPE_LOCKS_KEPT {
            drop(locks.lock(&format!("scope-{i}")).await);
        }
        let len = locks.0.lock().unwrap().len();
        assert!(len <= SCOPE_LOCKS_KEPT + 1, "{len} locks kept");
        assert!(locks.0.lock().unwrap().contains_key("held"), "a held lock was pruned");
        let again = tokio::time::timeout(std::time::Duration::from_millis(50), locks.lock("held")).await;
        assert!(again.is_err(), "a second holder got the held lock");
        drop(held);
    }
}
