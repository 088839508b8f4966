//! Hostile input from the caller: odd user ids, command paths that try to escape the
//! grant, arguments that try to forge or flood log lines, and an environment meant to
//! reach the command.

use crate::sandbox::{Refusal, Sandbox};
use std::os::unix::fs::PermissionsExt;

#[test]
fn invalid_and_numeric_user_ids() {
    let s = Sandbox::new();
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/id -u"]));
    for bad in ["#4294967295", "#-1", "#+0", "#0x0", "#", "#99999999999"] {
        s.run("alice", &["-u", bad, "/usr/bin/id", "-u"])
            .assert_denied("is not a valid user id");
    }
    s.run("alice", &["-u", "-1", "/usr/bin/id", "-u"])
        .assert_denied("'-1' is not a valid user name");
    s.run("alice", &["-u", "nosuchuser", "/usr/bin/id", "-u"])
        .assert_denied("unknown user 'nosuchuser'");
    // #0 is just root: allowed by a root grant, nothing more.
    assert_eq!(
        s.run("alice", &["-u", "#0", "/usr/bin/id", "-u"])
            .stdout
            .trim(),
        "0"
    );
}

#[test]
fn paths_that_try_to_escape_the_grant() {
    let s = Sandbox::new();
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/id"]));
    let link = s.dir.join("id-link");
    std::os::unix::fs::symlink("/usr/bin/id", &link).unwrap();
    s.run("alice", &[link.to_str().unwrap()])
        .assert_denied("no grant allows");
    s.run("alice", &["/usr/bin/../bin/id"])
        .assert_denied("not in normal form");
    s.run("alice", &["./id"])
        .assert_denied("not an absolute path");
    s.run("alice", &["usr/bin/id"])
        .assert_denied("not an absolute path");
    s.run("alice", &["//usr/bin/id"])
        .assert_denied("not in normal form");
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
    // Bounded: each argument is cut to 1 KiB (ending in `\...`), and the full argv is
    // named by its length, word count and SHA-256 at the end of the line.
    assert!((2..=12).contains(&logs.len()), "{}", logs.len());
    assert!(logs[1..]
        .iter()
        .all(|l| l.contains(": alice : (command continued) ")));
    let total: usize = logs.iter().map(|l| l.matches('y').count()).sum();
    assert!((4 * 1000..=4 * 1024).contains(&total), "{total}");
    let bytes = "/usr/bin/true".len() + 1 + 4 * (32 * 1024 + 1);
    assert!(logs.last().unwrap().contains(" ; ARGV=sha256:"), "{logs:?}");
    assert!(
        logs.last()
            .unwrap()
            .ends_with(&format!(" bytes={bytes} words=5")),
        "{logs:?}"
    );
}

#[test]
fn caller_environment_does_not_reach_the_command() {
    let s = Sandbox::new();
    let token = s.mint("alice", &["--command", "/usr/bin/env"]);
    s.import_ok("alice", &token);
    // A planted `env` early in the caller's PATH must not be what runs.
    let evil = s.dir.join("evil");
    std::fs::create_dir_all(&evil).unwrap();
    std::fs::write(evil.join("env"), "#!/bin/sh\necho PLANTED\n").unwrap();
    std::fs::set_permissions(evil.join("env"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = s
        .jitsudo("alice")
        .arg("env")
        .env("PATH", format!("{}:/usr/bin:/bin", evil.display()))
        .env("LD_PRELOAD", "/nonexistent/evil.so")
        .env("LD_LIBRARY_PATH", "/tmp")
        .env("IFS", "x")
        .env("BASH_ENV", "/tmp/x")
        .env("ENV", "/tmp/x")
        .env("PYTHONPATH", "/tmp")
        .env("PERL5OPT", "-d")
        .env("SECRET_TOKEN", "hunter2")
        .env("TERM", "xterm-256color")
        .env("LANG", "C.UTF-8")
        .output()
        .unwrap();
    let env = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(!env.contains("PLANTED"));
    for gone in [
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "IFS=",
        "BASH_ENV",
        "\nENV=",
        "PYTHONPATH",
        "PERL5OPT",
        "SECRET_TOKEN",
    ] {
        assert!(!env.contains(gone), "{gone} leaked:\n{env}");
    }
    for kept in [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "TERM=xterm-256color",
        "LANG=C.UTF-8",
        "USER=root",
        "HOME=/root",
        "JITSUDO_USER=alice",
        "JITSUDO_UID=42001",
        "JITSUDO_GRANT=",
    ] {
        assert!(env.contains(kept), "{kept} missing:\n{env}");
    }
}
