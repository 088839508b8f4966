//! The builder itself: what a world has inside, that the host has none of it, and that
//! nothing is left when it is dropped. Runs as root, with the binaries of
//! `cargo build --workspace` (like every suite that uses the harness).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use jitsudo_testbed::{require_root, Home, Outcome, World, LIBEXEC};

const USER: (&str, u32) = ("tbuser", 47001);

/// The host's copy of a file, or None if it does not exist.
fn host_file(path: &str) -> Option<Vec<u8>> {
    fs::read(path).ok()
}

fn inside(world: &World, script: &str) -> String {
    String::from_utf8(world.sh(script).stdout).unwrap()
}

#[test]
fn a_world_has_what_it_was_built_with_and_the_host_none_of_it() {
    require_root("the test bed's own tests build mount namespaces: run them as root");
    let watched = [
        "/etc/passwd",
        "/etc/group",
        "/etc/shadow",
        "/etc/jitsudo/jitsudo.toml",
        "/etc/pam.d/testbed-check",
        "/usr/libexec/jitsudo/jitsudo-net",
    ];
    let before: Vec<_> = watched.iter().map(|p| host_file(p)).collect();

    let world = World::builder("jitsudo-testbed")
        .host("tb-01")
        .private_run()
        .users(&[USER])
        .home(Home::Own)
        .password("*")
        .group("tbadmins", 47100, &["tbuser"])
        .setuid_jitsudo()
        .helper("jitsudo-net")
        .signing_key("k1")
        .config("authenticate = true\n")
        .pam_service("testbed-check", "account required pam_permit.so\n")
        .build();
    let dir = world.dir.clone();
    let holder = world.pid();

    let home = dir.join("home/tbuser");
    assert!(inside(&world, "cat /etc/passwd").contains(&format!(
        "tbuser:x:47001:47001:tbuser:{}:/bin/sh\n",
        home.display()
    )));
    let meta = fs::metadata(&home).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 47001);
    let group = inside(&world, "cat /etc/group");
    assert!(group.contains("tbuser:x:47001:\n"), "{group}");
    assert!(group.contains("tbadmins:x:47100:tbuser\n"), "{group}");
    assert!(inside(&world, "cat /etc/shadow").contains("tbuser:*:20000:"));

    let config = inside(&world, "cat /etc/jitsudo/jitsudo.toml");
    assert!(
        config.starts_with("host = \"tb-01\"\nauthenticate = true\n"),
        "{config}"
    );
    assert!(
        config.contains(&format!(
            "[log]\nsyslog_socket = \"{}\"\n",
            world.log_path.display()
        )),
        "{config}"
    );
    assert!(config.contains(&world.trusted_block), "{config}");
    assert!(world.trusted_block.contains("[[trusted_key]]"), "{config}");
    assert!(world.key().is_file());
    assert_eq!(
        inside(&world, "cat /etc/pam.d/testbed-check"),
        "account required pam_permit.so\n"
    );

    let jitsudo = fs::metadata(world.jitsudo_path()).unwrap();
    assert_eq!(jitsudo.permissions().mode() & 0o7777, 0o4755);
    let helper = fs::metadata(world.path(&format!("{LIBEXEC}/jitsudo-net"))).unwrap();
    assert_eq!(helper.permissions().mode() & 0o7777, 0o755);
    // /run is a tmpfs of the world's own: the file system seen there is a tmpfs, and not
    // the host's /run (on a systemd host, /run is a tmpfs too, so its type alone says
    // nothing; findmnt lists both mounts there).
    assert_eq!(inside(&world, "stat -f -c %T /run").trim(), "tmpfs");
    let host_run = fs::metadata("/run").unwrap().dev();
    assert_ne!(
        inside(&world, "stat -c %d /run").trim(),
        host_run.to_string(),
        "/run is the world's own"
    );
    // The users are real users inside: setpriv finds them.
    let id = Outcome::of(world.as_user("tbuser", "id").output().unwrap());
    assert_eq!(id.code, 0, "{id:?}");
    assert!(id.stdout.contains("uid=47001(tbuser)"), "{id:?}");
    assert!(id.stdout.contains("47100(tbadmins)"), "{id:?}");

    // None of it is on the host.
    let during: Vec<_> = watched.iter().map(|p| host_file(p)).collect();
    assert_eq!(
        before, during,
        "the host's files changed while the world stood"
    );

    drop(world);
    assert!(!dir.exists(), "{} is left behind", dir.display());
    assert!(
        !Path::new(&format!("/proc/{holder}")).exists()
            || fs::read_to_string(format!("/proc/{holder}/comm")).unwrap_or_default() != "sleep\n",
        "the namespace holder is still running"
    );
    let after: Vec<_> = watched.iter().map(|p| host_file(p)).collect();
    assert_eq!(before, after, "the host's files changed");
}

#[test]
fn a_helper_is_never_installed_where_usr_is_the_hosts() {
    require_root("the test bed's own tests build mount namespaces: run them as root");
    let host_copy = format!("{LIBEXEC}/jitsudo-auth");
    let before = host_file(&host_copy);
    let world = World::builder("jitsudo-testbed").build();
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        world.install_helper("jitsudo-auth");
    }));
    let message = refused.expect_err("installed without a /usr overlay");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("/usr is not an overlay"), "{message}");
    assert_eq!(before, host_file(&host_copy));
}

#[test]
fn a_world_starts_with_an_empty_etc_jitsudo_and_no_state() {
    require_root("the test bed's own tests build mount namespaces: run them as root");
    let world = World::builder("jitsudo-testbed").build();
    let out = Command::new("nsenter")
        .args([
            "-t",
            &world.pid().to_string(),
            "-m",
            "--",
            "ls",
            "-A",
            "/etc/jitsudo",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    // Only the configuration the builder always writes.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "jitsudo.toml\n");
    assert!(!world.path("/var/lib/jitsudo").exists());
}
