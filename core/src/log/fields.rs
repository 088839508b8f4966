//! The fields of one record as they are logged, escaped and cut to their bounds once,
//! for both the syslog line and the host journal entry.
//!
//! Every field a caller can make long is bounded, so one record is bounded: the journal
//! line, the time spent inside the journal's host-wide lock, the number of syslog
//! datagrams and the size of a journal upload all follow. When the command is cut, the
//! full argv's SHA-256, byte length and word count are logged with it, so the cut
//! record still names exactly what was asked for.
#![forbid(unsafe_code)]

use std::os::unix::ffi::OsStrExt;

use sha2::{Digest, Sha256};

use super::escape::{escape_bounded, CUT_MARK};
use super::{Outcome, Record};

/// User names (caller and target). Real names are at most 32 bytes; this only stops a
/// name from NSS from being unbounded.
pub const MAX_NAME_BYTES: usize = 256;
/// Grant ids are 32 hex digits.
pub const MAX_GRANT_BYTES: usize = 128;
/// Terminal names (`pts/12`, `/dev/ttyS0`).
pub const MAX_TTY_BYTES: usize = 64;
/// Why a run was refused or what an event was. Our own texts, but they quote paths and
/// user input.
pub const MAX_REASON_BYTES: usize = 512;
/// PWD in the syslog line: short enough that the fields before COMMAND fit the first
/// datagram (`MAX_MESSAGE_BYTES`) with typical names and reasons.
pub const MAX_LINE_PWD_BYTES: usize = 256;
/// PWD in the journal: PATH_MAX.
pub const MAX_JOURNAL_PWD_BYTES: usize = 4096;
/// One argument: long enough for any real option or path, short enough that one long
/// argument cannot hide the ones after it.
pub const MAX_WORD_BYTES: usize = 1024;
/// The whole command (words and the spaces between them), in the line and the journal.
/// A few KiB holds every command an auditor reads; beyond that the hash identifies it.
pub const MAX_COMMAND_BYTES: usize = 4096;

/// The whole line can be at most this long (every field at its bound, with the keys).
pub const MAX_LINE_BYTES: usize = MAX_NAME_BYTES
    + " : command not allowed: ".len()
    + MAX_REASON_BYTES
    + " ; TTY=".len()
    + MAX_TTY_BYTES
    + " ; PWD=".len()
    + MAX_LINE_PWD_BYTES
    + " ; USER=".len()
    + MAX_NAME_BYTES
    + " ; GRANT=".len()
    + MAX_GRANT_BYTES
    + " ; COMMAND=".len()
    + MAX_COMMAND_BYTES
    + " ; ARGV=sha256: bytes= words=".len()
    + 64
    + 2 * 20;

/// A record's syslog line is sent as at most this many datagrams (see the test that
/// builds the longest record).
pub const MAX_MESSAGES_PER_RECORD: usize = 12;

/// The full argv of a command that was cut: SHA-256 over every word followed by a NUL
/// byte (the strings execve is given; `printf '%s\0' "$@" | sha256sum`), the length of
/// those bytes and the number of words.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgvDigest {
    pub sha256: String,
    pub bytes: u64,
    pub words: u64,
}

impl ArgvDigest {
    pub fn of(argv: &[impl AsRef<[u8]>]) -> ArgvDigest {
        let mut h = Sha256::new();
        let mut bytes = 0u64;
        for word in argv {
            h.update(word.as_ref());
            h.update([0u8]);
            bytes += word.as_ref().len() as u64 + 1;
        }
        ArgvDigest {
            sha256: h.finalize().iter().map(|b| format!("{b:02x}")).collect(),
            bytes,
            words: argv.len() as u64,
        }
    }
}

/// A record's fields, escaped and bounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fields {
    pub user: String,
    /// The prefix's text: empty for an allowed run, else the reason or the event.
    pub reason: String,
    pub tty: String,
    /// PWD for the syslog line (`MAX_LINE_PWD_BYTES`).
    pub line_pwd: String,
    /// PWD for the journal (`MAX_JOURNAL_PWD_BYTES`).
    pub pwd: String,
    pub run_as: Option<String>,
    pub grant: Option<String>,
    /// The words kept: each at most `MAX_WORD_BYTES`, all together (with one space
    /// between words) at most `MAX_COMMAND_BYTES`.
    pub command: Vec<String>,
    /// Set when any word was cut or dropped.
    pub argv: Option<ArgvDigest>,
}

fn bounded(bytes: &[u8], max: usize) -> String {
    escape_bounded(bytes, max).0
}

/// The command's words within their bounds, and whether anything was cut or dropped.
fn bounded_command(argv: &[std::ffi::OsString]) -> (Vec<String>, bool) {
    let mut out: Vec<String> = Vec::new();
    // Bytes of the words joined with spaces: even empty words add up.
    let mut used = 0;
    let mut cut = false;
    for word in argv {
        let space = usize::from(!out.is_empty());
        let room = MAX_COMMAND_BYTES.saturating_sub(used + space);
        if room <= CUT_MARK.len() {
            // No room left for even a marked stub: the rest are dropped, and the
            // digest says how many there were.
            return (out, true);
        }
        let (text, was_cut) = escape_bounded(word.as_bytes(), MAX_WORD_BYTES.min(room));
        used += space + text.len();
        cut |= was_cut;
        out.push(text);
    }
    (out, cut)
}

impl Fields {
    pub fn of(record: &Record) -> Fields {
        let reason = match &record.outcome {
            Outcome::Allowed => String::new(),
            Outcome::Denied(why) | Outcome::Error(why) | Outcome::Event(why) => {
                bounded(why.as_bytes(), MAX_REASON_BYTES)
            }
        };
        let (command, cut) = bounded_command(&record.command);
        Fields {
            user: bounded(record.user.as_bytes(), MAX_NAME_BYTES),
            reason,
            tty: bounded(record.tty.as_bytes(), MAX_TTY_BYTES),
            line_pwd: bounded(record.pwd.as_bytes(), MAX_LINE_PWD_BYTES),
            pwd: bounded(record.pwd.as_bytes(), MAX_JOURNAL_PWD_BYTES),
            run_as: record
                .run_as
                .as_ref()
                .map(|u| bounded(u.as_bytes(), MAX_NAME_BYTES)),
            grant: record
                .grant
                .as_ref()
                .map(|g| bounded(g.as_bytes(), MAX_GRANT_BYTES)),
            argv: cut.then(|| {
                ArgvDigest::of(
                    &record
                        .command
                        .iter()
                        .map(|w| w.as_bytes())
                        .collect::<Vec<_>>(),
                )
            }),
            command,
        }
    }

    /// The syslog line, at most `MAX_LINE_BYTES`.
    pub fn line(&self, outcome: &Outcome) -> String {
        let mut out = format!("{} : ", self.user);
        match outcome {
            Outcome::Allowed => {}
            Outcome::Denied(_) => out.push_str(&format!("command not allowed: {} ; ", self.reason)),
            Outcome::Error(_) => out.push_str(&format!("error: {} ; ", self.reason)),
            Outcome::Event(_) => out.push_str(&format!("{} ; ", self.reason)),
        }
        out.push_str(&format!("TTY={} ; PWD={}", self.tty, self.line_pwd));
        if let Some(user) = &self.run_as {
            out.push_str(&format!(" ; USER={user}"));
        }
        if let Some(grant) = &self.grant {
            out.push_str(&format!(" ; GRANT={grant}"));
        }
        if !self.command.is_empty() {
            out.push_str(" ; COMMAND=");
            out.push_str(&self.command.join(" "));
        }
        if let Some(argv) = &self.argv {
            out.push_str(&format!(
                " ; ARGV=sha256:{} bytes={} words={}",
                argv.sha256, argv.bytes, argv.words
            ));
        }
        out
    }
}
