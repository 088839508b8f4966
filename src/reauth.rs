//! Re-authentication (`authenticate = true` in jitsudo.toml): before a grant is used, the
//! caller confirms who they are through the PAM service `jitsudo`, unless they already
//! did on this terminal, in this login session, within `auth_timeout` — a timestamp, as
//! sudo keeps one.
//!
//! The PAM conversation runs in a separate program, `jitsudo-auth`, at a fixed path:
//! the shipped /usr/bin/jitsudo is a static PIE, which cannot link libpam, and loading
//! libpam (and with it a second libc) into it at run time would be fragile. The helper is
//! not setuid; we run it as root in every id, with only PATH in its environment, and read its
//! exit status (0 confirmed, 1 refused, 2 could not authenticate) and one-line reason.
//!
//! A timestamp (`/var/lib/jitsudo/ts/<uid>/tty-<dev>`) is bound to the boot, the
//! terminal's device number, the session id and the session leader's start time, so a
//! new login on a reused pseudo-terminal, or a session id reused after the first ended,
//! does not inherit it. Its time is the boot clock, which the realtime clock cannot move.
//! It is written only after the helper confirmed the caller and is not extended by use:
//! `auth_timeout` after a password, the next run asks again. Without a terminal nothing
//! is recorded, so every run authenticates.
#![forbid(unsafe_code)]

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::context::{Context, Refused};
use crate::secure_file::{self, OpenError};
use crate::system::{self, ChildEnd, Uid};

/// The helper, at a path compiled in (never from the environment or the config).
pub const AUTH_HELPER: &str = "/usr/libexec/jitsudo/jitsudo-auth";
/// The PAM service the helper runs (/etc/pam.d/jitsudo).
pub const PAM_SERVICE: &str = "jitsudo";
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
/// The only environment the helper gets.
const HELPER_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the caller sits: what a timestamp is bound to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seat {
    pub uid: u32,
    /// /proc/sys/kernel/random/boot_id: a timestamp never outlives a reboot.
    pub boot_id: String,
    /// Device number of the controlling terminal (tty_nr in /proc/self/stat).
    pub tty: u64,
    /// Session id: the pid of the login session's leader (the shell a terminal opened).
    pub session: i32,
    /// The session leader's start time (clock ticks after boot), so a session id that a
    /// later login reuses does not match.
    pub session_start: u64,
}

/// A recorded confirmation: who, where, and when (boot clock, milliseconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stamp {
    pub seat: Seat,
    pub at_ms: u64,
}

/// Why the caller was not confirmed: `log` for syslog (it says "authentication
/// failed"), `message` for stderr.
#[derive(Debug)]
pub struct AuthFailed {
    pub log: String,
    pub message: String,
}

impl AuthFailed {
    fn new(reason: &str, message: String) -> AuthFailed {
        AuthFailed {
            log: format!("authentication failed: {reason}"),
            message,
        }
    }
}

/// The re-authentication step of `pipeline::run_command`. Costs nothing (no system
/// call, no file) when `authenticate` is off.
pub fn confirm_caller(ctx: &Context) -> Result<(), AuthFailed> {
    if !ctx.config.authenticate {
        return Ok(());
    }
    let timeout = ctx.config.auth_timeout;
    let uid = ctx.caller.user.uid;
    let seat = Seat::current(uid);
    if let Some(seat) = &seat {
        if has_fresh_stamp(ctx, seat, timeout) {
            return Ok(());
        }
    }
    run_helper(ctx)?;
    if let Some(seat) = seat {
        record(ctx, seat, timeout);
    }
    Ok(())
}

/// `jitsudo -k`: forget all of the caller's timestamps, so the next run asks again.
pub fn reset(ctx: &Context) -> Result<(), Refused> {
    ctx.store
        .clear_timestamps(ctx.caller.user.uid)
        .map_err(|e| Refused {
            message: e.to_string(),
        })
}

/// True if `stamp` spares the caller at `seat` a new authentication at boot-clock time
/// `now_ms`: same user, boot, terminal and session, and younger than `timeout` (zero:
/// never). A stamp from the future (it cannot be, on the boot clock) does not count.
pub fn still_valid(stamp: &Stamp, seat: &Seat, now_ms: u64, timeout: Duration) -> bool {
    let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    timeout_ms > 0
        && stamp.seat == *seat
        && now_ms >= stamp.at_ms
        && now_ms - stamp.at_ms < timeout_ms
}

/// The timestamp file of a terminal.
pub fn stamp_name(seat: &Seat) -> String {
    format!("tty-{}", seat.tty)
}

impl Seat {
    /// The caller's seat; `None` with no controlling terminal (or when /proc cannot say),
    /// and then nothing is recorded.
    pub fn current(uid: Uid) -> Option<Seat> {
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        let (session, tty) = session_and_tty(&own)?;
        if tty == 0 || session <= 0 {
            return None;
        }
        let leader = std::fs::read_to_string(format!("/proc/{session}/stat")).ok()?;
        let session_start = start_time(&leader)?;
        let boot_id = std::fs::read_to_string(BOOT_ID).ok()?.trim().to_string();
        if boot_id.is_empty() {
            return None;
        }
        Some(Seat {
            uid: uid.get(),
            boot_id,
            tty,
            session,
            session_start,
        })
    }
}

/// Fields after the command name of /proc/PID/stat (which may hold spaces and ')').
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    Some(stat[stat.rfind(')')? + 1..].split_whitespace().collect())
}

/// Session id (field 6) and tty_nr (field 7) of a /proc/PID/stat line.
pub fn session_and_tty(stat: &str) -> Option<(i32, u64)> {
    let fields = stat_fields(stat)?;
    Some((fields.get(3)?.parse().ok()?, fields.get(4)?.parse().ok()?))
}

/// Start time (field 22) of a /proc/PID/stat line.
pub fn start_time(stat: &str) -> Option<u64> {
    stat_fields(stat)?.get(19)?.parse().ok()
}

fn has_fresh_stamp(ctx: &Context, seat: &Seat, timeout: Duration) -> bool {
    if timeout.is_zero() {
        return false;
    }
    // Unreadable, corrupt or untrusted: ask again (and overwrite it on success).
    let Ok(Some(bytes)) = ctx
        .store
        .load_timestamp(ctx.caller.user.uid, &stamp_name(seat))
    else {
        return false;
    };
    let Ok(stamp) = serde_json::from_slice::<Stamp>(&bytes) else {
        return false;
    };
    let Ok(now_ms) = system::boot_clock_ms() else {
        return false;
    };
    still_valid(&stamp, seat, now_ms, timeout)
}

fn record(ctx: &Context, seat: Seat, timeout: Duration) {
    if timeout.is_zero() {
        return;
    }
    let Ok(at_ms) = system::boot_clock_ms() else {
        return;
    };
    let name = stamp_name(&seat);
    let stamp = Stamp { seat, at_ms };
    let saved = serde_json::to_vec(&stamp)
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            ctx.store
                .save_timestamp(ctx.caller.user.uid, &name, &bytes)
                .map_err(|e| e.to_string())
        });
    if let Err(e) = saved {
        crate::complain!(
            "jitsudo: warning: cannot record the authentication timestamp ({e}); the next run will ask again"
        );
    }
}

/// Run the helper for the caller on their terminal, and read its verdict.
fn run_helper(ctx: &Context) -> Result<(), AuthFailed> {
    match secure_file::open_trusted(Path::new(AUTH_HELPER)) {
        Ok(_) => {}
        Err(OpenError::Missing) => {
            return Err(AuthFailed::new(
                &format!("{AUTH_HELPER} is missing"),
                format!(
                    "cannot authenticate you: {AUTH_HELPER} is missing (authenticate = true in {} needs it); reinstall jitsudo",
                    crate::config::CONFIG_PATH
                ),
            ))
        }
        Err(e) => {
            return Err(AuthFailed::new(
                &format!("untrusted helper: {e}"),
                format!("cannot authenticate you: refusing {AUTH_HELPER}: {e}"),
            ))
        }
    }
    let user = &ctx.caller.user.name;
    let tty = pam_tty(&ctx.caller.tty);
    let ran = system::run_as_full_root(AUTH_HELPER, &[user, &tty], &[("PATH", HELPER_PATH)]);
    let (end, out) = match ran {
        Ok(done) => done,
        Err(e) => {
            return Err(AuthFailed::new(
                &format!("cannot run {AUTH_HELPER}: {e}"),
                format!("cannot authenticate you: cannot run {AUTH_HELPER}: {e}"),
            ))
        }
    };
    let reason = helper_reason(&out);
    match end {
        ChildEnd::Exited(0) => Ok(()),
        ChildEnd::Exited(1) => Err(AuthFailed::new(
            &reason,
            format!("authentication failed for {user} (PAM service {PAM_SERVICE}): {reason}"),
        )),
        ChildEnd::Exited(code) => Err(AuthFailed::new(
            &reason,
            format!("cannot authenticate you (PAM service {PAM_SERVICE}, status {code}): {reason}"),
        )),
        ChildEnd::Signaled(signal) => Err(AuthFailed::new(
            &format!("interrupted (signal {signal})"),
            "authentication interrupted".to_string(),
        )),
    }
}

/// PAM_TTY as sudo sets it: the device path, or empty when there is no terminal.
fn pam_tty(tty: &str) -> String {
    let simple = !tty.is_empty() && tty.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'/');
    if tty == "unknown" || !simple {
        String::new()
    } else {
        format!("/dev/{tty}")
    }
}

/// The helper's one line, cleaned (it is ours, but it is still text from a child).
fn helper_reason(out: &[u8]) -> String {
    let text = String::from_utf8_lossy(out);
    let line: String = text
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect();
    if line.trim().is_empty() {
        "no reason given".to_string()
    } else {
        line.trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat() -> Seat {
        Seat {
            uid: 1000,
            boot_id: "5b1f0c1e-0d7a-4c55-9f39-2f8d2c7e1a00".into(),
            tty: 34819,
            session: 4242,
            session_start: 987_654,
        }
    }

    const MIN5: Duration = Duration::from_secs(300);

    fn stamp_at(at_ms: u64) -> Stamp {
        Stamp {
            seat: seat(),
            at_ms,
        }
    }

    #[test]
    fn valid_within_timeout_only() {
        let s = stamp_at(1_000_000);
        assert!(still_valid(&s, &seat(), 1_000_000, MIN5));
        assert!(still_valid(&s, &seat(), 1_000_000 + 299_999, MIN5));
        assert!(!still_valid(&s, &seat(), 1_000_000 + 300_000, MIN5));
        assert!(!still_valid(&s, &seat(), 1_000_000 + 86_400_000, MIN5));
    }

    #[test]
    fn zero_timeout_always_asks() {
        let s = stamp_at(1_000_000);
        assert!(!still_valid(&s, &seat(), 1_000_000, Duration::ZERO));
    }

    #[test]
    fn stamp_from_the_future_does_not_count() {
        assert!(!still_valid(&stamp_at(2_000_000), &seat(), 1_000_000, MIN5));
    }

    #[test]
    fn bound_to_user_boot_tty_and_session() {
        let s = stamp_at(1_000_000);
        let now = 1_000_500;
        let changes: [fn(&mut Seat); 5] = [
            |x| x.uid = 1001,
            |x| x.boot_id = "another-boot".into(),
            |x| x.tty = 34820,
            |x| x.session = 4243,
            // Same session id, reused by a later login: the leader started at another time.
            |x| x.session_start = 987_655,
        ];
        for change in changes {
            let mut other = seat();
            change(&mut other);
            assert!(!still_valid(&s, &other, now, MIN5), "{other:?}");
        }
        assert!(still_valid(&s, &seat(), now, MIN5));
    }

    #[test]
    fn huge_timeout_does_not_overflow() {
        let s = stamp_at(0);
        assert!(still_valid(&s, &seat(), u64::MAX - 1, Duration::MAX));
    }

    #[test]
    fn stamp_round_trips_and_is_strict() {
        let s = stamp_at(7);
        let bytes = serde_json::to_vec(&s).unwrap();
        assert_eq!(serde_json::from_slice::<Stamp>(&bytes).unwrap(), s);
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["extra"] = 1.into();
        assert!(serde_json::from_value::<Stamp>(v).is_err());
    }

    #[test]
    fn one_file_per_terminal() {
        assert_eq!(stamp_name(&seat()), "tty-34819");
    }

    #[test]
    fn parses_session_tty_and_start_time() {
        // pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
        // cmajflt utime stime cutime cstime priority nice threads itrealvalue starttime
        let stat = "4242 (my (odd) sh) S 4200 4242 4242 34819 4250 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 8000 100";
        assert_eq!(session_and_tty(stat), Some((4242, 34819)));
        assert_eq!(start_time(stat), Some(987_654));
        assert_eq!(session_and_tty("garbage"), None);
        assert_eq!(start_time("1 (x) S 1 1"), None);
    }

    #[test]
    fn pam_tty_is_a_device_path_or_empty() {
        assert_eq!(pam_tty("pts/3"), "/dev/pts/3");
        assert_eq!(pam_tty("tty1"), "/dev/tty1");
        assert_eq!(pam_tty("unknown"), "");
        assert_eq!(pam_tty("tty(4:200)"), "");
    }

    #[test]
    fn helper_reason_is_one_clean_line() {
        assert_eq!(
            helper_reason(b"Authentication failure\nmore"),
            "Authentication failure"
        );
        assert_eq!(helper_reason(b"a\x1b[31mb\n"), "a[31mb");
        assert_eq!(helper_reason(b""), "no reason given");
    }
}
