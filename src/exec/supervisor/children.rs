//! The supervisor's forked children for a run in a session of its own: the monitor
//! (leads the new session on the pty, mirrors the command's stops and end) and the
//! command (its own process group, then exec exactly as in place).
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, RawFd};

use super::super::{exec_in_place, ExecPlan};
use super::Dispositions;
use crate::system::process::{self, ChildState};
use crate::system::terminal;
use crate::system::{self, ChildEnd};

/// Signals the monitor reads: what the supervisor passes on, and its child's changes.
pub(super) const MONITORED: [i32; 11] = [
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
];

/// Tell the supervisor why the command could not be started.
pub(super) fn report(start: &File, message: &str) {
    let mut writer = start;
    let _ = writer.write_all(message.as_bytes());
}

/// What the command's standard streams become: the pty's slave for those that were the
/// caller's terminal, and for a recorded run the supervisor's pipes for output and error
/// that were not.
pub(super) struct CommandStreams {
    pub(super) slave: Option<File>,
    pub(super) outputs: [Option<File>; 2],
    pub(super) tty_fds: [bool; 3],
}

/// The monitor (a forked child, root): lead a new session on the pty, start the command
/// in its own process group, pass signals on to it, mirror its stops, end as it ends.
/// Returns the exit status (fork_child exits with it).
pub(super) fn monitor(
    plan: ExecPlan,
    streams: CommandStreams,
    start: File,
    confine: Option<File>,
    caller: Dispositions,
    keep: &[RawFd],
) -> i32 {
    let CommandStreams {
        slave,
        outputs,
        tty_fds,
    } = streams;
    // The caller's terminal (the supervisor's descriptor of it), the master, the
    // supervisor's signalfd and everything else are closed here; only the standard
    // streams, the slave, the report pipe and a pinned program stay.
    process::close_fds_except(keep);
    if let Err(e) = process::new_session() {
        report(&start, &format!("cannot start a new session: {e}"));
        return 1;
    }
    if let Some(slave) = &slave {
        if let Err(e) = terminal::make_controlling_terminal(slave) {
            report(
                &start,
                &format!("cannot make the pty the controlling terminal: {e}"),
            );
            return 1;
        }
        // The standard streams that were the caller's terminal become the pty, here
        // already, so that not even the monitor keeps the caller's terminal open.
        for (fd, is_tty) in tty_fds.iter().enumerate() {
            if *is_tty {
                if let Err(e) = terminal::dup_onto(slave, fd as RawFd) {
                    report(
                        &start,
                        &format!("cannot put the pty on descriptor {fd}: {e}"),
                    );
                    return 1;
                }
            }
        }
    }
    // A recorded run's output and error that are not the terminal: the supervisor's pipes.
    for (i, end) in outputs.iter().enumerate() {
        if let Some(end) = end {
            if let Err(e) = terminal::dup_onto(end, (i + 1) as RawFd) {
                report(
                    &start,
                    &format!("cannot put a pipe on descriptor {}: {e}", i + 1),
                );
                return 1;
            }
        }
    }
    drop(outputs);
    let signals = process::set_blocked_signals(&MONITORED)
        .and_then(|()| process::signal_fd(&MONITORED, true));
    let mut signals = match signals {
        Ok(fd) => fd,
        Err(e) => {
            report(&start, &format!("cannot set up signals: {e}"));
            return 1;
        }
    };
    let slave_ref = slave.as_ref();
    let start_ref = &start;
    let confine_ref = confine.as_ref();
    let command = match system::fork_child(move || {
        run_command(plan, slave_ref, start_ref, confine_ref, caller)
    }) {
        Ok(pid) => pid,
        Err(e) => {
            report(&start, &format!("cannot fork: {e}"));
            return 1;
        }
    };
    // Both the command and the monitor set the group and the foreground, whichever runs
    // first (as job-control shells do); errors mean the command did it already.
    let _ = process::set_process_group(command, command);
    if let Some(slave) = &slave {
        let _ = terminal::set_foreground_group(slave.as_fd(), command);
    }
    drop(start);
    drop(confine);

    loop {
        let signal = match process::read_signal(&mut signals) {
            Ok(Some(signal)) => signal,
            Ok(None) => continue,
            // Cannot read signals any more: just wait for the command and mirror its end.
            Err(_) => match system::wait_child(command) {
                Ok(ChildEnd::Exited(code)) => return code,
                Ok(ChildEnd::Signaled(s)) => process::die_by_signal(s),
                Err(_) => return 1,
            },
        };
        if signal != libc::SIGCHLD {
            // The command's pid is ours to reap, so until then its group is its own.
            let _ = process::signal_group(command, signal);
            continue;
        }
        loop {
            match process::child_state(command) {
                Ok(Some(ChildState::Stopped(_))) => process::stop_self(),
                Ok(Some(ChildState::Exited(code))) => return code,
                Ok(Some(ChildState::Signaled(s))) => process::die_by_signal(s),
                Ok(None) => break,
                Err(_) => return 1,
            }
        }
    }
}

/// The command (a forked child of the monitor): its own process group, the pty's
/// foreground, the caller's signal dispositions, then exec exactly as in place.
pub(super) fn run_command(
    plan: ExecPlan,
    slave: Option<&File>,
    start: &File,
    confine: Option<&File>,
    caller: Dispositions,
) -> i32 {
    let _ = process::set_process_group(0, 0);
    if let Some(slave) = slave {
        // Allowed from a background group because SIGTTOU is still ignored here.
        let _ = terminal::set_foreground_group(slave.as_fd(), process::own_pid());
    }
    caller.restore();
    let error = exec_in_place(plan, confine);
    report(start, &error.to_string());
    127
}
