//! Re-authentication (`authenticate = true`): the real setuid binary runs the real
//! jitsudo-auth helper, installed at its fixed path in the sandbox's /usr overlay, which
//! runs the PAM service `jitsudo` from the sandbox's /etc/pam.d. The stacks use
//! pam_permit / pam_deny, and pam_exec to count how often authentication ran.
//!
//! The fixtures are in sandbox.rs (`sandbox::pam`), shared with tests/attacks, where a
//! missing or writable helper is tested.
//!
//! Terminals come from script(1): everything in one `script` run shares one
//! pseudo-terminal and one login session, as commands typed in one shell would.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::process::Stdio;

use crate::sandbox::pam::{auth_count, permit, sandbox, stack};
use crate::sandbox::{Outcome, Refusal, Sandbox};

/// Run `body` (sh, with `$J` the setuid jitsudo and `$M` the marks file) as `user` in a
/// new pseudo-terminal and login session. Returns the non-empty output lines.
fn in_terminal(s: &Sandbox, user: &str, body: &str) -> Vec<String> {
    let script = format!(
        "J={}; M={}; {body}",
        s.bin.display(),
        s.dir.join("auth-marks").display()
    );
    let out = Outcome::of(
        s.ns_command("setpriv")
            .args(["--reuid", user, "--regid", user, "--init-groups", "--"])
            .args(["script", "-qec", &script, "/dev/null"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{out:?}");
    out.stdout
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Run `$J ARGS` as `user` on a new terminal, typing each of `answers` once the output
/// ends with "Password: " (as a person would: after the prompt, not ahead of it).
fn answer_prompts(s: &Sandbox, user: &str, args: &str, answers: &[&str]) -> Outcome {
    let script = format!("{} {args}", s.bin.display());
    let mut child = s
        .ns_command("setpriv")
        .args(["--reuid", user, "--regid", user, "--init-groups", "--"])
        .args(["script", "-qec", &script, "/dev/null"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    for answer in answers {
        let mut byte = [0u8; 1];
        while !seen.ends_with(b"Password: ") {
            assert_eq!(stdout.read(&mut byte).unwrap(), 1, "no prompt: {seen:?}");
            seen.push(byte[0]);
        }
        seen.push(b'|');
        stdin.write_all(format!("{answer}\n").as_bytes()).unwrap();
    }
    stdout.read_to_end(&mut seen).unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Outcome {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&seen).into_owned(),
        stderr,
    }
}

/// pam_unix with a known password in the sandbox's /etc/shadow, typed on a terminal.
fn password_sandbox() -> Sandbox {
    let s = sandbox(
        "",
        "auth required pam_unix.so nodelay\naccount required pam_unix.so\n",
    );
    let hash = "$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.";
    let out = s
        .ns_command("usermod")
        .args(["-p", hash, "alice"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    s
}

#[test]
fn right_password_on_the_terminal() {
    let s = password_sandbox();
    let out = answer_prompts(&s, "alice", "/usr/bin/id -u", &["secret"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Password:"), "{out:?}");
    assert!(
        !out.stdout.contains("secret"),
        "the password was echoed: {out:?}"
    );
    assert_eq!(
        out.stdout.lines().last().map(str::trim),
        Some("0"),
        "{out:?}"
    );
}

#[test]
fn wrong_password_three_times() {
    let s = password_sandbox();
    s.logs();
    let out = answer_prompts(
        &s,
        "alice",
        "/usr/bin/id -u",
        &["wrong1", "wrong2", "wrong3"],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stdout.matches("Password:").count(), 3, "{out:?}");
    assert_eq!(
        out.stdout.matches("Sorry, try again.").count(),
        2,
        "{out:?}"
    );
    assert!(
        out.stdout.contains(
            "authentication failed for alice (PAM service jitsudo): 3 incorrect password attempts"
        ),
        "{out:?}"
    );
    assert!(
        !out.stdout.contains("wrong"),
        "the password was echoed: {out:?}"
    );
    let logs = s.logs();
    assert!(
        logs.iter().any(|l| l.contains("authentication failed: ")),
        "{logs:#?}"
    );
}

#[test]
fn denied_when_pam_denies() {
    let s = sandbox("", &stack("pam_deny.so", "pam_permit.so"));
    s.logs();
    let ran = s.dir.join("ran");
    let out = s.run("alice", &["/usr/bin/touch", ran.to_str().unwrap()]);
    out.assert_denied("authentication failed for alice (PAM service jitsudo)");
    assert!(!ran.exists(), "the command must not run");
    assert_eq!(auth_count(&s), 1);
    let logs = s.logs();
    assert_eq!(logs.len(), 1, "{logs:#?}");
    assert!(logs[0].starts_with("<81>"), "{}", logs[0]);
    assert!(
        logs[0].contains(": alice : command not allowed: authentication failed: "),
        "{}",
        logs[0]
    );
    assert!(logs[0].contains(" ; GRANT="), "{}", logs[0]);
}

#[test]
fn allowed_when_pam_permits() {
    let s = sandbox("", &permit());
    s.logs();
    let out = s.run("alice", &["/usr/bin/id", "-u"]);
    assert_eq!((out.code, out.stdout.trim()), (0, "0"), "{out:?}");
    assert_eq!(auth_count(&s), 1);
    // The helper saw who asks.
    let marks = fs::read_to_string(s.dir.join("auth-marks")).unwrap();
    assert!(marks.starts_with("alice"), "{marks}");
    let logs = s.logs();
    assert_eq!(logs.len(), 1, "{logs:#?}");
    assert!(logs[0].starts_with("<85>"), "{}", logs[0]);
}

#[test]
fn account_stack_is_checked_too() {
    let s = sandbox("", &stack("pam_permit.so", "pam_deny.so"));
    s.run("alice", &["/usr/bin/id", "-u"])
        .assert_denied("account refused");
}

#[test]
fn no_terminal_always_authenticates() {
    let s = sandbox("", &permit());
    for _ in 0..2 {
        assert_eq!(s.run("alice", &["/usr/bin/id", "-u"]).code, 0);
    }
    assert_eq!(auth_count(&s), 2);
    assert!(!s.path("/var/lib/jitsudo/ts/42001").exists());
}

#[test]
fn no_terminal_for_a_password_prompt_says_so() {
    let s = sandbox(
        "",
        "auth required pam_unix.so\naccount required pam_permit.so\n",
    );
    s.run("alice", &["/usr/bin/id", "-u"])
        .assert_denied("there is no terminal to ask on; run jitsudo from a terminal");
}

#[test]
fn timestamp_reused_on_the_same_terminal_until_k() {
    let s = sandbox("", &permit());
    let lines = in_terminal(
        &s,
        "alice",
        "$J /usr/bin/id -u; wc -l < $M
         $J /usr/bin/id -u; wc -l < $M
         $J -k; wc -l < $M
         $J /usr/bin/id -u; wc -l < $M",
    );
    // id's output, then the number of authentications so far.
    assert_eq!(lines, ["0", "1", "0", "1", "1", "0", "2"], "{lines:#?}");
    // The helper was told the terminal.
    let marks = fs::read_to_string(s.dir.join("auth-marks")).unwrap();
    assert!(marks.starts_with("alice /dev/pts/"), "{marks}");

    // The timestamp: root 0600 in root 0700 directories, one file per terminal.
    let dir = s.path("/var/lib/jitsudo/ts/42001");
    let meta = fs::metadata(&dir).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o700));
    let files: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap()).collect();
    assert_eq!(files.len(), 1);
    assert!(files[0].file_name().to_string_lossy().starts_with("tty-"));
    let meta = files[0].metadata().unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o600));
}

#[test]
fn new_session_asks_again() {
    let s = sandbox("", &permit());
    let first = in_terminal(&s, "alice", "$J /usr/bin/id -u; $J /usr/bin/id -u");
    assert_eq!(first, ["0", "0"]);
    assert_eq!(auth_count(&s), 1);
    // A new login session (and pseudo-terminal, perhaps with the same number).
    in_terminal(&s, "alice", "$J /usr/bin/id -u");
    assert_eq!(auth_count(&s), 2);
}

#[test]
fn another_user_does_not_inherit_the_timestamp() {
    let s = sandbox("", &permit());
    s.import_ok("bob", &s.mint("bob", &["--command", "/usr/bin/id -u"]));
    in_terminal(&s, "alice", "$J /usr/bin/id -u");
    in_terminal(&s, "bob", "$J /usr/bin/id -u");
    assert_eq!(auth_count(&s), 2);
}

#[test]
fn zero_timeout_asks_every_time() {
    let s = sandbox("auth_timeout = \"0s\"\n", &permit());
    let lines = in_terminal(
        &s,
        "alice",
        "$J /usr/bin/id -u; wc -l < $M; $J /usr/bin/id -u; wc -l < $M",
    );
    assert_eq!(lines, ["0", "1", "0", "2"], "{lines:#?}");
    assert!(!s.path("/var/lib/jitsudo/ts/42001").exists());
}

#[test]
fn timestamp_expires() {
    let s = sandbox("auth_timeout = \"1s\"\n", &permit());
    let lines = in_terminal(
        &s,
        "alice",
        "$J /usr/bin/id -u; $J /usr/bin/id -u; wc -l < $M; sleep 1.5; $J /usr/bin/id -u; wc -l < $M",
    );
    assert_eq!(lines, ["0", "0", "1", "0", "2"], "{lines:#?}");
}

#[test]
fn failed_authentication_spends_no_use() {
    let s = sandbox("", &stack("pam_deny.so", "pam_permit.so"));
    s.import_ok(
        "alice",
        &s.mint("alice", &["--command", "/usr/bin/whoami", "--uses", "1"]),
    );
    s.run("alice", &["/usr/bin/whoami"])
        .assert_denied("authentication failed");
    s.write_file("/etc/pam.d/jitsudo", &permit(), 0o644);
    let out = s.run("alice", &["/usr/bin/whoami"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "root\n"), "{out:?}");
}

#[test]
fn no_authentication_when_off() {
    let s = sandbox("", &stack("pam_deny.so", "pam_permit.so"));
    s.write_config("");
    assert_eq!(s.run("alice", &["/usr/bin/id", "-u"]).code, 0);
    assert_eq!(auth_count(&s), 0);
}

#[test]
fn helper_run_by_hand_refuses_without_root() {
    let s = sandbox("", &permit());
    let out = Outcome::of(
        s.ns_command("setpriv")
            .args([
                "--reuid",
                "alice",
                "--regid",
                "alice",
                "--init-groups",
                "--",
            ])
            .args(["/usr/libexec/jitsudo/jitsudo-auth", "alice", ""])
            .env_clear()
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.contains("must be run as root"), "{out:?}");
    assert_eq!(auth_count(&s), 0);
}
