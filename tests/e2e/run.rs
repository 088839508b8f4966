//! Running commands under grants: what is allowed, as whom, with what environment.

use crate::sandbox::{Refusal, Sandbox, HOST};
use std::os::unix::fs::PermissionsExt;

#[test]
fn allowed_command_runs_as_root() {
    let s = Sandbox::new();
    let token = s.mint("alice", &["--command", "/usr/bin/id -u"]);
    s.import_ok("alice", &token);
    let out = s.run("alice", &["/usr/bin/id", "-u"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "0");
    // A bare name resolves through secure_path.
    let out = s.run("alice", &["id", "-u"]);
    assert_eq!(out.stdout.trim(), "0", "{out:?}");
}

#[test]
fn exit_status_is_the_commands() {
    let s = Sandbox::new();
    let token = s.mint("alice", &["--command", r"/bin/sh -c exit\ 7"]);
    s.import_ok("alice", &token);
    let out = s.run("alice", &["/bin/sh", "-c", "exit 7"]);
    assert_eq!(out.code, 7, "{out:?}");
}

#[test]
fn run_as_another_user() {
    let s = Sandbox::new();
    let token = s.mint(
        "alice",
        &["--command", "/usr/bin/id -un", "--run-as", "bob"],
    );
    s.import_ok("alice", &token);
    let out = s.run("alice", &["-u", "bob", "/usr/bin/id", "-un"]);
    assert_eq!((out.code, out.stdout.trim()), (0, "bob"), "{out:?}");
    // Same grant, numeric form of bob's uid.
    let out = s.run("alice", &["-u", "#42002", "/usr/bin/id", "-un"]);
    assert_eq!(out.stdout.trim(), "bob", "{out:?}");
    // Not as root: the grant names bob only.
    s.run("alice", &["/usr/bin/id", "-un"])
        .assert_denied("only as bob");
}

#[test]
fn exact_argv_trailing_star_and_path_only() {
    let s = Sandbox::new();
    let token = s.mint(
        "alice",
        &[
            "--command",
            "/usr/bin/echo hello",
            "--command",
            "/usr/bin/printf *",
            "--command",
            "/usr/bin/whoami",
        ],
    );
    s.import_ok("alice", &token);
    assert_eq!(
        s.run("alice", &["/usr/bin/echo", "hello"]).stdout,
        "hello\n"
    );
    s.run("alice", &["/usr/bin/echo", "hello", "world"])
        .assert_denied("no grant allows '/usr/bin/echo hello world'");
    s.run("alice", &["/usr/bin/echo"])
        .assert_denied("no grant allows");
    assert_eq!(
        s.run("alice", &["/usr/bin/printf", "%s-%s", "a", "b"])
            .stdout,
        "a-b"
    );
    assert_eq!(s.run("alice", &["/usr/bin/whoami"]).stdout, "root\n");
    s.run("alice", &["/usr/bin/whoami", "--help"])
        .assert_denied("no grant allows");
}

#[test]
fn denial_names_the_request_to_make() {
    let s = Sandbox::new();
    let out = s.run("alice", &["/usr/bin/whoami"]);
    out.assert_denied(&format!(
        "no grant allows '/usr/bin/whoami' as root on {HOST}; ask with: jitsudo --request --reason \"…\" -- /usr/bin/whoami"
    ));
}

#[test]
fn one_time_grant_runs_once() {
    let s = Sandbox::new();
    let token = s.mint("alice", &["--command", "/usr/bin/id -u", "--uses", "1"]);
    s.import_ok("alice", &token);
    assert_eq!(s.run("alice", &["/usr/bin/id", "-u"]).stdout.trim(), "0");
    s.run("alice", &["/usr/bin/id", "-u"])
        .assert_denied("one-time grant has already been used");
    // Dropping and re-importing must not reset the counter.
    assert_eq!(s.run("alice", &["--drop"]).code, 0);
    s.import_ok("alice", &token);
    s.run("alice", &["/usr/bin/id", "-u"])
        .assert_denied("one-time grant has already been used");
}

#[test]
fn sixty_four_concurrent_uses_of_a_one_time_grant_run_exactly_once() {
    let s = Sandbox::new();
    let token = s.mint("alice", &["--command", "/usr/bin/id -u", "--uses", "1"]);
    s.import_ok("alice", &token);
    s.logs();
    let children: Vec<_> = (0..64)
        .map(|_| {
            s.jitsudo("alice")
                .args(["/usr/bin/id", "-u"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outcomes: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let ran = outcomes
        .iter()
        .filter(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "0")
        .count();
    let refused = outcomes
        .iter()
        .filter(|o| o.status.code() == Some(1) && o.stdout.is_empty())
        .count();
    assert_eq!((ran, refused), (1, 63));
    let logs = s.logs();
    assert_eq!(
        logs.iter()
            .filter(|l| l.starts_with("<85>") && l.contains("COMMAND=/usr/bin/id -u"))
            .count(),
        1
    );
    assert_eq!(
        logs.iter()
            .filter(|l| l.contains("one-time grant has already been used"))
            .count(),
        63
    );
}

#[test]
fn n_use_grant_under_contention_runs_exactly_n_times() {
    let s = Sandbox::new();
    let token = s.mint("alice", &["--command", "/usr/bin/id -u", "--uses", "5"]);
    s.import_ok("alice", &token);
    let children: Vec<_> = (0..64)
        .map(|_| {
            s.jitsudo("alice")
                .args(["/usr/bin/id", "-u"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let ran = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .filter(|o| o.status.success())
        .count();
    assert_eq!(ran, 5);
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

#[test]
fn sha256_pin_runs_the_hashed_file_and_refuses_a_changed_one() {
    use sha2::{Digest, Sha256};
    let s = Sandbox::new();
    let script = s.dir.join("bin/deploy");
    std::fs::write(&script, "#!/bin/sh\necho deployed \"$@\"\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let hash: String = Sha256::digest(std::fs::read(&script).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let spec = format!("sha256:{hash} {} *", script.display());
    s.import_ok("alice", &s.mint("alice", &["--command", &spec]));
    let path = script.to_str().unwrap();
    let out = s.run("alice", &[path, "v2"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "deployed v2\n"),
        "{out:?}"
    );

    // A pinned binary (not a script) runs through fexecve too.
    let id_copy = s.dir.join("bin/id-copy");
    std::fs::copy("/usr/bin/id", &id_copy).unwrap();
    let hash: String = Sha256::digest(std::fs::read(&id_copy).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    s.import_ok(
        "alice",
        &s.mint(
            "alice",
            &[
                "--command",
                &format!("sha256:{hash} {} -u", id_copy.display()),
            ],
        ),
    );
    let out = s.run("alice", &[id_copy.to_str().unwrap(), "-u"]);
    assert_eq!(out.stdout.trim(), "0", "{out:?}");

    std::fs::write(&script, "#!/bin/sh\necho tampered\n").unwrap();
    s.run("alice", &[path, "v2"])
        .assert_denied("does not match the grant's sha256 pin");
}

#[test]
fn not_yet_valid_grant_is_cached_but_refused() {
    let s = Sandbox::new();
    s.import_ok(
        "alice",
        &s.mint(
            "alice",
            &["--command", "/usr/bin/id", "--start", "+1h", "--for", "1h"],
        ),
    );
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("not yet valid (starts in");
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
