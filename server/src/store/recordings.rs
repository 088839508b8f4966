//! Session recordings uploaded by hosts: the index (`recordings`, one row per host and
//! id) and the bytes (`recording_parts`, each part of one file at its offset), in the
//! database itself, so that replicas on one database share them, one backup holds
//! them, and a recording's index row and its bytes commit together. SQL only: what may
//! be stored, and when a recording is complete, is the service's (`service::recording`).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use jitsudo_core::wire::{RecordingMeta, RecordingView};
use sqlx::any::AnyRow;
use sqlx::{Executor, Row};

use super::{Backend, Db, DbError, WriteTx};

type R<T> = Result<T, DbError>;

pub const SQLITE_SCHEMA: &[&str] = &[
    "CREATE TABLE recordings (host TEXT NOT NULL, id TEXT NOT NULL, grant_id TEXT NOT NULL DEFAULT '', user_name TEXT NOT NULL DEFAULT '', run_as TEXT NOT NULL DEFAULT '', command TEXT NOT NULL DEFAULT '', started INTEGER NOT NULL DEFAULT 0, chunks INTEGER NOT NULL DEFAULT 0, sha256 TEXT NOT NULL DEFAULT '', bytes INTEGER NOT NULL DEFAULT 0, complete INTEGER NOT NULL DEFAULT 0, received_at INTEGER NOT NULL, PRIMARY KEY (host, id))",
    "CREATE INDEX recordings_by_started ON recordings (complete, started)",
    "CREATE INDEX recordings_by_grant ON recordings (grant_id)",
    "CREATE TABLE recording_parts (host TEXT NOT NULL, id TEXT NOT NULL, file TEXT NOT NULL, start_at INTEGER NOT NULL, len INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (host, id, file, start_at), FOREIGN KEY (host, id) REFERENCES recordings (host, id))",
];

pub const POSTGRES_SCHEMA: &[&str] = &[
    "CREATE TABLE recordings (host TEXT NOT NULL, id TEXT NOT NULL, grant_id TEXT NOT NULL DEFAULT '', user_name TEXT NOT NULL DEFAULT '', run_as TEXT NOT NULL DEFAULT '', command TEXT NOT NULL DEFAULT '', started BIGINT NOT NULL DEFAULT 0, chunks BIGINT NOT NULL DEFAULT 0, sha256 TEXT NOT NULL DEFAULT '', bytes BIGINT NOT NULL DEFAULT 0, complete BIGINT NOT NULL DEFAULT 0, received_at BIGINT NOT NULL, PRIMARY KEY (host, id))",
    "CREATE INDEX recordings_by_started ON recordings (complete, started)",
    "CREATE INDEX recordings_by_grant ON recordings (grant_id)",
    "CREATE TABLE recording_parts (host TEXT NOT NULL, id TEXT NOT NULL, file TEXT NOT NULL, start_at BIGINT NOT NULL, len BIGINT NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (host, id, file, start_at), FOREIGN KEY (host, id) REFERENCES recordings (host, id))",
];

/// Schema 7: each stored recording's state, `sealed` (its run sealed it) or `cut` (its
/// supervisor was killed; stored up to the last chunk that verified on its host), and
/// the index the retention sweep reads.
pub const SQLITE_STATE: &[&str] = &[
    "ALTER TABLE recordings ADD COLUMN state TEXT NOT NULL DEFAULT 'sealed'",
    "CREATE INDEX recordings_by_received ON recordings (complete, received_at)",
];
pub const POSTGRES_STATE: &[&str] = &[
    "ALTER TABLE recordings ADD COLUMN state TEXT NOT NULL DEFAULT 'sealed'",
    "CREATE INDEX recordings_by_received ON recordings (complete, received_at)",
];

/// A stored recording the retention sweep deletes.
#[derive(Debug, PartialEq, Eq)]
pub struct Expired {
    pub host: String,
    pub id: String,
    pub user: String,
    pub grant: String,
    pub started: i64,
    pub received_at: i64,
    pub bytes: u64,
    pub sha256: String,
    pub state: String,
}

/// A recording's row as an upload sees it.
#[derive(Debug, PartialEq, Eq)]
pub struct UploadState {
    pub complete: bool,
    /// The sealed hash, once complete.
    pub sha256: String,
    /// Bytes held, all files together.
    pub bytes: u64,
    /// Bytes held of each file.
    pub held: BTreeMap<String, u64>,
}

/// Which recordings an auditor asks for (the query of `GET /v1/recordings`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Search {
    pub user: Option<String>,
    pub host: Option<String>,
    pub grant: Option<String>,
    /// `sealed` or `cut`.
    pub state: Option<String>,
    /// Started at or after, Unix seconds.
    pub since: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

const VIEW_COLUMNS: &str = "host, id, grant_id, user_name, run_as, command, started, chunks, sha256, bytes, received_at, state";

fn view(r: &AnyRow) -> Result<RecordingView, sqlx::Error> {
    Ok(RecordingView {
        host: r.try_get("host")?,
        id: r.try_get("id")?,
        grant: r.try_get("grant_id")?,
        user: r.try_get("user_name")?,
        run_as: r.try_get("run_as")?,
        command: r.try_get("command")?,
        started: r.try_get("started")?,
        chunks: r.try_get::<i64, _>("chunks")? as u64,
        sha256: r.try_get("sha256")?,
        bytes: r.try_get::<i64, _>("bytes")? as u64,
        received_at: r.try_get("received_at")?,
        state: r.try_get("state")?,
    })
}

/// Bytes held of each file of a recording: each file's parts are contiguous from 0
/// (the service stores a part only at its file's end), so the end of its last part.
async fn held<'e, E: Executor<'e, Database = sqlx::Any>>(
    e: E,
    host: &str,
    id: &str,
) -> R<BTreeMap<String, u64>> {
    let rows = sqlx::query(
        "SELECT file, MAX(start_at + len) AS held FROM recording_parts WHERE host = $1 AND id = $2 GROUP BY file",
    )
    .bind(host)
    .bind(id)
    .fetch_all(e)
    .await?;
    let mut out = BTreeMap::new();
    for r in rows {
        out.insert(
            r.try_get::<String, _>("file")?,
            r.try_get::<i64, _>("held")? as u64,
        );
    }
    Ok(out)
}

fn state(row: &AnyRow, held: BTreeMap<String, u64>) -> R<UploadState> {
    Ok(UploadState {
        complete: row.try_get::<i64, _>("complete")? != 0,
        sha256: row.try_get("sha256")?,
        bytes: held.values().sum(),
        held,
    })
}

impl WriteTx {
    /// The recording's row, created (empty, incomplete) if it is new, and locked for
    /// the rest of the transaction, so that parts of one recording are stored one
    /// after the other.
    pub async fn recording_for_upload(&mut self, host: &str, id: &str, now: i64) -> R<UploadState> {
        sqlx::query("INSERT INTO recordings (host, id, received_at) VALUES ($1, $2, $3) ON CONFLICT (host, id) DO NOTHING")
            .bind(host)
            .bind(id)
            .bind(now)
            .execute(&mut ***self)
            .await?;
        let lock = if self.backend == Backend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let row = sqlx::query(&format!(
            "SELECT complete, sha256 FROM recordings WHERE host = $1 AND id = $2{lock}"
        ))
        .bind(host)
        .bind(id)
        .fetch_one(&mut ***self)
        .await?;
        let held = held(&mut ***self, host, id).await?;
        state(&row, held)
    }

    pub async fn insert_recording_part(
        &mut self,
        host: &str,
        id: &str,
        file: &str,
        start: u64,
        data: &[u8],
    ) -> R<()> {
        sqlx::query("INSERT INTO recording_parts (host, id, file, start_at, len, data) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(host)
            .bind(id)
            .bind(file)
            .bind(start as i64)
            .bind(data.len() as i64)
            .bind(data.to_vec())
            .execute(&mut ***self)
            .await?;
        Ok(())
    }

    /// Every file of the recording, its parts joined in order.
    pub async fn recording_files(&mut self, host: &str, id: &str) -> R<BTreeMap<String, Vec<u8>>> {
        files(&mut ***self, host, id).await
    }

    /// Index the recording as stored complete, with what its host said of it.
    pub async fn complete_recording(
        &mut self,
        host: &str,
        meta: &RecordingMeta,
        bytes: u64,
        now: i64,
    ) -> R<()> {
        let state = if meta.cut {
            jitsudo_core::wire::RECORDING_CUT
        } else {
            jitsudo_core::wire::RECORDING_SEALED
        };
        sqlx::query("UPDATE recordings SET grant_id = $1, user_name = $2, run_as = $3, command = $4, started = $5, chunks = $6, sha256 = $7, bytes = $8, complete = 1, received_at = $9, state = $12 WHERE host = $10 AND id = $11")
            .bind(&meta.grant)
            .bind(&meta.user)
            .bind(&meta.run_as)
            .bind(&meta.command)
            .bind(meta.started)
            .bind(meta.chunks as i64)
            .bind(&meta.sha256)
            .bind(bytes as i64)
            .bind(now)
            .bind(host)
            .bind(&meta.id)
            .bind(state)
            .execute(&mut ***self)
            .await?;
        Ok(())
    }

    /// At most `limit` complete recordings received before `before`, oldest first,
    /// locked for the rest of the transaction (the retention sweep deletes them).
    pub async fn expired_recordings(&mut self, before: i64, limit: i64) -> R<Vec<Expired>> {
        let lock = if self.backend == Backend::Postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let rows = sqlx::query(&format!(
            "SELECT host, id, user_name, grant_id, started, received_at, bytes, sha256, state FROM recordings WHERE complete = 1 AND received_at < $1 ORDER BY received_at, host, id LIMIT {}{lock}",
            limit.clamp(1, 10_000)
        ))
        .bind(before)
        .fetch_all(&mut ***self)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Expired {
                    host: r.try_get("host")?,
                    id: r.try_get("id")?,
                    user: r.try_get("user_name")?,
                    grant: r.try_get("grant_id")?,
                    started: r.try_get("started")?,
                    received_at: r.try_get("received_at")?,
                    bytes: r.try_get::<i64, _>("bytes")? as u64,
                    sha256: r.try_get("sha256")?,
                    state: r.try_get("state")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(DbError::from)
    }
}

async fn files<'e, E: Executor<'e, Database = sqlx::Any>>(
    e: E,
    host: &str,
    id: &str,
) -> R<BTreeMap<String, Vec<u8>>> {
    let rows = sqlx::query(
        "SELECT file, data FROM recording_parts WHERE host = $1 AND id = $2 ORDER BY file, start_at",
    )
    .bind(host)
    .bind(id)
    .fetch_all(e)
    .await?;
    let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for r in rows {
        let data: Vec<u8> = r.try_get("data")?;
        out.entry(r.try_get("file")?).or_default().extend(data);
    }
    Ok(out)
}

impl Db {
    /// The recording's upload state, if the service has heard of it.
    pub async fn recording_state(&self, host: &str, id: &str) -> R<Option<UploadState>> {
        let row =
            sqlx::query("SELECT complete, sha256 FROM recordings WHERE host = $1 AND id = $2")
                .bind(host)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let held = held(&self.pool, host, id).await?;
                Ok(Some(state(&row, held)?))
            }
        }
    }

    /// Complete recordings matching `s`, newest first.
    pub async fn search_recordings(&self, s: &Search) -> R<Vec<RecordingView>> {
        let mut sql = format!("SELECT {VIEW_COLUMNS} FROM recordings WHERE complete = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if s.user.is_some() {
            sql.push_str(&format!(" AND user_name = ${}", next()));
        }
        if s.host.is_some() {
            sql.push_str(&format!(" AND host = ${}", next()));
        }
        if s.grant.is_some() {
            sql.push_str(&format!(" AND grant_id = ${}", next()));
        }
        if s.state.is_some() {
            sql.push_str(&format!(" AND state = ${}", next()));
        }
        if s.since.is_some() {
            sql.push_str(&format!(" AND started >= ${}", next()));
        }
        sql.push_str(&format!(
            " ORDER BY started DESC, host, id LIMIT {}",
            s.limit.unwrap_or(100).clamp(1, 1000)
        ));
        let mut q = sqlx::query(&sql);
        for v in [&s.user, &s.host, &s.grant, &s.state].into_iter().flatten() {
            q = q.bind(v.clone());
        }
        if let Some(t) = s.since {
            q = q.bind(t);
        }
        let rows = q.fetch_all(&self.pool).await?;
        Ok(rows.iter().map(view).collect::<Result<_, _>>()?)
    }

    /// A complete recording's index entry, without its bytes.
    pub async fn recording_view(&self, host: &str, id: &str) -> R<Option<RecordingView>> {
        let row = sqlx::query(&format!(
            "SELECT {VIEW_COLUMNS} FROM recordings WHERE host = $1 AND id = $2 AND complete = 1"
        ))
        .bind(host)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(view).transpose()?)
    }

    /// A complete recording and its files.
    pub async fn recording(
        &self,
        host: &str,
        id: &str,
    ) -> R<Option<(RecordingView, BTreeMap<String, Vec<u8>>)>> {
        let row = sqlx::query(&format!(
            "SELECT {VIEW_COLUMNS} FROM recordings WHERE host = $1 AND id = $2 AND complete = 1"
        ))
        .bind(host)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let v = view(&row)?;
        Ok(Some((v, files(&self.pool, host, id).await?)))
    }
}

impl WriteTx {
    /// Drop a recording that was refused, its bytes and its row, so that the host can
    /// send it again from the start.
    pub async fn delete_recording(&mut self, host: &str, id: &str) -> R<()> {
        for table in ["recording_parts", "recordings"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE host = $1 AND id = $2"))
                .bind(host)
                .bind(id)
                .execute(&mut ***self)
                .await?;
        }
        Ok(())
    }
}
