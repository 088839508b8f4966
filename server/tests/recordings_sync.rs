//! The real setuid `jitsudo --sync` shipping session recordings to a real jitsudod on
//! SQLite: a recording made in the host's namespace is uploaded and its local copy
//! deleted only past `[record] keep`; a SIGKILLed supervisor's recording is recorded cut
//! and arrives cut, while one still being written is left alone.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::recordings::{get, record, session, POLICY};
use common::world::{run_ok, Expect, Service, USERS};
use common::TempDir;
use jitsudo_core::iolog::writer::Recorder;
use jitsudo_core::iolog::Stream;
use jitsudo_testbed::{Home, World};

/// The real setuid `jitsudo --sync`: a recording made in the host's own
/// /var/log/jitsudo-io is shipped, listed, replayed from the service, and deleted from
/// the host only once it is older than `[record] keep`.
#[test]
fn sync_ships_recordings_and_deletes_them_past_keep() {
    common::require_root();
    let dir = TempDir::new("recordings-sync-db");
    let svc = Service::start(
        &format!("sqlite://{}/jitsudod.db", dir.path().display()),
        POLICY,
        None,
    );
    let auditor = svc.add_approver("auditor", &[]);
    let world = World::builder("jitsudod-rec")
        .host(common::world::HOST)
        .setuid_jitsudo()
        .helper("jitsudo-net")
        .users(USERS)
        .home(Home::Shared("/tmp".to_string()))
        .log_socket_mode(0o666)
        // Recordings are written inside the world only.
        .overlay("/var/log", "varlog")
        .service(&svc)
        .build();
    let sync = || {
        jitsudo_testbed::Outcome::of(
            world
                .ns_command(world.jitsudo_path())
                .arg("--sync")
                .env_clear()
                .output()
                .unwrap(),
        )
    };
    let base = world.path("/var/log/jitsudo-io");
    fs::create_dir(&base).unwrap();
    fs::set_permissions(&base, fs::Permissions::from_mode(0o700)).unwrap();
    let mut info = session("alice", "grant-sync");
    info.host = common::world::HOST.into();
    let mut r = Recorder::create(&base, &info, true).unwrap();
    r.record(Stream::TtyOut, b"hello from the recorded shell\r\n")
        .unwrap();
    let seal = r.finish().unwrap();
    // One still being written is left alone.
    let live = Recorder::create(&base, &info, true).unwrap();

    let out = sync().ok();
    assert!(out.stdout.contains("uploaded 1 recording(s)"), "{out:?}");
    let (_, list) = get(&svc, "/v1/recordings?host=web-01", Some(&auditor));
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], seal.id.as_str());
    assert_eq!(list[0]["sha256"], seal.hash.as_str());
    assert_eq!(list[0]["grant"], "grant-sync");
    assert_eq!(list[0]["user"], "alice");
    let acked = fs::read_to_string(world.path("/var/lib/jitsudo/recordings.acked")).unwrap();
    assert_eq!(acked, format!("{} {}\n", seal.id, seal.hash));

    let out = run_ok(svc.ctl(&auditor).args(["recordings", "--host", "web-01"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains(seal.id.as_str()));
    let out = run_ok(svc.ctl(&auditor).args([
        "replay",
        seal.id.as_str(),
        "--host",
        "web-01",
        "--speed",
        "0",
    ]));
    assert_eq!(out.stdout, b"hello from the recorded shell\r\n");

    // Acknowledged but younger than keep (30 days by default): kept, not sent again.
    let local = base.join(seal.id.relative_path());
    assert!(local.is_dir());
    let out = sync().ok();
    assert!(!out.stdout.contains("recording(s)"), "{out:?}");
    assert!(local.is_dir());
    assert_eq!(audit_stored(&svc, &auditor), 1);

    // keep = "0s": the next sync deletes it; the live one stays.
    world.append("/etc/jitsudo/jitsudo.toml", "\n[record]\nkeep = \"0s\"\n");
    let out = sync().ok();
    assert!(out.stdout.contains("deleted 1"), "{out:?}");
    assert!(!local.exists());
    assert!(live.dir().is_dir());
    let acked = fs::read_to_string(world.path("/var/lib/jitsudo/recordings.acked")).unwrap();
    assert_eq!(acked, "", "forgotten once deleted");
    assert_eq!(audit_stored(&svc, &auditor), 1);

    // Syncs killed at staggered moments of a 3 MB upload, then one left to finish: the
    // service has the recording exactly once, byte for byte.
    let (big, _) = record(&base, "alice", "grant-big", "MARKER-BIG\r\n", 3_000_000);
    for delay_ms in [0u64, 5, 20, 50, 100, 200] {
        let mut child = world
            .ns_command(world.jitsudo_path())
            .arg("--sync")
            .env_clear()
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
    }
    // Give orphaned network helpers a moment to finish or fail.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = sync().ok();
    assert!(!base.join(big.id.relative_path()).exists(), "{out:?}");
    assert_eq!(audit_stored(&svc, &auditor), 2);
    let (_, list) = get(&svc, "/v1/recordings?grant=grant-big", Some(&auditor));
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["sha256"], big.hash.as_str());
    let out = run_ok(svc.ctl(&auditor).args([
        "replay",
        big.id.as_str(),
        "--host",
        "web-01",
        "--speed",
        "0",
    ]));
    assert_eq!(out.stdout.len(), "MARKER-BIG\r\n".len() + 3_000_000);
    drop(live);
}

fn audit_stored(svc: &Service, token: &str) -> usize {
    let records = svc.get_json("/v1/audit?host=web-01&limit=1000", token);
    records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "recording.stored")
        .count()
}

/// The real setuid jitsudo records a run, its supervisor is SIGKILLed, and the next
/// `jitsudo --sync` finds the recording unsealed with its writer gone: it records the
/// cut in the journal (and syslog), uploads the recording flagged as cut, and
/// `jitsudoctl journal verify` says so. A recording still being written is untouched.
#[test]
fn a_killed_supervisor_s_recording_is_recorded_cut_and_arrives_cut() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    common::require_root();
    let dir = TempDir::new("recordings-killed-db");
    let svc = Service::start(
        &format!("sqlite://{}/jitsudod.db", dir.path().display()),
        POLICY,
        None,
    );
    let auditor = svc.add_approver("auditor", &[]);
    let world = World::builder("jitsudod-cut")
        .host(common::world::HOST)
        .setuid_jitsudo()
        .helper("jitsudo-net")
        .users(USERS)
        .home(Home::Shared("/tmp".to_string()))
        .signing_key("k-host")
        .log_socket_mode(0o666)
        .overlay("/var/log", "varlog")
        .service(&svc)
        .build();
    let minted = world.mint(
        "alice",
        &["--command", "/usr/bin/sh -c *", "--allow-exec", "--record"],
    );
    world.import_ok("alice", &minted.token);
    let sync = || {
        jitsudo_testbed::Outcome::of(
            world
                .ns_command(world.jitsudo_path())
                .arg("--sync")
                .env_clear()
                .output()
                .unwrap(),
        )
    };
    let verify = || {
        jitsudo_testbed::Outcome::of(
            world
                .ns_command(world.ctl_path())
                .args(["journal", "verify"])
                .output()
                .unwrap(),
        )
    };

    // nsenter, sh, setsid (not a group leader: no fork) and setpriv exec one another:
    // the spawned process is jitsudo, the supervisor.
    let mut child = world
        .ns_command("/usr/bin/setsid")
        .args(["/usr/bin/setpriv", "--reuid", "alice", "--regid", "alice"])
        .args(["--init-groups", "--"])
        .arg(world.jitsudo_path())
        .args([
            "/usr/bin/sh",
            "-c",
            "echo $$; echo before-the-kill; exec sleep 60",
        ])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let Some(Ok(command_pid)) = lines.next() else {
        let out = child.wait_with_output().unwrap();
        panic!("no output: {out:?}");
    };
    assert_eq!(lines.next().unwrap().unwrap(), "before-the-kill");
    // The supervisor relays output before it records it: wait for the recording.
    let stdout = world.path("/var/log/jitsudo-io/00/00/01/stdout");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !fs::read_to_string(&stdout)
        .unwrap_or_default()
        .contains("before-the-kill")
    {
        assert!(std::time::Instant::now() < deadline, "never recorded");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Then output stops; the supervisor still seals it within a second.
    let chain = world.path("/var/log/jitsudo-io/00/00/01/chain");
    while fs::read_to_string(&chain)
        .unwrap_or_default()
        .lines()
        .count()
        < 2
    {
        assert!(std::time::Instant::now() < deadline, "never sealed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    // While the supervisor lives, a sync leaves its recording alone; and one whose
    // writer died before it had a chain (it recorded nothing) is nothing to mark.
    let stillborn = world.path("/var/log/jitsudo-io/00/00/09");
    fs::create_dir_all(&stillborn).unwrap();
    fs::write(stillborn.join("timing"), "").unwrap();
    let out = sync().ok();
    assert!(!out.stdout.contains("recording(s)"), "{out:?}");
    assert!(!fs::read_to_string(world.path("/var/lib/jitsudo/journal"))
        .unwrap()
        .contains("\"cut\":true"));

    run_ok(
        world
            .ns_command("/usr/bin/kill")
            .args(["-KILL", &child.id().to_string()]),
    );
    run_ok(
        world
            .ns_command("/usr/bin/kill")
            .args(["-KILL", command_pid.trim()]),
    );
    let _ = child.wait();
    let before = verify();
    assert_eq!(before.code, 1, "{before:?}");
    assert!(
        before
            .stdout
            .contains("recording 000001: cut: never sealed"),
        "{before:?}"
    );

    let out = sync().ok();
    assert!(out.stdout.contains("uploaded 1 recording(s)"), "{out:?}");
    // The journal names the recording cut, at the chunk its chain ends at.
    let journal = fs::read_to_string(world.path("/var/lib/jitsudo/journal")).unwrap();
    let cut_records: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["recording"]["cut"] == true)
        .collect();
    assert_eq!(cut_records.len(), 1, "{journal}");
    let record = &cut_records[0];
    assert_eq!(record["recording"]["id"], "000001");
    assert_eq!(record["grant"], minted.id.as_str());
    let reason = record["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("recording 000001 cut: writer gone, last chunk "),
        "{reason}"
    );
    let chunks = record["recording"]["seal"]["chunks"].as_u64().unwrap();
    assert!(
        chunks >= 1,
        "the output before the kill was sealed: {record}"
    );
    world.log.wait_for(
        "recording 000001 cut: writer gone, last chunk",
        std::time::Duration::from_secs(10),
    );
    let after = verify();
    assert_eq!(after.code, 0, "{after:?}");
    assert!(
        after
            .stdout
            .contains("recording 000001: cut, as the journal records"),
        "{after:?}"
    );

    // The service has it, flagged as cut, at that chunk.
    let (_, list) = get(&svc, "/v1/recordings?host=web-01", Some(&auditor));
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], "000001");
    assert_eq!(list[0]["state"], "cut");
    assert_eq!(list[0]["chunks"], chunks);
    assert_eq!(list[0]["grant"], minted.id.as_str());
    assert_eq!(list[0]["user"], "alice");
    let records = svc.get_json("/v1/audit?host=web-01&limit=1000", &auditor);
    let records = records.as_array().unwrap();
    let stored: Vec<serde_json::Value> = records
        .iter()
        .filter(|r| r["kind"] == "recording.stored")
        .map(|r| serde_json::from_str(r["detail"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["state"], "cut");
    assert_eq!(stored[0]["chunks"], chunks);
    // The journal's cut record went up with the journal, under the run's grant.
    assert!(
        records.iter().any(|r| r["kind"] == "host.record"
            && r["grant"] == minted.id.as_str()
            && r["detail"].as_str().unwrap().contains("cut: writer gone")),
        "{records:?}"
    );
    let out = run_ok(
        svc.ctl(&auditor)
            .args(["replay", "000001", "--host", "web-01", "--speed", "0"]),
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("before-the-kill"));
    let out = run_ok(svc.ctl(&auditor).args(["recordings", "--host", "web-01"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("cut, "));

    // Found once: a second sync neither records nor uploads it again.
    let out = sync().ok();
    assert!(!out.stdout.contains("recording(s)"), "{out:?}");
    let journal = fs::read_to_string(world.path("/var/lib/jitsudo/journal")).unwrap();
    assert_eq!(journal.matches("\"cut\":true").count(), 1);

    // keep = "0s": deleted, logged, and journal verify knows why it is gone.
    world.append("/etc/jitsudo/jitsudo.toml", "\n[record]\nkeep = \"0s\"\n");
    let out = sync().ok();
    assert!(out.stdout.contains("deleted 1"), "{out:?}");
    assert!(!world.path("/var/log/jitsudo-io/00/00/01").exists());
    // Deletions reach syslog.
    world.log.wait_for(
        "recording 000001 deleted: the service holds it",
        std::time::Duration::from_secs(10),
    );
    let after = verify();
    assert_eq!(after.code, 0, "{after:?}");
    assert!(
        after
            .stdout
            .contains("recording 000001: deleted after upload"),
        "{after:?}"
    );
    assert_eq!(
        fs::read_to_string(world.path("/var/lib/jitsudo/recordings.cut")).unwrap(),
        "",
        "forgotten once deleted"
    );
}
