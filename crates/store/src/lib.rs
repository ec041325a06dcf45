//! Carapace's storage layer: rows, not rules.
//!
//! The [`Store`] trait is all the core sees of the database. Every resource (certificate,
//! directory, access key, ...) is a versioned opaque document addressed by
//! `(kind, scope, id)`, listed in `(created, id)` order with a keyset cursor, and written in
//! atomic batches with optimistic concurrency (expected versions). Durable background work
//! is a [`Job`] queue with leases that carry a token, and jobs that keep failing end in a
//! dead-letter state an operator can list. Every committed write is announced on a change
//! [`feed`], so a running node learns at once that a row changed. The store never
//! interprets a body.
//!
//! Implementations: [`sqlite::SqliteStore`] (the embedded default, one node) and
//! [`postgres::PostgresStore`] (one database shared by several nodes). Both run the same
//! [`testsuite`] unchanged.

pub mod feed;
mod filter;
pub mod postgres;
pub mod row_cache;
pub mod sqlite;
#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;

use std::fmt;

pub use feed::{Change, FeedEvent, Subscription};

/// A resource's address: what it is, whose it is, and its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// The resource family, e.g. `acm.certificate`. Chosen by the core; opaque here.
    pub kind: String,
    /// The owner, usually `<account>/<region>`; `""` for global rows such as access keys.
    pub scope: String,
    /// The id, unique within `(kind, scope)`.
    pub id: String,
}

impl Key {
    /// Builds a key from its three parts.
    pub fn new(kind: impl Into<String>, scope: impl Into<String>, id: impl Into<String>) -> Self {
        Self { kind: kind.into(), scope: scope.into(), id: id.into() }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.kind, self.scope, self.id)
    }
}

/// One stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Where the row lives.
    pub key: Key,
    /// Starts at 1 on insert and grows by one on every update.
    pub version: u64,
    /// Creation time in Unix milliseconds: the list order (ties broken by id).
    pub created_ms: i64,
    /// The document, opaque to the store (the core stores JSON).
    pub body: Vec<u8>,
}

/// Position after which a listing resumes: the `(created_ms, id)` of the last row returned.
/// Because it names a position rather than an offset, rows inserted or deleted between
/// pages never make a listing skip or repeat a row that existed throughout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// `created_ms` of the last row seen.
    pub created_ms: i64,
    /// `id` of the last row seen.
    pub id: String,
}

/// Direction of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first.
    #[default]
    Ascending,
    /// Newest first.
    Descending,
}

/// A listing request over one `(kind, scope)`.
#[derive(Debug, Clone)]
pub struct Scan<'a> {
    /// Resource family.
    pub kind: &'a str,
    /// Owner scope.
    pub scope: &'a str,
    /// Only ids starting with this prefix (e.g. `d-0123456789/` for a directory's children).
    pub id_prefix: Option<&'a str>,
    /// Resume after this position.
    pub after: Option<Cursor>,
    /// Direction.
    pub order: Order,
    /// At most this many rows.
    pub limit: usize,
}

/// One write in an atomic batch.
#[derive(Debug, Clone)]
pub enum Write {
    /// Insert a new row (`expect: None`, fails with [`Error::Conflict`] if it exists) or
    /// replace an existing row at exactly version `expect`. The stored version becomes
    /// `expect + 1` (1 for an insert); `row.version` is ignored. On replace, `row.created_ms`
    /// is ignored too: a row keeps its creation time for life, so a listing that is paging
    /// through `(created_ms, id)` never meets an updated row twice or misses it.
    Put {
        /// The row to store.
        row: Row,
        /// The version the caller read; `None` to insert.
        expect: Option<u64>,
    },
    /// Delete a row, which must exist at version `expect`.
    Delete {
        /// The row to delete.
        key: Key,
        /// The version the caller read.
        expect: u64,
    },
    /// Add a job to the queue.
    Enqueue(NewJob),
    /// Set the indexed attributes of a row, replacing those it had: the facts a
    /// [`Store::scan_filtered`] listing selects on, chosen and derived by the core (the
    /// store never reads a body). The row must exist once the earlier writes of the batch
    /// are applied, at version `expect` when that is given (so a backfill computed from an
    /// older body cannot overwrite the attributes of a newer one); else the batch fails with
    /// [`Error::Conflict`]. Deleting a row deletes its attributes. Not announced on the
    /// change feed (the row's own write is).
    Index {
        /// The row.
        key: Key,
        /// The version the attributes were derived from; `None` for "as of this batch".
        expect: Option<u64>,
        /// `(name, value)` pairs; a name may appear with several values.
        attributes: Vec<(String, String)>,
    },
}

/// One condition of a [`Store::scan_filtered`] listing: the row has the attribute `name`
/// with one of `values` (none: nothing matches); or, `absent`, has no attribute `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// Attribute name.
    pub name: String,
    /// Accepted values.
    pub values: Vec<String>,
    /// The row has no attribute `name` at all (`values` is then ignored). Such a clause is
    /// a probe only: a listing in creation order needs another clause to walk.
    pub absent: bool,
}

impl Clause {
    /// A clause from a name and its accepted values.
    pub fn new(name: impl Into<String>, values: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self { name: name.into(), values: values.into_iter().map(Into::into).collect(), absent: false }
    }

    /// The row has no attribute `name`.
    pub fn absent(name: impl Into<String>) -> Self {
        Self { name: name.into(), values: Vec::new(), absent: true }
    }
}

/// A listing of one `(kind, scope)` in the order of the values of one attribute
/// ([`Store::scan_sorted`]).
#[derive(Debug, Clone)]
pub struct SortedScan<'a> {
    /// Resource family.
    pub kind: &'a str,
    /// Owner scope.
    pub scope: &'a str,
    /// What gives the order.
    pub by: SortKey<'a>,
    /// Resume after this position.
    pub after: Option<SortCursor>,
    /// Direction (of the value and of the ties).
    pub order: Order,
    /// At most this many rows.
    pub limit: usize,
}

/// The order of a [`SortedScan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey<'a> {
    /// The values of this attribute (compared bytewise), ties by `(created_ms, id)`. Rows
    /// without the attribute are not listed.
    Attribute(&'a str),
    /// The row's id (each row's value is its id). Every row is listed.
    Id,
}

/// Position after which a sorted listing resumes: the last row's value, then its
/// `(created_ms, id)`. Like [`Cursor`], a position rather than an offset.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SortCursor {
    /// The sort attribute's value of the last row seen.
    pub value: String,
    /// `created_ms` of the last row seen.
    pub created_ms: i64,
    /// `id` of the last row seen.
    pub id: String,
}

/// One page of [`Store::scan_sorted`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortedPage {
    /// The matching rows with their sort values, in listing order.
    pub rows: Vec<(String, Row)>,
    /// Index entries read to find them.
    pub examined: usize,
    /// Where the listing resumes, as [`FilteredPage::resume`].
    pub resume: Option<SortCursor>,
}

/// One page of [`Store::scan_filtered`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilteredPage {
    /// The matching rows, in listing order.
    pub rows: Vec<Row>,
    /// Index entries read to find them: the page's cost (tests and benchmarks check it).
    pub examined: usize,
    /// Where the listing resumes: after the last row when the page is full, after the last
    /// entry read when the budget ran out first; `None` when no further row matches.
    pub resume: Option<Cursor>,
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// Unique id; enqueuing an id that already exists is a no-op (idempotent retries).
    pub id: String,
    /// What to do, e.g. `acm.issue`. Opaque here.
    pub kind: String,
    /// Earliest run time, Unix milliseconds.
    pub run_at_ms: i64,
    /// Arguments, opaque here.
    pub payload: Vec<u8>,
}

/// A job claimed by a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Unique id.
    pub id: String,
    /// What to do.
    pub kind: String,
    /// Arguments.
    pub payload: Vec<u8>,
    /// How many times it was claimed before this claim.
    pub attempts: u32,
    /// How many of those runs failed ([`Store::retry_job`] with a failure).
    pub failures: u32,
    /// The lease: until this time no other worker can claim it.
    pub lease_until_ms: i64,
    /// This claim's lease token. Finishing, retrying or burying the job needs it: once the
    /// lease has expired and another worker has claimed the job, the old token changes
    /// nothing, so a slow worker can never undo a newer claim.
    pub token: u64,
}

/// A queued job as an operator sees it (`carapace jobs list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    /// Unique id.
    pub id: String,
    /// What to do.
    pub kind: String,
    /// Next run time, Unix milliseconds: for a claimed job, when its lease ends (it is due
    /// again then unless its worker finishes or retries it); meaningless once dead.
    pub run_at_ms: i64,
    /// Claims so far.
    pub attempts: u32,
    /// Failed runs so far.
    pub failures: u32,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// When it was dead-lettered; `None` while it is live.
    pub dead_at_ms: Option<i64>,
}

/// Which jobs [`Store::list_jobs`] returns, in id order.
#[derive(Debug, Clone, Default)]
pub struct JobQuery {
    /// Only dead-lettered jobs (`true`) or only live ones (`false`).
    pub dead: bool,
    /// Resume after this id.
    pub after_id: Option<String>,
    /// At most this many.
    pub limit: usize,
}

/// Store failures. Conflicts are expected and retried by callers; the rest are faults.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An expected version did not match, an insert hit an existing row, or a delete
    /// found nothing. The batch wrote nothing.
    #[error("conflict on {0}")]
    Conflict(Key),
    /// The backend failed (I/O, corruption, pool closed). Never shown to a client verbatim.
    #[error("storage backend: {0}")]
    Backend(String),
}

/// Result alias for store calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the core needs from a database. All methods are cancellation-safe: a
/// dropped future either committed its batch or wrote nothing.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads one row.
    async fn get(&self, key: &Key) -> Result<Option<Row>>;

    /// Lists rows of one `(kind, scope)` in `(created_ms, id)` order from a cursor.
    async fn scan(&self, scan: Scan<'_>) -> Result<Vec<Row>>;

    /// Lists the rows of one `(kind, scope)` that meet every clause, in `(created_ms, id)`
    /// order from `scan.after`, reading the attribute index ([`Write::Index`]) instead of
    /// bodies: a page costs the entries of its rows plus those it passes over, and at most
    /// `budget` entries (at least `scan.limit`). With no clause it is [`Store::scan`].
    /// `scan.id_prefix` is not supported here (make the prefix an attribute).
    async fn scan_filtered(&self, scan: Scan<'_>, clauses: &[Clause], budget: usize) -> Result<FilteredPage>;

    /// Lists the rows of one `(kind, scope)` that meet every clause in the order of
    /// `scan.by` (all reversed when descending) from `scan.after`, each with its sort value.
    /// By an attribute: the rows holding it, in `(value, created_ms, id)` order, a row with
    /// several values once per value (a [`Clause::absent`] in a [`Store::scan_filtered`]
    /// lists the others). The walk reads the sort key's index entries in order, probing the
    /// clauses: a page costs the entries it passes, at most `budget` (at least `scan.limit`).
    async fn scan_sorted(&self, scan: SortedScan<'_>, clauses: &[Clause], budget: usize) -> Result<SortedPage>;

    /// Counts rows of one `(kind, scope)` created at or after `since_ms`
    /// (`i64::MIN` for all): quotas such as "certificates per account" use it.
    async fn count(&self, kind: &str, scope: &str, since_ms: i64) -> Result<u64>;

    /// Applies every write or none. Returns the new version of each `Put`, in order.
    /// A write is durable (survives `kill -9`) when this returns `Ok`.
    async fn apply(&self, writes: Vec<Write>) -> Result<Vec<u64>>;

    /// Claims up to `limit` jobs whose kind starts with `kind_prefix` (each service's
    /// worker takes only its own, e.g. `acm.`), whose run time is at or before `now_ms` and
    /// whose lease has expired, leasing each until `now_ms + lease_ms` (its run time becomes
    /// at least that: a job is due again when its lease ends) and counting an attempt.
    async fn claim_jobs(&self, kind_prefix: &str, now_ms: i64, lease_ms: i64, limit: usize) -> Result<Vec<Job>>;

    /// Removes a finished job, if `token` still holds its lease. Returns `false`, changing
    /// nothing, when the job is gone or was claimed again since (the lease was lost).
    async fn finish_job(&self, id: &str, token: u64) -> Result<bool>;

    /// Puts a claimed job back to run again at `run_at_ms`, releasing its lease, if `token`
    /// still holds it (else `false`, changing nothing). A `failure` message counts a failed
    /// run and is kept as the job's last error; `None` is a planned re-run (polling).
    async fn retry_job(&self, id: &str, token: u64, run_at_ms: i64, failure: Option<&str>) -> Result<bool>;

    /// Dead-letters a claimed job, if `token` still holds its lease (else `false`): it is
    /// never claimed again, keeps `reason` as its last error and stays listable by
    /// [`Store::list_jobs`] until [`Store::revive_job`] or [`Store::discard_job`].
    async fn bury_job(&self, id: &str, token: u64, now_ms: i64, reason: &str) -> Result<bool>;

    /// Lists queued jobs, live or dead, in id order.
    async fn list_jobs(&self, query: JobQuery) -> Result<Vec<JobInfo>>;

    /// Brings a dead job back to life, due at `run_at_ms` with its failures reset. Returns
    /// `false` when there is no such dead job.
    async fn revive_job(&self, id: &str, run_at_ms: i64) -> Result<bool>;

    /// Deletes a dead job for good. Returns `false` when there is no such dead job.
    async fn discard_job(&self, id: &str) -> Result<bool>;

    /// Subscribes to the change feed: every write committed from now on to a row whose kind
    /// is in `kinds` (all kinds when empty) is announced after it is durable, by this node
    /// or (PostgreSQL) any other. When announcements may have been missed, the
    /// subscription yields [`FeedEvent::Resync`]: re-read what you keep.
    fn subscribe(&self, kinds: &[&str]) -> Subscription;

    /// Cheap liveness check for `/health`.
    async fn ping(&self) -> Result<()>;

    /// Flushes and closes; later calls fail with [`Error::Backend`].
    async fn close(&self) -> Result<()>;
}

/// [`Store::scan_filtered`] without clauses: a plain scan, every row read is returned.
pub(crate) async fn scan_unfiltered(store: &(impl Store + ?Sized), scan: Scan<'_>) -> Result<FilteredPage> {
    let limit = scan.limit;
    let rows = store.scan(scan).await?;
    let resume = (rows.len() >= limit && limit > 0)
        .then(|| rows.last().map(|r| Cursor { created_ms: r.created_ms, id: r.key.id.clone() }))
        .flatten();
    Ok(FilteredPage { examined: rows.len(), rows, resume })
}

/// Is `prefix` a whole queue, a service's kind prefix up to and with its only dot (`acm.`)?
/// Claims of a queue read its own index.
pub(crate) fn is_queue(prefix: &str) -> bool {
    prefix.find('.') == Some(prefix.len().wrapping_sub(1))
}

/// How many of this build's `known` migrations a database at schema version `current` has
/// applied; refuses a database written by a newer build.
pub(crate) fn applied_migrations(current: i64, known: usize) -> Result<usize> {
    let current = usize::try_from(current).map_err(|_| Error::Backend(format!("invalid schema version {current}")))?;
    if current > known {
        return Err(Error::Backend(format!(
            "database schema version {current} is newer than this build supports ({known}); \
             it was written by a newer Carapace"
        )));
    }
    Ok(current)
}

/// Now, in Unix milliseconds (for `schema_migrations.applied_at`).
#[allow(clippy::disallowed_methods)] // the store has no clock; this only stamps migrations
pub(crate) fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
