//! The syslog contract: one line per invocation, allowed or denied, escaped, and no
//! command runs unlogged when `[log] require = true`.

use crate::sandbox::{Refusal, Sandbox};

#[test]
fn allowed_and_denied_lines() {
    let s = Sandbox::new();
    let id = s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/id -u"]));
    s.logs();
    assert_eq!(s.run("alice", &["/usr/bin/id", "-u"]).code, 0);
    s.run("alice", &["/usr/bin/whoami"])
        .assert_denied("no grant");
    let logs = s.logs();
    assert_eq!(logs.len(), 2, "{logs:#?}");
    let pwd = s.dir.display();
    // authpriv.notice = 10*8+5 = 85, authpriv.alert = 81
    assert!(logs[0].starts_with("<85>"), "{}", logs[0]);
    assert!(
        logs[0].ends_with(&format!(
            ": alice : TTY=unknown ; PWD={pwd} ; USER=root ; GRANT={id} ; COMMAND=/usr/bin/id -u"
        )),
        "{}",
        logs[0]
    );
    assert!(logs[0].contains(" jitsudo["), "{}", logs[0]);
    assert!(logs[1].starts_with("<81>"), "{}", logs[1]);
    assert!(
        logs[1].ends_with(&format!(
            ": alice : command not allowed: no grant ; TTY=unknown ; PWD={pwd} ; USER=root ; COMMAND=/usr/bin/whoami"
        )),
        "{}",
        logs[1]
    );
}

#[test]
fn newline_and_escape_arguments_stay_on_one_line() {
    let s = Sandbox::new();
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/echo *"]));
    s.logs();
    let evil =
        "x\nNov 23 00:00:00 web-01 jitsudo[1]: mallory : TTY=pts/0 ; COMMAND=/bin/true\x1b[2K";
    let out = s.run("alice", &["/usr/bin/echo", evil]);
    assert_eq!(out.code, 0);
    let logs = s.logs();
    assert_eq!(logs.len(), 1, "{logs:#?}");
    assert!(!logs[0].contains('\n') && !logs[0].contains('\x1b'));
    assert!(
        logs[0].contains("COMMAND=/usr/bin/echo x#012Nov 23"),
        "{}",
        logs[0]
    );
    assert!(logs[0].ends_with("COMMAND=/bin/true#033[2K"), "{}", logs[0]);
}

#[test]
fn long_arguments_are_split_into_continued_lines() {
    let s = Sandbox::new();
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/true *"]));
    s.logs();
    // 128 KiB of arguments (one argument may be at most 128 KiB including its NUL).
    let big = "y".repeat(32 * 1024);
    assert_eq!(
        s.run("alice", &["/usr/bin/true", &big, &big, &big, &big])
            .code,
        0
    );
    let logs = s.logs();
    assert!(logs.len() > 100, "{}", logs.len());
    assert!(logs[1..]
        .iter()
        .all(|l| l.contains(": alice : (command continued) yyy")));
    let total: usize = logs.iter().map(|l| l.matches('y').count()).sum();
    assert!(
        total >= 128 * 1024,
        "every byte of the argument is logged: {total}"
    );
}

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
fn a_failed_use_is_not_counted_when_logging_fails() {
    let s = Sandbox::new();
    s.import_ok(
        "alice",
        &s.mint("alice", &["--command", "/usr/bin/id -u", "--uses", "1"]),
    );
    s.write_config_with_log("", "syslog_socket = \"/nonexistent/log.sock\"\n");
    s.run("alice", &["/usr/bin/id", "-u"])
        .assert_denied("cannot write to syslog");
    s.write_config("");
    assert_eq!(s.run("alice", &["/usr/bin/id", "-u"]).stdout.trim(), "0");
}

#[test]
fn facility_is_configurable() {
    let s = Sandbox::new();
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/id"]));
    s.write_config_with_log(
        "",
        &format!(
            "syslog_socket = \"{}\"\nfacility = \"local3\"\n",
            s.log_path.display()
        ),
    );
    s.logs();
    assert_eq!(s.run("alice", &["/usr/bin/id"]).code, 0);
    // local3 = 19; 19*8+5 = 157
    assert!(s.logs()[0].starts_with("<157>"));
}
