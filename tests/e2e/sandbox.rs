//! A private world for one end-to-end test: its own mount namespace where /etc and
//! /var/lib are overlays (so test users, /etc/jitsudo and /var/lib/jitsudo exist only
//! there), a root-owned copy of the setuid binary outside /root, a signing key, and a
//! syslog socket the test reads. Nothing on the host changes.
//!
//! Steps run with `nsenter` into a namespace held open by a `sleep` process; files are
//! written through `/proc/<pid>/root`, which resolves paths in that namespace. The
//! namespace machinery is jitsudo-testbed's, shared with the other system test suites.

use std::fs;
use std::io::Write;
use std::ops::Deref;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub use jitsudo_testbed::Outcome;
use jitsudo_testbed::{run_ok, LogReader, Namespace};

pub const HOST: &str = "web-01";

/// Test users: (name, uid). Each has a group of the same name and id.
pub const USERS: &[(&str, u32)] = &[("alice", 42001), ("bob", 42002), ("carol", 42003)];

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn require_root() {
    jitsudo_testbed::require_root(
        "the end-to-end suite must run as root (it installs a setuid binary in a private mount namespace)",
    );
}

/// The sandbox is its namespace plus what this suite puts in it: `ns_command`, `path`,
/// `append` and `write_file` come from the namespace.
pub struct Sandbox {
    pub dir: PathBuf,
    ns: Namespace,
    pub bin: PathBuf,
    pub ctl: PathBuf,
    pub key: PathBuf,
    pub trusted_block: String,
    log: LogReader,
    pub log_path: PathBuf,
}

impl Deref for Sandbox {
    type Target = Namespace;

    fn deref(&self) -> &Namespace {
        &self.ns
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        require_root();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = PathBuf::from(format!("/tmp/jitsudo-e2e-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bin")).unwrap();
        fs::create_dir_all(dir.join("keys")).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(dir.join("bin"), fs::Permissions::from_mode(0o755)).unwrap();

        let bin = dir.join("bin/jitsudo");
        let ctl = dir.join("bin/jitsudoctl");
        fs::copy(binary_under_test(), &bin).unwrap();
        fs::copy(workspace_artifact("jitsudoctl", "ctl/src"), &ctl).unwrap();
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o4755)).unwrap();
        fs::set_permissions(&ctl, fs::Permissions::from_mode(0o755)).unwrap();

        let log_path = dir.join("log.sock");
        let log = LogReader::bind(&log_path);

        let mut sandbox = Sandbox {
            ns: Namespace::new(&dir),
            dir,
            bin,
            ctl,
            key: PathBuf::new(),
            trusted_block: String::new(),
            log,
            log_path,
        };
        sandbox.setup_world();
        sandbox
    }

    fn setup_world(&mut self) {
        self.mount_overlays(&[("/etc", "etc"), ("/var/lib", "lib"), ("/usr", "usr")]);
        self.sh("rm -rf /etc/jitsudo /var/lib/jitsudo
                 mkdir -m 0755 /etc/jitsudo
                 mkdir -p -m 0755 /usr/libexec/jitsudo");
        // The NSS bridge the statically linked (musl) jitsudo runs for accounts that are
        // not in /etc/passwd and /etc/group.
        self.install_helper(Path::new(env!("CARGO_BIN_EXE_jitsudo-nss")), "jitsudo-nss");
        // The unprivileged network helper of --request and --sync.
        self.install_helper(&workspace_artifact("jitsudo-net", "net/src"), "jitsudo-net");
        for (name, uid) in USERS {
            self.append(
                "/etc/passwd",
                &format!("{name}:x:{uid}:{uid}:{name}:/home/{name}:/bin/sh\n"),
            );
            self.append("/etc/group", &format!("{name}:x:{uid}:\n"));
            self.append("/etc/shadow", &format!("{name}:!:20000:0:99999:7:::\n"));
        }
        let out = run_ok(
            Command::new(&self.ctl)
                .args(["keygen", "--id", "k1", "--out"])
                .arg(self.dir.join("keys")),
        );
        self.trusted_block = String::from_utf8(out.stdout).unwrap();
        self.key = self.dir.join("keys/k1.key");
        self.write_config("");
    }

    /// Install the PAM helper, built by `cargo build --workspace`, at the fixed path the
    /// setuid binary runs it from.
    pub fn install_auth_helper(&self) {
        self.install_helper(
            &workspace_artifact("jitsudo-auth", "auth/src"),
            "jitsudo-auth",
        );
    }

    fn install_helper(&self, built: &Path, name: &str) {
        let installed = self.path(&format!("/usr/libexec/jitsudo/{name}"));
        fs::copy(built, &installed).unwrap();
        fs::set_permissions(&installed, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Write /etc/jitsudo/jitsudo.toml: `top` goes before the [log] table.
    pub fn write_config(&self, top: &str) {
        self.write_config_with_log(
            top,
            &format!("syslog_socket = \"{}\"\n", self.log_path.display()),
        );
    }

    pub fn write_config_with_log(&self, top: &str, log: &str) {
        let text = format!(
            "host = \"{HOST}\"\n{top}\n[log]\n{log}\n{}",
            self.trusted_block
        );
        self.write_file("/etc/jitsudo/jitsudo.toml", &text, 0o644);
    }

    /// Mint a token with the sandbox key; `args` are extra mint flags.
    pub fn mint(&self, user: &str, args: &[&str]) -> String {
        self.mint_with_key(&self.key, user, args)
    }

    pub fn mint_with_key(&self, key: &Path, user: &str, args: &[&str]) -> String {
        let mut cmd = Command::new(&self.ctl);
        cmd.arg("mint").arg("--key").arg(key).args(["--user", user]);
        if !args.contains(&"--host") {
            cmd.args(["--host", HOST]);
        }
        let out = run_ok(cmd.args(args));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// The setuid binary, run as `user` (real uid/gid and groups of that user) with a
    /// minimal environment.
    pub fn jitsudo(&self, user: &str) -> Command {
        self.as_user(user, &self.bin)
    }

    pub fn run(&self, user: &str, args: &[&str]) -> Outcome {
        Outcome::of(self.jitsudo(user).args(args).output().unwrap())
    }

    pub fn import(&self, user: &str, token: &str) -> Outcome {
        let mut child = self
            .jitsudo(user)
            .args(["--import", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(token.as_bytes())
            .unwrap();
        Outcome::of(child.wait_with_output().unwrap())
    }

    /// Import and return the grant id, asserting success.
    pub fn import_ok(&self, user: &str, token: &str) -> String {
        let out = self.import(user, token);
        assert_eq!(out.code, 0, "import failed: {}", out.stderr);
        let rest = out
            .stdout
            .strip_prefix("imported grant ")
            .expect(&out.stdout);
        rest.split(':').next().unwrap().to_string()
    }

    /// Syslog datagrams received since the last call.
    pub fn logs(&self) -> Vec<String> {
        self.log.take()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.ns.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The jitsudo to test: `JITSUDO_TEST_BIN` names a prebuilt one (test.sh runs this suite
/// a second time against the shipped static musl build), else this profile's build.
fn binary_under_test() -> PathBuf {
    match std::env::var_os("JITSUDO_TEST_BIN") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_BIN_EXE_jitsudo")),
    }
}

/// A binary of another workspace package, in target/<profile>/ beside this test's deps/.
/// `cargo test` does not build other packages' binaries, so it must come from
/// `cargo build --workspace`; a missing or stale one fails the test.
pub fn workspace_artifact(name: &str, sources: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .join(name);
    let built = fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is missing: run cargo build --workspace first",
                path.display()
            )
        });
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(sources);
    for entry in fs::read_dir(&dir).unwrap() {
        let source = entry.unwrap().path();
        let modified = fs::metadata(&source).unwrap().modified().unwrap();
        assert!(
            modified <= built,
            "{} is older than {}: run cargo build --workspace first",
            path.display(),
            source.display()
        );
    }
    path
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
