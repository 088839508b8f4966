//! Session recordings on the service, with a real jitsudod on SQLite and PostgreSQL:
//! uploads in signed parts, resumed after an interruption (and a service restart),
//! deduplicated, a gap and a tampered part refused, the size bound, the auditor's
//! search and fetch, `jitsudoctl recordings` and `jitsudoctl replay --host`, cut
//! recordings and retention. The real setuid `jitsudo --sync` shipping recordings is in
//! `recordings_sync.rs`.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::pg::Pg;
use common::recordings::{agent, get, record, session, POLICY, REC_HOST};
use common::world::{run_ok, Service};
use common::TempDir;
use jitsudo_core::grant::keys::SecretKey;
use jitsudo_core::iolog::writer::{Recorder, Seal};
use jitsudo_core::iolog::Stream;
use jitsudo_core::wire::{self, RecordingMeta, RecordingUpload};

/// 4 MiB per recording, so the bound is reached with a small test.
const LIMITS: &str = "user_requests_per_minute = 1000\nhost_requests_per_minute = 100000\nmax_recording_bytes = 4194304\n";

/// A host of the service that signs with a key of the test's, like `jitsudo --sync` does.
struct Uploader {
    key: SecretKey,
    host: String,
}

impl Uploader {
    fn register(svc: &Service, host: &str) -> Uploader {
        let key = SecretKey::generate("host").unwrap();
        let body = serde_json::json!({"name": host, "public_key": key.public.to_paserk()});
        let resp = agent()
            .post(format!("{}/v1/admin/hosts", svc.url))
            .header("authorization", format!("Bearer {}", svc.admin_token))
            .header("content-type", "application/json")
            .send(body.to_string())
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        Uploader {
            key,
            host: host.to_string(),
        }
    }

    fn send(&self, svc: &Service, body: &RecordingUpload) -> (u16, serde_json::Value) {
        let envelope = wire::sign_envelope(
            &self.key,
            &self.host,
            wire::PATH_RECORDINGS,
            jitsudo_core::grant::now(),
            body,
        )
        .unwrap();
        let mut resp = agent()
            .post(format!("{}{}", svc.url, wire::PATH_RECORDINGS))
            .header("content-type", "application/json")
            .send(serde_json::json!({ "envelope": envelope }).to_string())
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap())
    }

    /// Ask for `/usr/bin/id -u` as alice (granted at once by the policy); the grant id.
    fn grant(&self, svc: &Service, auditor: &str) -> String {
        let body = wire::NewRequest {
            kind: jitsudo_core::grant::Kind::Exec,
            user: "alice".into(),
            uid: 1000,
            groups: vec![],
            run_as: "root".into(),
            argv: vec!["/usr/bin/id".into(), "-u".into()],
            reason: "recorded".into(),
            duration: None,
            once: false,
            source: None,
            ticket: None,
            extends: None,
        };
        let envelope = wire::sign_envelope(
            &self.key,
            &self.host,
            wire::PATH_REQUESTS,
            jitsudo_core::grant::now(),
            &body,
        )
        .unwrap();
        let status: serde_json::Value = agent()
            .post(format!("{}{}", svc.url, wire::PATH_REQUESTS))
            .header("content-type", "application/json")
            .send(serde_json::json!({ "envelope": envelope }).to_string())
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        let id = status["id"].as_str().unwrap();
        let view = svc.get_json(&format!("/v1/requests/{id}"), auditor);
        view["grant_id"]
            .as_str()
            .expect("granted at once")
            .to_string()
    }

    #[track_caller]
    fn ok(&self, svc: &Service, body: &RecordingUpload) -> wire::RecordingAck {
        let (status, v) = self.send(svc, body);
        assert_eq!(status, 200, "{v}");
        serde_json::from_value(v).unwrap()
    }
}

/// A root-owned 0700 directory for recordings, as /var/log/jitsudo-io is.
fn recordings_base(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

fn meta(seal: &Seal, user: &str, grant: &str) -> RecordingMeta {
    RecordingMeta {
        id: seal.id.to_string(),
        grant: grant.into(),
        user: user.into(),
        run_as: "root".into(),
        command: "/bin/sh -c work".into(),
        started: jitsudo_core::grant::now(),
        chunks: seal.chunks,
        sha256: seal.hash.clone(),
        cut: false,
    }
}

/// Every file of the recording in `dir`, by name.
fn local_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    wire::RECORDING_FILES
        .iter()
        .filter_map(|f| fs::read(dir.join(f)).ok().map(|b| (f.to_string(), b)))
        .collect()
}

/// The parts of every file, as the host sends them.
fn parts(id: &str, files: &BTreeMap<String, Vec<u8>>) -> Vec<RecordingUpload> {
    let mut out = Vec::new();
    for (name, bytes) in files {
        for (i, chunk) in bytes.chunks(wire::RECORDING_PART_BYTES).enumerate() {
            out.push(RecordingUpload::Part {
                id: id.into(),
                file: name.clone(),
                offset: (i * wire::RECORDING_PART_BYTES) as u64,
                data: wire::base64_encode(chunk),
            });
        }
    }
    out
}

fn listed_ids(svc: &Service, token: &str, query: &str) -> Vec<String> {
    let (status, v) = get(svc, &format!("/v1/recordings?{query}"), Some(token));
    assert_eq!(status, 200, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn audit_kinds(svc: &Service, token: &str, kind: &str) -> Vec<serde_json::Value> {
    let records = svc.get_json(&format!("/v1/audit?host={REC_HOST}&limit=1000"), token);
    records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == kind)
        .map(|r| serde_json::from_str(r["detail"].as_str().unwrap()).unwrap())
        .collect()
}

#[test]
fn sqlite_recordings() {
    common::require_root();
    let dir = TempDir::new("recordings-db");
    suite(&format!("sqlite://{}/jitsudod.db", dir.path().display()));
    let dir = TempDir::new("recordings-cut-db");
    cut_and_retention(&format!("sqlite://{}/jitsudod.db", dir.path().display()));
}

#[test]
fn postgres_recordings() {
    let pg = Pg::start();
    suite(&pg.new_database());
    cut_and_retention(&pg.new_database());
}

/// A recording its writer left unsealed: its files as they were when it died.
fn abandoned(base: &Path, user: &str, grant: &str, marker: &str) -> PathBuf {
    let mut r = Recorder::create(base, &session(user, grant), true).unwrap();
    r.record(Stream::TtyOut, &vec![b'.'; 300 << 10]).unwrap();
    r.record(Stream::TtyOut, marker.as_bytes()).unwrap();
    let dir = r.dir().to_path_buf();
    // Dropped without finish: its lock released, its chain never sealed, as a
    // SIGKILLed supervisor leaves it.
    drop(r);
    dir
}

/// Cut recordings are stored as `cut` at the last chunk that verifies, their unsealed
/// tail kept and counted; a sealed recording still may not carry one. Then the
/// service restarts with `[recordings] keep = "1s"` and its sweep deletes them all,
/// each deletion audited as the retention's.
fn cut_and_retention(database: &str) {
    let mut svc = Service::start_with(database, POLICY, None, LIMITS, "");
    let up = Uploader::register(&svc, REC_HOST);
    let auditor = svc.add_approver("auditor", &[]);
    let base = recordings_base("recordings-cut-base");

    let dir = abandoned(base.path(), "alice", "grant-cut", "MARKER-CUT\r\n");
    let v = jitsudo_core::iolog::chain::verify(&dir).unwrap();
    assert!(v.unsealed_bytes > 0, "the tail is not sealed");
    let id = v.id.clone();
    let files = local_files(&dir);
    for p in parts(&id, &files) {
        up.ok(&svc, &p);
    }
    let cut_meta = RecordingMeta {
        id: id.clone(),
        grant: "grant-cut".into(),
        user: "alice".into(),
        run_as: "root".into(),
        command: "/bin/sh -c work".into(),
        started: jitsudo_core::grant::now(),
        chunks: v.chunks,
        sha256: jitsudo_core::iolog::chain::hex(&v.hash),
        cut: false,
    };
    // Claimed sealed, the unsealed tail is refused (and the bytes dropped).
    let (status, body) = up.send(&svc, &RecordingUpload::Finish(cut_meta.clone()));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("not covered"),
        "{body}"
    );
    for p in parts(&id, &files) {
        up.ok(&svc, &p);
    }
    // Flagged cut at a chunk other than where the chain ends: refused.
    let mut wrong = cut_meta.clone();
    wrong.cut = true;
    wrong.chunks += 1;
    let (status, body) = up.send(&svc, &RecordingUpload::Finish(wrong));
    assert_eq!(status, 400, "{body}");
    for p in parts(&id, &files) {
        up.ok(&svc, &p);
    }
    let cut = RecordingMeta {
        cut: true,
        ..cut_meta
    };
    let done = up.ok(&svc, &RecordingUpload::Finish(cut.clone()));
    assert!(done.complete, "{done:?}");
    // Acknowledged again, stored once.
    assert!(up.ok(&svc, &RecordingUpload::Finish(cut)).complete);

    let (a, _) = record(base.path(), "bob", "grant-sealed", "MARKER-S\r\n", 1000);
    for p in parts(
        a.id.as_str(),
        &local_files(&base.path().join(a.id.relative_path())),
    ) {
        up.ok(&svc, &p);
    }
    assert!(
        up.ok(
            &svc,
            &RecordingUpload::Finish(meta(&a, "bob", "grant-sealed"))
        )
        .complete
    );
    let (_, list) = get(&svc, "/v1/recordings?host=rec-01", Some(&auditor));
    let state = |id: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .map(|r| r["state"].as_str().unwrap().to_string())
    };
    assert_eq!(state(&id).as_deref(), Some("cut"), "{list}");
    assert_eq!(state(a.id.as_str()).as_deref(), Some("sealed"), "{list}");
    assert_eq!(listed_ids(&svc, &auditor, "state=cut"), vec![id.clone()]);
    assert_eq!(
        listed_ids(&svc, &auditor, "state=sealed"),
        vec![a.id.to_string()]
    );
    let (status, body) = get(&svc, "/v1/recordings?state=torn", Some(&auditor));
    assert_eq!(status, 400, "{body}");
    let stored = audit_kinds(&svc, &auditor, "recording.stored");
    let cut_stored: Vec<_> = stored.iter().filter(|d| d["id"] == id.as_str()).collect();
    assert_eq!(cut_stored.len(), 1, "{stored:?}");
    assert_eq!(cut_stored[0]["state"], "cut");
    assert_eq!(cut_stored[0]["unsealed_bytes"], v.unsealed_bytes);
    assert_eq!(cut_stored[0]["chunks"], v.chunks);
    let refused = audit_kinds(&svc, &auditor, "recording.refused");
    assert_eq!(refused.len(), 2, "{refused:?}");

    // jitsudoctl's table says which is which; the cut one replays up to its tail.
    let out = run_ok(svc.ctl(&auditor).args(["recordings", "--host", REC_HOST]));
    let table = String::from_utf8(out.stdout).unwrap();
    let line = |id: &str| {
        table
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{table}"))
            .to_string()
    };
    assert!(line(&id).contains("cut, "), "{table}");
    assert!(line(a.id.as_str()).contains("verified, "), "{table}");
    let out = run_ok(svc.ctl(&auditor).args(["recordings", "--state", "cut"]));
    let only_cut = String::from_utf8(out.stdout).unwrap();
    assert!(
        only_cut.contains(&id) && !only_cut.contains(a.id.as_str()),
        "{only_cut}"
    );
    let out = run_ok(
        svc.ctl(&auditor)
            .args(["replay", &id, "--host", REC_HOST, "--speed", "0"]),
    );
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("MARKER-CUT\r\n"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not covered by the chain"),
        "{out:?}"
    );

    // ---- retention: a short keep, and the sweep (every keep, at most a minute).
    let config = fs::read_to_string(&svc.config).unwrap();
    fs::write(
        &svc.config,
        format!("{config}\n[recordings]\nkeep = \"1s\"\n"),
    )
    .unwrap();
    svc.kill9_and_restart();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        if listed_ids(&svc, &auditor, "host=rec-01").is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sweep never deleted them: {}",
            svc.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (status, _) = get(
        &svc,
        &format!("/v1/recordings/rec-01/{}", a.id),
        Some(&auditor),
    );
    assert_eq!(status, 404, "its bytes are gone with it");
    let deleted = audit_kinds(&svc, &auditor, "recording.deleted");
    let mut ids: Vec<String> = deleted
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let mut want = vec![id.clone(), a.id.to_string()];
    want.sort();
    assert_eq!(ids, want, "each deletion audited once: {deleted:?}");
    for d in &deleted {
        assert_eq!(d["who"], "retention", "{d}");
        assert_eq!(d["keep"], 1, "{d}");
        assert!(d["age"].as_i64().unwrap() >= 1, "{d}");
    }
    assert_eq!(
        deleted.iter().find(|d| d["id"] == id.as_str()).unwrap()["state"],
        "cut"
    );
    let records = svc.get_json(&format!("/v1/audit?host={REC_HOST}&limit=1000"), &auditor);
    let actors: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "recording.deleted")
        .map(|r| r["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors, vec!["retention", "retention"]);
    let verify = svc.get_json("/v1/audit/verify", &auditor);
    assert_eq!(verify["ok"], true, "{verify}");
}

fn suite(database: &str) {
    let mut svc = Service::start_with(database, POLICY, None, LIMITS, "");
    let up = Uploader::register(&svc, REC_HOST);
    let auditor = svc.add_approver("auditor", &[]);
    let base = recordings_base("recordings-base");
    // A real grant (the policy grants `id` at once), so the web page shows recording A
    // on its card.
    let grant_a = up.grant(&svc, &auditor);
    let grant_a = grant_a.as_str();

    // ---- upload in parts: 1.5 MB of output is three parts of ttyout, and the rest.
    let (a, a_dir) = record(base.path(), "alice", grant_a, "MARKER-A\r\n", 1_500_000);
    let a_files = local_files(&a_dir);
    let first = up.ok(
        &svc,
        &RecordingUpload::Status {
            id: a.id.to_string(),
        },
    );
    assert!(!first.complete && first.held.is_empty(), "{first:?}");
    let a_parts = parts(a.id.as_str(), &a_files);
    assert!(a_parts.len() >= 3 + 5, "{}", a_parts.len());
    for p in &a_parts {
        let ack = up.ok(&svc, p);
        assert!(!ack.complete);
    }
    let done = up.ok(&svc, &RecordingUpload::Finish(meta(&a, "alice", grant_a)));
    assert!(done.complete, "{done:?}");
    assert_eq!(done.sha256.as_deref(), Some(a.hash.as_str()));
    let total: u64 = a_files.values().map(|b| b.len() as u64).sum();
    for (name, bytes) in &a_files {
        if !bytes.is_empty() {
            assert_eq!(done.held[name], bytes.len() as u64, "{name}");
        }
    }

    // ---- dedup: the whole upload again is acknowledged, and stored once.
    for p in &a_parts {
        assert!(up.ok(&svc, p).complete);
    }
    assert!(
        up.ok(&svc, &RecordingUpload::Finish(meta(&a, "alice", grant_a)))
            .complete
    );
    assert_eq!(
        listed_ids(&svc, &auditor, "host=rec-01"),
        vec![a.id.to_string()]
    );
    let (_, list) = get(&svc, "/v1/recordings?host=rec-01", Some(&auditor));
    assert_eq!(list[0]["bytes"], total);
    assert_eq!(list[0]["sha256"], a.hash.as_str());
    assert_eq!(list[0]["chunks"], a.chunks);
    assert_eq!(audit_kinds(&svc, &auditor, "recording.stored").len(), 1);
    // A finish with another seal for the same id is a conflict, not a second copy.
    let mut other = meta(&a, "alice", grant_a);
    other.sha256 = "00".repeat(32);
    let (status, v) = up.send(&svc, &RecordingUpload::Finish(other));
    assert_eq!(status, 409, "{v}");

    // ---- resume: half the parts, the service killed and restarted, then the rest.
    let (b, b_dir) = record(base.path(), "bob", "grant-b", "MARKER-B\r\n", 1_200_000);
    let b_files = local_files(&b_dir);
    let b_parts = parts(b.id.as_str(), &b_files);
    let half = b_parts.len() / 2;
    for p in &b_parts[..half] {
        up.ok(&svc, p);
    }
    svc.kill9_and_restart();
    let status = up.ok(
        &svc,
        &RecordingUpload::Status {
            id: b.id.to_string(),
        },
    );
    assert!(!status.complete);
    let mut skipped = 0;
    for p in &b_parts {
        let RecordingUpload::Part {
            file, offset, data, ..
        } = p
        else {
            unreachable!()
        };
        let end = offset + wire::base64_decode(data).unwrap().len() as u64;
        if status.held.get(file).copied().unwrap_or(0) >= end {
            skipped += 1;
            continue;
        }
        up.ok(&svc, p);
    }
    assert_eq!(
        skipped, half,
        "the service held exactly the parts sent before"
    );
    // A part it holds, sent again after the restart, changes nothing.
    up.ok(&svc, &b_parts[0]);
    assert!(
        up.ok(&svc, &RecordingUpload::Finish(meta(&b, "bob", "grant-b")))
            .complete
    );
    let (status, fetched) = get(
        &svc,
        &format!("/v1/recordings/rec-01/{}", b.id),
        Some(&auditor),
    );
    assert_eq!(status, 200, "{fetched}");
    for (name, bytes) in &b_files {
        if bytes.is_empty() {
            continue;
        }
        let got = wire::base64_decode(fetched["files"][name].as_str().unwrap()).unwrap();
        assert!(got == *bytes, "{name} differs after the resumed upload");
    }

    // ---- a gap is refused: the second part of ttyout before the first.
    let (c, c_dir) = record(base.path(), "carol", "grant-c", "MARKER-C\r\n", 1_100_000);
    let c_files = local_files(&c_dir);
    let c_parts = parts(c.id.as_str(), &c_files);
    let second_ttyout = c_parts
        .iter()
        .find(|p| matches!(p, RecordingUpload::Part { file, offset, .. } if file == "ttyout" && *offset > 0))
        .unwrap();
    let (status, v) = up.send(&svc, second_ttyout);
    assert_eq!(status, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("gap"), "{v}");

    // ---- a tampered part: stored (a part carries no proof), refused at finish by the
    // chain, audited, dropped; the intact recording is then accepted.
    let mut tampered = c_files.clone();
    tampered.get_mut("ttyout").unwrap()[700_000] ^= 0x20;
    for p in parts(c.id.as_str(), &tampered) {
        up.ok(&svc, &p);
    }
    let (status, v) = up.send(&svc, &RecordingUpload::Finish(meta(&c, "carol", "grant-c")));
    assert_eq!(status, 400, "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(e.contains("refused") && e.contains("altered"), "{e}");
    assert!(!listed_ids(&svc, &auditor, "").contains(&c.id.to_string()));
    let refused = audit_kinds(&svc, &auditor, "recording.refused");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["id"], c.id.as_str());
    let again = up.ok(
        &svc,
        &RecordingUpload::Status {
            id: c.id.to_string(),
        },
    );
    assert!(
        again.held.is_empty(),
        "the refused bytes are gone: {again:?}"
    );
    for p in &c_parts {
        up.ok(&svc, p);
    }
    assert!(
        up.ok(&svc, &RecordingUpload::Finish(meta(&c, "carol", "grant-c")))
            .complete
    );
    // A seal that is not the chain's end is refused the same way.
    let (d, d_dir) = record(base.path(), "carol", "grant-d", "MARKER-D\r\n", 10_000);
    for p in parts(d.id.as_str(), &local_files(&d_dir)) {
        up.ok(&svc, &p);
    }
    let mut wrong = meta(&d, "carol", "grant-d");
    wrong.chunks += 1;
    let (status, v) = up.send(&svc, &RecordingUpload::Finish(wrong));
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("seal"), "{v}");

    // ---- the size bound: 5 MiB against a 4 MiB limit.
    let (big, big_dir) = record(base.path(), "alice", "grant-e", "MARKER-E\r\n", 5 << 20);
    let mut refused_at = None;
    for p in parts(big.id.as_str(), &local_files(&big_dir)) {
        let (status, v) = up.send(&svc, &p);
        if status != 200 {
            refused_at = Some((status, v));
            break;
        }
    }
    let (status, v) = refused_at.expect("the bound refuses a part");
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("max_recording_bytes"),
        "{v}"
    );

    // ---- malformed steps.
    for bad in [
        RecordingUpload::Status { id: "../x".into() },
        RecordingUpload::Part {
            id: a.id.to_string(),
            file: "../../etc/passwd".into(),
            offset: 0,
            data: "AAAA".into(),
        },
        RecordingUpload::Part {
            id: a.id.to_string(),
            file: "ttyout".into(),
            offset: 0,
            data: "not base64!".into(),
        },
    ] {
        let (status, v) = up.send(&svc, &bad);
        assert_eq!(status, 400, "{bad:?}: {v}");
    }
    // Another host's key cannot upload as rec-01.
    let impostor = Uploader {
        key: SecretKey::generate("host").unwrap(),
        host: REC_HOST.into(),
    };
    let (status, _) = impostor.send(
        &svc,
        &RecordingUpload::Status {
            id: a.id.to_string(),
        },
    );
    assert_eq!(status, 401);

    // ---- the auditor's search and fetch.
    let (status, _) = get(&svc, "/v1/recordings", None);
    assert_eq!(status, 401, "approver token required");
    let (status, _) = get(&svc, &format!("/v1/recordings/rec-01/{}", a.id), None);
    assert_eq!(status, 401);
    assert_eq!(
        listed_ids(&svc, &auditor, "user=alice"),
        vec![a.id.to_string()]
    );
    assert_eq!(
        listed_ids(&svc, &auditor, "user=bob"),
        vec![b.id.to_string()]
    );
    assert_eq!(
        listed_ids(&svc, &auditor, "grant=grant-c"),
        vec![c.id.to_string()]
    );
    assert!(listed_ids(&svc, &auditor, "host=web-99").is_empty());
    let future = jitsudo_core::grant::now() + 3600;
    assert!(listed_ids(&svc, &auditor, &format!("since={future}")).is_empty());
    assert_eq!(listed_ids(&svc, &auditor, "since=0").len(), 3);
    let (status, _) = get(&svc, "/v1/recordings/rec-01/ZZZZZZ", Some(&auditor));
    assert_eq!(status, 404);
    let (status, _) = get(
        &svc,
        &format!("/v1/recordings/rec-01/{}", d.id),
        Some(&auditor),
    );
    assert_eq!(status, 404, "an incomplete recording is not served");

    // ---- jitsudoctl recordings and replay --host.
    let out = run_ok(
        svc.ctl(&auditor)
            .args(["recordings", "--user", "alice", "--since", "1h"]),
    );
    let table = String::from_utf8(out.stdout).unwrap();
    let line = table
        .lines()
        .find(|l| l.starts_with(a.id.as_str()))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(line.contains("rec-01") && line.contains("alice") && line.contains(grant_a));
    assert!(
        line.contains("/bin/sh -c work") && line.contains("verified"),
        "{line}"
    );
    assert!(!table.contains(b.id.as_str()), "{table}");
    let out = run_ok(svc.ctl(&auditor).args([
        "replay",
        a.id.as_str(),
        "--host",
        "rec-01",
        "--speed",
        "0",
    ]));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("MARKER-A\r\n"));
    assert_eq!(out.stdout.len(), "MARKER-A\r\n".len() + 1_500_000);
    let out = svc
        .ctl(&auditor)
        .args(["replay", "ZZZZZZ", "--host", "rec-01", "--speed", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no recording ZZZZZZ"));

    // ---- the approver web page lists recording A on its grant's card.
    // The sign-in answers with a redirect that carries the session cookie.
    let login = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent()
        .post(format!("{}/ui/login", svc.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .send(format!("token={auditor}"))
        .unwrap();
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("jitsudo_session="))
        .map(|v| v.split(';').next().unwrap().to_string())
        .expect("a session cookie");
    let page = agent()
        .get(format!("{}/ui", svc.url))
        .header("cookie", &cookie)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let card_start = page
        .find(&format!("id=\"grant-{grant_a}\""))
        .unwrap_or_else(|| panic!("{page}"));
    let card = &page[card_start..card_start + page[card_start..].find("</article>").unwrap()];
    assert!(card.contains(&format!("<code>{}</code>", a.id)), "{card}");
    assert!(card.contains("KiB") || card.contains("MiB"), "{card}");
    assert!(
        !page.contains(&format!("<code>{}</code>", b.id)),
        "B's grant is not a real one"
    );

    // The trail with the recording records in it verifies.
    let verify = svc.get_json("/v1/audit/verify", &auditor);
    assert_eq!(verify["ok"], true, "{verify}");
}
