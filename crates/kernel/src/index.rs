//! Indexed attributes: the facts each listing filters on, handed to the store with every
//! write of a row.
//!
//! The store indexes `(name, value)` attributes ([`Write::Index`]) and answers filtered
//! listings from them ([`Store::scan_filtered`]), but it never reads a body, so the core
//! derives the attributes. [`IndexedStore`] does it in one place: it wraps the store, and
//! for every `Put` of an indexed kind appends, in the same batch, the `Index` write derived
//! from the new body by that kind's [`Indexer`]. No write site has to remember it, and a
//! row and its attributes commit together or not at all.
//!
//! **Backfill.** Rows written before their kind was indexed (or under an older
//! [`Indexer::version`]) have stale or no attributes. The first filtered listing of a
//! `(kind, scope)` in a process checks a marker row (`core.index-version`, id
//! `<kind>`) and, when it is missing or older, re-derives every row of that scope once
//! (each `Index` write names the version it was derived from, so a row updated meanwhile,
//! which the wrapper indexed itself, is left alone), then writes the marker. Scopes are
//! `<account>/<region>` and not enumerable, so backfill is per scope, on first use.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use carapace_store::{
    Clause, Cursor, FilteredPage, Job, JobInfo, JobQuery, Key, Order, Result, Row, Scan, SortedPage, SortedScan, Store,
    Subscription, Write,
};

/// Derives a row's attributes from its body; `None` when the body cannot be read (the row
/// then keeps the attributes it had, and listings skip it as they skip unreadable rows).
pub type Derive = fn(&[u8]) -> Option<Vec<(String, String)>>;

/// How one row kind is indexed.
#[derive(Debug, Clone, Copy)]
pub struct Indexer {
    /// The row kind.
    pub kind: &'static str,
    /// Bumped whenever `derive` changes what it derives: stored rows are then re-derived.
    pub version: u32,
    /// The derivation.
    pub derive: Derive,
}

/// Row kind of the backfill markers: scope as the rows', id the indexed kind, body the
/// [`Indexer::version`] the scope's rows carry.
pub const MARKER_KIND: &str = "core.index-version";

/// Rows re-derived per batch during a backfill.
const BACKFILL_BATCH: usize = 500;

/// A [`Store`] that writes the attributes of indexed kinds with their rows, and backfills a
/// scope before its first filtered listing.
pub struct IndexedStore {
    inner: Arc<dyn Store>,
    indexers: Vec<Indexer>,
    /// `(kind, scope)` pairs known to be backfilled in this process. One entry per account
    /// and region that was listed: bounded by the accounts in use.
    ready: Mutex<HashSet<(String, String)>>,
}

impl IndexedStore {
    /// Wraps `inner`, indexing the kinds of `indexers` (every service's: see
    /// [`crate::module::indexers`]).
    pub fn new(inner: Arc<dyn Store>, indexers: Vec<Indexer>) -> Self {
        Self { inner, indexers, ready: Mutex::new(HashSet::new()) }
    }

    fn indexer(&self, kind: &str) -> Option<&Indexer> {
        self.indexers.iter().find(|i| i.kind == kind)
    }

    /// Backfills `(kind, scope)` unless done already (see the module docs).
    async fn ensure_indexed(&self, kind: &str, scope: &str) -> Result<()> {
        let Some(indexer) = self.indexer(kind) else { return Ok(()) };
        let pair = (kind.to_owned(), scope.to_owned());
        if self.ready.lock().unwrap_or_else(PoisonError::into_inner).contains(&pair) {
            return Ok(());
        }
        let marker_key = Key::new(MARKER_KIND, scope, kind);
        let marker = self.inner.get(&marker_key).await?;
        let stored = marker.as_ref().and_then(|m| std::str::from_utf8(&m.body).ok()?.parse::<u32>().ok());
        if stored != Some(indexer.version) {
            let rows = self.backfill(indexer, scope).await?;
            let body = indexer.version.to_string().into_bytes();
            let row = Row { key: marker_key, version: 0, created_ms: 0, body };
            match self.inner.apply(vec![Write::Put { row, expect: marker.map(|m| m.version) }]).await {
                // Another node (or task) finished the same backfill first.
                Ok(_) | Err(carapace_store::Error::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
            tracing::info!(kind, scope, rows, version = indexer.version, "indexed the attributes of stored rows");
        }
        self.ready.lock().unwrap_or_else(PoisonError::into_inner).insert(pair);
        Ok(())
    }

    /// Re-derives the attributes of every row of `(kind, scope)`. Returns how many.
    async fn backfill(&self, indexer: &Indexer, scope: &str) -> Result<u64> {
        let (mut after, mut done) = (None, 0u64);
        loop {
            let scan = Scan {
                kind: indexer.kind,
                scope,
                id_prefix: None,
                after: after.clone(),
                order: Order::Ascending,
                limit: BACKFILL_BATCH,
            };
            let rows = self.inner.scan(scan).await?;
            let Some(last) = rows.last() else { return Ok(done) };
            after = Some(Cursor { created_ms: last.created_ms, id: last.key.id.clone() });
            let full = rows.len() == BACKFILL_BATCH;
            let writes: Vec<Write> = rows
                .into_iter()
                .filter_map(|row| {
                    let attributes = (indexer.derive)(&row.body)?;
                    Some(Write::Index { key: row.key, expect: Some(row.version), attributes })
                })
                .collect();
            match self.inner.apply(writes.clone()).await {
                Ok(_) => done += writes.len() as u64,
                // A row was updated since the scan (and indexed by its writer): one row per
                // batch, so that one is skipped alone.
                Err(carapace_store::Error::Conflict(_)) => {
                    for write in writes {
                        match self.inner.apply(vec![write]).await {
                            Ok(_) => done += 1,
                            Err(carapace_store::Error::Conflict(_)) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(e) => return Err(e),
            }
            if !full {
                return Ok(done);
            }
        }
    }

    /// `writes` with the `Index` write of each indexed `Put` after it.
    fn with_attributes(&self, writes: Vec<Write>) -> Vec<Write> {
        let mut out = Vec::with_capacity(writes.len() * 2);
        for write in writes {
            let index = match &write {
                Write::Put { row, .. } => self.indexer(&row.key.kind).and_then(|i| {
                    let attributes = (i.derive)(&row.body)?;
                    Some(Write::Index { key: row.key.clone(), expect: None, attributes })
                }),
                _ => None,
            };
            out.push(write);
            out.extend(index);
        }
        out
    }
}

#[async_trait::async_trait]
impl Store for IndexedStore {
    async fn get(&self, key: &Key) -> Result<Option<Row>> {
        self.inner.get(key).await
    }

    async fn scan(&self, scan: Scan<'_>) -> Result<Vec<Row>> {
        self.inner.scan(scan).await
    }

    async fn scan_filtered(&self, scan: Scan<'_>, clauses: &[Clause], budget: usize) -> Result<FilteredPage> {
        self.ensure_indexed(scan.kind, scan.scope).await?;
        self.inner.scan_filtered(scan, clauses, budget).await
    }

    async fn scan_sorted(&self, scan: SortedScan<'_>, clauses: &[Clause], budget: usize) -> Result<SortedPage> {
        self.ensure_indexed(scan.kind, scan.scope).await?;
        self.inner.scan_sorted(scan, clauses, budget).await
    }

    async fn count(&self, kind: &str, scope: &str, since_ms: i64) -> Result<u64> {
        self.inner.count(kind, scope, since_ms).await
    }

    async fn apply(&self, writes: Vec<Write>) -> Result<Vec<u64>> {
        self.inner.apply(self.with_attributes(writes)).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use carapace_store::sqlite::SqliteStore;

    fn color(body: &[u8]) -> Option<Vec<(String, String)>> {
        let text = std::str::from_utf8(body).ok()?;
        Some(vec![("color".to_owned(), text.to_owned())])
    }

    const V1: &[Indexer] = &[Indexer { kind: "k", version: 1, derive: color }];
    const V2: &[Indexer] = &[Indexer { kind: "k", version: 2, derive: color }];

    fn put(id: &str, created_ms: i64, body: &str, expect: Option<u64>) -> Write {
        Write::Put { row: Row { key: Key::new("k", "s", id), version: 0, created_ms, body: body.into() }, expect }
    }

    async fn reds(store: &IndexedStore) -> Vec<String> {
        let scan = Scan { kind: "k", scope: "s", id_prefix: None, after: None, order: Order::Ascending, limit: 100 };
        let page = store.scan_filtered(scan, &[Clause::new("color", ["red"])], 1000).await.unwrap();
        page.rows.into_iter().map(|r| r.key.id).collect()
    }

    /// Writes through the wrapper carry their attributes; rows written before the kind was
    /// indexed, or under an older version, are backfilled on the first listing, once.
    #[tokio::test]
    async fn puts_are_indexed_and_old_rows_backfilled() {
        let raw: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        raw.apply(vec![put("old", 1, "red", None), put("old-blue", 2, "blue", None)]).await.unwrap();
        let store = IndexedStore::new(raw.clone(), V1.to_vec());
        store.apply(vec![put("new", 3, "red", None)]).await.unwrap();
        assert_eq!(reds(&store).await, ["old", "new"], "backfilled on first listing");
        store.apply(vec![put("old", 1, "blue", Some(1))]).await.unwrap();
        assert_eq!(reds(&store).await, ["new"], "an update re-derives");
        let marker = raw.get(&Key::new(MARKER_KIND, "s", "k")).await.unwrap().unwrap();
        assert_eq!(marker.body, b"1");

        // A raw write (as by an older build) is picked up when the version changes.
        raw.apply(vec![put("older", 0, "red", None)]).await.unwrap();
        assert_eq!(reds(&IndexedStore::new(raw.clone(), V1.to_vec())).await, ["new"], "marker says done");
        assert_eq!(reds(&IndexedStore::new(raw.clone(), V2.to_vec())).await, ["older", "new"], "re-derived");
        let marker = raw.get(&Key::new(MARKER_KIND, "s", "k")).await.unwrap().unwrap();
        assert_eq!(marker.body, b"2");
    }
}
