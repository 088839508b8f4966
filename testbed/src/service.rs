//! [`Service`]: a running `jitsudod` (the real binary, real HTTP on loopback) that a
//! [`crate::World`] can enroll with.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::{artifact, run_ok};

/// What [`Service::builder`] collects; [`ServiceBuilder::start`] starts it.
#[must_use]
pub struct ServiceBuilder {
    database: String,
    policy: String,
    fake_now: Option<String>,
    limits: String,
    top: String,
}

impl ServiceBuilder {
    /// `jitsudod serve --fake-now TIME`: the policy's clock reads `time`.
    pub fn fake_now(mut self, time: Option<&str>) -> Self {
        self.fake_now = time.map(str::to_string);
        self
    }

    /// The body of the `[limits]` table. By default the rate limits are far above what
    /// a test sends.
    pub fn limits(mut self, limits: &str) -> Self {
        self.limits = limits.to_string();
        self
    }

    /// More top-level keys of jitsudod.toml.
    pub fn config(mut self, top: &str) -> Self {
        self.top = top.to_string();
        self
    }

    /// Write `dir`/jitsudod.toml, `dir`/policy.toml and a signing key `k1` in
    /// `dir`/keys, add an admin `admin`, and start `jitsudod serve`. `dir` must exist
    /// and outlive the service (the caller removes it).
    #[track_caller]
    pub fn start(self, dir: &Path) -> Service {
        run_ok(
            Command::new(artifact("jitsudoctl"))
                .args(["keygen", "--id", "k1", "--out"])
                .arg(dir.join("keys")),
        );
        fs::write(dir.join("policy.toml"), &self.policy).unwrap();
        let config = dir.join("jitsudod.toml");
        fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndatabase = \"{}\"\npolicy = \"policy.toml\"\nactive_key = \"k1\"\n{}\
                 [[signing_key]]\nfile = \"keys/k1.key\"\n[limits]\n{}",
                self.database, self.top, self.limits
            ),
        )
        .unwrap();
        let admin = run_ok(
            Command::new(artifact("jitsudod"))
                .args(["add-admin", "admin", "--config"])
                .arg(&config),
        );
        let admin_token = String::from_utf8(admin.stdout).unwrap().trim().to_string();
        let (child, url) = spawn(&config, self.fake_now.as_deref(), dir);
        Service {
            child,
            url,
            admin_token,
            config,
            dir: dir.to_path_buf(),
            fake_now: self.fake_now,
        }
    }
}

/// A running jitsudod; killed on drop.
pub struct Service {
    child: Child,
    /// `http://127.0.0.1:PORT`, as the service printed it.
    pub url: String,
    /// The bearer token of the admin `admin`.
    pub admin_token: String,
    /// Its jitsudod.toml.
    pub config: PathBuf,
    dir: PathBuf,
    fake_now: Option<String>,
}

/// Start `jitsudod serve` and wait for its "listening on URL" line; stderr goes to
/// `dir`/service.log (appended, so a restart keeps the earlier log).
fn spawn(config: &Path, fake_now: Option<&str>, dir: &Path) -> (Child, String) {
    serve(config, fake_now, &dir.join("service.log"))
}

/// `jitsudod serve --config CONFIG [--fake-now TIME]`, waited for until it prints its
/// "listening on URL" line, with stderr appended to `log`: the child (the caller kills
/// it) and the URL. For suites that write their own configs, such as several replicas
/// on one database; most want [`Service::builder`].
#[track_caller]
pub fn serve(config: &Path, fake_now: Option<&str>, log_path: &Path) -> (Child, String) {
    let mut cmd = Command::new(artifact("jitsudod"));
    cmd.args(["serve", "--config"]).arg(config);
    if let Some(t) = fake_now {
        cmd.args(["--fake-now", t]);
    }
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
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
            fs::read_to_string(log_path).unwrap_or_default()
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
    /// Describe a service with `policy` (policy.toml's text) on `database` (a sqlx URL).
    pub fn builder(database: &str, policy: &str) -> ServiceBuilder {
        ServiceBuilder {
            database: database.to_string(),
            policy: policy.to_string(),
            fake_now: None,
            limits: "user_requests_per_minute = 1000\nhost_requests_per_minute = 100000\n"
                .to_string(),
            top: String::new(),
        }
    }

    /// The directory given to [`ServiceBuilder::start`].
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `kill -9` the service (no chance to finish anything), then start it again on the
    /// same config and database. The port changes: read `url` again.
    pub fn kill9_and_restart(&mut self) {
        self.kill9();
        let (child, url) = spawn(&self.config, self.fake_now.as_deref(), &self.dir);
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

    /// The `[[trusted_key]]` block of the service's signing key, for a host's config.
    pub fn trusted_block(&self) -> String {
        fs::read_to_string(self.dir.join("keys/k1.pub")).unwrap()
    }

    /// jitsudoctl with the service URL and a token in the environment.
    pub fn ctl(&self, token: &str) -> Command {
        let mut c = Command::new(artifact("jitsudoctl"));
        c.env("JITSUDO_SERVICE", &self.url)
            .env("JITSUDO_TOKEN", token)
            .stdin(Stdio::null());
        c
    }

    /// `jitsudoctl approver add NAME [--group G]...` as the admin; returns the
    /// approver's token.
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

    /// What the service wrote to stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("service.log")).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
