//! Commands on a terminal. Root (the default target) and the caller's own user run on
//! the caller's terminal, in the caller's job; any other user gets a new pty in a new session, which jitsudo relays to the
//! caller's terminal (input, output, window size, exit status, job control). Without a
//! terminal, a new session with none. The attack this prevents is in
//! tests/attacks/terminal.rs.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::sandbox::processes::without_terminal;
use crate::sandbox::{Outcome, Refusal, Sandbox};
use crate::terminal_driver::{on_pty, Step};

/// Alice may run, as bob: cat, tty, any sh and any python3 command; as root: tty and
/// any `sh -c`.
fn sandbox() -> Sandbox {
    let s = Sandbox::new();
    let as_bob = s.mint(
        "alice",
        &[
            "--command",
            "/usr/bin/cat",
            "--command",
            "/usr/bin/tty",
            "--command",
            "/usr/bin/sh *",
            "--command",
            "/usr/bin/python3 *",
            "--run-as",
            "bob",
            // These shells run other programs (stty, sleep, tty).
            "--allow-exec",
        ],
    );
    s.import_ok("alice", &as_bob);
    let as_root = s.mint(
        "alice",
        &[
            "--command",
            "/usr/bin/tty",
            "--command",
            "/usr/bin/sh -c *",
            "--allow-exec",
        ],
    );
    s.import_ok("alice", &as_root);
    let as_alice = s.mint("alice", &["--command", "/usr/bin/tty", "--run-as", "alice"]);
    s.import_ok("alice", &as_alice);
    s
}

/// The `/dev/pts/N` lines of a terminal's output, in order.
fn pts_lines(output: &str) -> Vec<String> {
    output
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| l.starts_with("/dev/pts/"))
        .collect()
}

#[test]
fn input_and_output_pass_through_the_pty_and_modes_are_restored() {
    let s = sandbox();
    let run = on_pty(
        &s,
        "alice",
        r#"a=$(stty -g); "$J" -u bob /usr/bin/cat; echo "rc=$?"; [ "$(stty -g)" = "$a" ] && echo modes-restored"#,
        &[
            Step::WaitRaw,
            Step::Send("hello pty\n"),
            // Once echoed by the pty, once written back by cat.
            Step::Expect("hello pty"),
            Step::Expect("hello pty"),
            // Ctrl-D: end of input, through the pty's own line discipline.
            Step::Send("\x04"),
            Step::Expect("rc=0"),
            Step::Expect("modes-restored"),
        ],
    );
    run.assert_completed();
    assert_eq!(run.code, Some(0), "{run:#?}");
}

#[test]
fn another_user_gets_a_new_terminal_root_and_the_caller_keep_theirs() {
    let s = sandbox();
    let run = on_pty(
        &s,
        "alice",
        r#"tty; "$J" -u bob /usr/bin/tty; "$J" /usr/bin/tty; "$J" -u alice /usr/bin/tty; echo done"#,
        &[Step::Expect("done")],
    );
    run.assert_completed();
    let ttys = pts_lines(&run.output);
    assert_eq!(ttys.len(), 4, "{run:#?}");
    assert_ne!(ttys[0], ttys[1], "bob must get a pty of his own: {run:#?}");
    assert_eq!(
        ttys[0], ttys[2],
        "root runs on the caller's terminal: {run:#?}"
    );
    assert_eq!(ttys[0], ttys[3], "so does the caller's own user: {run:#?}");

    // Root: under the supervisor (the process the caller started), in the caller's
    // job: the command's process group is the caller's.
    let run = on_pty(
        &s,
        "alice",
        r#"echo "id=$$"; tty; exec "$J" /usr/bin/sh -c 'read -r stat < /proc/$$/stat; set -- $stat; echo "id=$5"; tty'"#,
        &[],
    );
    run.assert_completed();
    let ids: Vec<&str> = run
        .output
        .lines()
        .filter(|l| l.starts_with("id="))
        .map(str::trim)
        .collect();
    assert_eq!(ids.len(), 2, "{run:#?}");
    assert_eq!(
        ids[0], ids[1],
        "root's command must run in the caller's process group: {run:#?}"
    );
    let ttys = pts_lines(&run.output);
    assert_eq!(ttys.len(), 2, "{run:#?}");
    assert_eq!(ttys[0], ttys[1], "{run:#?}");
}

/// Print whether stdin is a terminal, then the controlling terminal (from the kernel's
/// tty_nr, as /dev/pts/N) after checking /dev/tty opens.
const CONTROLLING_TTY: &str = r#"
import os
print("stdin-tty", os.isatty(0))
os.close(os.open("/dev/tty", os.O_RDWR))
nr = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[4])
major, minor = (nr >> 8) & 0xfff, (nr & 0xff) | ((nr >> 12) & 0xfff00)
print("/dev/pts/%d" % ((major - 136) * 256 + minor))
"#;

#[test]
fn a_pipeline_keeps_its_pipes_and_the_command_still_gets_its_own_terminal() {
    let s = sandbox();
    // stdout is a pipe (to cat) and stdin /dev/null: both pass through; /dev/tty is the
    // command's own pty, not the caller's terminal.
    let run = on_pty(
        &s,
        "alice",
        &format!(
            r#"tty; "$J" -u bob /usr/bin/python3 -c '{CONTROLLING_TTY}' </dev/null | cat; echo done"#
        ),
        &[Step::Expect("done")],
    );
    run.assert_completed();
    assert!(run.output.contains("stdin-tty False"), "{run:#?}");
    let ttys = pts_lines(&run.output);
    assert_eq!(ttys.len(), 2, "{run:#?}");
    assert_ne!(ttys[0], ttys[1], "{run:#?}");
}

#[test]
fn exit_status_passes_through_on_a_terminal() {
    let s = sandbox();
    // Death by a signal is passed on as death by the same signal (the shell shows
    // 128 + signal), as sudo does; the caller's modes are back either way.
    let run = on_pty(
        &s,
        "alice",
        r#"a=$(stty -g)
"$J" -u bob /usr/bin/sh -c 'exit 3'; echo "rc=$?"
"$J" -u bob /usr/bin/sh -c 'kill -TERM $$'; echo "rc=$?"
"$J" -u bob /usr/bin/sh -c 'kill -KILL $$'; echo "rc=$?"
[ "$(stty -g)" = "$a" ] && echo modes-restored"#,
        &[
            Step::Expect("rc=3"),
            Step::Expect("rc=143"),
            Step::Expect("rc=137"),
            Step::Expect("modes-restored"),
        ],
    );
    run.assert_completed();
}

#[test]
fn window_size_follows_the_callers_terminal() {
    let s = sandbox();
    let run = on_pty(
        &s,
        "alice",
        r#"stty rows 10 cols 40; "$J" -u bob /usr/bin/sh -c 'stty size; read x; stty size'; echo "rc=$?""#,
        &[
            Step::WaitRaw,
            Step::Expect("10 40"),
            // The supervisor handles the SIGWINCH before it relays the newline typed
            // after the resize, so the second `stty size` sees the new size.
            Step::Resize(33, 77),
            Step::Send("\n"),
            Step::Expect("33 77"),
            Step::Expect("rc=0"),
        ],
    );
    run.assert_completed();
}

#[test]
fn ctrl_z_stops_the_job_and_fg_resumes_it() {
    let s = sandbox();
    // An interactive bash with job control as the caller's shell.
    let run = on_pty(
        &s,
        "alice",
        r#"exec /usr/bin/bash --norc --noprofile --noediting -i"#,
        &[
            Step::Send("PS1='prom''pt> '\n"),
            Step::Expect("prompt> "),
            Step::Send(
                "\"$J\" -u bob /usr/bin/python3 -c 'print(\"re\" + \"ady\", flush=True); print(\"got\", input().upper())'\n",
            ),
            // Not the echo of the line typed: the command's output.
            Step::Expect("ready"),
            Step::WaitRaw,
            Step::Send("\x1a"),
            Step::Expect("Stopped"),
            Step::Expect("prompt> "),
            Step::Send("fg\n"),
            Step::WaitRaw,
            Step::Send("again\n"),
            Step::Expect("got AGAIN"),
            Step::Expect("prompt> "),
            Step::Send("echo \"rc=$?\"; exit\n"),
            Step::Expect("rc=0"),
        ],
    );
    run.assert_completed();
}

#[test]
fn without_a_terminal_the_command_gets_a_new_session_and_none() {
    let s = sandbox();
    let mut child = without_terminal(&s, "alice")
        .args([
            "-u",
            "bob",
            "/usr/bin/python3",
            "-c",
            r#"
import os, sys
print("read", sys.stdin.readline().strip())
# The monitor, the command's parent, leads the command's session.
print("new-session", os.getsid(0) == os.getppid())
try:
    os.open("/dev/tty", os.O_RDWR)
    print("tty opened")
except OSError as e:
    print("no-tty", e.strerror)
"#,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"via a pipe\n")
        .unwrap();
    let out = Outcome::of(child.wait_with_output().unwrap());
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout, "read via a pipe\nnew-session True\nno-tty No such device or address\n",
        "{out:?}"
    );
}

#[test]
fn without_a_terminal_exit_status_and_signals_pass_through() {
    let s = sandbox();
    let out = without_terminal(&s, "alice")
        .args(["-u", "bob", "/usr/bin/sh", "-c", "exit 3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let out = without_terminal(&s, "alice")
        .args(["-u", "bob", "/usr/bin/sh", "-c", "kill -TERM $$"])
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{out:?}");

    // SIGTERM to jitsudo reaches the command, and jitsudo ends as the command did.
    let mut child = without_terminal(&s, "alice")
        .args([
            "-u",
            "bob",
            "/usr/bin/sh",
            "-c",
            "echo ready; exec sleep 60",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("SIGTERM did not reach the command");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
}

#[test]
fn a_command_that_cannot_be_started_is_refused_and_logged_as_before() {
    let s = sandbox();
    // Root's own program: bob may not execute it, so the exec in the command fails.
    s.sh("mkdir -p /usr/local/bin");
    s.write_file("/usr/local/bin/secret", "#!/bin/sh\necho secret\n", 0o700);
    s.import_ok(
        "alice",
        &s.mint(
            "alice",
            &["--command", "/usr/local/bin/secret", "--run-as", "bob"],
        ),
    );
    s.logs();
    let out = without_terminal(&s, "alice")
        .args(["-u", "bob", "/usr/local/bin/secret"])
        .output()
        .unwrap();
    let out = Outcome::of(out);
    out.assert_denied("cannot run /usr/local/bin/secret: Permission denied");
    let logs = s.logs().join("\n");
    assert!(
        logs.contains("cannot run /usr/local/bin/secret: Permission denied"),
        "{logs}"
    );

    // On a terminal: the same refusal, and the caller's modes are back.
    let run = on_pty(
        &s,
        "alice",
        r#"a=$(stty -g); "$J" -u bob /usr/local/bin/secret; echo "rc=$?"; [ "$(stty -g)" = "$a" ] && echo modes-restored"#,
        &[
            Step::Expect("cannot run /usr/local/bin/secret: Permission denied"),
            Step::Expect("rc=1"),
            Step::Expect("modes-restored"),
        ],
    );
    run.assert_completed();
    assert!(!run.output.contains("secret\r\n"), "{run:#?}");
}
