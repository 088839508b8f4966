//! `jitsudoctl journal verify` holds every recording the journal names against its files:
//! intact, still being written, cut short by a killed supervisor, altered, or removed.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use jitsudo_core::iolog::writer::{Recorder, Seal};
use jitsudo_core::iolog::{SessionInfo, Stream};
use jitsudo_core::secure_file::TrustedDir;
use jitsudo_core::store::journal::{self, Entry, RecordingRef, RecordingSeal};

struct World {
    root: PathBuf,
}

impl World {
    fn new(name: &str) -> World {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("journal-rec-{name}"));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("state")).unwrap();
        fs::create_dir_all(root.join("io")).unwrap();
        for d in ["", "state", "io"] {
            let mode = if d == "io" { 0o700 } else { 0o755 };
            fs::set_permissions(root.join(d), fs::Permissions::from_mode(mode)).unwrap();
        }
        World { root }
    }

    fn io(&self) -> PathBuf {
        self.root.join("io")
    }

    fn journal(&self, recording: RecordingRef) {
        let dir = TrustedDir::open(&self.root.join("state")).unwrap();
        let entry = Entry {
            time: 1_800_000_000,
            host: "web-01".into(),
            user: "alice".into(),
            uid: 1001,
            outcome: "allowed".into(),
            reason: String::new(),
            tty: "pts/0".into(),
            pwd: "/".into(),
            run_as: Some("root".into()),
            grant: Some("g1".into()),
            command: vec!["/usr/bin/bash".into()],
            argv: None,
            recording: Some(recording),
        };
        journal::append(&dir, entry, false).unwrap();
    }

    fn verify(&self) -> Output {
        Command::new(env!("CARGO_BIN_EXE_jitsudoctl"))
            .args(["journal", "verify", "--dir"])
            .arg(self.root.join("state"))
            .arg("--recordings")
            .arg(self.io())
            .output()
            .unwrap()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn info() -> SessionInfo {
    SessionInfo {
        started: (1_800_000_000, 0),
        user: "alice".into(),
        host: "web-01".into(),
        cwd: "/".into(),
        run_user: "root".into(),
        run_uid: 0,
        run_group: "root".into(),
        run_gid: 0,
        tty: "/dev/pts/0".into(),
        lines: 24,
        columns: 80,
        command: "/usr/bin/bash".into(),
        argv: vec!["bash".into()],
        grant: "g1".into(),
    }
}

fn started(id: &str) -> RecordingRef {
    RecordingRef {
        id: id.into(),
        seal: None,
    }
}

fn sealed(seal: &Seal) -> RecordingRef {
    RecordingRef {
        id: seal.id.to_string(),
        seal: Some(RecordingSeal {
            chunks: seal.chunks,
            sha256: seal.hash.clone(),
        }),
    }
}

/// One finished recording, journalled at its start and its end.
fn finished_run(w: &World) -> (Seal, PathBuf) {
    let mut r = Recorder::create(&w.io(), &info(), true).unwrap();
    w.journal(started(r.id().as_str()));
    r.record(Stream::TtyOut, b"# rm -rf /srv/cache\r\n")
        .unwrap();
    let dir = r.dir().to_path_buf();
    let seal = r.finish().unwrap();
    w.journal(sealed(&seal));
    (seal, dir)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn an_intact_recording_passes() {
    let w = World::new("intact");
    finished_run(&w);
    let out = w.verify();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("recording 000001: intact (1 chunk(s))"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_altered_recording_fails() {
    let w = World::new("altered");
    let (_, dir) = finished_run(&w);
    fs::write(dir.join("ttyout"), b"# ls /srv/cache    \r\n").unwrap();
    let out = w.verify();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("recording 000001: ALTERED"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_removed_recording_fails() {
    let w = World::new("removed");
    let (_, dir) = finished_run(&w);
    fs::remove_dir_all(&dir).unwrap();
    let out = w.verify();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("recording 000001: MISSING"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_recording_replaced_by_an_earlier_cut_of_itself_fails() {
    // Drop the last chunk from both the files and the chain: the chain still verifies
    // on its own, but it no longer ends at the journal's seal.
    let w = World::new("shortened");
    let mut r = Recorder::create(&w.io(), &info(), true).unwrap();
    w.journal(started(r.id().as_str()));
    r.record(Stream::TtyOut, &vec![b'.'; 300 << 10]).unwrap();
    r.record(Stream::TtyOut, b"the incriminating part").unwrap();
    let dir = r.dir().to_path_buf();
    let seal = r.finish().unwrap();
    w.journal(sealed(&seal));
    let chain = fs::read_to_string(dir.join("chain")).unwrap();
    let kept: Vec<&str> = chain.lines().take(2).collect();
    fs::write(dir.join("chain"), format!("{}\n", kept.join("\n"))).unwrap();
    let out = w.verify();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("ALTERED"), "{}", text(&out));
}

#[test]
fn a_run_still_recording_is_in_progress_and_a_dead_one_is_cut() {
    let w = World::new("cut");
    let mut r = Recorder::create(&w.io(), &info(), true).unwrap();
    w.journal(started(r.id().as_str()));
    r.record(Stream::TtyOut, b"working\r\n").unwrap();
    let out = w.verify();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("recording 000001: still being recorded"),
        "{}",
        text(&out)
    );
    // The writer goes away without sealing, as a SIGKILLed supervisor does.
    drop(r);
    let out = w.verify();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("recording 000001: cut"),
        "{}",
        text(&out)
    );
}
