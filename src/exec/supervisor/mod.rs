//! The root supervisor every run goes through: it starts the command, holds the grant's
//! terms while it runs (no other program unless the grant allows exec; the window ends
//! the run), and ends as the command ended.
//!
//! For root and the caller's own user the command is a direct child, in the caller's
//! process group and on the caller's terminal (sudo's non-pty mode): the terminal's
//! Ctrl-C and Ctrl-Z reach it directly, the supervisor stops itself when the command
//! stops and continues it on SIGCONT, and passes on only the signals sent from outside
//! the job (the command got the others already, as a member of the group). For any other
//! user it runs in a session of its own, on a pty of its own, as sudo's `use_pty` does;
//! the rest of this comment is about that case, then about the window and the execs.
//!
//! # Why a pty for other users
//!
//! A command sharing the caller's terminal and session is exposed to it. The target user
//! could then inject keystrokes into the caller's shell with TIOCSTI (allowed on one's
//! controlling terminal unless `dev.tty.legacy_tiocsti` is 0), leave a process behind
//! that reads what the caller types next, or change the terminal's modes. For root that
//! changes nothing (the caller trusts root fully); for any other user it is a way from
//! that user's account into the caller's.
//!
//! # Processes
//!
//! ```text
//! caller's shell ── jitsudo: the supervisor (root; the caller's session and terminal)
//!                     └─ monitor (root; leads a new session; its terminal: the pty slave)
//!                          └─ command (the target user; its own process group, the
//!                                      pty's foreground group)
//! ```
//!
//! - The **supervisor** is root in every user id and not dumpable, so neither the target
//!   user nor the caller can signal or ptrace it (kill(2) needs the sender's real or
//!   effective uid to be the receiver's real or saved uid; only SIGCONT within the
//!   session is let through, which job control needs).
//!   It owns the pty master and a new open file description of the caller's terminal
//!   (`/dev/tty`, non-blocking). Once the command has started (until then keystrokes
//!   wait in the caller's terminal, whose signal keys still reach us), and while it is
//!   the terminal's foreground job, it puts the terminal in raw mode and relays both
//!   ways. When our stdout is a pipe (`jitsudo -u bob cmd | less`) the terminal is left
//!   to the rest of the pipeline: output is shown, no input is relayed, modes are not
//!   touched (as sudo-rs does). The pty's own line discipline, whose modes and window
//!   size start as copies of the caller's, does echo, line editing and signal characters
//!   for the command. The supervisor restores the caller's modes whenever it gives the
//!   terminal back: when the command stops, and when it ends (by exit or by a signal).
//! - The **monitor** exists for job control: a process group whose parent is in another
//!   session is orphaned, and the kernel discards SIGTSTP, SIGTTIN and SIGTTOU for
//!   orphaned groups, so Ctrl-Z on the pty could not stop the command if the supervisor
//!   were its parent. The monitor puts the command in a group of its own, passes on the
//!   signals the supervisor sends it, and mirrors the command: it stops (SIGSTOP) when
//!   the command stops, and ends as the command ended. It is the command's parent, so
//!   the command's pid cannot be reused before the monitor has reaped it: signals to the
//!   command's group never reach a stranger. It holds the pty slave until it exits, so
//!   the master reads to the end of the command's output.
//! - The **command** gets the pty slave on those of fds 0-2 that were terminals (pipes
//!   and files pass through unchanged), then becomes the target user and execs exactly as
//!   in place (environment, limits, umask, groups, pinned fexecve). Neither it nor the
//!   monitor holds any descriptor of the caller's terminal.
//!
//! Without a controlling terminal there is no pty: the monitor still starts a new
//! session, so the command has no controlling terminal at all.
//!
//! # The event loop
//!
//! One `poll` over a signalfd (every signal the supervisor handles is blocked and read
//! there, so nothing runs asynchronously), the pipe on which the children report a
//! failure to start, the caller's terminal and the pty master. Signals are handled first
//! in each round, so a resize is applied before any input typed after it is relayed.
//! SIGCHLD: the monitor stopped (give the terminal back, stop ourselves with SIGTSTP so
//! the shell sees the job stopped; when continued, take the terminal again if we are in
//! the foreground and continue the command) or ended (drain the pty's remaining output,
//! restore the terminal, end the same way: exit code, or death by the same signal, as
//! sudo does). SIGWINCH: copy the window size to the pty (the kernel then signals the
//! command). SIGCONT: take the terminal again if in the foreground, and continue the
//! command. SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGALRM, SIGUSR1, SIGUSR2, SIGTSTP: passed
//! to the command's process group through the monitor (those the caller ignored stay
//! ignored, so `nohup jitsudo -u …` still works).
//!
//! # The grant's terms
//!
//! Exec: unless the grant allows it, the command installs a seccomp filter before its
//! exec and hands the listener over a socket (see `system::noexec`). The filter itself
//! lets the command's own exec through (it knows that call's exact arguments), so the
//! run does not wait for us; the loop polls the socket, then the listener, and refuses
//! every exec that asks (a later one of the tree), logging each distinct one once.
//!
//! The window: the poll timeout is the next deadline (the warning, the end, the
//! revocation check every `REVOCATION_CHECK`, SIGKILL after the grace). At the end
//! every descendant gets SIGTERM and SIGCONT, and SIGKILL `end_grace` later; we are the
//! subreaper, so that is the whole tree. When the child ends, whatever of the run is
//! left gets the same (`end_the_rest`) before we exit: a run is the command and all it
//! started.
//!
//! # A recorded run
//!
//! What the relays see (the pty both ways, and the pipes that stand for standard output
//! and error that are not the terminal; `relay.rs`) goes to the recorder thread
//! (`recording.rs`), which writes and hash-chains it while the loop goes on relaying.
//! It is the supervisor's only thread, started once everything is forked (`fork_child`
//! refuses to fork a process with more than one); its alarm pipe is in the poll, so a
//! recording write that fails ends the run as a closing window does.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod children;
mod recording;
mod relay;
mod window;

use super::{exec_in_place, Bounds, EndReason, ExecPlan, Program, RunEvent, Session};
use crate::iolog::Stream;
use crate::system::noexec;
use crate::system::process::{self, ChildState, Pid, PollFd};
use crate::system::terminal::{self, TermMode};
use crate::system::{self, ChildEnd, Uid};
use children::{monitor, report, CommandStreams};
use recording::RecordingThread;
use relay::{Captured, Drain, OutPipe, Relay};
use window::Window;

/// How often the supervisor asks whether the grant has been revoked (a stat of the
/// revocation list; it is read again only when it changed).
pub const REVOCATION_CHECK: Duration = Duration::from_secs(2);

/// After SIGKILL, how often the tree is walked again for processes forked meanwhile.
const KILL_AGAIN: Duration = Duration::from_millis(50);

/// Distinct blocked execs (program, path) logged per run; later ones are still refused.
const BLOCKED_LOGGED: usize = 32;

/// Signals passed on to the command (unless the caller ignored them).
const FORWARDED: [i32; 8] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGALRM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGTSTP,
];

/// Every signal whose disposition the supervisor, the monitor or `fork_child` may
/// change; the command gets the caller's dispositions of all of them back.
const TOUCHED: [i32; 13] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGALRM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGTSTP,
    libc::SIGCHLD,
    libc::SIGCONT,
    libc::SIGWINCH,
    libc::SIGTTIN,
    libc::SIGTTOU,
];

/// Start the command under a supervisor and end as it ends. Returns only if it could not
/// be started, with the reason (the caller logs it, as for a failed exec in place).
pub fn run(plan: ExecPlan, bounds: Bounds<'_>) -> io::Error {
    match supervise(plan, bounds) {
        Ok(ChildEnd::Exited(code)) => std::process::exit(code),
        Ok(ChildEnd::Signaled(signal)) => process::die_by_signal(signal),
        Err(e) => e,
    }
}

/// The caller's signal dispositions (ignored or default), as they were on entry.
#[derive(Clone, Copy)]
struct Dispositions([bool; TOUCHED.len()]);

impl Dispositions {
    fn of_caller() -> Dispositions {
        Dispositions(TOUCHED.map(process::is_ignored))
    }

    fn ignores(&self, signal: i32) -> bool {
        TOUCHED
            .iter()
            .position(|&s| s == signal)
            .is_some_and(|i| self.0[i])
    }

    fn restore(&self) {
        for (signal, ignored) in TOUCHED.iter().zip(self.0) {
            process::set_ignored(*signal, ignored);
        }
    }
}

fn supervise(plan: ExecPlan, bounds: Bounds<'_>) -> io::Result<ChildEnd> {
    // All uids root: neither the caller nor the target user can signal, stop or ptrace
    // the process that ends the run at its window's end. Subreaper: whatever the command
    // leaves behind (setsid, double forks) stays our descendant, in reach at the end.
    process::become_root_in_all_ids()?;
    process::set_not_dumpable()?;
    process::set_child_subreaper()?;
    let separate = plan.session == Session::Separate;
    // Root is root's own: a recorded root run has nothing to keep out of its reach.
    if separate && plan.target.uid != Uid::ROOT {
        check_unreachable_by(plan.target.uid)?;
    }
    let caller = Dispositions::of_caller();
    let tty_fds = [
        io::stdin().is_terminal(),
        io::stdout().is_terminal(),
        io::stderr().is_terminal(),
    ];
    // Only a separate session needs the caller's terminal (to relay it); a shared one
    // leaves it to the command and opens it only to warn of the end.
    let terminal = if separate {
        terminal::open_controlling_terminal()
            .map_err(|e| io::Error::other(format!("cannot open /dev/tty: {e}")))?
    } else {
        None
    };
    if separate && terminal.is_none() && tty_fds.contains(&true) {
        // A terminal that is not ours to relay: handing it to the command would give the
        // target user a descriptor of it.
        return Err(io::Error::other(
            "a standard stream is a terminal, but not jitsudo's controlling terminal; redirect it, or run jitsudo on that terminal",
        ));
    }
    let pty = match &terminal {
        Some(tty) => Some(new_pty(tty, plan.target.uid)?),
        None => None,
    };

    // Children must be reaped (SIGCHLD not ignored); SIGTTIN and SIGTTOU must not stop
    // us while the command runs in the background (sudo does the same).
    for signal in [libc::SIGCHLD, libc::SIGCONT, libc::SIGWINCH] {
        process::set_ignored(signal, false);
    }
    process::set_ignored(libc::SIGTTIN, true);
    process::set_ignored(libc::SIGTTOU, true);
    let handled: Vec<i32> = FORWARDED
        .iter()
        .copied()
        .filter(|&s| !caller.ignores(s))
        .chain([libc::SIGCHLD, libc::SIGCONT, libc::SIGWINCH])
        .collect();
    // Blocked before the fork, so that no signal (SIGCHLD above all) is missed.
    process::set_blocked_signals(&handled)?;
    let signals = process::signal_fd(&handled, false)?;
    let (start_read, start_write) = system::pipe()?;
    terminal::set_nonblocking(start_read.as_raw_fd())?;
    // The socket on which the command hands over its exec filter's listener.
    let (confine_read, confine_write) = if bounds.allow_exec {
        (None, None)
    } else {
        let (ours, theirs) = noexec::socket_pair()?;
        terminal::set_nonblocking(ours.as_raw_fd())?;
        (Some(ours), Some(theirs))
    };

    let (master, slave, mode) = match pty {
        Some((pty, mode)) => (Some(pty.master), Some(pty.slave), Some(mode)),
        None => (None, None, None),
    };
    // A recorded run's standard output and error that are not the terminal go through
    // pipes we read, record and pass on; a terminal's go through the pty.
    let mut outputs: Vec<OutPipe> = Vec::new();
    let mut output_ends: [Option<File>; 2] = [None, None];
    if bounds.recorder.is_some() {
        for (i, stream) in [(1usize, Stream::Stdout), (2, Stream::Stderr)] {
            if tty_fds[i] {
                continue;
            }
            let (read, write) = system::pipe()?;
            terminal::set_nonblocking(read.as_raw_fd())?;
            let _ = system::set_pipe_size(&read, relay::PIPE_BUFFER);
            outputs.push(OutPipe::new(stream, read, i as RawFd)?);
            output_ends[i - 1] = Some(write);
        }
    }
    let child = if separate {
        let mut keep: Vec<RawFd> = vec![start_write.as_raw_fd()];
        keep.extend(slave.as_ref().map(|s| s.as_raw_fd()));
        keep.extend(output_ends.iter().flatten().map(|f| f.as_raw_fd()));
        keep.extend(confine_write.as_ref().map(|s| s.as_raw_fd()));
        if let Program::Pinned { file, .. } = &plan.program {
            keep.push(file.as_raw_fd());
        }
        // The closure owns the plan, the slave and the pipe's write end: in this process
        // they are dropped (closed) when fork_child returns.
        system::fork_child(move || {
            monitor(
                plan,
                CommandStreams {
                    slave,
                    outputs: output_ends,
                    tty_fds,
                },
                start_write,
                confine_write,
                caller,
                &keep,
            )
        })?
    } else {
        // The command stays in the caller's process group: the caller's job, so the
        // terminal's Ctrl-C, Ctrl-Z and `fg` reach it directly.
        system::fork_child(move || {
            caller.restore();
            let error = exec_in_place(plan, confine_write.as_ref());
            report(&start_write, &error.to_string());
            127
        })?
    };

    let recorded = bounds.recorder.is_some();
    let relay = match (terminal, master, mode) {
        (Some(tty), Some(master), Some(saved)) => Some(Relay::new(tty, master, saved, recorded)),
        _ => None,
    };
    let window = Window::new(&bounds);
    let mut bounds = bounds;
    // Everything this process forks is forked: the recorder may have its thread now.
    let recorder = bounds.recorder.take();
    let recording_id = recorder.as_ref().map(|r| r.id().to_string());
    let (recording, recording_error) = match recorder.map(RecordingThread::start) {
        Some(Ok(thread)) => (Some(thread), None),
        Some(Err(e)) => (None, Some(format!("cannot start the recorder thread: {e}"))),
        None => (None, None),
    };
    let mut supervisor = Supervisor {
        child,
        forward_all: separate,
        signals,
        start: Some(start_read),
        start_error: Vec::new(),
        started: false,
        ended: false,
        relay,
        caller,
        confine: confine_read,
        listener: None,
        blocked: Vec::new(),
        window,
        bounds,
        recording,
        outputs,
    };
    if let (Some(id), Some(why)) = (recording_id, recording_error) {
        // The recording this run needs cannot be written: stopped, as a failed write is.
        supervisor.recording_failed(id, why);
    }
    if let (Some(relay), Some(recording)) = (&supervisor.relay, &supervisor.recording) {
        // The size the recording starts at is in its log.json; this is for sudoreplay,
        // which resizes the terminal only on a recorded change.
        if let Ok((rows, cols)) = terminal::window_size(relay.tty.as_fd()).map(|s| s.rows_cols()) {
            if rows > 0 && cols > 0 {
                recording.window_size(rows, cols);
            }
        }
    }
    let end = supervisor.event_loop();
    supervisor.ended = true;
    supervisor.read_start_report();
    if let Some(relay) = &mut supervisor.relay {
        relay.drain();
        relay.give_terminal_back();
    }
    for out in &mut supervisor.outputs {
        out.drain();
    }
    supervisor.record_captured();
    supervisor.seal_recording();
    // What the command left behind ends with it (a run is the command and everything it
    // started), and so does everything still running when the window closed.
    supervisor.end_the_rest();
    if !supervisor.start_error.is_empty() {
        return Err(io::Error::other(
            String::from_utf8_lossy(&supervisor.start_error).into_owned(),
        ));
    }
    Ok(match (&supervisor.window.ending, end) {
        // Ended by the window: the caller sees 128 + the signal that ended it, even if
        // the command caught SIGTERM and exited on its own.
        (Some(ending), ChildEnd::Exited(_)) => ChildEnd::Signaled(ending.last_signal()),
        _ => end,
    })
}

/// The supervisor must be out of the target user's reach: root's effective and saved
/// uids, a real uid that is not the target's, and not dumpable (no ptrace, no /proc).
fn check_unreachable_by(target: Uid) -> io::Result<()> {
    let (real, effective, saved) = process::user_ids()?;
    if effective != 0 || saved != 0 || real == target.get() {
        return Err(io::Error::other(format!(
            "the supervisor's user ids ({real}, {effective}, {saved}) would let uid {target} signal it"
        )));
    }
    process::set_not_dumpable()
}

/// A new pty for the command, owned by the target user, with the caller's terminal
/// modes and window size.
fn new_pty(tty: &File, target: Uid) -> io::Result<(terminal::Pty, TermMode)> {
    let pty =
        terminal::open_pty().map_err(|e| io::Error::other(format!("cannot open a pty: {e}")))?;
    let mode = terminal::term_mode(tty.as_fd())?;
    terminal::set_term_mode(pty.slave.as_fd(), &mode)?;
    if let Ok(size) = terminal::window_size(tty.as_fd()) {
        terminal::set_window_size(pty.slave.as_fd(), &size)?;
    }
    terminal::give_terminal_to(&pty.slave, target)?;
    Ok((pty, mode))
}

struct Supervisor<'a> {
    /// The monitor (separate session) or the command itself (shared session).
    child: Pid,
    /// Pass every handled signal on to the child. In a shared session the command is in
    /// our process group, so what the terminal sends (Ctrl-C, hangup) or the command
    /// sends its own group reaches it already; only signals from elsewhere are passed on.
    forward_all: bool,
    signals: File,
    /// Where the monitor and the command report a failure to start; `None` at its end.
    start: Option<File>,
    start_error: Vec<u8>,
    /// The command has been exec'd (the report pipe ended with nothing in it): it is the
    /// pty's foreground group, so what is typed from now on reaches it, Ctrl-C and Ctrl-Z
    /// included. Until then the caller's terminal is left as it is (its own signal keys
    /// reach us, and are passed on).
    started: bool,
    /// The child has ended: the terminal is not to be taken again.
    ended: bool,
    relay: Option<Relay>,
    caller: Dispositions,
    /// Where the command hands over its exec filter's listener; `None` once it has.
    confine: Option<File>,
    /// The exec filter's listener: every exec of the tree waits here for our answer.
    listener: Option<OwnedFd>,
    /// Blocked execs already logged: (path, program).
    blocked: Vec<(String, String)>,
    window: Window,
    bounds: Bounds<'a>,
    /// The run's recording, if it is recorded; `None` again once it failed or was sealed.
    recording: Option<RecordingThread>,
    /// A recorded run's standard output and error that are not the terminal.
    outputs: Vec<OutPipe>,
}

impl Supervisor<'_> {
    /// Run until the child has ended; its end is the command's.
    fn event_loop(&mut self) -> ChildEnd {
        loop {
            self.check_window();
            let mut fds = vec![PollFd {
                fd: self.signals.as_raw_fd(),
                readable: true,
                writable: false,
            }];
            let start_at = self.start.as_ref().map(|start| {
                fds.push(PollFd {
                    fd: start.as_raw_fd(),
                    readable: true,
                    writable: false,
                });
                fds.len() - 1
            });
            let confine_at = self.confine.as_ref().map(|socket| {
                fds.push(PollFd {
                    fd: socket.as_raw_fd(),
                    readable: true,
                    writable: false,
                });
                fds.len() - 1
            });
            let listener_at = self.listener.as_ref().map(|listener| {
                fds.push(PollFd {
                    fd: listener.as_raw_fd(),
                    readable: true,
                    writable: false,
                });
                fds.len() - 1
            });
            let alarm_at = self.recording.as_ref().map(|recording| {
                fds.push(PollFd {
                    fd: recording.alarm.as_raw_fd(),
                    readable: true,
                    writable: false,
                });
                fds.len() - 1
            });
            let relay_at = self.relay.as_ref().map(|relay| relay.interest(&mut fds));
            let outputs_at: Vec<(Option<usize>, Option<usize>)> =
                self.outputs.iter().map(|o| o.interest(&mut fds)).collect();
            let timeout = self.window.timeout();
            let ready = match process::poll_within(&fds, Some(timeout)) {
                Ok(ready) => ready,
                Err(_) => return self.abandon(),
            };
            if ready[0].readable {
                if let Some(end) = self.on_signals() {
                    return end;
                }
            }
            if let Some(at) = start_at {
                if ready[at].readable || ready[at].closed {
                    self.read_start_report();
                }
            }
            if let Some(at) = confine_at {
                if ready[at].readable || ready[at].closed {
                    self.take_listener();
                }
            }
            if let Some(at) = listener_at {
                if ready[at].readable {
                    self.on_exec_request();
                } else if ready[at].closed {
                    // Nothing runs under the filter any more.
                    self.listener = None;
                }
            }
            if let (Some(relay), Some(at)) = (&mut self.relay, relay_at) {
                relay.on_ready(&ready, at);
            }
            for (out, at) in self.outputs.iter_mut().zip(outputs_at) {
                out.on_ready(&ready, at);
            }
            self.record_captured();
            if let Some(at) = alarm_at {
                if ready[at].readable || ready[at].closed {
                    self.on_recording_alarm();
                }
            }
        }
    }

    /// Hand what the relay and the output pipes captured to the recorder thread, in the
    /// order they captured it. A recording that cannot take it stops the run
    /// (`[record] on_error = "stop"`): a recording is never silently incomplete.
    fn record_captured(&mut self) {
        let mut captured = Vec::new();
        if let Some(relay) = &mut self.relay {
            captured.append(&mut relay.captured);
        }
        let Some(recording) = &self.recording else {
            for out in &mut self.outputs {
                out.clear_captured();
            }
            return;
        };
        for c in captured {
            match c {
                Captured::Data(stream, bytes) => recording.data(stream, bytes),
                Captured::Size(rows, cols) => recording.window_size(rows, cols),
            }
        }
        for out in &mut self.outputs {
            if let Some((bytes, len)) = out.take_captured(|| recording.spare()) {
                recording.output(out.stream, bytes, len);
            }
        }
    }

    /// The recorder thread says a write failed.
    fn on_recording_alarm(&mut self) {
        let Some(recording) = &self.recording else {
            return;
        };
        let id = recording.id().to_string();
        let why = recording
            .failure()
            .unwrap_or_else(|| "the recorder thread stopped".to_string());
        self.recording_failed(id, why);
    }

    /// The recording cannot go on: log it and stop the run.
    fn recording_failed(&mut self, id: String, why: String) {
        if let Some(recording) = self.recording.take() {
            // Its error is sticky: what is still queued is refused, and the thread ends.
            let _ = recording.finish();
        }
        (self.bounds.log)(RunEvent::RecordingFailed { id: &id, why: &why });
        if !self.ended && self.window.ending.is_none() {
            self.end_run(EndReason::RecordingFailed);
        }
    }

    /// At the end: seal the recording (its chain's last hash goes to the journal).
    fn seal_recording(&mut self) {
        let Some(recording) = self.recording.take() else {
            return;
        };
        let id = recording.id().to_string();
        match recording.finish() {
            Ok(seal) => (self.bounds.log)(RunEvent::RecordingSealed(&seal)),
            Err(e) => (self.bounds.log)(RunEvent::RecordingFailed {
                id: &id,
                why: &e.to_string(),
            }),
        }
    }

    /// Handle every queued signal; the command's end if the child has ended.
    fn on_signals(&mut self) -> Option<ChildEnd> {
        loop {
            let info = match process::read_signal_info(&mut self.signals) {
                Ok(Some(info)) => info,
                Ok(None) => return None,
                Err(_) => return Some(self.abandon()),
            };
            match info.signal {
                libc::SIGCHLD => {
                    loop {
                        match process::child_state(self.child) {
                            Ok(None) => break,
                            Ok(Some(ChildState::Stopped(_))) => self.suspend(),
                            Ok(Some(ChildState::Exited(code))) => {
                                return Some(ChildEnd::Exited(code))
                            }
                            Ok(Some(ChildState::Signaled(s))) => {
                                return Some(ChildEnd::Signaled(s))
                            }
                            Err(_) => return Some(ChildEnd::Exited(1)),
                        }
                    }
                    // Orphans re-parented to us (we are their subreaper) are reaped here.
                    if let Some(end) = self.reap_others() {
                        return Some(end);
                    }
                }
                libc::SIGWINCH => {
                    if let Some(relay) = &mut self.relay {
                        relay.copy_window_size();
                    }
                }
                libc::SIGCONT => self.resume(),
                other => {
                    if self.forward_all || self.sent_from_outside(&info) {
                        let _ = process::signal_process(self.child, other);
                    }
                }
            }
        }
    }

    /// A signal the command did not get already: sent by a process outside its group.
    fn sent_from_outside(&self, info: &process::SignalInfo) -> bool {
        info.sent_by_a_process()
            && info.pid != self.child
            && process::process_group_of(info.pid) != Some(process::own_process_group())
    }

    /// Reap every ended child other than ours (re-parented orphans); the child's own
    /// end if it is among them.
    fn reap_others(&mut self) -> Option<ChildEnd> {
        let mut end = None;
        while let Ok(Some((pid, state))) = process::reap_any() {
            if pid == self.child {
                end = match state {
                    ChildState::Signaled(s) => Some(ChildEnd::Signaled(s)),
                    ChildState::Exited(code) | ChildState::Stopped(code) => {
                        Some(ChildEnd::Exited(code))
                    }
                };
            }
        }
        end
    }

    /// The command stopped: give the terminal back and stop as a job of the caller's
    /// shell (unless the caller ignores SIGTSTP); once continued, resume.
    fn suspend(&mut self) {
        if let Some(relay) = &mut self.relay {
            relay.give_terminal_back();
        }
        // Stopped, we cannot end the run: and SIGCONT is allowed to anyone in the
        // session, so the caller could continue a root command alone and keep it running
        // while we wait. The kernel continues us at the window's end, then; if that
        // cannot be arranged, or the run is already ending, we do not stop at all.
        let wake = match self.window.ending {
            None => process::continue_self_at(self.window.end_ms).ok(),
            Some(_) => None,
        };
        if wake.is_some() && !self.caller.ignores(libc::SIGTSTP) {
            process::suspend_self();
        }
        drop(wake);
        self.resume();
    }

    /// Continued (by the shell's `fg` or `bg`): take the terminal if we are in the
    /// foreground, and continue the command.
    fn resume(&mut self) {
        if let Some(relay) = &mut self.relay {
            if self.started {
                relay.take_terminal();
            }
            relay.copy_window_size();
        }
        let _ = process::signal_process(self.child, libc::SIGCONT);
    }

    fn read_start_report(&mut self) {
        let Some(start) = &mut self.start else {
            return;
        };
        let mut buf = [0u8; 1024];
        loop {
            match start.read(&mut buf) {
                Ok(0) => {
                    self.start = None;
                    self.started = self.start_error.is_empty();
                    if let (true, false, Some(relay)) = (self.started, self.ended, &mut self.relay)
                    {
                        relay.take_terminal();
                    }
                    return;
                }
                Ok(n) => {
                    // Bounded: the children write one short message at most.
                    if self.start_error.len() < 4096 {
                        self.start_error.extend_from_slice(&buf[..n]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    }

    // ---- exec requests ----------------------------------------------------------------

    fn take_listener(&mut self) {
        let Some(socket) = &self.confine else {
            return;
        };
        match noexec::receive_fd(socket.as_fd()) {
            Ok(Some(listener)) => {
                self.listener = Some(listener);
                self.confine = None;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // Closed without a listener: the command failed before its exec, and its
            // report says why.
            Ok(None) | Err(_) => self.confine = None,
        }
    }

    /// One exec of the tree waits for an answer: the first is the command's own (nothing
    /// else runs under the filter before it), every later one is refused and logged.
    fn on_exec_request(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        let fd = listener.as_fd();
        let request = match noexec::receive(fd) {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(_) => {
                // Closing the listener fails every exec under the filter: closed.
                self.listener = None;
                return;
            }
        };
        // The command's own exec never gets here: the filter lets that one call through
        // by itself. Everything that asks is a later exec of the tree.
        if self.blocked.len() >= BLOCKED_LOGGED {
            // Nothing more will be logged: refuse without reading anything.
            let _ = noexec::refuse(fd, &request);
            return;
        }
        // Read what it asked for while it still waits, then refuse.
        let described = noexec::describe(fd, &request);
        let _ = noexec::refuse(fd, &request);
        let Some(seen) = described else {
            return;
        };
        if !self.blocked.contains(&seen) {
            (self.bounds.log)(RunEvent::BlockedExec {
                path: &seen.0,
                program: &seen.1,
            });
            self.blocked.push(seen);
        }
    }

    /// Wait up to `timeout` for a signal (SIGCHLD, above all), and drop what is queued.
    fn wait_for_child_signal(&mut self, timeout: Duration) {
        let fds = [PollFd {
            fd: self.signals.as_raw_fd(),
            readable: true,
            writable: false,
        }];
        let _ = process::poll_within(&fds, Some(timeout));
        while let Ok(Some(_)) = process::read_signal(&mut self.signals) {}
    }

    /// The loop cannot go on (poll or the signalfd failed, which should not happen): end
    /// the child, and with it the session, and wait for it.
    fn abandon(&mut self) -> ChildEnd {
        if let Some(relay) = &mut self.relay {
            relay.give_terminal_back();
        }
        let _ = process::signal_process(self.child, libc::SIGKILL);
        system::wait_child(self.child).unwrap_or(ChildEnd::Exited(1))
    }
}
