//! Sessions, process groups, signals and waiting, for the supervisor of commands run as
//! another user (src/exec/supervisor.rs).

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, RawFd};

use super::cerr;

pub type Pid = libc::pid_t;

pub fn own_pid() -> Pid {
    // SAFETY: getpid has no preconditions and cannot fail.
    unsafe { libc::getpid() }
}

pub fn own_process_group() -> Pid {
    // SAFETY: getpgrp has no preconditions and cannot fail.
    unsafe { libc::getpgrp() }
}

/// Real, effective and saved user ids of this process.
pub fn user_ids() -> io::Result<(u32, u32, u32)> {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: the three pointers are valid for writes.
    cerr(unsafe { libc::getresuid(&mut r, &mut e, &mut s) })?;
    Ok((r, e, s))
}

/// Start a new session (and process group) led by this process, with no controlling
/// terminal.
pub fn new_session() -> io::Result<()> {
    // SAFETY: setsid has no memory-safety preconditions.
    cerr(unsafe { libc::setsid() }).map(|_| ())
}

/// Move process `pid` (0: this one) into process group `pgid` (0: a new one named after it).
pub fn set_process_group(pid: Pid, pgid: Pid) -> io::Result<()> {
    // SAFETY: plain integer arguments.
    cerr(unsafe { libc::setpgid(pid, pgid) }).map(|_| ())
}

/// Clear the dumpable flag: no core file, no ptrace and no /proc access by anyone but
/// root. The kernel already clears it for a setuid program; this makes sure.
pub fn set_not_dumpable() -> io::Result<()> {
    // SAFETY: PR_SET_DUMPABLE takes integer arguments only.
    cerr(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) }).map(|_| ())
}

/// Send `signal` to process `pid`. Refuses pids that name more than one process.
pub fn signal_process(pid: Pid, signal: i32) -> io::Result<()> {
    if pid <= 0 {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: plain integer arguments; pid > 0 names exactly one process.
    cerr(unsafe { libc::kill(pid, signal) }).map(|_| ())
}

/// Send `signal` to every process of group `pgid`. Refuses 0 and 1, which would name
/// our own group or, as -1, every process on the system.
pub fn signal_group(pgid: Pid, signal: i32) -> io::Result<()> {
    if pgid <= 1 {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: plain integer arguments; -pgid names one process group.
    cerr(unsafe { libc::kill(-pgid, signal) }).map(|_| ())
}

/// What became of a child since the last look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildState {
    Exited(i32),
    Signaled(i32),
    Stopped(i32),
}

/// Collect a state change of child `pid` (exit, death by a signal, or stop) without
/// waiting; `None` if there is none.
pub fn child_state(pid: Pid) -> io::Result<Option<ChildState>> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: status is valid for writes; pid is our own child.
        let ret = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG | libc::WUNTRACED) };
        if ret == -1 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if ret == 0 {
            return Ok(None);
        }
        return Ok(if libc::WIFEXITED(status) {
            Some(ChildState::Exited(libc::WEXITSTATUS(status)))
        } else if libc::WIFSIGNALED(status) {
            Some(ChildState::Signaled(libc::WTERMSIG(status)))
        } else if libc::WIFSTOPPED(status) {
            Some(ChildState::Stopped(libc::WSTOPSIG(status)))
        } else {
            None
        });
    }
}

fn sigset(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid sigset_t; sigaddset ignores (EINVAL) invalid numbers.
    unsafe {
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
    }
    set
}

/// Block exactly `signals` (and no others).
pub fn set_blocked_signals(signals: &[i32]) -> io::Result<()> {
    let set = sigset(signals);
    // SAFETY: set is an initialised sigset_t; the old mask is not wanted.
    let ret = unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(())
}

fn change_blocked(how: libc::c_int, signals: &[i32]) {
    let set = sigset(signals);
    // SAFETY: set is an initialised sigset_t; how is SIG_BLOCK or SIG_UNBLOCK.
    unsafe { libc::pthread_sigmask(how, &set, std::ptr::null_mut()) };
}

/// A signalfd for `signals`, which must already be blocked: they then queue here instead
/// of interrupting the process, and are read in the event loop. Non-blocking unless
/// `blocking`; close-on-exec.
pub fn signal_fd(signals: &[i32], blocking: bool) -> io::Result<File> {
    let set = sigset(signals);
    let flags = libc::SFD_CLOEXEC | if blocking { 0 } else { libc::SFD_NONBLOCK };
    // SAFETY: -1 asks for a new descriptor; set is an initialised sigset_t.
    let fd = cerr(unsafe { libc::signalfd(-1, &set, flags) })?;
    // SAFETY: fd was just returned by signalfd and is owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// The next signal queued on a signalfd; `None` when none is pending (non-blocking fd).
pub fn read_signal(fd: &mut File) -> io::Result<Option<i32>> {
    read_signal_info(fd).map(|info| info.map(|i| i.signal))
}

/// A signal read from a signalfd, with who sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalInfo {
    pub signal: i32,
    /// si_code: at most 0 when a process sent it (kill, tgkill, sigqueue); positive when
    /// the kernel did (SI_KERNEL: a terminal's Ctrl-C or hangup, say).
    pub code: i32,
    /// The sending process, when a process sent it.
    pub pid: Pid,
}

impl SignalInfo {
    pub fn sent_by_a_process(&self) -> bool {
        self.code <= 0
    }
}

/// Like `read_signal`, with the sender.
pub fn read_signal_info(fd: &mut File) -> io::Result<Option<SignalInfo>> {
    let mut buf = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
    let field = |buf: &[u8], at: usize| [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
    loop {
        match fd.read(&mut buf) {
            Ok(n) if n == buf.len() => {
                // struct signalfd_siginfo starts ssi_signo (u32), ssi_errno (i32),
                // ssi_code (i32), ssi_pid (u32), in native byte order.
                return Ok(Some(SignalInfo {
                    signal: u32::from_ne_bytes(field(&buf, 0)) as i32,
                    code: i32::from_ne_bytes(field(&buf, 8)),
                    pid: u32::from_ne_bytes(field(&buf, 12)) as Pid,
                }));
            }
            Ok(_) => return Err(io::Error::other("short read from signalfd")),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}

/// Whether `signal` is ignored (SIG_IGN) in this process.
pub fn is_ignored(signal: i32) -> bool {
    // SAFETY: sigaction is plain data; all-zero is a valid value to be overwritten.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries; old is valid for writes.
    let ret = unsafe { libc::sigaction(signal, std::ptr::null(), &mut old) };
    ret == 0 && old.sa_sigaction == libc::SIG_IGN
}

/// Set `signal` to be ignored (`true`) or to its default action (`false`). No handler of
/// ours is ever installed: signals are read from a signalfd instead.
pub fn set_ignored(signal: i32, ignored: bool) {
    let disposition = if ignored {
        libc::SIG_IGN
    } else {
        libc::SIG_DFL
    };
    // SAFETY: SIG_IGN and SIG_DFL are not handlers, so no code of ours can run
    // asynchronously as a result.
    unsafe { libc::signal(signal, disposition) };
}

/// Stop this process with SIGTSTP, as the shell's job control expects of a job whose
/// command was stopped, and return once it is continued (at once if SIGTSTP is ignored,
/// or discarded because our process group is orphaned). The SIGCONT that continues us
/// is ignored while we wait, so it is not also queued on the signalfd.
pub fn suspend_self() {
    let cont_was_ignored = is_ignored(libc::SIGCONT);
    set_ignored(libc::SIGCONT, true);
    // Sent while blocked, then unblocked: it merges with a SIGTSTP already pending (the
    // terminal's Ctrl-Z reaches us too when the command shares our process group), so
    // we stop exactly once, not once more after being continued.
    // SAFETY: plain integer arguments; the signal goes to this process.
    unsafe { libc::kill(libc::getpid(), libc::SIGTSTP) };
    change_blocked(libc::SIG_UNBLOCK, &[libc::SIGCONT, libc::SIGTSTP]);
    change_blocked(libc::SIG_BLOCK, &[libc::SIGCONT, libc::SIGTSTP]);
    set_ignored(libc::SIGCONT, cont_was_ignored);
}

/// Stop this process with SIGSTOP until someone continues it.
pub fn stop_self() {
    // SAFETY: plain integer arguments; the signal goes to this process.
    unsafe { libc::kill(libc::getpid(), libc::SIGSTOP) };
}

/// End this process by `signal`, as the command ended, so that whoever waits for us sees
/// the same status (a shell stops a loop on SIGINT, for instance). Core dumps are off
/// (`harden_limits`). Exits with 128 + signal if the signal did not end us.
pub fn die_by_signal(signal: i32) -> ! {
    set_ignored(signal, false);
    change_blocked(libc::SIG_UNBLOCK, &[signal]);
    // SAFETY: plain integer arguments; the signal goes to this process.
    unsafe { libc::kill(libc::getpid(), signal) };
    // SAFETY: _exit ends the process at once; nothing is buffered that must be flushed,
    // and in a forked child the parent's exit handlers must not run a second time.
    unsafe { libc::_exit(128 + signal) }
}

/// One descriptor to wait on, and what for.
pub struct PollFd {
    pub fd: RawFd,
    pub readable: bool,
    pub writable: bool,
}

/// What poll reported for one descriptor.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ready {
    pub readable: bool,
    pub writable: bool,
    /// Hung up or in error: the next read or write says how.
    pub closed: bool,
}

/// Wait until one of `fds` is ready (no timeout). EINTR gives all-false answers.
pub fn poll(fds: &[PollFd]) -> io::Result<Vec<Ready>> {
    poll_within(fds, None)
}

/// Wait until one of `fds` is ready or `timeout` has passed (then all-false answers).
pub fn poll_within(fds: &[PollFd], timeout: Option<std::time::Duration>) -> io::Result<Vec<Ready>> {
    let timeout_ms: libc::c_int = match timeout {
        None => -1,
        // Rounded up, so that a wake-up is never before the deadline it waits for.
        Some(t) => t.as_micros().div_ceil(1000).min(libc::c_int::MAX as u128) as libc::c_int,
    };
    let mut raw: Vec<libc::pollfd> = fds
        .iter()
        .map(|p| libc::pollfd {
            fd: p.fd,
            events: (if p.readable { libc::POLLIN } else { 0 })
                | (if p.writable { libc::POLLOUT } else { 0 }),
            revents: 0,
        })
        .collect();
    // SAFETY: the pointer and length describe the vector's initialised pollfd entries.
    let ret = unsafe { libc::poll(raw.as_mut_ptr(), raw.len() as libc::nfds_t, timeout_ms) };
    if ret == -1 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(raw
        .iter()
        .map(|p| Ready {
            readable: p.revents & libc::POLLIN != 0,
            writable: p.revents & libc::POLLOUT != 0,
            closed: p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0,
        })
        .collect())
}

/// Wait until `fd` is writable (or hung up).
pub fn wait_writable(fd: BorrowedFd<'_>) -> io::Result<()> {
    poll(&[PollFd {
        fd: fd.as_raw_fd(),
        readable: false,
        writable: true,
    }])
    .map(|_| ())
}

/// Close every descriptor from 3 up except those in `keep`, in a forked child, so that
/// nothing of the parent's (the caller's terminal above all) reaches the command.
pub fn close_fds_except(keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&fd| fd >= 3).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut first: RawFd = 3;
    for &fd in &keep {
        if fd > first {
            close_range(first, fd - 1);
        }
        first = fd + 1;
    }
    close_range(first, RawFd::MAX);
}

fn close_range(first: RawFd, last: RawFd) {
    // SAFETY: close_range only closes descriptors; no memory is touched. This runs in a
    // forked child that never returns into code owning the closed descriptors (it execs
    // or _exits), and the descriptors it goes on using are kept.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            last as libc::c_uint,
            0 as libc::c_uint,
        )
    };
    if ret == 0 {
        return;
    }
    // Older kernels: walk the usual range by hand.
    for fd in first..=last.min(1023) {
        // SAFETY: as above; EBADF for unused numbers is expected and ignored.
        unsafe { libc::close(fd) };
    }
}

// ---- the whole tree of a run ----------------------------------------------------------

/// Become the subreaper of everything this process starts: an orphaned descendant (a
/// double fork, a `setsid` daemon) is re-parented to us instead of init, so it stays
/// in reach of `signal_descendants` and is reaped here.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes integer arguments only.
    cerr(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }).map(|_| ())
}

/// Make every user id root (real, effective, saved), so that no other user can signal
/// or ptrace this process: the supervisor, which alone ends a run at its window's end.
pub fn become_root_in_all_ids() -> io::Result<()> {
    // SAFETY: plain integer arguments; allowed because the effective uid is root.
    cerr(unsafe { libc::setresuid(0, 0, 0) }).map(|_| ())
}

/// Reap any child that has ended, without waiting. `Ok(None)` if none has ended yet;
/// `Err` with ECHILD once there are no children at all.
pub fn reap_any() -> io::Result<Option<(Pid, ChildState)>> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: status is valid for writes; -1 means any child of ours.
        let ret = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if ret == -1 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if ret == 0 {
            return Ok(None);
        }
        let state = if libc::WIFSIGNALED(status) {
            ChildState::Signaled(libc::WTERMSIG(status))
        } else {
            ChildState::Exited(libc::WEXITSTATUS(status))
        };
        return Ok(Some((ret, state)));
    }
}

/// Whether this process has any child (running, stopped or a zombie).
pub fn has_children() -> bool {
    let mut info: libc::siginfo_t = unsafe_zeroed_siginfo();
    // SAFETY: info is valid for writes; WNOWAIT leaves any ended child to be reaped.
    let ret = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WSTOPPED | libc::WCONTINUED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // ECHILD: none at all. Any other answer (0, even with nothing to report) means at
    // least one child exists.
    !(ret == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD))
}

fn unsafe_zeroed_siginfo() -> libc::siginfo_t {
    // SAFETY: siginfo_t is plain data, for which all-zero bytes are a valid value.
    unsafe { std::mem::zeroed() }
}

/// The parent of `pid` from /proc/PID/stat (the field after the command name, which is
/// in parentheses and may itself contain spaces and parentheses).
fn parent_of(pid: Pid) -> Option<Pid> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok()
}

/// Every process below this one (children, their children, ...), parents first. One
/// scan of /proc (this kernel may lack /proc/PID/task/TID/children).
pub fn descendants() -> Vec<(Pid, Pid)> {
    let me = own_pid();
    let mut all: Vec<(Pid, Pid)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<Pid>().ok())
            else {
                continue;
            };
            if let Some(parent) = parent_of(pid) {
                all.push((pid, parent));
            }
        }
    }
    let mut found: Vec<(Pid, Pid)> = Vec::new();
    let mut frontier = vec![me];
    while let Some(parent) = frontier.pop() {
        for &(pid, p) in &all {
            if p == parent && pid != me && !found.iter().any(|&(f, _)| f == pid) {
                found.push((pid, parent));
                frontier.push(pid);
            }
        }
    }
    found
}

/// Send `signal` to every descendant of this process; how many were signalled. Each
/// pid is pinned with a pidfd and its parent checked again after that, so a pid that
/// ended and was reused by a process outside the tree between the scan and the signal
/// is never signalled.
pub fn signal_descendants(signal: i32) -> usize {
    let mut sent = 0;
    for (pid, parent) in descendants() {
        // SAFETY: plain integer arguments; returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            // No pidfds (before Linux 5.3): our own children cannot be reused before we
            // reap them; anyone further down is checked, then signalled by pid.
            if parent == own_pid() || parent_of(pid) == Some(parent) {
                // SAFETY: plain integer arguments; pid > 0 names one process.
                if pid > 0 && unsafe { libc::kill(pid, signal) } == 0 {
                    sent += 1;
                }
            }
            continue;
        }
        // SAFETY: fd was just returned by pidfd_open and is ours alone.
        let pidfd = unsafe { OwnedPidFd::from_raw_fd(fd as RawFd) };
        if parent_of(pid) != Some(parent) {
            continue;
        }
        // SAFETY: pidfd is an open pidfd; a null siginfo means "as kill(2) would".
        let ret = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if ret == 0 {
            sent += 1;
        }
    }
    sent
}

type OwnedPidFd = std::os::fd::OwnedFd;

/// The process group of `pid`, if it still exists.
pub fn process_group_of(pid: Pid) -> Option<Pid> {
    // SAFETY: plain integer argument.
    let pgid = unsafe { libc::getpgid(pid) };
    (pgid > 0).then_some(pgid)
}

/// A one-shot kernel timer that sends SIGCONT to this process at a wall-clock time
/// (milliseconds since the epoch); deleted when dropped. For the supervisor stopped as a
/// job of the caller's shell: the kernel continues it at its window's end even if
/// nobody else does.
pub struct ContinueAt(libc::timer_t);

pub fn continue_self_at(unix_ms: i64) -> io::Result<ContinueAt> {
    // SAFETY: sigevent is plain data, for which all-zero bytes are a valid value.
    let mut event: libc::sigevent = unsafe { std::mem::zeroed() };
    event.sigev_notify = libc::SIGEV_SIGNAL;
    event.sigev_signo = libc::SIGCONT;
    let mut timer: libc::timer_t = std::ptr::null_mut();
    // SAFETY: event and timer are valid for the call; the kernel writes the timer id.
    cerr(unsafe { libc::timer_create(libc::CLOCK_REALTIME, &mut event, &mut timer) })?;
    let armed = ContinueAt(timer);
    let at = unix_ms.max(1);
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: (at / 1000) as _,
            tv_nsec: ((at % 1000) * 1_000_000) as libc::c_long,
        },
    };
    // SAFETY: timer was just created; spec is an initialised itimerspec; the old value
    // is not wanted.
    cerr(unsafe { libc::timer_settime(timer, libc::TIMER_ABSTIME, &spec, std::ptr::null_mut()) })?;
    Ok(armed)
}

impl Drop for ContinueAt {
    fn drop(&mut self) {
        // SAFETY: the timer was created by timer_create and is deleted only here.
        unsafe { libc::timer_delete(self.0) };
    }
}
