//! The approver web page in a real headless Chromium, driven through chromedriver's
//! WebDriver HTTP API: sign in, see a pending request, approve it, the grant appears,
//! revoke it; a reason holding `<script>alert(1)</script>` is shown as text and runs
//! nothing; forms without the session's CSRF token, or from another origin, are
//! refused. Screenshots go to docs/ for the README.
//!
//! Needs (Debian 12): `apt-get install chromium chromium-driver`. Fails, not skips,
//! without them.

mod common;

use std::path::{Path, PathBuf};

use common::browser::{agent, Driver};
use common::world::{run_ok, Service};
use common::TempDir;
use jitsudo_core::grant::keys::SecretKey;
use jitsudo_core::wire::{self, NewRequest, Signed};
use serde_json::Value;

const POLICY: &str = r#"
[[rule]]
name = "sre-approves"
commands = ["/usr/bin/whoami", "/usr/bin/systemctl restart nginx"]
decision = "approve"
approvers = ["group:sre"]
"#;

const XSS: &str = "INC-7 <script>alert(1)</script>";

fn ask(svc: &Service, key: &SecretKey, user: &str, argv: &[&str], reason: &str) -> Value {
    let body = NewRequest {
        kind: jitsudo_core::grant::Kind::Exec,
        user: user.into(),
        uid: 1000,
        groups: vec![],
        run_as: "root".into(),
        argv: argv.iter().map(|a| a.to_string()).collect(),
        reason: reason.into(),
        duration: None,
        once: false,
        source: None,
        ticket: None,
        extends: None,
    };
    let env = wire::sign_envelope(
        key,
        "web-01",
        wire::PATH_REQUESTS,
        jitsudo_core::grant::now(),
        &body,
    )
    .unwrap();
    ureq::post(format!("{}{}", svc.url, wire::PATH_REQUESTS))
        .header("content-type", "application/json")
        .send(serde_json::to_string(&Signed { envelope: env }).unwrap())
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap()
}

/// Where screenshots go: the README's pictures in docs/ only when asked for with
/// JITSUDO_UPDATE_SCREENSHOTS=1 (so a test run leaves the checkout unchanged), else
/// target/ (still written, so the PNG check runs every time).
fn docs() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("JITSUDO_UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
        return manifest.join("../docs");
    }
    let dir = manifest.join("../target/web-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A form POST to the page with a given cookie, CSRF value and Origin; the status.
fn raw_post(svc: &Service, path: &str, cookie: &str, form: &str, origin: Option<&str>) -> u16 {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent();
    let mut r = agent
        .post(format!("{}{path}", svc.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookie);
    if let Some(o) = origin {
        r = r.header("origin", o);
    }
    r.send(form).unwrap().status().as_u16()
}

#[test]
fn approver_web_page_in_chromium() {
    common::require_root();
    let db = TempDir::new("web-db");
    let svc = Service::start(
        &format!("sqlite://{}/x.db", db.path().display()),
        POLICY,
        None,
    );
    let key = SecretKey::generate("host").unwrap();
    run_ok(
        svc.ctl(&svc.admin_token)
            .args(["host", "add", "web-01", &key.public.to_paserk()]),
    );
    let bob = svc.add_approver("bob", &["sre"]);
    let xss = ask(&svc, &key, "alice", &["/usr/bin/whoami"], XSS);
    let xss_id = xss["id"].as_str().unwrap().to_string();
    let other = ask(
        &svc,
        &key,
        "carol",
        &["/usr/bin/systemctl", "restart", "nginx"],
        "CHG-1042 deploy 2.4.1",
    );
    let other_id = other["id"].as_str().unwrap().to_string();

    // Headers of the page itself.
    let resp = agent().get(format!("{}/ui", svc.url)).call().unwrap();
    let csp = resp
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("form-action 'self'"),
        "{csp}"
    );
    assert_eq!(resp.headers().get("x-frame-options").unwrap(), "DENY");

    let b = Driver::start();
    b.go(&format!("{}/ui", svc.url));
    b.find("#token");
    b.type_into("#token", "jt_not_a_token");
    b.submit("#signin");
    assert!(b.text("#error").contains("Unknown approver token"));
    b.type_into("#token", &bob);
    b.submit("#signin");
    assert_eq!(b.text("#me"), "bob");

    let session = b.cookie("jitsudo_session");
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["sameSite"], "Strict", "{session}");
    assert_eq!(session["path"], "/ui", "{session}");

    // The pending request: who, host, command, reason (as text), rule, age.
    let card = format!("#req-{xss_id}");
    let text = b.text(&card);
    for needle in [
        "alice",
        "web-01",
        "/usr/bin/whoami",
        "sre-approves",
        "ago",
        "approvals 0/1",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text:?}");
    }
    assert_eq!(b.text(&format!("{card} .reason")), format!("Reason: {XSS}"));
    assert!(
        b.find_all("script").is_empty(),
        "no script element in the page: {}",
        b.source()
    );
    assert!(b.source().contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    b.assert_no_alert();
    b.find(&format!("#req-{other_id}"));
    b.screenshot(&docs().join("web-pending.png"));

    // CSRF: the session cookie alone is not enough, and other origins are refused.
    let cookie = format!("jitsudo_session={}", session["value"].as_str().unwrap());
    let form = format!("csrf=forged&id={xss_id}&comment=x");
    assert_eq!(raw_post(&svc, "/ui/approve", &cookie, &form, None), 403);
    let csrf_field = b.find_all("input[name=csrf]");
    let csrf = b
        .call(
            "GET",
            &b.s(&format!("/element/{}/property/value", csrf_field[0])),
            None,
        )
        .as_str()
        .unwrap()
        .to_string();
    let form = format!("csrf={csrf}&id={xss_id}&comment=x");
    assert_eq!(
        raw_post(
            &svc,
            "/ui/approve",
            &cookie,
            &form,
            Some("https://evil.example")
        ),
        403
    );
    let pending = svc.get_json(&format!("/v1/requests/{xss_id}"), &bob);
    assert_eq!(
        pending["status"], "pending",
        "nothing was approved by the refused forms"
    );

    // Approve from the page: the grant appears.
    b.type_into(
        &format!("{card} form[action='/ui/approve'] input[name=comment]"),
        "ok, on call",
    );
    b.submit(&format!("{card} button.approve"));
    let flash = b.text("#flash");
    assert!(flash.contains("approved; grant"), "{flash}");
    let view = svc.get_json(&format!("/v1/requests/{xss_id}"), &bob);
    assert_eq!(view["status"], "approved");
    assert_eq!(view["approvals"][0]["comment"], "ok, on call");
    let grant = view["grant_id"].as_str().unwrap().to_string();
    assert!(flash.contains(&grant), "{flash}");
    let gcard = format!("#grant-{grant}");
    let gtext = b.text(&gcard);
    assert!(
        gtext.contains("alice") && gtext.contains("active"),
        "{gtext}"
    );
    assert!(b.find_all(&card).is_empty(), "no longer pending");
    b.assert_no_alert();
    b.screenshot(&docs().join("web-grant.png"));

    // Deny the other one with a comment, revoke the grant.
    let other_card = format!("#req-{other_id}");
    b.type_into(
        &format!("{other_card} form[action='/ui/deny'] input[name=comment]"),
        "not during the freeze",
    );
    b.submit(&format!("{other_card} button.deny"));
    assert!(b.text("#flash").contains("denied"));
    assert_eq!(
        svc.get_json(&format!("/v1/requests/{other_id}"), &bob)["status"],
        "denied"
    );
    b.type_into(&format!("{gcard} input[name=reason]"), "done");
    b.submit(&format!("{gcard} button.revoke"));
    assert!(b.text("#flash").contains("revoked"));
    assert!(b.text(&gcard).contains("revoked by bob"));

    // All of it is in the audit trail, and the chain holds.
    let out = run_ok(svc.ctl(&bob).args(["audit", "--grant", &grant]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("grant.issued") && text.contains("grant.revoked"),
        "{text}"
    );
    run_ok(svc.ctl(&bob).args(["audit", "verify"]));

    // Signing out ends the session on the server too; a form sent with the old cookie
    // gets the sign-in page (401), never a silent redirect, and changes nothing.
    b.submit("header button");
    b.find("#token");
    assert_eq!(
        raw_post(
            &svc,
            "/ui/revoke",
            &cookie,
            &format!("csrf={csrf}&grant={grant}&reason=x"),
            None
        ),
        401
    );
}

const AUTO_POLICY: &str = r#"
[[rule]]
name = "auto-id"
commands = ["/usr/bin/id *"]
decision = "auto"
max_duration = "1h"
"#;

/// What the recorded shell printed: bold text, a line rewritten after a carriage
/// return, and markup that must show as text.
const PRINTED: &[u8] =
    b"hello \x1b[1mfrom the recorded\x1b[0m shell\r\nwrong line\rfixed line\x1b[K\r\n<script>alert(2)</script>\r\n";

/// Upload one host journal record of a run under `grant` (the service keeps it in the
/// audit trail, where the page finds the grant's runs).
fn upload_run(svc: &Service, key: &SecretKey, grant: &str, recording: &str) {
    use jitsudo_core::store::journal::{next_record, Anchor, Entry, RecordingRef};
    let entry = Entry {
        time: jitsudo_core::grant::now(),
        host: "web-01".into(),
        user: "alice".into(),
        uid: 1000,
        outcome: "allowed".into(),
        reason: String::new(),
        tty: "pts/3".into(),
        pwd: "/home/alice".into(),
        run_as: Some("root".into()),
        grant: Some(grant.into()),
        command: vec!["/usr/bin/id".into(), "-u".into()],
        argv: None,
        recording: Some(RecordingRef::named(recording)),
    };
    let genesis = Anchor {
        seq: 0,
        hash: "0".repeat(64),
    };
    let record = next_record(&genesis, entry);
    let body = wire::JournalUpload {
        records: vec![serde_json::to_string(&record).unwrap()],
    };
    let env = wire::sign_envelope(
        key,
        "web-01",
        wire::PATH_JOURNAL,
        jitsudo_core::grant::now(),
        &body,
    )
    .unwrap();
    let resp = ureq::post(format!("{}{}", svc.url, wire::PATH_JOURNAL))
        .header("content-type", "application/json")
        .send(serde_json::to_string(&Signed { envelope: env }).unwrap())
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

/// Record `PRINTED` under `grant` and upload it as `jitsudo --sync` does; its id.
fn upload_recording(svc: &Service, key: &SecretKey, grant: &str) -> String {
    use jitsudo_core::iolog::writer::Recorder;
    use jitsudo_core::iolog::{SessionInfo, Stream};
    use std::os::unix::fs::PermissionsExt;
    let base = TempDir::new("web-recordings");
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let info = SessionInfo {
        started: (jitsudo_core::grant::now(), 0),
        user: "alice".into(),
        host: "web-01".into(),
        cwd: "/home/alice".into(),
        run_user: "root".into(),
        run_uid: 0,
        run_group: "root".into(),
        run_gid: 0,
        tty: "/dev/pts/3".into(),
        lines: 24,
        columns: 80,
        command: "/usr/bin/id".into(),
        argv: vec!["id".into(), "-u".into()],
        grant: grant.into(),
    };
    let mut r = Recorder::create(base.path(), &info, true).unwrap();
    r.record(Stream::TtyIn, b"secret-typed-input\r").unwrap();
    for piece in PRINTED.chunks(16) {
        r.record(Stream::TtyOut, piece).unwrap();
    }
    let dir = r.dir().to_path_buf();
    let seal = r.finish().unwrap();
    let send = |body: &wire::RecordingUpload| {
        let env = wire::sign_envelope(
            key,
            "web-01",
            wire::PATH_RECORDINGS,
            jitsudo_core::grant::now(),
            body,
        )
        .unwrap();
        let mut resp = agent()
            .post(format!("{}{}", svc.url, wire::PATH_RECORDINGS))
            .header("content-type", "application/json")
            .send(serde_json::to_string(&Signed { envelope: env }).unwrap())
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.body_mut().read_json::<wire::RecordingAck>().unwrap()
    };
    for name in wire::RECORDING_FILES {
        let Ok(bytes) = std::fs::read(dir.join(name)) else {
            continue;
        };
        if bytes.is_empty() {
            continue;
        }
        send(&wire::RecordingUpload::Part {
            id: seal.id.to_string(),
            file: name.into(),
            offset: 0,
            data: wire::base64_encode(&bytes),
        });
    }
    let ack = send(&wire::RecordingUpload::Finish(wire::RecordingMeta {
        id: seal.id.to_string(),
        grant: grant.into(),
        user: "alice".into(),
        run_as: "root".into(),
        command: "/usr/bin/id -u".into(),
        started: jitsudo_core::grant::now(),
        chunks: seal.chunks,
        sha256: seal.hash.clone(),
        cut: false,
    }));
    assert!(ack.complete, "{ack:?}");
    seal.id.to_string()
}

/// A grant's card lists its runs (from the uploaded journal) and its recording; the
/// recording's link opens the player, which loads its self-hosted script under the
/// strict policy (no violation in the console), fetches the recording and plays what
/// the command printed, as text. An inline script injected into the same page is
/// refused and reported, so the console check can fail.
#[test]
fn grant_runs_recordings_and_the_player_in_chromium() {
    common::require_root();
    let db = TempDir::new("web-player-db");
    let svc = Service::start(
        &format!("sqlite://{}/x.db", db.path().display()),
        AUTO_POLICY,
        None,
    );
    let key = SecretKey::generate("host").unwrap();
    run_ok(
        svc.ctl(&svc.admin_token)
            .args(["host", "add", "web-01", &key.public.to_paserk()]),
    );
    let bob = svc.add_approver("bob", &["sre"]);
    let asked = ask(&svc, &key, "alice", &["/usr/bin/id", "-u"], "INC-9 look");
    let request = asked["id"].as_str().unwrap();
    let grant = svc.get_json(&format!("/v1/requests/{request}"), &bob)["grant_id"]
        .as_str()
        .expect("granted at once")
        .to_string();
    let id = upload_recording(&svc, &key, &grant);
    upload_run(&svc, &key, &grant, &id);

    // The player page's policy: this origin's script and fetches, nothing inline.
    let login = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent()
        .post(format!("{}/ui/login", svc.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .send(format!("token={bob}"))
        .unwrap();
    let cookie = login
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = agent()
        .get(format!("{}/ui/recordings/web-01/{id}", svc.url))
        .header("cookie", &cookie)
        .call()
        .unwrap();
    let csp = page
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("script-src 'self'")
            && !csp.contains("unsafe"),
        "{csp}"
    );
    let dashboard = agent().get(format!("{}/ui", svc.url)).call().unwrap();
    let dashboard_csp = dashboard
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(!dashboard_csp.contains("script-src"), "{dashboard_csp}");
    // Without a session, neither the page nor its data.
    let anonymous = agent()
        .get(format!("{}/ui/recordings/web-01/{id}/data", svc.url))
        .call()
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let data: Value = agent()
        .get(format!("{}/ui/recordings/web-01/{id}/data", svc.url))
        .header("cookie", &cookie)
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    assert_eq!(data["verified"], true, "{data}");
    assert!(data.get("ttyin").is_none(), "input is never served: {data}");
    let script = agent()
        .get(format!("{}/ui/static/player.js", svc.url))
        .call()
        .unwrap();
    assert!(script
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));

    let b = Driver::start();
    b.go(&format!("{}/ui", svc.url));
    b.type_into("#token", &bob);
    b.submit("#signin");
    let card = format!("#grant-{grant}");
    let runs = b.text(&format!("{card} ul.runs"));
    assert!(
        runs.contains("ran") && runs.contains("/usr/bin/id -u") && runs.contains("alice on web-01"),
        "{runs}"
    );
    let recorded = b.text(&format!("{card} ul.recordings"));
    assert!(
        recorded.contains(&id) && recorded.contains("sealed"),
        "{recorded}"
    );
    b.screenshot(&docs().join("web-runs.png"));
    let _ = b.console();

    b.submit(&format!("{card} ul.recordings a"));
    let shown = b.wait_text("#screen", "fixed line");
    assert!(shown.contains("hello from the recorded shell"), "{shown:?}");
    assert!(
        !shown.contains("[1m") && !shown.contains("wrong line"),
        "{shown:?}"
    );
    assert!(shown.contains("<script>alert(2)</script>"), "{shown:?}");
    assert!(!shown.contains("secret-typed-input"), "{shown:?}");
    assert!(b.text("#chain").contains("chain verified"));
    assert_eq!(b.text("#state"), "sealed");
    b.assert_no_alert();
    b.wait_text("#progress", "(end)");
    // Pause, then play again from the start at another speed.
    b.click("#pause");
    b.execute("document.getElementById('speed').value = '0'; return true;");
    b.click("#restart");
    b.wait_text("#screen", "fixed line");
    b.screenshot(&docs().join("web-player.png"));
    let console = b.console();
    assert!(
        !console
            .iter()
            .any(|m| m.contains("Content Security Policy") || m.contains("Refused to")),
        "{console:?}"
    );

    // The check can fail: an inline script added to the page is refused, and said so.
    let ran = b.execute(
        "var s = document.createElement('script'); s.textContent = 'window.injected = 1;'; \
         document.body.appendChild(s); return window.injected === 1;",
    );
    assert_eq!(ran, false, "the inline script ran");
    let console = b.console();
    assert!(
        console
            .iter()
            .any(|m| m.contains("Content Security Policy")),
        "{console:?}"
    );
}
