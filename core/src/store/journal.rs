//! The host's local audit journal, /var/lib/jitsudo/journal (root 0600): one JSON line
//! per invocation, hash-chained, appended before the command runs.
//!
//! Each record's `hash` is SHA-256 over the previous record's hash, a newline, and the
//! record's own canonical JSON without `hash`. Altering, removing or reordering a line
//! breaks the chain at that line, and `jitsudoctl journal verify` names it. Records
//! uploaded to the service may be trimmed from the front; `journal.anchor` then holds
//! the last trimmed record's seq and hash, so the first remaining line is still checked.
//!
//! Appends are serialised with flock and made with a single O_APPEND write. They are not
//! fsync'd unless `[journal] durable = true`: an fsync per run would cost more than the
//! whole rest of the setuid path.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
    /// Program and arguments, escaped as in the syslog line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
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
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl Record {
    /// Does the record's hash match its content and predecessor?
    pub fn hash_is_valid(&self) -> bool {
        chain_hash(&self.prev, self.seq, &self.entry) == self.hash
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

/// The last complete line of the journal file, read backwards from the end so the cost
/// does not grow with the journal.
fn last_line(file: &File) -> io::Result<Option<Vec<u8>>> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    let mut tail: Vec<u8> = Vec::new();
    let mut pos = len;
    const CHUNK: u64 = 8192;
    loop {
        let start = pos.saturating_sub(CHUNK);
        let mut buf = vec![0u8; (pos - start) as usize];
        file.read_exact_at(&mut buf, start)?;
        buf.extend_from_slice(&tail);
        tail = buf;
        pos = start;
        // Skip the final newline, then look for the one before the last line.
        let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
        if let Some(i) = body.iter().rposition(|&b| b == b'\n') {
            return Ok(Some(body[i + 1..].to_vec()));
        }
        if pos == 0 {
            return Ok(Some(body.to_vec()));
        }
    }
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
pub fn append(dir: &TrustedDir, entry: Entry, durable: bool) -> Result<Record, String> {
    let path = dir.path().join(JOURNAL);
    // One descriptor for both: appends go to the end (O_APPEND) while pread reads the
    // tail for the previous hash.
    let flags = libc::O_RDWR | libc::O_APPEND | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_NONBLOCK;
    let mut file = system::openat(dir_fd(dir), JOURNAL, flags, 0o600)
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
    system::lock_exclusive(&file).map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
    let last = match last_line(&file).map_err(|e| format!("cannot read {}: {e}", path.display()))? {
        Some(line) => {
            let r: Record = serde_json::from_slice(&line)
                .map_err(|e| format!("{}: last record is corrupt ({e})", path.display()))?;
            Anchor {
                seq: r.seq,
                hash: r.hash,
            }
        }
        None => read_anchor(dir)?,
    };
    let record = next_record(&last, entry);
    let mut line = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
    line.push(b'\n');
    system::with_signals_blocked(|| file.write_all(&line))
        .map_err(|e| format!("cannot append to {}: {e}", path.display()))?;
    if durable {
        file.sync_data()
            .map_err(|e| format!("cannot sync {}: {e}", path.display()))?;
    }
    Ok(record)
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

    #[test]
    fn last_line_is_found_backwards() {
        let dir = std::env::temp_dir().join(format!("jitsudo-journal-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("j");
        let big = "x".repeat(20_000);
        std::fs::write(&path, format!("first\n{big}\nlast-line\n")).unwrap();
        let f = File::open(&path).unwrap();
        assert_eq!(last_line(&f).unwrap().unwrap(), b"last-line");
        std::fs::write(&path, format!("first\n{big}\n")).unwrap();
        let f = File::open(&path).unwrap();
        assert_eq!(last_line(&f).unwrap().unwrap(), big.as_bytes());
        std::fs::write(&path, "only\n").unwrap();
        let f = File::open(&path).unwrap();
        assert_eq!(last_line(&f).unwrap().unwrap(), b"only");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
