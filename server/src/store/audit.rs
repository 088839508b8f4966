//! The service's audit trail: every request, policy decision (with its rule), approval,
//! denial, grant issued, revocation, host key registered, approver added and signing
//! key activated is one row of `audit_log`, appended in the same transaction as the
//! change it records (a change without its record, or a record without its change,
//! cannot be committed).
//!
//! Rows are hash-chained (see `jitsudo_policy::audit` for the canonical form and the
//! check), in two steps so that writers never wait for each other on the chain:
//!
//! * A writing transaction only inserts its rows, as its last step, with `seq` drawn by
//!   the database (SQLite's rowid, a PostgreSQL sequence) and `prev_hash`/`hash` NULL:
//!   no read of the chain head, no exclusive lock. The change and its record still
//!   commit together or not at all.
//! * The sealer (`seal`, run by a background task every `SEAL_EVERY`, and at the start
//!   of every audit search or verify) links committed rows into the chain in `seq`
//!   order, in batches: each row's `prev_hash` is the previous sealed row's hash.
//!
//! Sealing never has to guess whether a missing `seq` belongs to a transaction still in
//! flight: on SQLite it holds the process's write lock (every writer holds it until its
//! commit, and a rolled-back insert frees its rowid for the next one); on PostgreSQL
//! writers take a transaction-scoped advisory lock in *shared* mode before inserting
//! (they do not block each other) and the sealer takes it in *exclusive* mode, so when
//! it runs every writer that drew a `seq` has committed or rolled back. A `seq` missing
//! then was burnt by a rollback and is never used; the chain links sealed rows, so the
//! skipped number is not a break, while a removed sealed row still is (the next row's
//! link names it). Unsealed rows are therefore always the newest ones: `audit verify`
//! reports them as pending, and searches return sealed rows only.
//!
//! Writers take the shared lock as the last step of their transaction, after any row
//! locks, and the sealer touches only committed rows, so neither can take part in a
//! lock cycle.
//!
//! `host_journal` is the slot for records uploaded from hosts' local journals: one row
//! per (host, host sequence number), so an upload repeated after a crash stores nothing
//! twice; each accepted record is also chained here as a `host.record` entry.
#![forbid(unsafe_code)]

use jitsudo_policy::audit::{AuditRecord, ChainBreak, ChainCheck, ChainOk, GENESIS};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::model::GrantRow;

use crate::store::tx::{self, Backend, DbError, WriteTx};

/// Schema migration 2 (SQLite). `seq` is the rowid: assigned at insert, in commit order
/// (one writer at a time). Only search's filters are indexed; grant and request ids are
/// absent from most rows, so those indexes are partial.
pub const SQLITE_SCHEMA: &[&str] = &[
    "CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL, user_name TEXT, host TEXT, request_id TEXT, grant_id TEXT, detail TEXT NOT NULL, prev_hash TEXT, hash TEXT)",
    "CREATE INDEX audit_by_user ON audit_log (user_name)",
    "CREATE INDEX audit_by_host ON audit_log (host)",
    "CREATE INDEX audit_by_grant ON audit_log (grant_id) WHERE grant_id IS NOT NULL",
    "CREATE INDEX audit_by_request ON audit_log (request_id) WHERE request_id IS NOT NULL",
    "CREATE INDEX audit_by_time ON audit_log (at)",
    "CREATE TABLE host_journal (host TEXT NOT NULL, host_seq INTEGER NOT NULL, record TEXT NOT NULL, hash TEXT NOT NULL, received_at INTEGER NOT NULL, audit_seq INTEGER, PRIMARY KEY (host, host_seq))",
];

/// Schema migration 2 (PostgreSQL). `seq` comes from a sequence when the row is
/// inserted; `prev_hash` and `hash` are set when it is sealed (columns no index covers,
/// so sealing can update rows in place).
pub const POSTGRES_SCHEMA: &[&str] = &[
    "CREATE TABLE audit_log (seq BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL, user_name TEXT, host TEXT, request_id TEXT, grant_id TEXT, detail TEXT NOT NULL, prev_hash TEXT, hash TEXT)",
    "CREATE INDEX audit_by_user ON audit_log (user_name, seq)",
    "CREATE INDEX audit_by_host ON audit_log (host, seq)",
    "CREATE INDEX audit_by_grant ON audit_log (grant_id) WHERE grant_id IS NOT NULL",
    "CREATE INDEX audit_by_request ON audit_log (request_id) WHERE request_id IS NOT NULL",
    "CREATE INDEX audit_by_time ON audit_log (at)",
    "CREATE TABLE host_journal (host TEXT NOT NULL, host_seq BIGINT NOT NULL, record TEXT NOT NULL, hash TEXT NOT NULL, received_at BIGINT NOT NULL, audit_seq BIGINT, PRIMARY KEY (host, host_seq))",
];

/// Writers hold it shared, the sealer exclusive, across PostgreSQL replicas (see the
/// module comment).
const PG_AUDIT_LOCK: i64 = 7_254_002;

/// How often the background task seals new rows.
pub const SEAL_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// Rows sealed per transaction (and per UPDATE statement).
const SEAL_BATCH: usize = 500;

/// What to record; `append` adds the time, the database the position, `seal` the hashes.
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

/// A row and whether it is sealed (unsealed rows get empty `prev` and `hash`).
fn record(r: &AnyRow) -> Result<(AuditRecord, bool), sqlx::Error> {
    let prev: Option<String> = r.try_get("prev_hash")?;
    let hash: Option<String> = r.try_get("hash")?;
    let sealed = hash.is_some();
    Ok((
        AuditRecord {
            seq: r.try_get("seq")?,
            at: r.try_get("at")?,
            kind: r.try_get("kind")?,
            actor: r.try_get("actor")?,
            user: r.try_get("user_name")?,
            host: r.try_get("host")?,
            request: r.try_get("request_id")?,
            grant: r.try_get("grant_id")?,
            detail: r.try_get("detail")?,
            prev: prev.unwrap_or_default(),
            hash: hash.unwrap_or_default(),
        },
        sealed,
    ))
}

/// Add entries to the trail inside the caller's transaction, unsealed (see the module
/// comment). Call it last in a transaction (after any row locks).
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
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
            .bind(PG_AUDIT_LOCK)
            .execute(&mut **tx)
            .await?;
    }
    // One statement for all rows; they get consecutive positions in this order.
    let mut sql = String::from(
        "INSERT INTO audit_log (at, kind, actor, user_name, host, request_id, grant_id, detail) VALUES ",
    );
    for i in 0..entries.len() {
        let b = i * 8;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5,
            b + 6,
            b + 7,
            b + 8
        ));
    }
    let mut q = sqlx::query(&sql);
    for e in entries {
        q = q
            .bind(now)
            .bind(e.kind)
            .bind(e.actor.clone())
            .bind(e.user.clone())
            .bind(e.host.clone())
            .bind(e.request.clone())
            .bind(e.grant.clone())
            .bind(serde_json::to_string(&e.detail).unwrap_or_else(|_| "{}".into()));
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// Link every committed unsealed row into the chain, oldest first. Returns how many
/// rows were sealed.
pub async fn seal(
    pool: &AnyPool,
    backend: Backend,
    write_lock: &std::sync::Arc<tokio::sync::Mutex<()>>,
) -> Result<u64, DbError> {
    let mut sealed = 0u64;
    loop {
        // Unsealed rows are the newest: nothing to do when the last row is sealed (the
        // common case for the background task, and no lock taken).
        let last: Option<Option<String>> =
            sqlx::query("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(pool)
                .await?
                .map(|r| r.try_get("hash"))
                .transpose()?;
        if !matches!(last, Some(None)) {
            return Ok(sealed);
        }
        let mut tx = tx::begin_write(pool, backend, write_lock).await?;
        let result = async {
            if backend == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(PG_AUDIT_LOCK)
                    .execute(&mut **tx)
                    .await?;
            }
            let head = sqlx::query(
                "SELECT seq, hash FROM audit_log WHERE hash IS NOT NULL ORDER BY seq DESC LIMIT 1",
            )
            .fetch_optional(&mut **tx)
            .await?;
            let (head_seq, mut prev) = match head {
                Some(r) => (r.try_get::<i64, _>("seq")?, r.try_get::<String, _>("hash")?),
                None => (i64::MIN, GENESIS.to_string()),
            };
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT {SEAL_BATCH}"
            ))
            .bind(head_seq)
            .fetch_all(&mut **tx)
            .await?;
            let mut links: Vec<(i64, String, String)> = Vec::with_capacity(rows.len());
            for row in &rows {
                let (mut r, is_sealed) = record(row)?;
                if is_sealed {
                    // Above the newest sealed row there are only unsealed ones.
                    continue;
                }
                r.prev = prev;
                r.hash = r.compute_hash();
                prev = r.hash.clone();
                links.push((r.seq, r.prev, r.hash));
            }
            if !links.is_empty() {
                let mut sql = String::from("WITH v (s, p, h) AS (VALUES ");
                for i in 0..links.len() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3));
                }
                sql.push_str(
                    ") UPDATE audit_log SET prev_hash = v.p, hash = v.h FROM v WHERE audit_log.seq = v.s AND audit_log.hash IS NULL",
                );
                let mut q = sqlx::query(&sql);
                for (s, p, h) in &links {
                    q = q.bind(*s).bind(p.clone()).bind(h.clone());
                }
                q.execute(&mut **tx).await?;
            }
            Ok::<_, DbError>((links.len(), rows.len()))
        }
        .await;
        let (linked, read) = tx.finish(result).await?;
        sealed += linked as u64;
        if read < SEAL_BATCH {
            return Ok(sealed);
        }
    }
}

/// An intact chain, and how many newer rows await sealing.
#[derive(Clone, Debug)]
pub struct Verified {
    pub chain: ChainOk,
    pub pending: u64,
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

/// Records matching `f`, oldest first, at most `f.limit` (≤ 1000).
pub async fn search(pool: &AnyPool, f: &Filter) -> Result<Vec<AuditRecord>, sqlx::Error> {
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
    clauses.push("hash IS NOT NULL".into());
    let filter = format!("WHERE {}", clauses.join(" AND "));
    let sql = format!("SELECT {COLUMNS} FROM audit_log {filter} ORDER BY seq LIMIT {limit}");
    let mut q = sqlx::query(&sql);
    for t in texts {
        q = q.bind(t);
    }
    for i in ints {
        q = q.bind(i);
    }
    let rows = q.fetch_all(pool).await?;
    rows.iter().map(|r| record(r).map(|(r, _)| r)).collect()
}

/// Walk the whole chain in `seq` order, a page at a time. The unsealed rows at the
/// end (committed since the last seal) are counted as pending, not checked; an
/// unsealed row before a sealed one has had its hash removed.
pub async fn verify(pool: &AnyPool) -> Result<Result<Verified, ChainBreak>, sqlx::Error> {
    let mut check = ChainCheck::new();
    let mut pending: Option<(i64, u64)> = None;
    let mut after = i64::MIN;
    loop {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT {MAX_PAGE}"
        ))
        .bind(after)
        .fetch_all(pool)
        .await?;
        for r in &rows {
            let (r, sealed) = record(r)?;
            after = r.seq;
            match (&mut pending, sealed) {
                (Some((_, n)), false) => *n += 1,
                (None, false) => pending = Some((r.seq, 1)),
                (Some((first, _)), true) => {
                    return Ok(Err(ChainBreak {
                        seq: *first,
                        problem: format!(
                            "was altered: its hash was removed, yet record {} after it is sealed",
                            r.seq
                        ),
                    }))
                }
                (None, true) => {
                    if let Err(b) = check.push(&r) {
                        return Ok(Err(b));
                    }
                }
            }
        }
        if (rows.len() as i64) < MAX_PAGE {
            return Ok(Ok(Verified {
                chain: check.finish(),
                pending: pending.map_or(0, |(_, n)| n),
            }));
        }
    }
}

/// The record of a grant being issued, by `by` (an approver or `policy:RULE`).
pub fn grant_issued(g: &GrantRow, by: &str) -> Entry {
    Entry::new("grant.issued", by)
        .user(&g.user)
        .host(&g.host)
        .request(&g.request_id)
        .grant(&g.id)
        .detail(serde_json::json!({ "key_id": g.key_id, "exp": g.exp }))
}

// ---- steps of write transactions that touch the trail's own tables -------------------

impl WriteTx {
    /// The detail of the newest `key.activated` record, if any.
    pub async fn last_key_activation(&mut self) -> Result<Option<Value>, DbError> {
        let last: Option<String> = sqlx::query(
            "SELECT detail FROM audit_log WHERE kind = 'key.activated' ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(&mut ***self)
        .await?
        .map(|r| r.try_get("detail"))
        .transpose()?;
        Ok(last.and_then(|d| serde_json::from_str(&d).ok()))
    }

    /// The highest stored host journal seq of `host`, and that record's hash.
    pub async fn last_journal_record(
        &mut self,
        host: &str,
    ) -> Result<Option<(u64, String)>, DbError> {
        let last = sqlx::query("SELECT host_seq, hash FROM host_journal WHERE host = $1 ORDER BY host_seq DESC LIMIT 1")
            .bind(host)
            .fetch_optional(&mut ***self)
            .await?;
        Ok(match last {
            Some(r) => Some((
                r.try_get::<i64, _>("host_seq")? as u64,
                r.try_get::<String, _>("hash")?,
            )),
            None => None,
        })
    }

    /// The hash of the stored journal record `seq` of `host`, if stored.
    pub async fn journal_hash(&mut self, host: &str, seq: u64) -> Result<Option<String>, DbError> {
        let stored = sqlx::query("SELECT hash FROM host_journal WHERE host = $1 AND host_seq = $2")
            .bind(host)
            .bind(seq as i64)
            .fetch_optional(&mut ***self)
            .await?;
        Ok(stored.map(|r| r.try_get("hash")).transpose()?)
    }

    /// Store one host journal line; `Conflict` if (host, seq) is stored already.
    pub async fn insert_journal_record(
        &mut self,
        host: &str,
        seq: u64,
        line: &str,
        hash: &str,
        now: i64,
    ) -> Result<(), DbError> {
        sqlx::query("INSERT INTO host_journal (host, host_seq, record, hash, received_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(host)
            .bind(seq as i64)
            .bind(line)
            .bind(hash)
            .bind(now)
            .execute(&mut ***self)
            .await?;
        Ok(())
    }
}
