//! The test harness of jitsudo's system suites: the end-to-end and attack suites of the
//! setuid binary (tests/e2e, tests/attacks), the PAM module's (pam/tests/system) and
//! the service's (server/tests). Each suite's `Sandbox`, `Host` or `Service` is a thin
//! facade over what is here.
//!
//! - [`World`], made by [`World::builder`]: one host for one test. A private mount
//!   namespace held open by a `sleep` process, where /etc and /var/lib (and /usr, /run
//!   when asked) are overlays or a tmpfs, so what the test writes there never reaches
//!   the host; test users and groups; root-owned copies of the binaries under test
//!   (the setuid jitsudo, jitsudoctl, pam_jitsudo.so) and helpers in
//!   /usr/libexec/jitsudo; a signing key and the trusted keys; /etc/jitsudo/jitsudo.toml
//!   naming a syslog socket the test reads ([`LogReader`]); PAM services; and,
//!   optionally, enrollment with a running [`Service`].
//! - [`Service`], made by [`Service::builder`]: the real jitsudod on loopback.
//! - [`artifact`]: the one lookup of a built binary, with the one staleness rule (it
//!   must be no older than the Rust sources of its package and of the workspace
//!   packages it depends on; `JITSUDO_TEST_BIN` names the jitsudo to test instead).
//!
//! Steps run inside with `nsenter` ([`Namespace::ns_command`], [`Namespace::as_user`]);
//! files are written through `/proc/<pid>/root`, which resolves paths in that
//! namespace. Dropping the world ends the namespace, and with it its mounts, and
//! removes its directory under /tmp.
//!
//! ```no_run
//! use jitsudo_testbed::{Home, World};
//!
//! let world = World::builder("jitsudo-example")
//!     .users(&[("alice", 42001)])
//!     .home(Home::Nominal)
//!     .setuid_jitsudo()
//!     .helper("jitsudo-nss")
//!     .helper("jitsudo-auth")
//!     .signing_key("k1")
//!     .config("authenticate = true\n")
//!     .pam_service("jitsudo", "auth required pam_permit.so\naccount required pam_permit.so\n")
//!     .build();
//! let grant = world.mint("alice", &["--command", "/usr/bin/id -u"]);
//! world.import_ok("alice", &grant.token);
//! let out = world.run("alice", &["/usr/bin/id", "-u"]);
//! assert_eq!((out.code, out.stdout.as_str()), (0, "0\n"));
//! assert!(world.log.take().iter().any(|l| l.contains("COMMAND=/usr/bin/id -u")));
//! ```
//!
//! With a service (`Service::builder(database, policy).start(dir)`), `.service(&svc)`
//! puts its URL and key in the configuration and enrolls the host once it is built.
//!
//! Everything here needs root (the suites fail, not skip, without it) and the binaries
//! of `cargo build --workspace`: `cargo test` builds only the tested package's own.
#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod artifact;
mod service;
mod world;

pub use artifact::{artifact, profile_dir, workspace_root, JITSUDO_TEST_BIN};
pub use service::{serve, Service, ServiceBuilder};
pub use world::{Home, Minted, World, WorldBuilder, DEFAULT_HOST, LIBEXEC};

/// Fail (not skip) unless running as root; `why` is the failure message, naming what
/// the suite needs root for.
#[track_caller]
pub fn require_root(why: &str) {
    // The id command rather than geteuid(2): it keeps this crate free of unsafe.
    let out = Command::new("id").arg("-u").output().expect("run id");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0", "{why}");
}

/// Run `cmd` to completion; panic, with its output, unless it succeeded.
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> Output {
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

/// Run `cmd` with `stdin` on its standard input, to completion.
pub fn run_with_input(cmd: &mut Command, stdin: &str) -> Outcome {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    // The program may exit without reading; a broken pipe is not the test's failure
    // (what the program did is in the outcome).
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    Outcome::of(child.wait_with_output().unwrap())
}

/// A finished process, with text output.
#[derive(Debug)]
pub struct Outcome {
    /// Exit code; -1 if a signal killed the process (a crash, say).
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
}

/// A private mount namespace, held open by a `sleep` until dropped.
pub struct Namespace {
    holder: Child,
    dir: PathBuf,
}

impl Namespace {
    /// Start the holder and wait until it runs in its new namespace.
    ///
    /// `dir` is a host directory that stays reachable inside (the suites use one under
    /// /tmp, which they never mount over): commands start in it, and the upper and work
    /// directories of overlays are made in it.
    pub fn new(dir: impl Into<PathBuf>) -> Namespace {
        let holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sleep", "3600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare");
        let ns = Namespace {
            holder,
            dir: dir.into(),
        };
        ns.wait_for_namespace();
        ns
    }

    fn wait_for_namespace(&self) {
        let mine = fs::read_link("/proc/self/ns/mnt").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        // The sleep must have been exec'd inside the new namespace, not be unshare itself.
        while Instant::now() < deadline {
            let theirs = fs::read_link(format!("/proc/{}/ns/mnt", self.pid()));
            let comm = fs::read_to_string(format!("/proc/{}/comm", self.pid())).unwrap_or_default();
            if matches!(theirs, Ok(ref t) if *t != mine) && comm.trim() == "sleep" {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("namespace holder did not start");
    }

    /// The holder's process id.
    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// The host directory given to `new`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A command run as root inside the namespace, in `dir`.
    pub fn ns_command(&self, program: impl AsRef<OsStr>) -> Command {
        // `cd` inside the namespace: nsenter's --wd opens the directory before entering,
        // and a working directory from the old mount namespace is unreachable from the
        // new one (getcwd(3) fails on it with musl). Without either, entering a mount
        // namespace leaves the command in its /.
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.pid().to_string())
            .arg("-m")
            .args(["--", "/bin/sh", "-c", r#"cd "$0" && exec "$@""#])
            .arg(&self.dir)
            .arg(program);
        c.stdin(Stdio::null());
        c
    }

    /// `program` inside the namespace as `user` (real uid and gid, and the user's
    /// groups), with a minimal environment.
    pub fn as_user(&self, user: &str, program: impl AsRef<OsStr>) -> Command {
        let mut c = self.ns_command("setpriv");
        c.args(["--reuid", user, "--regid", user, "--init-groups", "--"])
            .arg(program)
            .env_clear()
            .env("PATH", "/usr/bin:/bin");
        c
    }

    /// Run a shell script as root inside the namespace (`sh -e`: it stops at the first
    /// failing command); panics unless it succeeds.
    #[track_caller]
    pub fn sh(&self, script: &str) -> Output {
        run_ok(self.ns_command("sh").args(["-ec", script]))
    }

    /// Mount an overlay over each `(target, name)` inside the namespace: `target` stays
    /// readable, and writes to it go to `<dir>/<name>-up` (its work directory is
    /// `<dir>/<name>-work`), so the host's copy never changes.
    #[track_caller]
    pub fn mount_overlays(&self, overlays: &[(&str, &str)]) {
        let mut script = String::new();
        for (target, name) in overlays {
            let up = self.dir.join(format!("{name}-up"));
            let work = self.dir.join(format!("{name}-work"));
            fs::create_dir_all(&up).unwrap();
            fs::create_dir_all(&work).unwrap();
            script.push_str(&format!(
                "mount -t overlay overlay -o lowerdir={target},upperdir={},workdir={} {target}\n",
                up.display(),
                work.display()
            ));
        }
        self.sh(&script);
    }

    /// A path as seen inside the namespace.
    pub fn path(&self, inner: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{inner}", self.pid()))
    }

    /// Append `text` to an existing file inside the namespace.
    pub fn append(&self, inner: &str, text: &str) {
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(self.path(inner))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// Write a file inside the namespace, with permission bits `mode`.
    pub fn write_file(&self, inner: &str, text: &str, mode: u32) {
        let p = self.path(inner);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Kill the holder and reap it; the namespace, and its mounts, go with its last
    /// process. Call before removing `dir`, whose overlay directories are in use until
    /// then. Dropping does the same.
    pub fn stop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads a syslog datagram socket continuously, so senders never block on a full queue
/// (Unix datagram sockets queue only a handful of messages).
pub struct LogReader {
    lines: Arc<Mutex<Vec<String>>>,
    /// The same socket as the thread's, for `take` to drain what is still queued.
    socket: UnixDatagram,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LogReader {
    /// Bind a datagram socket at `path` and start reading it.
    pub fn bind(path: &Path) -> LogReader {
        let socket = UnixDatagram::bind(path)
            .unwrap_or_else(|e| panic!("cannot bind {}: {e}", path.display()));
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, st) = (lines.clone(), stop.clone());
        let ours = socket.try_clone().unwrap();
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !st.load(Ordering::SeqCst) {
                // Received and stored under the lock: `take` never sees a datagram that
                // has left the socket but is not in `lines` yet.
                let mut lines = l.lock().unwrap();
                if let Ok(n) = socket.recv(&mut buf) {
                    lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
            }
        });
        LogReader {
            lines,
            socket: ours,
            stop,
            thread: Some(thread),
        }
    }

    /// Everything received so far (and not yet taken). A sender's datagrams are in the
    /// socket's queue before `send` returns, so once a process has exited, everything
    /// it logged is either stored by the thread or still queued; the queue is drained
    /// here, so the answer does not depend on how soon the thread was scheduled.
    pub fn take(&self) -> Vec<String> {
        // A moment for senders that are not the test's own children (sshd's PAM stack,
        // a supervisor in the background) to get their lines out.
        std::thread::sleep(Duration::from_millis(60));
        let mut lines = self.lines.lock().unwrap();
        // The thread waits for the lock meanwhile, so the shared non-blocking flag is
        // ours alone until it is put back.
        self.socket.set_nonblocking(true).unwrap();
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = self.socket.recv(&mut buf) {
            lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        self.socket.set_nonblocking(false).unwrap();
        std::mem::take(&mut *lines)
    }

    /// Wait until a line containing `needle` arrives; returns every line received so far
    /// (taken), so later calls see only what comes after.
    #[track_caller]
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let mut lines = self.lines.lock().unwrap();
                if lines.iter().any(|l| l.contains(needle)) {
                    return std::mem::take(&mut *lines);
                }
            }
            if Instant::now() > deadline {
                let seen = self.lines.lock().unwrap().clone();
                panic!("no syslog line containing {needle:?} within {timeout:?}; got {seen:#?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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
