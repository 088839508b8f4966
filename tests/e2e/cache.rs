//! Importing, listing and dropping grants, and what is refused on the way in or when
//! planted in the cache behind the binary's back.

use crate::sandbox::{Refusal, Sandbox, HOST};
use std::os::unix::fs::PermissionsExt;

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
fn import_refuses_another_users_grant() {
    let s = Sandbox::new();
    let token = s.mint("bob", &["--command", "/usr/bin/id"]);
    s.import("alice", &token)
        .assert_denied("grant is for user \"bob\", not \"alice\"");
    assert!(!s.path("/var/lib/jitsudo/users/42001.json").exists());
}

#[test]
fn another_users_grant_planted_by_root_is_refused() {
    let s = Sandbox::new();
    s.import_ok("bob", &s.mint("bob", &["--command", "/usr/bin/id"]));
    // Root copies bob's cache over alice's: alice still cannot use bob's grant.
    std::fs::copy(
        s.path("/var/lib/jitsudo/users/42002.json"),
        s.path("/var/lib/jitsudo/users/42001.json"),
    )
    .unwrap();
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("grant is for user \"bob\", not \"alice\"");
}

#[test]
fn wrong_host_refused_at_import_and_when_planted() {
    let s = Sandbox::new();
    let token = s.mint("alice", &["--command", "/usr/bin/id", "--host", "db-02"]);
    s.import("alice", &token).assert_denied(&format!(
        "grant is for host \"db-02\", this host is \"{HOST}\""
    ));
    plant(&s, 42001, &token);
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("grant is for host \"db-02\"");
}

#[test]
fn expired_grant_refused() {
    let s = Sandbox::new();
    let token = s.mint(
        "alice",
        &["--command", "/usr/bin/id", "--start", "-2h", "--for", "1h"],
    );
    s.import("alice", &token)
        .assert_denied("grant expired 1h ago");
    plant(&s, 42001, &token);
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("grant expired 1h");
}

#[test]
fn tampered_payload_refused() {
    let s = Sandbox::new();
    let token = s.mint("alice", &["--command", "/usr/bin/id"]);
    let tampered = flip_payload_char(&token, 20);
    s.import("alice", &tampered)
        .assert_denied("signature invalid");
    plant(&s, 42001, &tampered);
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("signature invalid");
}

#[test]
fn unknown_key_id_refused() {
    let s = Sandbox::new();
    let out = std::process::Command::new(&s.ctl)
        .args(["keygen", "--id", "rogue", "--out"])
        .arg(s.dir.join("keys"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = s.mint_with_key(
        &s.dir.join("keys/rogue.key"),
        "alice",
        &["--command", "/usr/bin/id"],
    );
    s.import("alice", &token)
        .assert_denied("unknown key id \"rogue\"");
}

#[test]
fn lifetime_over_the_limit_refused() {
    let s = Sandbox::new();
    s.write_config("max_grant_lifetime = \"1h\"");
    let token = s.mint("alice", &["--command", "/usr/bin/id", "--for", "2h"]);
    s.import("alice", &token)
        .assert_denied("grant lifetime 2h exceeds this host's max_grant_lifetime of 1h");
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
fn malformed_config_names_file_and_line() {
    let s = Sandbox::new();
    s.write_config("colour = \"blue\"");
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("/etc/jitsudo/jitsudo.toml:2: unknown field `colour`");
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
fn clock_set_back_refused() {
    let s = Sandbox::new();
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/id"]));
    let future = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 7200;
    s.write_file("/var/lib/jitsudo/clock", &format!("{future}\n"), 0o600);
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("behind the latest time this host has seen");
}

#[test]
fn revoked_grant_refused() {
    let s = Sandbox::new();
    let id = s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/id"]));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    s.write_file(
        "/var/lib/jitsudo/revocations.json",
        &format!("{{\"issued_at\":{now},\"ids\":[\"{id}\"]}}"),
        0o600,
    );
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("grant has been revoked");
}

#[test]
fn stale_revocation_list_refused_when_required() {
    let s = Sandbox::new();
    s.write_config("revocation_max_age = \"15m\"");
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/id"]));
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("no revocation list on this host yet");
    let old = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    s.write_file(
        "/var/lib/jitsudo/revocations.json",
        &format!("{{\"issued_at\":{old},\"ids\":[]}}"),
        0o600,
    );
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("the revocation list is 1h old");
    let fresh = old + 3600;
    s.write_file(
        "/var/lib/jitsudo/revocations.json",
        &format!("{{\"issued_at\":{fresh},\"ids\":[]}}"),
        0o600,
    );
    assert_eq!(s.run("alice", &["/usr/bin/id"]).code, 0);
}

/// Write a cache file holding `token` for `uid`, as root could.
pub fn plant(s: &Sandbox, uid: u32, token: &str) {
    std::fs::create_dir_all(s.path("/var/lib/jitsudo/users")).unwrap();
    std::fs::set_permissions(
        s.path("/var/lib/jitsudo"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    std::fs::set_permissions(
        s.path("/var/lib/jitsudo/users"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let jti = payload_claim(token, "jti").unwrap_or_else(|| "planted".into());
    let body = format!(
        "{{\"version\":1,\"entries\":[{{\"jti\":\"{jti}\",\"exp\":99999999999,\"used\":0,\"token\":\"{token}\"}}]}}"
    );
    s.write_file(&format!("/var/lib/jitsudo/users/{uid}.json"), &body, 0o600);
}

/// Change one base64url character of the payload part.
pub fn flip_payload_char(token: &str, offset: usize) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let i = "v4.public.".len() + offset;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

/// Read a claim from a token's (unverified) payload.
pub fn payload_claim(token: &str, name: &str) -> Option<String> {
    let body = token.strip_prefix("v4.public.")?.split('.').next()?;
    let raw = base64url_decode(body)?;
    let payload = &raw[..raw.len().checked_sub(64)?];
    let json: serde_json::Value = serde_json::from_slice(payload).ok()?;
    json.get(name)?.as_str().map(str::to_string)
}

fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[test]
fn replacing_the_trusted_key_stops_cached_grants() {
    let s = Sandbox::new();
    s.import_ok("alice", &s.mint("alice", &["--command", "/usr/bin/id"]));
    assert_eq!(s.run("alice", &["/usr/bin/id"]).code, 0);
    // Same key id, another public key: the cached grant no longer verifies.
    let other = s.dir.join("other");
    let out = std::process::Command::new(&s.ctl)
        .args(["keygen", "--id", "k1", "--out"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(out.status.success());
    let block = String::from_utf8(out.stdout).unwrap();
    let text = format!(
        "host = \"{HOST}\"\n[log]\nsyslog_socket = \"{}\"\n{block}",
        s.log_path.display()
    );
    s.write_file("/etc/jitsudo/jitsudo.toml", &text, 0o644);
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("signature invalid for key \"k1\"");
}
