//! A host with several service URLs (`service = [...]`) fails over: the real setuid
//! `jitsudo`, its network helper and a real `jitsudod`, with a dead replica listed first.

mod common;

use std::net::TcpListener;

use common::world::{Expect, Host, Service};
use common::TempDir;

const POLICY: &str = r#"
[[rule]]
name = "auto-id"
commands = ["/usr/bin/id *"]
decision = "auto"
max_duration = "1h"
"#;

/// A loopback URL nothing listens on: bind, learn the port, close.
fn dead_replica() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

fn list_services(host: &Host, svc: &Service, urls: &[String]) {
    let list: Vec<String> = urls.iter().map(|u| format!("{u:?}")).collect();
    let text = format!(
        "host = \"{}\"\nservice = [{}]\n[log]\nsyslog_socket = \"{}\"\n{}",
        common::world::HOST,
        list.join(", "),
        host.log_path.display(),
        svc.trusted_block()
    );
    host.write_file("/etc/jitsudo/jitsudo.toml", &text, 0o644);
}

#[test]
fn request_and_sync_go_to_the_next_replica_when_the_first_is_down() {
    common::require_root();
    let dir = TempDir::new("failover-db");
    let svc = Service::start(
        &format!("sqlite://{}/jitsudod.db", dir.path().display()),
        POLICY,
        None,
    );
    let host = Host::new(&svc, "");
    let dead = dead_replica();
    list_services(&host, &svc, &[dead.clone(), svc.url.clone()]);

    let out = host
        .run(
            "alice",
            &[
                "--request",
                "--reason",
                "INC-7",
                "--run",
                "--",
                "/usr/bin/id",
                "-u",
            ],
        )
        .ok();
    assert_eq!(out.stdout.trim(), "0", "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("{dead}: cannot reach the approval service"))
            && out.stderr.contains(&format!("trying {}", svc.url)),
        "{out:?}"
    );

    let out = host.sync().ok();
    assert!(out.stdout.contains("synced"), "{out:?}");
    assert!(
        out.stderr.contains(&format!("trying {}", svc.url)),
        "{out:?}"
    );
}

#[test]
fn with_every_replica_down_the_request_fails_with_the_reason() {
    common::require_root();
    let dir = TempDir::new("failover-db");
    let svc = Service::start(
        &format!("sqlite://{}/jitsudod.db", dir.path().display()),
        POLICY,
        None,
    );
    let host = Host::new(&svc, "");
    list_services(&host, &svc, &[dead_replica(), dead_replica()]);
    let out = host.run(
        "alice",
        &["--request", "--reason", "INC-8", "--", "/usr/bin/id", "-u"],
    );
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("cannot reach the approval service"),
        "{out:?}"
    );
}
