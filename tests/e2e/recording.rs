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

/// The recordings directory on a 64 KiB tmpfs: a recording fills it quickly.
fn recordings_on_a_64k_disk(s: &Sandbox) {
    root(s, "/usr/bin/mkdir", &["-p", IO]);
    let mounted = root(
        s,
        "/usr/bin/mount",
        &["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", IO],
    );
    assert_eq!(mounted.code, 0, "{mounted:?}");
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
fn recorded_output_arrives_whole_and_in_order_through_a_pipe_a_slow_pipe_and_a_file() {
    // Into a pipe the output goes on with tee(2) and is read back for the recording; a
    // pipe that fills up makes the supervisor buffer what it read; a file gets what was
    // read. Every line differs, so a chunk lost, repeated or out of order shows.
    let s = sandbox();
    let command = ["/usr/bin/sh", "-c", "seq 1 300000"];
    let expected = std::process::Command::new("/usr/bin/seq")
        .args(["1", "300000"])
        .output()
        .unwrap()
        .stdout;
    let recorded = |id: &str| {
        let path = s.path(&format!("{IO}/00/00/{id}/stdout"));
        std::fs::read(path).unwrap()
    };

    let fast = without_terminal(&s, "alice")
        .args(command)
        .output()
        .unwrap();
    assert_eq!(fast.status.code(), Some(0), "{fast:?}");
    assert!(
        fast.stdout == expected,
        "through a pipe: {} bytes",
        fast.stdout.len()
    );
    assert!(recorded("01") == expected, "recording 000001");

    let mut child = without_terminal(&s, "alice")
        .args(command)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = child.stdout.take().unwrap();
    let mut slow = vec![0u8; 10];
    std::io::Read::read_exact(&mut reader, &mut slow).unwrap();
    // Long enough for the pipe to fill and the supervisor to hold what it has read.
    std::thread::sleep(std::time::Duration::from_millis(500));
    std::io::Read::read_to_end(&mut reader, &mut slow).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(
        slow == expected,
        "through a slow pipe: {} bytes",
        slow.len()
    );
    assert!(recorded("02") == expected, "recording 000002");

    let file = s.dir.join("output-file");
    let out = Outcome::of(
        without_terminal(&s, "alice")
            .args(command)
            .stdout(std::fs::File::create(&file).unwrap())
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(std::fs::read(&file).unwrap() == expected, "into a file");
    assert!(recorded("03") == expected, "recording 000003");

    let verified = journal::verify(&s);
    assert_eq!(verified.code, 0, "{verified:?}");
    for id in ["000001", "000002", "000003"] {
        assert!(
            verified.stdout.contains(&format!("recording {id}: intact")),
            "{verified:?}"
        );
    }
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
    recordings_on_a_64k_disk(&s);
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
fn a_recording_that_fails_while_the_command_is_quiet_still_stops_it() {
    // The recorder writes on its own thread; a write that fails after the command has
    // gone quiet must still stop the run, not wait for the command's next output.
    let s = sandbox();
    recordings_on_a_64k_disk(&s);
    let out = Outcome::of(
        without_terminal(&s, "alice")
            .args([
                "/usr/bin/sh",
                "-c",
                "head -c 300000 /dev/zero | tr '\\0' x; sleep 20; echo finished",
            ])
            .output()
            .unwrap(),
    );
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
