//! Attacks on the host journal's writer and the syslog line: a torn tail, a file size
//! limit the setuid process cannot lift, a stopped lock holder, an enormous argv, and a
//! directory name that spells out fields of its own. Each used to stop every user's
//! runs, or to put what the caller chose into the audit trail. (An oversized record
//! stopping the journal upload is server/tests/journal.rs's, which needs the service.)

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jitsudo_core::store::journal::{next_record, Anchor, Record, MAX_RECORD_BYTES};
use sha2::{Digest, Sha256};

use crate::sandbox::journal::verify;
use crate::sandbox::{Outcome, Refusal, Sandbox};

const JOURNAL: &str = "/var/lib/jitsudo/journal";

fn journal_text(s: &Sandbox) -> String {
    std::fs::read_to_string(s.path(JOURNAL)).unwrap()
}

fn records(s: &Sandbox) -> Vec<Record> {
    journal_text(s)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[track_caller]
fn assert_intact(s: &Sandbox) {
    let out = verify(s);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("journal intact"), "{out:?}");
}

/// Wait for a child, but not forever: a run that hangs is killed and reported.
#[track_caller]
fn wait_bounded(mut child: Child, limit: Duration) -> Outcome {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("jitsudo still running after {limit:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Outcome::of(child.wait_with_output().unwrap())
}

#[test]
fn a_torn_tail_is_repaired_and_does_not_stop_the_next_run() {
    let s = Sandbox::new();
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/true"]));
    assert_eq!(s.run("alice", &["/usr/bin/true"]).code, 0);
    // What a jitsudo killed mid-append (or stopped by a file size limit) leaves: the
    // first half of a record, no newline.
    let before = journal_text(&s);
    let last = records(&s).pop().unwrap();
    let half = serde_json::to_string(&next_record(
        &Anchor {
            seq: last.seq,
            hash: last.hash,
        },
        last.entry,
    ))
    .unwrap();
    let torn = &half[..half.len() / 2];
    s.append(JOURNAL, torn);
    s.logs();

    // Another user's run goes ahead, and the repair is in the chain before it.
    s.import_ok("bob", &s.mint("bob", &["--command", "/usr/bin/true"]));
    let out = s.run("bob", &["/usr/bin/true"]);
    assert_eq!(out.code, 0, "{out:?}");
    let text = journal_text(&s);
    assert!(
        text.starts_with(&before),
        "the records before the tear are kept"
    );
    let after: Vec<Record> = records(&s);
    let n = after.len();
    let repair = &after[n - 3].entry;
    assert_eq!(repair.outcome, "event");
    let sha: String = Sha256::digest(torn.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        repair.reason.starts_with(&format!(
            "journal repaired: removed a torn tail of {} bytes (sha256 {sha})",
            torn.len()
        )),
        "{repair:?}"
    );
    // Syslog hears of it too, as an alert.
    let logs = s.logs();
    assert!(
        logs.iter().any(|l| l.starts_with("<81>")
            && l.contains(&format!(
                ": bob : journal repaired: removed a torn tail of {} bytes",
                torn.len()
            ))),
        "{logs:?}"
    );
    assert_eq!(after[n - 1].entry.outcome, "allowed");
    assert_eq!(after[n - 1].entry.user, "bob");
    // The removed bytes are kept, root-only, for whoever looks into it.
    let kept = s.path("/var/lib/jitsudo/journal.torn");
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), torn);
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&kept).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o600));
    assert_intact(&s);
}

/// `jitsudo ARGS` as `user` with RLIMIT_FSIZE at 64 KiB (soft and hard: what
/// `ulimit -f 64` sets in bash) and no
/// CAP_SYS_RESOURCE in the bounding set, so the setuid process cannot lift the limit
/// (a container, or a host that drops the capability).
fn run_with_file_limit(s: &Sandbox, user: &str, args: &[&str]) -> Outcome {
    let out = s
        .ns_command("setpriv")
        .args(["--reuid", user, "--regid", user, "--init-groups"])
        .args(["--bounding-set", "-sys_resource", "--"])
        .args(["prlimit", "--fsize=65536:65536", "--"])
        .arg(&s.bin)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    Outcome::of(out)
}

/// Nothing half-written is left (compared without printing 64 KiB of journal).
#[track_caller]
fn assert_unchanged(s: &Sandbox, before: &str) {
    let now = journal_text(s);
    assert!(
        now == before,
        "the journal changed from {} to {} bytes; it ends {:?}",
        before.len(),
        now.len(),
        String::from_utf8_lossy(&now.as_bytes()[now.len().saturating_sub(200)..])
    );
}

#[test]
fn a_file_size_limit_cannot_tear_the_journal() {
    let s = Sandbox::new();
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/true"]));
    // Grow the journal, with valid records, to 100 bytes short of the limit: every
    // record from now on would straddle it.
    let text = journal_text(&s);
    let last = records(&s).pop().unwrap();
    let anchor = Anchor {
        seq: last.seq,
        hash: last.hash.clone(),
    };
    let pad = |n: usize| {
        let mut e = last.entry.clone();
        e.command = vec!["/usr/bin/true".into(), "x".repeat(n)];
        serde_json::to_string(&next_record(&anchor, e)).unwrap() + "\n"
    };
    let target = 65536 - 100 - text.len();
    let filler = pad(target - (pad(0).len()));
    assert_eq!(text.len() + filler.len(), 65536 - 100);
    s.append(JOURNAL, &filler);
    let before = journal_text(&s);

    // A denied 100 KB command: its record no longer fits under the limit.
    let big = "a".repeat(100_000);
    run_with_file_limit(&s, "alice", &["/usr/bin/echo", &big]).assert_denied("no grant");
    assert_unchanged(&s, &before);
    // An allowed run that cannot be journaled does not run (and leaves nothing).
    let out = run_with_file_limit(&s, "alice", &["/usr/bin/true"]);
    out.assert_denied("cannot write the local journal");
    assert_unchanged(&s, &before);
    // Other users are not stopped.
    s.import_ok("bob", &s.mint("bob", &["--command", "/usr/bin/true"]));
    assert_eq!(s.run("bob", &["/usr/bin/true"]).code, 0);
    assert_intact(&s);
}

#[test]
fn a_held_journal_lock_makes_other_runs_fail_with_a_message_not_hang() {
    let s = Sandbox::new();
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/true"]));
    // Something that holds the journal's lock and never lets go: what a jitsudo stopped
    // with SIGSTOP inside its append was.
    let mut holder = s
        .ns_command("flock")
        .args(["-x", JOURNAL, "-c", "echo locked; exec sleep 300"])
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");

    let mut run = s
        .jitsudo("alice")
        .arg("/usr/bin/true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // While it waits it is inside the journal's locked section, where its caller
    // cannot stop or kill it (its real uid is root there: /proc shows all four 0).
    let pid = run.id();
    // (The nsenter and setpriv it starts as are root too: wait for jitsudo itself.)
    let status = format!("/proc/{pid}/status");
    let in_section = |text: &str| {
        text.lines().any(|l| l == "Name:\tjitsudo") && text.lines().any(|l| l == "Uid:\t0\t0\t0\t0")
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_to_string(&status).is_ok_and(|t| in_section(&t)) {
        assert!(
            run.try_wait().unwrap().is_none(),
            "jitsudo ended before it was seen in the locked section"
        );
        assert!(
            Instant::now() < deadline,
            "jitsudo never entered the locked section"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    for signal in ["-STOP", "-KILL"] {
        let kill = Outcome::of(
            s.as_user("alice", "/bin/sh")
                .args(["-c", r#"kill "$0" "$1""#, signal, &pid.to_string()])
                .output()
                .unwrap(),
        );
        if kill.code == 0 {
            // Do not leave a stopped process behind.
            let _ = run.kill();
            panic!("alice could send {signal} to her jitsudo in its locked section");
        }
        assert!(kill.stderr.contains("not permitted"), "{kill:?}");
    }
    let out = wait_bounded(run, Duration::from_secs(120));
    out.assert_denied("cannot write the local journal");
    assert!(
        out.stderr.contains(&format!("cannot lock {JOURNAL}: another process has held it for over 5 s; find it with `fuser -v {JOURNAL}`")),
        "{out:?}"
    );

    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", holder.id())])
        .status();
    let _ = holder.wait();
    assert_eq!(s.run("alice", &["/usr/bin/true"]).code, 0);
    assert_intact(&s);
}

#[test]
fn an_enormous_argv_is_logged_bounded_with_its_digest() {
    let s = Sandbox::new();
    s.logs();
    // 44 arguments of 128 KiB - 1 bytes (the kernel's limit for one): 5.8 MB, near the
    // most execve takes (6 MB, with the stack limit raised). Built inside the shell,
    // which passes them straight to jitsudo.
    let script = r#"ulimit -s unlimited
w=$(head -c 131071 /dev/zero | tr '\0' a)
set --
i=0
while [ $i -lt 44 ]; do set -- "$@" "$w"; i=$((i+1)); done
exec "$0" /usr/bin/echo "$@""#;
    let out = Outcome::of(
        s.as_user("bob", "/bin/sh")
            .args(["-c", script])
            .arg(&s.bin)
            .output()
            .unwrap(),
    );
    out.assert_denied("no grant");

    let word = "a".repeat(131071);
    let mut argv: Vec<u8> = b"/usr/bin/echo\0".to_vec();
    for _ in 0..44 {
        argv.extend_from_slice(word.as_bytes());
        argv.push(0);
    }
    let sha: String = Sha256::digest(&argv)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();

    // The journal record is bounded, and names the full argv by its digest.
    let text = journal_text(&s);
    let last_line = text.lines().last().unwrap();
    assert!(last_line.len() < MAX_RECORD_BYTES, "{}", last_line.len());
    let record: Record = serde_json::from_str(last_line).unwrap();
    let digest = record.entry.argv.expect("a cut command carries its digest");
    assert_eq!(
        (digest.sha256.as_str(), digest.bytes, digest.words),
        (sha.as_str(), argv.len() as u64, 45)
    );
    assert!(record.entry.command.join(" ").len() <= 4096);
    assert_eq!(record.entry.command[0], "/usr/bin/echo");

    // So is syslog: a handful of datagrams, the last with the digest.
    let logs = s.logs();
    assert!(logs.len() <= 12, "{} datagrams", logs.len());
    assert!(logs.iter().all(|l| l.len() < 1100));
    assert!(
        logs.last().unwrap().ends_with(&format!(
            " ; ARGV=sha256:{sha} bytes={} words=45",
            argv.len()
        )),
        "{logs:?}"
    );
    assert!(logs[0].contains("COMMAND=/usr/bin/echo aaaa"), "{logs:?}");
    assert_intact(&s);
}

/// The keys of an allowed run's syslog line: its ` ; `-separated fields after the
/// datagram's `tag[pid]: ` and the line's `user : `.
fn keys(datagram: &str) -> Vec<String> {
    let line = datagram.split_once("]: ").unwrap().1;
    let fields = line.split_once(" : ").unwrap().1;
    fields
        .split(" ; ")
        .map(|f| f.split_once('=').map_or("", |(k, _)| k).to_string())
        .collect()
}

#[test]
fn a_directory_name_cannot_forge_fields_in_the_line() {
    let s = Sandbox::new();
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/true"]));
    let forged = "x ; USER=root ; GRANT=0123456789abcdef0123456789abcdef ; COMMAND=/usr/bin/systemctl restart nginx";
    // The slashes make it nested directories, in the sandbox's own (removed after).
    let top = s.dir.display().to_string();
    let dir = format!("{top}/{forged}");
    std::fs::create_dir_all(&dir).unwrap();
    s.logs();
    let in_dir = |dir: &str| {
        Outcome::of(
            s.as_user("alice", "/bin/sh")
                .args(["-c", r#"cd "$1" && exec "$0" /usr/bin/true"#])
                .arg(&s.bin)
                .arg(dir)
                .output()
                .unwrap(),
        )
    };
    assert_eq!(in_dir(&dir).code, 0);
    let logs = s.logs();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(
        keys(&logs[0]),
        ["TTY", "PWD", "USER", "GRANT", "COMMAND"],
        "{logs:?}"
    );
    assert!(logs[0].contains(" ; USER=root ; GRANT="), "{logs:?}");
    assert!(
        logs[0].contains(&format!("PWD={top}/x \\x3b USER=root \\x3b GRANT=0123456789abcdef0123456789abcdef \\x3b COMMAND=/usr/bin/systemctl restart nginx ; USER=root")),
        "{logs:?}"
    );
    assert!(logs[0].ends_with(" ; COMMAND=/usr/bin/true"), "{logs:?}");
    // The journal keeps the same escaped text.
    let last = records(&s).pop().unwrap();
    assert_eq!(
        last.entry.pwd,
        format!("{top}/{}", forged.replace(';', "\\x3b"))
    );

    // A 4 KiB PWD no longer pushes the real COMMAND out of the first datagram.
    let mut deep = top.clone();
    for i in 0..20 {
        deep.push_str(&format!("/{i:02}{}", "d".repeat(200)));
    }
    std::fs::create_dir_all(&deep).unwrap();
    assert_eq!(in_dir(&deep).code, 0);
    let logs = s.logs();
    assert!(logs[0].contains(" ; COMMAND=/usr/bin/true"), "{logs:?}");
    assert!(logs[0].contains("\\... ; USER=root"), "{logs:?}");
    // The journal has more of it (up to its own bound, 4 KiB).
    let last = records(&s).pop().unwrap();
    assert!(last.entry.pwd.len() > 4000, "{}", last.entry.pwd.len());
}
