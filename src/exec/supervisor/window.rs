//! The grant's window while its command runs: the warning before the end, the end
//! itself (SIGTERM to the whole tree, SIGKILL `end_grace` later), the revocation check
//! every `REVOCATION_CHECK`, and a successor grant that lets the run go on.
#![forbid(unsafe_code)]

use super::*;

/// The grant's window, as the supervisor keeps it.
pub(super) struct Window {
    /// Wall-clock milliseconds: the grant's `exp` and the warning before it.
    pub(super) end_ms: i64,
    pub(super) warn_ms: i64,
    pub(super) grace: Duration,
    pub(super) warned: bool,
    pub(super) next_revocation_check: Instant,
    pub(super) ending: Option<Ending>,
}

/// The run is being ended: SIGTERM has gone to the whole tree.
pub(super) struct Ending {
    pub(super) kill_at: Instant,
    pub(super) killed: bool,
    pub(super) next_kill: Instant,
}

impl Ending {
    pub(super) fn last_signal(&self) -> i32 {
        if self.killed {
            libc::SIGKILL
        } else {
            libc::SIGTERM
        }
    }
}

fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Window {
    pub(super) fn new(bounds: &Bounds<'_>) -> Window {
        let end_ms = bounds.exp.saturating_mul(1000);
        Window {
            end_ms,
            warn_ms: end_ms.saturating_sub(bounds.end_warning.as_millis() as i64),
            grace: bounds.end_grace,
            warned: false,
            next_revocation_check: Instant::now() + REVOCATION_CHECK,
            ending: None,
        }
    }

    /// How long poll may wait before the window needs looking at again. Wall-clock
    /// deadlines are waited for in monotonic time, so the wait is capped at the
    /// revocation check: a clock set forward is noticed within that.
    pub(super) fn timeout(&self) -> Duration {
        let now = Instant::now();
        if let Some(ending) = &self.ending {
            let at = if ending.killed {
                ending.next_kill
            } else {
                ending.kill_at
            };
            return at.saturating_duration_since(now);
        }
        let now_ms = wall_clock_ms();
        let mut until_ms = self.end_ms - now_ms;
        if !self.warned {
            until_ms = until_ms.min(self.warn_ms - now_ms);
        }
        Duration::from_millis(until_ms.max(0) as u64)
            .min(self.next_revocation_check.saturating_duration_since(now))
    }
}

impl Supervisor<'_> {
    pub(super) fn check_window(&mut self) {
        let now = Instant::now();
        if let Some(ending) = &mut self.window.ending {
            let due = if ending.killed {
                ending.next_kill
            } else {
                ending.kill_at
            };
            if now >= due {
                ending.killed = true;
                ending.next_kill = now + KILL_AGAIN;
                process::signal_descendants(libc::SIGKILL);
            }
            return;
        }
        let now_ms = wall_clock_ms();
        if now_ms >= self.window.end_ms {
            if self.take_successor() {
                return;
            }
            return self.end_run(EndReason::Expired);
        }
        if now >= self.window.next_revocation_check {
            self.window.next_revocation_check = now + REVOCATION_CHECK;
            if (self.bounds.revoked)(&self.bounds.grant) {
                if self.take_successor() {
                    return;
                }
                return self.end_run(EndReason::Revoked);
            }
        }
        if !self.window.warned && now_ms >= self.window.warn_ms {
            // An extension already cached takes over here, without a warning.
            if self.take_successor() {
                return;
            }
            self.window.warned = true;
            let left = ((self.window.end_ms - now_ms).max(0) as u64).div_ceil(1000);
            let text = format!(
                "jitsudo: grant {} ends in {} (at {}); the command will then be ended",
                self.bounds.grant,
                crate::grant::human_duration(left),
                crate::grant::format_time(self.window.end_ms / 1000)
            );
            self.tell_terminal(&text);
        }
    }

    /// Continue under the grant that replaces ours, if the caller's cache holds one that
    /// covers this run (`Bounds::successor`): log the swap, move the window to its end,
    /// tell the terminal. False, and nothing changed, when there is none.
    pub(super) fn take_successor(&mut self) -> bool {
        let Some(next) = (self.bounds.successor)(&self.bounds.grant) else {
            return false;
        };
        let old = std::mem::replace(&mut self.bounds.grant, next.grant);
        (self.bounds.log)(RunEvent::Extended {
            from: &old,
            to: &self.bounds.grant,
            exp: next.exp,
        });
        self.window.end_ms = next.exp.saturating_mul(1000);
        self.window.warn_ms = self
            .window
            .end_ms
            .saturating_sub(self.bounds.end_warning.as_millis() as i64);
        self.window.warned = false;
        let text = format!(
            "jitsudo: grant {old} was extended: the command continues under grant {} until {}",
            self.bounds.grant,
            crate::grant::format_time(next.exp)
        );
        self.tell_terminal(&text);
        true
    }

    /// The window has closed: log it, tell the terminal, SIGTERM the whole tree (and
    /// continue what is stopped, so it can act on it), SIGKILL after the grace.
    pub(super) fn end_run(&mut self, reason: EndReason) {
        (self.bounds.log)(RunEvent::Ended(reason));
        let text = format!(
            "jitsudo: {} (grant {}); ending the command",
            reason.text(),
            self.bounds.grant
        );
        self.tell_terminal(&text);
        process::signal_descendants(libc::SIGTERM);
        process::signal_descendants(libc::SIGCONT);
        let now = Instant::now();
        self.window.ending = Some(Ending {
            kill_at: now + self.window.grace,
            killed: false,
            next_kill: now,
        });
    }

    /// One line on the command's terminal: through the relay, or straight to our
    /// controlling terminal (opened only now) when the command shares it. Carriage
    /// returns, since the terminal may be in raw mode.
    pub(super) fn tell_terminal(&mut self, text: &str) {
        let line = format!("\r\n{text}\r\n");
        if let Some(relay) = &mut self.relay {
            if relay.tty_out_open {
                relay.to_tty.extend_from_slice(line.as_bytes());
            }
            return;
        }
        if let Ok(Some(mut tty)) = terminal::open_controlling_terminal() {
            let _ = tty.write_all(line.as_bytes());
        }
    }

    /// After the child has ended: end whatever of the run is left (SIGTERM, then SIGKILL
    /// after the grace, or at the window's kill time) and reap it. Execs are refused
    /// outright from here on: the listener is closed.
    pub(super) fn end_the_rest(&mut self) {
        self.listener = None;
        self.confine = None;
        self.reap_others();
        if !process::has_children() {
            return;
        }
        let now = Instant::now();
        let kill_at = match &self.window.ending {
            Some(ending) if ending.killed => now,
            Some(ending) => ending.kill_at,
            None => {
                process::signal_descendants(libc::SIGTERM);
                process::signal_descendants(libc::SIGCONT);
                now + self.window.grace
            }
        };
        loop {
            self.reap_others();
            if !process::has_children() {
                return;
            }
            let now = Instant::now();
            if now >= kill_at {
                break;
            }
            self.wait_for_child_signal((kill_at - now).min(KILL_AGAIN * 4));
        }
        loop {
            process::signal_descendants(libc::SIGKILL);
            self.reap_others();
            if !process::has_children() {
                return;
            }
            self.wait_for_child_signal(KILL_AGAIN);
        }
    }
}
