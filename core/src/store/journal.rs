//! The host's local audit journal, /var/lib/jitsudo/journal (root 0600): one JSON line
//! per invocation, hash-chained, appended before the command runs.
//!
//! Each record's `hash` is SHA-256 over the previous record's hash, a newline, and the
//! record's own canonical JSON without `hash`. Altering, removing or reordering a line
//! breaks the chain at that line, and `jitsudoctl journal verify` names it. Records
//! uploaded to the service may be trimmed from the front; `journal.anchor` then holds
//! the last trimmed record's seq and hash, so the first remaining line is still checked.
//!
//! Appends are serialised with flock (waited for at most `LOCK_WAIT`) and made with a
//! single O_APPEND write of a bounded record (`MAX_RECORD_BYTES`); a failed or short
//! write is truncated back, and a torn tail left by a process killed mid-write is
//! removed by the next append, which records that it did. They are not fsync'd unless
//! `[journal] durable = true`: an fsync per run would cost more than the whole rest of
//! the setuid path.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::log::ArgvDigest;
use crate::secure_file::TrustedDir;
use crate::system;

pub const JOURNAL: &str = "journal";
pub const ANCHOR: &str = "journal.anchor";
/// Highest seq the approval service has acknowledged (written by `jitsudo --sync`).
pub const ACKED: &str = "journal.acked";
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What is recorded; the chain fields are added by `append`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub time: i64,
    pub host: String,
    pub user: String,
    pub uid: u32,
    /// allowed, denied, error or event
    pub outcome: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    pub tty: String,
    pub pwd: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// Program and arguments, escaped and bounded as in the syslog line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// The full argv's digest when `command` was cut to its bound. Absent otherwise, so
    /// records from before the bound hash as they always did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<ArgvDigest>,
    /// The run's session recording: its id when the run starts, and its seal (the
    /// chain's last hash) in the record written when it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingRef>,
}

/// A recording as the journal names it (`jitsudoctl journal verify` checks it against
/// the files under /var/log/jitsudo-io).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RecordingRef {
    pub id: String,
    /// Present once the run has ended: the chunks sealed and the last chain hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<RecordingSeal>,
    /// In the record `jitsudo --sync` appends for a recording it found never sealed and
    /// no longer written (its supervisor was killed): `seal` is then the last chunk whose
    /// chain verified, and what follows it is not covered.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cut: bool,
    /// In the record `jitsudo --sync` appends when it deletes the local copy of a
    /// recording the service acknowledged (past `[record] keep`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
}

impl RecordingRef {
    /// The reference a run's first record carries: the id, nothing sealed yet.
    pub fn named(id: &str) -> RecordingRef {
        RecordingRef {
            id: id.to_string(),
            seal: None,
            cut: false,
            deleted: false,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RecordingSeal {
    pub chunks: u64,
    pub sha256: String,
}

/// The body that is hashed: the entry with its position in the chain.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    seq: u64,
    prev: String,
    #[serde(flatten)]
    entry: Entry,
}

/// A journal line.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub prev: String,
    #[serde(flatten)]
    pub entry: Entry,
    pub hash: String,
}

/// The seq and hash the first remaining line must follow.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    pub seq: u64,
    pub hash: String,
}

impl Anchor {
    fn genesis() -> Anchor {
        Anchor {
            seq: 0,
            hash: GENESIS.to_string(),
        }
    }
}

fn chain_hash(prev: &str, seq: u64, entry: &Entry) -> String {
    let body = Body {
        seq,
        prev: prev.to_string(),
        entry: entry.clone(),
    };
    // Serialising strings and integers cannot fail.
    let canonical = serde_json::to_vec(&body).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(&canonical);
    hex(&h.finalize())
}

impl Record {
    /// Does the record's hash match its content and predecessor?
    pub fn hash_is_valid(&self) -> bool {
        chain_hash(&self.prev, self.seq, &self.entry) == self.hash
    }
}

/// What is uploaded in place of a record too large for an upload envelope (only an
/// older, unbounded version wrote such records; this one stays under
/// `MAX_RECORD_BYTES`): the record's place in the chain, who and what outcome, and the
/// SHA-256 and length of its full journal line instead of the rest. The service links
/// it into the host's chain by `seq` and `prev` like any record; its content can only be
/// checked against the host's journal, whose line has that digest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Reduced {
    /// Always true: tells this form from a record.
    pub reduced: bool,
    pub seq: u64,
    pub prev: String,
    pub hash: String,
    pub time: i64,
    pub host: String,
    pub user: String,
    pub uid: u32,
    pub outcome: String,
    pub line_sha256: String,
    pub line_bytes: u64,
}

/// Cut text to at most `max` bytes at a character boundary.
fn clip(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

impl Reduced {
    pub fn of(record: &Record, line: &str) -> Reduced {
        use crate::log::fields::MAX_NAME_BYTES;
        Reduced {
            reduced: true,
            seq: record.seq,
            prev: record.prev.clone(),
            hash: record.hash.clone(),
            time: record.entry.time,
            host: clip(&record.entry.host, MAX_NAME_BYTES),
            user: clip(&record.entry.user, MAX_NAME_BYTES),
            uid: record.entry.uid,
            outcome: clip(&record.entry.outcome, 16),
            line_sha256: hex(&Sha256::digest(line.as_bytes())),
            line_bytes: line.len() as u64,
        }
    }
}

/// Build the line that follows `last` (or the anchor when the journal is empty).
pub fn next_record(last: &Anchor, entry: Entry) -> Record {
    let seq = last.seq + 1;
    let hash = chain_hash(&last.hash, seq, &entry);
    Record {
        seq,
        prev: last.hash.clone(),
        entry,
        hash,
    }
}

/// The longest line this version writes (one record and its newline). Every field of
/// an entry is bounded (`crate::log::fields`), which keeps a record under about 24 KiB
/// even when every character needs escaping; this leaves room and is checked before
/// each write. The tail is read in one pread of this plus one byte.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// How long a run waits for the journal's lock. The lock is held only to read the tail
/// and write one record (well under a millisecond), by a process its caller cannot
/// signal (`system::unsignalable`), so a wait this long means something is wrong.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Where the bytes of the last torn tail removed from the journal are kept (root 0600,
/// at most `MAX_RECORD_BYTES`), for whoever investigates why it was torn.
pub const TORN: &str = "journal.torn";

/// The end of the journal file: where its last complete line ends (anything after is a
/// torn write) and that line with its offset.
#[derive(Debug, PartialEq, Eq)]
struct Tail {
    complete: u64,
    last: Option<(u64, Vec<u8>)>,
}

/// Offset of the last newline in `file[..before]`, scanning back without keeping what
/// was read (linear in the distance).
fn newline_before(file: &File, before: u64) -> io::Result<Option<u64>> {
    const CHUNK: u64 = 64 * 1024;
    let mut buf = vec![0u8; CHUNK as usize];
    let mut pos = before;
    while pos > 0 {
        let start = pos.saturating_sub(CHUNK);
        let chunk = &mut buf[..(pos - start) as usize];
        file.read_exact_at(chunk, start)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(Some(start + i as u64));
        }
        pos = start;
    }
    Ok(None)
}

/// Find the journal's tail. In the normal case (a complete last line this version
/// wrote) that is one read of at most `MAX_RECORD_BYTES + 1` bytes. A torn tail, or a
/// last line an older, unbounded version wrote, takes a linear scan.
fn tail(file: &File, len: u64) -> io::Result<Tail> {
    if len == 0 {
        return Ok(Tail {
            complete: 0,
            last: None,
        });
    }
    let window_len = len.min(MAX_RECORD_BYTES as u64 + 1);
    let window_start = len - window_len;
    let mut window = vec![0u8; window_len as usize];
    file.read_exact_at(&mut window, window_start)?;
    if let Some(body) = window.strip_suffix(b"\n") {
        match body.iter().rposition(|&b| b == b'\n') {
            Some(i) => {
                return Ok(Tail {
                    complete: len,
                    last: Some((window_start + i as u64 + 1, body[i + 1..].to_vec())),
                })
            }
            None if window_start == 0 => {
                return Ok(Tail {
                    complete: len,
                    last: Some((0, body.to_vec())),
                })
            }
            None => {}
        }
    }
    let complete = match newline_before(file, len)? {
        Some(nl) => nl + 1,
        None => 0,
    };
    if complete == 0 {
        return Ok(Tail {
            complete,
            last: None,
        });
    }
    let start = newline_before(file, complete - 1)?.map_or(0, |nl| nl + 1);
    let mut line = vec![0u8; (complete - 1 - start) as usize];
    file.read_exact_at(&mut line, start)?;
    Ok(Tail {
        complete,
        last: Some((start, line)),
    })
}

/// What the journal ends with, and what has to go.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    /// The record to follow; None: the journal has no valid record left (use the anchor).
    last: Option<Anchor>,
    /// Truncate here first, when the tail is torn.
    truncate_to: Option<u64>,
}

/// A line's place in the chain: only `seq` and `hash` are read, so a record with fields
/// this version does not know (a newer version's) is followed, never taken for junk.
fn position(line: &[u8]) -> Option<Anchor> {
    #[derive(Deserialize)]
    struct Position {
        seq: u64,
        hash: String,
    }
    serde_json::from_slice::<Position>(line)
        .ok()
        .map(|p| Anchor {
            seq: p.seq,
            hash: p.hash,
        })
}

/// Decide from the tail. A torn write (bytes after the last newline), and a last line
/// that is not a record at all, are removed: they are what a write killed half-way or
/// stopped by a file size limit leaves, and refusing to append after them would let
/// one user stop everyone's runs. A line before that must be a record; a record whose
/// hash is wrong is followed as it is (tampering, for `journal verify` to name), never
/// removed.
fn plan(file: &File, len: u64, tail: Tail) -> Result<Plan, String> {
    let truncate_to = (tail.complete < len).then_some(tail.complete);
    let Some((start, line)) = tail.last else {
        return Ok(Plan {
            last: None,
            truncate_to,
        });
    };
    if let Some(last) = position(&line) {
        return Ok(Plan {
            last: Some(last),
            truncate_to,
        });
    }
    // The last complete line is not a record: look at the one before, once.
    let before = tail_of(file, start).map_err(|e| e.to_string())?;
    match before.last {
        None => Ok(Plan {
            last: None,
            truncate_to: Some(start),
        }),
        Some((_, line)) => match position(&line) {
            Some(last) => Ok(Plan {
                last: Some(last),
                truncate_to: Some(start),
            }),
            None => Err(
                "the last two lines are not journal records; run jitsudoctl journal verify and repair the file"
                    .to_string(),
            ),
        },
    }
}

/// The tail of `file[..len]`, which ends with a newline.
fn tail_of(file: &File, len: u64) -> io::Result<Tail> {
    if len == 0 {
        return Ok(Tail {
            complete: 0,
            last: None,
        });
    }
    let start = newline_before(file, len - 1)?.map_or(0, |nl| nl + 1);
    let mut line = vec![0u8; (len - 1 - start) as usize];
    file.read_exact_at(&mut line, start)?;
    Ok(Tail {
        complete: len,
        last: Some((start, line)),
    })
}

/// SHA-256 and length of `file[from..to]`, and its first `MAX_RECORD_BYTES`.
fn removed_bytes(file: &File, from: u64, to: u64) -> io::Result<(String, Vec<u8>)> {
    let mut h = Sha256::new();
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos = from;
    while pos < to {
        let n = (to - pos).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], pos)?;
        h.update(&buf[..n]);
        let room = MAX_RECORD_BYTES.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
        pos += n as u64;
    }
    Ok((hex(&h.finalize()), kept))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Keep the removed bytes for forensics. Best effort: the repair is recorded in the
/// chain either way.
fn keep_torn(dir: &TrustedDir, bytes: &[u8]) -> bool {
    let flags =
        libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NOFOLLOW | libc::O_NONBLOCK;
    let Ok(mut f) = system::openat(dir_fd(dir), TORN, flags, 0o600) else {
        return false;
    };
    match f.metadata() {
        Ok(m) if m.is_file() && m.uid() == 0 && m.mode() & 0o077 == 0 => {}
        _ => return false,
    }
    f.write_all(bytes).is_ok()
}

fn read_anchor(dir: &TrustedDir) -> Result<Anchor, String> {
    match dir.read_file(ANCHOR, 4096) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| format!("{ANCHOR} is corrupt: {e}"))
        }
        Err(crate::secure_file::OpenError::Missing) => Ok(Anchor::genesis()),
        Err(e) => Err(e.to_string()),
    }
}

/// Append one entry under the journal's lock. Returns the record written.
///
/// The locked section only reads the tail, repairs a torn one, and writes; it runs where
/// the caller cannot signal it (`system::unsignalable`), and the lock is waited for at
/// most `LOCK_WAIT`. A failed or short write is cut back off, so the journal never ends
/// in a half record by our hand (a file size limit the setuid process could not raise
/// leaves the journal as it was, and refuses only this run).
pub fn append(dir: &TrustedDir, entry: Entry, durable: bool) -> Result<Appended, String> {
    system::unsignalable(|| append_locked(dir, entry, durable))
}

/// What `append` wrote: the record, and the repair record before it if a torn tail was
/// removed (for the caller to report to syslog as well).
#[derive(Debug)]
pub struct Appended {
    pub record: Record,
    pub repair: Option<Record>,
}

fn append_locked(dir: &TrustedDir, entry: Entry, durable: bool) -> Result<Appended, String> {
    let path = dir.path().join(JOURNAL);
    // One descriptor for both: appends go to the end (O_APPEND) while pread reads the
    // tail for the previous hash.
    let flags = libc::O_RDWR | libc::O_APPEND | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_NONBLOCK;
    let file = system::openat(dir_fd(dir), JOURNAL, flags, 0o600)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    if !meta.is_file() || meta.uid() != 0 || meta.mode() & 0o077 != 0 || meta.nlink() != 1 {
        return Err(format!(
            "{} must be a regular root-owned 0600 file with one link",
            path.display()
        ));
    }
    match system::lock_exclusive_within(&file, LOCK_WAIT) {
        Ok(true) => {}
        Ok(false) => {
            return Err(format!(
                "cannot lock {}: another process has held it for over {} s; find it with `fuser -v {}`, end it, and try again",
                path.display(),
                LOCK_WAIT.as_secs(),
                path.display()
            ))
        }
        Err(e) => return Err(format!("cannot lock {}: {e}", path.display())),
    }
    let read_err = |e: io::Error| format!("cannot read {}: {e}", path.display());
    let len = file.metadata().map_err(read_err)?.len();
    let tail = tail(&file, len).map_err(read_err)?;
    let plan = plan(&file, len, tail).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut last = match plan.last {
        Some(anchor) => anchor,
        None => read_anchor(dir)?,
    };
    // Everything is decided and built before the file is touched.
    let mut lines = Vec::new();
    if let Some(at) = plan.truncate_to {
        let (sha, kept) = removed_bytes(&file, at, len).map_err(read_err)?;
        let kept_note = if keep_torn(dir, &kept) {
            format!(", its first {} bytes kept in {TORN}", kept.len())
        } else {
            String::new()
        };
        let repair = Entry {
            outcome: "event".into(),
            reason: format!(
                "journal repaired: removed a torn tail of {} bytes (sha256 {sha}){kept_note}",
                len - at
            ),
            run_as: None,
            grant: None,
            command: Vec::new(),
            argv: None,
            recording: None,
            ..entry.clone()
        };
        let record = next_record(&last, repair);
        last = Anchor {
            seq: record.seq,
            hash: record.hash.clone(),
        };
        lines.push(record);
    }
    let repair = lines.first().cloned();
    let record = next_record(&last, entry);
    lines.push(record.clone());
    let mut bytes = Vec::new();
    for r in &lines {
        let line = serde_json::to_vec(r).map_err(|e| e.to_string())?;
        if line.len() + 1 > MAX_RECORD_BYTES {
            return Err(format!(
                "cannot append to {}: a record of {} bytes is over the bound of {MAX_RECORD_BYTES}",
                path.display(),
                line.len() + 1
            ));
        }
        bytes.extend_from_slice(&line);
        bytes.push(b'\n');
    }
    let end = plan.truncate_to.unwrap_or(len);
    if end < len {
        file.set_len(end)
            .map_err(|e| format!("cannot repair {}: {e}", path.display()))?;
    }
    if let Err(e) = (&file).write_all(&bytes) {
        // Take back whatever part was written: the next append must find whole records.
        let _ = file.set_len(end);
        return Err(format!("cannot append to {}: {e}", path.display()));
    }
    if durable {
        file.sync_data()
            .map_err(|e| format!("cannot sync {}: {e}", path.display()))?;
    }
    Ok(Appended { record, repair })
}

fn dir_fd(dir: &TrustedDir) -> std::os::fd::BorrowedFd<'_> {
    dir.as_fd()
}

/// Where the chain first breaks.
#[derive(Debug, PartialEq, Eq)]
pub struct Break {
    /// 1-based line number in the file.
    pub line: usize,
    pub seq: Option<u64>,
    pub reason: String,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "line {} (record {seq}): {}", self.line, self.reason),
            None => write!(f, "line {}: {}", self.line, self.reason),
        }
    }
}

/// Check a journal's text against its anchor. Returns the number of records.
pub fn verify(text: &[u8], anchor: &Anchor) -> Result<usize, Break> {
    let mut last = anchor.clone();
    let mut count = 0;
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        if raw.is_empty() {
            continue;
        }
        let line = i + 1;
        let record: Record = serde_json::from_slice(raw).map_err(|e| Break {
            line,
            seq: None,
            reason: format!("not a journal record ({e})"),
        })?;
        let at = |reason: String| Break {
            line,
            seq: Some(record.seq),
            reason,
        };
        if record.seq != last.seq + 1 {
            return Err(at(format!(
                "expected record {}, found {} (a record was removed or reordered)",
                last.seq + 1,
                record.seq
            )));
        }
        if record.prev != last.hash {
            return Err(at(
                "does not follow the previous record (removed or reordered)".into(),
            ));
        }
        if chain_hash(&record.prev, record.seq, &record.entry) != record.hash {
            return Err(at("content does not match its hash (altered)".into()));
        }
        last = Anchor {
            seq: record.seq,
            hash: record.hash.clone(),
        };
        count += 1;
    }
    Ok(count)
}

/// Read the anchor of a journal directory for offline verification.
pub fn anchor_in(dir: &TrustedDir) -> Result<Anchor, String> {
    read_anchor(dir)
}

#[cfg(test)]
mod tests {
    #[test]
    fn recording_flags_are_absent_unless_set_so_older_records_hash_as_before() {
        let named = RecordingRef::named("00000A");
        assert_eq!(serde_json::to_string(&named).unwrap(), r#"{"id":"00000A"}"#);
        let cut = RecordingRef {
            seal: Some(RecordingSeal {
                chunks: 3,
                sha256: "ab".repeat(32),
            }),
            cut: true,
            ..RecordingRef::named("00000A")
        };
        let text = serde_json::to_string(&cut).unwrap();
        assert!(
            text.contains(r#""cut":true"#) && !text.contains("deleted"),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<RecordingRef>(&text).unwrap(), cut);
        let old: RecordingRef =
            serde_json::from_str(r#"{"id":"00000A","seal":{"chunks":1,"sha256":"x"}}"#).unwrap();
        assert!(!old.cut && !old.deleted);
    }

    use super::*;

    fn entry(n: i64) -> Entry {
        Entry {
            time: 1_800_000_000 + n,
            host: "web-01".into(),
            user: "alice".into(),
            uid: 1001,
            outcome: "allowed".into(),
            reason: String::new(),
            tty: "pts/0".into(),
            pwd: "/home/alice".into(),
            run_as: Some("root".into()),
            grant: Some("g1".into()),
            command: vec!["/usr/bin/id".into()],
            argv: None,
            recording: None,
        }
    }

    fn journal(n: usize) -> Vec<String> {
        let mut last = Anchor::genesis();
        (0..n)
            .map(|i| {
                let r = next_record(&last, entry(i as i64));
                last = Anchor {
                    seq: r.seq,
                    hash: r.hash.clone(),
                };
                serde_json::to_string(&r).unwrap()
            })
            .collect()
    }

    fn text(lines: &[String]) -> Vec<u8> {
        let mut t = lines.join("\n").into_bytes();
        t.push(b'\n');
        t
    }

    #[test]
    fn intact_journal_verifies() {
        let lines = journal(5);
        assert_eq!(verify(&text(&lines), &Anchor::genesis()), Ok(5));
    }

    #[test]
    fn altered_line_is_named() {
        let mut lines = journal(5);
        lines[2] = lines[2].replace("/usr/bin/id", "/usr/bin/ls");
        let e = verify(&text(&lines), &Anchor::genesis()).unwrap_err();
        assert_eq!((e.line, e.seq), (3, Some(3)));
        assert!(e.reason.contains("altered"), "{e}");
    }

    #[test]
    fn removed_line_is_named() {
        let mut lines = journal(5);
        lines.remove(1);
        let e = verify(&text(&lines), &Anchor::genesis()).unwrap_err();
        assert_eq!((e.line, e.seq), (2, Some(3)));
        // Removing the first line is caught by the anchor.
        let mut lines = journal(3);
        lines.remove(0);
        assert_eq!(
            verify(&text(&lines), &Anchor::genesis()).unwrap_err().line,
            1
        );
    }

    #[test]
    fn reordered_lines_are_named() {
        let mut lines = journal(5);
        lines.swap(3, 4);
        let e = verify(&text(&lines), &Anchor::genesis()).unwrap_err();
        assert_eq!(e.line, 4);
    }

    #[test]
    fn trimmed_journal_verifies_against_its_anchor() {
        let lines = journal(5);
        let third: Record = serde_json::from_str(&lines[2]).unwrap();
        let anchor = Anchor {
            seq: third.seq,
            hash: third.hash,
        };
        assert_eq!(verify(&text(&lines[3..]), &anchor), Ok(2));
        assert!(verify(&text(&lines[4..]), &anchor).is_err());
    }

    fn temp_file(name: &str, bytes: &[u8]) -> (std::path::PathBuf, File) {
        let dir = std::env::temp_dir().join(format!(
            "jitsudo-journal-test-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("j");
        std::fs::write(&path, bytes).unwrap();
        let f = File::open(&path).unwrap();
        (dir, f)
    }

    fn tail_of_bytes(name: &str, bytes: &[u8]) -> Tail {
        let (dir, f) = temp_file(name, bytes);
        let t = tail(&f, bytes.len() as u64).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        t
    }

    #[test]
    fn tail_is_found_in_one_read_or_by_a_scan() {
        let big = "x".repeat(20_000);
        let t = tail_of_bytes("a", format!("first\n{big}\nlast-line\n").as_bytes());
        assert_eq!(t.last.unwrap().1, b"last-line");
        let t = tail_of_bytes("b", format!("first\n{big}\n").as_bytes());
        assert_eq!(t.last.unwrap(), (6, big.as_bytes().to_vec()));
        let t = tail_of_bytes("c", b"only\n");
        assert_eq!((t.complete, t.last), (5, Some((0, b"only".to_vec()))));
        // A line longer than the bound (an older version's) is still found whole.
        let huge = "y".repeat(MAX_RECORD_BYTES * 3);
        let t = tail_of_bytes("d", format!("first\n{huge}\n").as_bytes());
        assert_eq!(t.last.unwrap(), (6, huge.as_bytes().to_vec()));
        // A torn tail: the complete part ends at the last newline.
        let t = tail_of_bytes("e", format!("first\nsecond\n{huge}").as_bytes());
        assert_eq!((t.complete, t.last), (13, Some((6, b"second".to_vec()))));
        let t = tail_of_bytes("f", b"torn");
        assert_eq!((t.complete, t.last), (0, None));
    }

    fn plan_for(name: &str, bytes: &[u8]) -> Result<Plan, String> {
        let (dir, f) = temp_file(name, bytes);
        let len = bytes.len() as u64;
        let p = plan(&f, len, tail(&f, len).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        p
    }

    #[test]
    fn torn_tails_are_cut_back_to_the_last_record() {
        let lines = journal(3);
        let whole = text(&lines);
        let third: Record = serde_json::from_str(&lines[2]).unwrap();
        let after_third = Some(Anchor {
            seq: 3,
            hash: third.hash.clone(),
        });
        // Intact: nothing to do.
        let p = plan_for("intact", &whole).unwrap();
        assert_eq!((p.last, p.truncate_to), (after_third.clone(), None));
        // Half a fourth record (killed, or stopped by a size limit).
        let fourth =
            serde_json::to_string(&next_record(after_third.as_ref().unwrap(), entry(4))).unwrap();
        let mut torn = whole.clone();
        torn.extend_from_slice(&fourth.as_bytes()[..fourth.len() / 2]);
        let p = plan_for("torn", &torn).unwrap();
        assert_eq!(
            (p.last, p.truncate_to),
            (after_third.clone(), Some(whole.len() as u64))
        );
        // A complete line that is not a record goes too.
        let mut junk = whole.clone();
        junk.extend_from_slice(b"{\"seq\":4,\n");
        let p = plan_for("junk", &junk).unwrap();
        assert_eq!(
            (p.last, p.truncate_to),
            (after_third, Some(whole.len() as u64))
        );
        // Only torn bytes: the anchor is followed.
        let p = plan_for("only", b"{\"seq\":1").unwrap();
        assert_eq!((p.last, p.truncate_to), (None, Some(0)));
        // An altered record is not removed: verify names it.
        let altered = text(&[lines[0].replace("/usr/bin/id", "/usr/bin/ls")]);
        let p = plan_for("altered", &altered).unwrap();
        assert_eq!((p.last.unwrap().seq, p.truncate_to), (1, None));
        // A newer version's record (a field this one does not know) is followed too.
        let newer = text(&[lines[0].replacen('{', "{\"future\":1,", 1)]);
        let p = plan_for("newer", &newer).unwrap();
        assert_eq!((p.last.unwrap().seq, p.truncate_to), (1, None));
        // Two lines of junk are more than a torn write: refuse, and say what to do.
        let e = plan_for("twice", b"junk\nmore junk\n").unwrap_err();
        assert!(e.contains("journal verify"), "{e}");
    }

    #[test]
    fn a_worst_case_entry_fits_the_record_bound() {
        use crate::log::{Outcome, Record as LogRecord};
        let nasty = |n: usize| "\"\\\u{1b}".repeat(n);
        let words: Vec<std::ffi::OsString> = (0..10_000).map(|_| nasty(500).into()).collect();
        let log = LogRecord {
            user: nasty(1000),
            outcome: Outcome::Denied(nasty(1000)),
            tty: nasty(1000),
            pwd: nasty(10_000).into(),
            run_as: Some(nasty(1000)),
            grant: Some(nasty(1000)),
            command: words,
        };
        let f = log.fields();
        let e = Entry {
            user: f.user,
            reason: f.reason,
            tty: f.tty,
            pwd: f.pwd,
            run_as: f.run_as,
            grant: f.grant,
            command: f.command,
            argv: f.argv,
            recording: None,
            ..entry(0)
        };
        let line = serde_json::to_vec(&next_record(&Anchor::genesis(), e)).unwrap();
        assert!(line.len() < MAX_RECORD_BYTES / 2, "{}", line.len());
        // Many empty words cost their separators.
        let log = LogRecord {
            command: vec![std::ffi::OsString::new(); 1 << 20],
            ..log
        };
        let f = log.fields();
        let e = Entry {
            command: f.command,
            argv: f.argv,
            recording: None,
            ..entry(0)
        };
        let line = serde_json::to_vec(&next_record(&Anchor::genesis(), e)).unwrap();
        assert!(line.len() < MAX_RECORD_BYTES / 2, "{}", line.len());
    }

    #[test]
    fn records_without_a_digest_hash_as_before() {
        // A record written before `argv` existed still verifies.
        let old = r#"{"seq":1,"prev":"0000000000000000000000000000000000000000000000000000000000000000","time":1,"host":"h","user":"u","uid":1,"outcome":"allowed","tty":"t","pwd":"/","command":["/bin/true"]}"#;
        let r: Record = serde_json::from_str(&format!(
            "{},\"hash\":\"{}\"}}",
            &old[..old.len() - 1],
            chain_hash(
                GENESIS,
                1,
                &serde_json::from_str::<Body>(old).unwrap().entry
            )
        ))
        .unwrap();
        assert!(r.hash_is_valid());
        assert_eq!(r.entry.argv, None);
        let with = Entry {
            argv: Some(ArgvDigest::of(&[b"/bin/true"])),
            recording: None,
            ..r.entry.clone()
        };
        assert_ne!(chain_hash(GENESIS, 1, &with), r.hash);
    }
}
