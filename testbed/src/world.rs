//! [`World`]: one host for one test, built by [`WorldBuilder`].

use std::fs;
use std::ops::Deref;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::service::Service;
use crate::{artifact, require_root, run_ok, run_with_input, LogReader, Namespace, Outcome};

/// The host name a world's configuration and grants use unless told otherwise.
pub const DEFAULT_HOST: &str = "web-01";

/// Where the helpers the setuid jitsudo runs are installed (a fixed path, compiled in).
pub const LIBEXEC: &str = "/usr/libexec/jitsudo";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The home directory in each test user's /etc/passwd line.
#[derive(Clone, Debug)]
pub enum Home {
    /// `/home/<name>`, not created: nothing the suite runs needs it.
    Nominal,
    /// The same existing directory for every user (e.g. `/tmp`).
    Shared(String),
    /// `<dir>/home/<name>`, created and owned by the user (sshd wants a real one).
    Own,
}

/// What [`World::builder`] collects; [`WorldBuilder::build`] makes it, in a fixed
/// order (see there).
#[must_use]
pub struct WorldBuilder<'a> {
    tag: String,
    host: String,
    overlays: Vec<(String, String)>,
    private_run: bool,
    users: Vec<(String, u32)>,
    home: Home,
    password: String,
    groups: Vec<(String, u32, Vec<String>)>,
    jitsudo: bool,
    ctl: bool,
    pam_module: bool,
    helpers: Vec<String>,
    signing_key: Option<String>,
    trusted: String,
    top: String,
    log_socket_mode: Option<u32>,
    pam_services: Vec<(String, String)>,
    service: Option<&'a Service>,
}

impl<'a> WorldBuilder<'a> {
    /// The `host = ` of the configuration, and the `--host` of [`World::mint`].
    pub fn host(mut self, host: &str) -> Self {
        self.host = host.to_string();
        self
    }

    /// One more overlay: `target` (a directory) becomes writable inside the world and
    /// stays unchanged outside; `name` names its upper directory, `<dir>/<name>-up`.
    /// /etc and /var/lib always are; /usr is when a helper is installed.
    pub fn overlay(mut self, target: &str, name: &str) -> Self {
        if !self.overlays.iter().any(|(t, _)| t == target) {
            self.overlays.push((target.to_string(), name.to_string()));
        }
        self
    }

    /// A tmpfs on /run, with /run/sshd (sshd's privilege separation directory).
    pub fn private_run(mut self) -> Self {
        self.private_run = true;
        self
    }

    /// Test users, (name, uid): each gets a passwd line, a group of the same name and
    /// id, and a shadow line with a locked password (see [`Self::password`]).
    pub fn users(mut self, users: &[(&str, u32)]) -> Self {
        self.users
            .extend(users.iter().map(|(n, u)| (n.to_string(), *u)));
        self
    }

    /// The users' home directories; [`Home::Nominal`] unless told.
    pub fn home(mut self, home: Home) -> Self {
        self.home = home;
        self
    }

    /// The password field of the users' shadow lines: `!` (locked: no password and no
    /// key login) unless told. `*` is no valid password either, but sshd does not take
    /// it for a locked account, so public-key logins work.
    pub fn password(mut self, field: &str) -> Self {
        self.password = field.to_string();
        self
    }

    /// A supplementary group with `members`, after the users' own.
    pub fn group(mut self, name: &str, gid: u32, members: &[&str]) -> Self {
        let members = members.iter().map(|m| m.to_string()).collect();
        self.groups.push((name.to_string(), gid, members));
        self
    }

    /// A root-owned setuid copy of `jitsudo` at `<dir>/bin/jitsudo` (outside /root, so
    /// the test users can reach it); [`World::jitsudo_path`].
    pub fn setuid_jitsudo(mut self) -> Self {
        self.jitsudo = true;
        self
    }

    /// A copy of `jitsudoctl` at `<dir>/bin/jitsudoctl`; [`World::ctl_path`].
    pub fn ctl(mut self) -> Self {
        self.ctl = true;
        self
    }

    /// A root-owned copy of pam_jitsudo.so at `<dir>/lib/pam_jitsudo.so`; `MODULE` in
    /// a [`Self::pam_service`] stack stands for it.
    pub fn pam_module(mut self) -> Self {
        self.pam_module = true;
        self
    }

    /// Install the workspace artifact `name` (jitsudo-net, jitsudo-nss,
    /// jitsudo-auth) at `/usr/libexec/jitsudo/<name>`, with /usr an overlay.
    pub fn helper(mut self, name: &str) -> Self {
        self.helpers.push(name.to_string());
        self.overlay("/usr", "usr")
    }

    /// Generate a signing key `<dir>/keys/<id>.key` with `jitsudoctl keygen` and trust
    /// it in the configuration; [`World::key`], [`World::mint`].
    pub fn signing_key(mut self, id: &str) -> Self {
        self.signing_key = Some(id.to_string());
        self
    }

    /// More `[[trusted_key]]` text for the configuration (a service's public key, say).
    pub fn trust(mut self, block: &str) -> Self {
        self.trusted.push_str(block);
        self
    }

    /// Configuration keys before the `[log]` table.
    pub fn config(mut self, top: &str) -> Self {
        self.top.push_str(top);
        self
    }

    /// Permission bits for the syslog socket (by default what bind(2) and the umask
    /// make: writable by root only).
    pub fn log_socket_mode(mut self, mode: u32) -> Self {
        self.log_socket_mode = Some(mode);
        self
    }

    /// `/etc/pam.d/<name>`; `MODULE` in `stack` stands for the installed pam_jitsudo.so.
    pub fn pam_service(mut self, name: &str, stack: &str) -> Self {
        self.pam_services
            .push((name.to_string(), stack.to_string()));
        self
    }

    /// Point the host at `service`: `service = URL` in the configuration, the service's
    /// signing key trusted, and, once built, the host enrolled (`jitsudo --enroll`) and
    /// registered (`jitsudoctl host add`). Needs [`Self::setuid_jitsudo`] and the
    /// jitsudo-net helper.
    pub fn service(mut self, service: &'a Service) -> Self {
        self.trusted.push_str(&service.trusted_block());
        self.service = Some(service);
        self
    }

    /// Make the world. Every artifact is looked up (and checked, see
    /// [`crate::artifact`]) before anything is created, so a missing or stale build
    /// leaves nothing behind. Then, in order: the directory `/tmp/<tag>-<pid>-<n>` and
    /// the copies of the binaries in it; the syslog socket `<dir>/log.sock`, read from
    /// now on; the namespace and its overlays (and /run); an empty /etc/jitsudo and no
    /// /var/lib/jitsudo; the helpers; users and groups; the signing key; the
    /// configuration; the PAM services; enrollment with the service.
    #[track_caller]
    pub fn build(self) -> World {
        require_root("the system tests must run as root: they build private mount namespaces");
        let mut copies: Vec<(PathBuf, &str, u32)> = Vec::new();
        if self.jitsudo {
            copies.push((artifact("jitsudo"), "bin/jitsudo", 0o4755));
        }
        if self.ctl {
            copies.push((artifact("jitsudoctl"), "bin/jitsudoctl", 0o755));
        }
        if self.pam_module {
            copies.push((artifact("libpam_jitsudo.so"), "lib/pam_jitsudo.so", 0o644));
        }
        let helpers: Vec<(PathBuf, String)> = self
            .helpers
            .iter()
            .map(|h| (artifact(h), h.clone()))
            .collect();
        let keygen = self.signing_key.as_ref().map(|_| artifact("jitsudoctl"));
        assert!(
            self.service.is_none() || self.jitsudo,
            "enrolling with a service needs setuid_jitsudo()"
        );

        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = PathBuf::from(format!("/tmp/{}-{}-{n}", self.tag, std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for sub in ["bin", "lib", "keys", "home"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        for sub in [".", "bin", "lib", "home"] {
            fs::set_permissions(dir.join(sub), fs::Permissions::from_mode(0o755)).unwrap();
        }
        for (from, to, mode) in &copies {
            let to = dir.join(to);
            fs::copy(from, &to)
                .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
            fs::set_permissions(&to, fs::Permissions::from_mode(*mode)).unwrap();
        }

        let log_path = dir.join("log.sock");
        let log = LogReader::bind(&log_path);
        if let Some(mode) = self.log_socket_mode {
            fs::set_permissions(&log_path, fs::Permissions::from_mode(mode)).unwrap();
        }

        let mut world = World {
            ns: Namespace::new(&dir),
            log,
            log_path,
            host: self.host.clone(),
            jitsudo: self.jitsudo.then(|| dir.join("bin/jitsudo")),
            ctl: self.ctl.then(|| dir.join("bin/jitsudoctl")),
            module: self.pam_module.then(|| dir.join("lib/pam_jitsudo.so")),
            key: None,
            trusted_block: self.trusted.clone(),
            service_url: self.service.map(|s| s.url.clone()),
            public_key: None,
            usr_overlay: self.overlays.iter().any(|(t, _)| t == "/usr"),
            dir,
        };

        let overlays: Vec<(&str, &str)> = self
            .overlays
            .iter()
            .map(|(t, n)| (t.as_str(), n.as_str()))
            .collect();
        world.mount_overlays(&overlays);
        let mut script = String::new();
        if self.private_run {
            script.push_str("mount -t tmpfs -o mode=0755 tmpfs /run\nmkdir -m 0755 /run/sshd\n");
        }
        script.push_str("rm -rf /etc/jitsudo /var/lib/jitsudo\nmkdir -m 0755 /etc/jitsudo\n");
        if world.usr_overlay {
            script.push_str(&format!("mkdir -p -m 0755 {LIBEXEC}\n"));
        }
        world.sh(&script);
        for (built, name) in &helpers {
            world.copy_helper(built, name);
        }

        for (name, uid) in &self.users {
            let home = match &self.home {
                Home::Nominal => format!("/home/{name}"),
                Home::Shared(path) => path.clone(),
                Home::Own => {
                    let home = world.dir.join("home").join(name);
                    fs::create_dir_all(&home).unwrap();
                    std::os::unix::fs::chown(&home, Some(*uid), Some(*uid)).unwrap();
                    home.display().to_string()
                }
            };
            world.append(
                "/etc/passwd",
                &format!("{name}:x:{uid}:{uid}:{name}:{home}:/bin/sh\n"),
            );
            world.append("/etc/group", &format!("{name}:x:{uid}:\n"));
            world.append(
                "/etc/shadow",
                &format!("{name}:{}:20000:0:99999:7:::\n", self.password),
            );
        }
        for (name, gid, members) in &self.groups {
            world.append(
                "/etc/group",
                &format!("{name}:x:{gid}:{}\n", members.join(",")),
            );
        }

        if let (Some(id), Some(ctl)) = (&self.signing_key, &keygen) {
            let out = run_ok(
                Command::new(ctl)
                    .args(["keygen", "--id", id, "--out"])
                    .arg(world.dir.join("keys")),
            );
            // Generated keys first: the order the suites always wrote them in.
            let generated = String::from_utf8(out.stdout).unwrap();
            world.trusted_block = format!("{generated}{}", world.trusted_block);
            world.key = Some(world.dir.join(format!("keys/{id}.key")));
        }
        world.write_config(&self.top);
        for (name, stack) in &self.pam_services {
            world.pam_service(name, stack);
        }
        if let Some(service) = self.service {
            world.enroll(service);
        }
        world
    }
}

/// One test's host: a private mount namespace (Deref: [`Namespace`]'s `sh`, `path`,
/// `write_file`, ...) with what the [`WorldBuilder`] put in it, and the syslog
/// socket its configuration names, read all along. Dropping it ends the namespace and
/// removes its directory.
pub struct World {
    ns: Namespace,
    /// Everything sent to the world's syslog socket.
    pub log: LogReader,
    /// The syslog socket named in the configuration.
    pub log_path: PathBuf,
    /// The world's host directory, `/tmp/<tag>-<pid>-<n>`, reachable inside and out.
    pub dir: PathBuf,
    /// The configuration's `host = `.
    pub host: String,
    /// The `[[trusted_key]]` text of the configuration.
    pub trusted_block: String,
    jitsudo: Option<PathBuf>,
    ctl: Option<PathBuf>,
    module: Option<PathBuf>,
    key: Option<PathBuf>,
    service_url: Option<String>,
    public_key: Option<String>,
    usr_overlay: bool,
}

impl Deref for World {
    type Target = Namespace;

    fn deref(&self) -> &Namespace {
        &self.ns
    }
}

impl World {
    /// Start describing a world; `tag` names its directory, `/tmp/<tag>-<pid>-<n>`.
    pub fn builder<'a>(tag: &str) -> WorldBuilder<'a> {
        WorldBuilder {
            tag: tag.to_string(),
            host: DEFAULT_HOST.to_string(),
            overlays: vec![
                ("/etc".to_string(), "etc".to_string()),
                ("/var/lib".to_string(), "lib".to_string()),
            ],
            private_run: false,
            users: Vec::new(),
            home: Home::Nominal,
            password: "!".to_string(),
            groups: Vec::new(),
            jitsudo: false,
            ctl: false,
            pam_module: false,
            helpers: Vec::new(),
            signing_key: None,
            trusted: String::new(),
            top: String::new(),
            log_socket_mode: None,
            pam_services: Vec::new(),
            service: None,
        }
    }

    /// The setuid copy of jitsudo ([`WorldBuilder::setuid_jitsudo`]).
    #[track_caller]
    pub fn jitsudo_path(&self) -> &Path {
        self.jitsudo
            .as_deref()
            .expect("the world was built without setuid_jitsudo()")
    }

    /// The copy of jitsudoctl ([`WorldBuilder::ctl`]), else the built one.
    pub fn ctl_path(&self) -> PathBuf {
        self.ctl.clone().unwrap_or_else(|| artifact("jitsudoctl"))
    }

    /// The installed pam_jitsudo.so ([`WorldBuilder::pam_module`]).
    #[track_caller]
    pub fn module_path(&self) -> &Path {
        self.module
            .as_deref()
            .expect("the world was built without pam_module()")
    }

    /// The signing key ([`WorldBuilder::signing_key`]).
    #[track_caller]
    pub fn key(&self) -> &Path {
        self.key
            .as_deref()
            .expect("the world was built without signing_key()")
    }

    /// The host's public key, printed by `jitsudo --enroll` ([`WorldBuilder::service`]).
    #[track_caller]
    pub fn public_key(&self) -> &str {
        self.public_key
            .as_deref()
            .expect("the world was built without service()")
    }

    /// Install the workspace artifact `name` at `/usr/libexec/jitsudo/<name>`; the
    /// world must have been built with a helper (so /usr is an overlay).
    #[track_caller]
    pub fn install_helper(&self, name: &str) {
        self.copy_helper(&artifact(name), name);
    }

    #[track_caller]
    fn copy_helper(&self, built: &Path, name: &str) {
        // Fail closed: without the overlay this would write to the host's /usr.
        assert!(
            self.usr_overlay,
            "installing {name}: /usr is not an overlay in this world (build it with helper())"
        );
        let installed = self.path(&format!("{LIBEXEC}/{name}"));
        fs::copy(built, &installed)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", built.display(), installed.display()));
        fs::set_permissions(&installed, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// The `[log]` body of the default configuration: the world's syslog socket.
    pub fn log_table(&self) -> String {
        format!("syslog_socket = \"{}\"\n", self.log_path.display())
    }

    /// /etc/jitsudo/jitsudo.toml: `host = `, the service if there is one, `top`, the
    /// `[log]` table naming the world's socket, then the trusted keys.
    pub fn write_config(&self, top: &str) {
        self.write_config_with_log(top, &self.log_table());
    }

    /// [`Self::write_config`] with `log` as the body of the `[log]` table.
    pub fn write_config_with_log(&self, top: &str, log: &str) {
        let top = match &self.service_url {
            Some(url) => format!("service = \"{url}\"\n{top}"),
            None => top.to_string(),
        };
        self.write_config_with(&self.host, &top, log, &self.trusted_block);
    }

    /// /etc/jitsudo/jitsudo.toml from its parts, as they are.
    pub fn write_config_with(&self, host: &str, top: &str, log: &str, trusted: &str) {
        let text = format!("host = \"{host}\"\n{top}\n[log]\n{log}\n{trusted}");
        self.write_file("/etc/jitsudo/jitsudo.toml", &text, 0o644);
    }

    /// `/etc/pam.d/<service>`; `MODULE` in `stack` stands for the installed module.
    #[track_caller]
    pub fn pam_service(&self, service: &str, stack: &str) {
        let text = if stack.contains("MODULE") {
            stack.replace("MODULE", &self.module_path().display().to_string())
        } else {
            stack.to_string()
        };
        self.write_file(&format!("/etc/pam.d/{service}"), &text, 0o644);
    }

    /// Make /dev/log (where programs log without a configured socket) a socket this
    /// test reads: an overlay on /dev inside the namespace, with /dev/log a symlink.
    pub fn capture_dev_log(&self) -> LogReader {
        let path = self.dir.join("devlog.sock");
        let reader = LogReader::bind(&path);
        self.mount_overlays(&[("/dev", "dev")]);
        self.sh(&format!("ln -sf {} /dev/log", path.display()));
        reader
    }

    /// `jitsudoctl mint` with the world's key for `user` on the world's host (unless
    /// `args` name a `--host`), plus `args`.
    #[track_caller]
    pub fn mint(&self, user: &str, args: &[&str]) -> Minted {
        self.mint_with_key(self.key(), user, args)
    }

    /// [`Self::mint`] with another key.
    #[track_caller]
    pub fn mint_with_key(&self, key: &Path, user: &str, args: &[&str]) -> Minted {
        let mut cmd = Command::new(self.ctl_path());
        cmd.arg("mint").arg("--key").arg(key).args(["--user", user]);
        if !args.contains(&"--host") {
            cmd.args(["--host", &self.host]);
        }
        let out = run_ok(cmd.args(args));
        let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
        // stderr: "grant <id> for <user> on <host>: valid …"
        let stderr = String::from_utf8(out.stderr).unwrap();
        let id = stderr
            .lines()
            .find_map(|l| l.strip_prefix("grant "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no grant id in {stderr:?}"))
            .to_string();
        Minted { token, id }
    }

    /// The setuid jitsudo as `user` (real uid and gid, and the user's groups), with a
    /// minimal environment.
    #[track_caller]
    pub fn jitsudo(&self, user: &str) -> Command {
        self.as_user(user, self.jitsudo_path())
    }

    /// Run the setuid jitsudo as `user` with `args`.
    pub fn run(&self, user: &str, args: &[&str]) -> Outcome {
        Outcome::of(self.jitsudo(user).args(args).output().unwrap())
    }

    /// Run the setuid jitsudo as `user` with `args` and `stdin` on its standard input.
    pub fn jitsudo_as(&self, user: &str, args: &[&str], stdin: &str) -> Outcome {
        run_with_input(self.jitsudo(user).args(args), stdin)
    }

    /// `jitsudo --import -` as `user`, the token on standard input.
    pub fn import(&self, user: &str, token: &str) -> Outcome {
        self.jitsudo_as(user, &["--import", "-"], token)
    }

    /// [`Self::import`], asserting success; returns the grant id.
    #[track_caller]
    pub fn import_ok(&self, user: &str, token: &str) -> String {
        let out = self.import(user, token);
        assert_eq!(out.code, 0, "import failed: {}", out.stderr);
        let rest = out
            .stdout
            .strip_prefix("imported grant ")
            .expect(&out.stdout);
        rest.split(':').next().unwrap().to_string()
    }

    /// `jitsudo --enroll` as root, then `jitsudoctl host add` with the key it printed.
    #[track_caller]
    fn enroll(&mut self, service: &Service) {
        let out = run_ok(self.ns_command(self.jitsudo_path()).arg("--enroll"));
        let text = String::from_utf8(out.stdout).unwrap();
        let add_line = text
            .lines()
            .find(|l| l.trim_start().starts_with("jitsudoctl host add"))
            .expect(&text)
            .trim()
            .to_string();
        let public_key = add_line.rsplit(' ').next().unwrap().to_string();
        assert_eq!(
            add_line,
            format!("jitsudoctl host add {} {public_key}", self.host)
        );
        run_ok(
            service
                .ctl(&service.admin_token)
                .args(["host", "add", &self.host, &public_key]),
        );
        self.public_key = Some(public_key);
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // The namespace (and its mounts) goes with its last process; the overlay
        // directories under `dir` are in use until then.
        self.ns.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A minted grant.
#[derive(Clone, Debug)]
pub struct Minted {
    /// The PASETO token, as `jitsudoctl mint` printed it.
    pub token: String,
    /// The grant id.
    pub id: String,
}
