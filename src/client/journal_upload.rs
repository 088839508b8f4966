//! `jitsudo --sync`, second half: upload the host journal's new records to the service.
//!
//! The records after `journal.acked` are sent in batches, each signed with the host key;
//! the service stores each (host, seq) once and answers with how far it has stored the
//! chain. Only then is `journal.acked` moved forward. A sync killed at any point, or a
//! service that is down, leaves `journal.acked` behind, and the next sync sends those
//! records again; the service ignores the ones it already has. Nothing is lost and
//! nothing is stored twice.
#![forbid(unsafe_code)]

use std::path::Path;

use super::request::{in_child, ChildMsg, Task};
use super::{hostkey, wire};
use crate::grant;
use crate::pipeline::Context;
use crate::store::journal::Record;
use crate::system;

/// Records of the journal text with `seq` greater than `after`, as their JSON lines.
pub fn pending_records(text: &[u8], after: u64) -> Result<Vec<(u64, String)>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        if raw.is_empty() {
            continue;
        }
        let line =
            std::str::from_utf8(raw).map_err(|_| format!("journal line {} is not UTF-8", i + 1))?;
        let record: Record = serde_json::from_str(line)
            .map_err(|e| format!("journal line {} is not a record: {e}", i + 1))?;
        if record.seq > after {
            out.push((record.seq, line.to_string()));
        }
    }
    Ok(out)
}

/// Cut records into batches of at most `limit` bytes (a larger record goes alone).
pub fn batches(records: Vec<(u64, String)>, limit: usize) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut size = 0;
    for (_, line) in records {
        if out.is_empty() || size + line.len() > limit {
            out.push(Vec::new());
            size = 0;
        }
        size += line.len();
        if let Some(batch) = out.last_mut() {
            batch.push(line);
        }
    }
    out
}

/// Upload what the service does not have yet. Returns (records sent, stored through).
pub fn upload(ctx: &Context, url: &str) -> Result<(usize, u64), String> {
    let acked = ctx.store.journal_acked().map_err(|e| e.to_string())?;
    let (text, _anchor) = match ctx.store.read_journal() {
        Ok(j) => j,
        Err(e) => return Err(e.to_string()),
    };
    let pending = pending_records(&text, acked)?;
    if pending.is_empty() {
        return Ok((0, acked));
    }
    let count = pending.len();
    let envelopes = {
        let key = hostkey::load(Path::new(hostkey::HOST_KEY_PATH))?;
        batches(pending, wire::JOURNAL_BATCH_BYTES)
            .into_iter()
            .map(|records| {
                wire::sign_envelope(
                    &key,
                    &ctx.config.host,
                    wire::PATH_JOURNAL,
                    grant::now(),
                    &wire::JournalUpload { records },
                )
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let nobody = system::user_by_name("nobody")
        .ok()
        .flatten()
        .ok_or_else(|| "no user 'nobody' to run the network helper as".to_string())?;
    let task = Task::Journal {
        service: url.to_string(),
        envelopes,
    };
    let (msgs, _end) = in_child(nobody.uid, nobody.gid, &task)?;
    let mut stored = acked;
    let mut failure = None;
    for m in msgs {
        match m {
            ChildMsg::JournalStored { through } => stored = stored.max(through),
            ChildMsg::Failed { message } => failure = Some(message),
            _ => {}
        }
    }
    if stored > acked {
        ctx.store
            .save_journal_acked(stored)
            .map_err(|e| e.to_string())?;
    }
    match failure {
        Some(message) => Err(format!(
            "journal upload stopped after record {stored}: {message}"
        )),
        None => Ok((count, stored)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_the_limit() {
        let recs: Vec<(u64, String)> = (1..=5).map(|i| (i, "x".repeat(40))).collect();
        let b = batches(recs, 100);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 1]);
        let big = vec![(1, "y".repeat(500)), (2, "z".to_string())];
        assert_eq!(batches(big, 100).len(), 2);
        assert!(batches(vec![], 100).is_empty());
    }
}
