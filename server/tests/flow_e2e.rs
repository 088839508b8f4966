//! The approval workflow end to end: the real `jitsudod`, the real setuid `jitsudo` run
//! as real users in a private mount namespace, `jitsudoctl` as approvers. Tickets a rule
//! requires (`jitsudo --request --ticket`, shown by `jitsudo -l`), the waiting requester
//! told who decided and what they said, and `jitsudo --extend`: a running command kept
//! across the swap to the new grant, the extension refused past `max_extensions`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::world::{Expect, Host, Outcome, Service};
use common::TempDir;

const POLICY: &str = r#"
[[rule]]
name = "tickets"
commands = ["/usr/bin/id *"]
decision = "auto"
ticket = "^(INC|CHG)-[0-9]+$"

[[rule]]
name = "ask-bob"
commands = ["/usr/bin/whoami"]
decision = "approve"
approvers = ["bob"]

[[rule]]
name = "cat"
commands = ["/usr/bin/cat"]
decision = "auto"
default_duration = "10m"
max_extensions = 1
"#;

fn ctl(svc: &Service, token: &str, args: &[&str]) -> Outcome {
    Outcome::of(svc.ctl(token).args(args).output().unwrap())
}

fn wait_for_pending(svc: &Service, token: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = svc.get_json("/v1/requests?pending=true", token);
        if let [one] = &list.as_array().unwrap()[..] {
            return one["id"].as_str().unwrap().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no single pending request: {list}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The id in `grant ID cached …`.
fn cached_id(out: &Outcome) -> String {
    out.stdout
        .split("grant ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("{out:?}"))
        .to_string()
}

#[test]
fn approval_workflow_end_to_end() {
    common::require_root();
    let dir = TempDir::new("flow-e2e-db");
    let svc = Service::start(
        &format!("sqlite://{}/jitsudod.db", dir.path().display()),
        POLICY,
        None,
    );
    let host = Host::new(&svc, "");
    let bob = svc.add_approver("bob", &[]);
    tickets(&host);
    hears_back(&svc, &host, &bob);
    extension_keeps_the_running_command(&svc, &host);
}

fn tickets(host: &Host) {
    let id = ["--", "/usr/bin/id", "-u"];
    let ask = |ticket: Option<&str>| {
        let mut args = vec!["--request", "--reason", "check"];
        if let Some(t) = ticket {
            args.extend(["--ticket", t]);
        }
        args.extend(id);
        host.run("alice", &args)
    };
    ask(None)
        .denied("a ticket id matching ^(INC|CHG)-[0-9]+$ is required; ask again with --ticket ID");
    ask(Some("inc-42"))
        .denied("ticket \"inc-42\" does not match the required pattern ^(INC|CHG)-[0-9]+$");
    ask(Some("INC 42")).denied("--ticket:");
    host.run("alice", &["--ticket", "INC-42", "/usr/bin/id"])
        .denied("--ticket");
    let out = ask(Some("CHG-42")).ok();
    let grant = cached_id(&out);
    let list = host.run("alice", &["-l"]).ok();
    assert!(list.stdout.contains(&grant[..12]), "{list:?}");
    assert!(list.stdout.contains("ticket CHG-42"), "{list:?}");
    assert_eq!(
        host.run("alice", &["/usr/bin/id", "-u"]).ok().stdout.trim(),
        "0"
    );
}

fn hears_back(svc: &Service, host: &Host, bob: &str) {
    let spawn = || {
        host.jitsudo("alice")
            .args(["--request", "--reason", "deploy", "--", "/usr/bin/whoami"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let child = spawn();
    let id = wait_for_pending(svc, bob);
    ctl(svc, bob, &["approve", &id, "--comment", "lgtm, INC-9"]).ok();
    let out = Outcome::of(child.wait_with_output().unwrap());
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("jitsudo: request {id} approved by bob")),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("jitsudo:   bob: lgtm, INC-9"),
        "{out:?}"
    );
    assert!(out.stdout.contains("cached"), "{out:?}");

    let child = spawn();
    let id = wait_for_pending(svc, bob);
    ctl(
        svc,
        bob,
        &["deny", &id, "--reason", "not during the freeze"],
    )
    .ok();
    let out = Outcome::of(child.wait_with_output().unwrap());
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("jitsudo: request {id} denied by bob")),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("denied by bob: not during the freeze"),
        "{out:?}"
    );
}

fn extension_keeps_the_running_command(svc: &Service, host: &Host) {
    let out = host
        .run(
            "alice",
            &[
                "--request",
                "--reason",
                "tail the queue",
                "--",
                "/usr/bin/cat",
            ],
        )
        .ok();
    let first = cached_id(&out);

    // cat echoes each line it reads: the test sees the command alive before and after
    // the swap, and ends it by closing its input; no clock is involved.
    let mut child = host
        .jitsudo("alice")
        .arg("/usr/bin/cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let mut output = BufReader::new(child.stdout.take().unwrap());
    let mut echo = |text: &str, input: &mut std::process::ChildStdin| {
        writeln!(input, "{text}").unwrap();
        input.flush().unwrap();
        let mut line = String::new();
        output.read_line(&mut line).unwrap();
        assert_eq!(line.trim_end(), text);
    };
    echo("before", &mut input);
    host.log
        .wait_for(&format!("GRANT={first}"), Duration::from_secs(20));

    let out = host
        .run(
            "alice",
            &[
                "--extend",
                &first[..12],
                "--for",
                "20m",
                "--reason",
                "longer",
            ],
        )
        .ok();
    let second = cached_id(&out);
    assert_ne!(second, first);
    assert!(
        out.stdout.contains(&format!("replaces grant {first}")),
        "{out:?}"
    );
    let list = host.run("alice", &["-l"]).ok();
    assert!(
        list.stdout
            .contains(&format!("extends grant {first} (extended ")),
        "{list:?}"
    );

    // The service revoked the old grant; once the host's list says so, the supervisor
    // finds the new grant in alice's cache and moves the run onto it.
    host.sync().ok();
    let lines = host.log.wait_for(
        &format!("command continues under grant {second}"),
        Duration::from_secs(30),
    );
    let swap = lines
        .iter()
        .find(|l| l.contains("command continues under grant"))
        .unwrap();
    assert!(swap.contains(&format!("(extends grant {first})")), "{swap}");
    assert!(swap.contains(&format!("GRANT={second}")), "{swap}");
    assert!(
        !lines.iter().any(|l| l.contains("command ended")),
        "{lines:#?}"
    );
    echo("after the swap", &mut input);

    // max_extensions = 1: the new grant is not extended again.
    host.run("alice", &["--extend", &second, "--reason", "again"])
        .denied("extended 1 time(s) already, the most max_extensions = 1 allows");
    // The old grant is gone from the list of usable ones, and cannot be extended.
    host.run("alice", &["--extend", &first, "--reason", "again"])
        .denied("cannot be extended: grant");

    // Without a successor a revocation still ends the run.
    ctl(
        svc,
        &svc.admin_token,
        &["revoke", &second, "--reason", "done"],
    )
    .ok();
    host.sync().ok();
    host.log
        .wait_for("command ended: grant revoked", Duration::from_secs(30));
    drop(input);
    let end = child.wait().unwrap();
    assert!(
        !end.success(),
        "ended by the revocation, not by its input: {end:?}"
    );
}
