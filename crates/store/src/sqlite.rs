//! The embedded SQLite backend: one file, no server, the default for a single node.
//!
//! Layout: one writer connection behind a mutex (SQLite allows one writer at a time anyway,
//! and serialising in-process avoids `SQLITE_BUSY` churn) and a few reader connections so
//! reads never queue behind a write: in WAL mode readers see the last committed snapshot
//! while the writer works. Every call runs on tokio's blocking pool, so a slow disk never
//! stalls the async runtime; because a blocking task runs to completion even if its future
//! is dropped, a cancelled `apply` has either committed or written nothing, as the trait
//! promises.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::feed::{Announcer, Pending};
use crate::filter::{self, Step, Walk};
use crate::row_cache::RowCache;
use crate::{
    Clause, Error, FilteredPage, Job, JobInfo, JobQuery, Key, NewJob, Order, Result, Row, Scan, SortedPage, SortedScan,
    Store, Subscription, Write,
};

/// Reader connections per file store. Two cores serve the target machines; four readers let
/// a few listings and the edge's certificate lookups overlap a write without a queue.
const READERS: usize = 4;

/// How long a connection waits for a lock held by another process (a second `carapace`
/// pointed at the same file, or a backup tool) before reporting a fault.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection. The store issues about twenty distinct
/// statements; the rusqlite default (16) would evict some of them on every cycle.
const STATEMENT_CACHE: usize = 64;

/// Page cache per connection, in KiB (SQLite's negative `cache_size` convention), unless
/// [`SqliteOptions::cache_kib`] says otherwise. Six connections (writer, four readers,
/// checkpointer) each keep their own, so this is also the store's largest memory cost:
/// 8 MiB each, 48 MiB at most. Reads of a hot database mostly come through the memory map
/// ([`MMAP_BYTES`]), whose pages the kernel may drop, not through this cache.
const CACHE_KIB: i64 = 8 * 1024;

/// Default [`SqliteOptions::wal_limit_bytes`]: 64 MiB.
pub const DEFAULT_WAL_LIMIT_BYTES: u64 = 64 << 20;

/// Tuning of a file store; [`Default`] gives the values used by [`SqliteStore::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Size of the `-wal` file past which the background checkpointer restarts the WAL
    /// (`wal_checkpoint(RESTART)`), and the size SQLite truncates it back to afterwards
    /// (`journal_size_limit`). Under constant reads a PASSIVE checkpoint copies frames but
    /// never lets the WAL start over, so without this the file grows without bound.
    pub wal_limit_bytes: u64,
    /// Page cache of each of the store's six connections, KiB.
    pub cache_kib: u64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self { wal_limit_bytes: DEFAULT_WAL_LIMIT_BYTES, cache_kib: CACHE_KIB as u64 }
    }
}

/// Bytes of the database file mapped into memory for reads.
const MMAP_BYTES: i64 = 256 << 20;

/// `lease_until_ms` of a job nobody holds: due for any `now`.
const NO_LEASE: i64 = i64::MIN;

/// `synchronous` setting. Under WAL, `NORMAL` appends each commit to the WAL with `write(2)`
/// but only `fsync`s at checkpoints: a committed transaction is in the kernel's page cache
/// when `apply` returns, so it survives the process being killed (`kill -9`, OOM, panic),
/// which is the durability the [`Store`] contract asks for (and `tests::
/// acknowledged_writes_survive_kill_9` checks). It can lose the last commits on an OS crash
/// or power loss; the database stays consistent. `FULL` adds an `fsync` per commit: measured
/// 2.2-2.8x slower for single-row commits (about 260 µs against 580-930 µs on the 2-core
/// build VM), for a guarantee the contract does not ask for. Operators who need power-loss
/// durability should use the PostgreSQL backend.
const SYNCHRONOUS: &str = "NORMAL";

/// Schema migrations, applied in order at open. Entry `i` is version `i + 1`; never edit or
/// reorder a released entry, only append. A database whose `schema_migrations` names a
/// version beyond this list was written by a newer Carapace and is refused.
const MIGRATIONS: &[&str] = &[
    // 1: resources and the job queue.
    "CREATE TABLE resources (
        kind       TEXT    NOT NULL,
        scope      TEXT    NOT NULL,
        id         TEXT    NOT NULL,
        version    INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        body       BLOB    NOT NULL,
        PRIMARY KEY (kind, scope, id)
    ) STRICT;
    CREATE INDEX resources_by_created ON resources (kind, scope, created_ms, id);
    CREATE TABLE jobs (
        id             TEXT    NOT NULL PRIMARY KEY,
        kind           TEXT    NOT NULL,
        run_at_ms      INTEGER NOT NULL,
        lease_until_ms INTEGER NOT NULL,
        attempts       INTEGER NOT NULL,
        payload        BLOB    NOT NULL
    ) STRICT;
    -- (run_at_ms, id): claims take due jobs oldest first without sorting a backlog.
    CREATE INDEX jobs_by_run_at ON jobs (run_at_ms, id);",
    // 2: lease tokens, failure counts and dead letters. A dead job keeps its row (with
    // `run_at_ms` at the end of time, so claims never scan it) until an operator acts.
    "ALTER TABLE jobs ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN last_error TEXT;
    ALTER TABLE jobs ADD COLUMN dead_at_ms INTEGER;
    CREATE INDEX jobs_dead ON jobs (id) WHERE dead_at_ms IS NOT NULL;",
    // 3: a counter that stores opened as external writers (the `carapace keys` and `ca`
    // commands) bump in every batch, so the server sees that another process wrote.
    "CREATE TABLE external_writes (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL) STRICT;
    INSERT INTO external_writes VALUES (1, 0);",
    // 4: indexed attributes (`Write::Index`), for filtered listings. The primary key tests
    // one row; `attributes_by_value` walks the rows holding one value in listing order.
    // `created_ms` is the row's (it never changes), copied so the walk needs no join.
    "CREATE TABLE attributes (
        kind       TEXT    NOT NULL,
        scope      TEXT    NOT NULL,
        id         TEXT    NOT NULL,
        name       TEXT    NOT NULL,
        value      TEXT    NOT NULL,
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (kind, scope, id, name, value)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX attributes_by_value ON attributes (kind, scope, name, value, created_ms, id);",
    // 5: due jobs by queue (a kind's service prefix up to its first dot, `acm.`), so a
    // worker's claim reads its own service's due jobs only, not the other services' backlog.
    "CREATE INDEX jobs_by_queue ON jobs (substr(kind, 1, instr(kind, '.')), run_at_ms, id);",
];

/// How often a store watches for batches written by external writers.
const EXTERNAL_POLL: Duration = Duration::from_millis(100);

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    inner: Arc<Inner>,
    /// Hot rows of the kinds only this process writes; see [`SqliteStore::with_row_cache`].
    cache: Option<Arc<RowCache>>,
    /// Announces committed writes to this process's subscribers.
    announcer: Announcer,
    /// Set by [`SqliteStore::external_writer`]: every batch bumps `external_writes`.
    external: bool,
}

/// The connections, shared with blocking tasks.
struct Inner {
    /// The only connection that writes. `None` once closed.
    writer: Mutex<Option<Connection>>,
    /// Read-only connections; empty for an in-memory store, which reads through the writer
    /// (a private in-memory database cannot be opened twice).
    readers: Vec<Mutex<Option<Connection>>>,
    /// Round-robin start for picking a reader.
    next_reader: AtomicUsize,
    /// Set by `close` so calls fail fast instead of waiting for a connection.
    closed: AtomicBool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, switches it to WAL and
    /// applies pending migrations. Fails if the file was written by a newer schema.
    ///
    /// This does blocking I/O; call it at startup or inside `spawn_blocking`.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// [`SqliteStore::open`] with explicit tuning.
    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<Self> {
        let context = |e: rusqlite::Error| Error::Backend(format!("opening {}: {}", path.display(), describe(&e)));
        create_private(path)?;
        let configure = |conn: &Connection| configure(conn, &options);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut writer = Connection::open_with_flags(path, flags).map_err(context)?;
        configure(&writer).map_err(context)?;
        let mode: String =
            writer.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).map_err(context)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Backend(format!(
                "opening {}: the file system does not support WAL (journal_mode is {mode})",
                path.display()
            )));
        }
        migrate(&mut writer)?;

        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let reader = Connection::open_with_flags(path, flags).map_err(context)?;
            configure(&reader).map_err(context)?;
            // Read-write at the file level (a WAL reader may need to recover the -shm index)
            // but refusing writes, so a bug cannot bypass the writer's serialisation.
            reader.pragma_update(None, "query_only", true).map_err(context)?;
            readers.push(Mutex::new(Some(reader)));
        }
        // SQLite's automatic checkpoint runs inside whichever commit crosses the threshold,
        // fsyncing the database file on the request path: that commit, one in a few hundred,
        // was the whole p99 of RequestCertificate. A background thread checkpoints instead.
        writer.pragma_update(None, "wal_autocheckpoint", 0).map_err(context)?;
        // After the WAL restarts, the next commit truncates the file back to this size: the
        // file is reused from its start (cheaper than growing it again) but never stays
        // larger than the bound.
        let limit = i64::try_from(options.wal_limit_bytes).unwrap_or(i64::MAX);
        writer.pragma_update(None, "journal_size_limit", limit).map_err(context)?;
        let checkpointer = Connection::open_with_flags(path, flags).map_err(context)?;
        configure(&checkpointer).map_err(context)?;
        let store = Self::from_parts(writer, readers);
        let inner = Arc::downgrade(&store.inner);
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let wal = Checkpointer { conn: checkpointer, wal: wal.into(), limit: options.wal_limit_bytes };
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || wal.run(&inner))
            .map_err(|e| Error::Backend(format!("starting the checkpoint thread: {e}")))?;
        let watcher = Connection::open_with_flags(path, flags).map_err(context)?;
        configure(&watcher).map_err(context)?;
        let (inner, announcer) = (Arc::downgrade(&store.inner), store.announcer.clone());
        std::thread::Builder::new()
            .name("sqlite-external-writes".into())
            .spawn(move || external_writes_loop(&watcher, &inner, &announcer))
            .map_err(|e| Error::Backend(format!("starting the external-writes thread: {e}")))?;
        Ok(store)
    }

    /// Opens a private in-memory database (for tests): nothing is persisted and all calls
    /// share one connection.
    pub fn open_in_memory() -> Result<Self> {
        let context = |e: rusqlite::Error| Error::Backend(format!("opening :memory: {}", describe(&e)));
        let mut writer = Connection::open_in_memory().map_err(context)?;
        configure(&writer, &SqliteOptions::default()).map_err(context)?;
        migrate(&mut writer)?;
        Ok(Self::from_parts(writer, Vec::new()))
    }

    fn from_parts(writer: Connection, readers: Vec<Mutex<Option<Connection>>>) -> Self {
        Self {
            inner: Arc::new(Inner {
                writer: Mutex::new(Some(writer)),
                readers,
                next_reader: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
            }),
            cache: None,
            announcer: Announcer::default(),
            external: false,
        }
    }

    /// Marks this store as an external writer: a short-lived process (the `carapace keys`
    /// and `carapace ca` commands) writing the file a server has open. Its batches bump a
    /// counter that the server's store watches, and the server's subscribers are told to
    /// resync within [`EXTERNAL_POLL`] (a revoked access key is refused at once).
    pub fn external_writer(mut self) -> Self {
        self.external = true;
        self
    }

    /// Serves point reads of some kinds from memory once read (see [`RowCache`]). Only for
    /// kinds that no other process writes to this database file.
    pub fn with_row_cache(mut self, cache: RowCache) -> Self {
        self.cache = Some(Arc::new(cache));
        self
    }

    /// Runs `f` on the blocking pool with the shared connections.
    async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| Error::Backend(format!("sqlite task failed: {e}")))?
    }
}

/// Watches the `external_writes` counter until the store is closed or dropped; when an
/// external writer bumped it, tells subscribers to resync (what it wrote is unknown).
fn external_writes_loop(conn: &Connection, inner: &std::sync::Weak<Inner>, announcer: &Announcer) {
    let read = || conn.query_row("SELECT n FROM external_writes WHERE id = 1", [], |r| r.get::<_, i64>(0)).ok();
    let mut seen = read();
    loop {
        std::thread::sleep(EXTERNAL_POLL);
        match inner.upgrade() {
            Some(inner) if !inner.closed.load(AtomicOrdering::Acquire) => {}
            _ => return,
        }
        let now = read();
        if now.is_some() && now != seen {
            tracing::debug!("another process wrote the database; change feed subscribers resync");
            announcer.resync();
            seen = now;
        }
    }
}

/// How often the background thread moves WAL frames into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// How often it looks at the WAL's size: a stat, cheap enough to catch a burst early (at
/// 1,700 certificates a second the WAL grows about 5 MB in this time).
const WAL_WATCH_EVERY: Duration = Duration::from_millis(100);

/// The background checkpointer of a file store.
struct Checkpointer {
    /// Its own connection, so checkpoints never hold the writer's lock.
    conn: Connection,
    /// The `-wal` file.
    wal: std::path::PathBuf,
    /// Size past which the WAL is restarted ([`SqliteOptions::wal_limit_bytes`]).
    limit: u64,
}

impl Checkpointer {
    /// Checkpoints until the store is closed or dropped. Every [`CHECKPOINT_EVERY`]: PASSIVE,
    /// which never blocks readers or the writer. But a PASSIVE checkpoint cannot make the
    /// WAL start over while readers still use its frames, and under constant reads and
    /// writes some always do, so the file only grows (to 7 GB in a burst of requests on a
    /// million certificates). So when the file passes the limit: a PASSIVE checkpoint
    /// first, which copies nearly every frame without blocking anyone, then
    /// [`Checkpointer::restart`]. Neither costs durability: a checkpoint only copies
    /// committed frames into the database file.
    fn run(&self, inner: &std::sync::Weak<Inner>) {
        let mut since_passive = Duration::ZERO;
        loop {
            std::thread::sleep(WAL_WATCH_EVERY);
            let inner = match inner.upgrade() {
                Some(inner) if !inner.closed.load(AtomicOrdering::Acquire) => inner,
                _ => return,
            };
            since_passive += WAL_WATCH_EVERY;
            let over = std::fs::metadata(&self.wal).is_ok_and(|m| m.len() > self.limit);
            if over || since_passive >= CHECKPOINT_EVERY {
                since_passive = Duration::ZERO;
                self.checkpoint("PASSIVE");
            }
            if over {
                self.restart(&inner);
            }
        }
    }

    /// RESTART: copies the frames written since the PASSIVE checkpoint and, once no reader
    /// uses the WAL, lets the next commit write it from the start (and truncate it to
    /// `journal_size_limit`). It holds SQLite's write lock while it waits for readers, and
    /// SQLite's busy handler waits in sleeps of 1, 2, 5, 10... ms; so this store's own
    /// connections are paused here instead, through their mutexes: each reader's current
    /// read finishes, then the writer's current batch, and the checkpoint meets no one and
    /// waits for nothing but its copy and one fsync. Only another process holding the file
    /// (a backup) can make it wait, up to the busy timeout. Lock order: readers, then the
    /// writer; no other path holds two of these locks.
    fn restart(&self, inner: &Inner) {
        let readers: Vec<_> = inner.readers.iter().map(|r| r.lock().unwrap_or_else(relock)).collect();
        let writer = inner.writer.lock().unwrap_or_else(relock);
        if writer.is_some() {
            self.checkpoint("RESTART");
        }
        drop(writer);
        drop(readers);
    }

    fn checkpoint(&self, mode: &str) {
        // Returns (busy, frames in the WAL, frames checkpointed); busy = 1 when a RESTART
        // could not wait out another process's readers: it is retried next time.
        let sql = format!("PRAGMA wal_checkpoint({mode})");
        match self.conn.query_row(&sql, [], |r| r.get::<_, i64>(0)) {
            Ok(0) => {}
            Ok(_) => tracing::debug!(mode, "WAL checkpoint could not finish (busy); will retry"),
            Err(e) => tracing::warn!(mode, error = %describe(&e), "WAL checkpoint failed; will retry"),
        }
    }
}

/// Per-connection settings that are not stored in the file.
fn configure(conn: &Connection, options: &SqliteOptions) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "synchronous", SYNCHRONOUS)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "cache_size", -i64::try_from(options.cache_kib).unwrap_or(CACHE_KIB))?;
    // Memory-mapped reads skip a copy per page read: most of a point read's cost after the
    // lock calls.
    conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// Brings the schema up to [`MIGRATIONS`], atomically: a crash mid-way leaves the old schema.
fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            applied_at INTEGER NOT NULL
        )",
    )
    .map_err(backend)?;
    let current: i64 =
        tx.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0)).map_err(backend)?;
    let current = crate::applied_migrations(current, MIGRATIONS.len())?;
    let applied_at = crate::unix_now_ms();
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = index as i64 + 1;
        tx.execute_batch(sql)
            .map_err(|e| Error::Backend(format!("schema migration {version} failed: {}", describe(&e))))?;
        tx.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)", params![version, applied_at])
            .map_err(backend)?;
        tracing::info!(version, "applied schema migration");
    }
    tx.commit().map_err(backend)
}

/// Creates the database file with mode 0600 if it does not exist yet. SQLite creates its
/// `-wal` and `-shm` files with the database file's permissions (`findCreateFileMode` in
/// `os_unix.c`), so all three stay private to the owner; left to SQLite, the file would be
/// created 0644.
fn create_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::Backend(format!("creating {}: {e}", path.display()))),
    }
}

/// A rusqlite error as a log-worthy message without the statement text.
fn describe(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        other => other.to_string(),
    }
}

fn backend(e: rusqlite::Error) -> Error {
    Error::Backend(format!("sqlite: {}", describe(&e)))
}

fn closed() -> Error {
    Error::Backend("store closed".into())
}

/// A poisoned lock means a task panicked while holding the connection. Any transaction it
/// had open was rolled back when its `Transaction` unwound, so the connection is still
/// consistent and we keep using it rather than failing every later call.
fn relock<T>(poisoned: PoisonError<MutexGuard<'_, T>>) -> MutexGuard<'_, T> {
    tracing::warn!("sqlite connection lock was poisoned by a panic; continuing");
    poisoned.into_inner()
}

impl Inner {
    fn ensure_open(&self) -> Result<()> {
        if self.closed.load(AtomicOrdering::Acquire) { Err(closed()) } else { Ok(()) }
    }

    /// Runs `f` on the writer connection.
    fn write<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        self.ensure_open()?;
        let mut guard = self.writer.lock().unwrap_or_else(relock);
        let conn = guard.as_mut().ok_or_else(closed)?;
        f(conn)
    }

    /// Runs `f` on an idle reader if one is free right now, without waiting; `None` when
    /// every reader is busy (or there are none).
    fn try_read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Option<Result<T>> {
        if let Err(e) = self.ensure_open() {
            return Some(Err(e));
        }
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, AtomicOrdering::Relaxed) % n.max(1);
        for offset in 0..n {
            match self.readers[(start + offset) % n].try_lock() {
                Ok(guard) => return Some(guard.as_ref().ok_or_else(closed).and_then(f)),
                Err(TryLockError::Poisoned(p)) => return Some(relock(p).as_ref().ok_or_else(closed).and_then(f)),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        None
    }

    /// Runs `f` on an idle reader if there is one, else waits for the round-robin pick.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.ensure_open()?;
        let n = self.readers.len();
        if n == 0 {
            return self.write(|conn| f(conn));
        }
        let start = self.next_reader.fetch_add(1, AtomicOrdering::Relaxed) % n;
        for offset in 0..n {
            match self.readers[(start + offset) % n].try_lock() {
                Ok(guard) => return f(guard.as_ref().ok_or_else(closed)?),
                Err(TryLockError::Poisoned(p)) => return f(relock(p).as_ref().ok_or_else(closed)?),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        let guard = self.readers[start].lock().unwrap_or_else(relock);
        f(guard.as_ref().ok_or_else(closed)?)
    }
}

fn version_from_sql(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::Backend(format!("stored version {v} is negative")))
}

fn get_row(conn: &Connection, key: Key) -> Result<Option<Row>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT version, created_ms, body FROM resources
             WHERE kind = ?1 AND scope = ?2 AND id = ?3",
        )
        .map_err(backend)?;
    let found = stmt
        .query_row(params![key.kind, key.scope, key.id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, Vec<u8>>(2)?))
        })
        .optional()
        .map_err(backend)?;
    match found {
        None => Ok(None),
        Some((version, created_ms, body)) => {
            Ok(Some(Row { key, version: version_from_sql(version)?, created_ms, body }))
        }
    }
}

/// An owned copy of [`Scan`] that can move to the blocking pool.
struct OwnedScan {
    kind: String,
    scope: String,
    id_prefix: Option<String>,
    after: Option<(i64, String)>,
    order: Order,
    limit: i64,
}

fn scan_rows(conn: &Connection, scan: OwnedScan) -> Result<Vec<Row>> {
    // Keyset pagination on the (kind, scope, created_ms, id) index: the row-value comparison
    // is a range on that index, so a page costs O(limit) whatever its depth. The prefix is a
    // filter on the index entries (the index is ordered by time, not id); `substr` compares
    // exactly, where LIKE would treat `_` and `%` in ids as wildcards.
    let (cmp, dir) = match scan.order {
        Order::Ascending => (">", "ASC"),
        Order::Descending => ("<", "DESC"),
    };
    let mut sql = String::from("SELECT id, version, created_ms, body FROM resources WHERE kind = ?1 AND scope = ?2");
    let mut args: Vec<Value> =
        vec![Value::Text(scan.kind.clone()), Value::Text(scan.scope.clone()), Value::Integer(scan.limit)];
    if let Some((created_ms, id)) = scan.after {
        sql.push_str(&format!(" AND (created_ms, id) {cmp} (?4, ?5)"));
        args.push(Value::Integer(created_ms));
        args.push(Value::Text(id));
    }
    if let Some(prefix) = scan.id_prefix.filter(|p| !p.is_empty()) {
        let n = args.len();
        // SQLite's substr and length count characters of TEXT, so count chars here too.
        let chars = prefix.chars().count() as i64;
        sql.push_str(&format!(" AND substr(id, 1, ?{}) = ?{}", n + 1, n + 2));
        args.push(Value::Integer(chars));
        args.push(Value::Text(prefix));
    }
    sql.push_str(&format!(" ORDER BY created_ms {dir}, id {dir} LIMIT ?3"));

    let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, Vec<u8>>(3)?))
        })
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, version, created_ms, body) = row.map_err(backend)?;
        out.push(Row {
            key: Key { kind: scan.kind.clone(), scope: scan.scope.clone(), id },
            version: version_from_sql(version)?,
            created_ms,
            body,
        });
    }
    Ok(out)
}

/// Applies a batch in one `BEGIN IMMEDIATE` transaction: the write lock is taken up front, so
/// the expectations checked are still true at commit. Dropping the transaction on a conflict
/// rolls everything back.
fn apply_batch(conn: &mut Connection, writes: Vec<Write>, external: bool) -> Result<Vec<u64>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    let mut versions = Vec::new();
    for write in writes {
        match write {
            Write::Put { row, expect: None } => {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO resources (kind, scope, id, version, created_ms, body)
                         VALUES (?1, ?2, ?3, 1, ?4, ?5) ON CONFLICT DO NOTHING",
                    )
                    .map_err(backend)?;
                let k = &row.key;
                let changed =
                    stmt.execute(params![k.kind, k.scope, k.id, row.created_ms, row.body]).map_err(backend)?;
                if changed == 0 {
                    return Err(Error::Conflict(row.key));
                }
                versions.push(1);
            }
            Write::Put { row, expect: Some(expect) } => {
                // A version beyond i64 cannot be stored, so no row can be at it.
                let (Ok(expect_sql), Some(next)) = (i64::try_from(expect), expect.checked_add(1)) else {
                    return Err(Error::Conflict(row.key));
                };
                let mut stmt = tx
                    .prepare_cached(
                        "UPDATE resources SET version = version + 1, body = ?5
                         WHERE kind = ?1 AND scope = ?2 AND id = ?3 AND version = ?4",
                    )
                    .map_err(backend)?;
                let k = &row.key;
                let changed = stmt.execute(params![k.kind, k.scope, k.id, expect_sql, row.body]).map_err(backend)?;
                if changed == 0 {
                    return Err(Error::Conflict(row.key));
                }
                versions.push(next);
            }
            Write::Delete { key, expect } => {
                let Ok(expect_sql) = i64::try_from(expect) else {
                    return Err(Error::Conflict(key));
                };
                let mut stmt = tx
                    .prepare_cached(
                        "DELETE FROM resources
                         WHERE kind = ?1 AND scope = ?2 AND id = ?3 AND version = ?4",
                    )
                    .map_err(backend)?;
                let changed = stmt.execute(params![key.kind, key.scope, key.id, expect_sql]).map_err(backend)?;
                if changed == 0 {
                    return Err(Error::Conflict(key));
                }
                let mut stmt = tx
                    .prepare_cached("DELETE FROM attributes WHERE kind = ?1 AND scope = ?2 AND id = ?3")
                    .map_err(backend)?;
                stmt.execute(params![key.kind, key.scope, key.id]).map_err(backend)?;
            }
            Write::Index { key, expect, attributes } => index_row(&tx, key, expect, &attributes)?,
            Write::Enqueue(NewJob { id, kind, run_at_ms, payload }) => {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO jobs (id, kind, run_at_ms, lease_until_ms, attempts, payload)
                         VALUES (?1, ?2, ?3, ?4, 0, ?5) ON CONFLICT DO NOTHING",
                    )
                    .map_err(backend)?;
                stmt.execute(params![id, kind, run_at_ms, NO_LEASE, payload]).map_err(backend)?;
            }
        }
    }
    if external {
        tx.execute("UPDATE external_writes SET n = n + 1 WHERE id = 1", []).map_err(backend)?;
    }
    tx.commit().map_err(backend)?;
    Ok(versions)
}

/// [`Write::Index`]: checks the row, then writes only the attributes that change (most
/// updates of a row change none).
fn index_row(
    tx: &rusqlite::Transaction<'_>,
    key: Key,
    expect: Option<u64>,
    attributes: &[(String, String)],
) -> Result<()> {
    let mut stmt = tx
        .prepare_cached("SELECT version, created_ms FROM resources WHERE kind = ?1 AND scope = ?2 AND id = ?3")
        .map_err(backend)?;
    let found = stmt
        .query_row(params![key.kind, key.scope, key.id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .optional()
        .map_err(backend)?;
    let Some((version, created_ms)) = found else { return Err(Error::Conflict(key)) };
    if expect.is_some_and(|e| i64::try_from(e).ok() != Some(version)) {
        return Err(Error::Conflict(key));
    }
    let mut stmt = tx
        .prepare_cached("SELECT name, value FROM attributes WHERE kind = ?1 AND scope = ?2 AND id = ?3")
        .map_err(backend)?;
    let stored = stmt
        .query_map(params![key.kind, key.scope, key.id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(backend)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(backend)?;
    let (removed, added) = filter::diff(stored, attributes);
    let mut delete = tx
        .prepare_cached(
            "DELETE FROM attributes WHERE kind = ?1 AND scope = ?2 AND id = ?3 AND name = ?4 AND value = ?5",
        )
        .map_err(backend)?;
    for (name, value) in removed {
        delete.execute(params![key.kind, key.scope, key.id, name, value]).map_err(backend)?;
    }
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO attributes (kind, scope, id, name, value, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(backend)?;
    for (name, value) in added {
        insert.execute(params![key.kind, key.scope, key.id, name, value, created_ms]).map_err(backend)?;
    }
    Ok(())
}

/// A filtered listing's parameters as SQLite values.
fn values(args: Vec<filter::Arg>) -> Vec<Value> {
    args.into_iter()
        .map(|a| match a {
            filter::Arg::Int(i) => Value::Integer(i),
            filter::Arg::Text(t) => Value::Text(t),
        })
        .collect()
}

/// Runs a filtered or sorted listing's statements in one read transaction (one snapshot).
fn run_walk(conn: &Connection, mut walk: Walk) -> Result<Walk> {
    let bind = |args: Vec<filter::Arg>| rusqlite::params_from_iter(values(args));
    conn.execute_batch("BEGIN DEFERRED").map_err(backend)?;
    let result = (|| loop {
        match walk.next() {
            Step::Done => return Ok(()),
            Step::Count(sql) => {
                let mut stmt = conn.prepare_cached(&sql.text).map_err(backend)?;
                let n: i64 = stmt.query_row(bind(sql.args), |r| r.get(0)).map_err(backend)?;
                walk.counted(usize::try_from(n).unwrap_or(0));
            }
            Step::Candidates(sql) => {
                let mut stmt = conn.prepare_cached(&sql.text).map_err(backend)?;
                let found = stmt
                    .query_map(bind(sql.args), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                    .map_err(backend)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(backend)?;
                walk.candidates(found)?;
            }
        }
    })();
    conn.execute_batch("COMMIT").map_err(backend)?;
    result.map(|()| walk)
}

fn claim(conn: &mut Connection, kind_prefix: &str, now_ms: i64, lease_ms: i64, limit: i64) -> Result<Vec<Job>> {
    // One IMMEDIATE transaction, so selecting and leasing are atomic: no second worker (in
    // this process or another one sharing the file) can claim the same due job. Each claim
    // takes the next lease token, so the previous holder's token no longer matches. A claim
    // also moves the run time to the lease's end, when the job is due again should its
    // worker vanish: so claims walking `jobs_by_run_at` pass no leased job (with validation
    // checks in flight, thousands of them were read per claim, most of the server's time
    // under a burst of requests).
    let lease_until = now_ms.saturating_add(lease_ms);
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
    let due: Vec<String> = {
        // A service's queue (`acm.`) is read on its own index; any other prefix (tests,
        // operators) filters every due job.
        let sql = if crate::is_queue(kind_prefix) {
            "SELECT id FROM jobs WHERE substr(kind, 1, instr(kind, '.')) = ?3 AND run_at_ms <= ?1
                 AND lease_until_ms <= ?1 AND dead_at_ms IS NULL
             ORDER BY run_at_ms, id LIMIT ?2"
        } else {
            "SELECT id FROM jobs WHERE run_at_ms <= ?1 AND lease_until_ms <= ?1
                 AND dead_at_ms IS NULL AND substr(kind, 1, length(?3)) = ?3
             ORDER BY run_at_ms, id LIMIT ?2"
        };
        let mut stmt = tx.prepare_cached(sql).map_err(backend)?;
        let ids = stmt.query_map(params![now_ms, limit, kind_prefix], |r| r.get(0)).map_err(backend)?;
        ids.collect::<rusqlite::Result<_>>().map_err(backend)?
    };
    let mut claimed = Vec::with_capacity(due.len());
    {
        let mut stmt = tx
            .prepare_cached(
                "UPDATE jobs SET lease_until_ms = ?2, run_at_ms = MAX(run_at_ms, ?2), attempts = attempts + 1,
                     lease_token = lease_token + 1
                 WHERE id = ?1 RETURNING kind, payload, attempts, failures, lease_token",
            )
            .map_err(backend)?;
        // Oldest first, as selected.
        for id in due {
            let job = stmt
                .query_row(params![id, lease_until], |r| {
                    Ok(Job {
                        kind: r.get(0)?,
                        payload: r.get(1)?,
                        // RETURNING shows the incremented count; the contract reports prior claims.
                        attempts: u32::try_from(r.get::<_, i64>(2)?.saturating_sub(1)).unwrap_or(u32::MAX),
                        failures: u32::try_from(r.get::<_, i64>(3)?).unwrap_or(u32::MAX),
                        lease_until_ms: lease_until,
                        token: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
                        id: id.clone(),
                    })
                })
                .map_err(backend)?;
            claimed.push(job);
        }
    }
    tx.commit().map_err(backend)?;
    Ok(claimed)
}

/// A lease token as SQL stores it (tokens count claims, so they fit).
fn token_sql(token: u64) -> i64 {
    i64::try_from(token).unwrap_or(i64::MAX)
}

fn list_jobs(conn: &Connection, query: &JobQuery) -> Result<Vec<JobInfo>> {
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    let after = query.after_id.as_deref().unwrap_or("");
    let sql = if query.dead {
        "SELECT id, kind, run_at_ms, attempts, failures, last_error, dead_at_ms FROM jobs
         WHERE dead_at_ms IS NOT NULL AND id > ?1 ORDER BY id LIMIT ?2"
    } else {
        "SELECT id, kind, run_at_ms, attempts, failures, last_error, dead_at_ms FROM jobs
         WHERE dead_at_ms IS NULL AND id > ?1 ORDER BY id LIMIT ?2"
    };
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let rows = stmt
        .query_map(params![after, limit], |r| {
            Ok(JobInfo {
                id: r.get(0)?,
                kind: r.get(1)?,
                run_at_ms: r.get(2)?,
                attempts: u32::try_from(r.get::<_, i64>(3)?).unwrap_or(u32::MAX),
                failures: u32::try_from(r.get::<_, i64>(4)?).unwrap_or(u32::MAX),
                last_error: r.get(5)?,
                dead_at_ms: r.get(6)?,
            })
        })
        .map_err(backend)?;
    rows.map(|r| r.map_err(backend)).collect()
}

impl SqliteStore {
    /// Runs one job-row statement on the writer and reports whether it changed a row.
    async fn job_update(&self, sql: &'static str, params: Vec<Value>) -> Result<bool> {
        self.blocking(move |inner| {
            inner.write(|conn| {
                let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
                let changed = stmt.execute(rusqlite::params_from_iter(params)).map_err(backend)?;
                Ok(changed > 0)
            })
        })
        .await
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &Key) -> Result<Option<Row>> {
        let cache = self.cache.as_deref().filter(|c| c.caches(&key.kind));
        let ticket = match cache {
            Some(cache) => {
                self.inner.ensure_open()?;
                if let Some(row) = cache.get(key) {
                    return Ok(Some(row));
                }
                Some(cache.ticket())
            }
            None => None,
        };
        // A primary-key lookup on an idle reader takes tens of microseconds: less than the
        // two thread hand-offs of `spawn_blocking`, which dominated the API's hot path. So
        // it runs inline when a reader is free, and only queues on the pool otherwise.
        let found = match self.inner.try_read(|conn| get_row(conn, key.clone())) {
            Some(result) => result?,
            None => {
                let key = key.clone();
                self.blocking(move |inner| inner.read(|conn| get_row(conn, key))).await?
            }
        };
        if let (Some(cache), Some(ticket), Some(row)) = (cache, ticket, &found) {
            cache.fill(ticket, row);
        }
        Ok(found)
    }

    async fn scan(&self, scan: Scan<'_>) -> Result<Vec<Row>> {
        if scan.limit == 0 {
            self.inner.ensure_open()?;
            return Ok(Vec::new());
        }
        let owned = OwnedScan {
            kind: scan.kind.to_owned(),
            scope: scan.scope.to_owned(),
            id_prefix: scan.id_prefix.map(str::to_owned),
            after: scan.after.map(|c| (c.created_ms, c.id)),
            order: scan.order,
            limit: i64::try_from(scan.limit).unwrap_or(i64::MAX),
        };
        self.blocking(move |inner| inner.read(|conn| scan_rows(conn, owned))).await
    }

    async fn scan_filtered(&self, scan: Scan<'_>, clauses: &[Clause], budget: usize) -> Result<FilteredPage> {
        if clauses.is_empty() {
            return crate::scan_unfiltered(self, scan).await;
        }
        let walk = Walk::new(filter::Style::Sqlite, &scan, clauses, budget)?;
        let walk = self.blocking(move |inner| inner.read(|conn| run_walk(conn, walk))).await?;
        Ok(walk.finish_filtered())
    }

    async fn scan_sorted(&self, scan: SortedScan<'_>, clauses: &[Clause], budget: usize) -> Result<SortedPage> {
        let walk = Walk::sorted(filter::Style::Sqlite, &scan, clauses, budget);
        let walk = self.blocking(move |inner| inner.read(|conn| run_walk(conn, walk))).await?;
        Ok(walk.finish_sorted())
    }

    async fn count(&self, kind: &str, scope: &str, since_ms: i64) -> Result<u64> {
        let (kind, scope) = (kind.to_owned(), scope.to_owned());
        self.blocking(move |inner| {
            inner.read(|conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT COUNT(*) FROM resources
                         WHERE kind = ?1 AND scope = ?2 AND created_ms >= ?3",
                    )
                    .map_err(backend)?;
                let n: i64 = stmt.query_row(params![kind, scope, since_ms], |r| r.get(0)).map_err(backend)?;
                Ok(u64::try_from(n).unwrap_or(0))
            })
        })
        .await
    }

    async fn apply(&self, writes: Vec<Write>) -> Result<Vec<u64>> {
        if writes.is_empty() {
            self.inner.ensure_open()?;
            return Ok(Vec::new());
        }
        let pending = Pending::of(&writes);
        let cache = self.cache.clone();
        let announcer = self.announcer.clone();
        let external = self.external;
        // Cached copies are invalidated on the blocking thread as the batch ends, still
        // holding the writer: so it happens even if the caller stops waiting, before the write
        // is acknowledged, and before any other writer can build on this one (a
        // read-modify-write that lost a version race re-reads the new row, never the cached
        // old one). The commit is announced there too, so announcements keep commit order.
        self.blocking(move |inner| {
            inner.write(|conn| {
                let result = apply_batch(conn, writes, external);
                if let Some(cache) = &cache {
                    cache.invalidate(pending.keys());
                }
                if let Ok(versions) = &result {
                    announcer.announce(pending.committed(versions));
                }
                result
            })
        })
        .await
    }

    async fn claim_jobs(&self, kind_prefix: &str, now_ms: i64, lease_ms: i64, limit: usize) -> Result<Vec<Job>> {
        if limit == 0 {
            self.inner.ensure_open()?;
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let kind_prefix = kind_prefix.to_owned();
        self.blocking(move |inner| inner.write(|conn| claim(conn, &kind_prefix, now_ms, lease_ms, limit))).await
    }

    async fn finish_job(&self, id: &str, token: u64) -> Result<bool> {
        self.job_update(
            "DELETE FROM jobs WHERE id = ?1 AND lease_token = ?2 AND dead_at_ms IS NULL",
            vec![Value::Text(id.to_owned()), Value::Integer(token_sql(token))],
        )
        .await
    }

    async fn retry_job(&self, id: &str, token: u64, run_at_ms: i64, failure: Option<&str>) -> Result<bool> {
        let params = vec![
            Value::Text(id.to_owned()),
            Value::Integer(token_sql(token)),
            Value::Integer(run_at_ms),
            Value::Integer(NO_LEASE),
        ];
        match failure {
            None => {
                self.job_update(
                    "UPDATE jobs SET run_at_ms = ?3, lease_until_ms = ?4
                     WHERE id = ?1 AND lease_token = ?2 AND dead_at_ms IS NULL",
                    params,
                )
                .await
            }
            Some(error) => {
                let mut params = params;
                params.push(Value::Text(error.to_owned()));
                self.job_update(
                    "UPDATE jobs SET run_at_ms = ?3, lease_until_ms = ?4, failures = failures + 1, last_error = ?5
                     WHERE id = ?1 AND lease_token = ?2 AND dead_at_ms IS NULL",
                    params,
                )
                .await
            }
        }
    }

    async fn bury_job(&self, id: &str, token: u64, now_ms: i64, reason: &str) -> Result<bool> {
        self.job_update(
            "UPDATE jobs SET dead_at_ms = ?3, last_error = ?4, run_at_ms = ?5, lease_until_ms = ?6
             WHERE id = ?1 AND lease_token = ?2 AND dead_at_ms IS NULL",
            vec![
                Value::Text(id.to_owned()),
                Value::Integer(token_sql(token)),
                Value::Integer(now_ms),
                Value::Text(reason.to_owned()),
                Value::Integer(i64::MAX),
                Value::Integer(NO_LEASE),
            ],
        )
        .await
    }

    async fn list_jobs(&self, query: JobQuery) -> Result<Vec<JobInfo>> {
        self.blocking(move |inner| inner.read(|conn| list_jobs(conn, &query))).await
    }

    async fn revive_job(&self, id: &str, run_at_ms: i64) -> Result<bool> {
        self.job_update(
            "UPDATE jobs SET dead_at_ms = NULL, failures = 0, run_at_ms = ?2, lease_until_ms = ?3
             WHERE id = ?1 AND dead_at_ms IS NOT NULL",
            vec![Value::Text(id.to_owned()), Value::Integer(run_at_ms), Value::Integer(NO_LEASE)],
        )
        .await
    }

    async fn discard_job(&self, id: &str) -> Result<bool> {
        self.job_update("DELETE FROM jobs WHERE id = ?1 AND dead_at_ms IS NOT NULL", vec![Value::Text(id.to_owned())])
            .await
    }

    fn subscribe(&self, kinds: &[&str]) -> Subscription {
        self.announcer.subscribe(kinds)
    }

    async fn ping(&self) -> Result<()> {
        self.blocking(|inner| {
            inner.read(|conn| {
                let mut stmt = conn.prepare_cached("SELECT 1").map_err(backend)?;
                stmt.query_row([], |r| r.get::<_, i64>(0)).map_err(backend)?;
                Ok(())
            })
        })
        .await
    }

    async fn close(&self) -> Result<()> {
        // Later calls fail fast; calls already holding a connection finish first because
        // we take each lock before dropping its connection.
        if self.inner.closed.swap(true, AtomicOrdering::AcqRel) {
            return Ok(());
        }
        if let Some(cache) = &self.cache {
            cache.clear();
        }
        self.blocking(|inner| {
            for reader in &inner.readers {
                drop(reader.lock().unwrap_or_else(relock).take());
            }
            let writer = inner.writer.lock().unwrap_or_else(relock).take();
            if let Some(conn) = writer {
                // Refresh planner statistics where SQLite thinks they are stale (cheap; the
                // SQLite docs recommend it before closing a long-lived connection).
                conn.execute_batch("PRAGMA optimize").map_err(backend)?;
                // Fold the WAL into the main file so a copy of the .db alone is complete.
                // In-memory databases have no WAL; the pragma is then a harmless no-op.
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(backend)?;
                conn.close().map_err(|(_, e)| backend(e))?;
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testsuite;

    /// A store in memory.
    struct InMemory(SqliteStore);

    impl testsuite::Fixture for InMemory {
        async fn open() -> Self {
            InMemory(SqliteStore::open_in_memory().unwrap())
        }
        fn store(&self) -> &dyn Store {
            &self.0
        }
    }

    /// A store in a file of its own temporary directory, removed after the case.
    struct OnFile {
        store: SqliteStore,
        _dir: tempfile::TempDir,
    }

    impl OnFile {
        fn open_with(cache: bool) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
            let store = if cache { store.with_row_cache(RowCache::new([testsuite::KIND], 100)) } else { store };
            OnFile { store, _dir: dir }
        }
    }

    impl testsuite::Fixture for OnFile {
        async fn open() -> Self {
            OnFile::open_with(false)
        }
        fn store(&self) -> &dyn Store {
            &self.store
        }
    }

    /// A store in a file, with a row cache over the suite's kind.
    struct OnFileWithARowCache(OnFile);

    impl testsuite::Fixture for OnFileWithARowCache {
        async fn open() -> Self {
            OnFileWithARowCache(OnFile::open_with(true))
        }
        fn store(&self) -> &dyn Store {
            &self.0.store
        }
    }

    crate::store_tests!(suite_in_memory, InMemory, #[tokio::test]);
    crate::store_tests!(suite_on_file, OnFile, #[tokio::test(flavor = "multi_thread", worker_threads = 2)]);
    crate::store_tests!(
        suite_on_file_with_a_row_cache,
        OnFileWithARowCache,
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    );

    /// Writers bump one cached row while readers hammer it: once a write is acknowledged,
    /// no read may return an older version.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cached_reads_never_go_back_after_an_acknowledged_write() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Arc::new(SqliteStore::open(&dir.path().join("c.db")).unwrap().with_row_cache(RowCache::new(["k"], 10)));
        store.apply(vec![put("hot", 1, b"0")]).await.unwrap();
        let acknowledged = Arc::new(std::sync::atomic::AtomicU64::new(1));
        let stop = Arc::new(AtomicBool::new(false));
        let mut readers = Vec::new();
        for _ in 0..3 {
            let (store, acknowledged, stop) = (store.clone(), acknowledged.clone(), stop.clone());
            readers.push(tokio::spawn(async move {
                let key = Key::new("k", "s", "hot");
                let mut reads = 0u64;
                while !stop.load(AtomicOrdering::Acquire) {
                    let floor = acknowledged.load(AtomicOrdering::Acquire);
                    let row = store.get(&key).await.unwrap().unwrap();
                    assert!(
                        row.version >= floor,
                        "read version {} after version {floor} was acknowledged",
                        row.version
                    );
                    assert_eq!(row.body, (row.version - 1).to_string().into_bytes(), "body and version disagree");
                    reads += 1;
                    tokio::task::yield_now().await;
                }
                reads
            }));
        }
        for version in 1..300u64 {
            let row = Row {
                key: Key::new("k", "s", "hot"),
                version: 0,
                created_ms: 1,
                body: version.to_string().into_bytes(),
            };
            let written = store.apply(vec![Write::Put { row, expect: Some(version) }]).await.unwrap();
            assert_eq!(written, [version + 1]);
            acknowledged.store(version + 1, AtomicOrdering::Release);
        }
        stop.store(true, AtomicOrdering::Release);
        for reader in readers {
            assert!(reader.await.unwrap() > 0);
        }
        let row = store.get(&Key::new("k", "s", "hot")).await.unwrap().unwrap();
        assert_eq!((row.version, row.body), (300, b"299".to_vec()));
    }

    fn put(id: &str, created_ms: i64, body: &[u8]) -> Write {
        Write::Put {
            row: Row { key: Key::new("k", "s", id), version: 0, created_ms, body: body.to_vec() },
            expect: None,
        }
    }

    /// Acknowledged writes are in the file even when the store is dropped without `close`
    /// (no final checkpoint by us).
    #[tokio::test]
    async fn acknowledged_writes_survive_drop_without_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("durable.db");
        let store = SqliteStore::open(&path).unwrap();
        for i in 0..50 {
            store.apply(vec![put(&format!("r{i}"), i, b"x")]).await.unwrap();
        }
        store.apply((50..100).map(|i| put(&format!("r{i}"), i, b"y")).collect()).await.unwrap();
        drop(store);

        let store = SqliteStore::open(&path).unwrap();
        for i in 0..100 {
            let row = store.get(&Key::new("k", "s", format!("r{i}"))).await.unwrap();
            assert!(row.is_some(), "r{i} lost");
        }
        assert_eq!(store.count("k", "s", i64::MIN).await.unwrap(), 100);
    }

    /// Under constant reads and writes the WAL stays near its limit. Writes about
    /// 40 times the limit while readers keep listings open; with PASSIVE checkpoints only,
    /// the `-wal` file grows with every write (it never starts over while a reader uses it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wal_stays_bounded_under_reads_and_writes() {
        const LIMIT: u64 = 2 << 20;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db");
        let options = SqliteOptions { wal_limit_bytes: LIMIT, ..SqliteOptions::default() };
        let store = Arc::new(SqliteStore::open_with(&path, options).unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let mut readers = Vec::new();
        for _ in 0..3 {
            let (store, stop) = (store.clone(), stop.clone());
            readers.push(tokio::spawn(async move {
                let mut reads = 0u64;
                while !stop.load(AtomicOrdering::Acquire) {
                    let scan = Scan {
                        kind: "k",
                        scope: "s",
                        id_prefix: None,
                        after: None,
                        order: Order::Descending,
                        limit: 50,
                    };
                    store.scan(scan).await.unwrap();
                    reads += 1;
                }
                reads
            }));
        }
        let wal = dir.path().join("wal.db-wal");
        let (mut largest, mut written) = (0u64, 0u64);
        let mut i = 0;
        while written < 40 * LIMIT {
            let body = vec![u8::try_from(i % 251).unwrap(); 6_000];
            store.apply(vec![put(&format!("r{i}"), i, &body)]).await.unwrap();
            written += body.len() as u64;
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
            i += 1;
        }
        stop.store(true, AtomicOrdering::Release);
        for reader in readers {
            assert!(reader.await.unwrap() > 0);
        }
        // The checkpointer looks every 100 ms; what is written meanwhile comes on top (about
        // 10 MB on a fast disk). Without RESTART the file passes 4 times what was written.
        assert!(largest < 10 * LIMIT, "the WAL reached {largest} bytes for a limit of {LIMIT} ({written} written)");
        assert!(largest > LIMIT / 2, "the test wrote too little to fill the WAL ({largest} bytes)");
        for n in 0..i {
            assert!(store.get(&Key::new("k", "s", format!("r{n}"))).await.unwrap().is_some(), "r{n} lost");
        }
    }

    /// The database and SQLite's `-wal` and `-shm` files are 0600.
    #[tokio::test]
    async fn database_files_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private.db");
        let store = SqliteStore::open(&path).unwrap();
        store.apply(vec![put("r", 1, b"x")]).await.unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let file = dir.path().join(format!("private.db{suffix}"));
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} is {mode:o}", file.display());
        }
    }

    const KILL9_ENV: &str = "CARAPACE_STORE_KILL9_DB";

    /// The child half of `acknowledged_writes_survive_kill_9`: writes until killed, printing
    /// each acknowledged id. Passes at once when run on its own (the variable is unset).
    #[tokio::test]
    async fn kill9_child() {
        use std::io::Write as _;
        let Some(path) = std::env::var_os(KILL9_ENV) else { return };
        let store = SqliteStore::open(Path::new(&path)).unwrap();
        let started = std::time::Instant::now();
        let mut out = std::io::stdout().lock();
        // Bounded so an orphan cannot run forever if the parent dies.
        for i in 0..100_000 {
            if started.elapsed() > Duration::from_secs(60) {
                break;
            }
            let id = format!("r{i}");
            store.apply(vec![put(&id, i, &[7; 512])]).await.unwrap();
            writeln!(out, "acked {id}").unwrap();
            out.flush().unwrap();
        }
    }

    /// A real `kill -9` in the middle of a stream of writes loses none that were acknowledged.
    #[test]
    fn acknowledged_writes_survive_kill_9() {
        use std::io::BufRead as _;
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kill9.db");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "sqlite::tests::kill9_child", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(KILL9_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut acked = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(id) = line.strip_prefix("acked ") {
                acked.push(id.to_owned());
                if acked.len() == 300 {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        assert_eq!(acked.len(), 300, "child stopped early");

        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let store = SqliteStore::open(&path).unwrap();
            for id in &acked {
                let row = store.get(&Key::new("k", "s", id.as_str())).await.unwrap();
                assert!(row.is_some(), "{id} was acknowledged but lost");
            }
        });
    }

    fn migration_rows(path: &Path) -> Vec<i64> {
        let conn = Connection::open(path).unwrap();
        let mut stmt = conn.prepare("SELECT version FROM schema_migrations ORDER BY version").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(|v| v.unwrap()).collect()
    }

    #[tokio::test]
    async fn migrations_apply_once_and_reopen_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let store = SqliteStore::open(&path).unwrap();
        store.apply(vec![put("a", 1, b"a")]).await.unwrap();
        store.close().await.unwrap();
        let store = SqliteStore::open(&path).unwrap();
        assert!(store.get(&Key::new("k", "s", "a")).await.unwrap().is_some());
        store.close().await.unwrap();
        let expected: Vec<i64> = (1..=MIGRATIONS.len() as i64).collect();
        assert_eq!(migration_rows(&path), expected);
    }

    #[tokio::test]
    async fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        SqliteStore::open(&path).unwrap().close().await.unwrap();
        let future = MIGRATIONS.len() as i64 + 1;
        Connection::open(&path)
            .unwrap()
            .execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 0)", [future])
            .unwrap();
        let Err(Error::Backend(msg)) = SqliteStore::open(&path) else {
            panic!("opened a database from a newer schema");
        };
        assert!(msg.contains("newer"), "{msg}");
    }

    #[tokio::test]
    async fn close_checkpoints_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let store = SqliteStore::open(&path).unwrap();
        store.apply(vec![put("a", 1, &[1; 10_000])]).await.unwrap();
        store.close().await.unwrap();
        let wal = dir.path().join("c.db-wal");
        assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
        assert!(matches!(store.ping().await, Err(Error::Backend(m)) if m == "store closed"));
    }

    /// SQLite's query plan of `sql`, its steps joined by `; `.
    fn explain(conn: &Connection, sql: &filter::Sql) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", sql.text)).unwrap();
        let args = rusqlite::params_from_iter(values(sql.args.clone()));
        let rows: Vec<String> = stmt.query_map(args, |r| r.get::<_, String>(3)).unwrap().map(|r| r.unwrap()).collect();
        rows.join("; ")
    }

    /// Every statement of a filtered listing searches an index (no table scan, no sort of a
    /// whole range): the count and the walk use `attributes_by_value`, the other clauses'
    /// probes and the fetch use primary keys.
    #[test]
    fn filtered_scans_use_the_indexes() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let plan = |sql: &filter::Sql| explain(&conn, sql);
        for order in [Order::Ascending, Order::Descending] {
            let after = Some(crate::Cursor { created_ms: 5, id: "x".into() });
            let scan = Scan { kind: "k", scope: "s", id_prefix: None, after, order, limit: 100 };
            let clauses = [Clause::new("status", ["ISSUED", "EXPIRED"]), Clause::new("key", ["RSA_2048"])];
            let mut walk = Walk::new(filter::Style::Sqlite, &scan, &clauses, 1000).unwrap();
            let Step::Count(count) = walk.next() else { panic!("no count step") };
            let p = plan(&count);
            assert!(p.contains("COVERING INDEX attributes_by_value") && !p.contains("SCAN attributes"), "{p}");
            walk.counted(10);
            walk.counted(3);
            let Step::Candidates(candidates) = walk.next() else { panic!("no candidates step") };
            let p = plan(&candidates);
            assert!(
                p.contains(
                    "COVERING INDEX attributes_by_value (kind=? AND scope=? AND name=? AND value=? AND (created_ms,id)"
                ),
                "{p}"
            );
            assert!(p.contains("USING PRIMARY KEY (kind=? AND scope=? AND id=? AND name=? AND value=?)"), "{p}");
            assert!(!p.contains("SCAN attributes") && !p.contains("SCAN x"), "{p}");
            assert!(p.contains("SEARCH r USING INDEX sqlite_autoindex_resources_1"), "{p}");
        }
    }

    /// A sorted listing walks one range of `attributes_by_value` (or the primary key, by
    /// id) in its own order, with primary-key probes and body lookups: no scan, no sort.
    #[test]
    fn sorted_scans_use_the_indexes() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let plan = |sql: &filter::Sql| explain(&conn, sql);
        let clauses = [Clause::new("key", ["RSA_2048"]), Clause::absent("managed")];
        for by in [crate::SortKey::Attribute("not_after"), crate::SortKey::Id] {
            for order in [Order::Ascending, Order::Descending] {
                let after = Some(crate::SortCursor { value: "v".into(), created_ms: 5, id: "x".into() });
                let scan = crate::SortedScan { kind: "k", scope: "s", by, after, order, limit: 100 };
                let mut walk = Walk::sorted(filter::Style::Sqlite, &scan, &clauses, 1000);
                let Step::Candidates(candidates) = walk.next() else { panic!("no candidates step") };
                let p = plan(&candidates);
                let walked = match by {
                    crate::SortKey::Id => {
                        "SEARCH resources USING INDEX sqlite_autoindex_resources_1 (kind=? AND scope=? AND id"
                    }
                    crate::SortKey::Attribute(_) => {
                        "COVERING INDEX attributes_by_value (kind=? AND scope=? AND name=? AND (value,created_ms,id)"
                    }
                };
                assert!(p.contains(walked), "{by:?} {order:?}: {p}");
                assert!(p.contains("USING PRIMARY KEY (kind=? AND scope=? AND id=? AND name=? AND value=?)"), "{p}");
                assert!(p.contains("USING PRIMARY KEY (kind=? AND scope=? AND id=? AND name=?)"), "{p}");
                assert!(p.contains("SEARCH r USING INDEX sqlite_autoindex_resources_1"), "{p}");
                assert!(!p.contains("SCAN attributes") && !p.contains("SCAN resources"), "{p}");
            }
        }
    }

    /// The listing and count queries must use the (kind, scope, created_ms, id) index for
    /// both the range and the order: a full scan or a sort would be O(table) per page.
    #[test]
    fn scans_use_the_index() {
        let conn = Connection::open_in_memory().unwrap();
        let mut conn = conn;
        migrate(&mut conn).unwrap();
        let plan = |sql: &str| -> String {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows: Vec<String> =
                stmt.query_map([], |r| r.get::<_, String>(3)).unwrap().map(|r| r.unwrap()).collect();
            rows.join("; ")
        };
        for (cmp, dir) in [(">", "ASC"), ("<", "DESC")] {
            let p = plan(&format!(
                "SELECT id, version, created_ms, body FROM resources WHERE kind = 'k' AND scope = 's'
                 AND (created_ms, id) {cmp} (5, 'x') AND substr(id, 1, 2) = 'ab'
                 ORDER BY created_ms {dir}, id {dir} LIMIT 10"
            ));
            assert!(p.contains("resources_by_created") && p.contains("created_ms"), "{p}");
            assert!(!p.contains("TEMP B-TREE"), "{p}");
        }
        let p = plan("SELECT COUNT(*) FROM resources WHERE kind='k' AND scope='s' AND created_ms >= 3");
        assert!(p.contains("COVERING INDEX resources_by_created"), "{p}");
        let p = plan(
            "SELECT id FROM jobs WHERE run_at_ms <= 5 AND lease_until_ms <= 5
             ORDER BY run_at_ms, id LIMIT 3",
        );
        assert!(p.contains("jobs_by_run_at"), "{p}");
        let p = plan(
            "SELECT id FROM jobs WHERE substr(kind, 1, instr(kind, '.')) = 'acm.' AND run_at_ms <= 5
                 AND lease_until_ms <= 5 AND dead_at_ms IS NULL
             ORDER BY run_at_ms, id LIMIT 3",
        );
        assert!(p.contains("jobs_by_queue") && !p.contains("TEMP B-TREE"), "{p}");
    }
}
