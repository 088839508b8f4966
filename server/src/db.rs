//! Storage: SQLite (embedded default, WAL) or PostgreSQL (several replicas, one fleet),
//! behind one interface with the same SQL where the dialects agree.
//!
//! Invariants the schema itself enforces, so no code path can break them:
//! * a request has at most one grant (`grants.request_id` is UNIQUE);
//! * an approver approves a request at most once (primary key of `approvals`);
//! * a host nonce is accepted once (primary key of `nonces`);
//! * approver API tokens are stored only as SHA-256 hashes.
//!
//! Approving locks the request row (`FOR UPDATE` on PostgreSQL; on SQLite all writes of
//! this process are serialised, each in a `BEGIN IMMEDIATE` transaction that is committed
//! or rolled back before the next starts: see `WriteTx`), counts approvals and moves
//! the request from `pending` to `approved` with a conditional UPDATE in the same
//! transaction that inserts the grant: a grant is issued exactly once, or not at all.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Connection, Executor, Row};

use crate::audit::{self, Entry};

/// Pending requests older than this can no longer be approved.
pub const PENDING_TTL: i64 = 24 * 3600;

/// A pooled connection idle longer than this is pinged before use.
const IDLE_PING_AFTER: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a registered host's public key is served from memory.
const HOST_KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Db {
    pool: AnyPool,
    pub backend: Backend,
    /// SQLite has one writer; this process's writers take this lock first, so they
    /// queue here rather than in SQLite's busy handler (see `WriteTx`).
    write_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// The background task sealing new audit rows (see `audit`).
    sealer: Option<tokio::task::JoinHandle<()>>,
    /// Registered host keys, read on every host request. Hosts are only ever added,
    /// and a name cannot be registered twice, so an entry cannot go stale; the TTL
    /// bounds it anyway (several replicas, or hosts removed some day).
    host_keys: std::sync::Mutex<HashMap<String, (String, std::time::Instant)>>,
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some(t) = &self.sealer {
            t.abort();
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum DbError {
    NotFound(String),
    Conflict(String),
    Forbidden(String),
    Backend(String),
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::NotFound(m) | DbError::Conflict(m) | DbError::Forbidden(m) => f.write_str(m),
            DbError::Backend(m) => write!(f, "database error: {m}"),
        }
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        if let Some(d) = e.as_database_error() {
            if d.is_unique_violation() {
                return DbError::Conflict(format!("already exists ({})", d.message()));
            }
        }
        DbError::Backend(e.to_string())
    }
}

type R<T> = Result<T, DbError>;

/// A write transaction: begun by `begin_write`, ended by `finish`.
///
/// On SQLite it holds this process's write lock and began with `BEGIN IMMEDIATE`, so it
/// takes SQLite's write lock at once, waiting for it through `busy_timeout`. A deferred
/// `BEGIN` would take it only at the first write, as an upgrade of its read, and SQLite
/// answers a failed upgrade with SQLITE_BUSY at once, without the busy handler.
///
/// `finish` commits, or rolls back, and waits for that before the write lock is
/// released. A transaction merely dropped on an error path (a duplicate approval, a
/// repeated revocation) leaves its ROLLBACK queued on the connection's worker while the
/// next writer already runs, and finds SQLite's lock still held: that was the
/// occasional "database is locked". Dropped without `finish` (its future cancelled), it
/// rolls back on a task that holds the lock until the rollback is done.
pub(crate) struct WriteTx {
    tx: Option<sqlx::Transaction<'static, sqlx::Any>>,
    lock: Option<tokio::sync::OwnedMutexGuard<()>>,
}

/// Begin a write transaction (see `WriteTx`).
pub(crate) async fn begin_write(
    pool: &AnyPool,
    backend: Backend,
    write_lock: &std::sync::Arc<tokio::sync::Mutex<()>>,
) -> Result<WriteTx, sqlx::Error> {
    let lock = match backend {
        Backend::Sqlite => Some(write_lock.clone().lock_owned().await),
        Backend::Postgres => None,
    };
    let tx = match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
        // Row locks (FOR UPDATE) and constraints serialise what must be; READ COMMITTED
        // transactions never fail to start for another writer.
        Backend::Postgres => pool.begin().await?,
    };
    Ok(WriteTx { tx: Some(tx), lock })
}

impl WriteTx {
    /// Commit when `result` is Ok, else roll back; either way the database has finished
    /// with the transaction before the write lock is released.
    pub(crate) async fn finish<T, E: From<sqlx::Error>>(
        mut self,
        result: Result<T, E>,
    ) -> Result<T, E> {
        let Some(tx) = self.tx.take() else {
            return result;
        };
        let out = match result {
            Ok(v) => tx.commit().await.map(|()| v).map_err(E::from),
            Err(e) => {
                if let Err(r) = tx.rollback().await {
                    tracing::warn!(error = %r, "cannot roll back a failed write transaction");
                }
                Err(e)
            }
        };
        drop(self.lock.take());
        out
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::Transaction<'static, sqlx::Any>;

    fn deref(&self) -> &Self::Target {
        // Some from `begin_write` until `finish`, which consumes the value.
        self.tx
            .as_ref()
            .expect("write transaction used after finish")
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.tx
            .as_mut()
            .expect("write transaction used after finish")
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let Some(tx) = self.tx.take() else { return };
        let lock = self.lock.take();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    let _ = tx.rollback().await;
                    drop(lock);
                });
            }
            // No runtime left: sqlx queues the rollback itself.
            Err(_) => drop((tx, lock)),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRow {
    pub id: String,
    pub host: String,
    pub user: String,
    pub uid: i64,
    pub run_as: String,
    /// The command spec the grant will carry (exactly the requested argv).
    pub command: String,
    pub reason: String,
    pub duration: i64,
    pub uses: Option<i64>,
    /// The grant's `exec` claim (the matched rule's `allow_exec`).
    pub allow_exec: bool,
    pub source: Option<String>,
    pub status: String,
    pub rule: String,
    pub message: String,
    pub approvals_needed: i64,
    /// JSON array of principals (`bob`, `group:sre`).
    pub approvers: String,
    pub poll_hash: String,
    pub created_at: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantRow {
    pub id: String,
    pub request_id: String,
    pub host: String,
    pub user: String,
    pub token: String,
    pub key_id: String,
    pub exp: i64,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRow {
    pub approver: String,
    pub comment: String,
    pub at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approver {
    pub name: String,
    pub groups: Vec<String>,
    pub admin: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approved {
    pub status: String,
    pub approvals: i64,
    pub needed: i64,
    pub grant: Option<GrantRow>,
}

// ---- schema -----------------------------------------------------------------------------

/// Each migration: (version, SQLite statements, PostgreSQL statements).
const MIGRATIONS: &[(i64, &[&str], &[&str])] = &[(
    1,
    &[
        "CREATE TABLE hosts (name TEXT PRIMARY KEY, public_key TEXT NOT NULL, created_at INTEGER NOT NULL, last_seen INTEGER)",
        "CREATE TABLE approvers (name TEXT PRIMARY KEY, groups_json TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, admin INTEGER NOT NULL, created_at INTEGER NOT NULL)",
        "CREATE TABLE requests (id TEXT PRIMARY KEY, host TEXT NOT NULL, user_name TEXT NOT NULL, uid INTEGER NOT NULL, run_as TEXT NOT NULL, command TEXT NOT NULL, reason TEXT NOT NULL, duration INTEGER NOT NULL, uses INTEGER, source TEXT, status TEXT NOT NULL, rule TEXT NOT NULL, message TEXT NOT NULL, approvals_needed INTEGER NOT NULL, approvers TEXT NOT NULL, poll_hash TEXT NOT NULL, created_at INTEGER NOT NULL, decided_at INTEGER, decided_by TEXT)",
        "CREATE INDEX requests_by_status ON requests (status, created_at)",
        "CREATE TABLE approvals (request_id TEXT NOT NULL REFERENCES requests (id), approver TEXT NOT NULL, comment TEXT NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (request_id, approver))",
        "CREATE TABLE grants (id TEXT PRIMARY KEY, request_id TEXT NOT NULL UNIQUE REFERENCES requests (id), host TEXT NOT NULL, user_name TEXT NOT NULL, token TEXT NOT NULL, key_id TEXT NOT NULL, exp INTEGER NOT NULL, created_at INTEGER NOT NULL)",
        "CREATE INDEX grants_by_host ON grants (host, exp)",
        "CREATE TABLE revocations (grant_id TEXT PRIMARY KEY, reason TEXT NOT NULL, revoked_by TEXT NOT NULL, exp INTEGER NOT NULL, created_at INTEGER NOT NULL)",
        "CREATE TABLE nonces (host TEXT NOT NULL, nonce TEXT NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (host, nonce))",
    ],
    &[
        "CREATE TABLE hosts (name TEXT PRIMARY KEY, public_key TEXT NOT NULL, created_at BIGINT NOT NULL, last_seen BIGINT)",
        "CREATE TABLE approvers (name TEXT PRIMARY KEY, groups_json TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, admin BIGINT NOT NULL, created_at BIGINT NOT NULL)",
        "CREATE TABLE requests (id TEXT PRIMARY KEY, host TEXT NOT NULL, user_name TEXT NOT NULL, uid BIGINT NOT NULL, run_as TEXT NOT NULL, command TEXT NOT NULL, reason TEXT NOT NULL, duration BIGINT NOT NULL, uses BIGINT, source TEXT, status TEXT NOT NULL, rule TEXT NOT NULL, message TEXT NOT NULL, approvals_needed BIGINT NOT NULL, approvers TEXT NOT NULL, poll_hash TEXT NOT NULL, created_at BIGINT NOT NULL, decided_at BIGINT, decided_by TEXT)",
        "CREATE INDEX requests_by_status ON requests (status, created_at)",
        "CREATE TABLE approvals (request_id TEXT NOT NULL REFERENCES requests (id), approver TEXT NOT NULL, comment TEXT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (request_id, approver))",
        "CREATE TABLE grants (id TEXT PRIMARY KEY, request_id TEXT NOT NULL UNIQUE REFERENCES requests (id), host TEXT NOT NULL, user_name TEXT NOT NULL, token TEXT NOT NULL, key_id TEXT NOT NULL, exp BIGINT NOT NULL, created_at BIGINT NOT NULL)",
        "CREATE INDEX grants_by_host ON grants (host, exp)",
        "CREATE TABLE revocations (grant_id TEXT PRIMARY KEY, reason TEXT NOT NULL, revoked_by TEXT NOT NULL, exp BIGINT NOT NULL, created_at BIGINT NOT NULL)",
        "CREATE TABLE nonces (host TEXT NOT NULL, nonce TEXT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (host, nonce))",
    ],
), (2, crate::audit::SQLITE_SCHEMA, crate::audit::POSTGRES_SCHEMA), (
    // Policy rules' allow_exec, carried from the decision to the grant signed at approval.
    3,
    &["ALTER TABLE requests ADD COLUMN allow_exec INTEGER NOT NULL DEFAULT 0"],
    &["ALTER TABLE requests ADD COLUMN allow_exec BIGINT NOT NULL DEFAULT 0"],
)];

const REQUEST_COLUMNS: &str = "id, host, user_name, uid, run_as, command, reason, duration, uses, source, status, rule, message, approvals_needed, approvers, poll_hash, created_at, decided_at, decided_by, allow_exec";

fn request_row(r: &AnyRow) -> Result<RequestRow, sqlx::Error> {
    Ok(RequestRow {
        id: r.try_get("id")?,
        host: r.try_get("host")?,
        user: r.try_get("user_name")?,
        uid: r.try_get("uid")?,
        run_as: r.try_get("run_as")?,
        command: r.try_get("command")?,
        reason: r.try_get("reason")?,
        duration: r.try_get("duration")?,
        uses: r.try_get("uses")?,
        allow_exec: r.try_get::<i64, _>("allow_exec")? != 0,
        source: r.try_get("source")?,
        status: r.try_get("status")?,
        rule: r.try_get("rule")?,
        message: r.try_get("message")?,
        approvals_needed: r.try_get("approvals_needed")?,
        approvers: r.try_get("approvers")?,
        poll_hash: r.try_get("poll_hash")?,
        created_at: r.try_get("created_at")?,
        decided_at: r.try_get("decided_at")?,
        decided_by: r.try_get("decided_by")?,
    })
}

fn grant_row(r: &AnyRow) -> Result<GrantRow, sqlx::Error> {
    Ok(GrantRow {
        id: r.try_get("id")?,
        request_id: r.try_get("request_id")?,
        host: r.try_get("host")?,
        user: r.try_get("user_name")?,
        token: r.try_get("token")?,
        key_id: r.try_get("key_id")?,
        exp: r.try_get("exp")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Db {
    /// Connect and bring the schema up to date.
    pub async fn connect(url: &str) -> R<Db> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if url.starts_with("sqlite:") {
            let url = if url.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            };
            (Backend::Sqlite, url)
        } else {
            (Backend::Postgres, url.to_string())
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            // sqlx pings every connection it hands out by default: a round trip (on
            // SQLite, a hop to the connection's thread and back) before each query or
            // transaction, three per host request. Ping only connections idle for a
            // while, the ones a restarted PostgreSQL may have dropped.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > IDLE_PING_AFTER {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers never block the writer. NORMAL sync in WAL mode loses
                        // nothing when the process is killed; only a power cut can lose the
                        // last commits.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|e| DbError::Backend(format!("cannot open database: {e}")))?;
        let mut db = Db {
            pool,
            backend,
            write_lock: std::sync::Arc::new(tokio::sync::Mutex::new(())),
            sealer: None,
            host_keys: std::sync::Mutex::new(HashMap::new()),
        };
        db.migrate().await?;
        let (pool, lock) = (db.pool.clone(), db.write_lock.clone());
        db.sealer = Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(audit::SEAL_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if pool.is_closed() {
                    return;
                }
                if let Err(e) = audit::seal(&pool, backend, &lock).await {
                    tracing::warn!(error = %e, "cannot seal audit records; will retry");
                }
            }
        }));
        Ok(db)
    }

    /// Seal what is left of the audit trail, then close.
    pub async fn close(&self) {
        if let Some(t) = &self.sealer {
            t.abort();
        }
        if let Err(e) = self.audit_seal().await {
            tracing::warn!(error = %e, "cannot seal audit records");
        }
        self.pool.close().await;
    }

    /// For queries of other modules (audit, web) that need no new `Db` method.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) fn write_lock(&self) -> &std::sync::Arc<tokio::sync::Mutex<()>> {
        &self.write_lock
    }

    /// Begin a write transaction (see `WriteTx`).
    pub(crate) async fn write(&self) -> R<WriteTx> {
        Ok(begin_write(&self.pool, self.backend, &self.write_lock).await?)
    }

    pub(crate) async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.write_lock.lock().await),
            Backend::Postgres => None,
        }
    }

    async fn migrate(&self) -> R<()> {
        let _w = self.write_guard().await;
        let mut conn = self.pool.acquire().await?;
        let int = if self.backend == Backend::Sqlite {
            "INTEGER"
        } else {
            "BIGINT"
        };
        conn.execute(&*format!(
            "CREATE TABLE IF NOT EXISTS schema_version (version {int} PRIMARY KEY, applied_at {int} NOT NULL)"
        ))
        .await?;
        if self.backend == Backend::Postgres {
            // Several replicas may start at once: one migrates, the others wait.
            conn.execute("SELECT pg_advisory_lock(7254001)").await?;
        }
        let result = async {
            let current: Option<i64> = sqlx::query("SELECT MAX(version) AS v FROM schema_version")
                .fetch_one(&mut *conn)
                .await?
                .try_get("v")?;
            let current = current.unwrap_or(0);
            for (version, sqlite, postgres) in MIGRATIONS {
                if *version <= current {
                    continue;
                }
                let mut tx = match self.backend {
                    Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
                    Backend::Postgres => conn.begin().await?,
                };
                let statements = if self.backend == Backend::Sqlite {
                    sqlite
                } else {
                    postgres
                };
                for s in statements.iter() {
                    tx.execute(*s).await?;
                }
                sqlx::query("INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)")
                    .bind(*version)
                    .bind(jitsudo_core::grant::now())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                tracing::info!(version, "applied schema migration");
            }
            Ok::<(), sqlx::Error>(())
        }
        .await;
        if self.backend == Backend::Postgres {
            conn.execute("SELECT pg_advisory_unlock(7254001)").await?;
        }
        result.map_err(DbError::from)
    }

    pub async fn ping(&self) -> R<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    // ---- hosts ----------------------------------------------------------------------------

    pub async fn add_host(&self, name: &str, public_key: &str, now: i64) -> R<()> {
        self.add_host_by(name, public_key, "jitsudod", now).await
    }

    /// Register a host; `by` (the admin) is recorded in the audit trail.
    pub async fn add_host_by(&self, name: &str, public_key: &str, by: &str, now: i64) -> R<()> {
        let mut tx = self.write().await?;
        let result = async {
            sqlx::query("INSERT INTO hosts (name, public_key, created_at) VALUES ($1, $2, $3)")
                .bind(name)
                .bind(public_key)
                .bind(now)
                .execute(&mut **tx)
                .await
                .map_err(|e| match DbError::from(e) {
                    DbError::Conflict(_) => {
                        DbError::Conflict(format!("host {name:?} is already registered"))
                    }
                    other => other,
                })?;
            let e = Entry::new("host.registered", by)
                .host(name)
                .detail(serde_json::json!({ "public_key": public_key }));
            audit::append(&mut tx, self.backend, now, &[e]).await?;
            Ok(())
        }
        .await;
        tx.finish(result).await
    }

    pub async fn host_key(&self, name: &str) -> R<Option<String>> {
        {
            let cache = self.host_keys.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((key, at)) = cache.get(name) {
                if at.elapsed() < HOST_KEY_CACHE_TTL {
                    return Ok(Some(key.clone()));
                }
            }
        }
        let row = sqlx::query("SELECT public_key FROM hosts WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        let key: Option<String> = row.map(|r| r.try_get("public_key")).transpose()?;
        if let Some(k) = &key {
            let mut cache = self.host_keys.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= 100_000 {
                cache.clear();
            }
            cache.insert(name.to_string(), (k.clone(), std::time::Instant::now()));
        }
        Ok(key)
    }

    /// Record a host nonce. False if it was seen before (a replay).
    pub async fn use_nonce(&self, host: &str, nonce: &str, now: i64) -> R<bool> {
        let _w = self.write_guard().await;
        let res = sqlx::query("INSERT INTO nonces (host, nonce, created_at) VALUES ($1, $2, $3)")
            .bind(host)
            .bind(nonce)
            .bind(now)
            .execute(&self.pool)
            .await;
        match res.map_err(DbError::from) {
            Ok(_) => Ok(true),
            Err(DbError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn purge_nonces(&self, before: i64) -> R<u64> {
        let _w = self.write_guard().await;
        let res = sqlx::query("DELETE FROM nonces WHERE created_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected())
    }

    // ---- approvers ------------------------------------------------------------------------

    pub async fn add_approver(
        &self,
        name: &str,
        groups: &[String],
        token_hash: &str,
        admin: bool,
        now: i64,
    ) -> R<()> {
        self.add_approver_by(name, groups, token_hash, admin, "jitsudod", now)
            .await
    }

    /// Create an approver; `by` (the admin) is recorded in the audit trail.
    pub async fn add_approver_by(
        &self,
        name: &str,
        groups: &[String],
        token_hash: &str,
        admin: bool,
        by: &str,
        now: i64,
    ) -> R<()> {
        let mut tx = self.write().await?;
        let result = async {
            let group_list = groups;
            let groups = serde_json::to_string(groups).map_err(|e| DbError::Backend(e.to_string()))?;
            sqlx::query("INSERT INTO approvers (name, groups_json, token_hash, admin, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(name)
                .bind(groups)
                .bind(token_hash)
                .bind(admin as i64)
                .bind(now)
                .execute(&mut **tx)
                .await
                .map_err(|e| match DbError::from(e) {
                    DbError::Conflict(_) => DbError::Conflict(format!("approver {name:?} already exists")),
                    other => other,
                })?;
            let e = Entry::new("approver.added", by)
                .detail(serde_json::json!({ "approver": name, "groups": group_list, "admin": admin }));
            audit::append(&mut tx, self.backend, now, &[e]).await?;
            Ok(())
        }
        .await;
        tx.finish(result).await
    }

    pub async fn approver_by_token_hash(&self, hash: &str) -> R<Option<Approver>> {
        let row =
            sqlx::query("SELECT name, groups_json, admin FROM approvers WHERE token_hash = $1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else { return Ok(None) };
        let groups: String = row.try_get("groups_json")?;
        Ok(Some(Approver {
            name: row.try_get("name")?,
            groups: serde_json::from_str(&groups).map_err(|e| DbError::Backend(e.to_string()))?,
            admin: row.try_get::<i64, _>("admin")? != 0,
        }))
    }

    // ---- requests and grants --------------------------------------------------------------

    /// Store a new request; with `grant`, also its (automatically issued) grant, atomically.
    pub async fn insert_request(&self, req: &RequestRow, grant: Option<&GrantRow>) -> R<()> {
        let mut tx = self.write().await?;
        let result = async {
            sqlx::query(&format!(
                "INSERT INTO requests ({REQUEST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
            ))
            .bind(&req.id)
            .bind(&req.host)
            .bind(&req.user)
            .bind(req.uid)
            .bind(&req.run_as)
            .bind(&req.command)
            .bind(&req.reason)
            .bind(req.duration)
            .bind(req.uses)
            .bind(req.source.clone())
            .bind(&req.status)
            .bind(&req.rule)
            .bind(&req.message)
            .bind(req.approvals_needed)
            .bind(&req.approvers)
            .bind(&req.poll_hash)
            .bind(req.created_at)
            .bind(req.decided_at)
            .bind(req.decided_by.clone())
            .bind(i64::from(req.allow_exec))
            .execute(&mut **tx)
            .await?;
            if let Some(g) = grant {
                insert_grant(&mut tx, g).await?;
            }
            let mut entries = vec![
                Entry::new("request.created", format!("host:{}", req.host))
                    .user(&req.user)
                    .host(&req.host)
                    .request(&req.id)
                    .detail(serde_json::json!({
                        "uid": req.uid,
                        "run_as": req.run_as,
                        "command": req.command,
                        "reason": req.reason,
                        "source": req.source,
                    })),
                Entry::new("request.decided", "policy")
                    .user(&req.user)
                    .host(&req.host)
                    .request(&req.id)
                    .detail(serde_json::json!({
                        "rule": req.rule,
                        "status": req.status,
                        "message": req.message,
                        "duration": req.duration,
                        "uses": req.uses,
                        "allow_exec": req.allow_exec,
                        "approvals_needed": req.approvals_needed,
                        "approvers": serde_json::from_str::<serde_json::Value>(&req.approvers).unwrap_or_default(),
                    })),
            ];
            if let Some(g) = grant {
                entries.push(grant_entry(g, &format!("policy:{}", req.rule)));
            }
            audit::append(&mut tx, self.backend, req.created_at, &entries).await?;
            Ok(())
        }
        .await;
        tx.finish(result).await
    }

    pub async fn request(&self, id: &str) -> R<Option<RequestRow>> {
        let row = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(request_row).transpose()?)
    }

    pub async fn list_requests(&self, pending_only: bool, limit: i64) -> R<Vec<RequestRow>> {
        let filter = if pending_only {
            "WHERE status = 'pending'"
        } else {
            ""
        };
        let rows = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM requests {filter} ORDER BY created_at DESC, id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(request_row).collect::<Result<_, _>>()?)
    }

    pub async fn approvals(&self, request_id: &str) -> R<Vec<ApprovalRow>> {
        let rows = sqlx::query("SELECT approver, comment, created_at FROM approvals WHERE request_id = $1 ORDER BY created_at, approver")
            .bind(request_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ApprovalRow {
                    approver: r.try_get("approver")?,
                    comment: r.try_get("comment")?,
                    at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(DbError::from)
    }

    pub async fn grant_for_request(&self, request_id: &str) -> R<Option<GrantRow>> {
        let row = sqlx::query("SELECT id, request_id, host, user_name, token, key_id, exp, created_at FROM grants WHERE request_id = $1")
            .bind(request_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(grant_row).transpose()?)
    }

    pub async fn grant(&self, id: &str) -> R<Option<GrantRow>> {
        let row = sqlx::query("SELECT id, request_id, host, user_name, token, key_id, exp, created_at FROM grants WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(grant_row).transpose()?)
    }

    /// Unexpired, unrevoked grants for a host.
    pub async fn grants_for_host(&self, host: &str, now: i64) -> R<Vec<GrantRow>> {
        let rows = sqlx::query(
            "SELECT id, request_id, host, user_name, token, key_id, exp, created_at FROM grants \
             WHERE host = $1 AND exp > $2 AND id NOT IN (SELECT grant_id FROM revocations) ORDER BY created_at, id",
        )
        .bind(host)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(grant_row).collect::<Result<_, _>>()?)
    }

    /// Add an approval; when it completes the count, issue the grant (`issue` signs it)
    /// in the same transaction.
    pub async fn approve(
        &self,
        id: &str,
        approver: &Approver,
        comment: &str,
        now: i64,
        issue: impl FnOnce(&RequestRow, Vec<String>) -> Result<GrantRow, String>,
    ) -> R<Approved> {
        let mut tx = self.write().await?;
        let result = async {
            let lock = if self.backend == Backend::Postgres {
                " FOR UPDATE"
            } else {
                ""
            };
            let row = sqlx::query(&format!(
                "SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1{lock}"
            ))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
            let req = row
                .as_ref()
                .map(request_row)
                .transpose()?
                .ok_or_else(|| DbError::NotFound(format!("no request {id}")))?;
            check_open(&req, now)?;
            if req.user == approver.name {
                return Err(DbError::Forbidden(format!(
                    "{} cannot approve their own request; it needs {} other approver(s)",
                    approver.name, req.approvals_needed
                )));
            }
            let principals: Vec<String> =
                serde_json::from_str(&req.approvers).map_err(|e| DbError::Backend(e.to_string()))?;
            let allowed = principals.iter().any(|p| match p.strip_prefix("group:") {
                Some(g) => approver.groups.iter().any(|x| x == g),
                None => *p == approver.name,
            });
            if !allowed {
                return Err(DbError::Forbidden(format!(
                    "{} may not approve request {id} (rule {} names: {})",
                    approver.name,
                    req.rule,
                    principals.join(", ")
                )));
            }
            sqlx::query("INSERT INTO approvals (request_id, approver, comment, created_at) VALUES ($1, $2, $3, $4)")
                .bind(id)
                .bind(&approver.name)
                .bind(comment)
                .bind(now)
                .execute(&mut **tx)
                .await
                .map_err(|e| match DbError::from(e) {
                    DbError::Conflict(_) => DbError::Conflict(format!("{} has already approved request {id}", approver.name)),
                    other => other,
                })?;
            let names: Vec<String> = sqlx::query(
                "SELECT approver FROM approvals WHERE request_id = $1 ORDER BY created_at, approver",
            )
            .bind(id)
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| r.try_get("approver"))
            .collect::<Result<_, _>>()?;
            let count = names.len() as i64;
            let approval = Entry::new("request.approval", &approver.name)
                .user(&req.user)
                .host(&req.host)
                .request(id)
                .detail(serde_json::json!({
                    "comment": comment,
                    "approvals": count,
                    "needed": req.approvals_needed,
                    "rule": req.rule,
                }));
            if count < req.approvals_needed {
                audit::append(&mut tx, self.backend, now, &[approval]).await?;
                return Ok(Approved {
                    status: "pending".into(),
                    approvals: count,
                    needed: req.approvals_needed,
                    grant: None,
                });
            }
            let updated = sqlx::query("UPDATE requests SET status = 'approved', decided_at = $1, decided_by = $2 WHERE id = $3 AND status = 'pending'")
                .bind(now)
                .bind(names.join(","))
                .bind(id)
                .execute(&mut **tx)
                .await?;
            if updated.rows_affected() != 1 {
                return Err(DbError::Conflict(format!(
                    "request {id} was decided meanwhile"
                )));
            }
            let approved = Entry::new("request.approved", &approver.name)
                .user(&req.user)
                .host(&req.host)
                .request(id)
                .detail(serde_json::json!({ "approved_by": names, "rule": req.rule }));
            let grant = issue(&req, names).map_err(DbError::Backend)?;
            insert_grant(&mut tx, &grant).await?;
            let issued = grant_entry(&grant, &approver.name);
            audit::append(&mut tx, self.backend, now, &[approval, approved, issued]).await?;
            Ok(Approved {
                status: "approved".into(),
                approvals: count,
                needed: req.approvals_needed,
                grant: Some(grant),
            })
        }
        .await;
        tx.finish(result).await
    }

    pub async fn deny(&self, id: &str, approver: &Approver, reason: &str, now: i64) -> R<()> {
        let mut tx = self.write().await?;
        let result = async {
            let lock = if self.backend == Backend::Postgres {
                " FOR UPDATE"
            } else {
                ""
            };
            let req = sqlx::query(&format!(
                "SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1{lock}"
            ))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            .as_ref()
            .map(request_row)
            .transpose()?
            .ok_or_else(|| DbError::NotFound(format!("no request {id}")))?;
            check_open(&req, now)?;
            let principals: Vec<String> =
                serde_json::from_str(&req.approvers).map_err(|e| DbError::Backend(e.to_string()))?;
            let allowed = approver.admin
                || principals.iter().any(|p| match p.strip_prefix("group:") {
                    Some(g) => approver.groups.iter().any(|x| x == g),
                    None => *p == approver.name,
                });
            if !allowed {
                return Err(DbError::Forbidden(format!(
                    "{} may not decide request {id}",
                    approver.name
                )));
            }
            let res = sqlx::query(
                "UPDATE requests SET status = 'denied', message = $1, decided_at = $2, decided_by = $3 WHERE id = $4 AND status = 'pending'",
            )
            .bind(format!("denied by {}: {reason}", approver.name))
            .bind(now)
            .bind(&approver.name)
            .bind(id)
            .execute(&mut **tx)
            .await?;
            if res.rows_affected() != 1 {
                return Err(DbError::Conflict(format!(
                    "request {id} was decided meanwhile"
                )));
            }
            let e = Entry::new("request.denied", &approver.name)
                .user(&req.user)
                .host(&req.host)
                .request(id)
                .detail(serde_json::json!({ "reason": reason, "rule": req.rule }));
            audit::append(&mut tx, self.backend, now, &[e]).await?;
            Ok(())
        }
        .await;
        tx.finish(result).await
    }

    /// Revoke a grant. False if it was already revoked.
    pub async fn revoke(&self, grant_id: &str, by: &str, reason: &str, now: i64) -> R<bool> {
        let grant = self
            .grant(grant_id)
            .await?
            .ok_or_else(|| DbError::NotFound(format!("no grant {grant_id}")))?;
        let mut tx = self.write().await?;
        let result = async {
            // ON CONFLICT DO NOTHING: a second revocation changes nothing and records nothing
            // (a failed statement would abort a PostgreSQL transaction).
            let res = sqlx::query("INSERT INTO revocations (grant_id, reason, revoked_by, exp, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (grant_id) DO NOTHING")
                .bind(grant_id)
                .bind(reason)
                .bind(by)
                .bind(grant.exp)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            if res.rows_affected() == 0 {
                return Ok(false);
            }
            let e = Entry::new("grant.revoked", by)
                .user(&grant.user)
                .host(&grant.host)
                .request(&grant.request_id)
                .grant(grant_id)
                .detail(serde_json::json!({ "reason": reason }));
            audit::append(&mut tx, self.backend, now, &[e]).await?;
            Ok(true)
        }
        .await;
        tx.finish(result).await
    }

    /// Ids of revoked grants that have not yet expired (expired ones are refused anyway).
    pub async fn revoked_ids(&self, now: i64) -> R<Vec<String>> {
        let rows = sqlx::query("SELECT grant_id FROM revocations WHERE exp > $1 ORDER BY grant_id")
            .bind(now - 3600)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("grant_id"))
            .collect::<Result<_, _>>()?)
    }

    pub async fn count(&self, table: Table) -> R<i64> {
        let sql = match table {
            Table::Requests => "SELECT COUNT(*) AS n FROM requests",
            Table::Grants => "SELECT COUNT(*) AS n FROM grants",
            Table::Approvals => "SELECT COUNT(*) AS n FROM approvals",
            Table::Pending => "SELECT COUNT(*) AS n FROM requests WHERE status = 'pending'",
        };
        Ok(sqlx::query(sql).fetch_one(&self.pool).await?.try_get("n")?)
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Table {
    Requests,
    Grants,
    Approvals,
    Pending,
}

fn check_open(req: &RequestRow, now: i64) -> R<()> {
    if req.status != "pending" {
        return Err(DbError::Conflict(format!(
            "request {} is already {}",
            req.id, req.status
        )));
    }
    if now - req.created_at > PENDING_TTL {
        return Err(DbError::Conflict(format!(
            "request {} expired unapproved; ask again",
            req.id
        )));
    }
    Ok(())
}

fn grant_entry(g: &GrantRow, by: &str) -> Entry {
    Entry::new("grant.issued", by)
        .user(&g.user)
        .host(&g.host)
        .request(&g.request_id)
        .grant(&g.id)
        .detail(serde_json::json!({ "key_id": g.key_id, "exp": g.exp }))
}

async fn insert_grant(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    g: &GrantRow,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO grants (id, request_id, host, user_name, token, key_id, exp, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(&g.id)
        .bind(&g.request_id)
        .bind(&g.host)
        .bind(&g.user)
        .bind(&g.token)
        .bind(&g.key_id)
        .bind(g.exp)
        .bind(g.created_at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write transaction dropped mid-way (its request cancelled) after it wrote: the
    /// next write neither fails on SQLite's lock nor sees the dropped write.
    #[test]
    fn a_dropped_write_transaction_rolls_back_before_the_next_write() {
        let dir = std::env::temp_dir().join(format!("jitsudod-db-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}/db.sqlite", dir.display());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let db = Db::connect(&url).await.unwrap();
            for i in 0..50 {
                let mut tx = db.write().await.unwrap();
                sqlx::query("INSERT INTO hosts (name, public_key, created_at) VALUES ($1, 'k', 0)")
                    .bind(format!("dropped-{i}"))
                    .execute(&mut **tx)
                    .await
                    .unwrap();
                drop(tx);
                db.add_host(&format!("kept-{i}"), "k4.public.x", 0)
                    .await
                    .unwrap();
            }
            for i in 0..50 {
                assert_eq!(db.host_key(&format!("dropped-{i}")).await.unwrap(), None);
                assert!(db.host_key(&format!("kept-{i}")).await.unwrap().is_some());
            }
            db.close().await;
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}
