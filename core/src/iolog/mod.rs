//! Session recordings, in sudo's I/O log format, so that Debian's own `sudoreplay`
//! replays them: `sudoreplay -d /var/log/jitsudo-io 00000A`.
//!
//! A recording is a directory `/var/log/jitsudo-io/XX/XX/XX` named by a six-character
//! base-36 sequence number, exactly as sudo names its own. It holds sudo's files:
//! - `log.json` and `log`: who ran what, where, on which terminal and at what size;
//! - `timing`: one line per event, `TYPE SECONDS.NANOSECONDS BYTES` (or `5 DELAY LINES
//!   COLS` for a window-size change), the delay counted from the previous event;
//! - `ttyout`, `ttyin`, `stdout`, `stderr`, `stdin`: the bytes of each stream, in order.
//!
//! and one of jitsudo's, which sudo's tools ignore:
//! - `chain`: the hash chain that makes the recording tamper-evident (see [`chain`]).
//!
//! The data files are written as the bytes pass, so a supervisor killed with SIGKILL
//! leaves everything it wrote readable; the chain covers everything up to its last
//! line, and the journal holds the final hash once the run has ended. While a
//! recording is being written its `timing` file is writable by its owner; it is made
//! read-only when the run ends, which is how `sudoreplay` tells a finished session from
//! one in progress.
#![forbid(unsafe_code)]

pub mod chain;
pub mod reader;
pub mod status;
pub mod writer;

use std::fs;
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where recordings live (contract): root-owned, 0700.
pub const IO_LOG_DIR: &str = "/var/log/jitsudo-io";

/// The streams sudo records, with its event numbers (`IO_EVENT_*` in sudo_iolog.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
    TtyIn = 3,
    TtyOut = 4,
}

impl Stream {
    pub const ALL: [Stream; 5] = [
        Stream::Stdin,
        Stream::Stdout,
        Stream::Stderr,
        Stream::TtyIn,
        Stream::TtyOut,
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            Stream::Stdin => "stdin",
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::TtyIn => "ttyin",
            Stream::TtyOut => "ttyout",
        }
    }

    /// Input holds what was typed, passwords included.
    pub fn is_input(self) -> bool {
        matches!(self, Stream::Stdin | Stream::TtyIn)
    }

    fn from_event(n: u32) -> Option<Stream> {
        Stream::ALL.into_iter().find(|s| *s as u32 == n)
    }
}

/// sudo's event number for a window-size change.
pub const EVENT_WINSIZE: u32 = 5;

/// What `log` and `log.json` say about the run.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    /// Seconds and nanoseconds since the epoch when the run started.
    pub started: (i64, u32),
    pub user: String,
    pub host: String,
    pub cwd: String,
    pub run_user: String,
    pub run_uid: u32,
    pub run_group: String,
    pub run_gid: u32,
    /// The caller's terminal (`/dev/pts/3`), or "unknown" without one.
    pub tty: String,
    pub lines: u16,
    pub columns: u16,
    /// The program's resolved path, then its argv (argv[0] first).
    pub command: String,
    pub argv: Vec<String>,
    /// The grant the run was admitted under. sudo's `log.json` has no field for it, so
    /// the chain's first line carries it.
    pub grant: String,
}

/// A recording's id: sudo's six base-36 digits, and its directory below the base.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingId(String);

impl RecordingId {
    const DIGITS: &'static [u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

    pub fn from_number(mut n: u64) -> Option<RecordingId> {
        if n >= 36u64.pow(6) {
            return None;
        }
        let mut id = [b'0'; 6];
        for slot in id.iter_mut().rev() {
            *slot = Self::DIGITS[(n % 36) as usize];
            n /= 36;
        }
        Some(RecordingId(String::from_utf8(id.to_vec()).ok()?))
    }

    /// Parse an id as a user types it (`00000A`, or sudo's path form `00/00/0A`).
    pub fn parse(text: &str) -> Option<RecordingId> {
        let flat: String = text.chars().filter(|c| *c != '/').collect();
        let ok = flat.len() == 6
            && flat.bytes().all(|b| Self::DIGITS.contains(&b))
            && (text.len() == 6
                || text.len() == 8 && text.as_bytes()[2] == b'/' && text.as_bytes()[5] == b'/');
        ok.then_some(RecordingId(flat))
    }

    pub fn number(&self) -> u64 {
        self.0.bytes().fold(0, |n, b| {
            n * 36 + Self::DIGITS.iter().position(|d| *d == b).unwrap_or(0) as u64
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `XX/XX/XX`, relative to the base directory.
    pub fn relative_path(&self) -> PathBuf {
        let s = &self.0;
        PathBuf::from(format!("{}/{}/{}", &s[0..2], &s[2..4], &s[4..6]))
    }
}

impl std::fmt::Display for RecordingId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The base directory, checked: a real directory (not a symlink), owned by root, with no
/// permission for group or others. Anything else is refused, never repaired silently,
/// except that a missing directory is created 0700.
pub fn open_base(base: &Path) -> io::Result<PathBuf> {
    match fs::symlink_metadata(base) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new().mode(0o700).create(base)?;
        }
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    let meta = fs::symlink_metadata(base)?;
    if !meta.file_type().is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a directory (a symlink or a file is refused)",
            base.display()
        )));
    }
    if meta.uid() != 0 || meta.mode() & 0o077 != 0 {
        return Err(io::Error::other(format!(
            "{} must be owned by root with mode 0700 (it is uid {} mode {:o})",
            base.display(),
            meta.uid(),
            meta.mode() & 0o7777
        )));
    }
    Ok(base.to_path_buf())
}

/// Take the next id from `BASE/seq` under an exclusive lock, as sudo does, and create
/// its directory (0700, and 0700 for the two levels above it).
pub fn allocate(base: &Path) -> io::Result<(RecordingId, PathBuf)> {
    let seq_path = base.join("seq");
    let mut seq = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&seq_path)?;
    crate::system::lock_exclusive(&seq)?;
    let mut text = String::new();
    seq.read_to_string(&mut text)?;
    let last = if text.trim().is_empty() {
        0
    } else {
        RecordingId::parse(text.trim())
            .ok_or_else(|| {
                io::Error::other(format!(
                    "{} holds {:?}, not a six-character id",
                    seq_path.display(),
                    text.trim()
                ))
            })?
            .number()
    };
    // Skip ids whose directory exists (a sequence file restored from a backup, say):
    // a recording is never written into another one's directory.
    let mut n = last + 1;
    loop {
        let id = RecordingId::from_number(n)
            .ok_or_else(|| io::Error::other("the recording sequence is exhausted"))?;
        let dir = base.join(id.relative_path());
        if let Some(parent) = dir.parent() {
            fs::DirBuilder::new()
                .mode(0o700)
                .recursive(true)
                .create(parent)?;
        }
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
                seq.set_len(0)?;
                seq.rewind()?;
                seq.write_all(format!("{id}\n").as_bytes())?;
                return Ok((id, dir));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_six_base36_digits_like_sudos() {
        assert_eq!(RecordingId::from_number(1).unwrap().as_str(), "000001");
        assert_eq!(RecordingId::from_number(36).unwrap().as_str(), "000010");
        assert_eq!(
            RecordingId::from_number(36u64.pow(6) - 1).unwrap().as_str(),
            "ZZZZZZ"
        );
        assert!(RecordingId::from_number(36u64.pow(6)).is_none());
        let id = RecordingId::parse("00/01/0A").unwrap();
        assert_eq!(id.as_str(), "00010A");
        assert_eq!(id.relative_path(), PathBuf::from("00/01/0A"));
        assert_eq!(RecordingId::from_number(id.number()).unwrap(), id);
        for bad in ["", "0001", "00010a", "../../x", "0000001", "00/010A"] {
            assert!(RecordingId::parse(bad).is_none(), "{bad}");
        }
    }
}
