//! Running commands under grants: what is allowed, and as whom. The environment, file
//! descriptors and signal dispositions the command gets, use counts and races are in
//! tests/attacks.

use crate::sandbox::{Refusal, Sandbox, HOST};

#[test]
fn allowed_command_runs_as_root() {
    let s = Sandbox::new();
    let token = s.mint("alice", &["--command", "/usr/bin/id -u"]);
    s.import_ok("alice", &token);
    let out = s.run("alice", &["/usr/bin/id", "-u"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "0");
    // A bare name resolves through secure_path.
    let out = s.run("alice", &["id", "-u"]);
    assert_eq!(out.stdout.trim(), "0", "{out:?}");
}

#[test]
fn exit_status_is_the_commands() {
    let s = Sandbox::new();
    let token = s.mint("alice", &["--command", r"/bin/sh -c exit\ 7"]);
    s.import_ok("alice", &token);
    let out = s.run("alice", &["/bin/sh", "-c", "exit 7"]);
    assert_eq!(out.code, 7, "{out:?}");
}

#[test]
fn run_as_another_user() {
    let s = Sandbox::new();
    let token = s.mint(
        "alice",
        &["--command", "/usr/bin/id -un", "--run-as", "bob"],
    );
    s.import_ok("alice", &token);
    let out = s.run("alice", &["-u", "bob", "/usr/bin/id", "-un"]);
    assert_eq!((out.code, out.stdout.trim()), (0, "bob"), "{out:?}");
    // Same grant, numeric form of bob's uid.
    let out = s.run("alice", &["-u", "#42002", "/usr/bin/id", "-un"]);
    assert_eq!(out.stdout.trim(), "bob", "{out:?}");
    // Not as root: the grant names bob only.
    s.run("alice", &["/usr/bin/id", "-un"])
        .assert_denied("only as bob");
}

#[test]
fn exact_argv_trailing_star_and_path_only() {
    let s = Sandbox::new();
    let token = s.mint(
        "alice",
        &[
            "--command",
            "/usr/bin/echo hello",
            "--command",
            "/usr/bin/printf *",
            "--command",
            "/usr/bin/whoami",
        ],
    );
    s.import_ok("alice", &token);
    assert_eq!(
        s.run("alice", &["/usr/bin/echo", "hello"]).stdout,
        "hello\n"
    );
    s.run("alice", &["/usr/bin/echo", "hello", "world"])
        .assert_denied("no grant allows '/usr/bin/echo hello world'");
    s.run("alice", &["/usr/bin/echo"])
        .assert_denied("no grant allows");
    assert_eq!(
        s.run("alice", &["/usr/bin/printf", "%s-%s", "a", "b"])
            .stdout,
        "a-b"
    );
    assert_eq!(s.run("alice", &["/usr/bin/whoami"]).stdout, "root\n");
    s.run("alice", &["/usr/bin/whoami", "--help"])
        .assert_denied("no grant allows");
}

#[test]
fn denial_names_the_request_to_make() {
    let s = Sandbox::new();
    let out = s.run("alice", &["/usr/bin/whoami"]);
    out.assert_denied(&format!(
        "no grant allows '/usr/bin/whoami' as root on {HOST}; ask with: jitsudo --request --reason \"…\" -- /usr/bin/whoami"
    ));
}
