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

use super::net_helper::{in_child, ChildMsg, Task};
use super::{hostkey, wire};
use crate::context::Context;
use crate::grant;
use crate::store::journal::{self, Record, Reduced};
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

/// The line to upload for a journal line: itself, or its `Reduced` form when it is
/// longer than any record this version writes (`MAX_RECORD_BYTES`, which always fits an
/// envelope), so that no single record can stop the upload.
pub fn upload_form(line: String) -> String {
    if line.len() < journal::MAX_RECORD_BYTES {
        return line;
    }
    match serde_json::from_str::<Record>(&line) {
        Ok(record) => serde_json::to_string(&Reduced::of(&record, &line)).unwrap_or(line),
        // pending_records only passes lines that parse.
        Err(_) => line,
    }
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

/// Sign each batch; a batch whose envelope is over the service's limit (its records
/// needed much escaping) is halved until each fits. A single record always fits: it is
/// at most `MAX_RECORD_BYTES` by `upload_form`.
pub fn envelopes(
    batch: Vec<String>,
    sign: &dyn Fn(Vec<String>) -> Result<String, String>,
) -> Result<Vec<String>, String> {
    let envelope = sign(batch.clone())?;
    if envelope.len() <= wire::MAX_ENVELOPE_BYTES || batch.len() < 2 {
        return Ok(vec![envelope]);
    }
    let mut first = batch;
    let second = first.split_off(first.len() / 2);
    let mut out = envelopes(first, sign)?;
    out.extend(envelopes(second, sign)?);
    Ok(out)
}

/// Upload what the service does not have yet. Returns (records sent, stored through).
pub fn upload(ctx: &Context, urls: &[String]) -> Result<(usize, u64), String> {
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
    let pending = pending
        .into_iter()
        .map(|(seq, line)| (seq, upload_form(line)))
        .collect();
    let envelopes = {
        let key = hostkey::load(Path::new(hostkey::HOST_KEY_PATH))?;
        let sign = |records: Vec<String>| {
            wire::sign_envelope(
                &key,
                &ctx.config.host,
                wire::PATH_JOURNAL,
                grant::now(),
                &wire::JournalUpload { records },
            )
        };
        let mut all = Vec::new();
        for batch in batches(pending, wire::JOURNAL_BATCH_BYTES) {
            all.extend(envelopes(batch, &sign)?);
        }
        all
    };
    let nobody = system::user_by_name("nobody")
        .ok()
        .flatten()
        .ok_or_else(|| "no user 'nobody' to run the network helper as".to_string())?;
    let task = Task::Journal {
        services: urls.to_vec(),
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

    fn record_line(command: Vec<String>) -> String {
        let entry = journal::Entry {
            time: 1,
            host: "web-01".into(),
            user: "alice".into(),
            uid: 1001,
            outcome: "denied".into(),
            reason: "no grant".into(),
            tty: "pts/0".into(),
            pwd: "/".into(),
            run_as: Some("root".into()),
            grant: None,
            command,
            argv: None,
            recording: None,
        };
        let anchor = journal::Anchor {
            seq: 6,
            hash: "ab".repeat(32),
        };
        serde_json::to_string(&journal::next_record(&anchor, entry)).unwrap()
    }

    #[test]
    fn an_oversized_record_is_uploaded_reduced() {
        let small = record_line(vec!["/usr/bin/id".into()]);
        assert_eq!(upload_form(small.clone()), small);
        let big = record_line(vec!["/bin/echo".into(), "\"".repeat(800_000)]);
        let reduced: Reduced = serde_json::from_str(&upload_form(big.clone())).unwrap();
        let record: Record = serde_json::from_str(&big).unwrap();
        assert!(reduced.reduced);
        assert_eq!(
            (reduced.seq, &reduced.prev, &reduced.hash),
            (7, &record.prev, &record.hash)
        );
        assert_eq!(reduced.line_bytes, big.len() as u64);
        assert_eq!(reduced.line_sha256.len(), 64);
    }

    #[test]
    fn batches_are_halved_until_their_envelopes_fit() {
        // A fake signer whose envelope is the records' total length.
        let sign = |r: Vec<String>| Ok("e".repeat(r.iter().map(String::len).sum()));
        let records: Vec<String> = (0..8)
            .map(|_| "x".repeat(wire::MAX_ENVELOPE_BYTES / 3))
            .collect();
        let out = envelopes(records, &sign).unwrap();
        assert_eq!(out.len(), 4);
        assert!(out.iter().all(|e| e.len() <= wire::MAX_ENVELOPE_BYTES));
    }
}
