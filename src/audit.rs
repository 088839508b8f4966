//! The audit channels of one invocation: the local hash-chained journal and syslog,
//! and the rules for what happens when a record cannot be written. A command runs only
//! if its journal record was appended, and, with `[log] require = true`, only if its
//! syslog line was delivered.
#![forbid(unsafe_code)]

use crate::config::{HostConfig, JournalConfig, LogConfig};
use crate::log::{Fields, Outcome, Record, SyslogSender};
use crate::store::journal::{Entry, RecordingRef};
use crate::store::Store;
use crate::system::Uid;

pub struct Audit {
    sender: Result<SyslogSender, String>,
    require: bool,
    journal: Option<JournalSink>,
    /// The session recording of this run, named in every journal record (see
    /// `set_recording`).
    recording: std::cell::RefCell<Option<RecordingRef>>,
}

struct JournalSink {
    store: Store,
    host: String,
    uid: Uid,
    config: JournalConfig,
}

/// Which channel failed.
#[derive(Debug, PartialEq, Eq)]
pub enum AuditError {
    Journal(String),
    Syslog(String),
}

impl Audit {
    pub fn connect(config: &LogConfig) -> Audit {
        let sender = SyslogSender::connect(&config.syslog_socket, config.facility, "jitsudo")
            .map_err(|e| format!("{}: {e}", config.syslog_socket.display()));
        Audit {
            sender,
            require: config.require,
            journal: None,
            recording: std::cell::RefCell::new(None),
        }
    }

    /// Also append every record to the host journal (if `[journal] enabled`) in `store`.
    pub fn with_journal(mut self, config: &HostConfig, caller: Uid, store: Store) -> Audit {
        if config.journal.enabled {
            self.journal = Some(JournalSink {
                store,
                host: config.host.clone(),
                uid: caller,
                config: config.journal,
            });
        }
        self
    }

    /// From now on every journal record of this run names its session recording (and,
    /// once set with a seal, the record written at its end seals it).
    pub fn set_recording(&self, recording: Option<RecordingRef>) {
        *self.recording.borrow_mut() = recording;
    }

    /// Whether a command may run when its line could not be logged.
    pub fn required(&self) -> bool {
        self.require
    }

    /// Append to the journal, then send to syslog (split into several messages if long).
    /// Both get the same escaped and bounded fields, computed once.
    pub fn send(&self, record: &Record) -> Result<(), AuditError> {
        let fields = record.fields();
        let mut repaired = None;
        if let Some(sink) = &self.journal {
            let appended = sink
                .store
                .append_journal(
                    Entry {
                        recording: self.recording.borrow().clone(),
                        ..entry(record, &fields, &sink.host, sink.uid)
                    },
                    sink.config.durable,
                )
                .map_err(|e| AuditError::Journal(e.to_string()))?;
            repaired = appended.repair.map(|r| r.entry.reason);
        }
        let sender = self
            .sender
            .as_ref()
            .map_err(|e| AuditError::Syslog(e.clone()))?;
        if let Some(what) = repaired {
            // The journal's own record of the repair is in the chain; this tells
            // whoever reads syslog, as an alert (something was killed mid-write).
            // Best effort: it is not this run's line.
            let event = Record {
                outcome: Outcome::Event(what),
                run_as: None,
                grant: None,
                command: Vec::new(),
                ..record.clone()
            };
            for message in event.messages() {
                let _ = sender.send(crate::log::Severity::Alert, &message);
            }
        }
        let severity = record.outcome.severity();
        for message in fields.messages(&record.outcome) {
            sender
                .send(severity, &message)
                .map_err(|e| AuditError::Syslog(format!("{}: {e}", sender.path().display())))?;
        }
        Ok(())
    }

    /// Log a refusal or an event. A delivery failure changes nothing, since nothing is
    /// about to run; it is not reported either, so a refusal stays one line on stderr.
    pub fn send_best_effort(&self, record: &Record) {
        if let Err(AuditError::Journal(_)) = self.send(record) {
            // The journal failed before syslog was tried; syslog may still work.
            self.send_syslog_only(record);
        }
    }

    fn send_syslog_only(&self, record: &Record) {
        if let Ok(sender) = &self.sender {
            for message in record.messages() {
                let _ = sender.send(record.outcome.severity(), &message);
            }
        }
    }
}

/// The journal's view of a record: the same escaped, bounded fields as the syslog line
/// (PWD with the journal's larger bound), plus time, host and the caller's uid.
fn entry(record: &Record, fields: &Fields, host: &str, uid: Uid) -> Entry {
    let outcome = match &record.outcome {
        Outcome::Allowed => "allowed",
        Outcome::Denied(_) => "denied",
        Outcome::Error(_) => "error",
        Outcome::Event(_) => "event",
    };
    Entry {
        time: crate::system::now_unix(),
        host: host.to_string(),
        user: fields.user.clone(),
        uid: uid.get(),
        outcome: outcome.to_string(),
        reason: fields.reason.clone(),
        tty: fields.tty.clone(),
        pwd: fields.pwd.clone(),
        run_as: fields.run_as.clone(),
        grant: fields.grant.clone(),
        command: fields.command.clone(),
        argv: fields.argv.clone(),
        recording: None,
    }
}
