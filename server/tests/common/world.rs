//! One test world: a running `jitsudod` (real binary, real HTTP on loopback) and a host
//! in a private mount namespace (overlays over /etc and /var/lib, test users, a
//! root-owned setuid copy of `jitsudo` outside /root, a syslog socket the test binds),
//! enrolled and registered with the service.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;

pub const HOST: &str = "web-01";
pub const USERS: &[(&str, u32)] = &[("alice", 42101), ("bob", 42102), ("carol", 42103)];

/// Binaries of the workspace, next to the jitsudod this test was built with.
pub fn bin(name: &str) -> PathBuf {
    let jitsudod = PathBuf::from(env!("CARGO_BIN_EXE_jitsudod"));
    let p = jitsudod.with_file_name(name);
    assert!(
        p.exists(),
        "{} is missing: build the workspace first (cargo build --workspace)",
        p.display()
    );
    p
}

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

/// A finished process with text output.
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
    pub fn ok(self) -> Outcome {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }

    #[track_caller]
    pub fn denied(self, needle: &str) -> Outcome {
        assert_eq!(self.code, 1, "expected exit 1: {self:?}");
        assert!(
            self.stderr.contains(needle),
            "stderr should mention {needle:?}: {self:?}"
        );
        self
    }
}

pub struct Service {
    pub dir: TempDir,
    child: Child,
    pub url: String,
    pub admin_token: String,
    pub config: PathBuf,
    fake_now: Option<String>,
}

/// Start `jitsudod serve` and wait for its "listening on URL" line; stderr goes to
/// `dir`/service.log (appended, so a restart keeps the earlier log).
fn spawn(config: &Path, fake_now: Option<&str>, dir: &Path) -> (Child, String) {
    let mut cmd = Command::new(bin("jitsudod"));
    cmd.args(["serve", "--config"]).arg(config);
    if let Some(t) = fake_now {
        cmd.args(["--fake-now", t]);
    }
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("service.log"))
        .unwrap();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    reader.read_line(&mut line).unwrap();
    let Some(url) = line.trim().strip_prefix("listening on ") else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "jitsudod did not start: {line:?}\n{}",
            fs::read_to_string(dir.join("service.log")).unwrap_or_default()
        );
    };
    let url = url.to_string();
    // Keep draining stdout so the service never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });
    (child, url)
}

impl Service {
    /// Start jitsudod with `policy` on `database`; `fake_now` fakes the policy clock.
    pub fn start(database: &str, policy: &str, fake_now: Option<&str>) -> Service {
        Service::start_with(
            database,
            policy,
            fake_now,
            "user_requests_per_minute = 1000\nhost_requests_per_minute = 100000\n",
            "",
        )
    }

    /// `limits`: the body of the [limits] table; `top`: more top-level keys.
    pub fn start_with(
        database: &str,
        policy: &str,
        fake_now: Option<&str>,
        limits: &str,
        top: &str,
    ) -> Service {
        let dir = TempDir::new("svc");
        let d = dir.path();
        run_ok(
            Command::new(bin("jitsudoctl"))
                .args(["keygen", "--id", "k1", "--out"])
                .arg(d.join("keys")),
        );
        fs::write(d.join("policy.toml"), policy).unwrap();
        let config = d.join("jitsudod.toml");
        fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndatabase = \"{database}\"\npolicy = \"policy.toml\"\nactive_key = \"k1\"\n{top}\
                 [[signing_key]]\nfile = \"keys/k1.key\"\n[limits]\n{limits}"
            ),
        )
        .unwrap();
        let admin = run_ok(
            Command::new(bin("jitsudod"))
                .args(["add-admin", "admin", "--config"])
                .arg(&config),
        );
        let admin_token = String::from_utf8(admin.stdout).unwrap().trim().to_string();
        let fake_now = fake_now.map(str::to_string);
        let (child, url) = spawn(&config, fake_now.as_deref(), d);
        Service {
            dir,
            child,
            url,
            admin_token,
            config,
            fake_now,
        }
    }

    /// `kill -9` the service (no chance to finish anything), then start it again on the
    /// same config and database. The port changes: read `url` again.
    pub fn kill9_and_restart(&mut self) {
        self.kill9();
        let (child, url) = spawn(&self.config, self.fake_now.as_deref(), self.dir.path());
        self.child = child;
        self.url = url;
    }

    /// SIGKILL the service and reap it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn trusted_block(&self) -> String {
        fs::read_to_string(self.dir.path().join("keys/k1.pub")).unwrap()
    }

    /// jitsudoctl with the service URL and a token in the environment.
    pub fn ctl(&self, token: &str) -> Command {
        let mut c = Command::new(bin("jitsudoctl"));
        c.env("JITSUDO_SERVICE", &self.url)
            .env("JITSUDO_TOKEN", token)
            .stdin(Stdio::null());
        c
    }

    pub fn add_approver(&self, name: &str, groups: &[&str]) -> String {
        let mut c = self.ctl(&self.admin_token);
        c.args(["approver", "add", name]);
        for g in groups {
            c.args(["--group", g]);
        }
        String::from_utf8(run_ok(&mut c).stdout)
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }

    pub fn get_json(&self, path: &str, token: &str) -> serde_json::Value {
        let mut resp = ureq::get(format!("{}{path}", self.url))
            .header("authorization", format!("Bearer {token}"))
            .call()
            .unwrap();
        resp.body_mut().read_json().unwrap()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The host: a mount namespace held by a `sleep`, entered with nsenter for each step.
pub struct Host {
    pub dir: TempDir,
    ns: Child,
    pub bin: PathBuf,
    _log: UnixDatagram,
    pub log_path: PathBuf,
    pub public_key: String,
}

impl Host {
    pub fn new(service: &Service, extra_config: &str) -> Host {
        let dir = TempDir::new("host");
        let d = dir.path().to_path_buf();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["bin", "etc-up", "etc-work", "lib-up", "lib-work"] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        fs::set_permissions(d.join("bin"), fs::Permissions::from_mode(0o755)).unwrap();
        let bin_path = d.join("bin/jitsudo");
        fs::copy(bin("jitsudo"), &bin_path).unwrap();
        fs::set_permissions(&bin_path, fs::Permissions::from_mode(0o4755)).unwrap();
        let log_path = d.join("log.sock");
        let log = UnixDatagram::bind(&log_path).unwrap();
        fs::set_permissions(&log_path, fs::Permissions::from_mode(0o666)).unwrap();
        // Drain the audit log so [log] require never finds the socket full.
        let reader = log.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while reader.recv(&mut buf).is_ok() {}
        });
        let ns = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sleep", "3600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare");
        let mut host = Host {
            dir,
            ns,
            bin: bin_path,
            _log: log,
            log_path,
            public_key: String::new(),
        };
        host.wait_for_namespace();
        let script = format!(
            "set -e
             mount -t overlay overlay -o lowerdir=/etc,upperdir={d}/etc-up,workdir={d}/etc-work /etc
             mount -t overlay overlay -o lowerdir=/var/lib,upperdir={d}/lib-up,workdir={d}/lib-work /var/lib
             rm -rf /etc/jitsudo /var/lib/jitsudo
             mkdir -m 0755 /etc/jitsudo",
            d = d.display()
        );
        run_ok(host.ns_command("sh").args(["-c", &script]));
        for (name, uid) in USERS {
            host.append(
                "/etc/passwd",
                &format!("{name}:x:{uid}:{uid}:{name}:/tmp:/bin/sh\n"),
            );
            host.append("/etc/group", &format!("{name}:x:{uid}:\n"));
            host.append("/etc/shadow", &format!("{name}:!:20000:0:99999:7:::\n"));
        }
        host.write_config(service, HOST, extra_config);
        let out = run_ok(host.ns_command(&host.bin).arg("--enroll"));
        let text = String::from_utf8(out.stdout).unwrap();
        let add_line = text
            .lines()
            .find(|l| l.trim_start().starts_with("jitsudoctl host add"))
            .expect(&text)
            .trim()
            .to_string();
        host.public_key = add_line.rsplit(' ').next().unwrap().to_string();
        assert_eq!(
            add_line,
            format!("jitsudoctl host add {HOST} {}", host.public_key)
        );
        run_ok(
            service
                .ctl(&service.admin_token)
                .args(["host", "add", HOST, &host.public_key]),
        );
        host
    }

    fn wait_for_namespace(&self) {
        let mine = fs::read_link("/proc/self/ns/mnt").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
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

    pub fn write_config(&self, service: &Service, host: &str, extra: &str) {
        let text = format!(
            "host = \"{host}\"\nservice = \"{}\"\n{extra}\n[log]\nsyslog_socket = \"{}\"\n{}",
            service.url,
            self.log_path.display(),
            service.trusted_block()
        );
        let p = self.path("/etc/jitsudo/jitsudo.toml");
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    }

    pub fn ns_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.ns.id().to_string())
            .args(["-m", "--"])
            .arg(program);
        c.current_dir("/").stdin(Stdio::null());
        c
    }

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

    /// The setuid binary as `user`, with a minimal environment.
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

    /// `jitsudo --sync` as root.
    pub fn sync(&self) -> Outcome {
        Outcome::of(
            self.ns_command(&self.bin)
                .arg("--sync")
                .env_clear()
                .output()
                .unwrap(),
        )
    }

    pub fn host_key_text(&self) -> String {
        fs::read_to_string(self.path("/etc/jitsudo/host.key")).unwrap()
    }

    pub fn key_path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.ns.kill();
        let _ = self.ns.wait();
    }
}
