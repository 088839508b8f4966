//! C's error convention, once, for every wrapper in `system`.

use std::io;

/// Turn C's "-1 and errno" convention into an `io::Result`.
pub(crate) fn cerr(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
