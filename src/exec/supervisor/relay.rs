//! The supervisor's relays: the caller's terminal and the command's pty (both ways,
//! raw mode while the command is the foreground job), and a recorded run's standard
//! output and error that are not the terminal. What a recorded run's relays see is
//! captured here; the supervisor writes it to the recording.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};

use crate::iolog::Stream;
use crate::system::process::{self, PollFd, Ready};
use crate::system::terminal::{self, TermMode};

/// Relay buffer size, each way.
const BUFFER: usize = 16 * 1024;

/// A recorded output pipe's buffer, and what we ask the kernel for its pipe: a command
/// that prints a lot (`cat` of a log) then costs a few system calls per 256 KiB, not per
/// 16 KiB (benches/RESULTS.md, scenario 5).
pub(super) const PIPE_BUFFER: usize = 256 * 1024;

/// At most this much output is drained from the pty after the monitor has ended: all the
/// command wrote fits many times over, and a process the command left behind that keeps
/// writing cannot keep us here.
const DRAIN_LIMIT: usize = 1024 * 1024;

/// The two terminals and what is in flight between them.
pub(super) struct Relay {
    /// The caller's terminal: our own open file description of it, non-blocking.
    pub(super) tty: File,
    pub(super) master: File,
    /// The caller's terminal modes on entry, put back whenever we give the terminal back.
    pub(super) saved: TermMode,
    pub(super) raw: bool,
    /// False when our stdout is a pipe or socket: the next process in the pipeline (a
    /// pager, say) uses the terminal, so we never take it over; output still goes to it.
    pub(super) interactive: bool,
    /// Relaying input: only while we are the terminal's foreground job.
    pub(super) reading: bool,
    pub(super) tty_in_open: bool,
    pub(super) tty_out_open: bool,
    pub(super) pty_open: bool,
    pub(super) to_pty: Vec<u8>,
    pub(super) to_tty: Vec<u8>,
    /// A recorded run: what passed each way (and window-size changes), for the
    /// supervisor to write to the recording.
    pub(super) recording: bool,
    pub(super) captured: Vec<Captured>,
}

/// What a recorded run's relays saw, in order.
pub(super) enum Captured {
    Data(Stream, Vec<u8>),
    Size(u16, u16),
}

impl Relay {
    pub(super) fn new(tty: File, master: File, saved: TermMode, recording: bool) -> Relay {
        Relay {
            tty,
            master,
            saved,
            raw: false,
            interactive: !stdout_feeds_a_pipeline(),
            reading: false,
            tty_in_open: true,
            tty_out_open: true,
            pty_open: true,
            to_pty: Vec::with_capacity(BUFFER),
            to_tty: Vec::with_capacity(BUFFER),
            recording,
            captured: Vec::new(),
        }
    }

    pub(super) fn capture(&mut self, stream: Stream, bytes: &[u8]) {
        if self.recording {
            self.captured.push(Captured::Data(stream, bytes.to_vec()));
        }
    }

    pub(super) fn in_foreground(&self) -> bool {
        terminal::foreground_group(self.tty.as_fd())
            .is_ok_and(|pgrp| pgrp == process::own_process_group())
    }

    /// Raw mode and input relay while we are the foreground job; neither otherwise.
    pub(super) fn take_terminal(&mut self) {
        if self.interactive && self.tty_in_open && self.in_foreground() {
            if !self.raw {
                self.raw = terminal::set_term_mode(self.tty.as_fd(), &self.saved.raw()).is_ok();
            }
            self.reading = true;
        } else {
            self.give_terminal_back();
        }
    }

    pub(super) fn give_terminal_back(&mut self) {
        if self.raw {
            let _ = terminal::set_term_mode(self.tty.as_fd(), &self.saved);
            self.raw = false;
        }
        self.reading = false;
    }

    pub(super) fn copy_window_size(&mut self) {
        if let Ok(size) = terminal::window_size(self.tty.as_fd()) {
            let _ = terminal::set_window_size(self.master.as_fd(), &size);
            if self.recording {
                let (rows, cols) = size.rows_cols();
                self.captured.push(Captured::Size(rows, cols));
            }
        }
    }

    /// Add the terminal and the master to `fds` with what we wait for; their positions.
    pub(super) fn interest(&self, fds: &mut Vec<PollFd>) -> (Option<usize>, Option<usize>) {
        let tty_read = self.reading && self.tty_in_open && self.to_pty.len() < BUFFER;
        let tty_write = self.tty_out_open && !self.to_tty.is_empty();
        let tty_at = (tty_read || tty_write).then(|| {
            fds.push(PollFd {
                fd: self.tty.as_raw_fd(),
                readable: tty_read,
                writable: tty_write,
            });
            fds.len() - 1
        });
        let pty_read = self.pty_open && self.to_tty.len() < BUFFER;
        let pty_write = self.pty_open && !self.to_pty.is_empty();
        let master_at = (pty_read || pty_write).then(|| {
            fds.push(PollFd {
                fd: self.master.as_raw_fd(),
                readable: pty_read,
                writable: pty_write,
            });
            fds.len() - 1
        });
        (tty_at, master_at)
    }

    pub(super) fn on_ready(
        &mut self,
        ready: &[Ready],
        (tty_at, master_at): (Option<usize>, Option<usize>),
    ) {
        if let Some(at) = tty_at {
            let r = ready[at];
            if r.readable || (r.closed && self.reading) {
                self.read_tty();
            }
            if r.writable || (r.closed && !self.to_tty.is_empty()) {
                self.write_tty();
            }
        }
        if let Some(at) = master_at {
            let r = ready[at];
            if r.readable || r.closed {
                self.read_master();
            }
            if r.writable {
                self.write_master();
            }
        }
    }

    pub(super) fn read_tty(&mut self) {
        let mut buf = [0u8; BUFFER];
        let room = BUFFER - self.to_pty.len();
        match self.tty.read(&mut buf[..room]) {
            Ok(0) => self.tty_in_open = false,
            Ok(n) => {
                self.to_pty.extend_from_slice(&buf[..n]);
                self.capture(Stream::TtyIn, &buf[..n]);
            }
            Err(e) if retry_later(&e) => {}
            Err(_) => {
                // EIO: we were moved to the background (reads then fail, SIGTTIN being
                // ignored), or the terminal is gone.
                if self.in_foreground() {
                    self.tty_in_open = false;
                }
                self.give_terminal_back();
            }
        }
    }

    pub(super) fn write_tty(&mut self) {
        if !write_some(&mut self.tty, &mut self.to_tty) {
            self.tty_out_open = false;
        }
    }

    /// Read what the command wrote; how many bytes (0 when nothing was there).
    pub(super) fn read_master(&mut self) -> usize {
        let mut buf = [0u8; BUFFER];
        let room = BUFFER - self.to_tty.len();
        match self.master.read(&mut buf[..room]) {
            Ok(0) => {
                self.pty_open = false;
                0
            }
            Ok(n) => {
                self.capture(Stream::TtyOut, &buf[..n]);
                if self.tty_out_open {
                    self.to_tty.extend_from_slice(&buf[..n]);
                }
                // Else nowhere to show it: read anyway, so the command never blocks.
                n
            }
            Err(e) if retry_later(&e) => 0,
            // EIO: every slave descriptor is closed.
            Err(_) => {
                self.pty_open = false;
                0
            }
        }
    }

    pub(super) fn write_master(&mut self) {
        if !write_some(&mut self.master, &mut self.to_pty) {
            self.pty_open = false;
        }
    }
}

/// After the monitor has ended: what the pty still holds. A non-blocking read of the
/// master waits for the kernel to hand over everything already written to the slave, so
/// nothing the command wrote is lost.
impl Drain for Relay {
    fn flush(&mut self) {
        flush_all(&mut self.tty, &mut self.tty_out_open, &mut self.to_tty);
    }

    fn read_more(&mut self) -> usize {
        if self.pty_open {
            self.read_master()
        } else {
            0
        }
    }
}

/// A recorded run's standard output or error that is not a terminal: the command writes
/// into a pipe; we read it, capture it for the recording and write it where our own
/// descriptor goes (a file, a pipe), through a new non-blocking open file description
/// of it where the kernel allows one, so that a slow reader never blocks the supervisor
/// (which must stay free to end the run at its window's end).
///
/// What goes on is our own copy, the very bytes handed to the recorder: never the
/// command's pages (tee(2) or splice(2) would pass those on, and a command that
/// vmsplices its memory into its output could change them after they were recorded).
/// Each read lands in place in the capture buffer and is written on from there; only
/// what the reader does not take at once is copied, to `buf` (benches/RESULTS.md,
/// scenario 5).
pub(super) struct OutPipe {
    pub(super) stream: Stream,
    pub(super) from: File,
    pub(super) to: File,
    pub(super) open: bool,
    pub(super) to_open: bool,
    /// What was read and is still to be written to `to`. A read is written on straight
    /// from the capture buffer only while this is empty, so bytes leave in the order
    /// they came.
    pub(super) buf: Vec<u8>,
    /// Where each read lands: its first `captured_len` bytes are what was read since
    /// the supervisor last handed it to the recorder. Zeroed once and only ever grown (to
    /// `captured_len` + `PIPE_BUFFER`), so reads land in place: no allocation, no copy
    /// and no clearing per read of what is every byte a recorded command prints.
    capture: Vec<u8>,
    captured_len: usize,
}

impl OutPipe {
    pub(super) fn new(stream: Stream, from: File, fd: RawFd) -> io::Result<OutPipe> {
        let to = match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(format!("/proc/self/fd/{fd}"))
        {
            Ok(f) => f,
            // A socket cannot be reopened: write to the descriptor itself (blocking).
            Err(_) => {
                let stdio = match fd {
                    1 => io::stdout().as_fd().try_clone_to_owned()?,
                    _ => io::stderr().as_fd().try_clone_to_owned()?,
                };
                File::from(stdio)
            }
        };
        Ok(OutPipe {
            stream,
            from,
            to,
            open: true,
            to_open: true,
            buf: Vec::with_capacity(PIPE_BUFFER),
            capture: vec![0; PIPE_BUFFER],
            captured_len: 0,
        })
    }

    pub(super) fn interest(&self, fds: &mut Vec<PollFd>) -> (Option<usize>, Option<usize>) {
        let read = (self.open && self.buf.len() < PIPE_BUFFER).then(|| {
            fds.push(PollFd {
                fd: self.from.as_raw_fd(),
                readable: true,
                writable: false,
            });
            fds.len() - 1
        });
        let write = (self.to_open && !self.buf.is_empty()).then(|| {
            fds.push(PollFd {
                fd: self.to.as_raw_fd(),
                readable: false,
                writable: true,
            });
            fds.len() - 1
        });
        (read, write)
    }

    pub(super) fn on_ready(
        &mut self,
        ready: &[Ready],
        (read, write): (Option<usize>, Option<usize>),
    ) {
        if let Some(at) = read {
            if ready[at].readable || ready[at].closed {
                self.read();
            }
        }
        if let Some(at) = write {
            if ready[at].writable || ready[at].closed {
                self.write();
            }
        }
    }

    /// Read what the command wrote, capture it and pass it on; how many bytes, 0 when
    /// nothing was there.
    pub(super) fn read(&mut self) -> usize {
        self.make_room();
        let at = self.captured_len;
        let room = PIPE_BUFFER - self.buf.len();
        match self.from.read(&mut self.capture[at..at + room]) {
            Ok(0) => {
                self.open = false;
                0
            }
            Ok(n) => {
                self.captured_len += n;
                let bytes = &self.capture[at..at + n];
                // Straight on when nothing is waiting (a reader that keeps up); what
                // `to` does not take now waits in `buf`.
                let mut sent = 0;
                if self.to_open && self.buf.is_empty() {
                    match self.to.write(bytes) {
                        Ok(k) => sent = k,
                        Err(e) if retry_later(&e) => {}
                        Err(_) => self.to_open = false,
                    }
                }
                if self.to_open {
                    self.buf.extend_from_slice(&bytes[sent..]);
                }
                // Else nowhere to show it: read anyway, so the command never blocks.
                n
            }
            Err(e) if retry_later(&e) => 0,
            Err(_) => {
                self.open = false;
                0
            }
        }
    }

    /// Room for a whole read after what is captured. The capture grows past one read
    /// only while a run's end drains the pipe before the supervisor records.
    fn make_room(&mut self) {
        let needed = self.captured_len + PIPE_BUFFER;
        if self.capture.len() < needed {
            self.capture.resize(needed, 0);
        }
    }

    /// Hand over what was read since the last hand-over, for the recorder: the buffer and how
    /// much of it is new (`None`: nothing is). `spare` becomes the buffer reads land in:
    /// one the recorder has finished with, or a new one.
    pub(super) fn take_captured(
        &mut self,
        spare: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Option<(Vec<u8>, usize)> {
        if self.captured_len == 0 {
            return None;
        }
        let next = spare()
            .filter(|b| b.len() >= PIPE_BUFFER)
            .unwrap_or_else(|| vec![0; PIPE_BUFFER]);
        let len = std::mem::replace(&mut self.captured_len, 0);
        Some((std::mem::replace(&mut self.capture, next), len))
    }

    /// Forget what was captured (the run is not, or no longer, recorded).
    pub(super) fn clear_captured(&mut self) {
        self.captured_len = 0;
    }

    pub(super) fn write(&mut self) {
        if !write_some(&mut self.to, &mut self.buf) {
            self.to_open = false;
        }
    }
}

/// After the command has ended: what it wrote last.
impl Drain for OutPipe {
    fn flush(&mut self) {
        flush_all(&mut self.to, &mut self.to_open, &mut self.buf);
    }

    fn read_more(&mut self) -> usize {
        if self.open {
            self.read()
        } else {
            0
        }
    }
}

/// The end of a run: write out what is buffered, then read what the command wrote
/// last, at most `DRAIN_LIMIT` bytes, so that a process the command left behind that
/// keeps writing cannot keep us here.
pub(super) trait Drain {
    /// Write out everything buffered, waiting for a slow reader.
    fn flush(&mut self);
    /// Read more; the bytes read, 0 at the end or when nothing more was written.
    fn read_more(&mut self) -> usize;

    fn drain(&mut self) {
        let mut drained = 0;
        loop {
            self.flush();
            if drained >= DRAIN_LIMIT {
                return;
            }
            match self.read_more() {
                0 => return,
                n => drained += n,
            }
        }
    }
}

/// Write all of `buf` to the non-blocking `out`, waiting until it takes more, unless it
/// is gone (`open` false).
fn flush_all(out: &mut File, open: &mut bool, buf: &mut Vec<u8>) {
    while *open && !buf.is_empty() {
        if !write_some(out, buf) {
            *open = false;
        } else if !buf.is_empty() {
            let _ = process::wait_writable(out.as_fd());
        }
    }
}

/// Write what `buf` holds to a non-blocking `out`, dropping what was written. False when
/// `out` is gone (its buffer is then cleared: nothing more can reach it).
pub(super) fn write_some(out: &mut File, buf: &mut Vec<u8>) -> bool {
    match out.write(buf) {
        Ok(n) => {
            buf.drain(..n);
            true
        }
        Err(e) if retry_later(&e) => true,
        Err(_) => {
            buf.clear();
            false
        }
    }
}

pub(super) fn retry_later(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// Whether our stdout is a pipe or a socket (we are not the last of a pipeline).
pub(super) fn stdout_feeds_a_pipeline() -> bool {
    let Ok(fd) = io::stdout().as_fd().try_clone_to_owned() else {
        return false;
    };
    File::from(fd)
        .metadata()
        .map(|m| m.file_type().is_fifo() || m.file_type().is_socket())
        .unwrap_or(false)
}
