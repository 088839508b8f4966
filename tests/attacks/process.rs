//! A hostile process state: closed standard streams, low resource limits, stray file
//! descriptors and signal dispositions inherited from the caller, and a binary that is
//! not setuid (or runs under no_new_privs).

use crate::sandbox::{Refusal, Sandbox};
use std::os::unix::fs::PermissionsExt;

#[test]
fn closed_standard_streams_and_low_limits() {
    let s = Sandbox::new();
    s.import_ok(
        "alice",
        &s.mint("alice", &["--command", "/usr/bin/id -u", "--uses", "3"]),
    );
    // stdin, stdout and stderr closed, at most 8 files, and no file may grow. jitsudo
    // must neither crash half-way through recording the use nor lose the cache: either
    // it can lift the limits (CAP_SYS_RESOURCE) and the use is counted, or the write
    // fails cleanly, the command does not run and nothing is counted.
    let script = format!(
        "ulimit -n 8; ulimit -f 0; setpriv --reuid alice --regid alice --init-groups -- {} /usr/bin/touch /tmp/ran <&- >&- 2>&-; echo rc=$?",
        s.bin.display()
    );
    s.import_ok(
        "alice",
        &s.mint(
            "alice",
            &["--command", "/usr/bin/touch /tmp/ran", "--uses", "3"],
        ),
    );
    let out = s
        .ns_command("bash")
        .args(["-c", &script])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let ran = s.path("/tmp/ran").exists();
    let cache = std::fs::read_to_string(s.path("/var/lib/jitsudo/users/42001.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&cache).expect("cache stays valid JSON");
    let used = parsed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["used"].as_u64().unwrap())
        .sum::<u64>();
    if ran {
        assert_eq!((text.trim(), used), ("rc=0", 1), "{cache}");
    } else {
        assert_eq!((text.trim(), used), ("rc=1", 0), "{cache}");
    }
    // Afterwards, without the limits, everything works and the counts add up.
    let out = s.run("alice", &["/usr/bin/touch", "/tmp/ran"]);
    assert_eq!(out.code, 0, "{out:?}");
    let list = s.run("alice", &["-l"]);
    let left = if ran { " 1 " } else { " 2 " };
    assert!(
        list.stdout
            .lines()
            .any(|l| l.contains("/usr/bin/touch") && l.contains(left)),
        "{list:?}"
    );
    let _ = std::fs::remove_file(s.path("/tmp/ran"));
}

#[test]
fn stray_file_descriptors_are_closed() {
    let s = Sandbox::new();
    let token = s.mint("alice", &["--command", "/usr/bin/ls /proc/self/fd"]);
    s.import_ok("alice", &token);
    // Open fd 7 in the caller; the command must not inherit it.
    let out = s
        .ns_command("sh")
        .args(["-c", &format!(
            "exec 7</etc/hostname; exec setpriv --reuid alice --regid alice --init-groups -- {} /usr/bin/ls /proc/self/fd",
            s.bin.display()
        )])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    let fds: Vec<&str> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(out.status.success(), "{out:?}");
    // 0, 1, 2 and the directory ls itself opened.
    assert!(!fds.contains(&"7"), "fd 7 leaked: {fds:?}");
    assert!(fds.len() <= 4, "{fds:?}");
}

/// Signals ignored by the caller stay ignored (`nohup jitsudo …` works), but jitsudo's
/// own changes do not leak: Rust ignores SIGPIPE and jitsudo ignores SIGXFSZ while it
/// writes, and an ignored signal survives exec.
#[test]
fn command_gets_the_callers_signal_dispositions_not_jitsudos() {
    let s = Sandbox::new();
    let token = s.mint(
        "alice",
        &["--command", "/usr/bin/grep SigIgn /proc/self/status"],
    );
    s.import_ok("alice", &token);
    let out = s
        .ns_command("sh")
        .args(["-c", &format!(
            "trap '' HUP; exec setpriv --reuid alice --regid alice --init-groups -- {} /usr/bin/grep SigIgn /proc/self/status",
            s.bin.display()
        )])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mask = u64::from_str_radix(text.trim().trim_start_matches("SigIgn:").trim(), 16)
        .unwrap_or_else(|_| panic!("{text:?}"));
    let bit = |signal: u32| mask & (1 << (signal - 1)) != 0;
    assert!(
        bit(1),
        "SIGHUP ignored by the caller must stay ignored: {text}"
    );
    assert!(!bit(13), "SIGPIPE must be default: {text}");
    assert!(!bit(25), "SIGXFSZ must be default: {text}");
}

#[test]
fn runs_without_setuid_are_refused_clearly() {
    let s = Sandbox::new();
    std::fs::set_permissions(&s.bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("must be installed setuid root");
}
