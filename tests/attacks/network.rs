//! The network helper of `--request` and `--sync`, /usr/libexec/jitsudo/jitsudo-net,
//! tampered with: writable by others or missing, and replaced by a program that answers
//! with grants the service never issued. The setuid binary checks the helper like its
//! configuration before running it, and verifies what it says like an `--import`.

use crate::sandbox::{Refusal, Sandbox};
use jitsudo_testbed::run_ok;
use std::fs;
use std::os::unix::fs::PermissionsExt;

const HELPER: &str = "/usr/libexec/jitsudo/jitsudo-net";

/// A sandbox with a service configured (nothing listens there) and a host key.
fn enrolled() -> Sandbox {
    let s = Sandbox::new();
    s.write_config("service = \"http://127.0.0.1:1\"");
    run_ok(s.ns_command(&s.bin).arg("--enroll"));
    s
}

fn request(s: &Sandbox) -> crate::sandbox::Outcome {
    s.run(
        "alice",
        &["--request", "--reason", "INC-7", "--", "/usr/bin/id"],
    )
}

/// Replace the helper with a script that prints `lines` (after reading its task).
fn hostile_helper(s: &Sandbox, lines: &[String]) {
    let mut script = String::from("#!/bin/sh\ncat >/dev/null\n");
    for line in lines {
        script.push_str(&format!("echo '{line}'\n"));
    }
    s.write_file(HELPER, &script, 0o755);
}

#[test]
fn writable_or_missing_network_helper_is_refused() {
    let s = enrolled();
    // The real helper runs and reports that the service cannot be reached.
    request(&s).assert_denied("cannot reach the approval service");

    fs::set_permissions(s.path(HELPER), fs::Permissions::from_mode(0o775)).unwrap();
    request(&s).assert_denied(&format!(
        "refusing the network helper {HELPER}: {HELPER} is writable by group or others"
    ));
    s.run("root", &["--sync"])
        .assert_denied("refusing the network helper");

    fs::remove_file(s.path(HELPER)).unwrap();
    request(&s).assert_denied("refusing the network helper");
}

#[test]
fn hostile_network_helper_cannot_plant_a_grant() {
    let s = enrolled();
    // A grant under the trusted key id, signed by another key.
    let rogue_dir = s.dir.join("rogue");
    run_ok(
        std::process::Command::new(&s.ctl)
            .args(["keygen", "--id", "k1", "--out"])
            .arg(&rogue_dir),
    );
    let rogue = s.mint_with_key(
        &rogue_dir.join("k1.key"),
        "alice",
        &["--command", "/usr/bin/id"],
    );
    let created = r#"{"t":"created","id":"r1"}"#.to_string();
    let grant = |token: &str| format!(r#"{{"t":"grant","id":"r1","token":"{token}"}}"#);
    hostile_helper(&s, &[created.clone(), grant(&rogue)]);
    request(&s).assert_denied("the service's grant was refused");

    // A genuine grant, but not one the service issued for this request.
    let genuine = s.mint("alice", &["--command", "/usr/bin/id"]);
    hostile_helper(&s, &[created.clone(), grant(&genuine)]);
    request(&s).assert_denied("belongs to another request");

    // A grant for another command, and lines that are not the protocol at all.
    let other = s.mint("alice", &["--command", "/bin/sh"]);
    hostile_helper(&s, &["garbage".into(), created, grant(&other)]);
    request(&s).assert_denied("does not cover the requested command");

    // Nothing was cached on the way.
    s.run("alice", &["/usr/bin/id"]).assert_denied("no grant");
}

/// What the service sends is admitted as an --import is, revocation included: a grant
/// already revoked on this host is not cached (--request used to cache it), nor is any
/// grant while the revocation list cannot be read.
#[test]
fn request_refuses_a_revoked_grant_and_a_broken_revocation_list() {
    let s = enrolled();
    let now = jitsudo_core::grant::now();
    let claims = jitsudo_core::grant::Claims {
        jti: jitsudo_core::grant::new_grant_id().unwrap(),
        iss: "jitsudod".into(),
        sub: "alice".into(),
        host: crate::sandbox::HOST.into(),
        run_as: "root".into(),
        commands: vec!["/usr/bin/id".into()],
        nbf: jitsudo_core::grant::format_time(now - 60),
        exp: jitsudo_core::grant::format_time(now + 1800),
        iat: jitsudo_core::grant::format_time(now - 60),
        uses: None,
        kind: jitsudo_core::grant::Kind::Exec,
        reason: "INC-7".into(),
        approved_by: vec!["carol".into()],
        request: Some("r1".into()),
        session_bound: false,
        exec: false,
        record: false,
        ticket: None,
        extends: None,
    };
    let token = crate::pins::sign_unchecked(&s, &claims);
    let id = &claims.jti;
    hostile_helper(
        &s,
        &[
            r#"{"t":"created","id":"r1"}"#.to_string(),
            format!(r#"{{"t":"grant","id":"r1","token":"{token}"}}"#),
        ],
    );
    let list = "/var/lib/jitsudo/revocations.json";
    s.sh("mkdir -p -m 0700 /var/lib/jitsudo");
    s.write_file(
        list,
        &format!("{{\"issued_at\":{now},\"ids\":[\"{id}\"]}}"),
        0o600,
    );
    s.logs();
    request(&s).assert_denied(&format!(
        "the service's grant was refused: grant {id} has been revoked"
    ));
    let logs = s.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("request: the service's grant was refused")
                && l.contains("has been revoked")),
        "{logs:#?}"
    );
    assert!(!s.path("/var/lib/jitsudo/users/42001.json").exists());

    s.write_file(list, "not json", 0o600);
    request(&s).assert_denied(&format!(
        "the service's grant cannot be checked: {list}: corrupt revocation list"
    ));
    assert!(!s.path("/var/lib/jitsudo/users/42001.json").exists());

    // With the list in order the same answer is cached, and runs.
    s.write_file(list, &format!("{{\"issued_at\":{now},\"ids\":[]}}"), 0o600);
    let out = request(&s);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.starts_with(&format!("grant {id} cached")),
        "{out:?}"
    );
    assert_eq!(s.run("alice", &["/usr/bin/id"]).code, 0);
}

/// `--sync` takes this host's own revocation list only. A genuine, fresh list signed by
/// the trusted key but made for another host (which holds that host's revoked grants,
/// not this one's), or the fleet's list with no host named where this host asked for
/// its own, is refused and nothing is written; this host's list is stored.
#[test]
fn sync_refuses_a_revocation_list_for_another_host() {
    use jitsudo_core::grant::keys::SecretKey;
    use jitsudo_core::wire::{self, RevocationClaims};
    let s = enrolled();
    let key = SecretKey::from_file_text(&s.key, &fs::read_to_string(&s.key).unwrap()).unwrap();
    let now = jitsudo_core::grant::now();
    let list = |host: Option<&str>| {
        wire::sign_revocations(
            &RevocationClaims {
                iss: "jitsudod".into(),
                issued_at: now,
                ids: vec!["g-revoked-7".into()],
                host: host.map(str::to_string),
            },
            &key,
        )
        .unwrap()
    };
    let answer = |token: &str| format!(r#"{{"t":"sync","grants":[],"revocations":"{token}"}}"#);
    let stored = "/var/lib/jitsudo/revocations.json";

    hostile_helper(&s, &[answer(&list(Some("web-02")))]);
    s.run("root", &["--sync"]).assert_denied(&format!(
        "the revocation list is for host \"web-02\", not this host (\"{}\"); refusing it",
        crate::sandbox::HOST
    ));
    assert!(!s.path(stored).exists());

    hostile_helper(&s, &[answer(&list(None))]);
    s.run("root", &["--sync"])
        .assert_denied("the revocation list names no host");
    assert!(!s.path(stored).exists());

    hostile_helper(&s, &[answer(&list(Some(crate::sandbox::HOST)))]);
    let out = s.run("root", &["--sync"]);
    assert!(
        out.stdout
            .contains("synced: 0 new grant(s) of 0 for this host; revocation list of 1 id(s)"),
        "{out:?}"
    );
    let text = fs::read_to_string(s.path(stored)).unwrap();
    assert!(text.contains("g-revoked-7"), "{text}");
}
