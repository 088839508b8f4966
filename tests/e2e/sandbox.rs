//! A private world for one end-to-end test: its own mount namespace where /etc and
//! /var/lib are overlays (so test users, /etc/jitsudo and /var/lib/jitsudo exist only
//! there), a root-owned copy of the setuid binary outside /root, a signing key, and a
//! syslog socket the test reads. Nothing on the host changes.
//!
//! Steps run with `nsenter` into a namespace held open by a `sleep` process; files are
//! written through `/proc/<pid>/root`, which resolves paths in that namespace.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const HOST: &str = "web-01";

/// Test users: (name, uid). Each has a group of the same name and id.
pub const USERS: &[(&str, u32)] = &[("alice", 42001), ("bob", 42002), ("carol", 42003)];

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn require_root() {
    // SAFETY-free: geteuid via the id command keeps this file free of unsafe.
    let out = Command::new("id").arg("-u").output().expect("run id");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "the end-to-end suite must run as root (it installs a setuid binary in a private mount namespace)"
    );
}

pub struct Sandbox {
    pub dir: PathBuf,
    ns: Child,
    pub bin: PathBuf,
    pub ctl: PathBuf,
    pub key: PathBuf,
    pub trusted_block: String,
    log: LogReader,
    pub log_path: PathBuf,
}

/// Reads the syslog socket continuously, so senders never block on a full queue
/// (Unix datagram sockets queue only a handful of messages).
struct LogReader {
    lines: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LogReader {
    fn start(socket: UnixDatagram) -> LogReader {
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, st) = (lines.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !st.load(Ordering::SeqCst) {
                if let Ok(n) = socket.recv(&mut buf) {
                    l.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
            }
        });
        LogReader {
            lines,
            stop,
            thread: Some(thread),
        }
    }

    fn take(&self) -> Vec<String> {
        // Datagrams are queued before the sender exits; give the reader a moment.
        std::thread::sleep(Duration::from_millis(60));
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

impl Drop for LogReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Sandbox {
    pub fn new() -> Sandbox {
        require_root();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = PathBuf::from(format!("/tmp/jitsudo-e2e-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bin")).unwrap();
        for sub in [
            "etc-up", "etc-work", "lib-up", "lib-work", "usr-up", "usr-work", "keys",
        ] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(dir.join("bin"), fs::Permissions::from_mode(0o755)).unwrap();

        let bin = dir.join("bin/jitsudo");
        let ctl = dir.join("bin/jitsudoctl");
        fs::copy(binary_under_test(), &bin).unwrap();
        fs::copy(env!("CARGO_BIN_EXE_jitsudoctl"), &ctl).unwrap();
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o4755)).unwrap();
        fs::set_permissions(&ctl, fs::Permissions::from_mode(0o755)).unwrap();

        let log_path = dir.join("log.sock");
        let log = LogReader::start(UnixDatagram::bind(&log_path).unwrap());

        let ns = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sleep", "3600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare");
        let mut sandbox = Sandbox {
            dir,
            ns,
            bin,
            ctl,
            key: PathBuf::new(),
            trusted_block: String::new(),
            log,
            log_path,
        };
        sandbox.wait_for_namespace();
        sandbox.setup_world();
        sandbox
    }

    fn wait_for_namespace(&self) {
        let mine = fs::read_link("/proc/self/ns/mnt").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        // The sleep must have been exec'd inside the new namespace, not be unshare itself.
        while Instant::now() < deadline {
            let theirs = fs::read_link(format!("/proc/{}/ns/mnt", self.ns.id()));
            let comm =
                fs::read_to_string(format!("/proc/{}/comm", self.ns.id())).unwrap_or_default();
            if matches!(theirs, Ok(ref t) if *t != mine) && comm.trim() == "sleep" {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("namespace holder did not start");
    }

    /// Run a command as root inside the namespace.
    pub fn ns_command(&self, program: impl AsRef<OsStr>) -> Command {
        // `cd` inside the namespace: nsenter's --wd opens the directory before entering,
        // and a working directory from the old mount namespace is unreachable from the
        // new one (getcwd(3) fails on it with musl).
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.ns.id().to_string())
            .arg("-m")
            .args(["--", "/bin/sh", "-c", r#"cd "$0" && exec "$@""#])
            .arg(&self.dir)
            .arg(program);
        c.current_dir(&self.dir).stdin(Stdio::null());
        c
    }

    fn setup_world(&mut self) {
        let d = self.dir.display();
        let script = format!(
            "set -e
             mount -t overlay overlay -o lowerdir=/etc,upperdir={d}/etc-up,workdir={d}/etc-work /etc
             mount -t overlay overlay -o lowerdir=/var/lib,upperdir={d}/lib-up,workdir={d}/lib-work /var/lib
             mount -t overlay overlay -o lowerdir=/usr,upperdir={d}/usr-up,workdir={d}/usr-work /usr
             rm -rf /etc/jitsudo /var/lib/jitsudo
             mkdir -m 0755 /etc/jitsudo
             mkdir -p -m 0755 /usr/libexec/jitsudo"
        );
        run_ok(self.ns_command("sh").args(["-c", &script]));
        // The NSS bridge the statically linked (musl) jitsudo runs for accounts that are
        // not in /etc/passwd and /etc/group.
        self.install_helper(Path::new(env!("CARGO_BIN_EXE_jitsudo-nss")), "jitsudo-nss");
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

    /// A path as seen inside the namespace.
    pub fn path(&self, inner: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{inner}", self.ns.id()))
    }

    pub fn append(&self, inner: &str, text: &str) {
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(self.path(inner))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    pub fn write_file(&self, inner: &str, text: &str, mode: u32) {
        let p = self.path(inner);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
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
        let mut c = self.ns_command("setpriv");
        c.args(["--reuid", user, "--regid", user, "--init-groups", "--"])
            .arg(&self.bin)
            .env_clear()
            .env("PATH", "/usr/bin:/bin");
        c
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
        let _ = self.ns.kill();
        let _ = self.ns.wait();
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
fn workspace_artifact(name: &str, sources: &str) -> PathBuf {
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

/// A finished process, with text output.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn of(out: Output) -> Outcome {
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn assert_denied(&self, needle: &str) {
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
