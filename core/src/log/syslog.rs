//! Sending audit messages to a Unix datagram syslog socket (RFC 3164 framing, as glibc's
//! syslog(3) writes to /dev/log). No libc syslog: we need to know whether delivery worked.
#![forbid(unsafe_code)]

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Facility;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Alert = 1,
    Err = 3,
    Notice = 5,
    Info = 6,
}

/// A connected syslog socket.
pub struct SyslogSender {
    socket: UnixDatagram,
    path: PathBuf,
    facility: Facility,
    tag: String,
}

/// If the daemon is wedged we would rather fail (and, with `require`, refuse) than hang.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

impl SyslogSender {
    pub fn connect(path: &Path, facility: Facility, tag: &str) -> io::Result<SyslogSender> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(path)?;
        socket.set_write_timeout(Some(SEND_TIMEOUT))?;
        Ok(SyslogSender {
            socket,
            path: path.to_path_buf(),
            facility,
            tag: tag.to_string(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Send one message (already escaped, at most one line).
    pub fn send(&self, severity: Severity, message: &str) -> io::Result<()> {
        let datagram = format_datagram(
            self.facility,
            severity,
            &self.tag,
            crate::system::process_id(),
            crate::system::now_unix(),
            message,
        );
        let sent = self.socket.send(datagram.as_bytes())?;
        if sent != datagram.len() {
            return Err(io::Error::other("short write to syslog socket"));
        }
        Ok(())
    }
}

/// `<PRI>Mmm dd hh:mm:ss tag[pid]: message`, timestamp in UTC.
pub fn format_datagram(
    facility: Facility,
    severity: Severity,
    tag: &str,
    pid: u32,
    now: i64,
    message: &str,
) -> String {
    let pri = facility.code() as u32 * 8 + severity as u32;
    format!("<{pri}>{} {tag}[{pid}]: {message}", rfc3164_time(now))
}

fn rfc3164_time(unix: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix.div_euclid(86400);
    let secs = unix.rem_euclid(86400);
    let (_, month, day) = civil_from_days(days);
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[(month - 1) as usize],
        day,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagram_format() {
        // 2026-11-23 16:39:22 UTC
        let d = format_datagram(
            Facility::AuthPriv,
            Severity::Notice,
            "jitsudo",
            42,
            1795451962,
            "hi",
        );
        assert_eq!(d, "<85>Nov 23 16:39:22 jitsudo[42]: hi");
        let d = format_datagram(Facility::AuthPriv, Severity::Alert, "jitsudo", 1, 0, "x");
        assert_eq!(d, "<81>Jan  1 00:00:00 jitsudo[1]: x");
    }

    #[test]
    fn leap_day() {
        // 2024-02-29 12:00:00 UTC
        assert_eq!(rfc3164_time(1709208000), "Feb 29 12:00:00");
    }

    #[test]
    fn delivers_to_a_real_socket() {
        let dir = std::env::temp_dir().join(format!("jitsudo-log-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let sender = SyslogSender::connect(&path, Facility::AuthPriv, "jitsudo").unwrap();
        sender.send(Severity::Alert, "alice : test").unwrap();
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]);
        assert!(got.starts_with("<81>"), "{got}");
        assert!(got.ends_with("]: alice : test"), "{got}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_socket_is_an_error() {
        assert!(SyslogSender::connect(
            Path::new("/nonexistent/log.sock"),
            Facility::AuthPriv,
            "jitsudo"
        )
        .is_err());
    }
}
