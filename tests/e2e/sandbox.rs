//! A private world for one end-to-end test: its own mount namespace where /etc,
//! /var/lib and /usr are overlays (so test users, /etc/jitsudo, /var/lib/jitsudo and
//! the helpers in /usr/libexec/jitsudo exist only there), a root-owned copy of the
//! setuid binary outside /root, a signing key, and a syslog socket the test reads.
//! Nothing on the host changes.
//!
//! `Sandbox` is this suite's facade over jitsudo-testbed's `World` (the builder every
//! system suite uses; see its crate docs): the world's methods (`ns_command`, `path`,
//! `append`, `write_file`, `pam_service`, ...) are the sandbox's.

use std::ops::Deref;
use std::path::{Path, PathBuf};

pub use jitsudo_testbed::Outcome;
use jitsudo_testbed::{artifact, Home, World};

pub const HOST: &str = "web-01";

/// Test users: (name, uid). Each has a group of the same name and id.
pub const USERS: &[(&str, u32)] = &[("alice", 42001), ("bob", 42002), ("carol", 42003)];

pub fn require_root() {
    jitsudo_testbed::require_root(
        "the end-to-end suite must run as root (it installs a setuid binary in a private mount namespace)",
    );
}

/// The sandbox is its world plus the paths this suite's tests name.
pub struct Sandbox {
    world: World,
    pub dir: PathBuf,
    /// The setuid copy of the jitsudo under test (`JITSUDO_TEST_BIN`, else this build).
    pub bin: PathBuf,
    pub ctl: PathBuf,
    pub key: PathBuf,
    pub trusted_block: String,
    pub log_path: PathBuf,
}

impl Deref for Sandbox {
    type Target = World;

    fn deref(&self) -> &World {
        &self.world
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        require_root();
        let world = World::builder("jitsudo-e2e")
            .host(HOST)
            .setuid_jitsudo()
            .ctl()
            // The NSS bridge the statically linked (musl) jitsudo runs for accounts that
            // are not in /etc/passwd and /etc/group.
            .helper("jitsudo-nss")
            // The unprivileged network helper of --request and --sync.
            .helper("jitsudo-net")
            .users(USERS)
            .home(Home::Nominal)
            .signing_key("k1")
            // Session recordings (/var/log/jitsudo-io) stay inside the world.
            .overlay("/var/log", "varlog")
            .build();
        Sandbox {
            dir: world.dir.clone(),
            bin: world.jitsudo_path().to_path_buf(),
            ctl: world.ctl_path(),
            key: world.key().to_path_buf(),
            trusted_block: world.trusted_block.clone(),
            log_path: world.log_path.clone(),
            world,
        }
    }

    /// Install the PAM helper, built by `cargo build --workspace`, at the fixed path the
    /// setuid binary runs it from.
    pub fn install_auth_helper(&self) {
        self.world.install_helper("jitsudo-auth");
    }

    /// Write /etc/jitsudo/jitsudo.toml: `top` goes before the [log] table.
    pub fn write_config(&self, top: &str) {
        self.write_config_with_log(top, &self.world.log_table());
    }

    pub fn write_config_with_log(&self, top: &str, log: &str) {
        self.world
            .write_config_with(HOST, top, log, &self.trusted_block);
    }

    /// Mint a token with the sandbox key; `args` are extra mint flags.
    pub fn mint(&self, user: &str, args: &[&str]) -> String {
        self.mint_with_key(&self.key, user, args)
    }

    pub fn mint_with_key(&self, key: &Path, user: &str, args: &[&str]) -> String {
        self.world.mint_with_key(key, user, args).token
    }

    /// Syslog datagrams received since the last call.
    pub fn logs(&self) -> Vec<String> {
        self.world.log.take()
    }
}

/// A binary of the workspace, through jitsudo-testbed's one lookup (`artifact`: a
/// missing or stale one fails the test). `_sources` is no longer needed: the
/// staleness rule knows each artifact's package and its dependencies.
#[allow(dead_code)] // Used by tests/attacks, which shares this file.
pub fn workspace_artifact(name: &str, _sources: &str) -> PathBuf {
    artifact(name)
}

/// jitsudo's refusals, on an [`Outcome`].
pub trait Refusal {
    /// Exit 1 with nothing run, and one line `jitsudo: …` on stderr mentioning `needle`.
    fn assert_denied(&self, needle: &str);
}

impl Refusal for Outcome {
    #[track_caller]
    fn assert_denied(&self, needle: &str) {
        assert_eq!(self.code, 1, "expected exit 1, got {self:?}");
        assert!(self.stdout.is_empty(), "nothing should have run: {self:?}");
        assert!(self.stderr.starts_with("jitsudo: "), "{self:?}");
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "one line on stderr: {self:?}"
        );
        assert!(
            self.stderr.contains(needle),
            "stderr should mention {needle:?}: {self:?}"
        );
    }
}

/// The journal verifier, shared by the journal tests of both suites.
pub mod journal {
    use super::Sandbox;

    pub fn verify(s: &Sandbox) -> crate::sandbox::Outcome {
        crate::sandbox::Outcome::of(
            s.ns_command(&s.ctl)
                .args(["journal", "verify"])
                .output()
                .unwrap(),
        )
    }
}

/// Re-authentication fixtures (`authenticate = true`, a PAM service `jitsudo` whose auth
/// stack counts its runs), shared by tests/e2e/reauth.rs and the attacks suite.
pub mod pam {
    use super::Sandbox;
    use std::fs;

    pub const MARKER: &str = "/etc/jitsudo-test-auth-mark";

    /// `auth` runs pam_exec (one line in the marks file per authentication), then `auth`.
    pub fn stack(auth: &str, account: &str) -> String {
        format!(
            "auth required pam_exec.so quiet {MARKER}\nauth required {auth}\naccount required {account}\n"
        )
    }

    pub fn permit() -> String {
        stack("pam_permit.so", "pam_permit.so")
    }

    /// A sandbox with `authenticate = true` (plus `extra` config), the helper installed,
    /// and /etc/pam.d/jitsudo set to `pam_stack`. Alice may run /usr/bin/id -u and touch.
    pub fn sandbox(extra: &str, pam_stack: &str) -> Sandbox {
        let s = Sandbox::new();
        s.install_auth_helper();
        s.write_config(&format!("authenticate = true\n{extra}"));
        s.write_file("/etc/pam.d/jitsudo", pam_stack, 0o644);
        let marks = s.dir.join("auth-marks");
        s.write_file(
            MARKER,
            &format!(
                "#!/bin/sh\necho \"$PAM_USER $PAM_TTY\" >> {m}\nchmod 0644 {m}\n",
                m = marks.display()
            ),
            0o755,
        );
        let token = s.mint(
            "alice",
            &[
                "--command",
                "/usr/bin/id -u",
                "--command",
                "/usr/bin/touch *",
            ],
        );
        s.import_ok("alice", &token);
        s
    }

    /// How many times the PAM auth stack ran.
    pub fn auth_count(s: &Sandbox) -> usize {
        fs::read_to_string(s.dir.join("auth-marks"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }
}

/// Runs that are not on a terminal, and processes of a run, for the supervision tests of
/// both suites.
#[allow(dead_code)] // Each suite uses some.
pub mod processes {
    use std::process::{Child, Command, ExitStatus, Stdio};
    use std::time::{Duration, Instant};

    use super::Sandbox;

    /// jitsudo as `user` with no controlling terminal (setsid), standard streams piped.
    pub fn without_terminal(s: &Sandbox, user: &str) -> Command {
        let mut c = s.ns_command("/usr/bin/setsid");
        c.args([
            "/usr/bin/setpriv",
            "--reuid",
            user,
            "--regid",
            user,
            "--init-groups",
            "--",
        ])
        .arg(&s.bin)
        .env_clear()
        .env("PATH", "/usr/bin:/bin");
        c
    }

    /// Wait for `child`, which must end by itself; `limit` only keeps a broken build from
    /// hanging the suite (it is far above any window in these tests).
    pub fn wait_ended(mut child: Child, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the run was not ended");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn spawn(cmd: &mut Command) -> Child {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Processes (anywhere on this machine: the sandbox shares its pid namespace) whose
    /// command line is exactly `argv`.
    pub fn running(argv: &[&str]) -> Vec<u32> {
        let want: Vec<u8> = argv
            .iter()
            .flat_map(|a| [a.as_bytes(), b"\0"].concat())
            .collect();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
            .collect()
    }

    pub fn wait_until_running(argv: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while running(argv).is_empty() {
            assert!(Instant::now() < deadline, "{argv:?} never started");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
