//! A grant holds for the command's whole life: the run ends when the window closes
//! (expiry, or a revocation learnt by --sync), the whole process tree with it; the
//! terminal is warned first; and no other program runs unless the grant allows exec.
//! The escapes themselves (less !cmd, find -exec, a daemon that would outlive the
//! window, ...) are in tests/attacks/escapes.rs.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::sandbox::processes::{running, spawn, wait_ended, wait_until_running};
use crate::sandbox::Sandbox;
use crate::terminal_driver::{on_pty, Step};

fn the_line<'a>(logs: &'a [String], needle: &str) -> &'a String {
    let found: Vec<&String> = logs.iter().filter(|l| l.contains(needle)).collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one line with {needle:?}: {logs:#?}"
    );
    found[0]
}

#[test]
fn sleep_is_ended_at_expiry_with_sigterm_and_the_end_is_logged() {
    let s = Sandbox::new();
    s.write_config("end_grace = \"2s\"\nend_warning = \"1s\"");
    let id = s.import_ok(
        "alice",
        &s.mint(
            "alice",
            &["--command", "/usr/bin/sleep 4001", "--for", "3s"],
        ),
    );
    s.logs();
    let status = wait_ended(
        spawn(s.jitsudo("alice").args(["/usr/bin/sleep", "4001"])),
        Duration::from_secs(60),
    );
    // 128 + SIGTERM for the caller's shell.
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    let logs = s.logs();
    let line = the_line(&logs, "command ended: grant expired");
    assert!(
        line.contains(": alice : command ended: grant expired ; ")
            && line.contains(&format!(" ; GRANT={id} ; COMMAND=/usr/bin/sleep 4001")),
        "{line}"
    );
    assert!(running(&["/usr/bin/sleep", "4001"]).is_empty());
}

#[test]
fn what_the_command_leaves_behind_ends_with_it() {
    let s = Sandbox::new();
    s.write_config("end_grace = \"2s\"");
    s.import_ok(
        "alice",
        &s.mint("alice", &["--command", "/usr/bin/sh -c *", "--allow-exec"]),
    );
    let out = s
        .jitsudo("alice")
        .args([
            "/usr/bin/sh",
            "-c",
            "(/usr/bin/setsid /usr/bin/sleep 4021 &); (/usr/bin/sleep 4022 &); exit 5",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(out.code(), Some(5), "the command's own status: {out:?}");
    for n in ["4021", "4022"] {
        assert!(
            running(&["/usr/bin/sleep", n]).is_empty(),
            "sleep {n} outlived the run"
        );
    }
}

#[test]
fn a_revocation_written_by_sync_ends_a_running_command() {
    let s = Sandbox::new();
    s.write_config("end_grace = \"2s\"");
    let id = s.import_ok(
        "alice",
        &s.mint("alice", &["--command", "/usr/bin/sleep 4031"]),
    );
    s.logs();
    let child = spawn(s.jitsudo("alice").args(["/usr/bin/sleep", "4031"]));
    wait_until_running(&["/usr/bin/sleep", "4031"]);
    store_revocations(&s, &id);
    let status = wait_ended(child, Duration::from_secs(60));
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    let logs = s.logs();
    let line = the_line(&logs, "command ended: grant revoked");
    assert!(line.contains(&format!("GRANT={id}")), "{line}");
    assert!(running(&["/usr/bin/sleep", "4031"]).is_empty());
}

#[test]
fn an_unrelated_revocation_does_not_end_the_run() {
    let s = Sandbox::new();
    s.import_ok(
        "alice",
        &s.mint("alice", &["--command", "/usr/bin/sh -c *", "--allow-exec"]),
    );
    let now = jitsudo_now();
    // The list changes while the command runs, but not for this grant: it runs to its end.
    let out = s
        .jitsudo("alice")
        .args([
            "/usr/bin/sh",
            "-c",
            &format!(
                "umask 077; echo '{{\"issued_at\":{now},\"ids\":[\"someone-else\"]}}' > /var/lib/jitsudo/revocations.json; \
                 /usr/bin/sleep 5; echo finished"
            ),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "finished\n");
}

/// What `jitsudo --sync` stores once the service's signed list is verified: `id` revoked,
/// as of now.
fn store_revocations(s: &Sandbox, id: &str) {
    let now = jitsudo_now();
    s.write_file(
        "/var/lib/jitsudo/revocations.json",
        &format!("{{\"issued_at\":{now},\"ids\":[\"{id}\"]}}"),
        0o600,
    );
}

fn jitsudo_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn the_terminal_is_warned_before_the_end() {
    let s = Sandbox::new();
    s.write_config("end_warning = \"1h\"\nend_grace = \"2s\"");
    let id = s.import_ok(
        "alice",
        &s.mint(
            "alice",
            &["--command", "/usr/bin/sleep 4041", "--for", "5s"],
        ),
    );
    let run = on_pty(
        &s,
        "alice",
        r#""$J" /usr/bin/sleep 4041; echo "rc=$?""#,
        &[
            Step::Expect(&format!("jitsudo: grant {id} ends in ")),
            Step::Expect("the command will then be ended"),
            Step::Expect(&format!(
                "jitsudo: grant expired (grant {id}); ending the command"
            )),
            Step::Expect("rc=143"),
        ],
    );
    run.assert_completed();
}

#[test]
fn another_users_terminal_is_warned_through_the_pty_relay() {
    let s = Sandbox::new();
    s.write_config("end_warning = \"1h\"\nend_grace = \"2s\"");
    let id = s.import_ok(
        "alice",
        &s.mint(
            "alice",
            &[
                "--command",
                "/usr/bin/sleep 4042",
                "--run-as",
                "bob",
                "--for",
                "5s",
            ],
        ),
    );
    let run = on_pty(
        &s,
        "alice",
        r#""$J" -u bob /usr/bin/sleep 4042; echo "rc=$?""#,
        &[
            Step::Expect(&format!("jitsudo: grant {id} ends in ")),
            Step::Expect("jitsudo: grant expired"),
            Step::Expect("rc=143"),
        ],
    );
    run.assert_completed();
}

#[test]
fn exec_is_refused_unless_the_grant_allows_it_and_logged_once() {
    let s = Sandbox::new();
    let id = s.import_ok(
        "alice",
        &s.mint("alice", &["--command", "/usr/bin/sh -c *"]),
    );
    s.logs();
    let out = s.run(
        "alice",
        &[
            "/usr/bin/sh",
            "-c",
            "/usr/bin/id -u; /usr/bin/id -u; echo \"rc=$?\"",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    // 126: found but could not be executed (EACCES).
    assert_eq!(out.stdout, "rc=126\n", "{out:?}");
    assert!(out.stderr.contains("Permission denied"), "{out:?}");
    let logs = s.logs();
    let line = the_line(&logs, "blocked exec of /usr/bin/id by ");
    assert!(
        line.contains(": alice : blocked exec of /usr/bin/id by /usr/bin/")
            && line.ends_with(&format!(" ; USER=root ; GRANT={id}")),
        "{line}"
    );

    let s = Sandbox::new();
    s.import_ok(
        "alice",
        &s.mint("alice", &["--command", "/usr/bin/sh -c *", "--allow-exec"]),
    );
    s.logs();
    let out = s.run(
        "alice",
        &["/usr/bin/sh", "-c", "/usr/bin/id -u; echo \"rc=$?\""],
    );
    assert_eq!(out.stdout, "0\nrc=0\n", "{out:?}");
    assert!(!s.logs().iter().any(|l| l.contains("blocked exec")));
}

#[test]
fn list_shows_whether_a_grant_allows_exec() {
    let s = Sandbox::new();
    let plain = s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/id"]));
    let exec = s.import_ok(
        "alice",
        &s.mint(
            "alice",
            &[
                "--command",
                "/usr/bin/less *",
                "--allow-exec",
                "--for",
                "2h",
            ],
        ),
    );
    let list = s.run("alice", &["-l"]);
    assert_eq!(list.code, 0, "{list:?}");
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert!(lines[0].contains("  EXEC  COMMANDS"), "{list:?}");
    let row = |id: &str| *lines.iter().find(|l| l.starts_with(&id[..12])).unwrap();
    assert!(row(&plain).contains("  no    /usr/bin/id"), "{list:?}");
    assert!(row(&exec).contains("  yes   /usr/bin/less *"), "{list:?}");
}

#[test]
fn root_commands_keep_signals_and_exit_status_without_a_terminal() {
    let s = Sandbox::new();
    s.import_ok(
        "alice",
        &s.mint(
            "alice",
            &[
                "--command",
                "/usr/bin/python3 *",
                "--command",
                "/usr/bin/sh -c *",
            ],
        ),
    );
    assert_eq!(s.run("alice", &["/usr/bin/sh", "-c", "exit 42"]).code, 42);
    let status = s
        .jitsudo("alice")
        .args(["/usr/bin/sh", "-c", "kill -TERM $$"])
        .status()
        .unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");

    // A signal sent to jitsudo (by root: the supervisor is root in every id) from
    // outside the caller's process group reaches the command, and jitsudo ends as the
    // command did. (From inside that group, as from the terminal, the command got it
    // already, as the group's member.)
    let mut child = s
        .jitsudo("alice")
        .args([
            "/usr/bin/python3",
            "-c",
            "import time; print('ready', flush=True); time.sleep(60)",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "ready\n");
    let ok = Command::new("setsid")
        .args(["--wait", "kill", "-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let status = wait_ended(child, Duration::from_secs(20));
    assert_eq!(status.signal(), Some(libc::SIGHUP), "{status:?}");
}

#[test]
fn ctrl_z_and_fg_work_for_a_root_command_in_the_callers_job() {
    let s = Sandbox::new();
    s.import_ok(
        "alice",
        &s.mint("alice", &["--command", "/usr/bin/python3 *"]),
    );
    let run = on_pty(
        &s,
        "alice",
        r#"exec /usr/bin/bash --norc --noprofile --noediting -i"#,
        &[
            Step::Send("PS1='prom''pt> '\n"),
            Step::Expect("prompt> "),
            Step::Send(
                "\"$J\" /usr/bin/python3 -c 'print(\"re\" + \"ady\", flush=True); print(\"got\", input().upper())'\n",
            ),
            Step::Expect("ready"),
            Step::Send("\x1a"),
            Step::Expect("Stopped"),
            Step::Expect("prompt> "),
            Step::Send("fg\n"),
            Step::Send("again\n"),
            Step::Expect("got AGAIN"),
            Step::Expect("prompt> "),
            // Death by SIGINT is passed on as such: the shell sees 128 + 2.
            Step::Send("\"$J\" /usr/bin/python3 -c 'import os; os.kill(os.getpid(), 2)'\n"),
            Step::Expect("KeyboardInterrupt"),
            Step::Send("echo \"rc=$?\"\n"),
            Step::Expect("rc=130"),
            Step::Send("exit\n"),
        ],
    );
    run.assert_completed();
}

/// Every line received so far, until one contains `needle` (at most 60 s).
fn logs_until(s: &Sandbox, needle: &str) -> Vec<String> {
    let mut all = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !all.iter().any(|l: &String| l.contains(needle)) {
        assert!(
            std::time::Instant::now() < deadline,
            "no line with {needle:?}: {all:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
        all.extend(s.logs());
    }
    all
}

#[test]
fn a_run_continues_past_its_grants_end_under_a_cached_extension() {
    let s = Sandbox::new();
    // No warning: the supervisor meets the end itself, and looks for a successor there.
    s.write_config("end_grace = \"2s\"\nend_warning = \"0s\"");
    let spec = "/usr/bin/sleep 4033";
    let first = s.import_ok(
        "alice",
        &s.mint("alice", &["--command", spec, "--for", "3s"]),
    );
    // Grants that do not replace the running one exactly are passed over.
    s.import_ok(
        "alice",
        &s.mint(
            "alice",
            &[
                "--command",
                "/usr/bin/sleep 4034",
                "--for",
                "10m",
                "--extends",
                &first,
            ],
        ),
    );
    s.import_ok(
        "alice",
        &s.mint(
            "alice",
            &[
                "--command",
                spec,
                "--for",
                "10m",
                "--run-as",
                "bob",
                "--extends",
                &first,
            ],
        ),
    );
    let second = s.import_ok(
        "alice",
        &s.mint(
            "alice",
            &["--command", spec, "--for", "10m", "--extends", &first],
        ),
    );
    s.logs();
    let child = spawn(s.jitsudo("alice").args(["/usr/bin/sleep", "4033"]));
    wait_until_running(&["/usr/bin/sleep", "4033"]);
    let logs = logs_until(&s, &format!("command continues under grant {second}"));
    let line = the_line(&logs, "command continues under grant");
    assert!(line.contains(&format!("(extends grant {first})")), "{line}");
    assert!(line.contains(&format!("GRANT={second}")), "{line}");
    assert!(
        !logs.iter().any(|l| l.contains("command ended")),
        "{logs:#?}"
    );
    // Well past the first grant's end, the command still runs under the second.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(running(&["/usr/bin/sleep", "4033"]).len(), 1);
    assert!(!s.logs().iter().any(|l| l.contains("command ended")));
    // The second grant's revocation ends it: nothing replaces that one.
    store_revocations(&s, &second);
    let status = wait_ended(child, Duration::from_secs(60));
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    let logs = s.logs();
    let line = the_line(&logs, "command ended: grant revoked");
    assert!(line.contains(&format!("GRANT={second}")), "{line}");
}
