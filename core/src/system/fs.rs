//! Directory-relative opens: the one primitive `secure_file` builds its checked walk on.
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
