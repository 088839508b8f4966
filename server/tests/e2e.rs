//! End to end over real HTTP: the real `jitsudod`, the real setuid `jitsudo` run as
//! real users in a private mount namespace, and `jitsudoctl` as approvers. The same
//! suite runs on SQLite and on a PostgreSQL server started for it.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::pg::Pg;
use common::world::{Expect, Host, Outcome, Service, HOST};
use common::TempDir;

const POLICY: &str = r#"
[[rule]]
name = "deny-shells"
commands = ["/bin/sh *"]
decision = "deny"

[[rule]]
name = "auto-id"
commands = ["/usr/bin/id *"]
decision = "auto"
max_duration = "1h"

[[rule]]
name = "two-person"
commands = ["/usr/bin/whoami"]
decision = "approve"
approvals = 2
approvers = ["alice", "bob", "group:sre"]

[[rule]]
name = "once"
commands = ["/bin/echo once"]
decision = "auto"
single_use = true

[[rule]]
name = "edit-app"
kind = "edit"
commands = ["/etc/jitsudo-app.conf"]
decision = "auto"

[[rule]]
name = "env-exec"
commands = ["/usr/bin/env /usr/bin/id -u"]
decision = "auto"
allow_exec = true

[[rule]]
name = "env-plain"
commands = ["/usr/bin/env /usr/bin/id -g"]
decision = "auto"

[[rule]]
name = "office-hours"
commands = ["/usr/bin/date"]
decision = "auto"
hours = "09:00-17:00"
timezone = "UTC"
"#;

/// The service's policy clock says 03:00 UTC: outside the office-hours rule.
const FAKE_NOW: &str = "2026-11-23T03:00:00Z";

#[test]
fn sqlite_end_to_end() {
    common::require_root();
    let dir = TempDir::new("e2e-db");
    suite(&format!("sqlite://{}/jitsudod.db", dir.path().display()));
}

#[test]
fn postgres_end_to_end() {
    let pg = Pg::start();
    suite(&pg.new_database());
}

fn pending_ids(svc: &Service, token: &str) -> Vec<String> {
    let list = svc.get_json("/v1/requests?pending=true", token);
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn wait_for_pending(svc: &Service, token: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ids = pending_ids(svc, token);
        if let [id] = &ids[..] {
            return id.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no single pending request: {ids:?}\n{}",
            svc.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ctl(svc: &Service, token: &str, args: &[&str]) -> Outcome {
    Outcome::of(svc.ctl(token).args(args).output().unwrap())
}

fn suite(database: &str) {
    let svc = Service::start(database, POLICY, Some(FAKE_NOW));
    let host = Host::new(&svc, "");
    let bob = svc.add_approver("bob", &[]);
    let carol = svc.add_approver("carol", &["sre"]);
    let alice = svc.add_approver("alice", &[]);

    // Automatic approval: the grant is issued, cached and run at once, then reusable.
    let out = host
        .run(
            "alice",
            &[
                "--request",
                "--reason",
                "INC-1",
                "--run",
                "--",
                "/usr/bin/id",
                "-u",
            ],
        )
        .ok();
    assert_eq!(out.stdout.trim(), "0", "{out:?}");
    assert_eq!(host.run("alice", &["id", "-u"]).ok().stdout.trim(), "0");

    // allow_exec: env may run id; without it the exec is refused (126 from env).
    let out = host
        .run(
            "alice",
            &[
                "--request",
                "--reason",
                "x",
                "--run",
                "--",
                "/usr/bin/env",
                "/usr/bin/id",
                "-u",
            ],
        )
        .ok();
    assert_eq!(out.stdout.trim(), "0", "{out:?}");
    let plain = host.run(
        "alice",
        &[
            "--request",
            "--reason",
            "x",
            "--run",
            "--",
            "/usr/bin/env",
            "/usr/bin/id",
            "-g",
        ],
    );
    assert_eq!(plain.code, 126, "{plain:?}");
    assert!(plain.stdout.is_empty(), "{plain:?}");

    // A deny rule.
    host.run(
        "alice",
        &["--request", "--reason", "x", "--", "/bin/sh", "-c", "id"],
    )
    .denied("policy rule deny-shells denies this command");
    // Outside the allowed hours (the service's policy clock is faked; the host's is not).
    host.run(
        "alice",
        &["--request", "--reason", "x", "--", "/usr/bin/date"],
    )
    .denied("outside allowed hours 09:00-17:00");
    // No rule at all.
    host.run(
        "alice",
        &["--request", "--reason", "x", "--", "/usr/bin/uptime"],
    )
    .denied("no policy rule allows /usr/bin/uptime");

    // An edit grant: asked for with -e, signed as kind edit, listed as such.
    let out = host
        .run(
            "alice",
            &[
                "--request",
                "-e",
                "/etc/jitsudo-app.conf",
                "--reason",
                "INC-2",
            ],
        )
        .ok();
    assert!(
        out.stdout.contains("cached (valid for")
            && out
                .stdout
                .contains("; run it with: jitsudo -e /etc/jitsudo-app.conf"),
        "{out:?}"
    );
    let list = host.run("alice", &["-l"]).ok();
    assert!(
        list.stdout.contains("(edit) /etc/jitsudo-app.conf"),
        "{list:?}"
    );
    // The edit rule names only that file, and no exec rule makes an edit grant.
    host.run(
        "alice",
        &["--request", "-e", "/etc/shadow", "--reason", "x"],
    )
    .denied("no policy rule allows editing /etc/shadow on");
    host.run(
        "alice",
        &["--request", "-e", "/usr/bin/id", "--reason", "x"],
    )
    .denied("no policy rule allows editing /usr/bin/id on");

    two_approvers_with_a_waiting_requester(&svc, &host, &bob, &carol, &alice);

    // --no-wait, approved from elsewhere, delivered by the root sync.
    let out = host
        .run(
            "bob",
            &[
                "--request",
                "--no-wait",
                "--reason",
                "patch",
                "--",
                "/usr/bin/whoami",
            ],
        )
        .ok();
    assert!(out.stdout.contains("is pending"), "{out:?}");
    let id = wait_for_pending(&svc, &carol);
    ctl(&svc, &alice, &["approve", &id]).ok();
    ctl(&svc, &carol, &["approve", &id]).ok();
    host.run("bob", &["/usr/bin/whoami"]).denied("");
    let out = host.sync().ok();
    assert!(out.stdout.contains("synced"), "{out:?}");
    assert_eq!(
        host.run("bob", &["/usr/bin/whoami"]).ok().stdout.trim(),
        "root"
    );

    // A single-use grant runs once.
    let out = host
        .run(
            "alice",
            &[
                "--request",
                "--once",
                "--reason",
                "x",
                "--run",
                "--",
                "/bin/echo",
                "once",
            ],
        )
        .ok();
    assert_eq!(out.stdout.trim(), "once");
    host.run("alice", &["/bin/echo", "once"]).denied("");

    // Revoke, sync: the setuid binary refuses the grant.
    let all = svc.get_json("/v1/requests", &bob);
    let grant = all
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "auto-id")
        .and_then(|r| r["grant_id"].as_str())
        .expect("auto-id grant")
        .to_string();
    ctl(&svc, &bob, &["revoke", &grant, "--reason", "laptop stolen"]).ok();
    assert_eq!(
        host.run("alice", &["id", "-u"]).ok().stdout.trim(),
        "0",
        "not yet synced"
    );
    host.sync().ok();
    host.run("alice", &["id", "-u"]).denied("revoked");

    // A stale revocation list with revocation_max_age set: everything is refused.
    host.write_config(&svc, HOST, "revocation_max_age = \"2s\"");
    host.sync().ok();
    assert_eq!(
        host.run("bob", &["/usr/bin/whoami"]).ok().stdout.trim(),
        "root"
    );
    std::thread::sleep(Duration::from_millis(3500));
    host.run("bob", &["/usr/bin/whoami"])
        .denied("revocation_max_age");
    host.sync().ok();
    assert_eq!(
        host.run("bob", &["/usr/bin/whoami"]).ok().stdout.trim(),
        "root"
    );
    host.write_config(&svc, HOST, "");

    // An unregistered host is refused.
    host.write_config(&svc, "web-99", "");
    host.run(
        "alice",
        &["--request", "--reason", "x", "--", "/usr/bin/id"],
    )
    .denied("not registered");
    host.write_config(&svc, HOST, "");

    replayed_envelope_is_rejected(&svc, &host);

    // The listing shows every decision with its rule.
    let out = ctl(&svc, &bob, &["requests"]).ok();
    for rule in [
        "deny-shells",
        "auto-id",
        "two-person",
        "once",
        "office-hours",
        "no matching rule",
    ] {
        assert!(
            out.stdout.contains(rule),
            "{rule} missing from: {}",
            out.stdout
        );
    }
    assert!(ctl(&svc, &bob, &["requests", "--pending"])
        .ok()
        .stdout
        .contains("no pending requests"));
    // Approver tokens cannot administer.
    ctl(&svc, &bob, &["host", "add", "x", &host.public_key]).denied("not an admin");
}

fn two_approvers_with_a_waiting_requester(
    svc: &Service,
    host: &Host,
    bob: &str,
    carol: &str,
    alice: &str,
) {
    let mut child = host
        .jitsudo("alice")
        .args([
            "--request",
            "--reason",
            "deploy",
            "--run",
            "--",
            "/usr/bin/whoami",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = wait_for_pending(svc, bob);
    let out = ctl(svc, bob, &["approve", &id, "--comment", "lgtm"]).ok();
    assert!(out.stdout.contains("1/2"), "{out:?}");
    ctl(svc, bob, &["approve", &id]).denied("already approved");
    // Self-approval is refused and does not count.
    ctl(svc, alice, &["approve", &id]).denied("own request");
    std::thread::sleep(Duration::from_millis(1200));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the requester must still be waiting"
    );
    let view = svc.get_json(&format!("/v1/requests/{id}"), bob);
    assert_eq!(view["status"], "pending");
    assert_eq!(view["approvals"].as_array().unwrap().len(), 1);
    let out = ctl(svc, carol, &["approve", &id]).ok();
    assert!(out.stdout.contains("grant"), "{out:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "requester did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = Outcome::of(child.wait_with_output().unwrap());
    assert_eq!((out.code, out.stdout.trim()), (0, "root"), "{out:?}");
    assert!(out.stderr.contains(&format!("request {id}")), "{out:?}");
    assert!(out.stderr.contains("waiting for 2 approval(s)"), "{out:?}");
}

fn replayed_envelope_is_rejected(svc: &Service, host: &Host) {
    use jitsudo_core::wire;
    let key = jitsudo_core::grant::keys::SecretKey::from_file_text(
        std::path::Path::new("host.key"),
        &host.host_key_text(),
    )
    .unwrap();
    let env = wire::sign_envelope(
        &key,
        HOST,
        wire::PATH_SYNC,
        jitsudo_core::grant::now(),
        &wire::SyncRequest::default(),
    )
    .unwrap();
    let body = serde_json::to_string(&wire::Signed { envelope: env }).unwrap();
    let post = |b: &str| {
        let mut resp = ureq::post(format!("{}{}", svc.url, wire::PATH_SYNC))
            .config()
            .http_status_as_error(false)
            .build()
            .header("content-type", "application/json")
            .send(b)
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap())
    };
    assert_eq!(post(&body).0, 200);
    let (status, text) = post(&body);
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("replayed"), "{text}");
    // An envelope for one endpoint cannot be used on another.
    let env = wire::sign_envelope(
        &key,
        HOST,
        wire::PATH_SYNC,
        jitsudo_core::grant::now(),
        &wire::SyncRequest::default(),
    )
    .unwrap();
    let resp = ureq::post(format!("{}{}", svc.url, wire::PATH_REQUESTS))
        .config()
        .http_status_as_error(false)
        .build()
        .header("content-type", "application/json")
        .send(serde_json::to_string(&wire::Signed { envelope: env }).unwrap())
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}
