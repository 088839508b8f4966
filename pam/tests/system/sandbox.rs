//! A private world for one test: a mount namespace (held open by a `sleep`) in which /etc,
//! /var/lib and /run are private (overlays and a tmpfs), with test users, a PAM service
//! file, /etc/jitsudo/jitsudo.toml, a root-owned copy of pam_jitsudo.so and of the
//! setuid jitsudo, and a syslog socket the test reads. The host's /etc/pam.d, sshd and
//! state are never touched: steps run with `nsenter`, files are written through
//! `/proc/<pid>/root`, which resolves paths inside the namespace. The namespace
//! machinery is jitsudo-testbed's, shared with the other system test suites.

use std::fs;
use std::io::Write;
use std::ops::Deref;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub use jitsudo_testbed::{run_ok, Outcome};
use jitsudo_testbed::{LogReader, Namespace};

pub const HOST: &str = "web-01";

/// Test users: (name, uid). Each has a group of the same name and id; `jtadmin` is also
/// in the group `jitadmins`.
pub const USERS: &[(&str, u32)] = &[
    ("jtalice", 46001),
    ("jtbob", 46002),
    ("jtcarol", 46003),
    ("jtdave", 46004),
    ("jtadmin", 46005),
];
pub const EXEMPT_GROUP: &str = "jitadmins";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn require_root() {
    jitsudo_testbed::require_root(
        "the PAM module tests must run as root: they build private mount namespaces, \
         run pamtester and sshd in them, and install a setuid jitsudo there",
    );
}

/// An artifact in target/<profile>/ (where cargo put this test's binary, in deps/).
///
/// `cargo test` builds neither a cdylib nor another package's binaries for these tests,
/// so they must come from `cargo build --workspace`; a missing or stale one fails the
/// test rather than test old code.
fn artifact(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let path = profile_dir.join(name);
    let built = fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is missing: run cargo build --workspace first (these tests use the real \
             jitsudo, jitsudoctl and pam_jitsudo.so, which cargo test does not build)",
                path.display()
            )
        });
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut sources = vec![root.join("src")];
    if name.starts_with("libpam_jitsudo") {
        sources.push(root.join("pam/src"));
    }
    if let Some(newer) = sources.iter().find_map(|s| newer_than(s, built)) {
        panic!(
            "{} is older than {}: run cargo build --workspace first",
            path.display(),
            newer.display()
        );
    }
    path
}

/// A Rust source file under `path` modified after `time`, if any.
fn newer_than(path: &Path, time: std::time::SystemTime) -> Option<PathBuf> {
    let meta = fs::metadata(path).ok()?;
    if meta.is_dir() {
        fs::read_dir(path)
            .ok()?
            .flatten()
            .find_map(|e| newer_than(&e.path(), time))
    } else {
        let rust = path.extension().is_some_and(|e| e == "rs");
        (rust && meta.modified().ok()? > time).then(|| path.to_path_buf())
    }
}

/// The sandbox is its namespace plus what this suite puts in it: `ns_command`, `sh`,
/// `path`, `append` and `write_file` come from the namespace.
pub struct Sandbox {
    pub dir: PathBuf,
    ns: Namespace,
    /// Root-owned copies of the artifacts under test.
    pub module: PathBuf,
    pub jitsudo: PathBuf,
    pub ctl: PathBuf,
    pub key: PathBuf,
    trusted_block: String,
    /// The socket named in the test config.
    pub log: LogReader,
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
        // Checked before anything is created, so a missing build leaves nothing behind.
        let artifacts = [
            (artifact("libpam_jitsudo.so"), "lib/pam_jitsudo.so", 0o644),
            (artifact("jitsudo"), "bin/jitsudo", 0o4755),
            (artifact("jitsudoctl"), "bin/jitsudoctl", 0o755),
        ];
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = PathBuf::from(format!("/tmp/pam-jitsudo-test-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for sub in ["bin", "lib", "keys", "home"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        for sub in [".", "bin", "lib", "home"] {
            fs::set_permissions(dir.join(sub), fs::Permissions::from_mode(0o755)).unwrap();
        }

        for (from, to, mode) in &artifacts {
            let to = dir.join(to);
            fs::copy(from, &to).unwrap();
            fs::set_permissions(&to, fs::Permissions::from_mode(*mode)).unwrap();
        }
        let module = dir.join("lib/pam_jitsudo.so");
        let jitsudo = dir.join("bin/jitsudo");
        let ctl = dir.join("bin/jitsudoctl");

        let log_path = dir.join("log.sock");
        let log = LogReader::bind(&log_path);

        let mut sandbox = Sandbox {
            ns: Namespace::new(&dir),
            dir,
            module,
            jitsudo,
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
        self.mount_overlays(&[("/etc", "etc"), ("/var/lib", "lib")]);
        self.sh("mount -t tmpfs -o mode=0755 tmpfs /run
             mkdir -m 0755 /run/sshd
             rm -rf /etc/jitsudo /var/lib/jitsudo
             mkdir -m 0755 /etc/jitsudo");
        let mut group_line = format!("{EXEMPT_GROUP}:x:46100:");
        for (name, uid) in USERS {
            let home = self.dir.join("home").join(name);
            fs::create_dir_all(&home).unwrap();
            std::os::unix::fs::chown(&home, Some(*uid), Some(*uid)).unwrap();
            self.append(
                "/etc/passwd",
                &format!("{name}:x:{uid}:{uid}:{name}:{}:/bin/sh\n", home.display()),
            );
            self.append("/etc/group", &format!("{name}:x:{uid}:\n"));
            self.append("/etc/shadow", &format!("{name}:*:20000:0:99999:7:::\n"));
        }
        group_line.push_str("jtadmin\n");
        self.append("/etc/group", &group_line);
        let out = run_ok(
            Command::new(&self.ctl)
                .args(["keygen", "--id", "k1", "--out"])
                .arg(self.dir.join("keys")),
        );
        self.trusted_block = String::from_utf8(out.stdout).unwrap();
        self.key = self.dir.join("keys/k1.key");
        self.write_config("");
    }

    /// Make /dev/log (the module's fallback when it has no usable config) a socket this
    /// test reads: an overlay on /dev inside the namespace, with /dev/log a symlink.
    pub fn capture_dev_log(&self) -> LogReader {
        let path = self.dir.join("devlog.sock");
        let reader = LogReader::bind(&path);
        self.mount_overlays(&[("/dev", "dev")]);
        self.sh(&format!("ln -sf {} /dev/log", path.display()));
        reader
    }

    /// /etc/jitsudo/jitsudo.toml; `top` goes before the [log] table.
    pub fn write_config(&self, top: &str) {
        let text = format!(
            "host = \"{HOST}\"\n{top}\n[log]\nsyslog_socket = \"{}\"\n{}",
            self.log_path.display(),
            self.trusted_block
        );
        self.write_file("/etc/jitsudo/jitsudo.toml", &text, 0o644);
    }

    /// /etc/pam.d/<service>; `MODULE` in `stack` stands for the module's path.
    pub fn pam_service(&self, service: &str, stack: &str) {
        let text = stack.replace("MODULE", &self.module.display().to_string());
        self.write_file(&format!("/etc/pam.d/{service}"), &text, 0o644);
    }

    /// Mint a token with the sandbox key (`jitsudoctl mint`); returns (token, grant id).
    pub fn mint(&self, user: &str, args: &[&str]) -> (String, String) {
        let out = run_ok(
            Command::new(&self.ctl)
                .arg("mint")
                .arg("--key")
                .arg(&self.key)
                .args(["--user", user, "--host", HOST])
                .args(args),
        );
        let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
        // stderr: "grant <id> for <user> on <host>: valid …"
        let stderr = String::from_utf8(out.stderr).unwrap();
        let id = stderr
            .lines()
            .find_map(|l| l.strip_prefix("grant "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no grant id in {stderr:?}"))
            .to_string();
        (token, id)
    }

    /// A login grant for `user`, cached with the real setuid `jitsudo --import`, run as
    /// that user. Returns the grant id.
    pub fn import_login_grant(&self, user: &str, extra: &[&str]) -> String {
        let mut args = vec!["--kind", "login"];
        args.extend_from_slice(extra);
        let (token, id) = self.mint(user, &args);
        let out = self.jitsudo_as(user, &["--import", "-"], &token);
        assert_eq!(out.code, 0, "import failed: {out:?}");
        // Its "imported grant" line is not what the test is about to look for.
        self.log
            .wait_for(&format!("GRANT={id}"), Duration::from_secs(5));
        id
    }

    /// The setuid jitsudo, run as `user` with `stdin` on its standard input.
    pub fn jitsudo_as(&self, user: &str, args: &[&str], stdin: &str) -> Outcome {
        let mut cmd = self.as_user(user, &self.jitsudo);
        cmd.args(args);
        feed(cmd, stdin)
    }

    /// Mark grant ids revoked, as `jitsudo --sync` stores the list.
    pub fn revoke(&self, ids: &[&str]) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let list = serde_json::json!({ "issued_at": now, "ids": ids });
        let dir = self.path("/var/lib/jitsudo");
        if !dir.exists() {
            fs::create_dir(&dir).unwrap();
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        }
        self.write_file(
            "/var/lib/jitsudo/revocations.json",
            &list.to_string(),
            0o600,
        );
    }

    /// pamtester inside the namespace: `pamtester [-I item]… SERVICE USER OPS…` with
    /// `stdin` as the conversation's input.
    pub fn pamtester(
        &self,
        service: &str,
        user: &str,
        ops: &[&str],
        items: &[&str],
        stdin: &str,
    ) -> Outcome {
        let mut cmd = self.ns_command("pamtester");
        for item in items {
            cmd.args(["-I", item]);
        }
        cmd.args([service, user]).args(ops);
        feed(cmd, stdin)
    }
}

fn feed(mut cmd: Command, stdin: &str) -> Outcome {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    // The program may exit without reading; a broken pipe is not our failure.
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    Outcome::of(child.wait_with_output().unwrap())
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // The namespace (and its mounts) goes with its last process.
        self.ns.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The body of syslog datagrams: "<PRI>Mmm dd hh:mm:ss jitsudo[pid]: MESSAGE" → MESSAGE.
pub fn messages(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| match l.split_once("]: ") {
            Some((_, m)) => m.to_string(),
            None => l.clone(),
        })
        .collect()
}

/// The PRI of a datagram: facility * 8 + severity.
pub fn priority(line: &str) -> u32 {
    line.strip_prefix('<')
        .and_then(|l| l.split_once('>'))
        .and_then(|(p, _)| p.parse().ok())
        .unwrap_or(u32::MAX)
}
