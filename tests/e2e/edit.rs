//! `jitsudo -e`: the editor runs as the caller on a copy, and root writes back only
//! what changed, atomically, keeping owner and mode, unless someone changed the file
//! meanwhile. The refusals (symlinks, writable directories, hard links, `--` in
//! EDITOR, files not granted) are in tests/attacks/edit.rs.

use std::os::unix::fs::MetadataExt;
use std::process::Stdio;

use crate::edit_world::*;
use crate::sandbox::Outcome;

#[test]
fn happy_path_writes_the_edit_back_and_logs_both_hashes() {
    let s = world();
    let id = grant(&s, &[FILE], &[]);
    s.logs();
    let out = edit(&s, "alice", &format!("{EDITOR} append"), &[FILE]);
    assert_eq!(out.code, 0, "{out:?}");
    let new = format!("{CONTENT}edited by alice\n");
    assert_eq!(read(&s, FILE), new);

    let logs = s.logs();
    let allowed = "alice : TTY=unknown ; PWD=";
    assert!(
        logs.iter().any(|l| l.contains(allowed)
            && l.contains(&format!("USER=root ; GRANT={id} ; COMMAND=sudoedit {FILE}"))),
        "{logs:#?}"
    );
    let edited = format!(
        "alice : file edited: sha256 {} -> {} ; ",
        sha256_hex(CONTENT),
        sha256_hex(&new)
    );
    let line = logs
        .iter()
        .find(|l| l.contains(&edited))
        .unwrap_or_else(|| panic!("{logs:#?}"));
    assert!(
        line.ends_with(&format!("GRANT={id} ; COMMAND=sudoedit {FILE}")),
        "{line}"
    );
    // The copies are gone, and no temporary file is left beside the original.
    assert_eq!(leftovers(&s), Vec::<String>::new());
    let beside: Vec<_> = std::fs::read_dir(s.path("/etc/app")).unwrap().collect();
    assert_eq!(beside.len(), 1);
}

#[test]
fn unchanged_file_is_not_rewritten() {
    let s = world();
    let id = grant(&s, &[FILE], &[]);
    let before = identity(&s, FILE);
    s.logs();
    let out = edit(&s, "alice", &format!("{EDITOR} none"), &[FILE]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stderr, format!("jitsudo: {FILE} unchanged\n"));
    assert_eq!(
        identity(&s, FILE),
        before,
        "the file was replaced or touched"
    );
    assert_eq!(read(&s, FILE), CONTENT);
    let logs = s.logs();
    let unchanged = format!(
        "alice : file unchanged, not rewritten: sha256 {} ; ",
        sha256_hex(CONTENT)
    );
    assert!(
        logs.iter()
            .any(|l| l.contains(&unchanged) && l.contains(&format!("GRANT={id}"))),
        "{logs:#?}"
    );
    assert!(!logs.iter().any(|l| l.contains("file edited")), "{logs:#?}");
    assert_eq!(leftovers(&s), Vec::<String>::new());
}

#[test]
fn owner_and_mode_are_kept() {
    let s = world();
    // bob:carol, mode 2640 (setgid kept too): nothing like what root would create.
    s.sh(&format!("chown bob:carol {FILE} && chmod 2640 {FILE}"));
    grant(&s, &[FILE], &[]);
    let before = meta(&s, FILE);
    let out = edit(&s, "alice", &format!("{EDITOR} append"), &[FILE]);
    assert_eq!(out.code, 0, "{out:?}");
    let after = meta(&s, FILE);
    assert_ne!(after.ino(), before.ino(), "written back by rename");
    assert_eq!((after.uid(), after.gid()), (42002, 42003));
    assert_eq!(after.mode() & 0o7777, 0o2640);
    assert_eq!(after.nlink(), 1);
    assert_eq!(read(&s, FILE), format!("{CONTENT}edited by alice\n"));
}

#[test]
fn editor_runs_as_the_caller_not_as_root() {
    let s = world();
    grant(&s, &[FILE], &[]);
    let out = edit(&s, "alice", &format!("{EDITOR} append"), &[FILE]);
    assert_eq!(out.code, 0, "{out:?}");
    let ids = editor_ids(&s).expect("the editor ran");
    // Real, effective, saved and filesystem ids all alice's; her groups only.
    assert!(ids.contains("Uid:\t42001\t42001\t42001\t42001\n"), "{ids}");
    assert!(ids.contains("Gid:\t42001\t42001\t42001\t42001\n"), "{ids}");
    assert!(ids.contains("Groups:\t42001"), "{ids}");
    assert!(ids.contains("shadow=denied"), "{ids}");
    // The line it appended says who wrote it.
    assert!(read(&s, FILE).ends_with("edited by alice\n"));
}

#[test]
fn two_files_one_use_of_a_one_time_grant() {
    let s = world();
    s.write_file("/etc/app/other.conf", "b\n", 0o644);
    let id = grant(&s, &[FILE, "/etc/app/other.conf"], &["--uses", "1"]);
    let out = edit(
        &s,
        "alice",
        &format!("{EDITOR} append"),
        &[FILE, "/etc/app/other.conf"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(read(&s, "/etc/app/other.conf"), "b\nedited by alice\n");
    assert!(read(&s, FILE).ends_with("edited by alice\n"));
    // One invocation spent the one use; the next is refused.
    let again = edit(&s, "alice", &format!("{EDITOR} append"), &[FILE]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(
        again.stderr.contains(&format!(
            "one-time grant has already been used (grant {id})"
        )),
        "{again:?}"
    );
}

#[test]
fn relative_name_from_the_working_directory_and_listed_grant() {
    let s = world();
    grant(&s, &[FILE], &[]);
    let list = s.run("alice", &["-l"]);
    assert!(list.stdout.contains(&format!("(edit) {FILE}")), "{list:?}");
    let out = Outcome::of(
        s.as_user("alice", "/bin/sh")
            .args([
                "-c",
                &format!("cd /etc/app && exec {} -e app.conf", s.bin.display()),
            ])
            .env("EDITOR", format!("{EDITOR} append"))
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(read(&s, FILE).ends_with("edited by alice\n"));
}

#[test]
fn a_failing_editor_writes_nothing_back_and_keeps_the_copy() {
    let s = world();
    grant(&s, &[FILE], &[]);
    let out = edit(&s, "alice", &format!("{EDITOR} fail"), &[FILE]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("exited with status 3"), "{out:?}");
    assert!(
        out.stderr
            .contains("nothing was written back, your copies are in /var/tmp/jitsudo-edit."),
        "{out:?}"
    );
    assert_eq!(read(&s, FILE), CONTENT);
    let kept = leftovers(&s);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        read(&s, &format!("/var/tmp/{}/app.conf", kept[0])),
        format!("{CONTENT}half done\n")
    );
}

/// Two `jitsudo -e` of the same file: the first to finish writes back; the other finds
/// the file changed since it copied it, writes nothing, keeps its copy and says where.
#[test]
fn two_concurrent_edits_lose_nothing_silently() {
    let s = world();
    grant(&s, &[FILE], &[]);
    s.write_file(
        "/etc/edtest/second",
        &format!("#!/bin/sh\nexec {EDITOR} append \"$@\"\n"),
        0o755,
    );

    let first = edit_command(&s, "alice", &format!("{EDITOR} wait-append"), &[FILE])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = s.path("/var/tmp/editor-started");
    for _ in 0..600 {
        if started.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(started.exists(), "the first editor never started");

    // The second edit runs start to finish while the first editor is still open.
    let second = edit(&s, "alice", "/etc/edtest/second", &[FILE]);
    assert_eq!(second.code, 0, "{second:?}");
    let after_second = format!("{CONTENT}edited by alice\n");
    assert_eq!(read(&s, FILE), after_second);

    std::fs::write(s.path("/var/tmp/editor-go"), "").unwrap();
    let first = Outcome::of(first.wait_with_output().unwrap());
    assert_eq!(first.code, 1, "{first:?}");
    assert!(
        first.stderr.contains(&format!(
            "{FILE} was changed by someone else while you edited it"
        )),
        "{first:?}"
    );
    let kept_at = first
        .stderr
        .split("your edited copy is kept at ")
        .nth(1)
        .unwrap_or_else(|| panic!("{first:?}"))
        .trim()
        .to_string();
    // The second edit stands; the first is in the kept copy, nowhere lost.
    assert_eq!(read(&s, FILE), after_second);
    assert_eq!(read(&s, &kept_at), format!("{CONTENT}edited by alice\n"));
    let logs = s.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("edit conflict, not written back")),
        "{logs:#?}"
    );
}

/// The grant is checked again before writing back: one dropped while the editor was
/// open writes nothing, and the edited copy is kept.
#[test]
fn grant_gone_during_the_edit_writes_nothing_back() {
    let s = world();
    grant(&s, &[FILE], &[]);
    let child = edit_command(&s, "alice", &format!("{EDITOR} wait-append"), &[FILE])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = s.path("/var/tmp/editor-started");
    for _ in 0..600 {
        if started.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(s.run("alice", &["--drop"]).code, 0);
    std::fs::write(s.path("/var/tmp/editor-go"), "").unwrap();
    let out = Outcome::of(child.wait_with_output().unwrap());
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("the grant is no longer cached"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("your edited copy is kept at /var/tmp/jitsudo-edit."),
        "{out:?}"
    );
    assert_eq!(read(&s, FILE), CONTENT);
}
