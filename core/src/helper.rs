//! The protocol between the setuid `jitsudo` and its network helper
//! /usr/libexec/jitsudo/jitsudo-net, which does the HTTP(S) exchanges of `--request` and
//! `--sync` so that no HTTP or TLS code runs with privileges.
//!
//! The privileged process signs everything it sends with the host key, forks, drops the
//! child to the invoking user (for `--sync`, to `nobody`) and executes the helper there
//! with an empty environment, after the same trust checks as every file it reads. It
//! writes one [`Task`] as JSON on the helper's standard input and closes it; the helper
//! answers with [`ChildMsg`] JSON objects, one a line, on its standard output, and
//! writes progress for the user on standard error. Nothing the helper says is trusted:
//! grants and revocation lists are verified against the pinned keys, and a malformed
//! line is ignored, so a hostile helper, network or service can cause a refusal at most.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

use crate::wire::{RecordingAck, SyncResponse};

/// The helper's fixed path.
pub const NET_HELPER: &str = "/usr/libexec/jitsudo/jitsudo-net";

/// The most the helper reads on its standard input (a task with journal batches).
pub const MAX_TASK_BYTES: u64 = 256 << 20;

/// What the helper is asked to do: one exchange with the approval service, at the first
/// of `services` that answers (each checked again by the helper: https://, or http:// to
/// loopback only).
#[derive(Serialize, Deserialize, Debug)]
#[serde(tag = "task", rename_all = "snake_case", deny_unknown_fields)]
pub enum Task {
    /// `--request`: post the signed request, then poll until a decision (unless
    /// `no_wait`), reporting `Created` and then `Grant`, `Denied`, `Pending` or `Failed`.
    Request {
        services: Vec<String>,
        envelope: String,
        no_wait: bool,
    },
    /// `--sync`: post the signed sync request; reports `Sync` or `Failed`.
    Sync {
        services: Vec<String>,
        envelope: String,
    },
    /// `--sync`, journal upload: post each signed batch in order; reports
    /// `JournalStored` per batch, and `Failed` (then stops) at the first error.
    Journal {
        services: Vec<String>,
        envelopes: Vec<String>,
    },
    /// `--sync`, one recording's upload: post `status`, then each part the answer says
    /// the service does not hold yet, then `finish`; reports the last answer as
    /// `Recording`, or `Failed` (then stops) at the first error.
    Recording {
        services: Vec<String>,
        status: String,
        parts: Vec<RecordingPart>,
        finish: String,
    },
}

/// One signed part of a recording upload, and which bytes it carries (so the helper
/// can skip what the service holds without opening the envelope).
#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RecordingPart {
    pub file: String,
    pub end: u64,
    pub envelope: String,
}

/// What the network child reports to the privileged parent, one JSON object a line.
#[derive(Serialize, Deserialize, Debug)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ChildMsg {
    Created { id: String },
    Grant { id: String, token: String },
    Denied { id: String, message: String },
    Pending { id: String },
    Failed { message: String },
    Sync(Box<SyncResponse>),
    JournalStored { through: u64 },
    Recording { ack: RecordingAck },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_round_trips_and_refuses_unknown_fields() {
        let task = Task::Request {
            services: vec!["https://approvals.example".into()],
            envelope: "v4.public.x".into(),
            no_wait: true,
        };
        let text = serde_json::to_string(&task).unwrap();
        assert_eq!(
            text,
            r#"{"task":"request","services":["https://approvals.example"],"envelope":"v4.public.x","no_wait":true}"#
        );
        assert!(matches!(
            serde_json::from_str::<Task>(&text).unwrap(),
            Task::Request { no_wait: true, .. }
        ));
        assert!(serde_json::from_str::<Task>(
            r#"{"task":"sync","services":["x"],"envelope":"y","extra":1}"#
        )
        .is_err());
    }
}
