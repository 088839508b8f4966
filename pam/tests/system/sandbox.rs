//! A private world for one test: a mount namespace (held open by a `sleep`) in which /etc,
//! /var/lib and /run are private (overlays and a tmpfs), with test users, a PAM service
//! file, /etc/jitsudo/jitsudo.toml, a root-owned copy of pam_jitsudo.so and of the
//! setuid jitsudo, and a syslog socket the test reads. The host's /etc/pam.d, sshd and
//! state are never touched.
//!
//! `Sandbox` is this suite's facade over jitsudo-testbed's `World` (the builder every
//! system suite uses; see its crate docs): the world's methods (`ns_command`, `sh`,
//! `path`, `write_file`, `pam_service`, `capture_dev_log`, ...) and its `log` are the
//! sandbox's.

use std::fs;
use std::ops::Deref;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

pub use jitsudo_testbed::{run_ok, Outcome};
use jitsudo_testbed::{run_with_input, Home, World};

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

pub fn require_root() {
    jitsudo_testbed::require_root(
        "the PAM module tests must run as root: they build private mount namespaces, \
         run pamtester and sshd in them, and install a setuid jitsudo there",
    );
}

/// The sandbox is its world plus the paths this suite's tests name (the world's
/// `write_config`, `pam_service` and `log` serve as they are).
pub struct Sandbox {
    world: World,
    pub dir: PathBuf,
    /// Root-owned copies of the artifacts under test.
    #[allow(dead_code)] // For tests; the world substitutes it for MODULE itself.
    pub module: PathBuf,
    pub jitsudo: PathBuf,
    #[allow(dead_code)] // For tests; the world mints with it itself.
    pub ctl: PathBuf,
    pub key: PathBuf,
    /// The socket named in the test config.
    #[allow(dead_code)] // For tests; the world names it in the config itself.
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
        let world = World::builder("pam-jitsudo-test")
            .host(HOST)
            .private_run()
            .pam_module()
            .setuid_jitsudo()
            .ctl()
            .users(USERS)
            // sshd wants a real home, and `*`: `!` would be a locked account to it,
            // refused even with a valid key.
            .home(Home::Own)
            .password("*")
            .group(EXEMPT_GROUP, 46100, &["jtadmin"])
            .signing_key("k1")
            .build();
        Sandbox {
            dir: world.dir.clone(),
            module: world.module_path().to_path_buf(),
            jitsudo: world.jitsudo_path().to_path_buf(),
            ctl: world.ctl_path(),
            key: world.key().to_path_buf(),
            log_path: world.log_path.clone(),
            world,
        }
    }

    /// Mint a token with the sandbox key (`jitsudoctl mint`); returns (token, grant id).
    pub fn mint(&self, user: &str, args: &[&str]) -> (String, String) {
        let minted = self.world.mint_with_key(&self.key, user, args);
        (minted.token, minted.id)
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
        run_with_input(self.as_user(user, &self.jitsudo).args(args), stdin)
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
        run_with_input(&mut cmd, stdin)
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
