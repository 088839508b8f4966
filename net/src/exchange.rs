//! The exchanges themselves: what the helper does for each `Task`, reporting on `out`.
#![forbid(unsafe_code)]

use std::io::Write;
use std::time::{Duration, Instant};

use jitsudo_core::helper::{ChildMsg, RecordingPart, Task};

use crate::failover::Failover;
use crate::http::CallError;
use crate::wire::{self, RequestStatus, SyncResponse};

/// How long `--request` waits for approvers before leaving the request pending.
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);

/// Run one task; the exit status for the helper.
pub fn run(task: Task, out: &mut dyn Write) -> u8 {
    let code = match task {
        Task::Request {
            services,
            envelope,
            no_wait,
        } => network_request(&services, &envelope, no_wait, out),
        Task::Sync { services, envelope } => network_sync(&services, envelope, out),
        Task::Journal {
            services,
            envelopes,
        } => network_journal(&services, envelopes, out),
        Task::Recording {
            services,
            status,
            parts,
            finish,
        } => network_recording(&services, status, parts, finish, out),
    };
    u8::try_from(code).unwrap_or(1)
}

pub fn send(out: &mut dyn Write, msg: &ChildMsg) {
    let _ = writeln!(out, "{}", serde_json::to_string(msg).unwrap_or_default());
    let _ = out.flush();
}

/// Runs as the invoking user: send the request, report, and wait for a decision.
fn network_request(urls: &[String], envelope: &str, no_wait: bool, out: &mut dyn Write) -> i32 {
    let svc = match Failover::new(urls, None, Duration::from_secs(30)) {
        Ok(s) => s,
        Err(e) => {
            send(out, &ChildMsg::Failed { message: e });
            return 1;
        }
    };
    let signed = wire::Signed {
        envelope: envelope.to_string(),
    };
    let status: RequestStatus = match svc.call(|s| s.post(wire::PATH_REQUESTS, &signed, &[])) {
        Ok(s) => s,
        Err(e) => {
            send(
                out,
                &ChildMsg::Failed {
                    message: e.to_string(),
                },
            );
            return 1;
        }
    };
    send(
        out,
        &ChildMsg::Created {
            id: status.id.clone(),
        },
    );
    let poll_key = status.poll_key.clone().unwrap_or_default();
    let mut status = status;
    let started = Instant::now();
    let mut announced = false;
    let mut progress_shown = false;
    loop {
        match status.status.as_str() {
            "approved" => {
                if progress_shown {
                    eprintln!();
                }
                tell_decision(&status);
                match status.grant {
                    Some(token) => send(
                        out,
                        &ChildMsg::Grant {
                            id: status.id,
                            token,
                        },
                    ),
                    None => send(
                        out,
                        &ChildMsg::Failed {
                            message: format!(
                                "request {} approved but no grant came back",
                                status.id
                            ),
                        },
                    ),
                }
                return 0;
            }
            "denied" | "expired" => {
                if progress_shown {
                    eprintln!();
                }
                tell_decision(&status);
                send(
                    out,
                    &ChildMsg::Denied {
                        id: status.id,
                        message: status.message,
                    },
                );
                return 0;
            }
            _ => {}
        }
        if !announced {
            eprintln!("jitsudo: request {}: {}", status.id, status.message);
            announced = true;
        }
        if no_wait || started.elapsed() > MAX_WAIT {
            send(out, &ChildMsg::Pending { id: status.id });
            return 0;
        }
        let secs = started.elapsed().as_secs();
        eprint!(
            "\rjitsudo: waiting {}m{:02}s, approvals {}/{} (Ctrl-C leaves the request pending) ",
            secs / 60,
            secs % 60,
            status.approvals,
            status.approvals_needed
        );
        progress_shown = true;
        std::thread::sleep(if secs < 10 {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(2)
        });
        let path = format!("/v1/host/requests/{}", status.id);
        match svc.call(|s| {
            s.get::<RequestStatus>(
                &path,
                &[
                    (wire::POLL_KEY_HEADER, &poll_key),
                    (wire::POLL_DECISION_HEADER, "1"),
                ],
            )
        }) {
            Ok(s) => status = s,
            Err(CallError::Transport(_)) => continue,
            Err(e) => {
                eprintln!();
                send(
                    out,
                    &ChildMsg::Failed {
                        message: e.to_string(),
                    },
                );
                return 1;
            }
        }
    }
}

/// Runs as `nobody`: fetch this host's grants and the revocation list.
fn network_sync(urls: &[String], envelope: String, out: &mut dyn Write) -> i32 {
    let svc = match Failover::new(urls, None, Duration::from_secs(60)) {
        Ok(s) => s,
        Err(e) => {
            send(out, &ChildMsg::Failed { message: e });
            return 1;
        }
    };
    let signed = wire::Signed { envelope };
    match svc.call(|s| s.post::<_, SyncResponse>(wire::PATH_SYNC, &signed, &[])) {
        Ok(r) => {
            send(out, &ChildMsg::Sync(Box::new(r)));
            0
        }
        Err(e) => {
            send(
                out,
                &ChildMsg::Failed {
                    message: e.to_string(),
                },
            );
            1
        }
    }
}

/// Runs as `nobody`: upload the journal batches in order, stopping at the first error.
fn network_journal(urls: &[String], envelopes: Vec<String>, out: &mut dyn Write) -> i32 {
    let svc = match Failover::new(urls, None, Duration::from_secs(60)) {
        Ok(s) => s,
        Err(e) => {
            send(out, &ChildMsg::Failed { message: e });
            return 1;
        }
    };
    for envelope in envelopes {
        let signed = wire::Signed { envelope };
        match svc.call(|s| s.post::<_, wire::JournalAck>(wire::PATH_JOURNAL, &signed, &[])) {
            Ok(ack) => send(
                out,
                &ChildMsg::JournalStored {
                    through: ack.stored_through,
                },
            ),
            Err(e) => {
                send(
                    out,
                    &ChildMsg::Failed {
                        message: e.to_string(),
                    },
                );
                return 1;
            }
        }
    }
    0
}

/// Runs as `nobody`: one recording's upload. The status answer says how much of each
/// file the service holds, so an upload that was interrupted resumes there; a
/// recording stored complete is only finished again (acknowledged, not stored twice).
fn network_recording(
    urls: &[String],
    status: String,
    parts: Vec<RecordingPart>,
    finish: String,
    out: &mut dyn Write,
) -> i32 {
    let fail = |out: &mut dyn Write, message: String| {
        send(out, &ChildMsg::Failed { message });
        1
    };
    let svc = match Failover::new(urls, None, Duration::from_secs(60)) {
        Ok(s) => s,
        Err(e) => return fail(out, e),
    };
    let post = |envelope: String| {
        let signed = wire::Signed { envelope };
        svc.call(|s| s.post::<_, wire::RecordingAck>(wire::PATH_RECORDINGS, &signed, &[]))
    };
    let mut ack = match post(status) {
        Ok(a) => a,
        Err(e) => return fail(out, e.to_string()),
    };
    if !ack.complete {
        for part in parts {
            if ack.held.get(&part.file).copied().unwrap_or(0) >= part.end {
                continue;
            }
            match post(part.envelope) {
                Ok(a) => ack = a,
                Err(e) => return fail(out, e.to_string()),
            }
        }
    }
    match post(finish) {
        Ok(a) => {
            send(out, &ChildMsg::Recording { ack: a });
            0
        }
        Err(e) => fail(out, e.to_string()),
    }
}

/// The requester hears who decided and what they said (people's decisions only; the
/// policy's are the message itself). What the service sent is shown without control
/// characters, so no comment can drive the terminal.
fn tell_decision(status: &RequestStatus) {
    if status.decided_by.is_empty() {
        return;
    }
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect()
    };
    let verb = if status.status == "approved" {
        "approved"
    } else {
        "denied"
    };
    eprintln!(
        "jitsudo: request {} {verb} by {}",
        clean(&status.id),
        clean(&status.decided_by.join(", "))
    );
    for c in &status.comments {
        eprintln!("jitsudo:   {}", clean(c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(task: Task) -> (u8, Vec<ChildMsg>) {
        let mut out = Vec::new();
        let code = run(task, &mut out);
        let msgs = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (code, msgs)
    }

    #[test]
    fn refuses_plain_http_off_loopback_before_any_io() {
        for task in [
            Task::Request {
                services: vec!["http://10.0.0.1:8080".into()],
                envelope: "x".into(),
                no_wait: true,
            },
            Task::Sync {
                services: vec!["http://10.0.0.1".into()],
                envelope: "x".into(),
            },
            Task::Journal {
                services: vec!["ftp://x".into()],
                envelopes: vec!["x".into()],
            },
        ] {
            let (code, msgs) = answers(task);
            assert_eq!(code, 1);
            assert!(
                matches!(&msgs[..], [ChildMsg::Failed { message }] if message.contains("https://")),
                "{msgs:?}"
            );
        }
    }

    #[test]
    fn unreachable_service_is_one_failure_line() {
        // Port 1 on loopback: nothing listens there, so the connection is refused at once.
        let (code, msgs) = answers(Task::Sync {
            services: vec!["http://127.0.0.1:1".into()],
            envelope: "x".into(),
        });
        assert_eq!(code, 1);
        assert!(
            matches!(&msgs[..], [ChildMsg::Failed { message }] if message.contains("cannot reach")),
            "{msgs:?}"
        );
    }
}
