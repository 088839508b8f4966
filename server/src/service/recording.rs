//! Session recordings uploaded by hosts: what a part must be to be stored, when a
//! recording is complete (its chain verifies over the stored bytes and ends at the seal
//! its host sent), and what auditors may read.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use jitsudo_core::iolog::{chain, RecordingId};
use jitsudo_core::wire::{
    self, RecordingAck, RecordingDownload, RecordingMeta, RecordingUpload, RecordingView,
};

use crate::service::error::{invalid, Error, Result};
use crate::service::Service;
use crate::store::audit::Entry;
use crate::store::recordings::{Search, UploadState};
use crate::store::Db;

fn check_id(id: &str) -> Result<()> {
    match RecordingId::parse(id) {
        Some(parsed) if parsed.as_str() == id => Ok(()),
        _ => Err(invalid(format!(
            "{id:?} is not a recording id (six characters 0-9 A-Z)"
        ))),
    }
}

fn check_file(file: &str) -> Result<()> {
    if wire::RECORDING_FILES.contains(&file) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{file:?} is not a file of a recording (one of {})",
            wire::RECORDING_FILES.join(", ")
        )))
    }
}

fn ack(id: &str, s: Option<UploadState>) -> RecordingAck {
    match s {
        None => RecordingAck {
            id: id.to_string(),
            ..RecordingAck::default()
        },
        Some(s) => RecordingAck {
            id: id.to_string(),
            complete: s.complete,
            sha256: s.complete.then_some(s.sha256),
            held: s.held,
        },
    }
}

/// One step of `host`'s upload (see `wire::RecordingUpload`); `max_bytes` bounds what one
/// recording may hold.
pub async fn upload(
    store: &Db,
    host: &str,
    body: RecordingUpload,
    max_bytes: u64,
    now: i64,
) -> Result<RecordingAck> {
    match body {
        RecordingUpload::Status { id } => {
            check_id(&id)?;
            Ok(ack(&id, store.recording_state(host, &id).await?))
        }
        RecordingUpload::Part {
            id,
            file,
            offset,
            data,
        } => {
            check_id(&id)?;
            check_file(&file)?;
            let data = wire::base64_decode(&data)
                .map_err(|e| invalid(format!("recording {id}, {file}: {e}")))?;
            if data.is_empty() || data.len() > wire::RECORDING_PART_BYTES {
                return Err(invalid(format!(
                    "recording {id}, {file}: a part holds 1 to {} bytes, not {}",
                    wire::RECORDING_PART_BYTES,
                    data.len()
                )));
            }
            part(store, host, &id, &file, offset, &data, max_bytes, now).await
        }
        RecordingUpload::Finish(meta) => {
            check_id(&meta.id)?;
            if chain::unhex(&meta.sha256).is_none() {
                return Err(invalid(format!(
                    "recording {}: the seal's sha256 must be 64 hex digits",
                    meta.id
                )));
            }
            finish(store, host, meta, now).await
        }
    }
}

/// Store a part at its file's current length. A part the service holds already is
/// acknowledged again (an upload resumed or repeated); one that starts past the end
/// would leave a gap and is refused; one that overlaps the end adds what is new.
#[allow(clippy::too_many_arguments)]
async fn part(
    store: &Db,
    host: &str,
    id: &str,
    file: &str,
    offset: u64,
    data: &[u8],
    max_bytes: u64,
    now: i64,
) -> Result<RecordingAck> {
    let mut tx = store.write().await?;
    let result = async {
        let mut state = tx.recording_for_upload(host, id, now).await?;
        if state.complete {
            return Ok(ack(id, Some(state)));
        }
        let have = state.held.get(file).copied().unwrap_or(0);
        let end = offset.saturating_add(data.len() as u64);
        if offset > have {
            return Err(Error::Conflict(format!(
                "recording {id} of host {host}: the service holds {have} bytes of {file}, a part \
                 at offset {offset} would leave a gap; send from {have}"
            )));
        }
        if end <= have {
            return Ok(ack(id, Some(state)));
        }
        let new = &data[(have - offset) as usize..];
        if state.bytes + new.len() as u64 > max_bytes {
            return Err(invalid(format!(
                "recording {id} of host {host} is larger than this service's limit of \
                 {max_bytes} bytes per recording ([limits] max_recording_bytes in jitsudod.toml)"
            )));
        }
        tx.insert_recording_part(host, id, file, have, new).await?;
        state.held.insert(file.to_string(), end);
        Ok(ack(id, Some(state)))
    }
    .await;
    tx.finish(result).await
}

/// Every part is sent: verify the chain over the stored bytes and against the seal,
/// then index the recording, with its audit record, in one transaction. A recording
/// stored complete already is acknowledged again (never stored twice); one that does
/// not verify is refused, audited and dropped, so that its host may send it again.
async fn finish(store: &Db, host: &str, meta: RecordingMeta, now: i64) -> Result<RecordingAck> {
    let id = meta.id.clone();
    let mut tx = store.write().await?;
    let result = async {
        let state = tx.recording_for_upload(host, &id, now).await?;
        if state.complete {
            if state.sha256 == meta.sha256 {
                return Ok(Ok(ack(&id, Some(state))));
            }
            return Ok(Err(Error::Conflict(format!(
                "recording {id} of host {host} is stored with seal {}, not {}; the host's \
                 recording directory was reused or altered",
                state.sha256, meta.sha256
            ))));
        }
        let files = tx.recording_files(host, &id).await?;
        let verified = verify(host, &meta, &files);
        if let Err(why) = &verified {
            tx.delete_recording(host, &id).await?;
            let entry = Entry::new("recording.refused", host)
                .host(host)
                .user(&meta.user)
                .detail(serde_json::json!({
                    "id": id, "reason": why, "sha256": meta.sha256, "chunks": meta.chunks,
                }));
            tx.audit(now, &[entry]).await?;
            return Ok(Err(invalid(format!(
                "recording {id} of host {host} refused: {why}"
            ))));
        }
        let unsealed = verified.unwrap_or_default();
        let bytes = files.values().map(|f| f.len() as u64).sum();
        tx.complete_recording(host, &meta, bytes, now).await?;
        let mut entry = Entry::new("recording.stored", host)
            .host(host)
            .user(&meta.user)
            .detail(serde_json::json!({
                "id": id, "sha256": meta.sha256, "chunks": meta.chunks, "bytes": bytes,
                "command": meta.command, "run_as": meta.run_as, "started": meta.started,
                "state": state_of(&meta), "unsealed_bytes": unsealed,
            }));
        if !meta.grant.is_empty() {
            entry = entry.grant(&meta.grant);
        }
        tx.audit(now, &[entry]).await?;
        let mut done = state;
        done.complete = true;
        done.sha256 = meta.sha256.clone();
        Ok(Ok(ack(&id, Some(done))))
    }
    .await;
    tx.finish::<_, Error>(result).await?
}

fn state_of(meta: &RecordingMeta) -> &'static str {
    if meta.cut {
        wire::RECORDING_CUT
    } else {
        wire::RECORDING_SEALED
    }
}

/// The stored bytes, checked: the chain verifies, names this recording and its grant,
/// and ends at the seal the host sent; it covers every byte of a sealed recording. A cut
/// one may hold bytes after its last chunk (written before its supervisor was killed,
/// never sealed): their count is returned, and they are kept, as not covered.
fn verify(
    host: &str,
    meta: &RecordingMeta,
    files: &BTreeMap<String, Vec<u8>>,
) -> std::result::Result<u64, String> {
    let chain_bytes = files
        .get(chain::CHAIN_FILE)
        .ok_or_else(|| "no chain was uploaded".to_string())?;
    let parts = chain::FILES.map(|f| files.get(f).map(Vec::as_slice));
    let label = format!("{host}/{}", meta.id);
    let v = chain::verify_bytes(&label, chain_bytes, parts).map_err(|e| e.to_string())?;
    if v.id != meta.id {
        return Err(format!("its chain is that of recording {}", v.id));
    }
    if v.grant != meta.grant {
        return Err(format!(
            "its chain names grant {:?}, the upload {:?}",
            v.grant, meta.grant
        ));
    }
    if v.unsealed_bytes > 0 && !meta.cut {
        return Err(format!(
            "{} byte(s) are not covered by its chain",
            v.unsealed_bytes
        ));
    }
    if v.chunks != meta.chunks || chain::hex(&v.hash) != meta.sha256 {
        return Err(format!(
            "its chain ends at chunk {} ({}), the seal sent is chunk {} ({})",
            v.chunks,
            chain::hex(&v.hash),
            meta.chunks,
            meta.sha256
        ));
    }
    Ok(v.unsealed_bytes)
}

/// The retention sweep: delete the stored recordings received `keep` or more before
/// `now`, at most `batch` per transaction, oldest first, each deletion audited as
/// `recording.deleted` by `retention` in the transaction that deletes it. Returns how
/// many were deleted.
pub async fn sweep(store: &Db, keep: std::time::Duration, batch: i64, now: i64) -> Result<u64> {
    let before = now.saturating_sub(keep.as_secs() as i64);
    let mut deleted = 0u64;
    loop {
        let mut tx = store.write().await?;
        let result = async {
            let expired = tx.expired_recordings(before, batch).await?;
            let mut entries = Vec::with_capacity(expired.len());
            for e in &expired {
                tx.delete_recording(&e.host, &e.id).await?;
                let mut entry = Entry::new("recording.deleted", "retention")
                    .host(&e.host)
                    .user(&e.user)
                    .detail(serde_json::json!({
                        "id": e.id, "who": "retention", "age": now - e.received_at,
                        "keep": keep.as_secs(), "started": e.started, "bytes": e.bytes,
                        "sha256": e.sha256, "state": e.state,
                    }));
                if !e.grant.is_empty() {
                    entry = entry.grant(&e.grant);
                }
                entries.push(entry);
            }
            tx.audit(now, &entries).await?;
            Ok::<usize, Error>(expired.len())
        }
        .await;
        let n = tx.finish(result).await?;
        deleted += n as u64;
        if (n as i64) < batch {
            return Ok(deleted);
        }
    }
}

/// Complete recordings matching `s`, newest first.
pub async fn search(store: &Db, s: &Search) -> Result<Vec<RecordingView>> {
    if let Some(state) = &s.state {
        if ![wire::RECORDING_SEALED, wire::RECORDING_CUT].contains(&state.as_str()) {
            return Err(invalid(format!(
                "state {state:?} is not a recording state (sealed or cut)"
            )));
        }
    }
    Ok(store.search_recordings(s).await?)
}

/// One complete recording with its files.
pub async fn fetch(store: &Db, host: &str, id: &str) -> Result<RecordingDownload> {
    check_id(id)?;
    let Some((recording, files)) = store.recording(host, id).await? else {
        return Err(Error::NotFound(format!(
            "no recording {id} of host {host:?} is stored"
        )));
    };
    Ok(RecordingDownload {
        recording,
        files: files
            .iter()
            .map(|(name, bytes)| (name.clone(), wire::base64_encode(bytes)))
            .collect(),
    })
}

/// What the web page's player reads of a recording: its output streams and timing, and
/// what its chain says of them (verified over the stored bytes, as on upload).
#[derive(Debug, serde::Serialize)]
pub struct PlayerData {
    pub recording: RecordingView,
    pub timing: String,
    /// base64 of `ttyout`, `stdout` and `stderr` (absent files are empty).
    pub ttyout: String,
    pub stdout: String,
    pub stderr: String,
    /// "chain verified: N chunk(s)", or why it does not verify.
    pub chain: String,
    pub verified: bool,
    /// Bytes after the last chunk (a cut recording's tail): shown, not covered.
    pub unsealed_bytes: u64,
}

impl Service {
    /// Delete stored recordings past `[recordings] keep` (nothing without it).
    pub async fn sweep_recordings(&self) -> Result<u64> {
        match self.config.recordings_keep {
            Some(keep) => sweep(&self.store, keep, 100, jitsudo_core::grant::now()).await,
            None => Ok(0),
        }
    }

    /// Recording `id` of `host` for the web page's player: input is left out (it may
    /// hold what was typed at a password prompt; `jitsudoctl replay` does not show it
    /// either).
    pub async fn player_data(&self, host: &str, id: &str) -> Result<PlayerData> {
        check_id(id)?;
        let Some((recording, files)) = self.store.recording(host, id).await? else {
            return Err(Error::NotFound(format!(
                "no recording {id} of host {host:?} is stored"
            )));
        };
        let label = format!("{host}/{id}");
        let (chain, verified, unsealed_bytes) = match files.get(chain::CHAIN_FILE) {
            None => ("no chain was stored".to_string(), false, 0),
            Some(c) => {
                let parts = chain::FILES.map(|f| files.get(f).map(Vec::as_slice));
                match chain::verify_bytes(&label, c, parts) {
                    Ok(v)
                        if v.chunks == recording.chunks
                            && chain::hex(&v.hash) == recording.sha256 =>
                    {
                        (
                            format!("chain verified: {} chunk(s)", v.chunks),
                            true,
                            v.unsealed_bytes,
                        )
                    }
                    Ok(v) => (
                        format!(
                            "its chain ends at chunk {}, the service sealed chunk {}",
                            v.chunks, recording.chunks
                        ),
                        false,
                        v.unsealed_bytes,
                    ),
                    Err(e) => (e.to_string(), false, 0),
                }
            }
        };
        let b64 = |name: &str| {
            files
                .get(name)
                .map(|b| wire::base64_encode(b))
                .unwrap_or_default()
        };
        Ok(PlayerData {
            timing: String::from_utf8_lossy(files.get("timing").map(Vec::as_slice).unwrap_or(&[]))
                .into_owned(),
            ttyout: b64("ttyout"),
            stdout: b64("stdout"),
            stderr: b64("stderr"),
            recording,
            chain,
            verified,
            unsealed_bytes,
        })
    }

    /// One stored recording's index entry.
    pub async fn recording_view(&self, host: &str, id: &str) -> Result<Option<RecordingView>> {
        check_id(id)?;
        Ok(self.store.recording_view(host, id).await?)
    }
}
