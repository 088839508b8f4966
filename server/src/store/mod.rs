//! Storage: SQLite (embedded default, WAL) or PostgreSQL (several replicas, one fleet),
//! behind one interface with the same SQL where the dialects agree.
//!
//! Invariants the schema itself enforces, so no code path can break them:
//! * a request has at most one grant (`grants.request_id` is UNIQUE);
//! * an approver approves a request at most once (primary key of `approvals`);
//! * a host nonce is accepted once (primary key of `nonces`);
//! * approver API tokens and web session ids are stored only as SHA-256 hashes;
//! * the fleet has one active key row (`fleet_state`, see `fleet`).
//!
//! SQL only: what may be done, and what it means, is the service's. Where a change needs
//! several statements in one transaction (approving: lock the request row, add the
//! approval, count, mark it approved, insert the grant), the service composes them from
//! the steps of a `WriteTx` (`request_for_update`, `insert_approval`, ...), which locks
//! the row (`FOR UPDATE` on PostgreSQL; on SQLite all writes of this process are
//! serialised, each in a `BEGIN IMMEDIATE` transaction that is committed or rolled back
//! before the next starts: see `tx::WriteTx`). Every change commits together with its
//! audit record (see `audit`).
#![forbid(unsafe_code)]

pub mod audit;
pub mod fleet;
pub mod flow;
pub mod oidc;
pub mod recordings;
mod rows;
pub mod tx;

use std::collections::HashMap;

use jitsudo_policy::audit::{AuditRecord, ChainBreak};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Connection, Executor, Row};

use crate::model::{ApprovalRow, Approver, GrantListing, GrantRow, RequestRow, RequestStatus};
use audit::{Entry, Filter, Verified};
use rows::{approval_row, grant_row, request_row, GRANT_COLUMNS, REQUEST_COLUMNS};
pub use tx::{Backend, DbError, WriteTx};

type R<T> = Result<T, DbError>;

/// A pooled connection idle longer than this is pinged before use.
const IDLE_PING_AFTER: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a registered host's public key is served from memory.
const HOST_KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

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
), (2, audit::SQLITE_SCHEMA, audit::POSTGRES_SCHEMA), (
    3,
    // Requests for edit grants (jitsudo --request -e); every earlier request was exec.
    &["ALTER TABLE requests ADD COLUMN kind TEXT NOT NULL DEFAULT 'exec'"],
    &["ALTER TABLE requests ADD COLUMN kind TEXT NOT NULL DEFAULT 'exec'"],
), (
    // Policy rules' allow_exec, carried from the decision to the grant signed at approval.
    4,
    &["ALTER TABLE requests ADD COLUMN allow_exec INTEGER NOT NULL DEFAULT 0"],
    &["ALTER TABLE requests ADD COLUMN allow_exec BIGINT NOT NULL DEFAULT 0"],
), (
    // Session recordings uploaded by hosts.
    5,
    recordings::SQLITE_SCHEMA,
    recordings::POSTGRES_SCHEMA,
), (
    // Policy rules' record, carried from the decision to the grant signed at approval.
    6,
    &["ALTER TABLE requests ADD COLUMN record INTEGER NOT NULL DEFAULT 0"],
    &["ALTER TABLE requests ADD COLUMN record BIGINT NOT NULL DEFAULT 0"],
), (
    // Recordings' state: sealed, or cut (stored up to the last chunk that verified).
    7,
    recordings::SQLITE_STATE,
    recordings::POSTGRES_STATE,
), (
    // What several replicas share: web sessions, rate-limit windows, the fleet's key.
    8,
    fleet::SQLITE_SCHEMA,
    fleet::POSTGRES_SCHEMA,
), (
    // The policy file (its SHA-256) that decided each request.
    9,
    fleet::POLICY_HASH_SCHEMA,
    fleet::POLICY_HASH_SCHEMA,
), (
    // Tickets, extensions and whether chat votes count, carried from the decision.
    12,
    flow::SQLITE_REQUESTS,
    flow::POSTGRES_REQUESTS,
), (
    // Approvers' Slack member ids, for votes from Slack's buttons.
    13,
    flow::SQLITE_APPROVERS,
    flow::POSTGRES_APPROVERS,
), (
    // Sign-in through the identity provider: pending logins, how a web session's
    // person authenticated, and whether a request's approvals need MFA.
    14,
    oidc::SQLITE_SCHEMA,
    oidc::POSTGRES_SCHEMA,
), (
    // Approver tokens' scope (approve, admin, read) and expiry.
    15,
    oidc::SQLITE_TOKEN_TERMS,
    oidc::POSTGRES_TOKEN_TERMS,
)];

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

    /// Begin a write transaction (see `WriteTx`), for the service to compose from the
    /// steps below; end it with `WriteTx::finish`.
    pub async fn write(&self) -> R<WriteTx> {
        Ok(tx::begin_write(&self.pool, self.backend, &self.write_lock).await?)
    }

    async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
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
            // Each version applied is listed, so a migration merged with a lower number
            // than one a database already has (branches numbered apart) still runs.
            let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_version")
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| r.try_get("version"))
                .collect::<Result<_, _>>()?;
            for (version, sqlite, postgres) in MIGRATIONS {
                if applied.contains(version) {
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
            sqlx::query("INSERT INTO approvers (name, groups_json, token_hash, admin, created_at, scope) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(name)
                .bind(groups)
                .bind(token_hash)
                .bind(admin as i64)
                .bind(now)
                .bind(if admin { "admin" } else { "approve" })
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
            sqlx::query("SELECT name, groups_json, admin, scope FROM approvers WHERE token_hash = $1 AND (expires_at IS NULL OR expires_at > $2)")
                .bind(hash)
                .bind(jitsudo_core::grant::now())
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else { return Ok(None) };
        let groups: String = row.try_get("groups_json")?;
        Ok(Some(Approver {
            name: row.try_get("name")?,
            groups: serde_json::from_str(&groups).map_err(|e| DbError::Backend(e.to_string()))?,
            admin: row.try_get::<i64, _>("admin")? != 0,
            sign_in: None,
            read_only: row.try_get::<String, _>("scope")? == "read",
        }))
    }

    // ---- requests and grants --------------------------------------------------------------

    /// Store a new request; with `grant`, also its (automatically issued) grant, atomically.
    pub async fn insert_request(&self, req: &RequestRow, grant: Option<&GrantRow>) -> R<()> {
        self.insert_decided_request(req, grant, "").await
    }

    /// `insert_request`, recording the SHA-256 of the policy file that decided it (on
    /// the row and in the `request.decided` record).
    pub async fn insert_decided_request(
        &self,
        req: &RequestRow,
        grant: Option<&GrantRow>,
        policy_hash: &str,
    ) -> R<()> {
        let mut tx = self.write().await?;
        let result = async {
            sqlx::query(&format!(
                "INSERT INTO requests ({REQUEST_COLUMNS}, policy_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)"
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
            .bind(req.status)
            .bind(&req.rule)
            .bind(&req.message)
            .bind(req.approvals_needed)
            .bind(&req.approvers)
            .bind(&req.poll_hash)
            .bind(req.created_at)
            .bind(req.decided_at)
            .bind(req.decided_by.clone())
            .bind(req.kind.to_string())
            .bind(i64::from(req.allow_exec))
            .bind(i64::from(req.record))
            .bind(req.ticket.clone())
            .bind(req.extends.clone())
            .bind(i64::from(req.chat_approval))
            .bind(i64::from(req.approver_mfa))
            .bind(policy_hash)
            .execute(&mut **tx)
            .await?;
            let mut replaced = None;
            if let Some(g) = grant {
                insert_grant(&mut tx, g).await?;
                if let Some(old) = &req.extends {
                    replaced = Some(
                        flow::revoke_replaced(
                            &mut tx,
                            old,
                            &g.id,
                            &format!("policy:{}", req.rule),
                            req.created_at,
                        )
                        .await?,
                    );
                }
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
                        "ticket": req.ticket,
                        "extends": req.extends,
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
                        "record": req.record,
                        "approvals_needed": req.approvals_needed,
                        "approvers": serde_json::from_str::<serde_json::Value>(&req.approvers).unwrap_or_default(),
                        "policy_hash": policy_hash,
                    })),
            ];
            if let Some(g) = grant {
                entries.push(audit::grant_issued(g, &format!("policy:{}", req.rule)));
            }
            entries.extend(replaced);
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
            .map(approval_row)
            .collect::<Result<_, _>>()
            .map_err(DbError::from)
    }

    pub async fn grant_for_request(&self, request_id: &str) -> R<Option<GrantRow>> {
        let row = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE request_id = $1"
        ))
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(grant_row).transpose()?)
    }

    pub async fn grant(&self, id: &str) -> R<Option<GrantRow>> {
        let row = sqlx::query(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1"))
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

    /// Requests by id (any order); ids without a row are left out.
    pub async fn requests(&self, ids: &[&str]) -> R<Vec<RequestRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE id IN ({})",
            placeholders(ids.len())
        );
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(*id);
        }
        let rows = q.fetch_all(&self.pool).await?;
        Ok(rows.iter().map(request_row).collect::<Result<_, _>>()?)
    }

    /// The approvals of several requests in one query, by request id, each list in the
    /// order `approvals` gives.
    pub async fn approvals_of(&self, ids: &[&str]) -> R<HashMap<String, Vec<ApprovalRow>>> {
        let mut out: HashMap<String, Vec<ApprovalRow>> = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let sql = format!(
            "SELECT request_id, approver, comment, created_at FROM approvals WHERE request_id IN ({}) ORDER BY created_at, approver",
            placeholders(ids.len())
        );
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&self.pool).await? {
            out.entry(r.try_get("request_id")?)
                .or_default()
                .push(approval_row(&r)?);
        }
        Ok(out)
    }

    /// The grants of several requests in one query, by request id.
    pub async fn grants_of(&self, ids: &[&str]) -> R<HashMap<String, GrantRow>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE request_id IN ({})",
            placeholders(ids.len())
        );
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(*id);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| grant_row(r).map(|g| (g.request_id.clone(), g)))
            .collect::<Result<_, _>>()
            .map_err(DbError::from)
    }

    /// The newest grants with their request's command and their revocation, if any.
    pub async fn recent_grants(&self, limit: i64) -> R<Vec<GrantListing>> {
        let rows = sqlx::query(
            "SELECT g.id, g.host, g.user_name, g.exp, g.created_at, r.command, r.kind, r.run_as, v.revoked_by \
             FROM grants g JOIN requests r ON r.id = g.request_id \
             LEFT JOIN revocations v ON v.grant_id = g.id \
             ORDER BY g.created_at DESC, g.id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(GrantListing {
                    id: r.try_get("id")?,
                    host: r.try_get("host")?,
                    user: r.try_get("user_name")?,
                    run_as: r.try_get("run_as")?,
                    kind: rows::kind_column(r)?,
                    command: r.try_get("command")?,
                    exp: r.try_get("exp")?,
                    created_at: r.try_get("created_at")?,
                    revoked_by: r.try_get("revoked_by")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(DbError::from)
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

    /// The revoked ids of grants issued to `host`, as `revoked_ids` keeps them (until an
    /// hour past their expiry). Read through the grants' (host, exp) index, so its cost
    /// follows this host's live grants, not the fleet's revocations.
    pub async fn revoked_ids_for_host(&self, host: &str, now: i64) -> R<Vec<String>> {
        let rows = sqlx::query(
            "SELECT r.grant_id FROM grants g JOIN revocations r ON r.grant_id = g.id \
             WHERE g.host = $1 AND g.exp > $2 ORDER BY r.grant_id",
        )
        .bind(host)
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

    // ---- audit trail ----------------------------------------------------------------------

    /// Records matching `f`, oldest first, at most `f.limit` (≤ 1000); sealed rows only.
    pub async fn audit_search(&self, f: &Filter) -> R<Vec<AuditRecord>> {
        Ok(audit::search(&self.pool, f).await?)
    }

    /// Seal what has committed so far (see `audit::seal`).
    pub async fn audit_seal(&self) -> R<u64> {
        audit::seal(&self.pool, self.backend, &self.write_lock).await
    }

    /// Walk the whole chain (see `audit::verify`).
    pub async fn audit_verify(&self) -> R<Result<Verified, ChainBreak>> {
        Ok(audit::verify(&self.pool).await?)
    }

    /// Number of audit records (metrics and tests).
    pub async fn audit_count(&self) -> R<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM audit_log")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Table {
    Requests,
    Grants,
    Approvals,
    Pending,
}

/// `$1, $2, … $n`.
fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---- the steps of a write transaction -----------------------------------------------------

/// The statements the service composes into one transaction (approving, denying): each
/// is SQL only; what is allowed, and what to record, is the caller's.
impl WriteTx {
    /// Read request `id`, locking its row until the transaction ends (`FOR UPDATE` on
    /// PostgreSQL; on SQLite the transaction already holds the only write lock).
    pub async fn request_for_update(&mut self, id: &str) -> R<Option<RequestRow>> {
        let lock = if self.backend == Backend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let row = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1{lock}"
        ))
        .bind(id)
        .fetch_optional(&mut ***self)
        .await?;
        Ok(row.as_ref().map(request_row).transpose()?)
    }

    /// Record an approval; `Conflict` when this approver has approved this request
    /// already (the primary key of `approvals`).
    pub async fn insert_approval(
        &mut self,
        request_id: &str,
        approver: &str,
        comment: &str,
        now: i64,
    ) -> R<()> {
        sqlx::query("INSERT INTO approvals (request_id, approver, comment, created_at) VALUES ($1, $2, $3, $4)")
            .bind(request_id)
            .bind(approver)
            .bind(comment)
            .bind(now)
            .execute(&mut ***self)
            .await?;
        Ok(())
    }

    /// Who has approved request `request_id`, oldest first.
    pub async fn approvers_of(&mut self, request_id: &str) -> R<Vec<String>> {
        let rows = sqlx::query(
            "SELECT approver FROM approvals WHERE request_id = $1 ORDER BY created_at, approver",
        )
        .bind(request_id)
        .fetch_all(&mut ***self)
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("approver"))
            .collect::<Result<_, _>>()?)
    }

    /// Mark a pending request approved. False if it was no longer pending.
    pub async fn set_approved(&mut self, request_id: &str, decided_by: &str, now: i64) -> R<bool> {
        let res = sqlx::query(
            "UPDATE requests SET status = $1, decided_at = $2, decided_by = $3 WHERE id = $4 AND status = $5",
        )
        .bind(RequestStatus::Approved)
        .bind(now)
        .bind(decided_by)
        .bind(request_id)
        .bind(RequestStatus::Pending)
        .execute(&mut ***self)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Mark a pending request denied with `message`. False if it was no longer pending.
    pub async fn set_denied(
        &mut self,
        request_id: &str,
        message: &str,
        decided_by: &str,
        now: i64,
    ) -> R<bool> {
        let res = sqlx::query(
            "UPDATE requests SET status = $1, message = $2, decided_at = $3, decided_by = $4 WHERE id = $5 AND status = $6",
        )
        .bind(RequestStatus::Denied)
        .bind(message)
        .bind(now)
        .bind(decided_by)
        .bind(request_id)
        .bind(RequestStatus::Pending)
        .execute(&mut ***self)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Store a grant; `Conflict` if its request has one already (`grants.request_id` is
    /// UNIQUE).
    pub async fn insert_grant(&mut self, g: &GrantRow) -> R<()> {
        insert_grant(self, g).await?;
        Ok(())
    }

    /// Append audit entries; call it last, after every row lock (see `audit`).
    pub async fn audit(&mut self, now: i64, entries: &[Entry]) -> R<()> {
        let backend = self.backend;
        audit::append(self, backend, now, entries).await?;
        Ok(())
    }
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
