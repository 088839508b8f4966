//! `jitsudo -e` attacked: every trick that would make root write (or the editor open)
//! a file the grant does not name. Each is refused before the editor runs, nothing
//! changes, no use is spent, and the refusal is logged with its reason.

use std::os::unix::fs::MetadataExt;

use crate::edit_world::*;
use crate::sandbox::{Refusal, Sandbox};

const SHADOW: &str = "/etc/shadow";

/// The refusal left everything as it was: no editor ran, /etc/shadow and app.conf are
/// unchanged, no copy is left, and the log has the reason.
#[track_caller]
fn nothing_happened(s: &Sandbox, shadow: &str, log_reason: &str) {
    assert_eq!(editor_ids(s), None, "the editor ran");
    assert_eq!(read(s, SHADOW), shadow);
    assert_eq!(read(s, FILE), CONTENT);
    assert_eq!(leftovers(s), Vec::<String>::new());
    let logs = s.logs();
    assert!(
        logs.iter().any(
            |l| l.contains(&format!("alice : command not allowed: {log_reason}"))
                && l.contains("COMMAND=sudoedit ")
        ),
        "{logs:#?}"
    );
}

fn append() -> String {
    format!("{EDITOR} append")
}

#[test]
fn symlink_anywhere_in_the_path_is_refused() {
    let s = world();
    let shadow = read(&s, SHADOW);
    // A directory on the way is a symlink (to a directory holding a link to shadow).
    s.sh("ln -s /etc/app /etc/app-link
          ln -s /etc/shadow /etc/app/shadow.conf");
    grant(&s, &["/etc/app-link/app.conf", "/etc/app/shadow.conf"], &[]);
    s.logs();
    edit(&s, "alice", &append(), &["/etc/app-link/app.conf"])
        .assert_denied("/etc/app-link is a symbolic link");
    nothing_happened(&s, &shadow, "symlink in the path");
    // The file itself is a symlink.
    edit(&s, "alice", &append(), &["/etc/app/shadow.conf"])
        .assert_denied("/etc/app/shadow.conf is a symbolic link");
    std::fs::remove_file(s.path("/etc/app/shadow.conf")).unwrap();
    nothing_happened(&s, &shadow, "symlink in the path");
}

/// CVE-2015-5602: a directory the caller (or anyone but root) can write lets them swap
/// the file for a symlink between the check and the write.
#[test]
fn file_in_a_directory_others_can_write_is_refused() {
    let s = world();
    let shadow = read(&s, SHADOW);
    s.sh("mkdir -m 0755 /etc/owned /etc/shared /etc/open /etc/owned-above
          mkdir -m 0755 /etc/owned-above/inner
          chown alice /etc/owned /etc/owned-above
          chgrp alice /etc/shared && chmod 0775 /etc/shared
          chmod 1777 /etc/open
          for d in /etc/owned /etc/shared /etc/open /etc/owned-above/inner; do echo x > $d/x.conf; done");
    let files = [
        (
            "/etc/owned/x.conf",
            "/etc/owned is writable by its owner alice",
        ),
        (
            "/etc/shared/x.conf",
            "/etc/shared is writable by group 42001",
        ),
        ("/etc/open/x.conf", "/etc/open is writable by everyone"),
        // Not the parent but one further up: it could be renamed away all the same.
        (
            "/etc/owned-above/inner/x.conf",
            "/etc/owned-above is writable by its owner alice",
        ),
    ];
    grant(&s, &files.map(|(f, _)| f), &[]);
    s.logs();
    for (file, needle) in files {
        edit(&s, "alice", &append(), &[file]).assert_denied(needle);
        assert_eq!(read(&s, file), "x\n");
        nothing_happened(&s, &shadow, "directory writable by others than root");
    }
}

#[test]
fn hard_linked_file_is_refused() {
    let s = world();
    let shadow = read(&s, SHADOW);
    // A second name for /etc/shadow where the grant points: editing it would edit shadow.
    s.sh("ln /etc/shadow /etc/app/linked.conf");
    grant(&s, &["/etc/app/linked.conf"], &[]);
    s.logs();
    edit(&s, "alice", &append(), &["/etc/app/linked.conf"])
        .assert_denied("/etc/app/linked.conf has 2 hard links");
    nothing_happened(&s, &shadow, "file has several hard links");
    assert_eq!(meta(&s, SHADOW).nlink(), 2);
}

#[test]
fn non_regular_file_is_refused() {
    let s = world();
    let shadow = read(&s, SHADOW);
    s.sh("mkfifo -m 0644 /etc/app/fifo.conf");
    grant(&s, &["/etc/app/fifo.conf"], &[]);
    s.logs();
    edit(&s, "alice", &append(), &["/etc/app/fifo.conf"])
        .assert_denied("/etc/app/fifo.conf is not a regular file");
    nothing_happened(&s, &shadow, "not a regular file");
}

/// CVE-2023-22809: sudo took the words after a `--` in EDITOR as more files to edit
/// as root. Here the value is refused, with or without a grant for those files.
#[test]
fn editor_variable_smuggling_a_file_is_refused() {
    let s = world();
    let shadow = read(&s, SHADOW);
    grant(&s, &[FILE], &["--uses", "1"]);
    s.logs();
    for (var, value) in [
        ("EDITOR", format!("{EDITOR} append -- {SHADOW}")),
        ("VISUAL", format!("{EDITOR} append -- {SHADOW}")),
        ("SUDO_EDITOR", format!("{EDITOR}\t--\t{SHADOW}")),
    ] {
        let out = crate::sandbox::Outcome::of(
            s.jitsudo("alice")
                .env(var, &value)
                .args(["-e", FILE])
                .output()
                .unwrap(),
        );
        out.assert_denied(&format!("{var}="));
        out.assert_denied("contains '--'");
        nothing_happened(&s, &shadow, "editor variable names files ('--')");
    }
    // The one-time grant was not spent by the refusals.
    let ok = edit(&s, "alice", &append(), &[FILE]);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert_eq!(read(&s, SHADOW), shadow);
}

#[test]
fn file_not_named_by_an_edit_grant_is_refused() {
    let s = world();
    let shadow = read(&s, SHADOW);
    grant(&s, &[FILE], &[]);
    // An exec grant naming the path does not allow editing it.
    s.import_ok("alice", &s.mint("alice", &["--command", SHADOW]));
    s.logs();
    edit(&s, "alice", &append(), &[SHADOW])
        .assert_denied("no edit grant allows editing /etc/shadow on web-01");
    nothing_happened(&s, &shadow, "no edit grant");
    // Nor may one covered file carry an uncovered one along.
    edit(&s, "alice", &append(), &[FILE, SHADOW])
        .assert_denied("no edit grant allows editing /etc/shadow");
    nothing_happened(&s, &shadow, "no edit grant");
    // Another user's edit grant is not alice's.
    s.import_ok(
        "bob",
        &s.mint("bob", &["--kind", "edit", "--command", SHADOW]),
    );
    edit(&s, "alice", &append(), &[SHADOW])
        .assert_denied("no edit grant allows editing /etc/shadow");
    nothing_happened(&s, &shadow, "no edit grant");
    // A path that is not one plain file is refused before any grant is looked at.
    edit(&s, "alice", &append(), &["/etc/app/../shadow"]).assert_denied("not in normal form");
    assert_eq!(read(&s, SHADOW), shadow);
}

#[test]
fn expired_edit_grant_is_refused() {
    let s = world();
    let shadow = read(&s, SHADOW);
    let token = s.mint(
        "alice",
        &[
            "--kind",
            "edit",
            "--command",
            FILE,
            "--start",
            "-2h",
            "--for",
            "1h",
        ],
    );
    crate::tokens::plant(&s, 42001, &token);
    s.logs();
    edit(&s, "alice", &append(), &[FILE]).assert_denied("grant expired 1h");
    nothing_happened(&s, &shadow, "grant expired 1h");
}

#[test]
fn huge_file_is_refused() {
    let s = world();
    let shadow = read(&s, SHADOW);
    s.sh("truncate -s 17M /etc/app/huge.conf");
    grant(&s, &["/etc/app/huge.conf"], &[]);
    s.logs();
    edit(&s, "alice", &append(), &["/etc/app/huge.conf"])
        .assert_denied("is 17825792 bytes, more than the 16777216 bytes jitsudo -e copies");
    nothing_happened(&s, &shadow, "file too large");
}

/// The copy is the caller's: an editor that swaps it for a symlink to /etc/shadow or a
/// FIFO gets root to read neither (the copy is read back with the caller's rights, not
/// following links, and only as a regular file), and nothing is written back.
#[test]
fn copy_replaced_by_a_symlink_or_fifo_is_not_written_back() {
    let s = world();
    let shadow = read(&s, SHADOW);
    grant(&s, &[FILE], &[]);
    for (action, needle) in [
        ("symlink", "is a symbolic link, which is not followed"),
        ("fifo", "is not a regular file"),
    ] {
        s.logs();
        let out = edit(&s, "alice", &format!("{EDITOR} {action}"), &[FILE]);
        assert_eq!(out.code, 1, "{out:?}");
        assert!(
            out.stderr
                .contains("your edited copy /var/tmp/jitsudo-edit."),
            "{out:?}"
        );
        assert!(out.stderr.contains(needle), "{out:?}");
        assert!(
            out.stderr.contains(&format!("{FILE} was not changed")),
            "{out:?}"
        );
        assert_eq!(read(&s, FILE), CONTENT);
        assert_eq!(read(&s, SHADOW), shadow);
        assert_eq!(meta(&s, FILE).mode() & 0o777, 0o644);
        let logs = s.logs();
        assert!(
            logs.iter()
                .any(|l| l.contains("alice : error: edit not written back: ")
                    && l.contains(&format!("COMMAND=sudoedit {FILE}"))),
            "{logs:#?}"
        );
        s.sh("rm -rf /var/tmp/jitsudo-edit.*");
    }
}
