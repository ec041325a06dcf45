//! The backend-agnostic [`Store`] test suite: every implementation runs these unchanged.
//!
//! Each `pub async fn` is one case: it takes a fresh, empty store and panics (plain
//! `assert!`) when the store breaks the trait's contract. A backend describes how to make a
//! store for one case and clean up after it (a [`Fixture`]); [`store_tests!`](crate::store_tests)
//! then expands the list of cases into one test per case, each on its own store, so a
//! failing case never hides the others. The module is compiled in normal builds (not only
//! `cfg(test)`) so another backend's crate, or an integration test, can use it; it therefore
//! uses no dev-dependencies.
//!
//! ```no_run
//! use carapace_store::{sqlite::SqliteStore, testsuite::Fixture, Store};
//!
//! struct InMemory(SqliteStore);
//!
//! impl Fixture for InMemory {
//!     async fn open() -> Self {
//!         InMemory(SqliteStore::open_in_memory().unwrap())
//!     }
//!     fn store(&self) -> &dyn Store {
//!         &self.0
//!     }
//! }
//!
//! // One `#[tokio::test]` per case, in a module `in_memory`.
//! carapace_store::store_tests!(in_memory, InMemory, #[tokio::test]);
//! # fn main() {}
//! ```

use std::collections::{HashMap, HashSet};
use std::future::Future;

use crate::{
    Change, Clause, Cursor, Error, FeedEvent, FilteredPage, Job, JobQuery, Key, NewJob, Order, Result, Row, Scan,
    SortCursor, SortKey, SortedScan, Store, Write,
};

/// A fresh store for one case, with whatever must outlive it (a temporary directory, a
/// database schema) and be cleaned up after it.
pub trait Fixture: Sized {
    /// Makes a new, empty store.
    fn open() -> impl Future<Output = Self>;

    /// The store the case runs on.
    fn store(&self) -> &dyn Store;

    /// Runs after the case passed: closes the store. Some cases close it themselves, so a
    /// failing second close is ignored.
    fn finish(self) -> impl Future<Output = ()> {
        async move {
            let _ = self.store().close().await;
        }
    }
}

/// Expands to a module `$module` holding one test per case of this suite, each on a fresh
/// store from the [`Fixture`] `$fixture`, with `$test` as its test attribute (for example
/// `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]`). The module sees its
/// parent's items, so `$fixture` can be a type defined next to the call.
///
/// `store_tests!(names)` is the list of the cases' names, as strings.
#[macro_export]
macro_rules! store_tests {
    (@with [$($case:ident),* $(,)?] names) => {
        [$(stringify!($case)),*]
    };
    (@with [$($case:ident),* $(,)?] $module:ident, $fixture:ty, #[$test:meta]) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[$test]
                async fn $case() {
                    let fixture = <$fixture as $crate::testsuite::Fixture>::open().await;
                    $crate::testsuite::$case($crate::testsuite::Fixture::store(&fixture)).await;
                    $crate::testsuite::Fixture::finish(fixture).await;
                }
            )*
        }
    };
    ($($args:tt)*) => {
        $crate::store_tests! {@with [
            get_missing,
            insert_then_get,
            insert_twice_conflicts,
            update_with_current_version,
            stale_update_conflicts_and_writes_nothing,
            failed_batch_writes_nothing,
            batch_returns_versions_in_order,
            delete_checks_version,
            opaque_bodies_and_keys,
            scan_orders_ties_by_id,
            pagination_is_stable_under_writes,
            id_prefix_filters_exactly,
            scopes_and_kinds_isolate,
            count_since,
            concurrent_updates_lose_nothing,
            jobs_claim_due_only,
            jobs_lease_prevents_double_claim,
            jobs_lease_expiry_allows_reclaim,
            jobs_retry_releases_lease,
            jobs_finish_removes,
            jobs_enqueue_is_idempotent,
            jobs_claim_respects_limit_and_order,
            jobs_claim_only_the_asked_kinds,
            jobs_stale_lease_tokens_change_nothing,
            jobs_failures_and_dead_letters,
            feed_announces_committed_writes,
            filtered_scans_read_only_matching_rows,
            filtered_scans_match_a_brute_force_filter,
            filtered_scans_stop_at_the_budget_and_resume,
            attributes_follow_puts_and_deletes,
            index_writes_check_the_row,
            filtered_pagination_is_stable_under_writes,
            absent_clauses_select_rows_without_the_attribute,
            sorted_scans_follow_the_value_order,
            ping_and_close,
        ] $($args)*}
    };
}

// ---- helpers ----------------------------------------------------------------------------

/// The kind the suite's rows have (so a cache can be told to cover it).
pub const KIND: &str = "test.thing";
const SCOPE: &str = "111122223333/us-east-1";

fn key(id: &str) -> Key {
    Key::new(KIND, SCOPE, id)
}

fn row(key: Key, created_ms: i64, body: &[u8]) -> Row {
    Row { key, version: 0, created_ms, body: body.to_vec() }
}

fn insert(row: Row) -> Write {
    Write::Put { row, expect: None }
}

fn update(row: Row, expect: u64) -> Write {
    Write::Put { row, expect: Some(expect) }
}

fn job(id: &str, run_at_ms: i64, payload: &[u8]) -> Write {
    Write::Enqueue(NewJob { id: id.to_owned(), kind: "test.job".to_owned(), run_at_ms, payload: payload.to_vec() })
}

/// Unwraps a store result, naming the step that failed.
#[track_caller]
fn must<T>(result: Result<T>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{what}: unexpected error: {e}"),
    }
}

/// Asserts a conflict on exactly `expected`.
#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(result: Result<T>, expected: &Key, what: &str) {
    match result {
        Err(Error::Conflict(k)) => assert!(&k == expected, "{what}: conflict on {k}, expected {expected}"),
        other => panic!("{what}: expected a conflict on {expected}, got {other:?}"),
    }
}

async fn get(store: &dyn Store, id: &str) -> Option<Row> {
    must(store.get(&key(id)).await, "get")
}

async fn scan_page(
    store: &dyn Store,
    scope: &str,
    id_prefix: Option<&str>,
    after: Option<Cursor>,
    order: Order,
    limit: usize,
) -> Vec<Row> {
    let scan = Scan { kind: KIND, scope, id_prefix, after, order, limit };
    must(store.scan(scan).await, "scan")
}

/// Every row of a listing, fetched `page` rows at a time.
async fn scan_all(store: &dyn Store, scope: &str, id_prefix: Option<&str>, order: Order, page: usize) -> Vec<Row> {
    let mut out: Vec<Row> = Vec::new();
    loop {
        let after = out.last().map(|r| Cursor { created_ms: r.created_ms, id: r.key.id.clone() });
        let rows = scan_page(store, scope, id_prefix, after, order, page).await;
        assert!(rows.len() <= page, "scan returned {} rows, limit {page}", rows.len());
        if rows.is_empty() {
            return out;
        }
        out.extend(rows);
    }
}

fn ids(rows: &[Row]) -> Vec<&str> {
    rows.iter().map(|r| r.key.id.as_str()).collect()
}

async fn claim(store: &dyn Store, now_ms: i64, lease_ms: i64, limit: usize) -> Vec<Job> {
    must(store.claim_jobs("", now_ms, lease_ms, limit).await, "claim_jobs")
}

fn job_ids(jobs: &[Job]) -> Vec<&str> {
    jobs.iter().map(|j| j.id.as_str()).collect()
}

// ---- rows -------------------------------------------------------------------------------

/// A missing row reads as `None`, not an error.
pub async fn get_missing(store: &dyn Store) {
    assert!(get(store, "nope").await.is_none());
}

/// An insert stores version 1 and the given creation time and body.
pub async fn insert_then_get(store: &dyn Store) {
    let versions = must(store.apply(vec![insert(row(key("a"), 42, b"hello"))]).await, "insert");
    assert_eq!(versions, vec![1]);
    let got = get(store, "a").await;
    assert_eq!(got, Some(Row { key: key("a"), version: 1, created_ms: 42, body: b"hello".to_vec() }));
}

/// Inserting an existing key conflicts and leaves the first row alone.
pub async fn insert_twice_conflicts(store: &dyn Store) {
    must(store.apply(vec![insert(row(key("a"), 1, b"first"))]).await, "insert");
    let again = store.apply(vec![insert(row(key("a"), 2, b"second"))]).await;
    assert_conflict(again, &key("a"), "second insert");
    let got = get(store, "a").await;
    assert!(got.is_some_and(|r| r.body == b"first" && r.version == 1 && r.created_ms == 1));
}

/// Replacing at the current version bumps it and keeps the creation time.
pub async fn update_with_current_version(store: &dyn Store) {
    must(store.apply(vec![insert(row(key("a"), 10, b"v1"))]).await, "insert");
    let versions = must(store.apply(vec![update(row(key("a"), 99, b"v2"), 1)]).await, "update");
    assert_eq!(versions, vec![2]);
    let got = get(store, "a").await;
    assert_eq!(got, Some(Row { key: key("a"), version: 2, created_ms: 10, body: b"v2".to_vec() }));
    let versions = must(store.apply(vec![update(row(key("a"), 10, b"v3"), 2)]).await, "update");
    assert_eq!(versions, vec![3]);
}

/// A stale or impossible expected version conflicts and writes nothing; so does updating a
/// missing row.
pub async fn stale_update_conflicts_and_writes_nothing(store: &dyn Store) {
    must(store.apply(vec![insert(row(key("a"), 10, b"v1"))]).await, "insert");
    must(store.apply(vec![update(row(key("a"), 10, b"v2"), 1)]).await, "update");
    for stale in [1, 3, 0, u64::MAX] {
        let r = store.apply(vec![update(row(key("a"), 10, b"lost"), stale)]).await;
        assert_conflict(r, &key("a"), "stale update");
    }
    let got = get(store, "a").await;
    assert!(got.is_some_and(|r| r.version == 2 && r.body == b"v2"));
    let r = store.apply(vec![update(row(key("missing"), 10, b"x"), 1)]).await;
    assert_conflict(r, &key("missing"), "update of a missing row");
    assert!(get(store, "missing").await.is_none());
}

/// A batch whose second write conflicts writes nothing: not the first put, not the jobs
/// enqueued around it, not the writes after it.
pub async fn failed_batch_writes_nothing(store: &dyn Store) {
    must(store.apply(vec![insert(row(key("b"), 1, b"b1"))]).await, "insert b");
    let batch = vec![
        insert(row(key("a"), 1, b"a")),
        job("job-before", 0, b"p"),
        insert(row(key("b"), 2, b"b-again")),
        job("job-after", 0, b"p"),
        insert(row(key("c"), 3, b"c")),
    ];
    assert_conflict(store.apply(batch).await, &key("b"), "batch");
    assert!(get(store, "a").await.is_none(), "first put of a failed batch was written");
    assert!(get(store, "c").await.is_none(), "last put of a failed batch was written");
    assert!(get(store, "b").await.is_some_and(|r| r.version == 1 && r.body == b"b1"));
    let jobs = claim(store, i64::MAX / 2, 1000, 10).await;
    assert!(jobs.is_empty(), "failed batch enqueued {:?}", job_ids(&jobs));

    // A failed update-and-delete batch leaves both rows as they were.
    let batch = vec![update(row(key("b"), 1, b"b2"), 1), Write::Delete { key: key("a"), expect: 1 }];
    assert_conflict(store.apply(batch).await, &key("a"), "update then bad delete");
    assert!(get(store, "b").await.is_some_and(|r| r.version == 1 && r.body == b"b1"));
}

/// Put versions come back in batch order; later writes see earlier ones in the same batch;
/// an empty batch is fine.
pub async fn batch_returns_versions_in_order(store: &dyn Store) {
    must(store.apply(vec![insert(row(key("old"), 1, b"o"))]).await, "insert");
    let batch = vec![
        insert(row(key("new"), 2, b"n1")),
        job("j", 0, b""),
        update(row(key("old"), 1, b"o2"), 1),
        update(row(key("new"), 2, b"n2"), 1),
        Write::Delete { key: key("old"), expect: 2 },
        insert(row(key("old"), 5, b"reborn")),
    ];
    assert_eq!(must(store.apply(batch).await, "batch"), vec![1, 2, 2, 1]);
    assert!(get(store, "new").await.is_some_and(|r| r.version == 2 && r.body == b"n2"));
    assert!(get(store, "old").await.is_some_and(|r| r.version == 1 && r.created_ms == 5));
    assert_eq!(must(store.apply(Vec::new()).await, "empty batch"), Vec::<u64>::new());
}

/// Delete needs the current version; a missing row conflicts; a deleted key can be reused.
pub async fn delete_checks_version(store: &dyn Store) {
    must(store.apply(vec![insert(row(key("a"), 1, b"a"))]).await, "insert");
    must(store.apply(vec![update(row(key("a"), 1, b"a2"), 1)]).await, "update");
    let wrong = store.apply(vec![Write::Delete { key: key("a"), expect: 1 }]).await;
    assert_conflict(wrong, &key("a"), "delete at a stale version");
    assert!(get(store, "a").await.is_some());
    must(store.apply(vec![Write::Delete { key: key("a"), expect: 2 }]).await, "delete");
    assert!(get(store, "a").await.is_none());
    let again = store.apply(vec![Write::Delete { key: key("a"), expect: 2 }]).await;
    assert_conflict(again, &key("a"), "delete of a missing row");
    let versions = must(store.apply(vec![insert(row(key("a"), 7, b"new"))]).await, "reinsert");
    assert_eq!(versions, vec![1]);
}

/// Bodies are bytes (NUL, non-UTF-8, empty, large); keys may be empty or non-ASCII.
pub async fn opaque_bodies_and_keys(store: &dyn Store) {
    let binary: Vec<u8> = (0..=255u8).chain([0, 0, 0xff]).collect();
    let large = vec![0xa5; 256 * 1024];
    let rows = [
        row(Key::new(KIND, "", "global"), 1, &binary),
        row(Key::new(KIND, SCOPE, "empty-body"), 2, b""),
        row(Key::new(KIND, SCOPE, "größe/é✓"), 3, &large),
        row(Key::new(KIND, SCOPE, "quote'\"; --"), 4, b"sql"),
        row(Key::new(KIND, SCOPE, ""), -5, b"empty id, negative time"),
    ];
    must(store.apply(rows.iter().cloned().map(insert).collect()).await, "insert");
    for expected in rows {
        let got = must(store.get(&expected.key).await, "get");
        assert_eq!(got, Some(Row { version: 1, ..expected }));
    }
}

/// Listings follow `(created_ms, id)` both ways, ties broken by id; `limit` caps a page.
pub async fn scan_orders_ties_by_id(store: &dyn Store) {
    let rows = [("b", 20), ("c", 10), ("a", 20), ("z", 5), ("m", 20), ("d", 30)];
    must(store.apply(rows.iter().map(|(id, t)| insert(row(key(id), *t, id.as_bytes()))).collect()).await, "insert");
    let asc = scan_page(store, SCOPE, None, None, Order::Ascending, 100).await;
    assert_eq!(ids(&asc), ["z", "c", "a", "b", "m", "d"]);
    assert!(asc.iter().all(|r| r.version == 1 && r.body == r.key.id.as_bytes()));
    let desc = scan_page(store, SCOPE, None, None, Order::Descending, 100).await;
    assert_eq!(ids(&desc), ["d", "m", "b", "a", "c", "z"]);
    let first = scan_page(store, SCOPE, None, None, Order::Ascending, 3).await;
    assert_eq!(ids(&first), ["z", "c", "a"]);
    // Resume inside a tie: after (20, "a") comes (20, "b").
    let next =
        scan_page(store, SCOPE, None, Some(Cursor { created_ms: 20, id: "a".into() }), Order::Ascending, 2).await;
    assert_eq!(ids(&next), ["b", "m"]);
    let next =
        scan_page(store, SCOPE, None, Some(Cursor { created_ms: 20, id: "m".into() }), Order::Descending, 2).await;
    assert_eq!(ids(&next), ["b", "a"]);
    // A cursor need not name an existing row.
    let next =
        scan_page(store, SCOPE, None, Some(Cursor { created_ms: 20, id: "aa".into() }), Order::Ascending, 10).await;
    assert_eq!(ids(&next), ["b", "m", "d"]);
    assert!(scan_page(store, SCOPE, None, None, Order::Ascending, 0).await.is_empty());
    assert!(scan_page(store, "other", None, None, Order::Ascending, 10).await.is_empty());
    let paged = scan_all(store, SCOPE, None, Order::Descending, 1).await;
    assert_eq!(ids(&paged), ["d", "m", "b", "a", "c", "z"]);
}

/// Paging through 1,000 rows while rows are inserted and deleted between pages visits every
/// row that existed throughout exactly once, in order, and never repeats a row.
pub async fn pagination_is_stable_under_writes(store: &dyn Store) {
    for order in [Order::Ascending, Order::Descending] {
        let scope = format!("{order:?}");
        let key = |id: &str| Key::new(KIND, scope.as_str(), id);
        // Ids are a permutation of creation order, and three rows share each timestamp, so
        // the id tie-break is exercised on most pages.
        let originals: Vec<Row> =
            (0..1000i64).map(|i| row(key(&format!("row-{:04}", (i * 7919) % 1000)), 1_000 + i / 3, b"x")).collect();
        must(store.apply(originals.iter().cloned().map(insert).collect()).await, "insert 1000");

        let mut present: HashSet<String> = originals.iter().map(|r| r.key.id.clone()).collect();
        let mut ahead = Vec::new(); // inserted beyond the cursor: must be seen once
        let mut behind = Vec::new(); // inserted before the cursor: must never be seen
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut last: Option<(i64, String)> = None;
        let mut pages = 0;
        loop {
            let after = last.clone().map(|(created_ms, id)| Cursor { created_ms, id });
            let page = scan_page(store, &scope, None, after, order, 37).await;
            if page.is_empty() {
                break;
            }
            for r in &page {
                let pos = (r.created_ms, r.key.id.clone());
                if let Some(prev) = &last {
                    let in_order = match order {
                        Order::Ascending => &pos > prev,
                        Order::Descending => &pos < prev,
                    };
                    assert!(in_order, "{order:?}: {pos:?} came after {prev:?}");
                }
                *seen.entry(r.key.id.clone()).or_default() += 1;
                last = Some(pos);
            }
            pages += 1;
            assert!(pages < 200, "pagination does not end");
            if page.len() < 37 {
                // The tail: writing on would add a row ahead of the cursor per page forever.
                continue;
            }

            // Between pages: one row beyond the end, one before the start, one inside a tie,
            // and up to three deletions of original rows (seen or not yet seen).
            let p = i64::from(pages);
            let (ahead_ms, behind_ms) = match order {
                Order::Ascending => (1_000_000 + p, -p),
                Order::Descending => (-p, 1_000_000 + p),
            };
            let (ahead_id, behind_id) = (format!("ahead-{p:03}"), format!("behind-{p:03}"));
            let mut writes = vec![
                insert(row(key(&ahead_id), ahead_ms, b"a")),
                insert(row(key(&behind_id), behind_ms, b"b")),
                insert(row(key(&format!("row-{:04}-tie", p * 37 % 1000)), 1_000 + p * 12, b"t")),
            ];
            ahead.push(ahead_id);
            behind.push(behind_id);
            for j in [p * 13 % 1000, (p * 29 + 7) % 1000, (p * 31 + 500) % 1000] {
                let id = format!("row-{j:04}");
                if present.remove(&id) {
                    writes.push(Write::Delete { key: key(&id), expect: 1 });
                }
            }
            must(store.apply(writes).await, "writes between pages");
        }

        assert!(ahead.len() >= 25, "too few pages with writes between them: {}", ahead.len());
        assert!(present.len() > 700, "test deleted too much: {} left", present.len());
        for id in &present {
            assert_eq!(seen.get(id), Some(&1), "{order:?}: row {id} present throughout");
        }
        for id in &ahead {
            assert_eq!(seen.get(id), Some(&1), "{order:?}: row {id} inserted ahead of the cursor");
        }
        for id in &behind {
            assert!(!seen.contains_key(id), "{order:?}: row {id} inserted behind the cursor");
        }
        if let Some((id, n)) = seen.iter().find(|(_, n)| **n > 1) {
            panic!("{order:?}: row {id} listed {n} times");
        }
    }
}

/// `id_prefix` matches literally (no wildcards), by whole characters, and pages correctly.
pub async fn id_prefix_filters_exactly(store: &dyn Store) {
    let ids_in =
        ["d-1/a", "d-1/b", "d-10/a", "d-2/a", "d-1", "a_b", "axb", "a%c", "abc", "é/1", "é/2", "éx", "e/1", "A_b"];
    must(
        store.apply(ids_in.iter().enumerate().map(|(i, id)| insert(row(key(id), 100 - i as i64, b""))).collect()).await,
        "insert",
    );
    must(store.apply(vec![insert(row(Key::new(KIND, "other", "d-1/z"), 0, b""))]).await, "insert other");

    let list = |prefix: &'static str| async move {
        let mut got: Vec<String> = scan_page(store, SCOPE, Some(prefix), None, Order::Ascending, 100)
            .await
            .into_iter()
            .map(|r| r.key.id)
            .collect();
        got.sort();
        got
    };
    assert_eq!(list("d-1/").await, ["d-1/a", "d-1/b"]);
    assert_eq!(list("d-1").await, ["d-1", "d-1/a", "d-1/b", "d-10/a"]);
    assert_eq!(list("a_").await, ["a_b"]);
    assert_eq!(list("a%").await, ["a%c"]);
    assert_eq!(list("é/").await, ["é/1", "é/2"]);
    assert_eq!(list("é").await, ["é/1", "é/2", "éx"]);
    assert_eq!(list("a_b").await, ["a_b"]);
    assert!(list("zzz").await.is_empty());
    assert!(list("d-1/a/").await.is_empty());
    assert_eq!(list("").await.len(), ids_in.len());

    // Paging with a prefix among many non-matching rows.
    let many: Vec<Write> = (0..60i64)
        .flat_map(|i| {
            [
                insert(row(key(&format!("p/{i:02}")), 1_000 + i / 2, b"")),
                insert(row(key(&format!("q/{i:02}")), 1_000 + i / 2, b"")),
            ]
        })
        .collect();
    must(store.apply(many).await, "insert many");
    for order in [Order::Ascending, Order::Descending] {
        let got = scan_all(store, SCOPE, Some("p/"), order, 7).await;
        let mut expected: Vec<String> = (0..60).map(|i| format!("p/{i:02}")).collect();
        if order == Order::Descending {
            expected.reverse();
        }
        assert_eq!(ids(&got), expected.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

/// A scope (or kind) never sees another's rows, even with equal ids.
pub async fn scopes_and_kinds_isolate(store: &dyn Store) {
    let a = |id: &str| Key::new(KIND, "acct-a/us-east-1", id);
    let b = |id: &str| Key::new(KIND, "acct-b/us-east-1", id);
    let other_kind = |id: &str| Key::new("test.other", "acct-a/us-east-1", id);
    must(
        store
            .apply(vec![
                insert(row(a("same"), 1, b"A")),
                insert(row(b("same"), 1, b"B")),
                insert(row(other_kind("same"), 1, b"K")),
                insert(row(a("only-a"), 2, b"A")),
            ])
            .await,
        "insert",
    );
    assert!(must(store.get(&b("only-a")).await, "get").is_none());
    assert!(must(store.get(&b("same")).await, "get").is_some_and(|r| r.body == b"B"));
    assert!(must(store.get(&other_kind("same")).await, "get").is_some_and(|r| r.body == b"K"));
    let listing = |scope: &'static str| async move {
        let scan = Scan { kind: KIND, scope, id_prefix: None, after: None, order: Order::Ascending, limit: 10 };
        must(store.scan(scan).await, "scan")
    };
    let in_a = listing("acct-a/us-east-1").await;
    assert_eq!(ids(&in_a), ["same", "only-a"]);
    assert!(in_a.iter().all(|r| r.body == b"A" && r.key.scope == "acct-a/us-east-1" && r.key.kind == KIND));
    let in_b = listing("acct-b/us-east-1").await;
    assert_eq!(ids(&in_b), ["same"]);
    assert!(listing("acct-a").await.is_empty(), "scope matched by prefix");
    // Writes in one scope cannot touch the other: B's row is at version 1, but A has no row.
    let cross = store.apply(vec![Write::Delete { key: b("only-a"), expect: 1 }]).await;
    assert_conflict(cross, &b("only-a"), "delete across scopes");
    assert_eq!(must(store.count(KIND, "acct-b/us-east-1", i64::MIN).await, "count"), 1);
    assert_eq!(must(store.count("test.other", "acct-a/us-east-1", i64::MIN).await, "count"), 1);
}

/// `count` counts one `(kind, scope)` from `since_ms` inclusive.
pub async fn count_since(store: &dyn Store) {
    let rows = vec![
        insert(row(key("a"), 10, b"")),
        insert(row(key("b"), 20, b"")),
        insert(row(key("c"), 20, b"")),
        insert(row(key("d"), 30, b"")),
        insert(row(Key::new(KIND, "elsewhere", "e"), 20, b"")),
        insert(row(Key::new("test.other", SCOPE, "f"), 20, b"")),
    ];
    must(store.apply(rows).await, "insert");
    let count = |since| async move { must(store.count(KIND, SCOPE, since).await, "count") };
    assert_eq!(count(i64::MIN).await, 4);
    assert_eq!(count(10).await, 4);
    assert_eq!(count(11).await, 3);
    assert_eq!(count(20).await, 3);
    assert_eq!(count(21).await, 1);
    assert_eq!(count(31).await, 0);
    assert_eq!(must(store.count(KIND, "nobody", i64::MIN).await, "count"), 0);
    must(store.apply(vec![Write::Delete { key: key("d"), expect: 1 }]).await, "delete");
    assert_eq!(count(i64::MIN).await, 3);
}

/// Concurrent read-modify-write loops with optimistic retries lose no update.
pub async fn concurrent_updates_lose_nothing(store: &dyn Store) {
    must(store.apply(vec![insert(row(key("counter"), 0, b"0"))]).await, "insert");
    async fn increment(store: &dyn Store, times: u32) -> u32 {
        let mut conflicts = 0;
        let mut done = 0;
        while done < times {
            let Some(current) = get(store, "counter").await else { panic!("counter vanished") };
            let n: u64 = match std::str::from_utf8(&current.body).ok().and_then(|s| s.parse().ok()) {
                Some(n) => n,
                None => panic!("counter body is not a number"),
            };
            let next = row(key("counter"), 0, (n + 1).to_string().as_bytes());
            match store.apply(vec![update(next, current.version)]).await {
                Ok(_) => done += 1,
                Err(Error::Conflict(_)) => conflicts += 1,
                Err(e) => panic!("increment: {e}"),
            }
            assert!(conflicts < 10_000, "increment starves");
        }
        conflicts
    }
    tokio::join!(increment(store, 25), increment(store, 25), increment(store, 25), increment(store, 25));
    let got = get(store, "counter").await;
    assert!(got.is_some_and(|r| r.version == 101 && r.body == b"100"), "lost an update");
}

// ---- jobs -------------------------------------------------------------------------------

/// Only jobs whose run time has come are claimed; a claim reports the lease and prior
/// attempts; enqueuing returns no versions.
pub async fn jobs_claim_due_only(store: &dyn Store) {
    let versions = must(store.apply(vec![job("j1", 100, b"one"), job("j2", 200, b"two")]).await, "enqueue");
    assert!(versions.is_empty());
    assert!(claim(store, 99, 1000, 10).await.is_empty());
    let jobs = claim(store, 150, 1000, 10).await;
    assert_eq!(
        jobs,
        vec![Job {
            id: "j1".into(),
            kind: "test.job".into(),
            payload: b"one".to_vec(),
            attempts: 0,
            failures: 0,
            lease_until_ms: 1150,
            token: jobs[0].token,
        }]
    );
    assert!(claim(store, 150, 1000, 10).await.is_empty());
    let jobs = claim(store, 200, 1000, 10).await;
    assert_eq!(job_ids(&jobs), ["j2"]);
}

/// A leased job cannot be claimed again before the lease ends, even by simultaneous claims.
pub async fn jobs_lease_prevents_double_claim(store: &dyn Store) {
    must(store.apply(vec![job("j", 0, b"")]).await, "enqueue");
    assert_eq!(job_ids(&claim(store, 10, 100, 10).await), ["j"]);
    assert!(claim(store, 50, 100, 10).await.is_empty());
    assert!(claim(store, 109, 100, 10).await.is_empty());

    let many: Vec<Write> = (0..20).map(|i| job(&format!("k{i:02}"), 0, b"")).collect();
    must(store.apply(many).await, "enqueue");
    let (a, b, c) = tokio::join!(
        store.claim_jobs("", 200, 100, 8),
        store.claim_jobs("", 200, 100, 8),
        store.claim_jobs("", 200, 100, 8)
    );
    let mut all: Vec<String> = [a, b, c].into_iter().flat_map(|r| must(r, "concurrent claim")).map(|j| j.id).collect();
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), total, "a job was claimed twice");
    assert_eq!(total, 21, "3 claims of 8 should take all 21 due jobs");
}

/// When a lease runs out (at exactly `lease_until_ms`) the job can be claimed again, and the
/// attempt count grows.
pub async fn jobs_lease_expiry_allows_reclaim(store: &dyn Store) {
    must(store.apply(vec![job("j", 0, b"p")]).await, "enqueue");
    let first = claim(store, 10, 100, 10).await;
    assert!(first.len() == 1 && first[0].attempts == 0 && first[0].lease_until_ms == 110);
    // A leased job is due again at its lease's end (so claims need not pass over it).
    let listed = must(store.list_jobs(JobQuery { dead: false, after_id: None, limit: 10 }).await, "list");
    assert_eq!(listed[0].run_at_ms, 110);
    let second = claim(store, 110, 100, 10).await;
    assert!(second.len() == 1 && second[0].attempts == 1 && second[0].lease_until_ms == 210);
    assert!(claim(store, 209, 100, 10).await.is_empty());
    let third = claim(store, 1000, 5, 10).await;
    assert!(third.len() == 1 && third[0].attempts == 2 && third[0].payload == b"p");
}

/// `retry_job` moves the run time and releases the lease; unknown ids are ignored.
pub async fn jobs_retry_releases_lease(store: &dyn Store) {
    must(store.apply(vec![job("j", 0, b"")]).await, "enqueue");
    let jobs = claim(store, 0, 10_000, 10).await;
    assert_eq!(job_ids(&jobs), ["j"]);
    assert!(must(store.retry_job("j", jobs[0].token, 500, None).await, "retry"));
    assert!(claim(store, 499, 10, 10).await.is_empty(), "retried job ran early");
    let again = claim(store, 500, 10, 10).await;
    assert!(again.len() == 1 && again[0].attempts == 1, "lease not released: {again:?}");
    // Retrying into the past makes it due at once.
    assert!(must(store.retry_job("j", again[0].token, -1, None).await, "retry"));
    assert_eq!(claim(store, 501, 10, 10).await.len(), 1);
    assert!(!must(store.retry_job("unknown", 1, 0, None).await, "retry of an unknown job"));
}

/// A finished job is gone for good; finishing twice or an unknown id is fine.
pub async fn jobs_finish_removes(store: &dyn Store) {
    must(store.apply(vec![job("j", 0, b""), job("k", 0, b"")]).await, "enqueue");
    let first = claim(store, 0, 10, 1).await;
    assert_eq!(job_ids(&first), ["j"]);
    assert!(must(store.finish_job("j", first[0].token).await, "finish"));
    assert!(!must(store.finish_job("j", first[0].token).await, "finish again"));
    assert!(!must(store.finish_job("unknown", 1).await, "finish unknown"));
    let rest = claim(store, 1 << 40, 10, 10).await;
    assert_eq!(job_ids(&rest), ["k"]);
    assert!(must(store.finish_job("k", rest[0].token).await, "finish a leased job"));
    assert!(claim(store, 1 << 41, 10, 10).await.is_empty());
}

/// A worker whose lease expired and whose job another worker claimed since cannot finish,
/// retry or bury that claim: its stale token changes nothing and it is told so.
pub async fn jobs_stale_lease_tokens_change_nothing(store: &dyn Store) {
    must(store.apply(vec![job("j", 0, b"p")]).await, "enqueue");
    let slow = claim(store, 0, 100, 10).await.remove(0);
    let fresh = claim(store, 100, 100, 10).await.remove(0);
    assert_ne!(slow.token, fresh.token, "a new claim must get a new token");
    assert!(!must(store.finish_job("j", slow.token).await, "stale finish"));
    assert!(!must(store.retry_job("j", slow.token, 0, Some("late")).await, "stale retry"));
    assert!(!must(store.bury_job("j", slow.token, 150, "late").await, "stale bury"));
    // The fresh claim still holds: nothing released its lease or moved its run time.
    assert!(claim(store, 150, 100, 10).await.is_empty(), "a stale token released the new lease");
    let live = must(store.list_jobs(JobQuery { dead: false, after_id: None, limit: 10 }).await, "list");
    assert!(live.len() == 1 && live[0].failures == 0 && live[0].last_error.is_none(), "{live:?}");
    assert!(must(store.finish_job("j", fresh.token).await, "current finish"));
    assert!(must(store.list_jobs(JobQuery { dead: false, after_id: None, limit: 10 }).await, "list").is_empty());
}

/// Failed runs are counted and their last error kept; a buried job is never claimed again,
/// is listed as dead, and can be revived (due again, failures reset) or discarded.
pub async fn jobs_failures_and_dead_letters(store: &dyn Store) {
    must(store.apply(vec![job("a", 0, b""), job("b", 0, b""), job("c", 0, b"")]).await, "enqueue");
    let jobs = claim(store, 0, 100, 10).await;
    assert_eq!(job_ids(&jobs), ["a", "b", "c"]);
    assert!(must(store.retry_job("a", jobs[0].token, 0, Some("boom")).await, "fail a"));
    assert!(must(store.bury_job("b", jobs[1].token, 42, "unknown job kind").await, "bury b"));
    assert!(must(store.bury_job("c", jobs[2].token, 43, "too many failures").await, "bury c"));
    let again = claim(store, 10, 100, 10).await;
    assert_eq!(job_ids(&again), ["a"], "a buried job was claimed");
    assert_eq!((again[0].failures, again[0].attempts), (1, 1));
    assert!(!must(store.bury_job("b", again[0].token, 44, "x").await, "bury with another job's token"));

    let dead = must(store.list_jobs(JobQuery { dead: true, after_id: None, limit: 10 }).await, "list dead");
    assert_eq!(
        dead.iter().map(|j| (j.id.as_str(), j.dead_at_ms)).collect::<Vec<_>>(),
        [("b", Some(42)), ("c", Some(43))]
    );
    assert_eq!(dead[0].last_error.as_deref(), Some("unknown job kind"));
    let page = must(store.list_jobs(JobQuery { dead: true, after_id: Some("b".into()), limit: 10 }).await, "page");
    assert_eq!(page.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["c"]);
    let live = must(store.list_jobs(JobQuery { dead: false, after_id: None, limit: 10 }).await, "list live");
    assert!(live.len() == 1 && live[0].id == "a" && live[0].last_error.as_deref() == Some("boom"), "{live:?}");

    assert!(must(store.revive_job("b", 50).await, "revive"));
    assert!(!must(store.revive_job("b", 50).await, "revive a live job"));
    assert!(!must(store.discard_job("a").await, "discard a live job"));
    assert!(must(store.discard_job("c").await, "discard"));
    assert!(must(store.list_jobs(JobQuery { dead: true, after_id: None, limit: 10 }).await, "list").is_empty());
    // `a`'s last claim (at 10, lease 100) lapsed: it is due from the lease's end, 110, so
    // after `b`, revived for 50.
    let revived = claim(store, 1_000, 100, 10).await;
    assert_eq!(job_ids(&revived), ["b", "a"]);
    assert_eq!(revived[0].failures, 0, "revive resets failures");
}

/// Every committed put and delete is announced to subscribers of its kind, with the version
/// it reached; a batch that fails announces nothing; jobs are not rows.
pub async fn feed_announces_committed_writes(store: &dyn Store) {
    let mut things = store.subscribe(&[KIND]);
    let mut others = store.subscribe(&["test.other"]);
    must(store.apply(vec![insert(row(key("a"), 1, b"1")), job("j", 0, b"")]).await, "insert");
    must(store.apply(vec![update(row(key("a"), 1, b"2"), 1)]).await, "update");
    let other = Key::new("test.other", SCOPE, "o");
    must(store.apply(vec![insert(row(other.clone(), 1, b""))]).await, "insert other");
    let _ = store.apply(vec![insert(row(key("b"), 1, b"")), update(row(key("a"), 1, b"x"), 1)]).await;
    must(store.apply(vec![Write::Delete { key: key("a"), expect: 2 }]).await, "delete");

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), things.next()).await;
        match event.expect("announcement within 10 s").expect("feed open") {
            FeedEvent::Changed(c) => seen.push((c.key.id, c.version)),
            FeedEvent::Resync => {}
        }
    }
    assert_eq!(seen, [("a".to_owned(), Some(1)), ("a".to_owned(), Some(2)), ("a".to_owned(), None)]);
    let event = tokio::time::timeout(std::time::Duration::from_secs(10), others.next()).await;
    assert_eq!(event.expect("other kind announced"), Some(FeedEvent::Changed(Change { key: other, version: Some(1) })));
}

/// Enqueuing an existing id changes nothing: payload, run time, lease and attempts stay.
pub async fn jobs_enqueue_is_idempotent(store: &dyn Store) {
    must(store.apply(vec![job("j", 0, b"first")]).await, "enqueue");
    must(store.apply(vec![job("j", 0, b"second")]).await, "enqueue again");
    let jobs = claim(store, 0, 100, 10).await;
    assert!(jobs.len() == 1 && jobs[0].payload == b"first");
    must(store.apply(vec![job("j", -50, b"third"), insert(row(key("a"), 1, b""))]).await, "enqueue in a batch");
    assert!(get(store, "a").await.is_some(), "batch with a duplicate enqueue did not apply");
    assert!(claim(store, 50, 100, 10).await.is_empty(), "re-enqueue reset the lease");
    let jobs = claim(store, 100, 100, 10).await;
    assert!(jobs.len() == 1 && jobs[0].attempts == 1 && jobs[0].payload == b"first");
}

/// `limit` caps a claim, and due jobs are handed out oldest run time first.
pub async fn jobs_claim_respects_limit_and_order(store: &dyn Store) {
    let enqueue = [50, 10, 40, 20, 30].map(|t| job(&format!("j{t}"), t, b""));
    must(store.apply(enqueue.to_vec()).await, "enqueue");
    assert!(claim(store, 100, 1000, 0).await.is_empty());
    assert_eq!(job_ids(&claim(store, 100, 1000, 2).await), ["j10", "j20"]);
    assert_eq!(job_ids(&claim(store, 100, 1000, 10).await), ["j30", "j40", "j50"]);
}

/// A worker claims only the kinds it asks for: the prefix is matched literally (`_` and
/// `%` are not wildcards), and other services' jobs stay queued for their own workers.
pub async fn jobs_claim_only_the_asked_kinds(store: &dyn Store) {
    let enqueue = |id: &str, kind: &str, t: i64| {
        Write::Enqueue(NewJob { id: id.to_owned(), kind: kind.to_owned(), run_at_ms: t, payload: Vec::new() })
    };
    let jobs = vec![
        enqueue("a1", "acm.issue", 10),
        enqueue("d1", "ds.probe", 20),
        enqueue("a2", "acm.timeout", 30),
        enqueue("x1", "acmx.other", 40),
        enqueue("u1", "acm_issue", 50),
        enqueue("n1", "acm", 60),
        enqueue("m1", "acm.renew.x", 70),
    ];
    must(store.apply(jobs).await, "enqueue");
    let claimed = must(store.claim_jobs("acm.", 100, 1000, 10).await, "claim acm.");
    assert_eq!(job_ids(&claimed), ["a1", "a2", "m1"]);
    assert!(claimed.iter().all(|j| j.kind.starts_with("acm.")));
    assert_eq!(job_ids(&must(store.claim_jobs("ds.", 100, 1000, 10).await, "claim ds.")), ["d1"]);
    assert!(must(store.claim_jobs("acm.", 100, 1000, 10).await, "claim again").is_empty());
    // A prefix that is not a whole queue.
    assert_eq!(job_ids(&must(store.claim_jobs("acmx", 100, 1000, 10).await, "claim acmx")), ["x1"]);
    assert_eq!(job_ids(&claim(store, 100, 1000, 10).await), ["u1", "n1"], "the empty prefix takes every kind");
}

// ---- lifecycle --------------------------------------------------------------------------

/// `ping` works while open; after `close` every call fails with a backend error.
pub async fn ping_and_close(store: &dyn Store) {
    must(store.ping().await, "ping");
    must(store.apply(vec![insert(row(key("a"), 1, b""))]).await, "insert");
    must(store.close().await, "close");
    let is_backend = |r: Result<()>| matches!(r, Err(Error::Backend(_)));
    assert!(is_backend(store.ping().await), "ping after close");
    assert!(is_backend(store.get(&key("a")).await.map(drop)), "get after close");
    assert!(is_backend(store.apply(vec![insert(row(key("b"), 1, b""))]).await.map(drop)));
    assert!(is_backend(store.claim_jobs("", 0, 1, 1).await.map(drop)), "claim after close");
    let scan = Scan { kind: KIND, scope: SCOPE, id_prefix: None, after: None, order: Order::Ascending, limit: 1 };
    assert!(is_backend(store.scan(scan).await.map(drop)), "scan after close");
    assert!(is_backend(store.count(KIND, SCOPE, 0).await.map(drop)), "count after close");
}

// ---- filtered listings ----------------------------------------------------------------------

fn index(id: &str, attributes: &[(&str, &str)]) -> Write {
    Write::Index {
        key: key(id),
        expect: None,
        attributes: attributes.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect(),
    }
}

async fn filtered(
    store: &dyn Store,
    after: Option<Cursor>,
    order: Order,
    limit: usize,
    clauses: &[Clause],
    budget: usize,
) -> FilteredPage {
    let scan = Scan { kind: KIND, scope: SCOPE, id_prefix: None, after, order, limit };
    must(store.scan_filtered(scan, clauses, budget).await, "scan_filtered")
}

/// Every row of a filtered listing, `page` rows at a time, following `resume`.
async fn filtered_all(store: &dyn Store, order: Order, page: usize, clauses: &[Clause], budget: usize) -> Vec<Row> {
    let (mut out, mut after, mut calls) = (Vec::new(), None, 0);
    loop {
        let got = filtered(store, after, order, page, clauses, budget).await;
        assert!(got.rows.len() <= page && got.examined <= budget.max(page), "page of {page}: {got:?}");
        out.extend(got.rows);
        calls += 1;
        assert!(calls < 10_000, "a filtered listing does not end");
        match got.resume {
            Some(c) => after = Some(c),
            None => return out,
        }
    }
}

/// 400 rows: `color` red on every tenth (40), else blue (odd) or green (even); `size` big on
/// even rows; `tag` a and b on every fifth (a row with two values of one name).
async fn colored_rows(store: &dyn Store) -> Vec<(String, Vec<(String, String)>)> {
    let mut described = Vec::new();
    let mut writes = Vec::new();
    for i in 0..400i64 {
        let id = format!("c{:03}", (i * 7) % 400);
        let color = if i % 10 == 0 {
            "red"
        } else if i % 2 == 1 {
            "blue"
        } else {
            "green"
        };
        let mut attrs = vec![("color", color), ("size", if i % 2 == 0 { "big" } else { "small" })];
        if i % 5 == 0 {
            attrs.extend([("tag", "a"), ("tag", "b")]);
        }
        // A sort key on two rows in three, with ties (37 values), in no relation to ids.
        if i % 3 != 0 {
            attrs.push(("rank", RANKS[usize::try_from(i * 13 % 37).unwrap_or_default()]));
        }
        writes.push(insert(row(key(&id), 1_000 + i / 2, b"x")));
        writes.push(index(&id, &attrs));
        described.push((id, attrs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()));
    }
    must(store.apply(writes).await, "insert 400 indexed rows");
    described
}

/// Sort values of [`colored_rows`]: `rank` holds one of these.
const RANKS: [&str; 37] = [
    "00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14", "15", "16", "17", "18",
    "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31", "32", "33", "34", "35", "36",
];

/// Does a row with `attrs` meet `clause`?
fn meets(attrs: &[(String, String)], clause: &Clause) -> bool {
    if clause.absent {
        return !attrs.iter().any(|(n, _)| *n == clause.name);
    }
    attrs.iter().any(|(n, v)| *n == clause.name && clause.values.contains(v))
}

/// The issue-14 guarantee: a selective listing reads the index entries of the rows it
/// returns (and of the driving clause's rows that fail another clause), not the table.
pub async fn filtered_scans_read_only_matching_rows(store: &dyn Store) {
    colored_rows(store).await;
    let red = [Clause::new("color", ["red"])];
    let page = filtered(store, None, Order::Ascending, 10, &red, 10_000).await;
    assert_eq!(page.rows.len(), 10);
    assert_eq!(page.examined, 10, "a one-clause page of 10 read {} entries", page.examined);
    let all = filtered_all(store, Order::Ascending, 1000, &red, 10_000).await;
    assert_eq!(all.len(), 40);
    // Red and big: the red clause (40 entries) drives, not the big one (200).
    let red_big = [Clause::new("size", ["big"]), Clause::new("color", ["red"])];
    let page = filtered(store, None, Order::Ascending, 1000, &red_big, 10_000).await;
    assert_eq!(page.rows.len(), 40, "every red row is even, so big");
    assert!(page.examined <= 40, "drove by the broad clause: read {} entries", page.examined);
    assert_eq!(page.resume, None);
    // Nothing matches: nothing is read.
    let none = [Clause::new("color", ["purple"]), Clause::new("size", ["big"])];
    let page = filtered(store, None, Order::Ascending, 1000, &none, 10_000).await;
    assert_eq!((page.rows.len(), page.examined, page.resume), (0, 0, None));
    let empty = [Clause { name: "color".into(), values: vec![], absent: false }];
    assert!(filtered(store, None, Order::Descending, 10, &empty, 100).await.rows.is_empty());
}

/// Any page size, either order, one or several clauses: the same rows as filtering a full
/// scan by hand, each once, in listing order.
pub async fn filtered_scans_match_a_brute_force_filter(store: &dyn Store) {
    let described = colored_rows(store).await;
    let attrs: HashMap<String, Vec<(String, String)>> = described.into_iter().collect();
    let queries: Vec<Vec<Clause>> = vec![
        vec![Clause::new("color", ["blue", "red"])],
        vec![Clause::new("tag", ["a", "b"])],
        vec![Clause::new("tag", ["b"]), Clause::new("size", ["big", "small"])],
        vec![Clause::new("color", ["green", "red", "green"]), Clause::new("size", ["big"]), Clause::new("tag", ["a"])],
        vec![Clause::new("color", ["blue"]), Clause::new("size", ["big"])],
        vec![],
        // Absences, probed on a walk another clause drives.
        vec![Clause::new("size", ["big", "small"]), Clause::absent("rank")],
        vec![Clause::absent("tag"), Clause::new("size", ["big"])],
        vec![Clause::new("color", ["blue"]), Clause::absent("nothing-has-this")],
    ];
    for clauses in &queries {
        for order in [Order::Ascending, Order::Descending] {
            let expected: Vec<String> = scan_all(store, SCOPE, None, order, 1000)
                .await
                .into_iter()
                .filter(|r| clauses.iter().all(|c| meets(&attrs[&r.key.id], c)))
                .map(|r| r.key.id)
                .collect();
            for page in [1, 7, 1000] {
                let got = filtered_all(store, order, page, clauses, 10_000).await;
                assert_eq!(ids(&got), expected, "{clauses:?} {order:?} by {page}");
                assert!(got.iter().all(|r| r.body == b"x" && r.version == 1), "bodies come back");
            }
        }
    }
}

/// Two broad clauses whose intersection is empty: each call stops after `budget` entries and
/// says where to resume, and the walk ends having read each entry once.
pub async fn filtered_scans_stop_at_the_budget_and_resume(store: &dyn Store) {
    colored_rows(store).await;
    let blue_big = [Clause::new("color", ["blue"]), Clause::new("size", ["big"])];
    let page = filtered(store, None, Order::Ascending, 10, &blue_big, 50).await;
    assert!(page.rows.is_empty() && page.examined <= 50 && page.resume.is_some(), "{page:?}");
    let (mut after, mut examined, mut calls) = (page.resume, page.examined, 1);
    while let Some(cursor) = after {
        let page = filtered(store, Some(cursor), Order::Ascending, 10, &blue_big, 50).await;
        assert!(page.rows.is_empty() && page.examined <= 50, "{page:?}");
        examined += page.examined;
        after = page.resume;
        calls += 1;
        assert!(calls < 100, "does not end");
    }
    // 160 blue and 200 big rows: the walk reads one clause's entries, once.
    assert!((160..=200).contains(&examined), "read {examined} entries in {calls} calls");
}

/// Attributes follow their row: a later index write replaces them, a delete removes them.
pub async fn attributes_follow_puts_and_deletes(store: &dyn Store) {
    let red = [Clause::new("color", ["red"])];
    let blue = [Clause::new("color", ["blue"])];
    must(store.apply(vec![insert(row(key("a"), 1, b"1")), index("a", &[("color", "red")])]).await, "insert");
    assert_eq!(ids(&filtered(store, None, Order::Ascending, 10, &red, 100).await.rows), ["a"]);
    let batch = vec![update(row(key("a"), 1, b"2"), 1), index("a", &[("color", "blue"), ("size", "big")])];
    must(store.apply(batch).await, "update");
    assert!(filtered(store, None, Order::Ascending, 10, &red, 100).await.rows.is_empty(), "old value left behind");
    let page = filtered(store, None, Order::Ascending, 10, &blue, 100).await;
    assert_eq!((ids(&page.rows), page.rows[0].version, page.rows[0].body.as_slice()), (vec!["a"], 2, &b"2"[..]));
    // An update without an index write keeps the attributes.
    must(store.apply(vec![update(row(key("a"), 1, b"3"), 2)]).await, "plain update");
    assert_eq!(filtered(store, None, Order::Ascending, 10, &blue, 100).await.rows.len(), 1);
    must(store.apply(vec![Write::Delete { key: key("a"), expect: 3 }]).await, "delete");
    assert!(filtered(store, None, Order::Ascending, 10, &blue, 100).await.rows.is_empty(), "deleted row listed");
    // Re-created under the same id, it starts with no attributes.
    must(store.apply(vec![insert(row(key("a"), 5, b"4"))]).await, "re-insert");
    assert!(filtered(store, None, Order::Ascending, 10, &blue, 100).await.rows.is_empty(), "attributes outlived row");
}

/// An index write names an existing row, at the expected version if one is given; else the
/// whole batch fails.
pub async fn index_writes_check_the_row(store: &dyn Store) {
    assert_conflict(store.apply(vec![index("ghost", &[("color", "red")])]).await, &key("ghost"), "missing row");
    must(store.apply(vec![insert(row(key("a"), 1, b"1"))]).await, "insert");
    let stale = Write::Index { key: key("a"), expect: Some(7), attributes: vec![("color".into(), "red".into())] };
    let batch = vec![insert(row(key("b"), 2, b"2")), stale];
    assert_conflict(store.apply(batch).await, &key("a"), "stale version");
    assert!(get(store, "b").await.is_none(), "the failed batch wrote b");
    let current = Write::Index { key: key("a"), expect: Some(1), attributes: vec![("color".into(), "red".into())] };
    must(store.apply(vec![current]).await, "current version");
    let red = [Clause::new("color", ["red"])];
    assert_eq!(ids(&filtered(store, None, Order::Ascending, 10, &red, 100).await.rows), ["a"]);
}

/// Filtered NextTokens keep the plain scan's guarantee: between pages, rows are inserted
/// ahead of and behind the cursor and deleted; every matching row present throughout is
/// listed exactly once, and rows inserted behind the cursor never.
pub async fn filtered_pagination_is_stable_under_writes(store: &dyn Store) {
    let described = colored_rows(store).await;
    let clauses = [Clause::new("color", ["red", "green"]), Clause::new("size", ["big"])];
    let mut present: HashSet<String> = described
        .iter()
        .filter(|(_, a)| a.iter().any(|(_, v)| v == "red" || v == "green"))
        .map(|(i, _)| i.clone())
        .collect();
    let (mut seen, mut ahead, mut behind): (HashMap<String, usize>, Vec<String>, Vec<String>) = Default::default();
    let (mut after, mut pages) = (None, 0i64);
    loop {
        let page = filtered(store, after, Order::Ascending, 9, &clauses, 1000).await;
        for r in &page.rows {
            *seen.entry(r.key.id.clone()).or_default() += 1;
        }
        let Some(resume) = page.resume else { break };
        after = Some(resume);
        pages += 1;
        assert!(pages < 100, "does not end");
        let (a, b) = (format!("ahead-{pages:02}"), format!("behind-{pages:02}"));
        let mut writes = vec![
            insert(row(key(&a), 10_000 + pages, b"a")),
            index(&a, &[("color", "red"), ("size", "big")]),
            insert(row(key(&b), -pages, b"b")),
            index(&b, &[("color", "red"), ("size", "big")]),
        ];
        ahead.push(a);
        behind.push(b);
        let victim = present.iter().find(|id| !seen.contains_key(*id)).cloned();
        if let Some(id) = victim.filter(|_| pages % 2 == 0) {
            present.remove(&id);
            writes.push(Write::Delete { key: key(&id), expect: 1 });
        }
        must(store.apply(writes).await, "writes between pages");
    }
    assert!(pages >= 10, "too few pages: {pages}");
    for id in present.iter().chain(&ahead) {
        assert_eq!(seen.get(id), Some(&1), "row {id} present throughout");
    }
    for id in &behind {
        assert!(!seen.contains_key(id), "row {id} inserted behind the cursor was listed");
    }
}

/// An absence selects rows without the attribute (the brute-force test checks which, in
/// order): each of these selects some; alone it cannot drive a walk, and says so.
pub async fn absent_clauses_select_rows_without_the_attribute(store: &dyn Store) {
    colored_rows(store).await;
    let queries = [
        vec![Clause::new("size", ["big", "small"]), Clause::absent("rank")],
        vec![Clause::absent("tag"), Clause::new("size", ["big"])],
        vec![Clause::new("color", ["blue"]), Clause::absent("nothing-has-this")],
    ];
    for clauses in &queries {
        let page = filtered(store, None, Order::Ascending, 1000, clauses, 10_000).await;
        assert!(!page.rows.is_empty(), "{clauses:?}");
    }
    let scan = Scan { kind: KIND, scope: SCOPE, id_prefix: None, after: None, order: Order::Ascending, limit: 10 };
    assert!(store.scan_filtered(scan, &[Clause::absent("rank")], 100).await.is_err(), "an absence alone drove");
}

/// A sorted listing returns, at any page size and in either order, the rows holding the
/// sort attribute that meet its clauses, in (value, created, id) order, each once; without
/// clauses a page reads only its own entries.
pub async fn sorted_scans_follow_the_value_order(store: &dyn Store) {
    let described = colored_rows(store).await;
    let attrs: HashMap<String, Vec<(String, String)>> = described.into_iter().collect();
    let created: HashMap<String, i64> = scan_all(store, SCOPE, None, Order::Ascending, 1000)
        .await
        .into_iter()
        .map(|r| (r.key.id, r.created_ms))
        .collect();
    let sorted = |after: Option<SortCursor>, order, limit| SortedScan {
        kind: KIND,
        scope: SCOPE,
        by: SortKey::Attribute("rank"),
        after,
        order,
        limit,
    };
    let queries = [
        vec![],
        vec![Clause::new("color", ["red", "green"])],
        vec![Clause::new("size", ["big"]), Clause::absent("tag")],
    ];
    for clauses in &queries {
        for order in [Order::Ascending, Order::Descending] {
            let mut expected: Vec<(String, i64, String)> = attrs
                .iter()
                .filter(|(_, a)| clauses.iter().all(|c| meets(a, c)))
                .filter_map(|(id, a)| {
                    let rank = a.iter().find(|(n, _)| n == "rank")?;
                    Some((rank.1.clone(), created[id], id.clone()))
                })
                .collect();
            expected.sort();
            if order == Order::Descending {
                expected.reverse();
            }
            let expected: Vec<(String, String)> = expected.into_iter().map(|(v, _, id)| (v, id)).collect();
            for page in [1, 7, 1000] {
                let (mut got, mut after, mut calls) = (Vec::new(), None, 0);
                loop {
                    let p = must(store.scan_sorted(sorted(after, order, page), clauses, 10_000).await, "scan_sorted");
                    assert!(p.rows.len() <= page, "page of {page}: {p:?}");
                    if clauses.is_empty() {
                        assert!(p.examined <= page, "a page of {page} without clauses read {}", p.examined);
                    }
                    assert!(p.rows.iter().all(|(_, r)| r.body == b"x" && r.version == 1), "bodies come back");
                    got.extend(p.rows.into_iter().map(|(v, r)| (v, r.key.id)));
                    calls += 1;
                    assert!(calls < 1000, "a sorted listing does not end");
                    match p.resume {
                        Some(c) => after = Some(c),
                        None => break,
                    }
                }
                assert_eq!(got, expected, "{clauses:?} {order:?} by {page}");
            }
        }
    }
    // By id: every row (with its id as value), in id order, the clauses probed.
    let red = [Clause::new("color", ["red"])];
    for order in [Order::Ascending, Order::Descending] {
        let mut expected: Vec<String> =
            attrs.iter().filter(|(_, a)| meets(a, &red[0])).map(|(id, _)| id.clone()).collect();
        expected.sort();
        if order == Order::Descending {
            expected.reverse();
        }
        let (mut got, mut after) = (Vec::new(), None);
        loop {
            let scan = SortedScan { kind: KIND, scope: SCOPE, by: SortKey::Id, after, order, limit: 7 };
            let p = must(store.scan_sorted(scan, &red, 10_000).await, "scan_sorted by id");
            for (value, row) in p.rows {
                assert_eq!(value, row.key.id);
                got.push(value);
            }
            match p.resume {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        assert_eq!(got, expected, "by id {order:?}");
    }
    // The budget bounds a page whose clause fails everywhere, and the walk resumes.
    let none = [Clause::new("color", ["purple"])];
    let p = must(store.scan_sorted(sorted(None, Order::Ascending, 10), &none, 50).await, "scan_sorted");
    assert!(p.rows.is_empty() && p.examined == 50 && p.resume.is_some(), "{p:?}");
}

#[cfg(test)]
mod tests {
    /// Every case in this file is in the list [`store_tests!`] expands, so every backend runs it.
    #[test]
    fn every_case_is_listed() {
        let defined: Vec<&str> = include_str!("testsuite.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("pub async fn "))
            .filter_map(|rest| rest.split_once("(store: &dyn Store)").map(|(name, _)| name))
            .collect();
        let mut listed = crate::store_tests!(names).to_vec();
        assert_eq!(defined.len(), listed.len(), "defined {defined:?}, listed {listed:?}");
        listed.sort_unstable();
        let mut sorted = defined.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, listed);
    }
}
