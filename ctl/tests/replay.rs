//! `jitsudoctl replay` on a recording made by the real writer.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use jitsudo_core::iolog::writer::Recorder;
use jitsudo_core::iolog::{SessionInfo, Stream};

fn base(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jitsudoctl-replay-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

fn recording(base: &Path) -> PathBuf {
    let info = SessionInfo {
        started: (1_764_590_400, 0),
        user: "alice".into(),
        host: "web-01".into(),
        cwd: "/".into(),
        run_user: "root".into(),
        run_uid: 0,
        run_group: "root".into(),
        run_gid: 0,
        tty: "/dev/pts/3".into(),
        lines: 24,
        columns: 80,
        command: "/usr/bin/systemctl".into(),
        argv: vec!["systemctl".into(), "restart".into(), "nginx".into()],
        grant: "3f6c0a".into(),
    };
    let mut r = Recorder::create(base, &info, true).unwrap();
    r.record(Stream::TtyOut, b"restarting nginx\r\n").unwrap();
    r.record(Stream::Stderr, b"done\n").unwrap();
    let dir = r.dir().to_path_buf();
    r.finish().unwrap();
    dir
}

fn replay(base: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jitsudoctl"))
        .args(["replay", "--dir", base.to_str().unwrap(), "--speed", "0"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn replays_the_output_and_names_the_run() {
    let base = base("ok");
    recording(&base);
    let out = replay(&base, &["000001"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "restarting nginx\r\ndone\n"
    );
    assert!(
        stderr.contains("recording 000001: alice on web-01 as root")
            && stderr.contains("/usr/bin/systemctl restart nginx"),
        "{stderr}"
    );
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn an_altered_recording_is_refused_unless_forced() {
    let base = base("altered");
    let dir = recording(&base);
    fs::write(dir.join("ttyout"), b"restarting apache\r\n").unwrap();
    let out = replay(&base, &["000001"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("altered"),
        "{out:?}"
    );
    let out = replay(&base, &["--force", "000001"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("apache"));
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn bad_ids_and_missing_recordings_are_clear_errors() {
    let base = base("missing");
    let out = replay(&base, &["../../etc"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a recording id"),
        "{out:?}"
    );
    let out = replay(&base, &["00000Z"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no recording 00000Z"),
        "{out:?}"
    );
    fs::remove_dir_all(&base).unwrap();
}
