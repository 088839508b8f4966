//! Files jitsudo trusts, tampered with: the configuration and the grant cache replaced
//! by a symlink, hard link or FIFO, or made writable; the re-authentication helper
//! missing or writable; a sha256-pinned command changed; and files the caller points
//! --import at that are huge or only root may read.

use crate::sandbox::pam::{auth_count, permit, sandbox};
use crate::sandbox::{Refusal, Sandbox};
use std::fs;
use std::os::unix::fs::PermissionsExt;

#[test]
fn config_replaced_by_symlink_hard_link_or_fifo_is_refused() {
    let s = Sandbox::new();
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/id"]));
    let config = s.path("/etc/jitsudo/jitsudo.toml");
    let real = s.path("/etc/jitsudo/real.toml");
    std::fs::rename(&config, &real).unwrap();

    std::os::unix::fs::symlink("/etc/jitsudo/real.toml", &config).unwrap();
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("jitsudo.toml is a symlink");
    std::fs::remove_file(&config).unwrap();

    std::fs::hard_link(&real, &config).unwrap();
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("has 2 hard links");
    std::fs::remove_file(&config).unwrap();

    let status = std::process::Command::new("mkfifo")
        .arg(&config)
        .status()
        .unwrap();
    assert!(status.success());
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("jitsudo.toml is not a regular file");
    std::fs::remove_file(&config).unwrap();

    std::fs::rename(&real, &config).unwrap();
    assert_eq!(s.run("alice", &["/usr/bin/id", "-u"]).code, 1);
    assert_eq!(s.run("alice", &["/usr/bin/id"]).code, 0);
}

#[test]
fn group_writable_config_refused() {
    let s = Sandbox::new();
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/id"]));
    std::fs::set_permissions(
        s.path("/etc/jitsudo/jitsudo.toml"),
        std::fs::Permissions::from_mode(0o664),
    )
    .unwrap();
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("/etc/jitsudo/jitsudo.toml is writable by group or others (mode 664)");
    // A writable parent directory is just as bad.
    std::fs::set_permissions(
        s.path("/etc/jitsudo/jitsudo.toml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::set_permissions(
        s.path("/etc/jitsudo"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("/etc/jitsudo is writable by group or others");
}

#[test]
fn config_owned_by_a_user_refused() {
    let s = Sandbox::new();
    std::os::unix::fs::chown(s.path("/etc/jitsudo/jitsudo.toml"), Some(42001), None).unwrap();
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("owned by uid 42001, not root");
}

#[test]
fn symlinked_cache_refused() {
    let s = Sandbox::new();
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/id"]));
    let cache = s.path("/var/lib/jitsudo/users/42001.json");
    std::fs::rename(&cache, s.path("/var/lib/jitsudo/users/elsewhere.json")).unwrap();
    std::os::unix::fs::symlink("/var/lib/jitsudo/users/elsewhere.json", &cache).unwrap();
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("42001.json is a symlink");
}

#[test]
fn hard_linked_cache_refused() {
    let s = Sandbox::new();
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/id"]));
    std::fs::hard_link(
        s.path("/var/lib/jitsudo/users/42001.json"),
        s.path("/var/lib/jitsudo/other"),
    )
    .unwrap();
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("has 2 hard links");
}

#[test]
fn cache_fifo_and_writable_state_directory_are_refused() {
    let s = Sandbox::new();
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/id"]));
    let cache = s.path("/var/lib/jitsudo/users/42001.json");
    let saved = std::fs::read(&cache).unwrap();
    std::fs::remove_file(&cache).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(&cache)
        .status()
        .unwrap()
        .success());
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("42001.json is not a regular file");
    std::fs::remove_file(&cache).unwrap();
    std::fs::write(&cache, &saved).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o600)).unwrap();

    std::fs::set_permissions(
        s.path("/var/lib/jitsudo/users"),
        std::fs::Permissions::from_mode(0o730),
    )
    .unwrap();
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("/var/lib/jitsudo/users is writable by group or others");
    std::fs::set_permissions(
        s.path("/var/lib/jitsudo/users"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();

    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o620)).unwrap();
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("42001.json is writable by group or others");
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(s.run("alice", &["/usr/bin/id"]).code, 0);
}

#[test]
fn missing_helper_is_named() {
    let s = sandbox("", &permit());
    fs::remove_file(s.path("/usr/libexec/jitsudo/jitsudo-auth")).unwrap();
    s.run("alice", &["/usr/bin/id", "-u"])
        .assert_denied("/usr/libexec/jitsudo/jitsudo-auth is missing");
}

#[test]
fn writable_helper_is_refused() {
    let s = sandbox("", &permit());
    let helper = s.path("/usr/libexec/jitsudo/jitsudo-auth");
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o777)).unwrap();
    s.run("alice", &["/usr/bin/id", "-u"])
        .assert_denied("writable by group or others");
    assert_eq!(auth_count(&s), 0);
}

#[test]
fn sha256_pin_runs_the_hashed_file_and_refuses_a_changed_one() {
    use sha2::{Digest, Sha256};
    let s = Sandbox::new();
    let script = s.dir.join("bin/deploy");
    std::fs::write(&script, "#!/bin/sh\necho deployed \"$@\"\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let hash: String = Sha256::digest(std::fs::read(&script).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let spec = format!("sha256:{hash} {} *", script.display());
    s.import_ok("alice", &s.mint("alice", &["--command", &spec]));
    let path = script.to_str().unwrap();
    let out = s.run("alice", &[path, "v2"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "deployed v2\n"),
        "{out:?}"
    );

    // A pinned binary (not a script) runs through fexecve too.
    let id_copy = s.dir.join("bin/id-copy");
    std::fs::copy("/usr/bin/id", &id_copy).unwrap();
    let hash: String = Sha256::digest(std::fs::read(&id_copy).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    s.import_ok(
        "alice",
        &s.mint(
            "alice",
            &[
                "--command",
                &format!("sha256:{hash} {} -u", id_copy.display()),
            ],
        ),
    );
    let out = s.run("alice", &[id_copy.to_str().unwrap(), "-u"]);
    assert_eq!(out.stdout.trim(), "0", "{out:?}");

    std::fs::write(&script, "#!/bin/sh\necho tampered\n").unwrap();
    s.run("alice", &[path, "v2"])
        .assert_denied("does not match the grant's sha256 pin");
}

#[test]
fn huge_token_file_is_refused_without_reading_it_all() {
    let s = Sandbox::new();
    let big = s.dir.join("big-token");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(100 * 1024 * 1024).unwrap();
    std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o644)).unwrap();
    s.run("alice", &["--import", big.to_str().unwrap()])
        .assert_denied("larger than 65536 bytes");
}

#[test]
fn import_reads_files_with_the_callers_rights() {
    let s = Sandbox::new();
    // /etc/shadow is root-only: alice must not get jitsudo to read it for her.
    let out = s.run("alice", &["--import", "/etc/shadow"]);
    out.assert_denied("cannot read /etc/shadow: Permission denied");
}
