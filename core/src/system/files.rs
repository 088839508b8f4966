//! Directory-relative file operations for `jitsudo -e`'s write-back: the directory is
//! opened once by a walk that follows no symlinks, and every name after that is
//! resolved in that directory, never by path again.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::cerr;

fn name(text: &str) -> io::Result<CString> {
    if text.is_empty() || text.contains('/') {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    CString::new(text).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Rename `from` to `to`, both entries of the directory `dir`: atomic, and `to` is
/// replaced whatever it was (a name, not a path, so no symlink is followed).
pub fn renameat(dir: BorrowedFd<'_>, from: &str, to: &str) -> io::Result<()> {
    let (from, to) = (name(from)?, name(to)?);
    // SAFETY: dir is an open descriptor; both names are NUL-terminated and live across
    // the call.
    cerr(unsafe { libc::renameat(dir.as_raw_fd(), from.as_ptr(), dir.as_raw_fd(), to.as_ptr()) })
        .map(|_| ())
}

/// Remove the file `entry` of the directory `dir` (never a directory; no symlink is
/// followed).
pub fn unlinkat(dir: BorrowedFd<'_>, entry: &str) -> io::Result<()> {
    let entry = name(entry)?;
    // SAFETY: dir is an open descriptor; entry is NUL-terminated and lives across the
    // call.
    cerr(unsafe { libc::unlinkat(dir.as_raw_fd(), entry.as_ptr(), 0) }).map(|_| ())
}
