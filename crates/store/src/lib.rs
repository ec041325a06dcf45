//! Carapace's storage layer: rows, not rules.
//!
//! The [`Store`] trait is all the core sees of the database. Every resource (certificate,
//! directory, access key, ...) is a versioned opaque document addressed by
//! `(kind, scope, id)`, listed in `(created, id)` order with a keyset cursor, and written in
//! atomic batches with optimistic concurrency (expected versions). Durable background work
//! is a [`Job`] queue with leases. The store never interprets a body.
//!
//! Implementations: [`sqlite::SqliteStore`] (the embedded default, one node) and
//! [`postgres::PostgresStore`] (one database shared by several nodes). Both run the same
//! [`testsuite`] unchanged.

pub mod postgres;
pub mod row_cache;
pub mod sqlite;
pub mod testsuite;

use std::fmt;

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
    /// The lease: until this time no other worker can claim it.
    pub lease_until_ms: i64,
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

    /// Counts rows of one `(kind, scope)` created at or after `since_ms`
    /// (`i64::MIN` for all): quotas such as "certificates per account" use it.
    async fn count(&self, kind: &str, scope: &str, since_ms: i64) -> Result<u64>;

    /// Applies every write or none. Returns the new version of each `Put`, in order.
    /// A write is durable (survives `kill -9`) when this returns `Ok`.
    async fn apply(&self, writes: Vec<Write>) -> Result<Vec<u64>>;

    /// Claims up to `limit` jobs whose kind starts with `kind_prefix` (each service's
    /// worker takes only its own, e.g. `acm.`), whose run time is at or before `now_ms` and
    /// whose lease has expired, leasing each until `now_ms + lease_ms` and counting an
    /// attempt.
    async fn claim_jobs(&self, kind_prefix: &str, now_ms: i64, lease_ms: i64, limit: usize) -> Result<Vec<Job>>;

    /// Removes a finished job. Unknown ids are ignored.
    async fn finish_job(&self, id: &str) -> Result<()>;

    /// Puts a claimed job back to run again at `run_at_ms` (e.g. a retry with backoff),
    /// releasing its lease.
    async fn retry_job(&self, id: &str, run_at_ms: i64) -> Result<()>;

    /// Cheap liveness check for `/health`.
    async fn ping(&self) -> Result<()>;

    /// Flushes and closes; later calls fail with [`Error::Backend`].
    async fn close(&self) -> Result<()>;
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
pub(crate) fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
