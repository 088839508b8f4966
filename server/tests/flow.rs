//! The approval workflow against the real service, on SQLite and PostgreSQL: tickets a
//! rule requires (missing, malformed, recorded in the grant, the audit trail and the
//! webhooks), the requester hearing back (`request.decided`, and the decision in the
//! host's poll), votes from Slack's buttons (signature, timestamp, member mapping, a
//! rule that takes no chat votes, the audit trail), and extensions (linked requests,
//! the replaced grant revoked, `max_extensions`).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::pg::Pg;
use common::world::{run_ok, Expect, Outcome, Service};
use common::TempDir;
use hmac::{Hmac, Mac};
use jitsudo_core::grant::keys::{PublicKey, SecretKey, TrustedKey};
use jitsudo_core::grant::{self, Kind};
use jitsudo_core::wire::{self, NewRequest, Signed};
use sha2::Sha256;

const POLICY: &str = r#"
[[rule]]
name = "tickets"
commands = ["/usr/bin/id *"]
decision = "auto"
ticket = "^(INC|CHG)-[0-9]+$"

[[rule]]
name = "chat"
commands = ["/usr/bin/whoami"]
decision = "approve"
approvals = 2
approvers = ["group:sre"]

[[rule]]
name = "page-only"
commands = ["/usr/bin/uptime"]
decision = "approve"
approvers = ["group:sre"]
approver_mfa = true

[[rule]]
name = "no-chat"
commands = ["/usr/bin/who"]
decision = "approve"
approvers = ["group:sre"]
chat_approval = false

[[rule]]
name = "extendable"
commands = ["/usr/bin/date"]
decision = "approve"
approvers = ["group:sre"]
max_extensions = 1
extension_decision = "auto"

[[rule]]
name = "fixed"
commands = ["/usr/bin/hostname"]
decision = "auto"

[[rule]]
name = "approved-extensions"
commands = ["/usr/bin/uname"]
decision = "approve"
approvers = ["group:sre"]
max_extensions = 3
"#;

const SECRET: &str = "webhook-secret-0123456789";
const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

// ---- a webhook receiver -----------------------------------------------------------------

#[derive(Clone, Debug)]
struct Delivery {
    path: String,
    body: Vec<u8>,
}

impl Delivery {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A tiny HTTP server on 127.0.0.1 that answers 200 and keeps what it received.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let store = got.clone();
        // The thread ends with the test process; it holds no child processes.
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    continue;
                }
                let path = first.split(' ').nth(1).unwrap_or("").to_string();
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.trim().split_once(':') {
                        if k.trim().eq_ignore_ascii_case("content-length") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                store.lock().unwrap().push(Delivery { path, body });
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        Receiver { port, got }
    }

    /// Wait until an event on `path` satisfies `pred`; that event's JSON.
    fn wait_for(
        &self,
        path: &str,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got: Vec<Delivery> = self.got.lock().unwrap().clone();
            if let Some(d) = got
                .iter()
                .filter(|d| d.path == path)
                .find(|d| pred(&d.json()))
            {
                return d.json();
            }
            assert!(
                Instant::now() < deadline,
                "webhook receiver never saw {what} on {path}: {got:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

// ---- host requests ----------------------------------------------------------------------

struct Ask<'a> {
    user: &'a str,
    argv: &'a [&'a str],
    ticket: Option<&'a str>,
    extends: Option<&'a str>,
}

fn ask(svc: &Service, key: &SecretKey, a: Ask<'_>) -> (u16, serde_json::Value) {
    let body = NewRequest {
        kind: Kind::Exec,
        user: a.user.into(),
        uid: 1000,
        groups: vec![],
        run_as: "root".into(),
        argv: a.argv.iter().map(|s| s.to_string()).collect(),
        reason: "INC-7 maintenance".into(),
        duration: None,
        once: false,
        source: None,
        ticket: a.ticket.map(str::to_string),
        extends: a.extends.map(str::to_string),
    };
    let env = wire::sign_envelope(key, "web-01", wire::PATH_REQUESTS, grant::now(), &body).unwrap();
    post(
        &format!("{}{}", svc.url, wire::PATH_REQUESTS),
        &[("content-type", "application/json")],
        serde_json::to_vec(&Signed { envelope: env }).unwrap(),
    )
}

fn plain<'a>(user: &'a str, argv: &'a [&'a str]) -> Ask<'a> {
    Ask {
        user,
        argv,
        ticket: None,
        extends: None,
    }
}

fn post(url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.send(&body[..]).unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status} {text}: {e}")),
    )
}

/// The host's poll of request `id`, as a host that reads the decision asks for it.
fn poll(svc: &Service, id: &str, poll_key: &str) -> serde_json::Value {
    poll_as(svc, id, poll_key, true)
}

/// A poll, from a host that reads the decision (`true`) or from one older than it.
fn poll_as(svc: &Service, id: &str, poll_key: &str, reads_decision: bool) -> serde_json::Value {
    let mut req = ureq::get(format!("{}/v1/host/requests/{id}", svc.url))
        .header(wire::POLL_KEY_HEADER, poll_key);
    if reads_decision {
        req = req.header(wire::POLL_DECISION_HEADER, "1");
    }
    let mut resp = req.call().unwrap();
    resp.body_mut().read_json().unwrap()
}

fn service_key(svc: &Service) -> TrustedKey {
    let block = svc.trusted_block();
    let paserk = block
        .lines()
        .find_map(|l| l.strip_prefix("public_key = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no public_key in {block}"));
    TrustedKey {
        id: "k1".into(),
        key: PublicKey::from_paserk(paserk).unwrap(),
    }
}

fn claims(svc: &Service, token: &str) -> grant::Claims {
    grant::verify(token, &[service_key(svc)], Duration::from_secs(12 * 3600))
        .unwrap()
        .claims
}

fn ctl(svc: &Service, token: &str, args: &[&str]) -> Outcome {
    Outcome::of(svc.ctl(token).args(args).output().unwrap())
}

/// The audit records of a request (`("request", id)`) or a grant (`("grant", id)`).
fn audit(svc: &Service, token: &str, (key, id): (&str, &str)) -> Vec<serde_json::Value> {
    match svc.get_json(&format!("/v1/audit?{key}={id}"), token) {
        serde_json::Value::Array(records) => records,
        other => panic!("{other}"),
    }
}

fn detail(record: &serde_json::Value) -> serde_json::Value {
    match &record["detail"] {
        serde_json::Value::String(text) => serde_json::from_str(text).unwrap(),
        other => other.clone(),
    }
}

// ---- Slack ------------------------------------------------------------------------------

/// A click on a button of a Slack message, as Slack posts it: form-encoded `payload`.
fn click(member: &str, action: &str, request: &str) -> Vec<u8> {
    let payload = serde_json::json!({
        "type": "block_actions",
        "user": { "id": member, "username": "someone" },
        "actions": [{ "action_id": action, "value": request, "type": "button" }],
        "response_url": "https://hooks.slack.com/actions/T0/1/x",
    });
    serde_urlencoded::to_string([("payload", payload.to_string())])
        .unwrap()
        .into_bytes()
}

fn slack_signature(secret: &str, ts: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:").as_bytes());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v0={hex}")
}

/// Post `body` to the interaction endpoint signed with `secret` at time `ts`.
fn slack_post(svc: &Service, secret: &str, ts: i64, body: Vec<u8>) -> (u16, serde_json::Value) {
    let ts = ts.to_string();
    let sig = slack_signature(secret, &ts, &body);
    post(
        &format!("{}/v1/slack/interactions", svc.url),
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-slack-request-timestamp", &ts),
            ("x-slack-signature", &sig),
        ],
        body,
    )
}

// ---- the suite --------------------------------------------------------------------------

#[test]
fn approval_workflow_sqlite() {
    common::require_root();
    let dir = TempDir::new("flow-db");
    suite(&format!("sqlite://{}/jitsudod.db", dir.path().display()));
}

#[test]
fn approval_workflow_postgres() {
    let pg = Pg::start();
    suite(&pg.new_database());
}

fn suite(database: &str) {
    let hooks = Receiver::start();
    let secrets = TempDir::new("flow-secret");
    let secret_file = secrets.path().join("slack.secret");
    std::fs::write(&secret_file, format!("{SLACK_SECRET}\n")).unwrap();
    std::fs::set_permissions(
        &secret_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let top = format!(
        "[[webhook]]\nurl = \"http://127.0.0.1:{p}/hook\"\nsecret = \"{SECRET}\"\n\
         [[webhook]]\nurl = \"http://127.0.0.1:{p}/slack\"\nsecret = \"{SECRET}\"\nformat = \"slack\"\n\
         [slack]\nsigning_secret_file = \"{}\"\npage_url = \"https://approvals.example/ui\"\n",
        secret_file.display(),
        p = hooks.port
    );
    let svc = Service::start_with(
        database,
        POLICY,
        None,
        "user_requests_per_minute = 1000\nhost_requests_per_minute = 100000\n",
        &top,
    );
    let admin = svc.admin_token.clone();
    let key = SecretKey::generate("host").unwrap();
    run_ok(
        svc.ctl(&admin)
            .args(["host", "add", "web-01", &key.public.to_paserk()]),
    );
    let bob = svc.add_approver("bob", &["sre"]);
    let carol = svc.add_approver("carol", &["sre"]);
    ctl(&svc, &admin, &["approver", "slack", "bob", "U0BOB"]).ok();
    // carol is linked when she is created; alice (the requester) only to hear back.
    ctl(
        &svc,
        &admin,
        &[
            "approver",
            "add",
            "dave",
            "--group",
            "sre",
            "--slack-id",
            "U0DAVE",
        ],
    )
    .ok();
    ctl(&svc, &admin, &["approver", "slack", "carol", "U0CAROL"]).ok();
    ctl(
        &svc,
        &admin,
        &["approver", "add", "alice", "--slack-id", "U0ALICE"],
    )
    .ok();
    ctl(&svc, &admin, &["approver", "slack", "carol", "U0BOB"])
        .denied("another approver already has the Slack id U0BOB");
    ctl(&svc, &admin, &["approver", "slack", "carol", "bob"]).denied("is not a Slack member id");
    ctl(&svc, &bob, &["approver", "slack", "bob", "U0X"]).denied("not an admin");

    tickets(&svc, &key, &bob, &hooks);
    slack(&svc, &key, &bob, &hooks);
    hears_back(&svc, &key, &carol, &hooks);
    extensions(&svc, &key, &bob);
}

fn tickets(svc: &Service, key: &SecretKey, bob: &str, hooks: &Receiver) {
    let id = ["/usr/bin/id", "-u"];
    let (code, missing) = ask(svc, key, plain("alice", &id));
    assert_eq!(
        (code, missing["status"].as_str()),
        (200, Some("denied")),
        "{missing}"
    );
    let m = missing["message"].as_str().unwrap();
    assert!(
        m.contains("a ticket id matching ^(INC|CHG)-[0-9]+$ is required") && m.contains("--ticket"),
        "{m}"
    );
    for bad in ["INC-", "inc-42", "CHG-42x", "PRJ-1"] {
        let (_, wrong) = ask(
            svc,
            key,
            Ask {
                ticket: Some(bad),
                ..plain("alice", &id)
            },
        );
        assert_eq!(wrong["status"], "denied", "{bad}: {wrong}");
        assert!(
            wrong["message"].as_str().unwrap().contains(&format!(
                "ticket \"{bad}\" does not match the required pattern ^(INC|CHG)-[0-9]+$"
            )),
            "{wrong}"
        );
    }
    // Not a ticket id at all: refused before the policy.
    let (code, spaced) = ask(
        svc,
        key,
        Ask {
            ticket: Some("INC 42"),
            ..plain("alice", &id)
        },
    );
    assert_eq!(code, 400, "{spaced}");
    assert!(
        spaced["error"].as_str().unwrap().contains("ticket"),
        "{spaced}"
    );

    let (_, ok) = ask(
        svc,
        key,
        Ask {
            ticket: Some("INC-42"),
            ..plain("alice", &id)
        },
    );
    assert_eq!(ok["status"], "approved", "{ok}");
    let c = claims(svc, ok["grant"].as_str().unwrap());
    assert_eq!(c.ticket.as_deref(), Some("INC-42"));
    assert_eq!(c.extends, None);
    let rid = ok["id"].as_str().unwrap();

    // The audit trail and the webhooks carry it; the approver's view shows it.
    let created = audit(svc, bob, ("request", rid))
        .into_iter()
        .find(|r| r["kind"] == "request.created")
        .unwrap();
    assert_eq!(detail(&created)["ticket"], "INC-42");
    let ev = hooks.wait_for("/hook", "request.created with the ticket", |e| {
        e["event"] == "request.created" && e["request"]["id"] == rid
    });
    assert_eq!(ev["request"]["ticket"], "INC-42");
    let slack = hooks.wait_for("/slack", "the Slack message with the ticket", |e| {
        e["text"]
            .as_str()
            .is_some_and(|t| t.contains("ticket INC-42"))
    });
    assert!(slack["blocks"].is_array(), "{slack}");
    let shown = ctl(svc, bob, &["requests"]).ok();
    assert!(shown.stdout.contains("ticket INC-42"), "{shown:?}");
}

fn slack(svc: &Service, key: &SecretKey, bob: &str, hooks: &Receiver) {
    let (_, pending) = ask(svc, key, plain("alice", &["/usr/bin/whoami"]));
    assert_eq!(pending["status"], "pending", "{pending}");
    let rid = pending["id"].as_str().unwrap().to_string();

    // The Slack message carries the buttons, with the request id.
    let msg = hooks.wait_for("/slack", "the buttons", |e| {
        e["blocks"].as_array().is_some_and(|b| {
            b.iter()
                .any(|x| x["type"] == "actions" && x["elements"][0]["value"] == rid.as_str())
        })
    });
    let actions = msg["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .unwrap();
    assert_eq!(actions["elements"][0]["action_id"], "approve");
    assert_eq!(actions["elements"][1]["action_id"], "deny");
    assert_eq!(actions["elements"][1]["value"], rid.as_str());

    let now = grant::now();
    // A bad signature, an old timestamp (or one from the future), a missing header: 401,
    // and nothing counted.
    let (code, e) = slack_post(
        svc,
        "not-the-secret-0123456789",
        now,
        click("U0BOB", "approve", &rid),
    );
    assert_eq!(code, 401, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("does not match"),
        "{e}"
    );
    let (code, e) = slack_post(
        svc,
        SLACK_SECRET,
        now - 301,
        click("U0BOB", "approve", &rid),
    );
    assert_eq!(code, 401, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("more than 5 minutes"),
        "{e}"
    );
    let (code, e) = slack_post(
        svc,
        SLACK_SECRET,
        now + 400,
        click("U0BOB", "approve", &rid),
    );
    assert_eq!(code, 401, "{e}");
    let body = click("U0BOB", "approve", &rid);
    let (code, e) = post(
        &format!("{}/v1/slack/interactions", svc.url),
        &[("x-slack-request-timestamp", &now.to_string())],
        body.clone(),
    );
    assert_eq!(code, 401, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("X-Slack-Signature"),
        "{e}"
    );
    // A body altered after signing.
    let sig = slack_signature(SLACK_SECRET, &now.to_string(), &body);
    let (code, _) = post(
        &format!("{}/v1/slack/interactions", svc.url),
        &[
            ("x-slack-request-timestamp", &now.to_string()),
            ("x-slack-signature", &sig),
        ],
        click("U0CAROL", "approve", &rid),
    );
    assert_eq!(code, 401);
    // A member nobody linked to an approver: 403.
    let (code, e) = slack_post(svc, SLACK_SECRET, now, click("U0MALLORY", "approve", &rid));
    assert_eq!(code, 403, "{e}");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("U0MALLORY is not linked to an approver"),
        "{e}"
    );
    let view = svc.get_json(&format!("/v1/requests/{rid}"), bob);
    assert_eq!(view["approvals"].as_array().unwrap().len(), 0, "{view}");

    // The requester cannot approve their own request from Slack either.
    let (code, r) = slack_post(svc, SLACK_SECRET, now, click("U0ALICE", "approve", &rid));
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["counted"], false, "{r}");
    assert!(
        r["text"]
            .as_str()
            .unwrap()
            .contains("cannot approve their own request"),
        "{r}"
    );

    // Good signatures: bob's click counts (1 of 2), again is refused, dave completes it.
    let (code, r) = slack_post(svc, SLACK_SECRET, now, click("U0BOB", "approve", &rid));
    assert_eq!(
        (code, &r["counted"]),
        (200, &serde_json::json!(true)),
        "{r}"
    );
    assert!(
        r["text"].as_str().unwrap().contains("needs more approvers"),
        "{r}"
    );
    assert_eq!(r["response_type"], "ephemeral");
    let (_, r) = slack_post(svc, SLACK_SECRET, now, click("U0BOB", "approve", &rid));
    assert_eq!(r["counted"], false, "{r}");
    assert!(
        r["text"].as_str().unwrap().contains("already approved"),
        "{r}"
    );
    let (_, r) = slack_post(svc, SLACK_SECRET, now, click("U0DAVE", "approve", &rid));
    assert_eq!(r["counted"], true, "{r}");
    assert!(r["text"].as_str().unwrap().contains("grant"), "{r}");
    let view = svc.get_json(&format!("/v1/requests/{rid}"), bob);
    assert_eq!(view["status"], "approved", "{view}");
    let votes: Vec<&str> = view["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["approver"].as_str().unwrap())
        .collect();
    assert_eq!(votes, ["bob", "dave"]);
    // Decided: a late click is refused.
    let (_, r) = slack_post(svc, SLACK_SECRET, now, click("U0CAROL", "deny", &rid));
    assert_eq!(r["counted"], false);
    assert!(
        r["text"].as_str().unwrap().contains("already approved"),
        "{r}"
    );

    // The votes are audited as Slack's, by the approvers they map to.
    let trail = audit(svc, bob, ("request", &rid));
    let via: Vec<(String, String)> = trail
        .iter()
        .filter(|r| r["kind"] == "request.approval")
        .map(|r| {
            (
                r["actor"].as_str().unwrap().to_string(),
                detail(r)["via"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        via,
        [
            ("bob".to_string(), "slack".to_string()),
            ("dave".to_string(), "slack".to_string())
        ]
    );
    assert!(
        trail.iter().any(|r| r["kind"] == "grant.issued"),
        "{trail:#?}"
    );
    // ... and the approval went out as a webhook, as from the page.
    hooks.wait_for("/hook", "request.approved from Slack", |e| {
        e["event"] == "request.approved"
            && e["request"]["id"] == rid.as_str()
            && e["actor"] == "dave"
    });

    // A deny from Slack, on another request.
    let (_, p) = ask(svc, key, plain("alice", &["/usr/bin/whoami"]));
    let rid2 = p["id"].as_str().unwrap();
    let (_, r) = slack_post(svc, SLACK_SECRET, now, click("U0BOB", "deny", rid2));
    assert_eq!(r["counted"], true, "{r}");
    let view = svc.get_json(&format!("/v1/requests/{rid2}"), bob);
    assert_eq!(view["status"], "denied", "{view}");
    let denied = audit(svc, bob, ("request", rid2))
        .into_iter()
        .find(|r| r["kind"] == "request.denied")
        .unwrap();
    assert_eq!(denied["actor"], "bob");
    assert_eq!(detail(&denied)["via"], "slack");

    // Rules that take no chat votes: approver_mfa = true and chat_approval = false. The
    // Slack message links to the page instead of carrying buttons; a click (forged from
    // an older message) is not counted and points to the page.
    for (argv, rule) in [
        ("/usr/bin/uptime", "page-only"),
        ("/usr/bin/who", "no-chat"),
    ] {
        let (_, p) = ask(svc, key, plain("alice", &[argv]));
        let rid = p["id"].as_str().unwrap().to_string();
        let msg = hooks.wait_for("/slack", "the page link", |e| {
            e["text"].as_str().is_some_and(|t| t.contains(argv))
                && e["blocks"].as_array().is_some_and(|b| b.len() > 1)
                && e["text"]
                    .as_str()
                    .is_some_and(|t| t.contains(&format!("rule {rule}")))
        });
        let blocks = msg["blocks"].as_array().unwrap();
        assert!(
            blocks.iter().all(|b| b["type"] != "actions"),
            "no buttons: {msg}"
        );
        let note = blocks[1]["elements"][0]["text"].as_str().unwrap();
        assert!(
            note.contains("takes no votes from chat")
                && note.contains("https://approvals.example/ui"),
            "{note}"
        );
        for action in ["approve", "deny"] {
            let (code, r) = slack_post(svc, SLACK_SECRET, now, click("U0BOB", action, &rid));
            assert_eq!(
                (code, &r["counted"]),
                (200, &serde_json::json!(false)),
                "{r}"
            );
            let text = r["text"].as_str().unwrap();
            assert!(
                text.contains(&format!("Rule {rule} takes no votes from chat"))
                    && text.contains("<https://approvals.example/ui|the approver page>"),
                "{text}"
            );
        }
        let view = svc.get_json(&format!("/v1/requests/{rid}"), bob);
        assert_eq!(view["status"], "pending", "{view}");
        assert!(view["approvals"].as_array().unwrap().is_empty());
        // The page's own way still works; on an approver_mfa rule only for a sign-in
        // through the identity provider with MFA (server/tests/oidc.rs), so an approver
        // token is refused with the reason.
        let out = ctl(svc, bob, &["approve", &rid]);
        if rule == "page-only" {
            assert!(
                out.code != 0 && out.stderr.contains("approver_mfa") && out.stderr.contains("MFA"),
                "{out:?}"
            );
        } else {
            out.ok();
        }
    }
}

fn hears_back(svc: &Service, key: &SecretKey, carol: &str, hooks: &Receiver) {
    // A rule without approver_mfa: carol approves with her token.
    let (_, p) = ask(svc, key, plain("alice", &["/usr/bin/who"]));
    let rid = p["id"].as_str().unwrap().to_string();
    let poll_key = p["poll_key"].as_str().unwrap().to_string();
    let before = poll(svc, &rid, &poll_key);
    assert!(before.get("decided_by").is_none(), "{before}");
    ctl(
        svc,
        carol,
        &["approve", &rid, "--comment", "go ahead, INC-7"],
    )
    .ok();
    let after = poll(svc, &rid, &poll_key);
    assert_eq!(after["status"], "approved");
    assert_eq!(after["decided_by"], serde_json::json!(["carol"]));
    // A host from before the decision fields refuses unknown fields: it gets none, and
    // its own type reads the answer.
    let old_host = poll_as(svc, &rid, &poll_key, false);
    assert!(old_host.get("decided_by").is_none() && old_host.get("comments").is_none());
    assert_eq!(old_host["status"], "approved");
    assert_eq!(
        after["comments"],
        serde_json::json!(["carol: go ahead, INC-7"])
    );
    let ev = hooks.wait_for("/hook", "request.decided (approved)", |e| {
        e["event"] == "request.decided" && e["request"]["id"] == rid.as_str()
    });
    assert_eq!(ev["requester"], "alice");
    assert_eq!(ev["decision"], "approved");
    assert_eq!(ev["decided_by"], serde_json::json!(["carol"]));
    assert_eq!(ev["comment"], "carol: go ahead, INC-7");
    assert_eq!(ev["requester_slack_id"], "U0ALICE");
    let dm = hooks.wait_for("/slack", "request.decided for the requester", |e| {
        e["channel"] == "U0ALICE" && e["text"].as_str().is_some_and(|t| t.contains(&rid))
    });
    let text = dm["text"].as_str().unwrap();
    assert!(
        text.starts_with("<@U0ALICE> Your request was approved by carol")
            && text.contains("go ahead, INC-7"),
        "{text}"
    );

    // A denial: the requester hears who and why; a requester with no Slack id gets no
    // channel.
    let (_, p) = ask(svc, key, plain("erin", &["/usr/bin/uptime"]));
    let rid = p["id"].as_str().unwrap().to_string();
    let poll_key = p["poll_key"].as_str().unwrap().to_string();
    ctl(
        svc,
        carol,
        &["deny", &rid, "--reason", "not during the freeze"],
    )
    .ok();
    let after = poll(svc, &rid, &poll_key);
    assert_eq!(after["status"], "denied");
    assert_eq!(after["decided_by"], serde_json::json!(["carol"]));
    assert!(
        after["message"]
            .as_str()
            .unwrap()
            .contains("not during the freeze"),
        "{after}"
    );
    let ev = hooks.wait_for("/hook", "request.decided (denied)", |e| {
        e["event"] == "request.decided" && e["request"]["id"] == rid.as_str()
    });
    assert_eq!(
        (&ev["requester"], &ev["decision"]),
        (&"erin".into(), &"denied".into())
    );
    assert_eq!(ev["comment"], "carol: not during the freeze");
    assert!(ev["requester_slack_id"].is_null(), "{ev}");
    let msg = hooks.wait_for("/slack", "request.decided (denied)", |e| {
        e["text"]
            .as_str()
            .is_some_and(|t| t.contains("Your request was denied by carol") && t.contains(&rid))
    });
    assert!(msg.get("channel").is_none(), "{msg}");

    // Policy decisions name nobody.
    let (_, auto) = ask(svc, key, plain("alice", &["/usr/bin/hostname"]));
    assert!(auto.get("decided_by").is_none(), "{auto}");
}

fn extensions(svc: &Service, key: &SecretKey, bob: &str) {
    let date = ["/usr/bin/date"];
    let (_, p) = ask(svc, key, plain("alice", &date));
    let first_req = p["id"].as_str().unwrap().to_string();
    let out = ctl(svc, bob, &["approve", &first_req]).ok();
    let view = svc.get_json(&format!("/v1/requests/{first_req}"), bob);
    let first = view["grant_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{out:?} {view}"))
        .to_string();

    // Someone else's grant, another host's, another command: refused.
    let (code, e) = ask(
        svc,
        key,
        Ask {
            extends: Some(&first),
            ..plain("mallory", &date)
        },
    );
    assert_eq!(code, 404, "{e}");
    let (code, e) = ask(
        svc,
        key,
        Ask {
            extends: Some(&first),
            ..plain("alice", &["/usr/bin/date", "-s", "2020-01-01"])
        },
    );
    assert_eq!(code, 400, "{e}");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("asks for its command again"),
        "{e}"
    );

    // Extension 1: the rule decides extensions automatically; the new grant names the old
    // one, which is revoked in the same transaction.
    let (_, ext) = ask(
        svc,
        key,
        Ask {
            extends: Some(&first),
            ..plain("alice", &date)
        },
    );
    assert_eq!(ext["status"], "approved", "{ext}");
    let c = claims(svc, ext["grant"].as_str().unwrap());
    assert_eq!(c.extends.as_deref(), Some(first.as_str()));
    assert_eq!(c.commands, ["/usr/bin/date"]);
    let second = c.jti.clone();
    let mut revoked = ureq::get(format!("{}/v1/revocations", svc.url))
        .call()
        .unwrap()
        .body_mut()
        .read_json::<serde_json::Value>()
        .unwrap();
    let list = wire::verify_revocations(
        revoked["revocations"].take().as_str().unwrap(),
        &[service_key(svc)],
    )
    .unwrap();
    assert!(list.ids.contains(&first), "{:?}", list.ids);
    assert!(!list.ids.contains(&second));
    let trail = audit(svc, bob, ("grant", &first));
    let rev = trail.iter().find(|r| r["kind"] == "grant.revoked").unwrap();
    assert_eq!(detail(rev)["replaced_by"], second.as_str());
    let created = audit(svc, bob, ("request", ext["id"].as_str().unwrap()))
        .into_iter()
        .find(|r| r["kind"] == "request.created")
        .unwrap();
    assert_eq!(detail(&created)["extends"], first.as_str());

    // The revoked grant cannot be extended again; the new one once more only past
    // max_extensions = 1.
    let (code, e) = ask(
        svc,
        key,
        Ask {
            extends: Some(&first),
            ..plain("alice", &date)
        },
    );
    assert_eq!(code, 409, "{e}");
    assert!(e["error"].as_str().unwrap().contains("revoked"), "{e}");
    let (_, past) = ask(
        svc,
        key,
        Ask {
            extends: Some(&second),
            ..plain("alice", &date)
        },
    );
    assert_eq!(past["status"], "denied", "{past}");
    let m = past["message"].as_str().unwrap();
    assert!(
        m.contains("extended 1 time(s) already") && m.contains("max_extensions = 1"),
        "{m}"
    );
    // A rule without max_extensions allows none.
    let (_, fixed) = ask(svc, key, plain("alice", &["/usr/bin/hostname"]));
    let g = claims(svc, fixed["grant"].as_str().unwrap()).jti;
    let (_, no) = ask(
        svc,
        key,
        Ask {
            extends: Some(&g),
            ..plain("alice", &["/usr/bin/hostname"])
        },
    );
    assert_eq!(no["status"], "denied", "{no}");
    assert!(
        no["message"]
            .as_str()
            .unwrap()
            .contains("allows no extensions"),
        "{no}"
    );
    let shown = ctl(svc, bob, &["requests"]).ok();
    assert!(
        shown.stdout.contains(&format!("extends grant {first}")),
        "{shown:?}"
    );

    // Two extensions of one grant waiting for approvers: the first approved replaces
    // it; approving the second is refused and issues nothing (a grant is replaced once).
    let uname = ["/usr/bin/uname"];
    let (_, p) = ask(svc, key, plain("alice", &uname));
    let rid = p["id"].as_str().unwrap().to_string();
    ctl(svc, bob, &["approve", &rid]).ok();
    let g = svc.get_json(&format!("/v1/requests/{rid}"), bob)["grant_id"]
        .as_str()
        .unwrap()
        .to_string();
    let ext = || {
        let (_, p) = ask(
            svc,
            key,
            Ask {
                extends: Some(&g),
                ..plain("alice", &uname)
            },
        );
        assert_eq!(p["status"], "pending", "{p}");
        p["id"].as_str().unwrap().to_string()
    };
    let (a, b) = (ext(), ext());
    ctl(svc, bob, &["approve", &a]).ok();
    ctl(svc, bob, &["approve", &b]).denied("revoked or extended meanwhile");
    let view = svc.get_json(&format!("/v1/requests/{b}"), bob);
    assert_eq!(view["status"], "pending", "{view}");
    assert!(view["grant_id"].is_null(), "{view}");
    assert!(
        view["approvals"].as_array().unwrap().is_empty(),
        "rolled back: {view}"
    );
}
