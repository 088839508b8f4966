//! Recordings: written by the real writer, replayed by Debian's real `sudoreplay`, and
//! checked by the hash chain after they are cut, altered or torn.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use jitsudo_core::iolog::chain;
use jitsudo_core::iolog::reader::{self, Event, ReplayOptions};
use jitsudo_core::iolog::writer::Recorder;
use jitsudo_core::iolog::{SessionInfo, Stream};

struct Base(PathBuf);

impl Base {
    fn new(name: &str) -> Base {
        let dir = std::env::temp_dir().join(format!("jitsudo-iolog-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        Base(dir)
    }
}

impl Drop for Base {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn info() -> SessionInfo {
    SessionInfo {
        started: (1_764_590_400, 5),
        user: "alice".into(),
        host: "web-01".into(),
        cwd: "/home/alice".into(),
        run_user: "root".into(),
        run_uid: 0,
        run_group: "root".into(),
        run_gid: 0,
        tty: "/dev/pts/3".into(),
        lines: 24,
        columns: 80,
        command: "/usr/bin/bash".into(),
        argv: vec!["bash".into(), "-i".into()],
        grant: "3f6c0a".into(),
    }
}

/// A short session: a prompt, typed input, output, a resize, more output.
fn record(base: &Path) -> (jitsudo_core::iolog::writer::Seal, PathBuf) {
    if !is_root() {
        panic!("these tests need root: recordings live in a root-only directory");
    }
    let mut r = Recorder::create(base, &info(), true).unwrap();
    r.record(Stream::TtyOut, b"root@web-01:~# ").unwrap();
    r.record(Stream::TtyIn, b"cat /etc/hostname\r").unwrap();
    r.record(Stream::TtyOut, b"cat /etc/hostname\r\nweb-01\r\n")
        .unwrap();
    r.window_size(50, 132).unwrap();
    r.record(Stream::TtyOut, b"root@web-01:~# exit\r\n")
        .unwrap();
    let dir = r.dir().to_path_buf();
    (r.finish().unwrap(), dir)
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

#[test]
fn sudoreplay_replays_a_jitsudo_recording() {
    let base = Base::new("replay");
    let (seal, _dir) = record(&base.0);
    assert_eq!(seal.id.as_str(), "000001");

    let out = Command::new("sudoreplay")
        .args([
            "-d",
            base.0.to_str().unwrap(),
            "-s",
            "1000",
            "-m",
            "0",
            seal.id.as_str(),
        ])
        .output()
        .expect("sudoreplay (Debian package sudo) must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("Replaying sudo session: /usr/bin/bash -i"),
        "{stdout}"
    );
    assert!(
        stdout.contains("cat /etc/hostname\r\nweb-01\r\n"),
        "{stdout}"
    );
    assert!(stdout.contains("root@web-01:~# exit"), "{stdout}");

    // sudoreplay's search finds it by user and command.
    let out = Command::new("sudoreplay")
        .args([
            "-d",
            base.0.to_str().unwrap(),
            "-l",
            "user",
            "alice",
            "command",
            "bash",
        ])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        listing.contains("alice")
            && listing.contains("TSID=000001")
            && listing.contains("/usr/bin/bash -i"),
        "{listing}"
    );
}

#[test]
fn our_reader_replays_the_output_and_not_the_input() {
    let base = Base::new("reader");
    let (_seal, dir) = record(&base.0);
    let events = reader::events(&dir).unwrap();
    assert_eq!(events.len(), 5);
    assert!(matches!(
        events[3],
        Event::WindowSize {
            lines: 50,
            columns: 132,
            ..
        }
    ));
    let mut out = Vec::new();
    reader::replay(
        &dir,
        &mut out,
        &ReplayOptions {
            speed: 0.0,
            max_delay: None,
        },
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "root@web-01:~# cat /etc/hostname\r\nweb-01\r\nroot@web-01:~# exit\r\n"
    );
    assert!(reader::finished(&dir).unwrap());
}

#[test]
fn input_is_not_recorded_when_the_config_says_so() {
    let base = Base::new("noinput");
    let mut r = Recorder::create(&base.0, &info(), false).unwrap();
    r.record(Stream::TtyIn, b"secret\r").unwrap();
    r.record(Stream::TtyOut, b"ok\r\n").unwrap();
    let dir = r.dir().to_path_buf();
    r.finish().unwrap();
    assert_eq!(fs::read(dir.join("ttyin")).unwrap(), b"");
    assert_eq!(reader::events(&dir).unwrap().len(), 1);
}

#[test]
fn the_chain_matches_the_seal_of_an_intact_recording() {
    let base = Base::new("intact");
    let (seal, dir) = record(&base.0);
    let v = chain::verify(&dir).unwrap();
    assert_eq!(chain::hex(&v.hash), seal.hash);
    assert_eq!((v.chunks, v.unsealed_bytes), (seal.chunks, 0));
    assert_eq!((v.id.as_str(), v.grant.as_str()), ("000001", "3f6c0a"));
}

/// The service's check over bytes in memory agrees with the check of the files: the
/// same result for an intact recording, a refusal for an altered byte or a missing file.
#[test]
fn the_chain_verifies_the_same_from_memory() {
    let base = Base::new("memory");
    let (seal, dir) = record(&base.0);
    let chain_bytes = fs::read(dir.join(chain::CHAIN_FILE)).unwrap();
    let files: Vec<Vec<u8>> = chain::FILES
        .iter()
        .map(|f| fs::read(dir.join(f)).unwrap())
        .collect();
    let as_parts = |files: &[Vec<u8>]| -> [Option<Vec<u8>>; 6] {
        std::array::from_fn(|i| Some(files[i].clone()))
    };
    let owned = as_parts(&files);
    let v = chain::verify_bytes(
        "web-01/000001",
        &chain_bytes,
        owned.each_ref().map(|f| f.as_deref()),
    )
    .unwrap();
    assert_eq!(v, chain::verify(&dir).unwrap());
    assert_eq!(chain::hex(&v.hash), seal.hash);

    let mut altered = files.clone();
    let ttyout = chain::FILES.iter().position(|f| *f == "ttyout").unwrap();
    altered[ttyout][3] ^= 1;
    let owned = as_parts(&altered);
    let e = chain::verify_bytes(
        "web-01/000001",
        &chain_bytes,
        owned.each_ref().map(|f| f.as_deref()),
    )
    .unwrap_err();
    assert!(
        e.0.starts_with("web-01/000001: ") && e.0.contains("altered"),
        "{e}"
    );

    let mut missing = as_parts(&files);
    missing[ttyout] = None;
    assert!(
        chain::verify_bytes("x", &chain_bytes, missing.each_ref().map(|f| f.as_deref())).is_err()
    );
}

#[test]
fn one_altered_byte_is_detected() {
    let base = Base::new("altered");
    let (_seal, dir) = record(&base.0);
    let path = dir.join("ttyout");
    let mut bytes = fs::read(&path).unwrap();
    let at = bytes.iter().position(|b| *b == b'w').unwrap();
    bytes[at] = b'W';
    fs::write(&path, bytes).unwrap();
    let e = chain::verify(&dir).unwrap_err();
    assert!(e.0.contains("altered"), "{e}");
}

#[test]
fn a_cut_recording_is_detected() {
    let base = Base::new("cut");
    let (_seal, dir) = record(&base.0);
    let path = dir.join("ttyout");
    let len = fs::metadata(&path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    assert!(chain::verify(&dir).is_err());
}

#[test]
fn a_seal_of_a_longer_recording_does_not_match_a_shortened_chain() {
    // Dropping the chain's last line and truncating the files to the line before
    // verifies on its own, but no longer matches the journal's seal.
    let base = Base::new("shortened");
    let mut r = Recorder::create(&base.0, &info(), true).unwrap();
    r.record(Stream::TtyOut, &vec![b'a'; 300 << 10]).unwrap(); // over the chunk size: sealed
    r.record(Stream::TtyOut, b"the part that is cut").unwrap();
    let dir = r.dir().to_path_buf();
    let seal = r.finish().unwrap();
    assert_eq!(seal.chunks, 2);
    let chain_text = fs::read_to_string(dir.join("chain")).unwrap();
    let first_two: Vec<&str> = chain_text.lines().take(2).collect();
    fs::write(dir.join("chain"), format!("{}\n", first_two.join("\n"))).unwrap();
    let v = chain::verify(&dir).unwrap();
    assert_eq!(v.chunks, 1);
    assert_ne!(chain::hex(&v.hash), seal.hash);
    assert!(v.unsealed_bytes > 0);
}

#[test]
fn a_torn_last_chain_line_leaves_everything_before_it_readable() {
    let base = Base::new("torn");
    let (_seal, dir) = record(&base.0);
    let mut text = fs::read_to_string(dir.join("chain")).unwrap();
    text.push_str("2 9 0"); // a supervisor killed mid-line
    fs::set_permissions(dir.join("chain"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(dir.join("chain"), text).unwrap();
    let v = chain::verify(&dir).unwrap();
    assert_eq!(v.chunks, 1);
    let mut out = Vec::new();
    reader::replay(
        &dir,
        &mut out,
        &ReplayOptions {
            speed: 0.0,
            max_delay: None,
        },
    )
    .unwrap();
    assert!(String::from_utf8(out).unwrap().ends_with("exit\r\n"));
}

#[test]
fn ids_follow_the_sequence_and_skip_existing_directories() {
    let base = Base::new("seq");
    let first = Recorder::create(&base.0, &info(), true).unwrap();
    assert_eq!(first.id().as_str(), "000001");
    fs::create_dir_all(base.0.join("00/00/02")).unwrap();
    let next = Recorder::create(&base.0, &info(), true).unwrap();
    assert_eq!(next.id().as_str(), "000003");
    assert_eq!(fs::read_to_string(base.0.join("seq")).unwrap(), "000003\n");
}

#[test]
fn a_base_directory_others_can_enter_is_refused() {
    let base = Base::new("open");
    fs::set_permissions(&base.0, fs::Permissions::from_mode(0o755)).unwrap();
    let e = Recorder::create(&base.0, &info(), true).err().unwrap();
    assert!(e.to_string().contains("mode 0700"), "{e}");
    let link = base.0.with_extension("link");
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink(&base.0, &link).unwrap();
    let e = Recorder::create(&link, &info(), true).err().unwrap();
    assert!(e.to_string().contains("not a directory"), "{e}");
    fs::remove_file(&link).unwrap();
}

#[test]
fn a_torn_last_timing_line_is_not_an_event() {
    // A writer killed between the bytes of a timing line (a cut recording): the
    // events before it replay, the torn line is not one.
    let base = Base::new("torn-timing");
    let (_seal, dir) = record(&base.0);
    let timing = dir.join("timing");
    fs::set_permissions(&timing, fs::Permissions::from_mode(0o600)).unwrap();
    let mut text = fs::read(&timing).unwrap();
    text.extend_from_slice(b"4 0.0001");
    fs::write(&timing, &text).unwrap();
    assert_eq!(reader::events(&dir).unwrap().len(), 5);
    // A malformed complete line is still an error.
    text.extend_from_slice(b"\n");
    fs::write(&timing, &text).unwrap();
    assert!(reader::events(&dir).is_err());
}

#[test]
fn output_that_stops_is_sealed_once_due_without_more_output() {
    let base = Base::new("seal-due");
    let mut r = Recorder::create(&base.0, &info(), true).unwrap();
    assert_eq!(r.seal_due_in(), None, "nothing to seal yet");
    r.record(Stream::TtyOut, b"the last words before a long pause\r\n")
        .unwrap();
    let chain_lines = |r: &Recorder| {
        fs::read_to_string(r.dir().join("chain"))
            .unwrap()
            .lines()
            .count()
    };
    let due = r.seal_due_in().expect("unsealed bytes are due for a seal");
    assert!(due <= std::time::Duration::from_secs(1));
    std::thread::sleep(due);
    r.seal_if_due().unwrap();
    assert_eq!(chain_lines(&r), 2, "the header and one chunk");
    assert_eq!(r.seal_due_in(), None);
    let v = chain::verify(r.dir()).unwrap();
    assert_eq!((v.chunks, v.unsealed_bytes), (1, 0));
}

#[test]
fn log_json_holds_each_value_exactly_and_sudoreplay_lists_it() {
    // log.json is written by hand (one value per line, as sudo writes it): every value,
    // quotes, backslashes, newlines and non-ASCII included, must come back exactly.
    let base = Base::new("logjson");
    let mut session = info();
    session.command = "/usr/bin/sh".into();
    session.argv = vec![
        "sh".into(),
        "-c".into(),
        "echo \"quoted\" \\ back\nslash; café".into(),
    ];
    session.run_group = String::new();
    let r = Recorder::create(&base.0, &session, true).unwrap();
    let dir = r.dir().to_path_buf();
    r.finish().unwrap();
    let text = fs::read_to_string(dir.join("log.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["timestamp"]["seconds"], 1_764_590_400);
    assert_eq!(json["timestamp"]["nanoseconds"], 5);
    assert_eq!(json["columns"], 80);
    assert_eq!(json["lines"], 24);
    assert_eq!(json["command"], "/usr/bin/sh");
    assert_eq!(
        json["runargv"],
        serde_json::json!(["sh", "-c", "echo \"quoted\" \\ back\nslash; café"])
    );
    assert_eq!(json["runuid"], 0);
    assert_eq!(json["rungid"], 0);
    assert_eq!(json["runuser"], "root");
    assert!(json.get("rungroup").is_none(), "{text}");
    assert_eq!(json["runcwd"], "/home/alice");
    assert_eq!(json["submitcwd"], "/home/alice");
    assert_eq!(json["submithost"], "web-01");
    assert_eq!(json["submituser"], "alice");
    assert_eq!(json["ttyname"], "/dev/pts/3");

    // sudo's own parser reads it (it needs white space after a number).
    let out = Command::new("sudoreplay")
        .args(["-d"])
        .arg(&base.0)
        .args(["-l", "user", "alice"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(listed.contains("TSID=000001"), "{listed}");
}
