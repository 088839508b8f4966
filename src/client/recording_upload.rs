//! `jitsudo --sync`, third part: ship finished session recordings to the service.
//!
//! A recording is finished when its `timing` file is read-only (sudo's rule). Each one
//! the service has not acknowledged is sent in signed parts of at most
//! `RECORDING_PART_BYTES` of one file at an offset, then a signed "finish" with its
//! metadata and seal (chunks and last hash of its chain, recomputed here). The service
//! keeps a part only at its file's current length and answers how much of each file it
//! holds, so a sync that is killed resumes where the service stopped; on finish it
//! verifies the chain over the bytes it stored and against the seal. Only then is the
//! recording written to `recordings.acked`, and only an acknowledged recording older
//! than `[record] keep` is deleted here. Nothing is lost, nothing stored twice.
#![forbid(unsafe_code)]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::net_helper::{in_child, ChildMsg, Task};
use super::{hostkey, wire};
use crate::context::{Context, Refused};
use crate::grant;
use crate::log::Outcome;
use crate::store::journal::{RecordingRef, RecordingSeal};
use crate::system;
use jitsudo_core::helper::RecordingPart;
use jitsudo_core::iolog::{self, chain, reader, status, RecordingId};

/// The most one recording may hold to be uploaded: its signed parts (about 1.8 times
/// its bytes) must fit the network helper's task.
const MAX_UPLOAD_BYTES: u64 = 128 << 20;

/// What a sync did with the recordings.
#[derive(Debug, Default)]
pub struct Summary {
    pub uploaded: usize,
    pub deleted: usize,
    /// One message per recording that could not be uploaded (the others still were).
    pub failures: Vec<String>,
}

/// Every recording under `base`, oldest id first, with whether it is finished (its
/// `timing` file is read-only, sudo's rule).
pub fn recordings(base: &Path) -> Result<Vec<(RecordingId, PathBuf, bool)>, String> {
    fn subdirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
        let mut out = Vec::new();
        let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Real directories only: a symlink is never followed out of the tree.
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if name.len() == 2 && is_dir {
                out.push((name, entry.path()));
            }
        }
        out.sort();
        Ok(out)
    }
    let mut out = Vec::new();
    for (a, da) in subdirs(base)? {
        for (b, db) in subdirs(&da)? {
            for (c, dc) in subdirs(&db)? {
                let Some(id) = RecordingId::parse(&format!("{a}/{b}/{c}")) else {
                    continue;
                };
                let finished = reader::finished(&dc).unwrap_or(false);
                out.push((id, dc, finished));
            }
        }
    }
    Ok(out)
}

/// What the journal says of a recording found cut: the last chunk that verified.
pub fn cut_line(id: &RecordingId, v: &chain::Verified) -> String {
    format!(
        "recording {id} cut: writer gone, last chunk {}, sha256 {}, {} byte(s) after it unchecked",
        v.chunks,
        chain::hex(&v.hash),
        v.unsealed_bytes
    )
}

/// Find the recordings that were never sealed and whose writer is gone, and record each
/// in the journal (and syslog) as cut at the last chunk its chain verifies; they are
/// then uploaded as cut. A recording whose writer still holds it is left alone. Returns
/// one message per recording that could not be marked (the others still were).
pub fn mark_cut(ctx: &Context) -> Result<Vec<String>, String> {
    let base = Path::new(iolog::IO_LOG_DIR);
    let mut failures = Vec::new();
    if fs::symlink_metadata(base).is_err() {
        return Ok(failures);
    }
    let base = iolog::open_base(base).map_err(|e| format!("recordings: {e}"))?;
    let mut cut = ctx.store.recordings_cut().map_err(|e| e.to_string())?;
    for (id, dir, finished) in recordings(&base)? {
        if finished || cut.iter().any(|(c, _, _)| c == id.as_str()) {
            continue;
        }
        // Held until the record is written: nothing can take the recording back.
        let _lock = match status::abandoned(&dir) {
            Ok(Some(lock)) => lock,
            Ok(None) => continue,
            // No chain: its writer never started (the chain is created before any
            // byte is recorded), so there is nothing to mark.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                failures.push(format!("recording {id}: {}: {e}", dir.display()));
                continue;
            }
        };
        // Another sync may have marked it while this one waited: read again under the
        // lock, so a cut is recorded once.
        cut = ctx.store.recordings_cut().map_err(|e| e.to_string())?;
        if cut.iter().any(|(c, _, _)| c == id.as_str()) {
            continue;
        }
        let verified = match chain::verify(&dir) {
            Ok(v) if v.id == id.as_str() => v,
            Ok(v) => {
                failures.push(format!(
                    "recording {id}: {} holds the chain of recording {}; not marked cut",
                    dir.display(),
                    v.id
                ));
                continue;
            }
            // An empty chain: the writer died before its first line, having recorded
            // nothing.
            Err(_) if fs::metadata(dir.join(chain::CHAIN_FILE)).is_ok_and(|m| m.len() == 0) => {
                continue
            }
            Err(e) => {
                failures.push(format!(
                    "recording {id} was cut and does not verify: {e}; not marked cut"
                ));
                continue;
            }
        };
        let hash = chain::hex(&verified.hash);
        let grant = Some(verified.grant.clone()).filter(|g| !g.is_empty());
        ctx.audit.set_recording(Some(RecordingRef {
            seal: Some(RecordingSeal {
                chunks: verified.chunks,
                sha256: hash.clone(),
            }),
            cut: true,
            ..RecordingRef::named(id.as_str())
        }));
        let record = ctx.record(Outcome::Event(cut_line(&id, &verified)), grant, Vec::new());
        let sent = ctx.audit.send(&record);
        ctx.audit.set_recording(None);
        match sent {
            // Syslog failed after the journal took the record: the journal holds it.
            Ok(()) | Err(crate::audit::AuditError::Syslog(_)) => {}
            Err(crate::audit::AuditError::Journal(e)) => {
                failures.push(format!(
                    "recording {id} was cut, but the journal could not record it: {e}"
                ));
                continue;
            }
        }
        cut.push((id.to_string(), verified.chunks, hash));
        ctx.store
            .save_recordings_cut(&cut)
            .map_err(|e| e.to_string())?;
    }
    Ok(failures)
}

/// Cut `data` (file `name`) into parts: (offset, bytes), each at most `limit` bytes.
pub fn parts(data: &[u8], limit: usize) -> Vec<(u64, &[u8])> {
    data.chunks(limit)
        .enumerate()
        .map(|(i, c)| ((i * limit) as u64, c))
        .collect()
}

/// Upload what the service does not hold, then delete what it holds past `keep`.
pub fn upload(ctx: &Context, urls: &[String]) -> Result<Summary, String> {
    let base = Path::new(iolog::IO_LOG_DIR);
    let mut summary = Summary::default();
    if fs::symlink_metadata(base).is_err() {
        return Ok(summary);
    }
    let base = iolog::open_base(base).map_err(|e| format!("recordings: {e}"))?;
    let mut acked = ctx.store.recordings_acked().map_err(|e| e.to_string())?;
    let acked_before = acked.clone();
    let mut cut = ctx.store.recordings_cut().map_err(|e| e.to_string())?;
    let cut_before = cut.clone();
    for (id, dir, finished) in recordings(&base)? {
        // A cut recording goes up at the chunk the journal recorded it cut at.
        let cut_at = cut
            .iter()
            .find(|(c, _, _)| c == id.as_str())
            .map(|(_, chunks, hash)| (*chunks, hash.clone()));
        if !finished && cut_at.is_none() {
            continue;
        }
        let verified = match (chain::verify(&dir), &cut_at) {
            (Ok(v), _) if v.id != id.as_str() => {
                summary.failures.push(format!(
                    "recording {id}: {} holds the chain of recording {}; not uploaded",
                    dir.display(),
                    v.id
                ));
                continue;
            }
            (Ok(v), None) if v.unsealed_bytes == 0 => v,
            (Ok(v), None) => {
                summary.failures.push(format!(
                    "recording {id}: {} byte(s) after its last seal; not uploaded",
                    v.unsealed_bytes
                ));
                continue;
            }
            (Ok(v), Some((chunks, hash)))
                if v.chunks == *chunks && chain::hex(&v.hash) == *hash =>
            {
                v
            }
            (Ok(v), Some((chunks, _))) => {
                summary.failures.push(format!(
                    "recording {id}: its chain ends at chunk {}, the journal recorded it cut at \
                     chunk {chunks}; it was altered since, not uploaded",
                    v.chunks
                ));
                continue;
            }
            (Err(e), _) => {
                summary
                    .failures
                    .push(format!("recording {id}: {e}; not uploaded"));
                continue;
            }
        };
        let hash = chain::hex(&verified.hash);
        let known = acked.iter().any(|(a, h)| a == id.as_str() && *h == hash);
        if !known {
            match upload_one(ctx, urls, &id, &dir, &verified, &hash, cut_at.is_some()) {
                Ok(()) => {
                    acked.retain(|(a, _)| a != id.as_str());
                    acked.push((id.to_string(), hash.clone()));
                    ctx.store
                        .save_recordings_acked(&acked)
                        .map_err(|e| e.to_string())?;
                    summary.uploaded += 1;
                }
                Err(e) => {
                    summary.failures.push(format!("recording {id}: {e}"));
                    continue;
                }
            }
        }
        if older_than(&dir, ctx.config.record.keep) {
            fs::remove_dir_all(&dir)
                .map_err(|e| format!("cannot delete recording {}: {e}", dir.display()))?;
            log_deleted(ctx, &id, &verified, &hash);
            summary.deleted += 1;
        }
    }
    // Forget what is gone from disk, so the files stay as small as the directory.
    let present =
        |id: &str| RecordingId::parse(id).is_some_and(|id| base.join(id.relative_path()).is_dir());
    acked.retain(|(id, _)| present(id));
    if acked != acked_before {
        ctx.store
            .save_recordings_acked(&acked)
            .map_err(|e| e.to_string())?;
    }
    cut.retain(|(id, _, _)| present(id));
    if cut != cut_before {
        ctx.store
            .save_recordings_cut(&cut)
            .map_err(|e| e.to_string())?;
    }
    Ok(summary)
}

/// A local copy deleted after upload: logged to the journal (which names the recording,
/// so `jitsudoctl journal verify` tells it from a removed one) and to syslog.
fn log_deleted(ctx: &Context, id: &RecordingId, verified: &chain::Verified, hash: &str) {
    ctx.audit.set_recording(Some(RecordingRef {
        seal: Some(RecordingSeal {
            chunks: verified.chunks,
            sha256: hash.to_string(),
        }),
        deleted: true,
        ..RecordingRef::named(id.as_str())
    }));
    let grant = Some(verified.grant.clone()).filter(|g| !g.is_empty());
    ctx.audit.send_best_effort(&ctx.record(
        Outcome::Event(format!(
            "recording {id} deleted: the service holds it, older than [record] keep ({}s)",
            ctx.config.record.keep.as_secs()
        )),
        grant,
        Vec::new(),
    ));
    ctx.audit.set_recording(None);
}

impl Summary {
    /// With `failures` from an earlier step (`mark_cut`) reported first.
    pub fn after(mut self, mut failures: Vec<String>) -> Summary {
        failures.append(&mut self.failures);
        self.failures = failures;
        self
    }
}

/// Print what the upload did; any recording that could not be uploaded fails the sync
/// (after the others were tried), so a timer's failure shows it.
pub fn report(ctx: &Context, result: Result<Summary, String>) -> Result<(), Refused> {
    let summary = result.map_err(|e| ctx.refuse("sync", e))?;
    if summary.uploaded > 0 {
        println!("uploaded {} recording(s)", summary.uploaded);
    }
    if summary.deleted > 0 {
        println!(
            "deleted {} acknowledged recording(s) older than [record] keep",
            summary.deleted
        );
    }
    if summary.failures.is_empty() {
        return Ok(());
    }
    Err(ctx.refuse("sync", summary.failures.join("; ")))
}

/// Whether the recording ended (its `timing` file was last written) `keep` ago or more.
fn older_than(dir: &Path, keep: Duration) -> bool {
    let Ok(meta) = fs::symlink_metadata(dir.join("timing")) else {
        return false;
    };
    grant::now().saturating_sub(meta.mtime()) >= keep.as_secs() as i64
}

#[allow(clippy::too_many_arguments)]
fn upload_one(
    ctx: &Context,
    urls: &[String],
    id: &RecordingId,
    dir: &Path,
    verified: &chain::Verified,
    hash: &str,
    cut: bool,
) -> Result<(), String> {
    let info = reader::info(dir)?;
    let s = |k: &str| info[k].as_str().unwrap_or("").to_string();
    let mut command = s("command");
    for a in info["runargv"]
        .as_array()
        .map(|a| {
            a.iter()
                .skip(1)
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
    {
        command.push(' ');
        command.push_str(a);
    }
    let meta = wire::RecordingMeta {
        id: id.to_string(),
        grant: verified.grant.clone(),
        user: s("submituser"),
        run_as: s("runuser"),
        command,
        started: info["timestamp"]["seconds"].as_i64().unwrap_or(0),
        chunks: verified.chunks,
        sha256: hash.to_string(),
        cut,
    };
    let mut files = Vec::new();
    let mut total = 0u64;
    for name in wire::RECORDING_FILES {
        let path = dir.join(name);
        match fs::read(&path) {
            Ok(bytes) => {
                total += bytes.len() as u64;
                files.push((name, bytes));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    if total > MAX_UPLOAD_BYTES {
        return Err(format!(
            "{} holds {total} bytes, more than the {MAX_UPLOAD_BYTES} one upload can carry; \
             it stays on this host",
            dir.display()
        ));
    }
    let key = hostkey::load(Path::new(hostkey::HOST_KEY_PATH))?;
    let sign = |body: &wire::RecordingUpload| {
        wire::sign_envelope(
            &key,
            &ctx.config.host,
            wire::PATH_RECORDINGS,
            grant::now(),
            body,
        )
    };
    let status = sign(&wire::RecordingUpload::Status { id: id.to_string() })?;
    let mut signed_parts = Vec::new();
    for (name, bytes) in &files {
        for (offset, part) in parts(bytes, wire::RECORDING_PART_BYTES) {
            signed_parts.push(RecordingPart {
                file: name.to_string(),
                end: offset + part.len() as u64,
                envelope: sign(&wire::RecordingUpload::Part {
                    id: id.to_string(),
                    file: name.to_string(),
                    offset,
                    data: wire::base64_encode(part),
                })?,
            });
        }
    }
    let finish = sign(&wire::RecordingUpload::Finish(meta))?;
    drop(files);
    let nobody = system::user_by_name("nobody")
        .ok()
        .flatten()
        .ok_or_else(|| "no user 'nobody' to run the network helper as".to_string())?;
    let task = Task::Recording {
        services: urls.to_vec(),
        status,
        parts: signed_parts,
        finish,
    };
    let (msgs, _end) = in_child(nobody.uid, nobody.gid, &task)?;
    let mut failure = None;
    for m in msgs {
        match m {
            // Deleted later only if the service holds this very recording: its seal.
            ChildMsg::Recording { ack }
                if ack.id == id.as_str() && ack.complete && ack.sha256.as_deref() == Some(hash) =>
            {
                return Ok(())
            }
            ChildMsg::Recording { ack } => {
                failure = Some(format!(
                    "the service did not acknowledge it as stored ({ack:?})"
                ))
            }
            ChildMsg::Failed { message } => failure = Some(message),
            _ => {}
        }
    }
    Err(failure.unwrap_or_else(|| "the network helper ended without an answer".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cut_line_names_the_recording_and_its_last_chunk_in_the_log_style() {
        let v = chain::Verified {
            id: "00000A".into(),
            grant: "g".into(),
            chunks: 4,
            hash: [0xab; 32],
            unsealed_bytes: 17,
        };
        let id = RecordingId::parse("00000A").unwrap();
        let line = cut_line(&id, &v);
        assert_eq!(
            line,
            format!(
                "recording 00000A cut: writer gone, last chunk 4, sha256 {}, 17 byte(s) after it unchecked",
                "ab".repeat(32)
            )
        );
        // No field separator inside the reason: it would be escaped in the syslog line.
        assert!(!line.contains(';'));
    }

    #[test]
    fn parts_cover_the_file_in_order() {
        let data = vec![7u8; 10];
        let p = parts(&data, 4);
        assert_eq!(
            p.iter().map(|(o, b)| (*o, b.len())).collect::<Vec<_>>(),
            vec![(0, 4), (4, 4), (8, 2)]
        );
        assert!(parts(&[], 4).is_empty());
    }
}
