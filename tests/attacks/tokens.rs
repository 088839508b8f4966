//! Grants that must not be honoured: forged or altered signatures, untrusted keys,
//! malformed tokens, grants for another host or user, outside their validity window or
//! over the lifetime limit, revoked, checked against a stale revocation list or a clock
//! set back, and replayed one-time grants. Refused at --import and, where root could
//! plant them in the cache, at use.

use crate::sandbox::{Refusal, Sandbox, HOST};
use std::os::unix::fs::PermissionsExt;

#[test]
fn token_from_an_untrusted_key_claiming_a_trusted_key_id_is_refused() {
    let s = Sandbox::new();
    let rogue_dir = s.dir.join("rogue");
    let out = std::process::Command::new(&s.ctl)
        .args(["keygen", "--id", "k1", "--out"])
        .arg(&rogue_dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = s.mint_with_key(
        &rogue_dir.join("k1.key"),
        "alice",
        &["--command", "/usr/bin/id"],
    );
    s.import("alice", &token)
        .assert_denied("grant signature invalid for key \"k1\"");
    plant(&s, 42001, &token);
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("signature invalid");
}

#[test]
fn payload_bit_flips_are_refused() {
    let s = Sandbox::new();
    let token = s.mint("alice", &["--command", "/usr/bin/id"]);
    s.logs();
    for offset in [0, 7, 30, 61, 100, 150] {
        let flipped = flip_payload_char(&token, offset);
        let out = s.import("alice", &flipped);
        out.assert_denied("grant");
        assert!(
            out.stderr.contains("signature invalid") || out.stderr.contains("malformed"),
            "{out:?}"
        );
    }
    assert!(!s.path("/var/lib/jitsudo/users/42001.json").exists());
    let logs = s.logs();
    assert_eq!(
        logs.iter().filter(|l| l.contains("import refused")).count(),
        6,
        "{logs:#?}"
    );
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
fn malformed_tokens_are_named() {
    let s = Sandbox::new();
    s.import("alice", "v3.public.AAAA")
        .assert_denied("PASETO version 3 is not accepted");
    s.import("alice", "v4.local.AAAA")
        .assert_denied("v4.local (encrypted) tokens are not accepted");
    s.import("alice", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb290In0.")
        .assert_denied("looks like a JWT");
    s.import("alice", "v4.public.!!!")
        .assert_denied("bad token encoding");
    s.import("alice", "").assert_denied("not a PASETO");
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
fn expired_grant_refused() {
    let s = Sandbox::new();
    let token = s.mint(
        "alice",
        &["--command", "/usr/bin/id", "--start", "-2h", "--for", "1h"],
    );
    // "1h ago" or, on a loaded machine where a second passes between mint and import,
    // "1h 1s ago": the message is exact, so the test checks only its start.
    s.import("alice", &token).assert_denied("grant expired 1h");
    plant(&s, 42001, &token);
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("grant expired 1h");
}

#[test]
fn not_yet_valid_grant_is_cached_but_refused() {
    let s = Sandbox::new();
    s.import_ok(
        "alice",
        &s.mint(
            "alice",
            &["--command", "/usr/bin/id", "--start", "+1h", "--for", "1h"],
        ),
    );
    s.run("alice", &["/usr/bin/id"])
        .assert_denied("not yet valid (starts in");
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
fn one_time_grant_runs_once() {
    let s = Sandbox::new();
    let token = s.mint("alice", &["--command", "/usr/bin/id -u", "--uses", "1"]);
    s.import_ok("alice", &token);
    assert_eq!(s.run("alice", &["/usr/bin/id", "-u"]).stdout.trim(), "0");
    s.run("alice", &["/usr/bin/id", "-u"])
        .assert_denied("one-time grant has already been used");
    // Dropping and re-importing must not reset the counter.
    assert_eq!(s.run("alice", &["--drop"]).code, 0);
    s.import_ok("alice", &token);
    s.run("alice", &["/usr/bin/id", "-u"])
        .assert_denied("one-time grant has already been used");
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

/// A revocation list that cannot be read cannot say that a grant is not revoked. --import
/// used to take such a list for "nothing revoked"; it refuses, naming the file and why,
/// and caches nothing, as a run and --list do.
#[test]
fn import_refused_while_the_revocation_list_is_broken() {
    let s = Sandbox::new();
    let token = s.mint("alice", &["--command", "/usr/bin/id"]);
    let list = "/var/lib/jitsudo/revocations.json";
    s.sh("mkdir -m 0700 /var/lib/jitsudo");
    s.logs();

    s.write_file(list, "{\"issued_at\":1,\"ids\":[", 0o600);
    s.import("alice", &token)
        .assert_denied(&format!("{list}: corrupt revocation list"));
    let logs = s.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("import refused") && l.contains("corrupt revocation list")),
        "{logs:#?}"
    );

    s.write_file(list, "{\"issued_at\":1,\"ids\":[]}", 0o600);
    s.sh(&format!("chown alice {list}"));
    s.import("alice", &token).assert_denied(&format!(
        "refusing revocation list: {list} is owned by uid 42001, not root"
    ));
    s.sh(&format!("chown root {list}; chmod 0666 {list}"));
    s.import("alice", &token)
        .assert_denied(&format!("{list} is writable by group or others"));
    s.sh(&format!("rm {list}; ln -s /etc/hostname {list}"));
    s.import("alice", &token)
        .assert_denied(&format!("{list} is a symlink"));
    assert!(!s.path("/var/lib/jitsudo/users/42001.json").exists());

    // Planted by root while the list is broken, the grant is refused at use and not
    // listed.
    plant(&s, 42001, &token);
    s.run("alice", &["/usr/bin/id"])
        .assert_denied(&format!("{list} is a symlink"));
    s.run("alice", &["-l"])
        .assert_denied(&format!("{list} is a symlink"));

    // Repaired, the same token imports (it is the planted one) and runs.
    s.sh(&format!("rm {list}"));
    let out = s.import("alice", &token);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("grant already cached"), "{out:?}");
    assert_eq!(s.run("alice", &["/usr/bin/id"]).code, 0);
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
