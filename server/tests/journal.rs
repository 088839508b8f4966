//! Host journal upload through `jitsudo --sync`: killed mid-upload any number of
//! times, re-run, the service ends up with every record exactly once, chained into
//! its audit trail. SQLite and PostgreSQL.

mod common;

use std::time::Duration;

use common::pg::Pg;
use common::world::{Expect, Host, Service, HOST};
use common::TempDir;

const POLICY: &str = r#"
[[rule]]
name = "auto-id"
commands = ["/usr/bin/id *"]
decision = "auto"
max_duration = "1h"
"#;

#[test]
fn sqlite_journal_upload() {
    common::require_root();
    let dir = TempDir::new("journal-db");
    suite(&format!("sqlite://{}/jitsudod.db", dir.path().display()));
}

#[test]
fn postgres_journal_upload() {
    let pg = Pg::start();
    suite(&pg.new_database());
}

fn journal_seqs(host: &Host) -> Vec<u64> {
    std::fs::read_to_string(host.path("/var/lib/jitsudo/journal"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

fn stored_seqs(svc: &Service, token: &str) -> Vec<u64> {
    let records = svc.get_json(&format!("/v1/audit?host={HOST}&limit=1000"), token);
    let mut seqs: Vec<u64> = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "host.record")
        .map(|r| {
            let detail: serde_json::Value =
                serde_json::from_str(r["detail"].as_str().unwrap()).unwrap();
            detail["seq"].as_u64().unwrap()
        })
        .collect();
    seqs.sort_unstable();
    seqs
}

fn suite(database: &str) {
    let svc = Service::start(database, POLICY, None);
    let host = Host::new(&svc, "");
    let auditor = svc.add_approver("auditor", &[]);

    // Records: a request that runs, many local runs, and a refusal.
    host.run(
        "alice",
        &[
            "--request",
            "--reason",
            "journal",
            "--run",
            "--",
            "/usr/bin/id",
            "-u",
        ],
    )
    .ok();
    for _ in 0..40 {
        host.run("alice", &["/usr/bin/id", "-u"]).ok();
    }
    host.run("alice", &["/usr/bin/whoami"]).denied("no grant");

    // Interrupt uploads at staggered moments.
    for delay_ms in [0u64, 2, 5, 10, 20, 40, 80] {
        let mut child = host
            .ns_command(&host.bin)
            .arg("--sync")
            .env_clear()
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
    }
    // Give orphaned network helpers a moment to finish or fail.
    std::thread::sleep(Duration::from_millis(300));

    let out = host.sync().ok();
    let local = journal_seqs(&host);
    assert_eq!(local, (1..=local.len() as u64).collect::<Vec<_>>());
    let stored = stored_seqs(&svc, &auditor);
    assert_eq!(stored, local, "every record exactly once: {out:?}");
    let acked = std::fs::read_to_string(host.path("/var/lib/jitsudo/journal.acked")).unwrap();
    assert_eq!(acked.trim().parse::<usize>().unwrap(), local.len());

    // Another sync sends only what is new (its own record), and nothing twice.
    host.sync().ok();
    let local = journal_seqs(&host);
    assert_eq!(stored_seqs(&svc, &auditor), local);

    // The service's chain, host records included, verifies.
    let verify = svc.get_json("/v1/audit/verify", &auditor);
    assert_eq!(verify["ok"], true, "{verify}");
}

/// A record too large for an upload envelope (an older, unbounded jitsudo wrote one for
/// a 786 KB denied command) used to stop every later upload at itself. It is now sent
/// reduced (its place in the chain and the digest of its line), the service links it,
/// and everything after it arrives.
#[test]
fn an_oversized_record_does_not_wedge_the_upload() {
    use jitsudo_core::store::journal::{next_record, Anchor, Record};
    common::require_root();
    let dir = TempDir::new("journal-big-db");
    let svc = Service::start(
        &format!("sqlite://{}/jitsudod.db", dir.path().display()),
        POLICY,
        None,
    );
    let host = Host::new(&svc, "");
    let auditor = svc.add_approver("auditor", &[]);
    host.run("alice", &["/usr/bin/whoami"]).denied("no grant");

    // Append, as the old version did, a chained record whose command is 1.5 MB of
    // quotes (each escaped again inside the upload's JSON).
    let path = host.path("/var/lib/jitsudo/journal");
    let text = std::fs::read_to_string(&path).unwrap();
    let last: Record = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let mut entry = last.entry.clone();
    entry.command = vec!["/bin/echo".into(), "\"".repeat(1_500_000)];
    let big = next_record(
        &Anchor {
            seq: last.seq,
            hash: last.hash.clone(),
        },
        entry,
    );
    let big_line = serde_json::to_string(&big).unwrap();
    std::fs::write(&path, format!("{text}{big_line}\n")).unwrap();

    // Later records follow it (its tail is found past the bounded read), and upload.
    for _ in 0..3 {
        host.run("alice", &["/usr/bin/whoami"]).denied("no grant");
    }
    let out = host.sync().ok();
    let local = journal_seqs(&host);
    assert_eq!(local, (1..=local.len() as u64).collect::<Vec<_>>());
    assert_eq!(stored_seqs(&svc, &auditor), local, "{out:?}");

    let records = svc.get_json(&format!("/v1/audit?host={HOST}&limit=1000"), &auditor);
    let reduced: Vec<serde_json::Value> = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "host.record")
        .map(|r| serde_json::from_str(r["detail"].as_str().unwrap()).unwrap())
        .filter(|d: &serde_json::Value| d.get("reduced").is_some())
        .collect();
    assert_eq!(reduced.len(), 1, "{reduced:?}");
    assert_eq!(reduced[0]["seq"], big.seq);
    assert_eq!(reduced[0]["hash"], big.hash.as_str());
    assert_eq!(reduced[0]["reduced"]["line_bytes"], big_line.len());
    let verify = svc.get_json("/v1/audit/verify", &auditor);
    assert_eq!(verify["ok"], true, "{verify}");
}
