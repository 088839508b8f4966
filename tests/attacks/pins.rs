//! `sha256:` pins: the bytes that run are the bytes hashed. A pinned script or binary
//! its owner rewrites in place, while it runs or while jitsudo hashes it, never runs the
//! new bytes; a program only root can change still runs in place; one too big to copy
//! is refused with the fix; and a pin that is not 64 ASCII hex digits is refused, not a
//! crash.

use crate::sandbox::{Refusal, Sandbox, HOST};
use std::fs;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// jitsudo's bound on the pinned programs it copies (exec::PINNED_COPY_LIMIT).
const COPY_LIMIT: u64 = 64 * 1024 * 1024;
const ALICE: u32 = 42001;

fn sha256_hex(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// A directory alice owns (so it and everything she puts in it are hers to rewrite).
fn alice_dir(s: &Sandbox) -> PathBuf {
    let dir = s.dir.join("alice-bin");
    fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(ALICE), Some(ALICE)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Write an executable file, owned by `uid`.
fn install(path: &Path, bytes: &[u8], uid: u32) {
    fs::write(path, bytes).unwrap();
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Import a grant for alice of `sha256:<hash of program> <program> <args>`.
fn grant_pinned(s: &Sandbox, program: &Path, args: &str) {
    let spec = format!(
        "sha256:{} {} {args}",
        sha256_hex(program),
        program.display()
    );
    // The scripts here run other programs (sleep, id): these tests are about the bytes
    // that run, not about exec (tests/attacks/escapes.rs).
    s.import_ok(
        "alice",
        &s.mint("alice", &["--command", spec.trim_end(), "--allow-exec"]),
    );
}

#[track_caller]
fn wait_until(child: &mut Child, what: &str, mut done: impl FnMut() -> bool) {
    // A guard against hanging forever, not a timing assertion.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
            }
            panic!("{what} never happened; jitsudo said: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn pinned_script_rewritten_in_place_while_it_runs_keeps_running_the_hashed_text() {
    let s = Sandbox::new();
    let script = alice_dir(&s).join("deploy.sh");
    let started = s.dir.join("started");
    let go = s.dir.join("go");
    // bash reads a script as it goes: after the loop it reads the next line from the
    // file, so a rewrite of that line during the loop is what would run.
    let text = |word: &str| {
        format!(
            "#!/bin/bash\n: > {}; while [ ! -e {} ]; do sleep 0.05; done\necho \"{word} $(id -u)\"\n",
            started.display(),
            go.display()
        )
    };
    install(&script, text("original").as_bytes(), ALICE);
    grant_pinned(&s, &script, "");

    let mut child = s
        .jitsudo("alice")
        .arg(&script)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(&mut child, "the pinned script starting", || {
        started.exists()
    });
    // Alice rewrites her own script in place, as in the report: same inode, same length.
    let rewrite = s
        .as_user("alice", "/bin/sh")
        .args(["-c", r#"printf '%s' "$1" 1<>"$2""#, "sh"])
        .arg(text("replaced"))
        .arg(&script)
        .output()
        .unwrap();
    assert!(rewrite.status.success(), "{rewrite:?}");
    assert_eq!(fs::read_to_string(&script).unwrap(), text("replaced"));
    fs::write(&go, "").unwrap();

    let out = crate::sandbox::Outcome::of(child.wait_with_output().unwrap());
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "original 0\n"),
        "the rewritten line must not run as root: {out:?}"
    );
}

/// The position of the descriptor `pid` has open on `file`, once it has one.
fn read_position(pid: u32, file: &Path) -> Option<u64> {
    for entry in fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        if fs::read_link(entry.path()).ok().as_deref() != Some(file) {
            continue;
        }
        let info = fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            entry.file_name().to_string_lossy()
        ))
        .ok()?;
        return info
            .lines()
            .find_map(|l| l.strip_prefix("pos:"))
            .and_then(|p| p.trim().parse().ok());
    }
    None
}

#[test]
fn pinned_binary_overwritten_while_it_is_hashed_never_runs_the_new_bytes() {
    let s = Sandbox::new();
    let program = alice_dir(&s).join("tool");
    // /usr/bin/true and 48 MiB of padding: hashing the tail takes a while, and the ELF
    // loader never looks at it.
    let mut original = fs::read("/usr/bin/true").unwrap();
    original.resize(48 * 1024 * 1024, 0);
    install(&program, &original, ALICE);
    grant_pinned(&s, &program, "");
    let id = fs::read("/usr/bin/id").unwrap();
    // Opened for each write and closed at once: a descriptor open for writing would
    // make the kernel refuse to exec the file (ETXTBSY) and hide what old code did.
    let overwrite = |bytes: &[u8]| {
        fs::OpenOptions::new()
            .write(true)
            .open(&program)
            .unwrap()
            .write_at(bytes, 0)
            .unwrap();
    };

    let mut raced = 0;
    for _ in 0..6 {
        overwrite(&original[..id.len()]);
        let mut child = s
            .jitsudo("alice")
            .arg(&program)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Once jitsudo has read past the start of the file (the hash of the first bytes
        // is done) and while it is still reading, put /usr/bin/id's bytes there.
        let pid = child.id();
        let size = original.len() as u64;
        loop {
            if let Some(pos) = read_position(pid, &program) {
                if pos > 0 && pos < size {
                    overwrite(&id);
                    raced += 1;
                    break;
                }
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
        }
        let out = crate::sandbox::Outcome::of(child.wait_with_output().unwrap());
        assert!(
            !out.stdout.contains("uid="),
            "bytes written after the hash ran as root: {out:?}"
        );
        if out.code != 0 {
            out.assert_denied("does not match the grant's sha256 pin");
        } else {
            assert_eq!(out.stdout, "", "{out:?}");
        }
        if raced == 2 {
            break;
        }
    }
    assert!(raced > 0, "never caught jitsudo while it was hashing");
}

#[test]
fn program_only_root_can_change_runs_in_place_and_others_from_a_sealed_copy() {
    let s = Sandbox::new();
    // readlink /proc/self/exe names what the kernel is executing.
    let in_place = s.dir.join("bin/readlink-pinned");
    install(&in_place, &fs::read("/usr/bin/readlink").unwrap(), 0);
    let users = alice_dir(&s).join("readlink");
    install(&users, &fs::read("/usr/bin/readlink").unwrap(), ALICE);
    let group_writable = s.dir.join("bin/readlink-group-writable");
    install(&group_writable, &fs::read("/usr/bin/readlink").unwrap(), 0);
    fs::set_permissions(&group_writable, fs::Permissions::from_mode(0o775)).unwrap();
    for program in [&in_place, &users, &group_writable] {
        grant_pinned(&s, program, "/proc/self/exe");
    }

    let run = |program: &Path| s.run("alice", &[program.to_str().unwrap(), "/proc/self/exe"]);
    let out = run(&in_place);
    assert_eq!(
        (out.code, out.stdout.trim()),
        (0, in_place.to_str().unwrap()),
        "a root-owned pinned program runs in place: {out:?}"
    );
    for copied in [&users, &group_writable] {
        let out = run(copied);
        assert_eq!(out.code, 0, "{out:?}");
        assert!(
            out.stdout.starts_with("/memfd:jitsudo-pinned"),
            "{} runs from the sealed copy: {out:?}",
            copied.display()
        );
    }
}

#[test]
fn pinned_file_over_the_copy_limit_is_refused_with_the_fix() {
    let s = Sandbox::new();
    let big = alice_dir(&s).join("big");
    install(&big, &fs::read("/usr/bin/true").unwrap(), ALICE);
    // Sparse: one byte over the limit costs no disk.
    fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(COPY_LIMIT + 1)
        .unwrap();
    grant_pinned(&s, &big, "");
    s.logs();
    let out = s.run("alice", &[big.to_str().unwrap()]);
    out.assert_denied(&format!(
        "{} is {} bytes, more than the {COPY_LIMIT} bytes jitsudo copies",
        big.display(),
        COPY_LIMIT + 1
    ));
    assert!(
        out.stderr
            .contains("make it owned by root and not writable by group or others"),
        "{out:?}"
    );
    let logs = s.logs();
    assert!(
        logs.iter().any(|l| l.contains("command not allowed")
            && l.contains(&format!("more than the {COPY_LIMIT} bytes"))),
        "{logs:#?}"
    );

    // The fix the message gives: owned by root, it runs in place, however big.
    std::os::unix::fs::chown(&big, Some(0), Some(0)).unwrap();
    let out = s.run("alice", &[big.to_str().unwrap()]);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:?}");
}

#[test]
fn pinned_file_on_a_noexec_mount_is_not_copied_around_the_mount_flag() {
    let s = Sandbox::new();
    fs::create_dir(s.dir.join("noexec")).unwrap();
    // Only inside the sandbox's mount namespace.
    s.sh(&format!(
        "mount -t tmpfs -o noexec,mode=0755 tmpfs {}",
        s.dir.join("noexec").display()
    ));
    let inner = s.dir.join("noexec/tool");
    let program = s.path(inner.to_str().unwrap());
    install(&program, &fs::read("/usr/bin/true").unwrap(), ALICE);
    let spec = format!("sha256:{} {}", sha256_hex(&program), inner.display());
    s.import_ok("alice", &s.mint("alice", &["--command", &spec]));
    s.run("alice", &[inner.to_str().unwrap()])
        .assert_denied("is on a filesystem mounted noexec");
}

/// Sign `claims` with the sandbox key directly, as a buggy or hostile issuer could:
/// jitsudoctl checks the command specs before it signs.
pub fn sign_unchecked(s: &Sandbox, claims: &jitsudo_core::grant::Claims) -> String {
    use pasetors::keys::AsymmetricSecretKey;
    use pasetors::version4::{PublicToken, V4};
    let text = fs::read_to_string(&s.key).unwrap();
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("secret_key = \""))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap();
    let key = AsymmetricSecretKey::<V4>::try_from(secret).unwrap();
    let payload = serde_json::to_vec(claims).unwrap();
    PublicToken::sign(
        &key,
        &payload,
        Some(br#"{"key":"k1"}"#),
        Some(jitsudo_core::grant::IMPLICIT_ASSERTION),
    )
    .unwrap()
}

#[test]
fn non_ascii_pin_in_a_signed_grant_is_refused_not_a_crash() {
    let s = Sandbox::new();
    let now = jitsudo_core::grant::now();
    // 64 bytes with the two-byte 'é' at an odd offset: the length check passes, and
    // slicing pairs of bytes would cut the 'é' in half.
    let spec = format!("sha256:{}éa /usr/bin/id", "a".repeat(61));
    let claims = jitsudo_core::grant::Claims {
        jti: jitsudo_core::grant::new_grant_id().unwrap(),
        iss: "jitsudoctl:k1".into(),
        sub: "alice".into(),
        host: HOST.into(),
        run_as: "root".into(),
        commands: vec![spec],
        nbf: jitsudo_core::grant::format_time(now - 60),
        exp: jitsudo_core::grant::format_time(now + 3600),
        iat: jitsudo_core::grant::format_time(now - 60),
        uses: None,
        kind: jitsudo_core::grant::Kind::Exec,
        reason: "test".into(),
        approved_by: vec!["test".into()],
        request: None,
        session_bound: false,
        exec: false,
        record: false,
        ticket: None,
        extends: None,
    };
    let token = sign_unchecked(&s, &claims);
    s.logs();
    s.import("alice", &token)
        .assert_denied("sha256 pin must be 64 hexadecimal digits");
    let logs = s.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("import refused") && l.contains("64 hexadecimal digits")),
        "{logs:#?}"
    );

    // Planted in the cache by root, it is refused at use the same way.
    crate::tokens::plant(&s, ALICE, &token);
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("64 hexadecimal digits");
    let logs = s.logs();
    assert!(
        logs.iter().any(|l| l.contains("command not allowed")),
        "{logs:#?}"
    );
}
