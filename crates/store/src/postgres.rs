//! The PostgreSQL backend: one database shared by several Carapace nodes.
//!
//! Layout: a `deadpool-postgres` pool of `tokio-postgres` connections. Reads and single
//! statements run on whichever pooled connection is free; a batch runs in one transaction.
//! Semantics mirror [`crate::sqlite`] exactly (same tables, same keyset queries, same lease
//! rules), with the differences a shared server needs:
//!
//! - Text key columns are `COLLATE "C"`, so `id` order is bytewise like SQLite's `BINARY`
//!   collation (and like Rust's `str` order), whatever the database's locale.
//! - Claims lock the rows they take with `FOR UPDATE SKIP LOCKED`, so nodes claiming at
//!   the same time each get different jobs instead of waiting on, or repeating, each other.
//! - Migrations run under a transaction-level advisory lock, so nodes starting together
//!   apply each migration once.
//! - A batch that deadlocks with another node's batch (possible under `READ COMMITTED` when
//!   two batches touch the same rows in opposite orders; SQLite's single writer cannot) is
//!   reported as [`Error::Conflict`] on the write that hit it: nothing was written, and
//!   re-reading then retrying is the right response, as for a stale version.
//!
//! Cancellation: `tokio-postgres` sends `BEGIN`, the writes and `COMMIT` as separate
//! messages, and a future dropped between two of them would return its connection to the
//! pool inside an open transaction, where the next user's `COMMIT` would commit it. So a
//! batch runs in a spawned task that finishes (committing or rolling back) even when the
//! caller stops waiting, as SQLite's blocking tasks do. Reads and single-statement writes
//! are autocommit: dropping them mid-flight leaves the connection clean.
//!
//! Durability: PostgreSQL's default `synchronous_commit = on` flushes the WAL at each commit,
//! so an acknowledged batch survives a power loss, not only a process kill.
//!
//! Change feed: each batch calls `pg_notify` inside its transaction, so PostgreSQL delivers
//! the announcement exactly when (and only if) the batch commits, to every node. Each node
//! keeps one `LISTEN` connection outside the pool; when it drops, the node reconnects with
//! backoff and tells its subscribers to resync, since announcements sent meanwhile are lost.
//! Local commits are also announced in-process at once (a node skips its own notifications).
//!
//! Row cache: like SQLite's, a node may keep hot rows of the kinds only Carapace servers
//! write. A local write invalidates them before it is acknowledged; another node's write
//! invalidates them when its notification arrives (milliseconds later: reads on other nodes
//! may briefly see the previous version, never an older one after a write of their own).
//! While the `LISTEN` connection is down the cache is bypassed, and it is emptied on
//! reconnect. A conflicting write invalidates the row it conflicted on, so a retry re-reads.
//!
//! TLS is not supported yet (`NoTls`): point it at a server on loopback, a private network
//! or a Unix socket.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Config, NoTls};

use crate::feed::{Announcer, Change, Pending};
use crate::filter::{self, Step, Walk};
use crate::row_cache::RowCache;
use crate::{
    Clause, Error, FilteredPage, Job, JobInfo, JobQuery, Key, NewJob, Order, Result, Row, Scan, SortedPage, SortedScan,
    Store, Subscription, Write,
};

/// Connections per store. Each node's API and workers rarely run more than a few queries at
/// once on the 2-core target machines; sixteen leaves headroom without crowding the
/// server's default `max_connections` (100) when a few nodes share it.
const POOL_SIZE: usize = 16;

/// How long a call waits for a free pooled connection before reporting a fault.
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long opening one connection may take (TCP, startup, authentication).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `lease_until_ms` of a job nobody holds: due for any `now`. Same as SQLite's.
const NO_LEASE: i64 = i64::MIN;

/// Advisory-lock namespace for migrations, mixed with the schema name so that stores in
/// different schemas of one database (tests) do not wait for each other.
const MIGRATION_LOCK_SEED: u64 = 0x6361_7261_7061_6365; // "carapace"

/// Schema migrations, applied in order at connect. Entry `i` is version `i + 1`; never edit
/// or reorder a released entry, only append. A database whose `schema_migrations` names a
/// version beyond this list was written by a newer Carapace and is refused.
const MIGRATIONS: &[&str] = &[
    // 1: resources and the job queue, as SQLite's migration 1. BIGINT for every integer
    // (Rust's i64); COLLATE "C" on keys for bytewise order.
    r#"CREATE TABLE resources (
        kind       TEXT COLLATE "C" NOT NULL,
        scope      TEXT COLLATE "C" NOT NULL,
        id         TEXT COLLATE "C" NOT NULL,
        version    BIGINT NOT NULL,
        created_ms BIGINT NOT NULL,
        body       BYTEA  NOT NULL,
        PRIMARY KEY (kind, scope, id)
    );
    CREATE INDEX resources_by_created ON resources (kind, scope, created_ms, id);
    CREATE TABLE jobs (
        id             TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        kind           TEXT   NOT NULL,
        run_at_ms      BIGINT NOT NULL,
        lease_until_ms BIGINT NOT NULL,
        attempts       BIGINT NOT NULL,
        payload        BYTEA  NOT NULL
    );
    -- (run_at_ms, id): claims take due jobs oldest first without sorting a backlog.
    CREATE INDEX jobs_by_run_at ON jobs (run_at_ms, id);"#,
    // 2: lease tokens, failure counts and dead letters, as SQLite's migration 2.
    "ALTER TABLE jobs ADD COLUMN lease_token BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN failures BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN last_error TEXT;
    ALTER TABLE jobs ADD COLUMN dead_at_ms BIGINT;
    CREATE INDEX jobs_dead ON jobs (id) WHERE dead_at_ms IS NOT NULL;",
    // 3: indexed attributes (`Write::Index`), as SQLite's migration 4.
    r#"CREATE TABLE attributes (
        kind       TEXT COLLATE "C" NOT NULL,
        scope      TEXT COLLATE "C" NOT NULL,
        id         TEXT COLLATE "C" NOT NULL,
        name       TEXT COLLATE "C" NOT NULL,
        value      TEXT COLLATE "C" NOT NULL,
        created_ms BIGINT NOT NULL,
        PRIMARY KEY (kind, scope, id, name, value)
    );
    CREATE INDEX attributes_by_value ON attributes (kind, scope, name, value, created_ms, id);"#,
    // 4: due jobs by queue, as SQLite's migration 5.
    "CREATE INDEX jobs_by_queue ON jobs (substr(kind, 1, strpos(kind, '.')), run_at_ms, id);",
];

/// Base name of the notification channel (a schema's stores use `<base>_<schema>`).
const CHANNEL: &str = "carapace_changes";

/// Largest notification payload sent (PostgreSQL's limit is 8000 bytes); a batch touching
/// more rows is announced in several notifications.
const NOTIFY_PAYLOAD_MAX: usize = 7_000;

/// First and longest delay between attempts to (re)open the `LISTEN` connection.
const LISTEN_BACKOFF_MIN: Duration = Duration::from_millis(100);
const LISTEN_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The PostgreSQL implementation of [`Store`]. Several processes may use one database (or
/// one schema) at once.
pub struct PostgresStore {
    pool: Pool,
    /// Set by `close` so calls fail fast with a clear message.
    closed: AtomicBool,
    /// Shared with the batch tasks and the `LISTEN` task.
    feed: Arc<FeedState>,
    /// Dropped with the store: tells the `LISTEN` task to stop.
    _stop_listening: tokio::sync::watch::Sender<()>,
}

/// What the write path and the `LISTEN` task share.
struct FeedState {
    /// This store instance's id in notifications, so it skips its own.
    node: u64,
    /// The notification channel.
    channel: String,
    announcer: Announcer,
    cache: std::sync::OnceLock<Arc<RowCache>>,
    /// True while the `LISTEN` connection is up: only then may the cache serve reads.
    listening: AtomicBool,
}

impl FeedState {
    /// The cache, if there is one and it may be trusted now.
    fn cache(&self) -> Option<&RowCache> {
        self.cache.get().map(|c| c.as_ref()).filter(|_| self.listening.load(AtomicOrdering::Acquire))
    }

    fn invalidate<'a>(&self, keys: impl IntoIterator<Item = &'a Key>) {
        if let Some(cache) = self.cache.get() {
            cache.invalidate(keys);
        }
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:5432/db` or the key=value
    /// form `host=... user=... dbname=...`) and applies pending migrations in the
    /// connection's default schema. Fails if the database was written by a newer schema.
    pub async fn connect(url: &str) -> Result<Self> {
        let config = parse(url)?;
        Self::open(config, None).await
    }

    /// Like [`PostgresStore::connect`], but keeps every table in `schema`, creating it if
    /// missing: each pooled connection starts with `search_path` set to it. Lets tests (or
    /// several deployments) share one database. `schema` must be a plain identifier:
    /// ASCII letters, digits and `_`, not starting with a digit, at most 63 bytes.
    pub async fn connect_with_schema(url: &str, schema: &str) -> Result<Self> {
        if !is_plain_identifier(schema) {
            return Err(Error::Backend(format!("invalid schema name {schema:?}: use letters, digits and _")));
        }
        let mut config = parse(url)?;
        // A startup option rather than a `SET` after connecting: it is the session default,
        // so even a `RESET ALL` on a recycled connection keeps it.
        let options = match config.get_options() {
            Some(existing) if !existing.trim().is_empty() => format!("{existing} -c search_path={schema}"),
            _ => format!("-c search_path={schema}"),
        };
        config.options(options);
        Self::open(config, Some(schema)).await
    }

    async fn open(mut config: Config, schema: Option<&str>) -> Result<Self> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("carapace");
        }
        // `Fast` recycling: a connection is only ever returned outside a transaction (see
        // the module docs), and a dead one fails its next query with a Backend error.
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| Error::Backend(format!("postgres: building the pool: {e}")))?;
        migrate(&pool, schema).await?;
        let channel = match schema {
            Some(schema) => format!("{CHANNEL}_{}", schema.to_ascii_lowercase()),
            None => CHANNEL.to_owned(),
        };
        let feed = Arc::new(FeedState {
            node: random_node_id(),
            channel,
            announcer: Announcer::default(),
            cache: std::sync::OnceLock::new(),
            listening: AtomicBool::new(false),
        });
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
        tokio::spawn(keep_statistics(pool.clone(), stop_rx.clone()));
        tokio::spawn(listen(config, Arc::clone(&feed), stop_rx));
        Ok(Self { pool, closed: AtomicBool::new(false), feed, _stop_listening: stop_tx })
    }

    /// Serves point reads of some kinds from memory once read (see the module docs): only
    /// kinds that nothing but Carapace servers write, since every node's writes reach the
    /// others' caches through the change feed.
    pub fn with_row_cache(self, cache: RowCache) -> Self {
        let _ = self.feed.cache.set(Arc::new(cache));
        self
    }

    fn ensure_open(&self) -> Result<()> {
        if self.closed.load(AtomicOrdering::Acquire) { Err(closed()) } else { Ok(()) }
    }

    /// A pooled connection, or a Backend error once closed.
    async fn client(&self) -> Result<deadpool_postgres::Client> {
        self.ensure_open()?;
        self.pool.get().await.map_err(pool_error)
    }
}

/// Parses a URL or key=value connection string.
fn parse(url: &str) -> Result<Config> {
    url.parse::<Config>().map_err(|e| Error::Backend(format!("postgres: invalid connection string: {}", describe(&e))))
}

fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

/// The advisory-lock key for migrating `schema` (`""` for the default schema): FNV-1a.
fn migration_lock_key(schema: &str) -> i64 {
    let mut hash = MIGRATION_LOCK_SEED ^ 0xcbf2_9ce4_8422_2325;
    for byte in schema.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Brings the schema up to [`MIGRATIONS`] in one transaction: a crash mid-way leaves the old
/// schema. The advisory lock is held until that transaction ends, so a second node starting
/// at the same moment waits, then finds nothing left to do.
async fn migrate(pool: &Pool, schema: Option<&str>) -> Result<()> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let tx = client.transaction().await.map_err(backend)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&migration_lock_key(schema.unwrap_or(""))])
        .await
        .map_err(backend)?;
    if let Some(schema) = schema {
        // Checked by `is_plain_identifier`, so quoting is enough.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"")).await.map_err(backend)?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    BIGINT PRIMARY KEY,
            applied_at BIGINT NOT NULL
        )",
    )
    .await
    .map_err(backend)?;
    let current: i64 =
        tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await.map_err(backend)?.get(0);
    let current = crate::applied_migrations(current, MIGRATIONS.len())?;
    let applied_at = crate::unix_now_ms();
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = index as i64 + 1;
        tx.batch_execute(sql)
            .await
            .map_err(|e| Error::Backend(format!("schema migration {version} failed: {}", describe(&e))))?;
        tx.execute("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", &[&version, &applied_at])
            .await
            .map_err(backend)?;
        tracing::info!(version, "applied schema migration");
    }
    tx.commit().await.map_err(backend)
}

/// A driver error as a log-worthy message without the statement text: for a server error,
/// its severity, SQLSTATE and message.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    }
    match std::error::Error::source(e) {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    }
}

fn backend(e: tokio_postgres::Error) -> Error {
    Error::Backend(format!("postgres: {}", describe(&e)))
}

fn pool_error(e: PoolError) -> Error {
    match e {
        PoolError::Closed => closed(),
        PoolError::Backend(e) => backend(e),
        other => Error::Backend(format!("postgres pool: {other}")),
    }
}

fn closed() -> Error {
    Error::Backend("store closed".into())
}

/// A failure of one write in a batch: a deadlock or serialization failure means the batch
/// lost a race with another one and wrote nothing, like a stale version (see module docs).
fn write_error(e: tokio_postgres::Error, key: &Key) -> Error {
    match e.code() {
        Some(code) if *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE => {
            Error::Conflict(key.clone())
        }
        _ => backend(e),
    }
}

fn version_from_sql(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::Backend(format!("stored version {v} is negative")))
}

/// Applies a batch in one transaction. Each statement's row count checks its expectation:
/// an `UPDATE`/`DELETE ... AND version = $4` that another transaction got to first waits
/// for it, re-reads the row and matches nothing, so the expectation holds at commit.
async fn apply_batch(pool: Pool, writes: Vec<Write>, feed: Arc<FeedState>) -> Result<Vec<u64>> {
    let pending = Pending::of(&writes);
    let result = write_batch(pool, writes, &pending, &feed).await;
    match &result {
        Ok(versions) => {
            let changes = pending.committed(versions);
            feed.invalidate(changes.iter().map(|c| &c.key));
            feed.announcer.announce(changes);
        }
        // The row may be cached at the version this node last saw: let the retry re-read.
        Err(Error::Conflict(key)) => feed.invalidate([key]),
        Err(_) => {}
    }
    result
}

/// The notification payloads announcing `pending`: JSON `{"node": .., "changes": [[kind,
/// scope, id], ..]}`, split to stay under PostgreSQL's payload limit. Versions are not sent:
/// a remote subscriber re-reads the row anyway, and they are known only at commit.
fn notifications(node: u64, pending: &Pending) -> Vec<String> {
    let mut out = Vec::new();
    let mut batch: Vec<[&str; 3]> = Vec::new();
    let mut size = 0;
    for key in pending.keys() {
        let entry = key.kind.len() + key.scope.len() + key.id.len() + 16;
        if !batch.is_empty() && size + entry > NOTIFY_PAYLOAD_MAX {
            out.push(serde_json::json!({ "node": node, "changes": batch }).to_string());
            batch.clear();
            size = 0;
        }
        batch.push([&key.kind, &key.scope, &key.id]);
        size += entry;
    }
    if !batch.is_empty() {
        out.push(serde_json::json!({ "node": node, "changes": batch }).to_string());
    }
    out
}

async fn write_batch(pool: Pool, writes: Vec<Write>, pending: &Pending, feed: &FeedState) -> Result<Vec<u64>> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let tx = client.transaction().await.map_err(backend)?;
    let mut versions = Vec::new();
    let mut conflict = None;
    for write in writes {
        match write {
            Write::Put { row, expect: None } => {
                let stmt = tx
                    .prepare_cached(
                        "INSERT INTO resources (kind, scope, id, version, created_ms, body)
                         VALUES ($1, $2, $3, 1, $4, $5) ON CONFLICT DO NOTHING",
                    )
                    .await
                    .map_err(backend)?;
                let k = &row.key;
                let changed = tx
                    .execute(&stmt, &[&k.kind, &k.scope, &k.id, &row.created_ms, &row.body])
                    .await
                    .map_err(|e| write_error(e, k))?;
                if changed == 0 {
                    conflict = Some(row.key);
                    break;
                }
                versions.push(1);
            }
            Write::Put { row, expect: Some(expect) } => {
                // A version beyond i64 cannot be stored, so no row can be at it.
                let (Ok(expect_sql), Some(next)) = (i64::try_from(expect), expect.checked_add(1)) else {
                    conflict = Some(row.key);
                    break;
                };
                let stmt = tx
                    .prepare_cached(
                        "UPDATE resources SET version = version + 1, body = $5
                         WHERE kind = $1 AND scope = $2 AND id = $3 AND version = $4",
                    )
                    .await
                    .map_err(backend)?;
                let k = &row.key;
                let changed = tx
                    .execute(&stmt, &[&k.kind, &k.scope, &k.id, &expect_sql, &row.body])
                    .await
                    .map_err(|e| write_error(e, k))?;
                if changed == 0 {
                    conflict = Some(row.key);
                    break;
                }
                versions.push(next);
            }
            Write::Delete { key, expect } => {
                let Ok(expect_sql) = i64::try_from(expect) else {
                    conflict = Some(key);
                    break;
                };
                let stmt = tx
                    .prepare_cached(
                        "DELETE FROM resources
                         WHERE kind = $1 AND scope = $2 AND id = $3 AND version = $4",
                    )
                    .await
                    .map_err(backend)?;
                let changed = tx
                    .execute(&stmt, &[&key.kind, &key.scope, &key.id, &expect_sql])
                    .await
                    .map_err(|e| write_error(e, &key))?;
                if changed == 0 {
                    conflict = Some(key);
                    break;
                }
                let stmt = tx
                    .prepare_cached("DELETE FROM attributes WHERE kind = $1 AND scope = $2 AND id = $3")
                    .await
                    .map_err(backend)?;
                tx.execute(&stmt, &[&key.kind, &key.scope, &key.id]).await.map_err(|e| write_error(e, &key))?;
            }
            Write::Index { key, expect, attributes } => {
                if !index_row(&tx, &key, expect, &attributes).await? {
                    conflict = Some(key);
                    break;
                }
            }
            Write::Enqueue(NewJob { id, kind, run_at_ms, payload }) => {
                let stmt = tx
                    .prepare_cached(
                        "INSERT INTO jobs (id, kind, run_at_ms, lease_until_ms, attempts, payload)
                         VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT DO NOTHING",
                    )
                    .await
                    .map_err(backend)?;
                tx.execute(&stmt, &[&id, &kind, &run_at_ms, &NO_LEASE, &payload]).await.map_err(backend)?;
            }
        }
    }
    if let Some(key) = conflict {
        // Waited for, so the connection goes back to the pool outside a transaction. (On the
        // `?` paths above, dropping `tx` queues the ROLLBACK ahead of the next query.)
        tx.rollback().await.map_err(backend)?;
        return Err(Error::Conflict(key));
    }
    // Delivered by PostgreSQL when, and only if, the transaction commits.
    for payload in notifications(feed.node, pending) {
        tx.execute("SELECT pg_notify($1, $2)", &[&feed.channel, &payload]).await.map_err(backend)?;
    }
    tx.commit().await.map_err(backend)?;
    Ok(versions)
}

/// [`Write::Index`], as SQLite's: locks and checks the row, then writes only the attributes
/// that change — in one statement (one round trip), since a bulk load indexes every row it
/// writes. `false` when the row is missing or at another version.
async fn index_row(
    tx: &deadpool_postgres::Transaction<'_>,
    key: &Key,
    expect: Option<u64>,
    attributes: &[(String, String)],
) -> Result<bool> {
    // A version beyond i64 cannot be stored, so no row can be at it.
    let expect = match expect.map(i64::try_from) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => return Ok(false),
    };
    // Data-modifying CTEs all run, on one snapshot: the delete takes the pairs no longer
    // wanted, the insert the wanted ones (those already stored conflict and stay), so the two
    // never touch the same entry.
    let stmt = tx
        .prepare_cached(
            "WITH target AS (
                 SELECT created_ms FROM resources
                 WHERE kind = $1 AND scope = $2 AND id = $3 AND ($4::BIGINT IS NULL OR version = $4)
                 FOR UPDATE
             ), wanted AS (
                 SELECT n, v FROM unnest($5::TEXT[], $6::TEXT[]) AS w(n, v)
             ), removed AS (
                 DELETE FROM attributes a
                 WHERE a.kind = $1 AND a.scope = $2 AND a.id = $3 AND EXISTS (SELECT 1 FROM target)
                   AND NOT EXISTS (SELECT 1 FROM wanted w WHERE w.n = a.name AND w.v = a.value)
             ), added AS (
                 INSERT INTO attributes (kind, scope, id, name, value, created_ms)
                 SELECT $1, $2, $3, w.n, w.v, t.created_ms FROM wanted w CROSS JOIN target t
                 ON CONFLICT DO NOTHING
             )
             SELECT count(*) FROM target",
        )
        .await
        .map_err(backend)?;
    let names: Vec<&str> = attributes.iter().map(|(n, _)| n.as_str()).collect();
    let values: Vec<&str> = attributes.iter().map(|(_, v)| v.as_str()).collect();
    let row = tx
        .query_one(&stmt, &[&key.kind, &key.scope, &key.id, &expect, &names, &values])
        .await
        .map_err(|e| write_error(e, key))?;
    let found: i64 = row.try_get(0).map_err(backend)?;
    Ok(found > 0)
}

/// A filtered or sorted listing on one pooled connection, in one `REPEATABLE READ` read-only
/// transaction, so its statements see one snapshot (as SQLite's do).
async fn run_walk(mut client: deadpool_postgres::Client, mut walk: Walk) -> Result<Walk> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(backend)?;
    // Attribute values are skewed (one key type may be 99 % of a scope, another 1 %), and
    // a prepared statement's generic plan is made for an average value and an unknown
    // LIMIT: for a common value it read and sorted the whole range (a page of 1,000 took
    // ~110 ms where a plan for the actual values takes ~10 ms). Plan each for its values.
    tx.batch_execute("SET LOCAL plan_cache_mode = force_custom_plan").await.map_err(backend)?;
    loop {
        let (sql, step) = match walk.next() {
            Step::Done => break,
            Step::Count(sql) => (sql, 0),
            Step::Candidates(sql) => (sql, 1),
        };
        let args: Vec<Box<dyn ToSql + Sync + Send>> = sql
            .args
            .into_iter()
            .map(|a| -> Box<dyn ToSql + Sync + Send> {
                match a {
                    filter::Arg::Int(i) => Box::new(i),
                    filter::Arg::Text(t) => Box::new(t),
                }
            })
            .collect();
        let refs: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)).collect();
        let stmt = tx.prepare_cached(&sql.text).await.map_err(backend)?;
        let rows = tx.query(&stmt, &refs).await.map_err(backend)?;
        match step {
            0 => {
                let n: i64 = rows.first().map_or(Ok(0), |r| r.try_get(0)).map_err(backend)?;
                walk.counted(usize::try_from(n).unwrap_or(0));
            }
            _ => {
                let mut found = Vec::with_capacity(rows.len());
                for r in rows {
                    found.push((
                        r.try_get(0).map_err(backend)?,
                        r.try_get(1).map_err(backend)?,
                        r.try_get(2).map_err(backend)?,
                        r.try_get(3).map_err(backend)?,
                        r.try_get(4).map_err(backend)?,
                    ));
                }
                walk.candidates(found)?;
            }
        }
    }
    tx.commit().await.map_err(backend)?;
    Ok(walk)
}

/// Runs `f` to completion on its own task, so dropping the caller's future cannot cut it
/// off between `BEGIN` and `COMMIT`.
async fn detached<T, Fut>(f: Fut) -> Result<T>
where
    T: Send + 'static,
    Fut: Future<Output = Result<T>> + Send + 'static,
{
    tokio::spawn(f).await.map_err(|e| Error::Backend(format!("postgres task failed: {e}")))?
}

/// A lease token as SQL stores it (tokens count claims, so they fit).
fn token_sql(token: u64) -> i64 {
    i64::try_from(token).unwrap_or(i64::MAX)
}

/// A random id for this store instance in notifications.
fn random_node_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    #[allow(clippy::disallowed_methods)] // entropy for an id, not a time that decides anything
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    h.finish()
}

/// One notification as sent by [`notifications`].
#[derive(serde::Deserialize)]
struct Notification {
    node: u64,
    changes: Vec<(String, String, String)>,
}

/// Keeps a `LISTEN` connection open until the store is dropped, relaying other nodes'
/// notifications to this node's cache and subscribers. Reconnects with backoff; after a
/// reconnect, subscribers are told to resync (notifications sent while it was down are
/// lost), and the cache, bypassed meanwhile, is emptied.
/// How often [`keep_statistics`] looks at the tables' change counters.
const STATISTICS_INTERVAL: Duration = Duration::from_secs(5);

/// Keeps the planner's statistics of the store's tables current: every
/// [`STATISTICS_INTERVAL`], a table changed by more than 500 rows plus a tenth of its size
/// since it was last analyzed is analyzed. Autovacuum does the same (from 50 rows plus a
/// tenth) when it runs; but it may be off (it was on the machine these figures come from),
/// or a minute behind a bulk load, and a table without statistics makes PostgreSQL plan a
/// row's attribute lookup on the wrong index — a scan of every entry of the scope, which
/// slowed indexed writes to ~100 rows a second at 100,000 rows (`carapace bench scale`).
async fn keep_statistics(pool: Pool, mut stop: tokio::sync::watch::Receiver<()>) {
    const TABLES: &[&str] = &["resources", "attributes", "jobs"];
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(STATISTICS_INTERVAL) => {}
        }
        let Ok(client) = pool.get().await else { continue };
        let stale = client
            .query(
                "SELECT relname::TEXT FROM pg_stat_user_tables
                 WHERE schemaname = current_schema() AND relname = ANY($1)
                   AND n_mod_since_analyze > 500 + n_live_tup / 10",
                &[&TABLES],
            )
            .await;
        let Ok(stale) = stale else { continue };
        for row in stale {
            let Ok(name) = row.try_get::<_, String>(0) else { continue };
            // Only the store's own table names reach the statement.
            let Some(table) = TABLES.iter().find(|t| **t == name) else { continue };
            match client.batch_execute(&format!("ANALYZE {table}")).await {
                Ok(()) => tracing::debug!(table, "analyzed"),
                Err(e) => tracing::warn!(table, error = %e, "ANALYZE failed"),
            }
        }
    }
}

async fn listen(mut config: Config, feed: Arc<FeedState>, mut stop: tokio::sync::watch::Receiver<()>) {
    // Named so an operator (or a test) can find each node's listener in pg_stat_activity.
    config.application_name(format!("carapace-feed {}", std::process::id()));
    let mut backoff = LISTEN_BACKOFF_MIN;
    let mut connected_before = false;
    loop {
        let session = async {
            let (client, mut connection) = config.connect(NoTls).await.map_err(backend)?;
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            // The connection must be polled for notifications to arrive; it ends with an
            // error or when the server closes it.
            let driver = tokio::spawn(async move {
                loop {
                    match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                        Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                            if tx.send(n.payload().to_owned()).is_err() {
                                return String::from("listener stopped");
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return describe(&e),
                        None => return String::from("connection closed"),
                    }
                }
            });
            client.batch_execute(&format!("LISTEN {}", feed.channel)).await.map_err(backend)?;
            if let Some(cache) = feed.cache.get() {
                cache.clear();
            }
            feed.listening.store(true, AtomicOrdering::Release);
            if connected_before {
                tracing::info!("change feed: LISTEN connection restored; resyncing");
                feed.announcer.resync();
            }
            connected_before = true;
            backoff = LISTEN_BACKOFF_MIN;
            while let Some(payload) = rx.recv().await {
                match serde_json::from_str::<Notification>(&payload) {
                    Ok(n) if n.node == feed.node => {}
                    Ok(n) => {
                        let changes: Vec<Change> = n
                            .changes
                            .into_iter()
                            .map(|(kind, scope, id)| Change { key: Key { kind, scope, id }, version: None })
                            .collect();
                        feed.invalidate(changes.iter().map(|c| &c.key));
                        // Remote announcements carry no version: the subscriber re-reads.
                        feed.announcer.announce(changes);
                    }
                    Err(e) => tracing::warn!(error = %e, "change feed: unreadable notification; resyncing"),
                }
            }
            let why = driver.await.unwrap_or_else(|e| e.to_string());
            drop(client);
            Err::<(), Error>(Error::Backend(why))
        };
        let outcome = tokio::select! {
            outcome = session => outcome,
            _ = stop.changed() => return,
        };
        feed.listening.store(false, AtomicOrdering::Release);
        if let Some(cache) = feed.cache.get() {
            cache.clear();
        }
        if let Err(e) = outcome {
            tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "change feed: LISTEN connection lost");
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(LISTEN_BACKOFF_MAX);
    }
}

impl PostgresStore {
    /// Runs one job-row statement and reports whether it changed a row.
    async fn job_update(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<bool> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(backend)?;
        Ok(client.execute(&stmt, params).await.map_err(backend)? > 0)
    }

    /// Reads one row from the database (no cache).
    async fn read_row(&self, key: &Key) -> Result<Option<Row>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT version, created_ms, body FROM resources
                 WHERE kind = $1 AND scope = $2 AND id = $3",
            )
            .await
            .map_err(backend)?;
        let found = client.query_opt(&stmt, &[&key.kind, &key.scope, &key.id]).await.map_err(backend)?;
        match found {
            None => Ok(None),
            Some(r) => Ok(Some(Row {
                key: key.clone(),
                version: version_from_sql(r.try_get(0).map_err(backend)?)?,
                created_ms: r.try_get(1).map_err(backend)?,
                body: r.try_get(2).map_err(backend)?,
            })),
        }
    }
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn get(&self, key: &Key) -> Result<Option<Row>> {
        let cache = self.feed.cache().filter(|c| c.caches(&key.kind));
        if let Some(cache) = cache {
            self.ensure_open()?;
            if let Some(row) = cache.get(key) {
                return Ok(Some(row));
            }
            let ticket = cache.ticket();
            let row = self.read_row(key).await?;
            if let Some(row) = &row {
                cache.fill(ticket, row);
            }
            return Ok(row);
        }
        self.read_row(key).await
    }

    async fn scan(&self, scan: Scan<'_>) -> Result<Vec<Row>> {
        if scan.limit == 0 {
            self.ensure_open()?;
            return Ok(Vec::new());
        }
        // Keyset pagination on the (kind, scope, created_ms, id) index, as in SQLite: the
        // row-value comparison is a range on that index, so a page costs O(limit) whatever
        // its depth. The prefix is a filter on the index entries; `starts_with` compares
        // exactly, where LIKE would treat `_` and `%` in ids as wildcards.
        let (cmp, dir) = match scan.order {
            Order::Ascending => (">", "ASC"),
            Order::Descending => ("<", "DESC"),
        };
        let limit = i64::try_from(scan.limit).unwrap_or(i64::MAX);
        let after = scan.after.map(|c| (c.created_ms, c.id));
        let prefix = scan.id_prefix.filter(|p| !p.is_empty());
        let mut sql =
            String::from("SELECT id, version, created_ms, body FROM resources WHERE kind = $1 AND scope = $2");
        let mut args: Vec<&(dyn ToSql + Sync)> = vec![&scan.kind, &scan.scope, &limit];
        if let Some((created_ms, id)) = &after {
            sql.push_str(&format!(" AND (created_ms, id) {cmp} ($4, $5)"));
            args.push(created_ms);
            args.push(id);
        }
        if let Some(prefix) = &prefix {
            sql.push_str(&format!(" AND starts_with(id, ${})", args.len() + 1));
            args.push(prefix);
        }
        sql.push_str(&format!(" ORDER BY created_ms {dir}, id {dir} LIMIT $3"));

        let client = self.client().await?;
        let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
        let rows = client.query(&stmt, &args).await.map_err(backend)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(Row {
                key: Key {
                    kind: scan.kind.to_owned(),
                    scope: scan.scope.to_owned(),
                    id: r.try_get(0).map_err(backend)?,
                },
                version: version_from_sql(r.try_get(1).map_err(backend)?)?,
                created_ms: r.try_get(2).map_err(backend)?,
                body: r.try_get(3).map_err(backend)?,
            });
        }
        Ok(out)
    }

    async fn scan_filtered(&self, scan: Scan<'_>, clauses: &[Clause], budget: usize) -> Result<FilteredPage> {
        if clauses.is_empty() {
            return crate::scan_unfiltered(self, scan).await;
        }
        let walk = Walk::new(filter::Style::Postgres, &scan, clauses, budget)?;
        let client = self.client().await?;
        // Detached like a batch: a dropped future must not hand back a connection inside
        // the read transaction.
        Ok(detached(run_walk(client, walk)).await?.finish_filtered())
    }

    async fn scan_sorted(&self, scan: SortedScan<'_>, clauses: &[Clause], budget: usize) -> Result<SortedPage> {
        let walk = Walk::sorted(filter::Style::Postgres, &scan, clauses, budget);
        let client = self.client().await?;
        Ok(detached(run_walk(client, walk)).await?.finish_sorted())
    }

    async fn count(&self, kind: &str, scope: &str, since_ms: i64) -> Result<u64> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT COUNT(*) FROM resources
                 WHERE kind = $1 AND scope = $2 AND created_ms >= $3",
            )
            .await
            .map_err(backend)?;
        let row = client.query_one(&stmt, &[&kind, &scope, &since_ms]).await.map_err(backend)?;
        let n: i64 = row.try_get(0).map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn apply(&self, writes: Vec<Write>) -> Result<Vec<u64>> {
        self.ensure_open()?;
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        detached(apply_batch(self.pool.clone(), writes, Arc::clone(&self.feed))).await
    }

    async fn claim_jobs(&self, kind_prefix: &str, now_ms: i64, lease_ms: i64, limit: usize) -> Result<Vec<Job>> {
        if limit == 0 {
            self.ensure_open()?;
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let lease_until = now_ms.saturating_add(lease_ms);
        let client = self.client().await?;
        // One autocommit statement, so selecting and leasing are atomic. `SKIP LOCKED` lets
        // a node pass over jobs another node's claim is taking right now instead of waiting
        // for it; a job that node has already leased and committed fails the re-checked
        // `lease_until_ms <= $1` and is skipped too. So no job is claimed twice. Each claim
        // takes the next lease token, so the previous holder's token no longer matches. The
        // run time moves to the lease's end, as on SQLite, so claims pass no leased job.
        // A service's queue (`acm.`) is read on its own index, as on SQLite.
        let queue = if crate::is_queue(kind_prefix) {
            "substr(kind, 1, strpos(kind, '.')) = $4"
        } else {
            "starts_with(kind, $4)"
        };
        let stmt = client
            .prepare_cached(&format!(
                "WITH due AS (
                     SELECT id, run_at_ms FROM jobs WHERE {queue} AND run_at_ms <= $1 AND lease_until_ms <= $1
                         AND dead_at_ms IS NULL
                     ORDER BY run_at_ms, id LIMIT $3
                     FOR UPDATE SKIP LOCKED)
                 UPDATE jobs SET lease_until_ms = $2, run_at_ms = GREATEST(jobs.run_at_ms, $2),
                     attempts = attempts + 1, lease_token = lease_token + 1
                 FROM due WHERE jobs.id = due.id
                 RETURNING due.run_at_ms, jobs.id, kind, payload, attempts, failures, lease_token"
            ))
            .await
            .map_err(backend)?;
        let rows = client.query(&stmt, &[&now_ms, &lease_until, &limit, &kind_prefix]).await.map_err(backend)?;
        let mut claimed = Vec::with_capacity(rows.len());
        for r in rows {
            let run_at_ms: i64 = r.try_get(0).map_err(backend)?;
            let attempts: i64 = r.try_get(4).map_err(backend)?;
            let failures: i64 = r.try_get(5).map_err(backend)?;
            let token: i64 = r.try_get(6).map_err(backend)?;
            let job = Job {
                id: r.try_get(1).map_err(backend)?,
                kind: r.try_get(2).map_err(backend)?,
                payload: r.try_get(3).map_err(backend)?,
                // RETURNING shows the incremented count; the contract reports prior claims.
                attempts: u32::try_from(attempts.saturating_sub(1)).unwrap_or(u32::MAX),
                failures: u32::try_from(failures).unwrap_or(u32::MAX),
                lease_until_ms: lease_until,
                token: u64::try_from(token).unwrap_or(0),
            };
            claimed.push((run_at_ms, job));
        }
        // RETURNING order is unspecified; hand jobs out oldest first (ids bytewise, as the
        // "C" collation orders them).
        claimed.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
        Ok(claimed.into_iter().map(|(_, job)| job).collect())
    }

    async fn finish_job(&self, id: &str, token: u64) -> Result<bool> {
        self.job_update(
            "DELETE FROM jobs WHERE id = $1 AND lease_token = $2 AND dead_at_ms IS NULL",
            &[&id, &token_sql(token)],
        )
        .await
    }

    async fn retry_job(&self, id: &str, token: u64, run_at_ms: i64, failure: Option<&str>) -> Result<bool> {
        match failure {
            None => {
                self.job_update(
                    "UPDATE jobs SET run_at_ms = $3, lease_until_ms = $4
                     WHERE id = $1 AND lease_token = $2 AND dead_at_ms IS NULL",
                    &[&id, &token_sql(token), &run_at_ms, &NO_LEASE],
                )
                .await
            }
            Some(error) => {
                self.job_update(
                    "UPDATE jobs SET run_at_ms = $3, lease_until_ms = $4, failures = failures + 1, last_error = $5
                     WHERE id = $1 AND lease_token = $2 AND dead_at_ms IS NULL",
                    &[&id, &token_sql(token), &run_at_ms, &NO_LEASE, &error],
                )
                .await
            }
        }
    }

    async fn bury_job(&self, id: &str, token: u64, now_ms: i64, reason: &str) -> Result<bool> {
        self.job_update(
            "UPDATE jobs SET dead_at_ms = $3, last_error = $4, run_at_ms = $5, lease_until_ms = $6
             WHERE id = $1 AND lease_token = $2 AND dead_at_ms IS NULL",
            &[&id, &token_sql(token), &now_ms, &reason, &i64::MAX, &NO_LEASE],
        )
        .await
    }

    async fn list_jobs(&self, query: JobQuery) -> Result<Vec<JobInfo>> {
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let after = query.after_id.unwrap_or_default();
        let sql = if query.dead {
            "SELECT id, kind, run_at_ms, attempts, failures, last_error, dead_at_ms FROM jobs
             WHERE dead_at_ms IS NOT NULL AND id > $1 ORDER BY id LIMIT $2"
        } else {
            "SELECT id, kind, run_at_ms, attempts, failures, last_error, dead_at_ms FROM jobs
             WHERE dead_at_ms IS NULL AND id > $1 ORDER BY id LIMIT $2"
        };
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(backend)?;
        let rows = client.query(&stmt, &[&after, &limit]).await.map_err(backend)?;
        let count = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
        rows.iter()
            .map(|r| {
                Ok(JobInfo {
                    id: r.try_get(0).map_err(backend)?,
                    kind: r.try_get(1).map_err(backend)?,
                    run_at_ms: r.try_get(2).map_err(backend)?,
                    attempts: count(r.try_get(3).map_err(backend)?),
                    failures: count(r.try_get(4).map_err(backend)?),
                    last_error: r.try_get(5).map_err(backend)?,
                    dead_at_ms: r.try_get(6).map_err(backend)?,
                })
            })
            .collect()
    }

    async fn revive_job(&self, id: &str, run_at_ms: i64) -> Result<bool> {
        self.job_update(
            "UPDATE jobs SET dead_at_ms = NULL, failures = 0, run_at_ms = $2, lease_until_ms = $3
             WHERE id = $1 AND dead_at_ms IS NOT NULL",
            &[&id, &run_at_ms, &NO_LEASE],
        )
        .await
    }

    async fn discard_job(&self, id: &str) -> Result<bool> {
        self.job_update("DELETE FROM jobs WHERE id = $1 AND dead_at_ms IS NOT NULL", &[&id]).await
    }

    fn subscribe(&self, kinds: &[&str]) -> Subscription {
        self.feed.announcer.subscribe(kinds)
    }

    async fn ping(&self) -> Result<()> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("SELECT 1").await.map_err(backend)?;
        client.query_one(&stmt, &[]).await.map_err(backend)?;
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        // Later calls fail fast; connections in use go away when their calls finish (a
        // closed pool drops what is returned to it), idle ones at once.
        self.closed.store(true, AtomicOrdering::Release);
        self.pool.close();
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read the real clock where no clock is injected
mod tests {
    use super::*;
    use crate::testsuite;
    use std::collections::HashMap;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::Arc;

    const URL_ENV: &str = "CARAPACE_TEST_POSTGRES_URL";
    const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

    fn test_url() -> String {
        std::env::var(URL_ENV).unwrap_or_else(|_| DEFAULT_URL.to_owned())
    }

    /// A schema name no other test (or earlier run) uses.
    fn fresh_schema() -> String {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
        format!("carapace_test_{:016x}", hasher.finish())
    }

    /// Connects to `schema`, failing the test loudly (never skipping it) without a server.
    async fn connect(schema: &str) -> PostgresStore {
        let url = test_url();
        match PostgresStore::connect_with_schema(&url, schema).await {
            Ok(store) => store,
            Err(e) => panic!(
                "cannot use the PostgreSQL test server at {url} ({e}); start one or set {URL_ENV} \
                 to a reachable database"
            ),
        }
    }

    /// A plain client for checks and clean-up outside the store.
    async fn admin() -> tokio_postgres::Client {
        let url = test_url();
        let (client, conn) = tokio_postgres::connect(&url, NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {url} (set {URL_ENV}): {e}"));
        tokio::spawn(conn);
        client
    }

    /// Drops test schemas, best effort.
    async fn drop_schemas(schemas: &[String]) {
        let client = admin().await;
        for schema in schemas {
            if let Err(e) = client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")).await {
                eprintln!("could not drop test schema {schema}: {e}");
            }
        }
    }

    /// A store in a schema of its own, dropped after the case.
    struct OnPostgres {
        store: PostgresStore,
        schema: String,
    }

    impl testsuite::Fixture for OnPostgres {
        async fn open() -> Self {
            let schema = fresh_schema();
            OnPostgres { store: connect(&schema).await, schema }
        }
        fn store(&self) -> &dyn Store {
            &self.store
        }
        async fn finish(self) {
            let _ = self.store.close().await;
            drop_schemas(&[self.schema]).await;
        }
    }

    crate::store_tests!(suite_on_postgres, OnPostgres, #[tokio::test(flavor = "multi_thread", worker_threads = 2)]);

    /// Waits for the next change of `kind` on `sub` (skipping resyncs), at most 10 s.
    async fn next_change(sub: &mut Subscription) -> Change {
        loop {
            let event = tokio::time::timeout(Duration::from_secs(10), sub.next()).await;
            match event.expect("an announcement within 10 s").expect("feed open") {
                crate::FeedEvent::Changed(change) => return change,
                crate::FeedEvent::Resync => {}
            }
        }
    }

    /// Waits until `sub` yields a resync, at most 10 s.
    async fn next_resync(sub: &mut Subscription) {
        loop {
            let event = tokio::time::timeout(Duration::from_secs(10), sub.next()).await;
            if event.expect("a resync within 10 s").expect("feed open") == crate::FeedEvent::Resync {
                return;
            }
        }
    }

    /// Two nodes on one database: a write on one reaches the other's subscribers and
    /// invalidates its row cache; when the other's LISTEN connection is killed, it
    /// reconnects, resyncs, and its cache never serves a row written meanwhile.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_feed_crosses_nodes_and_resyncs_after_a_lost_connection() {
        let schema = fresh_schema();
        let a = connect(&schema).await;
        let b = connect(&schema).await.with_row_cache(RowCache::new([testsuite::KIND], 100));
        let k = Key::new(testsuite::KIND, "s", "x");
        // Wait until both listeners are up (a write before that would not be relayed).
        for store in [&a, &b] {
            while !store.feed.listening.load(AtomicOrdering::Acquire) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let mut sub = b.subscribe(&[testsuite::KIND]);
        let put = |version: Option<u64>, body: &[u8]| Write::Put {
            row: Row { key: k.clone(), version: 0, created_ms: 1, body: body.to_vec() },
            expect: version,
        };
        a.apply(vec![put(None, b"1")]).await.unwrap();
        let started = std::time::Instant::now();
        assert_eq!(next_change(&mut sub).await.key, k);
        println!("feed latency across nodes: {:?}", started.elapsed());
        assert_eq!(b.get(&k).await.unwrap().unwrap().body, b"1"); // now cached on b
        a.apply(vec![put(Some(1), b"2")]).await.unwrap();
        next_change(&mut sub).await;
        assert_eq!(b.get(&k).await.unwrap().unwrap().body, b"2", "a remote write must invalidate the cache");

        // Kill b's (and a's) listening connections, and write while they are down.
        let admin = admin().await;
        let killed = admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1",
                &[&format!("LISTEN {}", b.feed.channel)],
            )
            .await
            .unwrap();
        assert!(killed >= 2, "expected both listeners, terminated {killed}");
        a.apply(vec![put(Some(2), b"3")]).await.unwrap();
        // Its notification is lost; the reconnect's resync (and emptied cache) covers it.
        next_resync(&mut sub).await;
        assert_eq!(b.get(&k).await.unwrap().unwrap().body, b"3", "a row written while the feed was down");
        // After the reconnect, remote writes flow again.
        a.apply(vec![put(Some(3), b"4")]).await.unwrap();
        next_change(&mut sub).await;
        assert_eq!(b.get(&k).await.unwrap().unwrap().body, b"4");
        drop_schemas(&[schema]).await;
    }

    /// Two nodes (two pools) drain one queue at the same time: every job is claimed once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_never_claim_the_same_job() {
        let schema = fresh_schema();
        let a = Arc::new(connect(&schema).await);
        let b = Arc::new(connect(&schema).await);
        let jobs: Vec<Write> = (0..200)
            .map(|i| {
                Write::Enqueue(NewJob {
                    id: format!("job-{i:03}"),
                    kind: "test.job".into(),
                    run_at_ms: i % 17,
                    payload: vec![],
                })
            })
            .collect();
        a.apply(jobs).await.unwrap();

        let drain = |store: Arc<PostgresStore>| {
            tokio::spawn(async move {
                let mut mine = Vec::new();
                let mut claims = 0;
                loop {
                    // A long lease: nothing may come back within the test.
                    let batch = store.claim_jobs("", 1_000, 1_000_000, 7).await.unwrap();
                    claims += 1;
                    assert!(claims < 1_000, "draining does not end");
                    if batch.is_empty() {
                        return mine;
                    }
                    assert!(batch.iter().all(|j| j.attempts == 0), "a job was claimed before: {batch:?}");
                    mine.extend(batch.into_iter().map(|j| j.id));
                    tokio::task::yield_now().await;
                }
            })
        };
        let (from_a, from_b) = tokio::join!(drain(a.clone()), drain(b.clone()));
        let (from_a, from_b) = (from_a.unwrap(), from_b.unwrap());
        let mut times: HashMap<&str, usize> = HashMap::new();
        for id in from_a.iter().chain(&from_b) {
            *times.entry(id.as_str()).or_default() += 1;
        }
        let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "claimed more than once: {twice:?}");
        assert_eq!(times.len(), 200, "a job was never claimed");
        assert!(
            !from_a.is_empty() && !from_b.is_empty(),
            "one node took everything: {} / {}",
            from_a.len(),
            from_b.len()
        );
        assert!(a.claim_jobs("", 1_000, 1, 10).await.unwrap().is_empty());
        a.close().await.unwrap();
        b.close().await.unwrap();
        drop_schemas(&[schema]).await;
    }

    async fn migration_rows(schema: &str) -> Vec<i64> {
        let rows = admin()
            .await
            .query(&format!("SELECT version FROM \"{schema}\".schema_migrations ORDER BY version"), &[])
            .await
            .unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    }

    fn put(id: &str) -> Write {
        Write::Put {
            row: Row { key: Key::new("k", "s", id), version: 0, created_ms: 1, body: b"x".to_vec() },
            expect: None,
        }
    }

    /// Two nodes starting at once on a new schema both succeed, migrations are recorded once,
    /// and a later connect finds nothing to do and keeps the data.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migrations_apply_once() {
        let schema = fresh_schema();
        let (first, second) = tokio::join!(connect(&schema), connect(&schema));
        first.apply(vec![put("a")]).await.unwrap();
        first.close().await.unwrap();
        second.close().await.unwrap();
        let expected: Vec<i64> = (1..=MIGRATIONS.len() as i64).collect();
        assert_eq!(migration_rows(&schema).await, expected);

        let again = connect(&schema).await;
        assert!(again.get(&Key::new("k", "s", "a")).await.unwrap().is_some(), "data lost on reconnect");
        again.close().await.unwrap();
        assert_eq!(migration_rows(&schema).await, expected);
        drop_schemas(&[schema]).await;
    }

    /// A bulk write leaves the tables with planner statistics, whether or not autovacuum
    /// runs (it is off on the machine this was written on): the store analyzes them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bulk_load_gets_planner_statistics() {
        let schema = fresh_schema();
        let store = connect(&schema).await;
        let writes: Vec<Write> = (0..2_000).map(|i| put(&format!("row-{i:05}"))).collect();
        store.apply(writes).await.unwrap();
        let client = admin().await;
        let analyzed = || async {
            let row = client
                .query_one(
                    "SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL FROM pg_stat_user_tables
                     WHERE schemaname = $1 AND relname = 'resources'",
                    &[&schema],
                )
                .await
                .unwrap();
            row.get::<_, bool>(0)
        };
        let deadline = std::time::Instant::now() + 4 * STATISTICS_INTERVAL;
        while !analyzed().await {
            assert!(std::time::Instant::now() < deadline, "resources was never analyzed");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        store.close().await.unwrap();
        drop_schemas(&[schema]).await;
    }

    #[tokio::test]
    async fn refuses_a_newer_schema() {
        let schema = fresh_schema();
        connect(&schema).await.close().await.unwrap();
        let future = MIGRATIONS.len() as i64 + 1;
        admin()
            .await
            .execute(
                &format!("INSERT INTO \"{schema}\".schema_migrations (version, applied_at) VALUES ($1, 0)"),
                &[&future],
            )
            .await
            .unwrap();
        let result = PostgresStore::connect_with_schema(&test_url(), &schema).await;
        drop_schemas(&[schema]).await;
        let Err(Error::Backend(msg)) = result else {
            panic!("opened a database from a newer schema");
        };
        assert!(msg.contains("newer"), "{msg}");
    }

    #[tokio::test]
    async fn rejects_schema_names_that_need_quoting() {
        for bad in ["", "1abc", "a-b", "a\"b", "a b", "é"] {
            let result = PostgresStore::connect_with_schema(&test_url(), bad).await;
            assert!(matches!(result, Err(Error::Backend(ref m)) if m.contains("invalid schema")), "{bad:?}");
        }
    }

    /// The plain `connect` takes the key=value form too and migrates the default schema (here
    /// of a throwaway database, so the shared test database's `public` stays empty).
    #[tokio::test]
    async fn connect_accepts_key_value_strings() {
        let config = parse(&test_url()).unwrap();
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            other => panic!("{URL_ENV} should name a TCP host, not {other:?}"),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or("postgres");
        let database = fresh_schema();
        let admin = admin().await;
        admin.batch_execute(&format!("CREATE DATABASE \"{database}\"")).await.unwrap();

        let kv = format!("host={host} port={port} user={user} dbname={database}");
        let result = PostgresStore::connect(&kv).await;
        let check = async {
            let store = result.unwrap_or_else(|e| panic!("key=value connect: {e}"));
            store.apply(vec![put("a")]).await.unwrap();
            assert!(store.get(&Key::new("k", "s", "a")).await.unwrap().is_some());
            store.ping().await.unwrap();
            store.close().await.unwrap();
            assert!(matches!(store.ping().await, Err(Error::Backend(m)) if m == "store closed"));
        };
        check.await;
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)")).await.unwrap();
    }

    /// Listings, counts and claims use their index for both the range and the order: no
    /// Sort node (which a collation mismatch between the index and `ORDER BY id` would add).
    /// Sequential scans are disabled because the planner prefers them on empty tables.
    #[tokio::test]
    async fn scans_use_the_index() {
        let schema = fresh_schema();
        connect(&schema).await.close().await.unwrap();
        let client = admin().await;
        client
            .batch_execute(&format!("SET search_path = \"{schema}\"; SET enable_seqscan = off; SET enable_sort = off"))
            .await
            .unwrap();
        let plan = |sql: String| {
            let client = &client;
            async move {
                let rows = client.query(&format!("EXPLAIN {sql}"), &[]).await.unwrap();
                rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>().join("\n")
            }
        };
        for (cmp, dir) in [(">", "ASC"), ("<", "DESC")] {
            let p = plan(format!(
                "SELECT id, version, created_ms, body FROM resources WHERE kind = 'k' AND scope = 's'
                 AND (created_ms, id) {cmp} (5, 'x') AND starts_with(id, 'ab')
                 ORDER BY created_ms {dir}, id {dir} LIMIT 10"
            ))
            .await;
            assert!(p.contains("resources_by_created") && p.contains("created_ms"), "{p}");
            assert!(!p.contains("Sort"), "{p}");
        }
        let p = plan("SELECT COUNT(*) FROM resources WHERE kind='k' AND scope='s' AND created_ms >= 3".into()).await;
        assert!(p.contains("resources_by_created"), "{p}");
        let p = plan(
            "SELECT id FROM jobs WHERE run_at_ms <= 5 AND lease_until_ms <= 5 ORDER BY run_at_ms, id LIMIT 3".into(),
        )
        .await;
        assert!(p.contains("jobs_by_run_at") && !p.contains("Sort"), "{p}");
        let p = plan(
            "SELECT id FROM jobs WHERE substr(kind, 1, strpos(kind, '.')) = 'acm.' AND run_at_ms <= 5
                 AND lease_until_ms <= 5 AND dead_at_ms IS NULL ORDER BY run_at_ms, id LIMIT 3"
                .into(),
        )
        .await;
        assert!(p.contains("jobs_by_queue") && !p.contains("Sort"), "{p}");
        drop_schemas(&[schema]).await;
    }
}
