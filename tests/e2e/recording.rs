//! Session recordings of real runs: the setuid binary records what a `record` grant's
//! command shows and reads, Debian's own `sudoreplay` replays it, `jitsudoctl journal
//! verify` holds it against the journal's seal, and a recording that cannot be written
//! stops the command. /var/log is an overlay of the sandbox.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::sandbox::processes::without_terminal;
use crate::sandbox::{journal, Outcome, Sandbox};
use crate::terminal_driver::{on_pty, Step};

const IO: &str = "/var/log/jitsudo-io";

/// Alice may run any `sh -c` as root under a recorded grant.
fn sandbox() -> Sandbox {
    let s = Sandbox::new();
    let token = s.mint(
        "alice",
        &["--command", "/usr/bin/sh -c *", "--allow-exec", "--record"],
    );
    s.import_ok("alice", &token);
    s
}

fn root(s: &Sandbox, program: &str, args: &[&str]) -> Outcome {
    Outcome::of(s.ns_command(program).args(args).output().unwrap())
}

fn sudoreplay(s: &Sandbox, id: &str) -> Outcome {
    root(
        s,
        "/usr/bin/sudoreplay",
        &["-d", IO, "-s", "1000", "-m", "0", id],
    )
}

#[test]
fn a_recorded_terminal_session_replays_in_sudoreplay_and_verifies() {
    let s = sandbox();
    let run = on_pty(
        &s,
        "alice",
        r#""$J" /usr/bin/sh -c 'echo recorded-output; read x; echo "got $x"'; echo "rc=$?""#,
        &[
            Step::WaitRaw,
            Step::Expect("recorded-output"),
            Step::Send("typed-line\n"),
            Step::Expect("got typed-line"),
            Step::Expect("rc=0"),
        ],
    );
    run.assert_completed();

    let replay = sudoreplay(&s, "000001");
    let listed = root(&s, "/usr/bin/find", &[IO]);
    assert_eq!(replay.code, 0, "{replay:?} {listed:?} {:?}", s.logs());
    assert!(
        replay
            .stdout
            .contains("Replaying sudo session: /usr/bin/sh -c")
            && replay.stdout.contains("recorded-output")
            && replay.stdout.contains("got typed-line"),
        "{replay:?}"
    );
    // Input is recorded by default (record_input = true).
    let typed = root(&s, "/usr/bin/cat", &[&format!("{IO}/00/00/01/ttyin")]);
    assert!(typed.stdout.contains("typed-line"), "{typed:?}");
    let listing = root(
        &s,
        "/usr/bin/sudoreplay",
        &["-d", IO, "-l", "user", "alice"],
    );
    assert!(listing.stdout.contains("TSID=000001"), "{listing:?}");

    let verified = journal::verify(&s);
    assert_eq!(verified.code, 0, "{verified:?}");
    assert!(
        verified.stdout.contains("recording 000001: intact"),
        "{verified:?}"
    );
    let logs = s.logs().join("\n");
    assert!(logs.contains("recording 000001 sealed: "), "{logs}");
}

#[test]
fn without_a_terminal_output_is_recorded_through_pipes_and_still_reaches_the_caller() {
    let s = sandbox();
    let out = Outcome::of(
        without_terminal(&s, "alice")
            .args([
                "/usr/bin/sh",
                "-c",
                "echo to-stdout; echo to-stderr >&2; exit 3",
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.stdout, "to-stdout\n", "{out:?}");
    assert!(out.stderr.contains("to-stderr"), "{out:?}");
    let stdout = root(&s, "/usr/bin/cat", &[&format!("{IO}/00/00/01/stdout")]);
    assert_eq!(stdout.stdout, "to-stdout\n");
    let stderr = root(&s, "/usr/bin/cat", &[&format!("{IO}/00/00/01/stderr")]);
    assert_eq!(stderr.stdout, "to-stderr\n");
    let replay = sudoreplay(&s, "000001");
    assert!(replay.stdout.contains("to-stdout"), "{replay:?}");
    assert!(journal::verify(&s)
        .stdout
        .contains("recording 000001: intact"));
}

#[test]
fn a_recording_that_cannot_be_started_refuses_the_run() {
    let s = sandbox();
    // Someone made the recordings directory readable by all: refused, never repaired.
    root(&s, "/usr/bin/mkdir", &["-p", "-m", "0755", IO]);
    root(&s, "/usr/bin/chmod", &["0755", IO]);
    let out = Outcome::of(
        without_terminal(&s, "alice")
            .args(["/usr/bin/sh", "-c", "echo must-not-run"])
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(!out.stdout.contains("must-not-run"), "{out:?}");
    assert!(
        out.stderr.contains("cannot start the session recording") && out.stderr.contains("0700"),
        "{out:?}"
    );
}

#[test]
fn a_recording_that_fills_its_disk_stops_the_command() {
    let s = sandbox();
    root(&s, "/usr/bin/mkdir", &["-p", IO]);
    let mounted = root(
        &s,
        "/usr/bin/mount",
        &["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", IO],
    );
    assert_eq!(mounted.code, 0, "{mounted:?}");
    let out = Outcome::of(
        without_terminal(&s, "alice")
            .args([
                "/usr/bin/sh",
                "-c",
                "i=0; while [ $i -lt 40000 ]; do echo line-$i-of-output-that-fills-the-disk; i=$((i+1)); done; echo finished",
            ])
            .output()
            .unwrap(),
    );
    // Stopped (SIGTERM): the shell's loop never gets to print "finished", and jitsudo
    // dies by the signal that ended the run. (The command may run ahead of the recording
    // by what its output pipe holds, 256 KiB; it prints 1.5 MB here.)
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.contains("finished"), "{}", out.stderr);
    let logs = s.logs().join("\n");
    assert!(logs.contains("recording 000001 failed: "), "{logs}");
    assert!(logs.contains("command ended: recording failed"), "{logs}");
}

#[test]
fn a_killed_supervisor_leaves_a_readable_recording_that_verify_calls_cut() {
    let s = sandbox();
    let mut child = without_terminal(&s, "alice")
        .args([
            "/usr/bin/sh",
            "-c",
            "echo $$; echo before-the-kill; exec sleep 30",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let Some(Ok(pids)) = lines.next() else {
        let out = child.wait_with_output().unwrap();
        panic!("no output: {out:?}");
    };
    let command_pid = pids.trim();
    // nsenter (one mount namespace: no fork), setsid (not a group leader: no fork) and
    // setpriv exec one another: the spawned process is jitsudo, the supervisor.
    let supervisor = child.id().to_string();
    let supervisor = supervisor.as_str();
    assert_eq!(lines.next().unwrap().unwrap(), "before-the-kill");
    // SIGKILL only root can send; then the command it leaves behind.
    root(&s, "/usr/bin/kill", &["-KILL", supervisor]);
    root(&s, "/usr/bin/kill", &["-KILL", command_pid]);
    let _ = child.wait();
    let verified = journal::verify(&s);
    assert_eq!(verified.code, 1, "{verified:?}");
    assert!(
        verified.stdout.contains("recording 000001: cut"),
        "{verified:?}"
    );
    let stdout = root(&s, "/usr/bin/cat", &[&format!("{IO}/00/00/01/stdout")]);
    assert!(stdout.stdout.contains("before-the-kill"), "{stdout:?}");
}

#[test]
fn journal_verify_names_an_altered_and_then_a_removed_recording() {
    let s = sandbox();
    let out = Outcome::of(
        without_terminal(&s, "alice")
            .args(["/usr/bin/sh", "-c", "echo rm -rf /srv/cache"])
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(journal::verify(&s)
        .stdout
        .contains("recording 000001: intact"));
    let stdout = format!("{IO}/00/00/01/stdout");
    root(
        &s,
        "/usr/bin/sh",
        &["-c", &format!("printf 'ls /srv/cache   \\n' > {stdout}")],
    );
    let verified = journal::verify(&s);
    assert_eq!(verified.code, 1, "{verified:?}");
    assert!(
        verified.stdout.contains("recording 000001: ALTERED"),
        "{verified:?}"
    );
    root(&s, "/usr/bin/rm", &["-rf", &format!("{IO}/00/00/01")]);
    let verified = journal::verify(&s);
    assert_eq!(verified.code, 1, "{verified:?}");
    assert!(
        verified.stdout.contains("recording 000001: MISSING"),
        "{verified:?}"
    );
}
