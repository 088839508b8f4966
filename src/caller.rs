//! Who is asking: identity from the kernel (real uid), terminal from /proc, directory.
#![forbid(unsafe_code)]

use std::ffi::OsString;

use crate::system::{self, User};

pub struct Caller {
    pub user: User,
    pub tty: String,
    pub cwd: OsString,
}

impl Caller {
    /// The real uid is the kernel's word for who ran us; the name comes from passwd.
    pub fn identify() -> Result<Caller, String> {
        let uid = system::real_uid();
        let user = system::user_by_uid(uid)
            .map_err(|e| format!("cannot look up uid {uid}: {e}"))?
            .ok_or_else(|| format!("you (uid {uid}) are not in the password database"))?;
        Ok(Caller {
            user,
            tty: controlling_tty(),
            cwd: std::env::current_dir()
                .map(|p| p.into_os_string())
                .unwrap_or_else(|_| OsString::from("unknown")),
        })
    }
}

/// The controlling terminal, from the kernel's tty_nr (not from stdin, which the caller
/// could point at any terminal they can open).
pub fn controlling_tty() -> String {
    read_proc_stat()
        .and_then(|s| tty_from_stat(&s))
        .unwrap_or_else(|| "unknown".to_string())
}

/// /proc/self/stat in one read (it reports size 0, so a generic reader probes with
/// many small reads; the line is well under 1 KiB).
fn read_proc_stat() -> Option<String> {
    use std::io::Read;
    let mut buf = [0u8; 2048];
    let n = std::fs::File::open("/proc/self/stat")
        .ok()?
        .read(&mut buf)
        .ok()?;
    String::from_utf8(buf[..n].to_vec()).ok()
}

/// Parse field 7 (tty_nr) of /proc/PID/stat into a name like `pts/3` or `tty1`.
pub fn tty_from_stat(stat: &str) -> Option<String> {
    // The command name (field 2) may contain spaces and parentheses; skip past the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let tty_nr: u64 = rest.split_whitespace().nth(4)?.parse().ok()?;
    if tty_nr == 0 {
        return None;
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    Some(match major {
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        5 if minor == 1 => "console".to_string(),
        _ => format!("tty({major}:{minor})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tty_nr() {
        // pts/3: major 136, minor 3 -> 136 << 8 | 3 = 34819
        let stat = "1234 (my (odd) cmd) S 1 1234 1234 34819 1234 4194560 0 0";
        assert_eq!(tty_from_stat(stat).as_deref(), Some("pts/3"));
        let stat = "1 (bash) S 1 1 1 1025 1";
        assert_eq!(tty_from_stat(stat).as_deref(), Some("tty1"));
        let stat = "1 (bash) S 1 1 1 0 1";
        assert_eq!(tty_from_stat(stat), None);
        // pts/300: major 137, minor 44
        let nr = (137u64 << 8) | 44;
        assert_eq!(
            tty_from_stat(&format!("1 (x) S 1 1 1 {nr} 1")).as_deref(),
            Some("pts/300")
        );
    }
}
