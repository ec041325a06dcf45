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
//! TLS is not supported yet (`NoTls`): point it at a server on loopback, a private network
//! or a Unix socket.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Config, NoTls};

use crate::{Error, Job, Key, NewJob, Order, Result, Row, Scan, Store, Write};

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
];

/// The PostgreSQL implementation of [`Store`]. Several processes may use one database (or
/// one schema) at once.
pub struct PostgresStore {
    pool: Pool,
    /// Set by `close` so calls fail fast with a clear message.
    closed: AtomicBool,
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
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| Error::Backend(format!("postgres: building the pool: {e}")))?;
        migrate(&pool, schema).await?;
        Ok(Self { pool, closed: AtomicBool::new(false) })
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
async fn apply_batch(pool: Pool, writes: Vec<Write>) -> Result<Vec<u64>> {
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
    tx.commit().await.map_err(backend)?;
    Ok(versions)
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

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn get(&self, key: &Key) -> Result<Option<Row>> {
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
        detached(apply_batch(self.pool.clone(), writes)).await
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
        // `lease_until_ms <= $1` and is skipped too. So no job is claimed twice.
        let stmt = client
            .prepare_cached(
                "UPDATE jobs SET lease_until_ms = $2, attempts = attempts + 1
                 WHERE id IN (
                     SELECT id FROM jobs WHERE run_at_ms <= $1 AND lease_until_ms <= $1
                         AND starts_with(kind, $4)
                     ORDER BY run_at_ms, id LIMIT $3
                     FOR UPDATE SKIP LOCKED)
                 RETURNING run_at_ms, id, kind, payload, attempts",
            )
            .await
            .map_err(backend)?;
        let rows = client.query(&stmt, &[&now_ms, &lease_until, &limit, &kind_prefix]).await.map_err(backend)?;
        let mut claimed = Vec::with_capacity(rows.len());
        for r in rows {
            let run_at_ms: i64 = r.try_get(0).map_err(backend)?;
            let attempts: i64 = r.try_get(4).map_err(backend)?;
            let job = Job {
                id: r.try_get(1).map_err(backend)?,
                kind: r.try_get(2).map_err(backend)?,
                payload: r.try_get(3).map_err(backend)?,
                // RETURNING shows the incremented count; the contract reports prior claims.
                attempts: u32::try_from(attempts.saturating_sub(1)).unwrap_or(u32::MAX),
                lease_until_ms: lease_until,
            };
            claimed.push((run_at_ms, job));
        }
        // RETURNING order is unspecified; hand jobs out oldest first (ids bytewise, as the
        // "C" collation orders them).
        claimed.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
        Ok(claimed.into_iter().map(|(_, job)| job).collect())
    }

    async fn finish_job(&self, id: &str) -> Result<()> {
        let client = self.client().await?;
        let stmt = client.prepare_cached("DELETE FROM jobs WHERE id = $1").await.map_err(backend)?;
        client.execute(&stmt, &[&id]).await.map_err(backend)?;
        Ok(())
    }

    async fn retry_job(&self, id: &str, run_at_ms: i64) -> Result<()> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("UPDATE jobs SET run_at_ms = $2, lease_until_ms = $3 WHERE id = $1")
            .await
            .map_err(backend)?;
        client.execute(&stmt, &[&id, &run_at_ms, &NO_LEASE]).await.map_err(backend)?;
        Ok(())
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
mod tests {
    use super::*;
    use crate::testsuite;
    use std::collections::HashMap;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::{Arc, Mutex};

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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn suite_on_postgres() {
        let schemas = Arc::new(Mutex::new(Vec::new()));
        testsuite::run_all(|| {
            let schema = fresh_schema();
            schemas.lock().unwrap().push(schema.clone());
            async move { connect(&schema).await }
        })
        .await;
        let schemas = schemas.lock().unwrap().clone();
        assert!(schemas.len() > 20, "the suite makes a store per test, made {}", schemas.len());
        drop_schemas(&schemas).await;
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
        drop_schemas(&[schema]).await;
    }
}
