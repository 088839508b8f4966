//! Accounts that only NSS knows, as on hosts with LDAP or SSSD. libnss-extrausers, a real
//! NSS module that reads /var/lib/extrausers/{passwd,group}, stands in for the directory.
//! The glibc build asks NSS directly; the shipped static musl build asks its helper
//! /usr/libexec/jitsudo/jitsudo-nss, so this test covers that bridge when test.sh runs
//! the suite against the musl build.

use crate::sandbox::Sandbox;

fn with_directory_users() -> Sandbox {
    let s = Sandbox::new();
    s.write_file(
        "/etc/nsswitch.conf",
        "passwd: files extrausers\ngroup: files extrausers\nshadow: files\n",
        0o644,
    );
    let made = s
        .ns_command("mkdir")
        .args(["-p", "-m", "0755", "/var/lib/extrausers"])
        .status()
        .unwrap();
    assert!(made.success());
    s.write_file(
        "/var/lib/extrausers/passwd",
        "dave:x:43100:43100:Dave:/home/dave:/bin/sh\n",
        0o644,
    );
    s.write_file(
        "/var/lib/extrausers/group",
        "dave:x:43100:\nops:x:43200:dave\n",
        0o644,
    );
    s
}

#[test]
fn users_and_groups_known_only_to_nss_are_found() {
    let s = with_directory_users();
    // dave is the caller (looked up by uid) and the target (by name, with his groups).
    let token = s.mint("dave", &["--run-as", "dave", "--command", "/usr/bin/id -G"]);
    let id = s.import_ok("dave", &token);
    s.logs();
    let out = s.run("dave", &["-u", "dave", "/usr/bin/id", "-G"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "43100 43200", "{out:?}");
    let logs = s.logs();
    assert_eq!(logs.len(), 1, "{logs:#?}");
    assert!(
        logs[0].ends_with(&format!(
            "; USER=dave ; GRANT={id} ; COMMAND=/usr/bin/id -G"
        )),
        "{}",
        logs[0]
    );
    assert!(logs[0].contains(": dave : "), "{}", logs[0]);
}

#[test]
fn a_user_nobody_knows_is_refused_by_name() {
    let s = with_directory_users();
    let token = s.mint("dave", &["--run-as", "erin", "--command", "/usr/bin/id -u"]);
    s.import_ok("dave", &token);
    let out = s.run("dave", &["-u", "erin", "/usr/bin/id", "-u"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("erin"), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
}

/// The static build depends on its NSS helper for such accounts: without it, a user only
/// the directory knows is refused with the helper named, not taken for "no such user".
#[test]
fn missing_nss_helper_is_named_in_the_refusal() {
    let s = with_directory_users();
    let binary = std::fs::read(&s.bin).unwrap();
    let dynamic = binary
        .windows(b"ld-linux-x86-64.so".len())
        .any(|w| w == b"ld-linux-x86-64.so");
    if dynamic {
        // A glibc build asks NSS itself and never runs the helper.
        return;
    }
    std::fs::remove_file(s.path("/usr/libexec/jitsudo/jitsudo-nss")).unwrap();
    let out = s.import("dave", &s.mint("dave", &["--command", "/usr/bin/id -u"]));
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("/usr/libexec/jitsudo/jitsudo-nss"),
        "{out:?}"
    );
    assert!(
        !out.stderr.contains("not in the password database"),
        "{out:?}"
    );
}
