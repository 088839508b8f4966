//! Terminals and pseudo-terminals, for the supervisor of commands run as another user
//! (src/exec/supervisor.rs): the caller's terminal, a new pty pair, terminal modes and
//! window sizes, controlling terminals and foreground process groups.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, RawFd};

use super::{cerr, Uid};

/// Open the controlling terminal as a new open file description, non-blocking and
/// close-on-exec. Its flags are ours alone: they never reach the descriptors the caller
/// shares with its shell. `None` when this process has no controlling terminal.
pub fn open_controlling_terminal() -> io::Result<Option<File>> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK;
    // SAFETY: the path is a NUL-terminated literal; flags are plain integers.
    let fd = unsafe { libc::open(c"/dev/tty".as_ptr(), flags) };
    if fd == -1 {
        let e = io::Error::last_os_error();
        // ENXIO: no controlling terminal. ENOENT/ENODEV: no /dev/tty at all. EIO: the
        // terminal has been hung up. In each case there is no terminal to relay.
        return match e.raw_os_error() {
            Some(libc::ENXIO | libc::ENOENT | libc::ENODEV | libc::EIO) => Ok(None),
            _ => Err(e),
        };
    }
    // SAFETY: fd was just returned by open and is owned by nobody else.
    Ok(Some(unsafe { File::from_raw_fd(fd) }))
}

/// A master and slave pseudo-terminal pair, both close-on-exec; the master non-blocking.
pub struct Pty {
    pub master: File,
    pub slave: File,
}

/// Allocate a new pty (posix_openpt, grantpt, unlockpt), and open its slave.
pub fn open_pty() -> io::Result<Pty> {
    // SAFETY: plain integer flags.
    let fd = cerr(unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) })?;
    // SAFETY: fd was just returned by posix_openpt and is owned by nobody else.
    let master = unsafe { File::from_raw_fd(fd) };
    // Not every libc passes O_CLOEXEC through posix_openpt; make sure.
    set_cloexec(master.as_raw_fd())?;
    set_nonblocking(master.as_raw_fd())?;
    // SAFETY: grantpt and unlockpt take a valid descriptor and touch no memory of ours.
    cerr(unsafe { libc::grantpt(master.as_raw_fd()) })?;
    // SAFETY: as above.
    cerr(unsafe { libc::unlockpt(master.as_raw_fd()) })?;
    let slave = open_slave(&master)?;
    Ok(Pty { master, slave })
}

/// The slave of `master`: through TIOCGPTPEER where the kernel has it (4.13+), which
/// names no path and so cannot be raced, else by the name ptsname gives.
fn open_slave(master: &File) -> io::Result<File> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes the open flags as its integer argument and returns a new
    // descriptor; no memory is passed.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER as _, flags) };
    if fd >= 0 {
        // SAFETY: fd was just returned by the ioctl and is owned by nobody else.
        return Ok(unsafe { File::from_raw_fd(fd) });
    }
    let e = io::Error::last_os_error();
    if !matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOTTY)) {
        return Err(e);
    }
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: the buffer and its length describe valid, writable memory; ptsname_r
    // NUL-terminates what it writes or fails.
    let ret = unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    // SAFETY: ptsname_r succeeded, so name holds a NUL-terminated string.
    let path = unsafe { CStr::from_ptr(name.as_ptr()) };
    // SAFETY: path is NUL-terminated; flags are plain integers.
    let fd = cerr(unsafe { libc::open(path.as_ptr(), flags) })?;
    // SAFETY: fd was just returned by open and is owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Give the pty to the user the command runs as, as login does: programs that open
/// their terminal by name (pinentry, screen) need to own it. The group is left as
/// devpts set it (tty on most systems).
pub fn give_terminal_to(tty: &File, uid: Uid) -> io::Result<()> {
    // SAFETY: fchown on a valid descriptor; (gid_t)-1 leaves the group unchanged.
    cerr(unsafe { libc::fchown(tty.as_raw_fd(), uid.get(), u32::MAX) }).map(|_| ())
}

/// Make `tty` the controlling terminal of this process, which must lead a session that
/// has none yet (just after setsid).
pub fn make_controlling_terminal(tty: &File) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal it from another
    // session); no memory is passed.
    cerr(unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSCTTY as _, 0) }).map(|_| ())
}

/// The foreground process group of a terminal.
pub fn foreground_group(tty: BorrowedFd<'_>) -> io::Result<libc::pid_t> {
    // SAFETY: tcgetpgrp on a valid descriptor; no memory is passed.
    cerr(unsafe { libc::tcgetpgrp(tty.as_raw_fd()) })
}

/// Make `pgid` the foreground process group of `tty` (a group of its session).
pub fn set_foreground_group(tty: BorrowedFd<'_>, pgid: libc::pid_t) -> io::Result<()> {
    // SAFETY: tcsetpgrp on a valid descriptor with an integer argument.
    cerr(unsafe { libc::tcsetpgrp(tty.as_raw_fd(), pgid) }).map(|_| ())
}

/// A terminal's settings (termios).
#[derive(Clone, Copy)]
pub struct TermMode(libc::termios);

impl TermMode {
    /// The same settings in raw mode: no line editing, echo, signal characters or
    /// output processing, so every byte passes through unchanged to the pty, whose own
    /// line discipline does all of that for the command.
    pub fn raw(&self) -> TermMode {
        let mut raw = self.0;
        // SAFETY: raw is a valid, initialised termios that cfmakeraw only modifies.
        unsafe { libc::cfmakeraw(&mut raw) };
        TermMode(raw)
    }
}

pub fn term_mode(tty: BorrowedFd<'_>) -> io::Result<TermMode> {
    // SAFETY: termios is plain data; all-zero is a valid value to be overwritten.
    let mut mode: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: mode is valid for writes.
    cerr(unsafe { libc::tcgetattr(tty.as_raw_fd(), &mut mode) })?;
    Ok(TermMode(mode))
}

/// Apply settings after pending output has been written (TCSADRAIN), so nothing already
/// written is shown under the wrong mode; typed-ahead input is kept.
pub fn set_term_mode(tty: BorrowedFd<'_>, mode: &TermMode) -> io::Result<()> {
    loop {
        // SAFETY: mode points to a valid termios.
        match cerr(unsafe { libc::tcsetattr(tty.as_raw_fd(), libc::TCSADRAIN, &mode.0) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other.map(|_| ()),
        }
    }
}

/// A terminal's window size (rows, columns, pixels).
#[derive(Clone, Copy)]
pub struct WindowSize(libc::winsize);

impl WindowSize {
    pub fn rows_cols(&self) -> (u16, u16) {
        (self.0.ws_row, self.0.ws_col)
    }
}

pub fn window_size(tty: BorrowedFd<'_>) -> io::Result<WindowSize> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize to the valid pointer given.
    cerr(unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCGWINSZ, &mut size) })?;
    Ok(WindowSize(size))
}

/// Set a terminal's window size. On a pty (master or slave) the kernel then sends
/// SIGWINCH to the pty's foreground process group if the size changed.
pub fn set_window_size(tty: BorrowedFd<'_>, size: &WindowSize) -> io::Result<()> {
    // SAFETY: TIOCSWINSZ reads one winsize from the valid pointer given.
    cerr(unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, &size.0) }).map(|_| ())
}

/// Put `fd` (a descriptor we opened) in non-blocking mode.
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a valid descriptor with integer arguments.
    let flags = cerr(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    cerr(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) }).map(|_| ())
}

fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a valid descriptor with integer arguments.
    let flags = cerr(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: as above.
    cerr(unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) }).map(|_| ())
}

/// Make descriptor `target` (0, 1 or 2) a copy of `tty`. The copy is not close-on-exec.
pub fn dup_onto(tty: &File, target: RawFd) -> io::Result<()> {
    // SAFETY: dup2 with a valid source descriptor; the target is one of the standard
    // descriptors, which no Rust object owns, so replacing it closes nothing behind an
    // owner's back.
    cerr(unsafe { libc::dup2(tty.as_raw_fd(), target) }).map(|_| ())
}
