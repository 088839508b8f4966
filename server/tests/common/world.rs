//! One test world: a running `jitsudod` (real binary, real HTTP on loopback) and a host
//! in a private mount namespace (overlays over /etc, /var/lib and /usr, test users, a
//! root-owned setuid copy of `jitsudo` outside /root, a syslog socket the test binds),
//! enrolled and registered with the service.
//!
//! `Service` and `Host` are this suite's facades over jitsudo-testbed's `Service` and
//! `World` (the builder every system suite uses; see its crate docs).

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

use jitsudo_testbed::{artifact, Home, World};
#[allow(unused_imports)] // Not every suite that includes this module runs a command.
pub use jitsudo_testbed::{run_ok, Outcome};

use super::TempDir;

pub const HOST: &str = "web-01";
pub const USERS: &[(&str, u32)] = &[("alice", 42101), ("bob", 42102), ("carol", 42103)];

/// A binary of the workspace, through jitsudo-testbed's one lookup (`artifact`: a
/// missing or stale one fails the test).
pub fn bin(name: &str) -> PathBuf {
    artifact(name)
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

/// The service, in a directory of its own (`dir`: config, policy, keys, service.log).
/// `url`, `admin_token`, `config`, `ctl`, `add_approver`, `kill9_and_restart`, ... are
/// the testbed service's.
pub struct Service {
    // Before `dir`: fields drop in order, and the service must be stopped before its
    // directory goes.
    service: jitsudo_testbed::Service,
    pub dir: TempDir,
}

impl Deref for Service {
    type Target = jitsudo_testbed::Service;

    fn deref(&self) -> &jitsudo_testbed::Service {
        &self.service
    }
}

impl DerefMut for Service {
    fn deref_mut(&mut self) -> &mut jitsudo_testbed::Service {
        &mut self.service
    }
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
        let service = jitsudo_testbed::Service::builder(database, policy)
            .fake_now(fake_now)
            .limits(limits)
            .config(top)
            .start(dir.path());
        Service { service, dir }
    }

    pub fn get_json(&self, path: &str, token: &str) -> serde_json::Value {
        let mut resp = ureq::get(format!("{}{path}", self.url))
            .header("authorization", format!("Bearer {token}"))
            .call()
            .unwrap();
        resp.body_mut().read_json().unwrap()
    }
}

/// The host: a world enrolled with the service. `ns_command`, `sh`, `path`, `append`,
/// `write_file`, `jitsudo`, `run`, ... are the world's.
pub struct Host {
    world: World,
    pub dir: TempDir,
    pub bin: PathBuf,
    pub log_path: PathBuf,
    pub public_key: String,
}

impl Deref for Host {
    type Target = World;

    fn deref(&self) -> &World {
        &self.world
    }
}

impl Host {
    pub fn new(service: &Service, extra_config: &str) -> Host {
        let world = World::builder("jitsudod-host")
            .host(HOST)
            .setuid_jitsudo()
            // The network helper the setuid jitsudo runs, unprivileged, for --request
            // and --sync.
            .helper("jitsudo-net")
            .users(USERS)
            .home(Home::Shared("/tmp".to_string()))
            .config(extra_config)
            // Read the audit log all along so [log] require never finds the socket full.
            .log_socket_mode(0o666)
            .service(service)
            .build();
        Host {
            dir: TempDir(world.dir.clone()),
            bin: world.jitsudo_path().to_path_buf(),
            log_path: world.log_path.clone(),
            public_key: world.public_key().to_string(),
            world,
        }
    }

    pub fn write_config(&self, service: &Service, host: &str, extra: &str) {
        self.world.write_config_with(
            host,
            &format!("service = \"{}\"\n{extra}", service.url),
            &self.world.log_table(),
            &service.trusted_block(),
        );
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
        std::fs::read_to_string(self.path("/etc/jitsudo/host.key")).unwrap()
    }

    pub fn key_path(&self) -> &Path {
        self.dir.path()
    }
}
