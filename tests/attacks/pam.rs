//! Attacks on pam_jitsudo, the real module loaded by libpam in the real `pamtester`,
//! inside the sandbox (its own /etc/pam.d, /etc/jitsudo and /var/lib/jitsudo).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Stdio;

use crate::sandbox::{workspace_artifact, Outcome, Sandbox, HOST};

/// pam_jitsudo.so from `cargo build --workspace` (stale against the module's or the
/// library's sources fails the test), copied root-owned into the sandbox.
fn install_module(s: &Sandbox) -> PathBuf {
    let built = workspace_artifact("libpam_jitsudo.so", "pam/src");
    workspace_artifact("libpam_jitsudo.so", "src");
    let installed = s.dir.join("bin/pam_jitsudo.so");
    fs::copy(built, &installed).unwrap();
    fs::set_permissions(&installed, fs::Permissions::from_mode(0o644)).unwrap();
    installed
}

/// `pamtester SERVICE USER OPS…` in the namespace, `stdin` its conversation's input
/// (`None`: /dev/null).
fn pamtester(s: &Sandbox, service: &str, user: &str, ops: &[&str], stdin: Option<&str>) -> Outcome {
    let mut cmd = s.ns_command("pamtester");
    cmd.args([service, user]).args(ops);
    let Some(input) = stdin else {
        return Outcome::of(cmd.stdin(Stdio::null()).output().unwrap());
    };
    let path = s.dir.join("pamtester-input");
    fs::write(&path, input).unwrap();
    Outcome::of(cmd.stdin(fs::File::open(&path).unwrap()).output().unwrap())
}

/// With an sshd that accepts keyboard-interactive alone, the PAM auth stack is the only
/// proof of who is connecting. A cached login grant is authorization (the account phase),
/// not that proof: `authenticate` with nothing typed must not succeed because one is
/// cached. Pasting a valid token is the proof, and does.
#[test]
fn cached_login_grant_does_not_authenticate() {
    let s = Sandbox::new();
    let module = install_module(&s);
    let module = module.display();
    s.write_file(
        "/etc/pam.d/jitsudo-kbd",
        &format!("auth required {module}\naccount required {module}\n"),
        0o644,
    );
    let token = s.mint("alice", &["--kind", "login", "--for", "1h"]);
    let id = s.import_ok("alice", &token);
    s.logs();

    let out = pamtester(&s, "jitsudo-kbd", "alice", &["authenticate"], None);
    assert_ne!(out.code, 0, "authenticated with no proof: {out:?}");
    assert!(
        !out.stdout.contains("successfully authenticated")
            && !out.stderr.contains("successfully authenticated"),
        "{out:?}"
    );
    // Asked like anyone; nothing pasted leaves the module no say, and libpam fails an
    // auth stack in which no module said yes.
    assert!(
        out.stderr.contains(&format!(
            "jitsudo login grant for alice on {HOST} (paste the token)"
        )),
        "{out:?}"
    );
    assert!(out.stderr.contains("Permission denied"), "{out:?}");
    let logs = s.logs();
    assert!(
        !logs.iter().any(|l| l.contains("login allowed")),
        "{logs:#?}"
    );

    // An empty line is no proof either.
    let out = pamtester(&s, "jitsudo-kbd", "alice", &["authenticate"], Some("\n"));
    assert_eq!(out.code, 1, "{out:?}");

    // The grant still authorizes: the account phase admits with it.
    let out = pamtester(&s, "jitsudo-kbd", "alice", &["acct_mgmt"], None);
    assert_eq!(out.code, 0, "{out:?}");

    // The token itself, pasted, authenticates.
    let out = pamtester(
        &s,
        "jitsudo-kbd",
        "alice",
        &["authenticate"],
        Some(&format!("{token}\n")),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("successfully authenticated"), "{out:?}");
    let logs = s.logs();
    assert!(
        logs.iter().any(|l| l.contains(&format!(
            "alice : login grant imported ; SERVICE=jitsudo-kbd ; RHOST=unknown ; TTY=unknown ; GRANT={id}"
        ))),
        "{logs:#?}"
    );
}

/// A token pasted while the revocation list cannot be read is refused before it is
/// cached: the module admits it as `jitsudo --import` does. (It used to take the broken
/// list for "nothing revoked" and cache the grant, refusing only the login.)
#[test]
fn pasted_token_refused_while_the_revocation_list_is_broken() {
    let s = Sandbox::new();
    let module = install_module(&s);
    let module = module.display();
    s.write_file(
        "/etc/pam.d/jitsudo-kbd",
        &format!("auth required {module}\naccount required {module}\n"),
        0o644,
    );
    let token = s.mint("alice", &["--kind", "login", "--for", "1h"]);
    let list = "/var/lib/jitsudo/revocations.json";
    s.sh("mkdir -m 0700 /var/lib/jitsudo");
    s.write_file(list, "{\"issued_at\":1,\"ids\":", 0o600);
    s.logs();

    let pasted = format!("{token}\n");
    let out = pamtester(&s, "jitsudo-kbd", "alice", &["authenticate"], Some(&pasted));
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "jitsudo: login refused for alice: {list}: corrupt revocation list"
        )),
        "{out:?}"
    );
    let logs = s.logs();
    assert!(
        logs.iter().any(|l| l.contains(&format!(
            "alice : login denied: {list}: corrupt revocation list"
        ))),
        "{logs:#?}"
    );
    assert!(
        !logs.iter().any(|l| l.contains("login grant imported")),
        "{logs:#?}"
    );
    assert!(!s.path("/var/lib/jitsudo/users/42001.json").exists());

    // With the list gone (a host that never synced), the same token is admitted.
    s.sh(&format!("rm {list}"));
    let out = pamtester(&s, "jitsudo-kbd", "alice", &["authenticate"], Some(&pasted));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(s.path("/var/lib/jitsudo/users/42001.json").exists());
}
