//! Directory-relative file operations: a directory is opened once, by a walk that
//! follows no symlinks (`secure_file`, `jitsudo -e`), and every name after that is
//! resolved in that directory, never by path again.
//!
//! A leaf module, so that `secure_file` (which the NSS helper client in `nss` relies on)
//! does not import the rest of `system`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::errno::cerr;

/// Open `name` relative to an open directory (never following a final symlink when
/// `flags` has O_NOFOLLOW). Lets a checked directory be walked once and used many times.
pub fn openat(
    dir: BorrowedFd<'_>,
    name: &str,
    flags: libc::c_int,
    mode: u32,
) -> io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    if name.contains('/') {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: dir is a valid descriptor; cname is NUL-terminated; mode is only read with
    // O_CREAT.
    let fd = cerr(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            cname.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    })?;
    // SAFETY: fd was just returned by openat and is owned by nobody else.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

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
