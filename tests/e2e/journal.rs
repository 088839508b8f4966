//! The host journal: every invocation is appended, hash-chained, before the command
//! runs. Tampering (found by `jitsudoctl journal verify`) and an unwritable journal are
//! in tests/attacks.

use crate::sandbox::journal::verify;
use crate::sandbox::{Refusal, Sandbox};

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

#[test]
fn journal_can_be_turned_off() {
    let s = Sandbox::new();
    s.write_config("[journal]\nenabled = false");
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/true"]));
    assert_eq!(s.run("alice", &["/usr/bin/true"]).code, 0);
    assert!(!s.path("/var/lib/jitsudo/journal").exists());
}
