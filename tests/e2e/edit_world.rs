//! The world of the `jitsudo -e` tests, shared by tests/e2e/edit.rs and
//! tests/attacks/edit.rs: a tmpfs on /var/tmp (where the caller's copies go, so the
//! host's /var/tmp never sees them), a root-owned /etc/app holding app.conf, and a
//! scripted editor.
//!
//! The editor is `/etc/edtest/editor ACTION`, run through EDITOR. It records its own
//! ids and whether it can read /etc/shadow in /var/tmp/editor-ids (so a test can show
//! it ran as the caller), skips to the `--` jitsudo adds, and then for each file:
//! `append` adds a line, `none` changes nothing, `fail` changes the file and exits 3,
//! `symlink` and `fifo` replace the copy by a symlink to /etc/shadow or a FIFO,
//! `wait-append` says it started (/var/tmp/editor-started) and appends only once
//! /var/tmp/editor-go exists.

// Not every suite uses every helper.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::sandbox::{Outcome, Sandbox};

pub const FILE: &str = "/etc/app/app.conf";
pub const CONTENT: &str = "listen 80;\n";
pub const EDITOR: &str = "/etc/edtest/editor";

const SCRIPT: &str = r#"#!/bin/sh
action=$1
{
    grep -E '^(Uid|Gid|Groups):' /proc/self/status
    if cat /etc/shadow >/dev/null 2>&1; then echo shadow=readable; else echo shadow=denied; fi
} > /var/tmp/editor-ids
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do shift; done
[ "$1" = "--" ] || { echo "editor: no -- before the files" >&2; exit 9; }
shift
case "$action" in
    wait-append)
        : > /var/tmp/editor-started
        n=0
        while [ ! -e /var/tmp/editor-go ]; do
            n=$((n + 1)); [ "$n" -lt 600 ] || exit 8
            sleep 0.1
        done ;;
esac
for f in "$@"; do
    case "$action" in
        append|wait-append) echo "edited by $(id -un)" >> "$f" ;;
        fail) echo "half done" >> "$f"; exit 3 ;;
        symlink) rm -f "$f"; ln -s /etc/shadow "$f" ;;
        fifo) rm -f "$f"; mkfifo "$f" ;;
        none) ;;
    esac
done
"#;

/// A sandbox with the world above; app.conf is root:root 0644 unless a test changes it.
pub fn world() -> Sandbox {
    let s = Sandbox::new();
    s.sh("mount -t tmpfs -o mode=1777 tmpfs /var/tmp
          mkdir -m 0755 /etc/app /etc/edtest");
    s.write_file(EDITOR, SCRIPT, 0o755);
    s.write_file(FILE, CONTENT, 0o644);
    s
}

/// Mint and import an edit grant for `files` (plus `extra` mint flags) for alice.
pub fn grant(s: &Sandbox, files: &[&str], extra: &[&str]) -> String {
    let mut args = vec!["--kind", "edit"];
    for f in files {
        args.extend(["--command", f]);
    }
    args.extend(extra);
    s.import_ok("alice", &s.mint("alice", &args))
}

/// `jitsudo -e FILES` as `user` with EDITOR set to `editor`.
pub fn edit(s: &Sandbox, user: &str, editor: &str, files: &[&str]) -> Outcome {
    Outcome::of(edit_command(s, user, editor, files).output().unwrap())
}

pub fn edit_command(s: &Sandbox, user: &str, editor: &str, files: &[&str]) -> Command {
    let mut c = s.jitsudo(user);
    c.env("EDITOR", editor).arg("-e").args(files);
    c
}

/// A file inside the sandbox, as text.
pub fn read(s: &Sandbox, inner: &str) -> String {
    fs::read_to_string(s.path(inner)).unwrap()
}

pub fn meta(s: &Sandbox, inner: &str) -> fs::Metadata {
    fs::symlink_metadata(s.path(inner)).unwrap()
}

pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What the editor recorded about itself, or None if it never ran.
pub fn editor_ids(s: &Sandbox) -> Option<String> {
    fs::read_to_string(s.path("/var/tmp/editor-ids")).ok()
}

/// Entries of /var/tmp other than the editor's own marks: the caller's copies.
pub fn leftovers(s: &Sandbox) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(s.path("/var/tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("editor-"))
        .collect();
    names.sort();
    names
}

/// Inode and change time: equal before and after means the file was not rewritten.
pub fn identity(s: &Sandbox, inner: &str) -> (u64, i64, i64) {
    let m = meta(s, inner);
    (m.ino(), m.ctime(), m.ctime_nsec())
}
