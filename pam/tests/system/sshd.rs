//! A real sshd, started by the test on 127.0.0.1 inside the sandbox's mount namespace,
//! with its own config, host key and PAM service name (sshd names its PAM service after
//! its own program name, so it runs through a symlink called `sshd-jitsudo-test`), and
//! public-key authentication with keys the test generates.

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::sandbox::{messages, run_ok, Outcome, Sandbox, HOST, USERS};

const SERVICE: &str = "sshd-jitsudo-test";
const WAIT: Duration = Duration::from_secs(10);

/// The stack a host would use for public-key logins (see packaging/pam.d/sshd).
const PUBKEY_STACK: &str = "auth     required pam_permit.so\n\
                            account  required MODULE exempt_group=jitadmins\n\
                            session  required MODULE\n";

/// Public key first, then keyboard-interactive through PAM: every login pastes a grant
/// (one already cached is no proof of who is typing).
const PASTE_STACK: &str = "auth     required MODULE\n\
                           account  required MODULE\n\
                           session  required MODULE\n";

/// An sshd for one test; stopped on drop, even when the test fails.
struct Sshd {
    child: Child,
    port: u16,
    key: PathBuf,
    log: PathBuf,
}

impl Sshd {
    fn start(sb: &Sandbox, stack: &str, extra_config: &str) -> Sshd {
        sb.pam_service(SERVICE, stack);
        let d = &sb.dir;
        let program = d.join(SERVICE);
        if !program.exists() {
            std::os::unix::fs::symlink("/usr/sbin/sshd", &program).unwrap();
            run_ok(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(d.join("host_key")),
            );
            run_ok(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(d.join("user_key")),
            );
            let public = fs::read_to_string(d.join("user_key.pub")).unwrap();
            sb.sh("mkdir -m 0755 /etc/ssh/jitsudo-test-keys");
            for (name, _) in USERS {
                sb.write_file(
                    &format!("/etc/ssh/jitsudo-test-keys/{name}"),
                    &public,
                    0o644,
                );
            }
        }
        let mut last_error = String::new();
        // A port picked free can be taken before sshd binds it; try a few.
        for _ in 0..5 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config = d.join("sshd_config");
            fs::write(
                &config,
                // sshd keeps the first value it reads for a keyword: the test's own go first.
                format!(
                    "{extra_config}Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile none\n\
                     UsePAM yes\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\n\
                     AuthorizedKeysFile /etc/ssh/jitsudo-test-keys/%u\nStrictModes no\n\
                     UseDNS no\nLogLevel VERBOSE\nMaxStartups 50\n",
                    d.join("host_key").display()
                ),
            )
            .unwrap();
            let log = d.join(format!("sshd-{port}.log"));
            let child = sb
                .ns_command(&program)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            let mut sshd = Sshd {
                child,
                port,
                key: d.join("user_key"),
                log,
            };
            // Ready when *this* sshd says it listens: a connect alone could reach another
            // test's sshd that won the race for the port.
            let deadline = Instant::now() + WAIT;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = sshd.child.try_wait() {
                    break;
                }
                if sshd
                    .server_log()
                    .contains("Server listening on 127.0.0.1 port")
                {
                    return sshd;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            last_error = fs::read_to_string(&sshd.log).unwrap_or_default();
        }
        panic!("sshd did not start: {last_error}");
    }

    fn ssh_command(&self, user: &str) -> Command {
        let mut c = Command::new("timeout");
        c.arg("30")
            .arg("ssh")
            .args(["-F", "/dev/null", "-i"])
            .arg(&self.key)
            .args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "ConnectTimeout=10",
                "-p",
            ])
            .arg(self.port.to_string())
            .arg(format!("{user}@127.0.0.1"))
            .stdin(Stdio::null());
        c
    }

    /// Log in with the test key and run `command`.
    fn ssh(&self, user: &str, command: &str) -> Outcome {
        Outcome::of(
            self.ssh_command(user)
                .args(["-o", "BatchMode=yes", "--", command])
                .output()
                .unwrap(),
        )
    }

    fn server_log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGTERM lets sshd close its listener; then make sure it is gone.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[track_caller]
fn assert_refused(out: &Outcome, sshd: &Sshd) {
    assert_eq!(
        out.code,
        255,
        "login should be refused: {out:?}\n{}",
        sshd.server_log()
    );
    assert!(
        !out.stdout.contains("RAN"),
        "the command must not run: {out:?}"
    );
}

#[test]
fn ssh_logins_need_a_valid_login_grant() {
    let sb = Sandbox::new();
    let sshd = Sshd::start(&sb, PUBKEY_STACK, "");

    // No grant: refused by the account phase, and the denial is logged with the rhost.
    let out = sshd.ssh("jtbob", "echo RAN");
    assert_refused(&out, &sshd);
    let lines = messages(&sb.log.wait_for("jtbob : login denied", WAIT));
    assert!(
        lines.contains(&format!(
            "jtbob : login denied: no login grant for {HOST} ; SERVICE={SERVICE} ; RHOST=127.0.0.1 ; TTY=ssh"
        )),
        "{lines:#?}"
    );
    assert!(
        sshd.server_log()
            .contains("Access denied for user jtbob by PAM account configuration"),
        "{}",
        sshd.server_log()
    );

    // With a login grant: logs in, runs a command, and the session is logged at both ends.
    let id = sb.import_login_grant("jtalice", &[]);
    sb.log.take();
    let out = sshd.ssh("jtalice", "echo RAN; id -un");
    assert_eq!(out.code, 0, "{out:?}\n{}", sshd.server_log());
    assert_eq!(out.stdout, "RAN\njtalice\n");
    let lines = messages(&sb.log.wait_for("session closed", WAIT));
    let tail = format!("SERVICE={SERVICE} ; RHOST=127.0.0.1 ; TTY=ssh ; GRANT={id}");
    assert_eq!(
        lines,
        vec![
            format!("jtalice : login allowed ; {tail}"),
            format!("jtalice : session opened ; {tail}"),
            format!("jtalice : session closed ; {tail}"),
        ]
    );

    // An expired grant: refused, and the log says it expired.
    let (token, expired) = sb.mint(
        "jtcarol",
        &["--kind", "login", "--start", "-2h", "--for", "1h"],
    );
    // Import refuses an expired grant, so plant it as a valid one would have been.
    plant(&sb, "jtcarol", &expired, &token);
    let out = sshd.ssh("jtcarol", "echo RAN");
    assert_refused(&out, &sshd);
    let lines = messages(&sb.log.wait_for("jtcarol : login denied", WAIT));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("login denied: grant expired 1h")
                && l.contains(&format!("GRANT={expired}"))),
        "{lines:#?}"
    );

    // A revoked grant: it worked, then it is revoked and refused.
    let revoked = sb.import_login_grant("jtdave", &[]);
    let out = sshd.ssh("jtdave", "echo RAN");
    assert_eq!(out.code, 0, "{out:?}\n{}", sshd.server_log());
    sb.log.wait_for("jtdave : session closed", WAIT);
    sb.revoke(&[&revoked]);
    let out = sshd.ssh("jtdave", "echo RAN");
    assert_refused(&out, &sshd);
    let lines = messages(&sb.log.wait_for("jtdave : login denied", WAIT));
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("grant has been revoked (grant {revoked})"))),
        "{lines:#?}"
    );

    // The exempt group gets in without any grant.
    let out = sshd.ssh("jtadmin", "echo RAN");
    assert_eq!(out.code, 0, "{out:?}\n{}", sshd.server_log());
    assert_eq!(out.stdout, "RAN\n");
    let lines = messages(&sb.log.wait_for("jtadmin : session closed", WAIT));
    assert!(
        lines.contains(&format!(
            "jtadmin : login allowed: member of exempt group jitadmins ; SERVICE={SERVICE} ; RHOST=127.0.0.1 ; TTY=ssh"
        )),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("jtadmin : session opened")
                && l.ends_with("GRANT=none (exempt group jitadmins)")),
        "{lines:#?}"
    );
}

#[test]
fn ssh_session_bound_grant_ends_with_the_session() {
    let sb = Sandbox::new();
    let sshd = Sshd::start(&sb, PUBKEY_STACK, "");
    let id = sb.import_login_grant("jtalice", &["--session-bound"]);
    let out = sshd.ssh("jtalice", "echo RAN");
    assert_eq!(out.code, 0, "{out:?}\n{}", sshd.server_log());
    let lines = messages(&sb.log.wait_for("session-bound grant dropped", WAIT));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("jtalice : session closed") && l.ends_with(&id)),
        "{lines:#?}"
    );
    let out = sshd.ssh("jtalice", "echo RAN");
    assert_refused(&out, &sshd);
}

#[test]
fn ssh_keyboard_interactive_paste_of_a_grant() {
    let sb = Sandbox::new();
    let sshd = Sshd::start(
        &sb,
        PASTE_STACK,
        "KbdInteractiveAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\n",
    );
    let (token, id) = sb.mint("jtalice", &["--kind", "login", "--for", "10m"]);
    // ssh reads keyboard-interactive answers through SSH_ASKPASS when forced to.
    let answer = |name: &str, text: &str| {
        let script = sb.dir.join(name);
        fs::write(&script, format!("#!/bin/sh\nprintf '%s\\n' '{text}'\n")).unwrap();
        fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        script
    };
    let paste = |script: &PathBuf| {
        Outcome::of(
            sshd.ssh_command("jtalice")
                .args(["-o", "NumberOfPasswordPrompts=1", "--", "echo RAN"])
                .env("SSH_ASKPASS", script)
                .env("SSH_ASKPASS_REQUIRE", "force")
                .env_remove("DISPLAY")
                .output()
                .unwrap(),
        )
    };

    let out = paste(&answer("bad-askpass", "not-a-token"));
    assert_refused(&out, &sshd);
    let lines = messages(&sb.log.wait_for("login grant refused", WAIT));
    assert!(
        lines.iter().any(|l| l.contains(
            "jtalice : login grant refused: malformed grant: not a PASETO v4.public token"
        )),
        "{lines:#?}"
    );

    let out = paste(&answer("good-askpass", &token));
    assert_eq!(out.code, 0, "{out:?}\n{}", sshd.server_log());
    assert_eq!(out.stdout, "RAN\n");
    let lines = messages(&sb.log.wait_for("session closed", WAIT));
    assert!(
        lines.contains(&format!(
            "jtalice : login grant imported ; SERVICE={SERVICE} ; RHOST=127.0.0.1 ; TTY=ssh ; GRANT={id}"
        )),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("jtalice : login allowed") && l.ends_with(&id)),
        "{lines:#?}"
    );

    // The grant is cached now, but that is no proof of who is typing: an empty answer
    // is refused, and the key alone does not get in.
    let out = paste(&answer("empty-askpass", ""));
    assert_refused(&out, &sshd);
}

/// Write a token straight into a user's cache (for grants `--import` would refuse).
fn plant(sb: &Sandbox, user: &str, id: &str, token: &str) {
    let uid = USERS
        .iter()
        .find(|(n, _)| *n == user)
        .map(|(_, u)| *u)
        .unwrap();
    let cache = serde_json::json!({
        "version": 1,
        "entries": [{ "jti": id, "exp": 4_000_000_000u64, "used": 0, "token": token }],
    });
    sb.sh("mkdir -p -m 0700 /var/lib/jitsudo/users");
    sb.write_file(
        &format!("/var/lib/jitsudo/users/{uid}.json"),
        &cache.to_string(),
        0o600,
    );
}
