//! The audit channel of one invocation: a syslog connection made once, and the rule
//! (`[log] require`) for what happens when a line cannot be delivered.
#![forbid(unsafe_code)]

use crate::config::LogConfig;
use crate::log::{Record, SyslogSender};

pub struct Audit {
    sender: Result<SyslogSender, String>,
    require: bool,
}

impl Audit {
    pub fn connect(config: &LogConfig) -> Audit {
        let sender = SyslogSender::connect(&config.syslog_socket, config.facility, "jitsudo")
            .map_err(|e| format!("{}: {e}", config.syslog_socket.display()));
        Audit {
            sender,
            require: config.require,
        }
    }

    /// Whether a command may run when its line could not be logged.
    pub fn required(&self) -> bool {
        self.require
    }

    /// Send a record (split into several messages if long). The error says which socket
    /// failed and how.
    pub fn send(&self, record: &Record) -> Result<(), String> {
        let sender = self.sender.as_ref().map_err(|e| e.clone())?;
        let severity = record.outcome.severity();
        for message in record.messages() {
            sender
                .send(severity, &message)
                .map_err(|e| format!("{}: {e}", sender.path().display()))?;
        }
        Ok(())
    }

    /// Log a refusal or an event. A delivery failure changes nothing, since nothing is
    /// about to run; it is not reported either, so a refusal stays one line on stderr.
    pub fn send_best_effort(&self, record: &Record) {
        let _ = self.send(record);
    }
}
