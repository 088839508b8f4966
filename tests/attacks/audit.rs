//! Attacks on the audit trail: no command runs unlogged when syslog is required and
//! unreachable, or when the host journal cannot be written; an altered, removed or
//! reordered journal record is named by `jitsudoctl journal verify`.

use crate::sandbox::journal::verify;
use crate::sandbox::{Refusal, Sandbox};

#[test]
fn unreachable_syslog_refuses_when_required() {
    let s = Sandbox::new();
    s.import_ok(
        "alice",
        &s.mint("alice", &["--command", "/usr/bin/touch /tmp/ran"]),
    );
    s.write_config_with_log(
        "",
        "syslog_socket = \"/nonexistent/log.sock\"\nrequire = true\n",
    );
    let out = s.run("alice", &["/usr/bin/touch", "/tmp/ran"]);
    out.assert_denied("cannot write to syslog (/nonexistent/log.sock");
    assert!(out.stderr.contains("refusing to run the command unlogged"));
    assert!(!s.path("/tmp/ran").exists());
    // With require = false it runs, and says it could not log.
    s.write_config_with_log(
        "",
        "syslog_socket = \"/nonexistent/log.sock\"\nrequire = false\n",
    );
    let out = s.run("alice", &["/usr/bin/touch", "/tmp/ran"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("could not log"));
    assert!(s.path("/tmp/ran").exists());
    let _ = std::fs::remove_file(s.path("/tmp/ran"));
}

#[test]
fn a_command_that_cannot_be_journaled_does_not_run() {
    let s = Sandbox::new();
    s.import_ok(
        "alice",
        &s.mint("alice", &["--command", "/usr/bin/touch /tmp/ran"]),
    );
    // A journal that is not a regular root-only file is refused, and so is the run.
    let path = s.path("/var/lib/jitsudo/journal");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    s.run("alice", &["/usr/bin/touch", "/tmp/ran"])
        .assert_denied("cannot write the local journal");
    assert!(!s.path("/tmp/ran").exists());
}

fn tamper(s: &Sandbox, change: impl FnOnce(&mut Vec<String>)) {
    let path = s.path("/var/lib/jitsudo/journal");
    let mut lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    change(&mut lines);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

fn three_runs() -> Sandbox {
    let s = Sandbox::new();
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/true"]));
    for _ in 0..3 {
        assert_eq!(s.run("alice", &["/usr/bin/true"]).code, 0);
    }
    s
}

#[test]
fn altered_record_is_named() {
    let s = three_runs();
    tamper(&s, |l| l[2] = l[2].replace("\"alice\"", "\"mallory\""));
    let out = verify(&s);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("line 3 (record 3): content does not match its hash (altered)"),
        "{out:?}"
    );
}

#[test]
fn removed_record_is_named() {
    let s = three_runs();
    tamper(&s, |l| {
        l.remove(1);
    });
    let out = verify(&s);
    assert!(
        out.stderr
            .contains("line 2 (record 3): expected record 2, found 3"),
        "{out:?}"
    );
}

#[test]
fn reordered_records_are_named() {
    let s = three_runs();
    tamper(&s, |l| l.swap(1, 2));
    let out = verify(&s);
    assert!(out.stderr.contains("line 2 (record 3)"), "{out:?}");
}
