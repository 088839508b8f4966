//! Importing, listing and dropping grants, and a malformed configuration. What is
//! refused on the way in or when planted in the cache is in tests/attacks.

use crate::sandbox::{Refusal, Sandbox};

#[test]
fn import_list_drop() {
    let s = Sandbox::new();
    let id = s.import_ok(
        "alice",
        &s.mint(
            "alice",
            &[
                "--command",
                "/usr/bin/id",
                "--command",
                "/usr/bin/journalctl *",
                "--uses",
                "2",
            ],
        ),
    );
    let list = s.run("alice", &["-l"]);
    assert_eq!(list.code, 0);
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert!(lines[0].starts_with("GRANT"), "{list:?}");
    assert!(
        lines[1].starts_with(&id[..12])
            && lines[1].contains("root")
            && lines[1].contains(" 2 ")
            && lines[1].ends_with("/usr/bin/id"),
        "{list:?}"
    );
    assert!(lines[2].trim_start() == "/usr/bin/journalctl *", "{list:?}");
    // Bob sees none of alice's grants.
    assert!(s
        .run("bob", &["-l"])
        .stdout
        .contains("bob has no usable grants"));

    // The cache file is root's, 0600, in a 0700 directory.
    let meta = std::fs::metadata(s.path("/var/lib/jitsudo/users/42001.json")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.gid(), meta.mode() & 0o777), (0, 0, 0o600));
    let dir = std::fs::metadata(s.path("/var/lib/jitsudo")).unwrap();
    assert_eq!((dir.uid(), dir.mode() & 0o777), (0, 0o700));

    let bad = s.run("alice", &["--drop", "zzzz"]);
    bad.assert_denied("no cached grant has an id starting with 'zzzz'");
    let out = s.run("alice", &["--drop", &id[..8]]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "dropped 1 grant(s)\n"));
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("no grant allows");
}

#[test]
fn malformed_config_names_file_and_line() {
    let s = Sandbox::new();
    s.write_config("colour = \"blue\"");
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("/etc/jitsudo/jitsudo.toml:2: unknown field `colour`");
}
