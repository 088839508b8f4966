//! Command line of the setuid `jitsudo`. Shared with the man page and completion
//! generators, so `--help` and jitsudo(8) cannot drift apart.
#![forbid(unsafe_code)]

use std::ffi::OsString;

use clap::{ArgAction, ArgGroup, Parser};

/// `jitsudo --version`: the version and what this build contains and expects.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\n",
    "grants:     PASETO v4.public (Ed25519), keys pinned in /etc/jitsudo/jitsudo.toml\n",
    "state:      /var/lib/jitsudo (grant cache, use counters, clock mark, revocations, journal)\n",
    "audit:      syslog (RFC 3164 datagrams) + hash-chained local journal\n",
    "service:    approval-service client (--request, --sync, --enroll; HTTPS in the unprivileged /usr/libexec/jitsudo/jitsudo-net)\n",
    "exec model: in place (no monitor process); environment reset, secure_path only",
);

#[derive(Parser, Debug)]
#[command(
    name = "jitsudo",
    version,
    long_version = LONG_VERSION,
    about = "Run a command as root under a signed, time-bound grant",
    long_about = "Run a command as another user (root by default) only if a cached grant \
                  allows exactly that command, for you, on this host, right now. Grants \
                  are signed by the approval service (or minted offline by an admin), \
                  verified against the keys pinned in /etc/jitsudo/jitsudo.toml, and \
                  every invocation is logged to syslog.",
    after_help = "Examples:\n  \
        jitsudo systemctl restart nginx        run under a cached grant\n  \
        jitsudo -u postgres psql               run as another user\n  \
        jitsudo --import grant.txt             cache a grant token you were given\n  \
        jitsudo -l                             list your usable grants\n  \
        jitsudo -e /etc/nginx/nginx.conf       edit a file under an edit grant\n  \
        jitsudo --request --reason \"INC-42\" -- systemctl restart nginx\n  \
        jitsudo --request -e /etc/nginx/nginx.conf --reason \"INC-43\"\n\n\
        Exit status: the command's own status when it ran; 1 when jitsudo refused or failed.\n\
        See jitsudo(8) and jitsudo.toml(5).",
    disable_help_subcommand = true,
    trailing_var_arg = true,
    group(ArgGroup::new("what").args(["command", "edit"]).multiple(false)),
    group(ArgGroup::new("mode").args(["list", "import", "drop", "reset_timestamp", "sync", "enroll"]).multiple(false)),
    group(ArgGroup::new("asks").args(["request", "extend"]).multiple(false))
)]
pub struct Cli {
    /// Run the command as USER (a name, or #UID) instead of root; a user other than root and you gets a new session on a new pty, so the command cannot reach your terminal
    #[arg(
        short = 'u',
        long = "user",
        value_name = "USER",
        allow_hyphen_values = true
    )]
    pub user: Option<String>,

    /// Edit FILEs under an edit grant (sudoedit): each is copied for you, your editor ($SUDO_EDITOR, $VISUAL, $EDITOR, else vi) runs as you, and root writes back only what changed. With --request: ask for an edit grant for the FILEs
    #[arg(
        short = 'e',
        long = "edit",
        value_name = "FILE",
        num_args = 1..,
        conflicts_with_all = ["command", "user", "list", "import", "drop", "reset_timestamp", "sync", "enroll"]
    )]
    pub edit: Vec<OsString>,

    /// List your grants usable on this host: id, commands, run-as, expiry, uses left
    #[arg(short = 'l', long = "list", action = ArgAction::SetTrue)]
    pub list: bool,

    /// Verify a grant token (from FILE, or - for stdin) and cache it; only grants for you on this host are accepted
    #[arg(long = "import", value_name = "FILE|-")]
    pub import: Option<OsString>,

    /// Forget your cached grants: all of them, or the one whose id starts with GRANT
    #[arg(long = "drop", value_name = "GRANT", num_args = 0..=1, default_missing_value = "")]
    pub drop: Option<String>,

    /// Reset the re-authentication timestamp (as sudo -k); grants stay cached
    #[arg(short = 'k', long = "reset-timestamp", action = ArgAction::SetTrue)]
    pub reset_timestamp: bool,

    /// Ask the approval service for a grant to run COMMAND (needs service = in jitsudo.toml)
    #[arg(long = "request", action = ArgAction::SetTrue, requires = "reason", requires = "what")]
    pub request: bool,

    /// With --request: ask for a grant that can be used only once
    #[arg(long = "once", action = ArgAction::SetTrue, requires = "request")]
    pub once: bool,

    /// With --request or --extend: how long the grant should last, e.g. 15m or 2h
    #[arg(long = "for", value_name = "DURATION", requires = "asks")]
    pub duration: Option<String>,

    /// With --request or --extend: why you need it (recorded in the grant and the audit trail)
    #[arg(long = "reason", value_name = "TEXT", requires = "asks")]
    pub reason: Option<String>,

    /// With --request or --extend: the ticket id (INC-42) a policy rule may require; recorded in the grant
    #[arg(long = "ticket", value_name = "ID", requires = "asks")]
    pub ticket: Option<String>,

    /// Ask the approval service to extend your grant GRANT (its id, or a unique prefix): approved, a new grant replaces it, and a command running under it continues under the new one
    #[arg(
        long = "extend",
        value_name = "GRANT",
        requires = "reason",
        conflicts_with_all = ["command", "edit", "user", "once", "run", "mode"]
    )]
    pub extend: Option<String>,

    /// With --request or --extend: return at once instead of waiting for approval
    #[arg(long = "no-wait", action = ArgAction::SetTrue, requires = "asks")]
    pub no_wait: bool,

    /// With --request: run the command as soon as the grant arrives
    #[arg(long = "run", action = ArgAction::SetTrue, requires = "request", conflicts_with = "no_wait")]
    pub run: bool,

    /// Pull grants and the revocation list for this host from the service (root; run by a timer)
    #[arg(long = "sync", action = ArgAction::SetTrue)]
    pub sync: bool,

    /// Create this host's identity key if missing and print how to register it (root)
    #[arg(long = "enroll", action = ArgAction::SetTrue)]
    pub enroll: bool,

    /// The command to run, and its arguments
    #[arg(
        value_name = "COMMAND",
        allow_hyphen_values = true,
        conflicts_with = "mode"
    )]
    pub command: Vec<OsString>,
}

/// What the invocation asks for.
#[derive(Debug)]
pub enum Mode {
    Run,
    Edit,
    List,
    Import(OsString),
    Drop(Option<String>),
    ResetTimestamp,
    Request,
    Extend(String),
    Sync,
    Enroll,
}

impl Cli {
    /// The common case, `jitsudo COMMAND [ARG]...` or `jitsudo -- COMMAND [ARG]...`,
    /// read without building the full parser (a tenth of a run's CPU time). Anything
    /// else, any option included, returns `None` and goes through clap.
    pub fn plain_command(args: &[OsString]) -> Option<Cli> {
        let rest = args.get(1..)?;
        let command = match rest.first()?.as_encoded_bytes() {
            b"--" => &rest[1..],
            first if !first.starts_with(b"-") => rest,
            _ => return None,
        };
        if command.is_empty() {
            return None;
        }
        Some(Cli {
            user: None,
            list: false,
            import: None,
            drop: None,
            reset_timestamp: false,
            edit: Vec::new(),
            request: false,
            once: false,
            duration: None,
            reason: None,
            ticket: None,
            extend: None,
            no_wait: false,
            run: false,
            sync: false,
            enroll: false,
            command: command.to_vec(),
        })
    }

    pub fn mode(&self) -> Result<Mode, String> {
        Ok(if self.list {
            Mode::List
        } else if let Some(file) = &self.import {
            Mode::Import(file.clone())
        } else if let Some(id) = &self.drop {
            Mode::Drop(Some(id.clone()).filter(|s| !s.is_empty()))
        } else if self.reset_timestamp {
            Mode::ResetTimestamp
        } else if self.sync {
            Mode::Sync
        } else if self.enroll {
            Mode::Enroll
        } else if self.request {
            Mode::Request
        } else if let Some(grant) = &self.extend {
            Mode::Extend(grant.clone())
        } else if !self.edit.is_empty() {
            Mode::Edit
        } else if !self.command.is_empty() {
            Mode::Run
        } else {
            return Err("no command given; usage: jitsudo [-u USER] [--] COMMAND [ARG]... (see jitsudo --help)".into());
        })
    }
}

/// The whole command line, for xtask (which compiles this file) to render.
#[allow(dead_code)]
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(words: &[&str]) -> Vec<OsString> {
        std::iter::once("jitsudo")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// The shortcut must mean exactly what clap would make of the same words.
    #[test]
    fn plain_command_agrees_with_clap() {
        for words in [
            &["id"][..],
            &["systemctl", "restart", "nginx"],
            &["ls", "-l", "--all"],
            &["--", "id", "-u"],
            &["--", "-weird"],
        ] {
            let fast = Cli::plain_command(&args(words)).expect("shortcut applies");
            let full = Cli::try_parse_from(args(words)).unwrap();
            assert_eq!(fast.command, full.command, "{words:?}");
            assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{words:?}");
        }
    }

    #[test]
    fn options_go_through_clap() {
        for words in [
            &[][..],
            &["-u", "bob", "id"],
            &["-l"],
            &["--"],
            &["--import", "-"],
            &["-"],
        ] {
            assert!(Cli::plain_command(&args(words)).is_none(), "{words:?}");
        }
    }

    #[test]
    fn edit_takes_files_up_to_the_next_option() {
        let cli = Cli::try_parse_from(args(&["-e", "/etc/hosts", "nginx.conf"])).unwrap();
        assert_eq!(cli.edit, ["/etc/hosts", "nginx.conf"]);
        assert!(cli.command.is_empty());
        assert!(matches!(cli.mode(), Ok(Mode::Edit)));

        let cli = Cli::try_parse_from(args(&[
            "--request",
            "-e",
            "/etc/hosts",
            "/etc/motd",
            "--reason",
            "INC-1",
        ]))
        .unwrap();
        assert_eq!(cli.edit, ["/etc/hosts", "/etc/motd"]);
        assert_eq!(cli.reason.as_deref(), Some("INC-1"));
        assert!(matches!(cli.mode(), Ok(Mode::Request)));
    }

    #[test]
    fn edit_needs_files_and_runs_as_nobody_else() {
        for words in [
            &["-e"][..],
            &["-u", "bob", "-e", "/etc/hosts"],
            &["-l", "-e", "/etc/hosts"],
        ] {
            assert!(Cli::try_parse_from(args(words)).is_err(), "{words:?}");
        }
        // A request needs a command or files.
        assert!(Cli::try_parse_from(args(&["--request", "--reason", "x"])).is_err());
    }

    #[test]
    fn tickets_ride_on_requests_and_extensions_name_only_a_grant() {
        let cli = Cli::try_parse_from(args(&[
            "--request",
            "--ticket",
            "INC-42",
            "--reason",
            "x",
            "--",
            "/usr/bin/id",
        ]))
        .unwrap();
        assert_eq!(cli.ticket.as_deref(), Some("INC-42"));
        let cli = Cli::try_parse_from(args(&[
            "--extend", "3f6c", "--for", "30m", "--reason", "more", "--ticket", "CHG-1",
        ]))
        .unwrap();
        assert!(matches!(cli.mode(), Ok(Mode::Extend(ref g)) if g == "3f6c"));
        for words in [
            &["--ticket", "INC-1", "/usr/bin/id"][..],
            &["--extend", "3f6c"],
            &["--extend", "3f6c", "--reason", "x", "--", "/usr/bin/id"],
            &["--extend", "3f6c", "--reason", "x", "-u", "bob"],
            &["--extend", "3f6c", "--reason", "x", "--once"],
            &["--extend", "3f6c", "--reason", "x", "-l"],
            &[
                "--extend",
                "3f6c",
                "--request",
                "--reason",
                "x",
                "/usr/bin/id",
            ],
        ] {
            assert!(Cli::try_parse_from(args(words)).is_err(), "{words:?}");
        }
    }
}
