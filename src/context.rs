//! What every mode of the setuid binary works with: the `Context` main builds before any
//! decision, and `Refused`, the logged refusal each mode ends with on failure. Its own
//! module so that the modes (the run pipeline, re-authentication, --import, --request …)
//! depend on it, not on each other.
#![forbid(unsafe_code)]

use std::ffi::OsString;

use crate::audit::Audit;
use crate::caller::Caller;
use crate::config::HostConfig;
use crate::log::{Outcome, Record};
use crate::store::Store;
use crate::system::SavedLimits;

/// What main has set up before any decision: config, identity, log, state, and the
/// caller's process settings to restore for the command.
pub struct Context {
    pub config: HostConfig,
    pub caller: Caller,
    pub audit: Audit,
    pub store: Store,
    pub limits: SavedLimits,
    pub umask: u32,
}

/// A refusal: already logged; `message` is the one line for stderr.
#[derive(Debug)]
pub struct Refused {
    pub message: String,
}

impl Context {
    /// A log record of the caller (name, terminal, directory) for the modes that do not
    /// run a command (--import, --list, --drop, --request, --sync, --enroll).
    pub fn record(
        &self,
        outcome: Outcome,
        grant: Option<String>,
        command: Vec<OsString>,
    ) -> Record {
        Record {
            user: self.caller.user.name.clone(),
            outcome,
            tty: self.caller.tty.clone(),
            pwd: self.caller.cwd.clone(),
            run_as: None,
            grant,
            command,
        }
    }

    /// Log that a mode (`what`, e.g. "import") failed, and refuse with `message`.
    pub fn refuse(&self, what: &str, message: String) -> Refused {
        self.audit.send_best_effort(&self.record(
            Outcome::Error(format!("{what}: {message}")),
            None,
            vec![],
        ));
        Refused { message }
    }
}
