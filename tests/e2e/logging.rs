//! The syslog contract: one line per invocation, allowed or denied, and the facility.
//! Escaping, long arguments and `[log] require = true` are in tests/attacks.

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
