//! One test world: a running `jitsudod` (real binary, real HTTP on loopback) and a host
//! in a private mount namespace (overlays over /etc and /var/lib, test users, a
//! root-owned setuid copy of `jitsudo` outside /root, a syslog socket the test binds),
//! enrolled and registered with the service. The namespace machinery is
//! jitsudo-testbed's, shared with the other system test suites.

use std::fs;
use std::io::{BufRead, BufReader};
use std::ops::Deref;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub use jitsudo_testbed::{run_ok, Outcome};
use jitsudo_testbed::{LogReader, Namespace};

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

/// Expectations on an [`Outcome`], returning it for further checks.
pub trait Expect {
    /// Exit 0.
    fn ok(self) -> Self;
    /// Exit 1, with `needle` on stderr.
    fn denied(self, needle: &str) -> Self;
}

impl Expect for Outcome {
    #[track_caller]
    fn ok(self) -> Outcome {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }

    #[track_caller]
    fn denied(self, needle: &str) -> Outcome {
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
/// `ns_command`, `sh`, `path`, `append` and `write_file` come from the namespace.
pub struct Host {
    // Before `dir`: fields drop in order, and the holder must be gone (its overlays
    // unmounted) before the directory under them is removed.
    ns: Namespace,
    pub dir: TempDir,
    pub bin: PathBuf,
    _log: LogReader,
    pub log_path: PathBuf,
    pub public_key: String,
}

impl Deref for Host {
    type Target = Namespace;

    fn deref(&self) -> &Namespace {
        &self.ns
    }
}

impl Host {
    pub fn new(service: &Service, extra_config: &str) -> Host {
        let dir = TempDir::new("host");
        let d = dir.path().to_path_buf();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir_all(d.join("bin")).unwrap();
        fs::set_permissions(d.join("bin"), fs::Permissions::from_mode(0o755)).unwrap();
        let bin_path = d.join("bin/jitsudo");
        fs::copy(bin("jitsudo"), &bin_path).unwrap();
        fs::set_permissions(&bin_path, fs::Permissions::from_mode(0o4755)).unwrap();
        let log_path = d.join("log.sock");
        // Read the audit log all along so [log] require never finds the socket full.
        let log = LogReader::bind(&log_path);
        fs::set_permissions(&log_path, fs::Permissions::from_mode(0o666)).unwrap();
        let mut host = Host {
            ns: Namespace::new(&d),
            dir,
            bin: bin_path,
            _log: log,
            log_path,
            public_key: String::new(),
        };
        host.mount_overlays(&[("/etc", "etc"), ("/var/lib", "lib"), ("/usr", "usr")]);
        host.sh("rm -rf /etc/jitsudo /var/lib/jitsudo
                 mkdir -m 0755 /etc/jitsudo
                 mkdir -p -m 0755 /usr/libexec/jitsudo");
        // The network helper the setuid jitsudo runs, unprivileged, for --request and --sync.
        let helper = host.path("/usr/libexec/jitsudo/jitsudo-net");
        fs::copy(bin("jitsudo-net"), &helper).unwrap();
        fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
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

    pub fn write_config(&self, service: &Service, host: &str, extra: &str) {
        let text = format!(
            "host = \"{host}\"\nservice = \"{}\"\n{extra}\n[log]\nsyslog_socket = \"{}\"\n{}",
            service.url,
            self.log_path.display(),
            service.trusted_block()
        );
        self.write_file("/etc/jitsudo/jitsudo.toml", &text, 0o644);
    }

    /// The setuid binary as `user`, with a minimal environment.
    pub fn jitsudo(&self, user: &str) -> Command {
        self.as_user(user, &self.bin)
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
