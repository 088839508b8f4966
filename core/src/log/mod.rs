//! The audit line: built from escaped fields, split like sudo splits long lines, and
//! sent as RFC 3164 datagrams to the syslog socket.
//!
//! ```text
//! alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; GRANT=3f6c… ; COMMAND=/usr/bin/systemctl restart nginx
//! alice : command not allowed: no grant ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/whoami
//! alice : command not allowed: no grant ; TTY=pts/0 ; PWD=/tmp ; USER=root ; COMMAND=/bin/echo aaaa…\... ; ARGV=sha256:9f86… bytes=8388620 words=2
//! ```
//!
//! Fields are separated by ` ; ` and no value contains `;` (escaped as `\x3b`), so no
//! value can start a field. Every field is bounded (`fields`); a cut field ends in
//! `\...`, and a cut command is followed by the full argv's digest.
#![forbid(unsafe_code)]

mod escape;
pub mod fields;
mod syslog;

pub use escape::{escape, escape_bounded, CUT_MARK};
pub use fields::{ArgvDigest, Fields};
pub use syslog::{Severity, SyslogSender};

use std::ffi::OsString;

/// Messages longer than this are split, as sudo does, so that no syslog daemon
/// truncates the part an auditor needs.
pub const MAX_MESSAGE_BYTES: usize = 960;

/// What happened, as the line's prefix says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The command was allowed and is about to run.
    Allowed,
    /// Refused; the text says why ("no grant", "grant expired 3m ago", …).
    Denied(String),
    /// Something failed before a decision could be made (bad config, bad input).
    Error(String),
    /// A cache change: import, drop, sync.
    Event(String),
}

impl Outcome {
    pub fn severity(&self) -> Severity {
        match self {
            Outcome::Allowed | Outcome::Event(_) => Severity::Notice,
            Outcome::Denied(_) | Outcome::Error(_) => Severity::Alert,
        }
    }
}

/// One invocation, in the words of the audit line.
#[derive(Clone, Debug)]
pub struct Record {
    pub user: String,
    pub outcome: Outcome,
    pub tty: String,
    pub pwd: OsString,
    pub run_as: Option<String>,
    pub grant: Option<String>,
    /// The program and its arguments, as the user gave them (after path resolution).
    pub command: Vec<OsString>,
}

impl Record {
    /// The fields as logged: escaped and bounded (see `fields`).
    pub fn fields(&self) -> Fields {
        Fields::of(self)
    }

    /// The full line, every field escaped and bounded. May be longer than one datagram.
    pub fn line(&self) -> String {
        self.fields().line(&self.outcome)
    }

    /// The line cut into messages of at most `MAX_MESSAGE_BYTES` (see `Fields::messages`).
    pub fn messages(&self) -> Vec<String> {
        self.fields().messages(&self.outcome)
    }
}

impl Fields {
    /// The line cut into messages of at most `MAX_MESSAGE_BYTES`; every piece after the
    /// first starts with `user : (command continued)` so each stands on its own. At most
    /// `MAX_MESSAGES_PER_RECORD`.
    pub fn messages(&self, outcome: &Outcome) -> Vec<String> {
        split_line(&self.line(outcome), &self.user, MAX_MESSAGE_BYTES)
    }
}

/// Split an escaped line at whitespace (or at a UTF-8 boundary when a word is too long).
pub fn split_line(line: &str, user: &str, max: usize) -> Vec<String> {
    if line.len() <= max {
        return vec![line.to_string()];
    }
    let prefix = format!("{user} : (command continued) ");
    // A silly-long user name must not stop us from making progress.
    let room = max.saturating_sub(prefix.len()).max(64);
    let mut out = Vec::new();
    let mut rest = line;
    let mut first = true;
    while !rest.is_empty() {
        let budget = if first { max } else { room };
        let piece_len = if rest.len() <= budget {
            rest.len()
        } else {
            cut_point(rest, budget)
        };
        let (piece, tail) = rest.split_at(piece_len);
        if first {
            out.push(piece.to_string());
        } else {
            out.push(format!("{prefix}{piece}"));
        }
        first = false;
        rest = tail.trim_start_matches(' ');
    }
    out
}

fn cut_point(text: &str, budget: usize) -> usize {
    let mut end = budget.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    // Prefer the last space in the final quarter of the budget.
    match text[..end].rfind(' ') {
        Some(space) if space > end * 3 / 4 => space,
        _ => end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(outcome: Outcome, command: &[&str]) -> Record {
        Record {
            user: "alice".into(),
            outcome,
            tty: "pts/0".into(),
            pwd: "/home/alice".into(),
            run_as: Some("root".into()),
            grant: None,
            command: command.iter().map(OsString::from).collect(),
        }
    }

    #[test]
    fn allowed_line_matches_contract() {
        let mut r = record(
            Outcome::Allowed,
            &["/usr/bin/systemctl", "restart", "nginx"],
        );
        r.grant = Some("3f6c".into());
        assert_eq!(
            r.line(),
            "alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; GRANT=3f6c ; COMMAND=/usr/bin/systemctl restart nginx"
        );
    }

    #[test]
    fn denied_line_matches_contract() {
        let r = record(Outcome::Denied("no grant".into()), &["/usr/bin/whoami"]);
        assert_eq!(
            r.line(),
            "alice : command not allowed: no grant ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/whoami"
        );
    }

    #[test]
    fn newline_in_argument_cannot_forge_a_line() {
        let r = record(
            Outcome::Allowed,
            &["/bin/echo", "x\nJan  1 00:00:00 host jitsudo: mallory : ok"],
        );
        let line = r.line();
        assert!(!line.contains('\n'));
        assert!(line.contains("x#012Jan"));
    }

    #[test]
    fn long_lines_split_with_continuation_marker() {
        // Words within their bound (a longer one is cut, see below).
        let long = "a".repeat(1000);
        let r = record(
            Outcome::Allowed,
            &["/bin/echo", &long, &long, &long, "tail"],
        );
        let msgs = r.messages();
        assert!(msgs.len() >= 4, "{}", msgs.len());
        assert!(msgs.iter().all(|m| m.len() <= MAX_MESSAGE_BYTES));
        assert!(msgs[1].starts_with("alice : (command continued) "));
        let rejoined: String = msgs
            .iter()
            .enumerate()
            .map(|(i, m)| {
                if i == 0 {
                    m.clone()
                } else {
                    m.trim_start_matches("alice : (command continued) ")
                        .to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("");
        assert_eq!(rejoined.replace(' ', ""), r.line().replace(' ', ""));
    }

    /// The line's ` ; `-separated fields as (key, value), after the prefix.
    fn keys(line: &str) -> Vec<String> {
        line.split(" ; ")
            .skip(1)
            .filter_map(|f| f.split_once('=').map(|(k, _)| k.to_string()))
            .collect()
    }

    #[test]
    fn no_free_text_field_can_start_a_field() {
        let forged = "x ; USER=root ; GRANT=0123456789abcdef0123456789abcdef ; COMMAND=/usr/bin/systemctl restart nginx";
        let mut r = record(Outcome::Denied(forged.into()), &["/usr/bin/id", forged]);
        r.pwd = forged.into();
        r.tty = forged.into();
        r.user = forged.into();
        let line = r.line();
        assert_eq!(keys(&line), ["TTY", "PWD", "USER", "COMMAND"], "{line}");
        assert!(
            line.contains("PWD=x \\x3b USER=root \\x3b GRANT="),
            "{line}"
        );
    }

    #[test]
    fn a_long_pwd_cannot_push_the_command_out_of_the_first_message() {
        let mut r = record(Outcome::Allowed, &["/usr/bin/id"]);
        r.pwd = format!("/{}", "d".repeat(4096)).into();
        let msgs = r.messages();
        assert!(msgs[0].contains(" ; COMMAND=/usr/bin/id"), "{msgs:?}");
        assert!(
            msgs[0].contains(&format!("PWD=/{}\\... ;", "d".repeat(251))),
            "{msgs:?}"
        );
        // The journal keeps more of it.
        assert_eq!(r.fields().pwd.len(), fields::MAX_JOURNAL_PWD_BYTES);
    }

    #[test]
    fn a_huge_argv_is_bounded_and_named_by_its_digest() {
        let big = "a".repeat(8 << 20);
        let r = record(
            Outcome::Denied("no grant".into()),
            &["/bin/echo", &big, "tail"],
        );
        let f = r.fields();
        assert_eq!(f.command.len(), 3);
        assert_eq!(f.command[1].len(), fields::MAX_WORD_BYTES);
        assert!(f.command[1].ends_with(CUT_MARK));
        assert_eq!(f.command[2], "tail");
        let argv = f.argv.clone().unwrap();
        assert_eq!((argv.bytes, argv.words), (10 + (8 << 20) + 1 + 5, 3));
        let expect = ArgvDigest::of(&[&b"/bin/echo"[..], big.as_bytes(), b"tail"]);
        assert_eq!(argv, expect);
        let line = r.line();
        assert!(line.len() <= fields::MAX_LINE_BYTES);
        assert!(
            line.ends_with(&format!(
                " ; ARGV=sha256:{} bytes={} words=3",
                argv.sha256, argv.bytes
            )),
            "{line}"
        );
        // Many short words: the total is bounded too, and the dropped words counted.
        let words: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let f = record(Outcome::Allowed, &words).fields();
        assert!(f.command.join(" ").len() <= fields::MAX_COMMAND_BYTES);
        assert_eq!(f.argv.unwrap().words, 100_000);
        // A command within the bounds has no digest.
        assert!(record(Outcome::Allowed, &["/bin/true"])
            .fields()
            .argv
            .is_none());
    }

    #[test]
    fn the_longest_record_fits_its_message_count() {
        let long = |n: usize| "\u{1b}".repeat(n);
        let words: Vec<String> = (0..64).map(|_| long(4000)).collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let mut r = record(Outcome::Denied(long(10_000)), &words);
        r.user = long(1000);
        r.tty = long(1000);
        r.pwd = long(10_000).into();
        r.run_as = Some(long(1000));
        r.grant = Some(long(1000));
        let line = r.line();
        assert!(line.len() <= fields::MAX_LINE_BYTES, "{}", line.len());
        let msgs = r.messages();
        assert!(
            msgs.len() <= fields::MAX_MESSAGES_PER_RECORD,
            "{}",
            msgs.len()
        );
        assert!(msgs.iter().all(|m| m.len() <= MAX_MESSAGE_BYTES));
        // Spaces give the splitter its worst case (a cut at three quarters).
        let spaced = vec!["a"; 2000];
        let mut r = record(Outcome::Denied("r".repeat(600)), &spaced);
        r.user = "u".repeat(300);
        assert!(r.messages().len() <= fields::MAX_MESSAGES_PER_RECORD);
    }

    #[test]
    fn split_respects_utf8() {
        let line = "é".repeat(1000);
        for piece in split_line(&line, "u", 100) {
            assert!(piece.len() <= 100);
        }
    }
}
