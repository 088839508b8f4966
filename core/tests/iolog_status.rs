//! A recording held against what the journal sealed (`iolog::status::check`, what
//! `jitsudoctl journal verify` reports for each recording): intact, still being written,
//! cut short by a killed writer, altered, or removed. The same checks through the real
//! setuid binary and `jitsudoctl` are in tests/e2e/recording.rs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use jitsudo_core::iolog::status::{check, Status};
use jitsudo_core::iolog::writer::{Recorder, Seal};
use jitsudo_core::iolog::{RecordingId, SessionInfo, Stream};
use jitsudo_core::store::journal::RecordingSeal;

struct Base(PathBuf);

impl Base {
    fn new(name: &str) -> Base {
        let dir =
            std::env::temp_dir().join(format!("jitsudo-status-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        Base(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Base {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
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
        run_group: String::new(),
        run_gid: 0,
        tty: "/dev/pts/0".into(),
        lines: 24,
        columns: 80,
        command: "/usr/bin/bash".into(),
        argv: vec!["bash".into()],
        grant: "g1".into(),
    }
}

fn sealed(seal: &Seal) -> RecordingSeal {
    RecordingSeal {
        chunks: seal.chunks,
        sha256: seal.hash.clone(),
    }
}

fn id() -> RecordingId {
    RecordingId::parse("000001").unwrap()
}

fn finished(base: &Base) -> (Seal, PathBuf) {
    let mut r = Recorder::create(base.path(), &info(), true).unwrap();
    r.record(Stream::TtyOut, b"# rm -rf /srv/cache\r\n")
        .unwrap();
    let dir = r.dir().to_path_buf();
    (r.finish().unwrap(), dir)
}

#[test]
fn an_intact_recording_matches_its_seal() {
    let base = Base::new("intact");
    let (seal, _) = finished(&base);
    assert_eq!(
        check(base.path(), &id(), Some(&sealed(&seal))),
        Status::Intact { chunks: 1 }
    );
}

#[test]
fn an_altered_recording_is_named() {
    let base = Base::new("altered");
    let (seal, dir) = finished(&base);
    fs::write(dir.join("ttyout"), b"# ls /srv/cache    \r\n").unwrap();
    let status = check(base.path(), &id(), Some(&sealed(&seal)));
    assert!(
        matches!(&status, Status::Altered(why) if why.contains("altered")),
        "{status}"
    );
    assert!(status.is_problem());
}

#[test]
fn a_removed_recording_is_missing() {
    let base = Base::new("removed");
    let (seal, dir) = finished(&base);
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        check(base.path(), &id(), Some(&sealed(&seal))),
        Status::Missing
    );
}

#[test]
fn a_recording_cut_back_to_an_earlier_chunk_no_longer_matches_its_seal() {
    // Files and chain shortened together to the first chunk: the chain still verifies on
    // its own, but it no longer ends at the journal's seal.
    let base = Base::new("shortened");
    let mut r = Recorder::create(base.path(), &info(), true).unwrap();
    r.record(Stream::TtyOut, &vec![b'.'; 300 << 10]).unwrap();
    r.record(Stream::TtyOut, b"the incriminating part").unwrap();
    let dir = r.dir().to_path_buf();
    let seal = r.finish().unwrap();
    let chain = fs::read_to_string(dir.join("chain")).unwrap();
    let kept: Vec<&str> = chain.lines().take(2).collect();
    fs::write(dir.join("chain"), format!("{}\n", kept.join("\n"))).unwrap();
    let status = check(base.path(), &id(), Some(&sealed(&seal)));
    assert!(matches!(status, Status::Altered(_)), "{status}");
}

#[test]
fn unsealed_is_in_progress_while_written_and_cut_once_its_writer_is_gone() {
    let base = Base::new("cut");
    let mut r = Recorder::create(base.path(), &info(), true).unwrap();
    r.record(Stream::TtyOut, b"working\r\n").unwrap();
    // The writer holds its chain locked; a lock is per open file description, so this
    // process's own probe sees it as another process would.
    assert!(
        matches!(check(base.path(), &id(), None), Status::InProgress { .. }),
        "{}",
        check(base.path(), &id(), None)
    );
    // Gone without sealing, as a SIGKILLed supervisor is.
    drop(r);
    let status = check(base.path(), &id(), None);
    assert!(matches!(status, Status::Cut { .. }), "{status}");
    assert!(status.is_problem());
}

#[test]
fn a_cut_the_journal_records_holds_while_the_chain_still_ends_there() {
    use jitsudo_core::iolog::{chain, status};
    let base = Base::new("cut-recorded");
    let mut r = Recorder::create(base.path(), &info(), true).unwrap();
    r.record(Stream::TtyOut, &vec![b'.'; 300 << 10]).unwrap();
    r.record(Stream::TtyOut, b"unsealed tail").unwrap();
    let dir = r.dir().to_path_buf();
    // While the writer lives, nobody may take its recording.
    assert!(status::abandoned(&dir).unwrap().is_none());
    assert!(status::still_written(&dir));
    drop(r);
    let lock = status::abandoned(&dir).unwrap();
    assert!(lock.is_some(), "a dead writer's lock can be taken");
    drop(lock);
    // The first write sealed a chunk (256 KiB); whether the tail was sealed too
    // depends on the clock, so the checks take the chain as it is.
    let v = chain::verify(&dir).unwrap();
    assert!(v.chunks >= 1);
    let last = RecordingSeal {
        chunks: v.chunks,
        sha256: chain::hex(&v.hash),
    };
    let recorded = status::check_cut(base.path(), &id(), &last);
    assert_eq!(
        recorded,
        Status::Cut {
            chunks: v.chunks,
            unsealed_bytes: v.unsealed_bytes,
            recorded: true
        }
    );
    assert!(!recorded.is_problem(), "the journal says what it is");
    assert!(recorded.to_string().contains("as the journal records"));

    // Cut back to an earlier point than the journal recorded: altered.
    let mut earlier = last.clone();
    earlier.chunks = 0;
    let status = status::check_cut(base.path(), &id(), &earlier);
    assert!(matches!(status, Status::Altered(_)), "{status}");
    // The sealed bytes changed after the cut was recorded: altered.
    let mut ttyout = fs::read(dir.join("ttyout")).unwrap();
    ttyout[10] = b'!';
    fs::write(dir.join("ttyout"), ttyout).unwrap();
    let status = status::check_cut(base.path(), &id(), &last);
    assert!(status.is_problem(), "{status}");
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        status::check_cut(base.path(), &id(), &last),
        Status::Missing
    );
}
