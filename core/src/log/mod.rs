//! The audit line: built from escaped fields, split like sudo splits long lines, and
//! sent as RFC 3164 datagrams to the syslog socket.
//!
//! ```text
//! alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; GRANT=3f6c… ; COMMAND=/usr/bin/systemctl restart nginx
//! alice : command not allowed: no grant ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/whoami
//! ```
#![forbid(unsafe_code)]

mod escape;
mod syslog;

pub use escape::escape;
pub use syslog::{Severity, SyslogSender};

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

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
    /// The full line, every field escaped. May be longer than one datagram.
    pub fn line(&self) -> String {
        let mut out = format!("{} : ", escape(self.user.as_bytes()));
        match &self.outcome {
            Outcome::Allowed => {}
            Outcome::Denied(why) => out.push_str(&format!(
                "command not allowed: {} ; ",
                escape(why.as_bytes())
            )),
            Outcome::Error(why) => out.push_str(&format!("error: {} ; ", escape(why.as_bytes()))),
            Outcome::Event(what) => out.push_str(&format!("{} ; ", escape(what.as_bytes()))),
        }
        out.push_str(&format!(
            "TTY={} ; PWD={}",
            escape(self.tty.as_bytes()),
            escape(self.pwd.as_bytes())
        ));
        if let Some(user) = &self.run_as {
            out.push_str(&format!(" ; USER={}", escape(user.as_bytes())));
        }
        if let Some(grant) = &self.grant {
            out.push_str(&format!(" ; GRANT={}", escape(grant.as_bytes())));
        }
        if !self.command.is_empty() {
            out.push_str(" ; COMMAND=");
            for (i, word) in self.command.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&escape(word.as_bytes()));
            }
        }
        out
    }

    /// The line cut into messages of at most `MAX_MESSAGE_BYTES`; every piece after the
    /// first starts with `user : (command continued)` so each stands on its own.
    pub fn messages(&self) -> Vec<String> {
        split_line(
            &self.line(),
            &escape(self.user.as_bytes()),
            MAX_MESSAGE_BYTES,
        )
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
        let long = "a".repeat(3000);
        let r = record(Outcome::Allowed, &["/bin/echo", &long, "tail"]);
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

    #[test]
    fn split_respects_utf8() {
        let line = "é".repeat(1000);
        for piece in split_line(&line, "u", 100) {
            assert!(piece.len() <= 100);
        }
    }
}
