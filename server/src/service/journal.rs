//! Host journal uploads: what a host's line must be before the trail takes it, and how
//! an upload continues the host's stored chain.
#![forbid(unsafe_code)]

use jitsudo_core::store::journal::{Record as HostRecord, Reduced};
use serde_json::Value;

use crate::service::error::{Error, Result};
use crate::service::{AuditFilter, Service};
use crate::store::audit::Entry;
use crate::store::Db;

/// An uploaded host journal line, checked and reduced to what the trail records.
pub struct Uploaded {
    pub seq: u64,
    pub prev: String,
    pub hash: String,
    pub host: String,
    pub user: String,
    pub grant: Option<String>,
    pub detail: Value,
}

/// Read an uploaded journal line: a full record (its hash checked against its content), or
/// the reduced form a host sends for a record too large to upload (see
/// `jitsudo_core::store::journal::Reduced`), which is linked by `seq` and `prev` only and
/// stored marked as reduced, with the digest of the host's full line.
pub fn parse(line: &str) -> std::result::Result<Uploaded, String> {
    let full = match serde_json::from_str::<HostRecord>(line) {
        Ok(r) => r,
        Err(e) => {
            // A reduced record has no content whose hash could be checked.
            return match serde_json::from_str::<Reduced>(line) {
                Ok(r) if r.reduced => Ok(Uploaded {
                    seq: r.seq,
                    detail: serde_json::json!({
                        "seq": r.seq,
                        "hash": r.hash,
                        "time": r.time,
                        "outcome": r.outcome,
                        "reduced": {"line_sha256": r.line_sha256, "line_bytes": r.line_bytes},
                    }),
                    prev: r.prev,
                    hash: r.hash,
                    host: r.host,
                    user: r.user,
                    grant: None,
                }),
                _ => Err(format!("not a record ({e})")),
            };
        }
    };
    if !full.hash_is_valid() {
        return Err(format!("record {} does not match its hash", full.seq));
    }
    let e = &full.entry;
    let mut detail = serde_json::json!({
        "seq": full.seq,
        "hash": full.hash,
        "time": e.time,
        "outcome": e.outcome,
        "reason": e.reason,
        "tty": e.tty,
        "run_as": e.run_as,
        "command": e.command,
    });
    if let Some(argv) = &e.argv {
        detail["argv"] = serde_json::json!(argv);
    }
    Ok(Uploaded {
        seq: full.seq,
        prev: full.prev.clone(),
        hash: full.hash.clone(),
        host: e.host.clone(),
        user: e.user.clone(),
        grant: e.grant.clone(),
        detail,
    })
}

/// Store uploaded host journal records in order, in one transaction. Records already
/// stored are skipped (an upload repeated after a crash); a record that does not follow
/// the stored chain, or that differs from the stored one with its seq, is a conflict.
/// Each new record is also appended to the audit chain as `host.record`, in the same
/// transaction. Returns the highest seq stored for this host.
pub async fn store(
    store: &Db,
    host: &str,
    records: &[(Uploaded, String)],
    now: i64,
) -> Result<u64> {
    let mut tx = store.write().await?;
    let result = async {
        let (mut last_seq, mut last_hash) = match tx.last_journal_record(host).await? {
            Some((seq, hash)) => (seq, Some(hash)),
            None => (0, None),
        };
        let mut entries = Vec::new();
        for (r, line) in records {
            if r.seq <= last_seq {
                match tx.journal_hash(host, r.seq).await? {
                    Some(hash) if hash == r.hash => continue,
                    // Records before the first one ever uploaded (trimmed earlier) are
                    // not ours to judge.
                    None => continue,
                    Some(_) => {
                        return Err(Error::Conflict(format!(
                            "journal record {} of host {host} differs from the one stored; the host's journal was rewritten",
                            r.seq
                        )))
                    }
                }
            }
            if let Some(prev) = &last_hash {
                if r.seq != last_seq + 1 || &r.prev != prev {
                    return Err(Error::Conflict(format!(
                        "journal record {} of host {host} does not follow stored record {last_seq}",
                        r.seq
                    )));
                }
            }
            tx.insert_journal_record(host, r.seq, line, &r.hash, now)
                .await?;
            let mut entry = Entry::new("host.record", host)
                .user(&r.user)
                .host(host)
                .detail(r.detail.clone());
            if let Some(g) = &r.grant {
                entry = entry.grant(g);
            }
            entries.push(entry);
            last_seq = r.seq;
            last_hash = Some(r.hash.clone());
        }
        tx.audit(now, &entries).await?;
        Ok(last_seq)
    }
    .await;
    tx.finish(result).await
}

/// One run under a grant, as its host's uploaded journal records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub host: String,
    pub user: String,
    /// The host's time of the record, Unix seconds.
    pub time: i64,
    /// allowed, denied, error or event
    pub outcome: String,
    pub reason: String,
    pub command: Vec<String>,
}

impl Service {
    /// The records hosts uploaded of runs under grant `id` (what ran, was refused or
    /// ended, recordings sealed or cut), oldest first, at most `limit`.
    pub async fn grant_runs(&self, id: &str, limit: i64) -> Result<Vec<Run>> {
        let records = self
            .store
            .audit_search(&AuditFilter {
                grant: Some(id.to_string()),
                limit: Some(crate::store::audit::MAX_PAGE),
                ..AuditFilter::default()
            })
            .await?;
        let mut runs: Vec<Run> = records
            .into_iter()
            .filter(|r| r.kind == "host.record" && r.grant.as_deref() == Some(id))
            .filter_map(|r| {
                let d: Value = serde_json::from_str(&r.detail).ok()?;
                Some(Run {
                    host: r.host.unwrap_or_default(),
                    user: r.user.unwrap_or_default(),
                    time: d["time"].as_i64().unwrap_or(r.at),
                    outcome: d["outcome"].as_str().unwrap_or("").to_string(),
                    reason: d["reason"].as_str().unwrap_or("").to_string(),
                    command: d["command"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            })
            .collect();
        if runs.len() as i64 > limit {
            runs.drain(..runs.len() - limit as usize);
        }
        Ok(runs)
    }
}
