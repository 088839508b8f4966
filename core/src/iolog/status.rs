//! A recording held against what the journal says of it: intact, still being written,
//! cut short (its supervisor was killed), altered, or gone.
#![forbid(unsafe_code)]

use std::fmt;
use std::fs::File;
use std::path::Path;
use std::time::Duration;

use super::chain;
use super::RecordingId;
use crate::store::journal::RecordingSeal;

#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    /// Its chain verifies and ends at the journal's seal.
    Intact { chunks: u64 },
    /// Not sealed yet and its writer still holds it: a run still going.
    InProgress { chunks: u64 },
    /// Not sealed, and nobody is writing it: the supervisor was killed. What was
    /// written up to the last chain line is intact and readable. `recorded`: the journal
    /// says so (`jitsudo --sync` found it cut and recorded the chunk it ends at), and
    /// the chain still ends there.
    Cut {
        chunks: u64,
        unsealed_bytes: u64,
        recorded: bool,
    },
    /// Its files do not match its chain, or its chain does not match the seal.
    Altered(String),
    /// The journal names it, but its directory is gone.
    Missing,
}

impl Status {
    /// Whether `journal verify` should fail for it. A cut the journal records is not:
    /// the recording is what the journal says it is (the cut itself was logged when it
    /// was found, to syslog as an alert and to the journal).
    pub fn is_problem(&self) -> bool {
        !matches!(
            self,
            Status::Intact { .. } | Status::InProgress { .. } | Status::Cut { recorded: true, .. }
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Intact { chunks } => write!(f, "intact ({chunks} chunk(s))"),
            Status::InProgress { chunks } => {
                write!(f, "still being recorded ({chunks} chunk(s) so far)")
            }
            Status::Cut {
                chunks,
                unsealed_bytes,
                recorded: false,
            } => write!(
                f,
                "cut: never sealed and no longer written (its supervisor was killed); \
                 {chunks} chunk(s) intact, {unsealed_bytes} byte(s) after them unchecked \
                 (jitsudo --sync records the cut in the journal)"
            ),
            Status::Cut {
                chunks,
                unsealed_bytes,
                recorded: true,
            } => write!(
                f,
                "cut, as the journal records: its writer was gone before it was sealed; \
                 {chunks} chunk(s) intact, {unsealed_bytes} byte(s) after them unchecked"
            ),
            Status::Altered(why) => write!(f, "ALTERED: {why}"),
            Status::Missing => f.write_str("MISSING: the journal names it, its directory is gone"),
        }
    }
}

/// Check recording `id` under `base` against `seal` (None: the journal has no seal yet).
pub fn check(base: &Path, id: &RecordingId, seal: Option<&RecordingSeal>) -> Status {
    let dir = base.join(id.relative_path());
    if !dir.is_dir() {
        return Status::Missing;
    }
    let verified = match chain::verify(&dir) {
        Ok(v) => v,
        Err(e) => return Status::Altered(e.to_string()),
    };
    if verified.id != id.as_str() {
        return Status::Altered(format!(
            "{} holds the chain of recording {}",
            dir.display(),
            verified.id
        ));
    }
    match seal {
        Some(seal) => {
            if chain::hex(&verified.hash) == seal.sha256 && verified.chunks == seal.chunks {
                if verified.unsealed_bytes > 0 {
                    return Status::Altered(format!(
                        "{} byte(s) were added after it was sealed",
                        verified.unsealed_bytes
                    ));
                }
                Status::Intact {
                    chunks: verified.chunks,
                }
            } else {
                Status::Altered(format!(
                    "its chain ends at chunk {} ({}), the journal sealed chunk {} ({})",
                    verified.chunks,
                    chain::hex(&verified.hash),
                    seal.chunks,
                    seal.sha256
                ))
            }
        }
        None if still_written(&dir) => Status::InProgress {
            chunks: verified.chunks,
        },
        None => Status::Cut {
            chunks: verified.chunks,
            unsealed_bytes: verified.unsealed_bytes,
            recorded: false,
        },
    }
}

/// Check recording `id` under `base` against the journal's record that it was cut at
/// `last` (the last chunk that verified when `jitsudo --sync` found it): its chain must
/// still end exactly there. Bytes after that chunk were never covered by the chain.
pub fn check_cut(base: &Path, id: &RecordingId, last: &RecordingSeal) -> Status {
    let dir = base.join(id.relative_path());
    if !dir.is_dir() {
        return Status::Missing;
    }
    match chain::verify(&dir) {
        Err(e) => Status::Altered(e.to_string()),
        Ok(v) if v.id != id.as_str() => Status::Altered(format!(
            "{} holds the chain of recording {}",
            dir.display(),
            v.id
        )),
        Ok(v) if v.chunks == last.chunks && chain::hex(&v.hash) == last.sha256 => Status::Cut {
            chunks: v.chunks,
            unsealed_bytes: v.unsealed_bytes,
            recorded: true,
        },
        Ok(v) => Status::Altered(format!(
            "its chain ends at chunk {} ({}), the journal recorded it cut at chunk {} ({})",
            v.chunks,
            chain::hex(&v.hash),
            last.chunks,
            last.sha256
        )),
    }
}

/// Whether a writer still holds the recording in `dir`: the writer holds its chain file
/// locked for as long as it lives, so a lock that can be taken means the writer is gone.
pub fn still_written(dir: &Path) -> bool {
    match File::open(dir.join(chain::CHAIN_FILE)) {
        Ok(f) => !crate::system::lock_exclusive_within(&f, Duration::ZERO).unwrap_or(false),
        Err(_) => false,
    }
}

/// The chain file of the recording in `dir`, locked, if no writer holds it any more
/// (`None` while one does). Kept open, it keeps the lock, so nothing can start writing
/// the recording again while it is being marked cut.
pub fn abandoned(dir: &Path) -> std::io::Result<Option<File>> {
    let f = File::open(dir.join(chain::CHAIN_FILE))?;
    Ok(crate::system::lock_exclusive_within(&f, Duration::ZERO)?.then_some(f))
}
