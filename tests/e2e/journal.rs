//! The host journal: every invocation is appended, hash-chained, before the command
//! runs; tampering is found by `jitsudoctl journal verify`.

use crate::sandbox::{Refusal, Sandbox};

fn verify(s: &Sandbox) -> crate::sandbox::Outcome {
    crate::sandbox::Outcome::of(
        s.ns_command(&s.ctl)
            .args(["journal", "verify"])
            .output()
            .unwrap(),
    )
}

fn journal_lines(s: &Sandbox) -> Vec<serde_json::Value> {
    std::fs::read_to_string(s.path("/var/lib/jitsudo/journal"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn every_invocation_is_journaled_and_chained() {
    let s = Sandbox::new();
    let id = s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/id -u"]));
    assert_eq!(s.run("alice", &["/usr/bin/id", "-u"]).code, 0);
    s.run("alice", &["/usr/bin/whoami"])
        .assert_denied("no grant");
    s.run("bob", &["-u", "#4294967295", "/usr/bin/id"])
        .assert_denied("not a valid user id");

    let lines = journal_lines(&s);
    let outcomes: Vec<&str> = lines
        .iter()
        .map(|l| l["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["event", "allowed", "denied", "error"]);
    assert_eq!(lines[1]["grant"], id.as_str());
    assert_eq!(
        lines[1]["command"],
        serde_json::json!(["/usr/bin/id", "-u"])
    );
    assert_eq!(lines[1]["uid"], 42001);
    assert_eq!(lines[1]["host"], "web-01");
    assert_eq!(lines[3]["user"], "bob");
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);

    let meta = std::fs::metadata(s.path("/var/lib/jitsudo/journal")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o600));

    let ok = verify(&s);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(ok.stdout.contains("journal intact: 4 record(s)"), "{ok:?}");
}

fn tamper(s: &Sandbox, change: impl FnOnce(&mut Vec<String>)) {
    let path = s.path("/var/lib/jitsudo/journal");
    let mut lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    change(&mut lines);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

fn three_runs() -> Sandbox {
    let s = Sandbox::new();
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/true"]));
    for _ in 0..3 {
        assert_eq!(s.run("alice", &["/usr/bin/true"]).code, 0);
    }
    s
}

#[test]
fn altered_record_is_named() {
    let s = three_runs();
    tamper(&s, |l| l[2] = l[2].replace("\"alice\"", "\"mallory\""));
    let out = verify(&s);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("line 3 (record 3): content does not match its hash (altered)"),
        "{out:?}"
    );
}

#[test]
fn removed_record_is_named() {
    let s = three_runs();
    tamper(&s, |l| {
        l.remove(1);
    });
    let out = verify(&s);
    assert!(
        out.stderr
            .contains("line 2 (record 3): expected record 2, found 3"),
        "{out:?}"
    );
}

#[test]
fn reordered_records_are_named() {
    let s = three_runs();
    tamper(&s, |l| l.swap(1, 2));
    let out = verify(&s);
    assert!(out.stderr.contains("line 2 (record 3)"), "{out:?}");
}

#[test]
fn a_command_that_cannot_be_journaled_does_not_run() {
    let s = Sandbox::new();
    s.import_ok(
        "alice",
        &s.mint("alice", &["--command", "/usr/bin/touch /tmp/ran"]),
    );
    // A journal that is not a regular root-only file is refused, and so is the run.
    let path = s.path("/var/lib/jitsudo/journal");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    s.run("alice", &["/usr/bin/touch", "/tmp/ran"])
        .assert_denied("cannot write the local journal");
    assert!(!s.path("/tmp/ran").exists());
}

#[test]
fn journal_can_be_turned_off() {
    let s = Sandbox::new();
    s.write_config("[journal]\nenabled = false");
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/true"]));
    assert_eq!(s.run("alice", &["/usr/bin/true"]).code, 0);
    assert!(!s.path("/var/lib/jitsudo/journal").exists());
}
