//! Shell escapes: a grant for one program is not a grant for a root shell. Each program
//! below can run another one (a pager's `!`, an editor's `:!`, `find -exec`, ...); the
//! escape runs `id -u > PROOF` as root. Without `--allow-exec` the exec is refused (the
//! program sees EACCES), PROOF never appears and the attempt is logged; with it, the very
//! same steps write PROOF, so each test shows that its escape is real.
//!
//! The other way out of a grant is time: a command (or a daemon it starts) that keeps
//! running as root after the window has closed. The last tests show the window end
//! reaching the whole tree, and the caller unable to stop the supervisor that ends it.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::sandbox::processes::{running, spawn, wait_ended, wait_until_running};
use crate::sandbox::{Outcome, Sandbox};
use crate::terminal_driver::{on_pty, PtyRun, Step};

/// A sandbox where alice holds a root grant for `commands`, with exec allowed or not;
/// the proof file's path (inside the sandbox's own directory, writable by root only).
fn world(commands: &[&str], allow_exec: bool) -> (Sandbox, PathBuf) {
    world_with_config(commands, allow_exec, "")
}

fn world_with_config(commands: &[&str], allow_exec: bool, config: &str) -> (Sandbox, PathBuf) {
    let s = Sandbox::new();
    s.write_config(config);
    let mut args: Vec<&str> = Vec::new();
    for c in commands {
        args.extend(["--command", c]);
    }
    if allow_exec {
        args.push("--allow-exec");
    }
    s.import_ok("alice", &s.mint("alice", &args));
    s.write_file("/etc/escape-target.txt", "hello from the file\n", 0o644);
    s.logs();
    let proof = s.dir.join("proof");
    (s, proof)
}

/// Refused: no proof, and the refusal in the log naming what was tried.
#[track_caller]
fn assert_refused(s: &Sandbox, proof: &PathBuf, what: &str) {
    assert!(
        !proof.exists(),
        "{what}: the escape ran as root (proof: {:?})",
        std::fs::read_to_string(proof)
    );
    let logs = s.logs();
    assert!(
        logs.iter().any(
            |l| l.contains(": alice : blocked exec of ") && l.contains(" ; USER=root ; GRANT=")
        ),
        "{what}: no blocked exec logged: {logs:#?}"
    );
}

#[track_caller]
fn assert_escaped(proof: &PathBuf, what: &str, detail: &dyn std::fmt::Debug) {
    assert_eq!(
        std::fs::read_to_string(proof).ok().as_deref(),
        Some("0\n"),
        "{what}: with --allow-exec the escape should run as root: {detail:?}"
    );
}

fn escape_command(proof: &Path) -> String {
    format!("/usr/bin/id -u > {}", proof.display())
}

// ---- without a terminal -----------------------------------------------------------------

/// Run `argv` (a root grant for `grant`) both ways.
fn both_ways(grant: &str, argv: &dyn Fn(&str) -> Vec<String>, what: &str) {
    for allow in [false, true] {
        let (s, proof) = world(&[grant], allow);
        let argv = argv(&escape_command(&proof));
        let out = Outcome::of(
            s.jitsudo("alice")
                .args(&argv)
                .stdin(Stdio::null())
                .output()
                .unwrap(),
        );
        if allow {
            assert_escaped(&proof, what, &out);
        } else {
            assert_refused(&s, &proof, what);
        }
    }
}

#[test]
fn find_exec_runs_no_shell() {
    both_ways(
        "/usr/bin/find *",
        &|cmd| {
            [
                "/usr/bin/find",
                "/etc/hostname",
                "-exec",
                "/bin/sh",
                "-c",
                cmd,
                ";",
            ]
            .map(String::from)
            .to_vec()
        },
        "find -exec",
    );
}

#[test]
fn awk_system_runs_no_shell() {
    both_ways(
        "/usr/bin/awk *",
        &|cmd| {
            vec![
                "/usr/bin/awk".into(),
                format!("BEGIN {{ system(\"{cmd}\") }}"),
            ]
        },
        "awk system()",
    );
}

#[test]
fn xargs_runs_no_shell() {
    both_ways(
        "/usr/bin/xargs *",
        &|cmd| {
            [
                "/usr/bin/xargs",
                "-a",
                "/etc/hostname",
                "/bin/sh",
                "-c",
                cmd,
                "sh",
            ]
            .map(String::from)
            .to_vec()
        },
        "xargs",
    );
}

#[test]
fn env_runs_no_shell() {
    both_ways(
        "/usr/bin/env *",
        &|cmd| {
            ["/usr/bin/env", "/bin/sh", "-c", cmd]
                .map(String::from)
                .to_vec()
        },
        "env",
    );
}

#[test]
fn tar_checkpoint_action_runs_no_shell() {
    both_ways(
        "/usr/bin/tar *",
        &|cmd| {
            vec![
                "/usr/bin/tar".into(),
                "-cf".into(),
                "/dev/null".into(),
                "--checkpoint=1".into(),
                format!("--checkpoint-action=exec={cmd}"),
                "/etc/hostname".into(),
            ]
        },
        "tar --checkpoint-action",
    );
}

// ---- on a terminal ----------------------------------------------------------------------

/// Run `script` on a pty both ways; `steps(proof_command, allowed)` drives it. The
/// script ends with `echo end-of-run` so that every run ends the same way.
fn both_ways_on_pty(grants: &[&str], script: &str, steps: &dyn Fn(&str, bool) -> Plan, what: &str) {
    both_ways_on_pty_with_config(grants, "", script, steps, what)
}

fn both_ways_on_pty_with_config(
    grants: &[&str],
    config: &str,
    script: &str,
    steps: &dyn Fn(&str, bool) -> Plan,
    what: &str,
) {
    for allow in [false, true] {
        let (s, proof) = world_with_config(grants, allow, config);
        let cmd = escape_command(&proof);
        let plan = steps(&cmd, allow);
        let owned: Vec<Step> = plan
            .iter()
            .map(|(send, text)| {
                if *send {
                    Step::Send(text)
                } else {
                    Step::Expect(text)
                }
            })
            .chain(std::iter::once(Step::Expect("end-of-run")))
            .collect();
        let run: PtyRun = on_pty(
            &s,
            "alice",
            &format!("TERM=vt100; export TERM; {script}; echo end-of-run"),
            &owned,
        );
        run.assert_completed();
        if allow {
            assert_escaped(&proof, what, &run);
        } else {
            assert_refused(&s, &proof, what);
        }
    }
}

/// What to do on the terminal: (send it, else wait for it; the text).
type Plan = Vec<(bool, String)>;

fn expect(text: &str) -> (bool, String) {
    (false, text.to_string())
}

fn send(text: &str) -> (bool, String) {
    (true, text.to_string())
}

/// In less: `!cmd`, then RETURN at "!done", then quit.
fn bang_in_less(cmd: &str) -> Plan {
    vec![
        send(&format!("!{cmd}\n")),
        expect("!done"),
        send("\n"),
        send("q"),
    ]
}

#[test]
fn less_bang_runs_no_shell() {
    both_ways_on_pty(
        &["/usr/bin/less /etc/escape-target.txt"],
        r#""$J" /usr/bin/less /etc/escape-target.txt"#,
        &|cmd, _| {
            let mut steps = vec![expect("hello from the file")];
            steps.extend(bang_in_less(cmd));
            steps
        },
        "less !cmd",
    );
}

#[test]
fn vim_bang_runs_no_shell() {
    both_ways_on_pty(
        &["/usr/bin/vim *"],
        r#""$J" /usr/bin/vim -u NONE -i NONE -N /etc/escape-target.txt"#,
        &|cmd, _| {
            vec![
                expect("hello from the file"),
                send(&format!(":!{cmd}\r")),
                expect("Press ENTER"),
                send("\r"),
                send(":q!\r"),
            ]
        },
        "vim :!cmd",
    );
}

#[test]
fn man_pager_bang_runs_no_shell() {
    // Without exec, man cannot even start its formatter or pager: there is nothing to
    // type `!` into, and man fails. With exec, its pager is less, and `!` runs as root.
    both_ways_on_pty(
        &["/usr/bin/man *"],
        r#""$J" /usr/bin/man -P /usr/bin/less true"#,
        &|cmd, allowed| {
            if allowed {
                let mut steps = vec![expect("TRUE")];
                steps.extend(bang_in_less(cmd));
                steps
            } else {
                Vec::new()
            }
        },
        "man -> pager !",
    );
}

#[test]
fn git_help_pager_bang_runs_no_shell() {
    // `git help` runs man, whose pager is less.
    both_ways_on_pty(
        &["/usr/bin/git *"],
        r#""$J" /usr/bin/git help git"#,
        &|cmd, allowed| {
            if allowed {
                let mut steps = vec![expect("GIT")];
                steps.extend(bang_in_less(cmd));
                steps
            } else {
                Vec::new()
            }
        },
        "git help -> pager !",
    );
}

#[test]
fn systemctl_pager_bang_runs_no_shell() {
    // systemctl pages its help through less on a terminal. As root it runs less in
    // secure mode (no `!`) unless SYSTEMD_PAGERSECURE=0, which a host can let through
    // with env_keep; that host is the one shown here.
    both_ways_on_pty_with_config(
        &["/usr/bin/systemctl *"],
        r#"env_keep = ["SYSTEMD_PAGERSECURE"]"#,
        r#"SYSTEMD_PAGERSECURE=0; export SYSTEMD_PAGERSECURE; "$J" /usr/bin/systemctl --help"#,
        &|cmd, allowed| {
            if allowed {
                let mut steps = vec![expect("Query or send control commands")];
                steps.extend(bang_in_less(cmd));
                steps
            } else {
                Vec::new()
            }
        },
        "systemctl -> pager !",
    );
}

// ---- outliving the window ----------------------------------------------------------------

#[test]
fn a_command_that_ignores_sigterm_gets_sigkill_after_the_grace() {
    let s = Sandbox::new();
    s.write_config("end_grace = \"1s\"\nend_warning = \"0s\"");
    s.import_ok(
        "alice",
        &s.mint("alice", &["--command", "/usr/bin/sh -c *", "--for", "3s"]),
    );
    let mut child = s
        .jitsudo("alice")
        .args(["/usr/bin/sh", "-c", "trap '' TERM; read x"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Its stdin stays open and empty: `read` would wait for ever.
    let _stdin = child.stdin.take();
    let status = wait_ended(child, Duration::from_secs(60));
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
}

#[test]
fn the_whole_tree_ends_at_expiry_setsid_and_double_forks_included() {
    let s = Sandbox::new();
    s.write_config("end_grace = \"2s\"\nend_warning = \"0s\"");
    s.import_ok(
        "alice",
        &s.mint(
            "alice",
            &[
                "--command",
                "/usr/bin/sh -c *",
                "--for",
                "4s",
                "--allow-exec",
            ],
        ),
    );
    let script = "/usr/bin/setsid /usr/bin/sleep 4011 & \
                  (/usr/bin/sleep 4012 &); \
                  (trap '' TERM; exec /usr/bin/sleep 4013) & \
                  exec /usr/bin/sleep 4014";
    let child = spawn(s.jitsudo("alice").args(["/usr/bin/sh", "-c", script]));
    for n in ["4011", "4012", "4013", "4014"] {
        wait_until_running(&["/usr/bin/sleep", n]);
    }
    let status = wait_ended(child, Duration::from_secs(60));
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    for n in ["4011", "4012", "4013", "4014"] {
        assert!(
            running(&["/usr/bin/sleep", n]).is_empty(),
            "sleep {n} outlived the run"
        );
    }
}

#[test]
fn the_caller_cannot_stop_or_kill_the_supervisor_to_keep_the_command_past_its_window() {
    let s = Sandbox::new();
    s.write_config("end_grace = \"2s\"\nend_warning = \"0s\"");
    s.import_ok(
        "alice",
        &s.mint(
            "alice",
            &["--command", "/usr/bin/sleep 4051", "--for", "4s"],
        ),
    );
    let child = spawn(s.jitsudo("alice").args(["/usr/bin/sleep", "4051"]));
    wait_until_running(&["/usr/bin/sleep", "4051"]);
    let pid = child.id().to_string();
    for signal in ["-STOP", "-KILL", "-TERM"] {
        let out = s
            .as_user("alice", "/bin/kill")
            .args([signal, &pid])
            .output()
            .unwrap();
        assert!(
            !out.status.success()
                && String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"),
            "alice could send {signal} to the root supervisor: {out:?}"
        );
    }
    let status = wait_ended(child, Duration::from_secs(60));
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert!(running(&["/usr/bin/sleep", "4051"]).is_empty());
}

/// Ctrl-Z stops the command and jitsudo; SIGCONT is allowed to anyone in the session, so
/// the caller can continue the root command alone while its supervisor stays stopped.
/// The kernel continues the supervisor at the window's end, and the run still ends.
#[test]
fn a_stopped_job_whose_command_is_continued_alone_still_ends_with_the_window() {
    let s = Sandbox::new();
    s.write_config("end_grace = \"2s\"\nend_warning = \"0s\"");
    let id = s.import_ok(
        "alice",
        &s.mint(
            "alice",
            &[
                "--command",
                "/usr/bin/sh -c *",
                "--allow-exec",
                "--for",
                "8s",
            ],
        ),
    );
    s.logs();
    let run = on_pty(
        &s,
        "alice",
        "exec /usr/bin/bash --norc --noprofile --noediting -i",
        &[
            Step::Send("PS1='prom''pt> '\n"),
            Step::Expect("prompt> "),
            Step::Send("\"$J\" /usr/bin/sh -c 'echo st''arted; exec /usr/bin/sleep 4061'\n"),
            Step::Expect("started"),
            Step::Send("\x1a"),
            Step::Expect("Stopped"),
            Step::Expect("prompt> "),
            // The command alone, not jitsudo (the job's leader).
            Step::Send(
                "P=$(pgrep -P $(jobs -p)); kill -CONT $P; echo \"cont=$?\"; \
                 while [ -d /proc/$P ]; do sleep 0.2; done; echo command-gone\n",
            ),
            Step::Expect("cont=0"),
            Step::Expect("command-gone"),
            Step::Send("exit\n"),
        ],
    );
    run.assert_completed();
    assert!(running(&["/usr/bin/sleep", "4061"]).is_empty());
    let logs = s.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("command ended: grant expired") && l.contains(&id)),
        "{logs:#?}"
    );
}
