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
