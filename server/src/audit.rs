//! The service's audit trail: every request, policy decision (with its rule), approval,
//! denial, grant issued, revocation, host key registered, approver added and signing
//! key activated is one row of `audit_log`, appended in the same transaction as the
//! change it records (a change without its record, or a record without its change,
//! cannot be committed).
//!
//! Rows are hash-chained (see `jitsudo::client::audit` for the canonical form and the
//! check). Appends are serialised so the chain never forks: on SQLite by the process's
//! write lock (and SQLite's single writer), on PostgreSQL by a transaction-scoped
//! advisory lock taken as the *last* step of a writing transaction, after any row
//! locks, so it cannot take part in a lock cycle.
//!
//! `host_journal` is the slot for records uploaded from hosts' local journals: one row
//! per (host, host sequence number), so an upload repeated after a crash stores nothing
//! twice; each accepted record is also chained here as a `host.record` entry.
#![forbid(unsafe_code)]

use jitsudo::client::audit::{AuditRecord, ChainBreak, ChainCheck, ChainOk, GENESIS};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::db::{Backend, Db, DbError};

/// Schema migration 2 (SQLite).
pub const SQLITE_SCHEMA: &[&str] = &[
    "CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL, user_name TEXT, host TEXT, request_id TEXT, grant_id TEXT, detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)",
    "CREATE INDEX audit_by_user ON audit_log (user_name, seq)",
    "CREATE INDEX audit_by_host ON audit_log (host, seq)",
    "CREATE INDEX audit_by_grant ON audit_log (grant_id)",
    "CREATE INDEX audit_by_request ON audit_log (request_id)",
    "CREATE INDEX audit_by_time ON audit_log (at)",
    "CREATE TABLE host_journal (host TEXT NOT NULL, host_seq INTEGER NOT NULL, record TEXT NOT NULL, hash TEXT NOT NULL, received_at INTEGER NOT NULL, audit_seq INTEGER, PRIMARY KEY (host, host_seq))",
];

/// Schema migration 2 (PostgreSQL).
pub const POSTGRES_SCHEMA: &[&str] = &[
    "CREATE TABLE audit_log (seq BIGINT PRIMARY KEY, at BIGINT NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL, user_name TEXT, host TEXT, request_id TEXT, grant_id TEXT, detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)",
    "CREATE INDEX audit_by_user ON audit_log (user_name, seq)",
    "CREATE INDEX audit_by_host ON audit_log (host, seq)",
    "CREATE INDEX audit_by_grant ON audit_log (grant_id)",
    "CREATE INDEX audit_by_request ON audit_log (request_id)",
    "CREATE INDEX audit_by_time ON audit_log (at)",
    "CREATE TABLE host_journal (host TEXT NOT NULL, host_seq BIGINT NOT NULL, record TEXT NOT NULL, hash TEXT NOT NULL, received_at BIGINT NOT NULL, audit_seq BIGINT, PRIMARY KEY (host, host_seq))",
];

/// Serialises chain appends across PostgreSQL replicas (see the module comment).
const PG_AUDIT_LOCK: i64 = 7_254_002;

/// What to record; `append` adds the position, time and hashes.
#[derive(Clone, Debug, Default)]
pub struct Entry {
    pub kind: &'static str,
    pub actor: String,
    pub user: Option<String>,
    pub host: Option<String>,
    pub request: Option<String>,
    pub grant: Option<String>,
    pub detail: Value,
}

impl Entry {
    pub fn new(kind: &'static str, actor: impl Into<String>) -> Entry {
        Entry {
            kind,
            actor: actor.into(),
            detail: Value::Object(Default::default()),
            ..Entry::default()
        }
    }

    pub fn user(mut self, u: &str) -> Entry {
        self.user = Some(u.to_string());
        self
    }

    pub fn host(mut self, h: &str) -> Entry {
        self.host = Some(h.to_string());
        self
    }

    pub fn request(mut self, r: &str) -> Entry {
        self.request = Some(r.to_string());
        self
    }

    pub fn grant(mut self, g: &str) -> Entry {
        self.grant = Some(g.to_string());
        self
    }

    pub fn detail(mut self, d: Value) -> Entry {
        self.detail = d;
        self
    }
}

const COLUMNS: &str =
    "seq, at, kind, actor, user_name, host, request_id, grant_id, detail, prev_hash, hash";

fn record(r: &AnyRow) -> Result<AuditRecord, sqlx::Error> {
    Ok(AuditRecord {
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        kind: r.try_get("kind")?,
        actor: r.try_get("actor")?,
        user: r.try_get("user_name")?,
        host: r.try_get("host")?,
        request: r.try_get("request_id")?,
        grant: r.try_get("grant_id")?,
        detail: r.try_get("detail")?,
        prev: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

/// Append entries to the chain inside the caller's transaction. Call it last in a
/// transaction (after any row locks).
pub async fn append(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    now: i64,
    entries: &[Entry],
) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PG_AUDIT_LOCK)
            .execute(&mut **tx)
            .await?;
    }
    let last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    let (mut seq, mut prev) = match last {
        Some(r) => (r.try_get::<i64, _>("seq")?, r.try_get::<String, _>("hash")?),
        None => (0, GENESIS.to_string()),
    };
    for e in entries {
        seq += 1;
        let mut r = AuditRecord {
            seq,
            at: now,
            kind: e.kind.to_string(),
            actor: e.actor.clone(),
            user: e.user.clone(),
            host: e.host.clone(),
            request: e.request.clone(),
            grant: e.grant.clone(),
            detail: serde_json::to_string(&e.detail).unwrap_or_else(|_| "{}".into()),
            prev: prev.clone(),
            hash: String::new(),
        };
        r.hash = r.compute_hash();
        sqlx::query(&format!(
            "INSERT INTO audit_log ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(r.seq)
        .bind(r.at)
        .bind(&r.kind)
        .bind(&r.actor)
        .bind(r.user.clone())
        .bind(r.host.clone())
        .bind(r.request.clone())
        .bind(r.grant.clone())
        .bind(&r.detail)
        .bind(&r.prev)
        .bind(&r.hash)
        .execute(&mut **tx)
        .await?;
        prev = r.hash;
    }
    Ok(())
}

/// Search filters; all optional, combined with AND.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub user: Option<String>,
    pub host: Option<String>,
    /// The grant's records and those of the request it came from.
    pub grant: Option<String>,
    pub request: Option<String>,
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    /// Unix seconds, exclusive.
    pub until: Option<i64>,
    /// Only records after this seq (paging).
    pub after: Option<i64>,
    pub limit: Option<i64>,
}

pub const MAX_PAGE: i64 = 1000;

impl Db {
    /// Records matching `f`, oldest first, at most `f.limit` (≤ 1000).
    pub async fn audit_search(&self, f: &Filter) -> Result<Vec<AuditRecord>, DbError> {
        let mut clauses: Vec<String> = Vec::new();
        let mut texts: Vec<String> = Vec::new();
        let mut ints: Vec<i64> = Vec::new();
        // Placeholders are numbered texts first, then integers.
        let mut text_clause = |c: &str, v: &Option<String>| {
            if let Some(v) = v {
                texts.push(v.clone());
                Some(c.replace('?', &format!("${}", texts.len())))
            } else {
                None
            }
        };
        let mut pending: Vec<String> = Vec::new();
        pending.extend(text_clause("user_name = ?", &f.user));
        pending.extend(text_clause("host = ?", &f.host));
        pending.extend(text_clause(
            "(grant_id = ? OR request_id = (SELECT request_id FROM grants WHERE id = ?))",
            &f.grant,
        ));
        pending.extend(text_clause("request_id = ?", &f.request));
        clauses.extend(pending);
        let n = texts.len();
        for (col, v) in [
            ("at >= ?", f.since),
            ("at < ?", f.until),
            ("seq > ?", f.after),
        ] {
            if let Some(v) = v {
                ints.push(v);
                clauses.push(col.replace('?', &format!("${}", n + ints.len())));
            }
        }
        let limit = f.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!("SELECT {COLUMNS} FROM audit_log {filter} ORDER BY seq LIMIT {limit}");
        let mut q = sqlx::query(&sql);
        for t in texts {
            q = q.bind(t);
        }
        for i in ints {
            q = q.bind(i);
        }
        let rows = q.fetch_all(self.pool()).await?;
        Ok(rows.iter().map(record).collect::<Result<_, _>>()?)
    }

    /// Walk the whole chain in `seq` order, a page at a time.
    pub async fn audit_verify(&self) -> Result<Result<ChainOk, ChainBreak>, DbError> {
        let mut check = ChainCheck::new();
        let mut after = i64::MIN;
        loop {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT {MAX_PAGE}"
            ))
            .bind(after)
            .fetch_all(self.pool())
            .await?;
            for r in &rows {
                let r = record(r)?;
                if let Err(b) = check.push(&r) {
                    return Ok(Err(b));
                }
                after = r.seq;
            }
            if (rows.len() as i64) < MAX_PAGE {
                return Ok(Ok(check.finish()));
            }
        }
    }

    /// Record that `key_id` signs from now on, unless the last such record says so
    /// already (called at start-up: a changed `active_key` is a key change).
    pub async fn audit_active_key(
        &self,
        key_id: &str,
        public_key: &str,
        now: i64,
    ) -> Result<bool, DbError> {
        let _w = self.write_guard().await;
        let mut tx = self.pool().begin().await?;
        let last: Option<String> = sqlx::query(
            "SELECT detail FROM audit_log WHERE kind = 'key.activated' ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get("detail"))
        .transpose()?;
        let same = last
            .and_then(|d| serde_json::from_str::<Value>(&d).ok())
            .is_some_and(|d| d["key_id"] == key_id && d["public_key"] == public_key);
        if same {
            return Ok(false);
        }
        let e = Entry::new("key.activated", "jitsudod").detail(serde_json::json!({
            "key_id": key_id,
            "public_key": public_key,
        }));
        append(&mut tx, self.backend, now, &[e]).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Number of audit records (metrics and tests).
    pub async fn audit_count(&self) -> Result<i64, DbError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM audit_log")
            .fetch_one(self.pool())
            .await?
            .try_get("n")?)
    }
}

// ---- HTTP -------------------------------------------------------------------------------

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;

use jitsudo::client::wire;
use jitsudo::store::journal::Record as HostRecord;

use crate::api::{approver, bad, ApiResult, Shared};

/// `GET /v1/audit`: any approver may search (auditors get an approver token that no
/// policy rule names).
pub async fn search_handler(
    State(s): State<Shared>,
    headers: HeaderMap,
    q: Result<Query<Filter>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<AuditRecord>>> {
    approver(&s, &headers).await?;
    let Query(f) = q.map_err(|e| bad(format!("bad query: {e}")))?;
    for v in [&f.user, &f.host, &f.grant, &f.request]
        .into_iter()
        .flatten()
    {
        if v.is_empty() || v.len() > 256 {
            return Err(bad("filter values must be 1-256 characters"));
        }
    }
    Ok(Json(s.db.audit_search(&f).await?))
}

/// `GET /v1/audit/verify`: the service's own walk of the whole chain.
pub async fn verify_handler(State(s): State<Shared>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    approver(&s, &headers).await?;
    Ok(Json(match s.db.audit_verify().await? {
        Ok(ok) => serde_json::json!({
            "ok": true, "records": ok.records, "head": ok.head, "last_seq": ok.last_seq,
        }),
        Err(b) => serde_json::json!({
            "ok": false, "seq": b.seq, "problem": b.problem, "error": b.to_string(),
        }),
    }))
}

/// `POST /v1/host/journal`: a host uploads records of its local journal (signed with
/// its host key, like every host call). Each (host, seq) is stored once; the answer says
/// how far this host's chain is stored, and the host resumes from there.
pub async fn host_journal_handler(
    State(s): State<Shared>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<wire::JournalAck>> {
    let env = crate::api::open_host_envelope(&s, body, wire::PATH_JOURNAL).await?;
    let upload: wire::JournalUpload = serde_json::from_value(env.body)
        .map_err(|e| bad(format!("invalid journal upload: {e}")))?;
    let mut records = Vec::with_capacity(upload.records.len());
    for (i, line) in upload.records.iter().enumerate() {
        let r: HostRecord = serde_json::from_str(line)
            .map_err(|e| bad(format!("journal record {} is not a record: {e}", i + 1)))?;
        if r.entry.host != env.host {
            return Err(bad(format!(
                "journal record {} is for host {:?}, not {:?}",
                r.seq, r.entry.host, env.host
            )));
        }
        if !r.hash_is_valid() {
            return Err(bad(format!(
                "journal record {} does not match its hash",
                r.seq
            )));
        }
        records.push((r, line.clone()));
    }
    let through =
        s.db.store_host_journal(&env.host, &records, now_secs())
            .await?;
    Ok(Json(wire::JournalAck {
        stored_through: through,
    }))
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Db {
    /// Store uploaded host journal records in order. Records already stored are skipped
    /// (an upload repeated after a crash); a record that does not follow the stored
    /// chain, or that differs from the stored one with its seq, is a conflict. Each new
    /// record is also appended to the audit chain as `host.record`, in the same
    /// transaction. Returns the highest seq stored for this host.
    pub async fn store_host_journal(
        &self,
        host: &str,
        records: &[(HostRecord, String)],
        now: i64,
    ) -> Result<u64, DbError> {
        let _w = self.write_guard().await;
        let mut tx = self.pool().begin().await?;
        let last = sqlx::query("SELECT host_seq, hash FROM host_journal WHERE host = $1 ORDER BY host_seq DESC LIMIT 1")
            .bind(host)
            .fetch_optional(&mut *tx)
            .await?;
        let (mut last_seq, mut last_hash) = match last {
            Some(r) => (
                r.try_get::<i64, _>("host_seq")? as u64,
                Some(r.try_get::<String, _>("hash")?),
            ),
            None => (0, None),
        };
        let mut entries = Vec::new();
        for (r, line) in records {
            if r.seq <= last_seq {
                let stored =
                    sqlx::query("SELECT hash FROM host_journal WHERE host = $1 AND host_seq = $2")
                        .bind(host)
                        .bind(r.seq as i64)
                        .fetch_optional(&mut *tx)
                        .await?;
                match stored {
                    Some(row) if row.try_get::<String, _>("hash")? == r.hash => continue,
                    // Records before the first one ever uploaded (trimmed earlier) are
                    // not ours to judge.
                    None => continue,
                    Some(_) => {
                        return Err(DbError::Conflict(format!(
                            "journal record {} of host {host} differs from the one stored; the host's journal was rewritten",
                            r.seq
                        )))
                    }
                }
            }
            if let Some(prev) = &last_hash {
                if r.seq != last_seq + 1 || &r.prev != prev {
                    return Err(DbError::Conflict(format!(
                        "journal record {} of host {host} does not follow stored record {last_seq}",
                        r.seq
                    )));
                }
            }
            sqlx::query("INSERT INTO host_journal (host, host_seq, record, hash, received_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(host)
                .bind(r.seq as i64)
                .bind(line)
                .bind(&r.hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let e = &r.entry;
            let mut entry = Entry::new("host.record", host)
                .user(&e.user)
                .host(host)
                .detail(serde_json::json!({
                    "seq": r.seq,
                    "hash": r.hash,
                    "time": e.time,
                    "outcome": e.outcome,
                    "reason": e.reason,
                    "tty": e.tty,
                    "run_as": e.run_as,
                    "command": e.command,
                }));
            if let Some(g) = &e.grant {
                entry = entry.grant(g);
            }
            entries.push(entry);
            last_seq = r.seq;
            last_hash = Some(r.hash.clone());
        }
        append(&mut tx, self.backend, now, &entries).await?;
        tx.commit().await?;
        Ok(last_seq)
    }
}
