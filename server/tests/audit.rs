//! The audit trail and webhooks against the real service, on SQLite and PostgreSQL:
//! every change is recorded and searchable with `jitsudoctl audit`; altering, deleting
//! or reordering one row in the database makes `jitsudoctl audit verify` fail naming
//! that record; a webhook receiver in the test gets signed deliveries and a retry after
//! it answered 500.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::pg::Pg;
use common::world::{run_ok, Expect, Outcome, Service};
use common::TempDir;
use hmac::{Hmac, Mac};
use jitsudo_core::grant::keys::SecretKey;
use jitsudo_core::wire::{self, NewRequest, Signed};
use sha2::Sha256;

const POLICY: &str = r#"
[[rule]]
name = "deny-shells"
commands = ["/bin/sh *"]
decision = "deny"

[[rule]]
name = "auto-id"
commands = ["/usr/bin/id *"]
decision = "auto"

[[rule]]
name = "sre-approves"
commands = ["/usr/bin/whoami", "/usr/bin/uptime"]
decision = "approve"
approvers = ["group:sre"]
"#;

const SECRET: &str = "webhook-secret-0123456789";

/// Send a signed host request; the service's answer.
pub fn ask(
    svc: &Service,
    key: &SecretKey,
    user: &str,
    argv: &[&str],
    reason: &str,
) -> serde_json::Value {
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
    let mut resp = ureq::post(format!("{}{}", svc.url, wire::PATH_REQUESTS))
        .header("content-type", "application/json")
        .send(serde_json::to_string(&Signed { envelope: env }).unwrap())
        .unwrap();
    resp.body_mut().read_json().unwrap()
}

// ---- a webhook receiver -----------------------------------------------------------------

#[derive(Clone, Debug)]
struct Delivery {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    at: Instant,
}

impl Delivery {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header in {self:?}"))
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A tiny HTTP server on 127.0.0.1: answers 500 to the first POST to /hook, 200 to
/// everything else, and keeps what it received.
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
            let mut failed_once = false;
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    continue;
                }
                let path = first.split(' ').nth(1).unwrap_or("").to_string();
                let mut headers = Vec::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.trim().split_once(':') {
                        headers.push((k.trim().to_string(), v.trim().to_string()));
                    }
                }
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                let status = if path == "/hook" && !failed_once {
                    failed_once = true;
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                store.lock().unwrap().push(Delivery {
                    path,
                    headers,
                    body,
                    at: Instant::now(),
                });
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        Receiver { port, got }
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.got.lock().unwrap().clone()
    }

    /// Wait until `pred` holds for what was received.
    fn wait_for(&self, what: &str, pred: impl Fn(&[Delivery]) -> bool) -> Vec<Delivery> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let d = self.deliveries();
            if pred(&d) {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "webhook receiver never saw {what}: {d:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn check_signature(d: &Delivery) {
    let ts = d.header("x-jitsudo-timestamp");
    let sig = d.header("x-jitsudo-signature");
    let hex = sig.strip_prefix("sha256=").expect(sig);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(&d.body);
    let want: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    mac.verify_slice(&want)
        .unwrap_or_else(|_| panic!("bad signature on {d:?}"));
    let age = jitsudo_core::grant::now() - ts.parse::<i64>().unwrap();
    assert!((0..60).contains(&age), "timestamp {ts} is not current");
}

// ---- the suite --------------------------------------------------------------------------

#[test]
fn audit_and_webhooks_sqlite() {
    common::require_root();
    let dir = TempDir::new("audit-db");
    let url = format!("sqlite://{}/jitsudod.db", dir.path().display());
    suite(&url);
}

#[test]
fn audit_and_webhooks_postgres() {
    let pg = Pg::start();
    let url = pg.new_database();
    suite(&url);
}

fn ctl(svc: &Service, token: &str, args: &[&str]) -> Outcome {
    Outcome::of(svc.ctl(token).args(args).output().unwrap())
}

fn records(svc: &Service, token: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["audit", "--json"];
    all.extend_from_slice(args);
    let out = ctl(svc, token, &all).ok();
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn suite(database: &str) {
    let hooks = Receiver::start();
    let top = format!(
        "[[webhook]]\nurl = \"http://127.0.0.1:{p}/hook\"\nsecret = \"{SECRET}\"\n\
         [[webhook]]\nurl = \"http://127.0.0.1:{p}/slack\"\nsecret = \"{SECRET}\"\nformat = \"slack\"\nevents = [\"request.created\"]\n",
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

    // Auto, denied, pending → approved → revoked, pending → denied.
    let auto = ask(
        &svc,
        &key,
        "carol",
        &["/usr/bin/id", "-u"],
        "INC-1 check id",
    );
    assert_eq!(auto["status"], "approved", "{auto}");
    let shell = ask(&svc, &key, "carol", &["/bin/sh", "-c", "x"], "shell please");
    assert_eq!(shell["status"], "denied", "{shell}");
    let p1 = ask(
        &svc,
        &key,
        "alice",
        &["/usr/bin/whoami"],
        "INC-2 <script>alert(1)</script>",
    );
    assert_eq!(p1["status"], "pending", "{p1}");
    let id1 = p1["id"].as_str().unwrap();
    let out = ctl(&svc, &bob, &["approve", id1, "--comment", "looks fine"]).ok();
    let grant = out
        .stdout
        .split("grant ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("{out:?}"))
        .to_string();
    ctl(&svc, &bob, &["revoke", &grant, "--reason", "done early"]).ok();
    let p2 = ask(&svc, &key, "alice", &["/usr/bin/uptime"], "INC-3");
    let id2 = p2["id"].as_str().unwrap();
    ctl(&svc, &bob, &["deny", id2, "--reason", "not now"]).ok();

    // ---- search -------------------------------------------------------------------------
    let all = records(&svc, &admin, &[]);
    let kinds: Vec<&str> = all.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    for k in [
        "approver.added",
        "key.activated",
        "host.registered",
        "request.created",
        "request.decided",
        "request.approval",
        "request.approved",
        "grant.issued",
        "grant.revoked",
        "request.denied",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r["seq"], (i + 1) as i64, "seq without gaps: {r}");
    }
    let decided = all
        .iter()
        .find(|r| r["kind"] == "request.decided" && r["request"] == id1)
        .unwrap();
    let detail: serde_json::Value =
        serde_json::from_str(decided["detail"].as_str().unwrap()).unwrap();
    assert_eq!(
        detail["rule"], "sre-approves",
        "the decision names its rule"
    );
    let alice = records(&svc, &bob, &["--user", "alice"]);
    assert!(!alice.is_empty() && alice.iter().all(|r| r["user"] == "alice"));
    let by_grant = records(&svc, &bob, &["--grant", &grant]);
    let gk: Vec<&str> = by_grant
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    for k in [
        "request.created",
        "request.decided",
        "request.approval",
        "grant.issued",
        "grant.revoked",
    ] {
        assert!(
            gk.contains(&k),
            "--grant shows the grant's story: {k} missing from {gk:?}"
        );
    }
    assert!(records(&svc, &bob, &["--host", "web-99"]).is_empty());
    assert!(records(&svc, &bob, &["--since", "2999-01-01T00:00:00Z"]).is_empty());
    assert_eq!(
        records(
            &svc,
            &bob,
            &["--since", "1h", "--until", "2999-01-01T00:00:00Z"]
        )
        .len(),
        all.len()
    );
    let human = ctl(&svc, &bob, &["audit", "--user", "alice"]).ok();
    assert!(
        human.stdout.contains("request.created") && human.stdout.contains("user=alice"),
        "{human:?}"
    );
    ctl(&svc, "jt_wrong", &["audit"]).denied("unknown approver token");

    let ok = ctl(&svc, &bob, &["audit", "verify"]).ok();
    assert!(
        ok.stdout.contains(&format!("{} record(s)", all.len())),
        "{ok:?}"
    );

    // ---- tampering ----------------------------------------------------------------------
    common::block_on(tamper_checks(&svc, &bob, database));

    // ---- webhooks -----------------------------------------------------------------------
    let got = hooks.wait_for("all events", |d| {
        let ev: Vec<String> = d
            .iter()
            .filter(|x| x.path == "/hook")
            .map(|x| x.json()["event"].as_str().unwrap_or("").to_string())
            .collect();
        ["request.created", "request.approved", "request.denied", "grant.issued", "grant.revoked"]
            .iter()
            .all(|k| ev.iter().any(|e| e == k))
            // 13 events (auto: 3, shell: 2, approved by people: 5 with request.decided,
            // denied by people: 3) and one retry.
            && ev.len() >= 14
            && d.iter().filter(|x| x.path == "/slack").count() >= 4
    });
    for d in &got {
        check_signature(d);
        assert_eq!(d.header("content-type"), "application/json");
    }
    // The first delivery was answered 500 and came again, same delivery id, a second later.
    let first = got.iter().find(|d| d.path == "/hook").unwrap();
    let again: Vec<&Delivery> = got
        .iter()
        .filter(|d| d.header("x-jitsudo-delivery") == first.header("x-jitsudo-delivery"))
        .collect();
    assert_eq!(again.len(), 2, "one retry after the 500: {again:#?}");
    assert_eq!(
        got.iter().filter(|d| d.path == "/hook").count(),
        14,
        "nothing else was sent twice"
    );
    assert!(again[1].at.duration_since(again[0].at) >= Duration::from_millis(900));
    assert_eq!(again[0].body, again[1].body);
    let approved = got
        .iter()
        .find(|d| {
            d.path == "/hook"
                && d.json()["event"] == "request.approved"
                && d.json()["request"]["id"] == id1
        })
        .unwrap()
        .json();
    assert_eq!(approved["actor"], "bob");
    assert_eq!(approved["comment"], "looks fine");
    assert_eq!(
        approved["request"]["reason"],
        "INC-2 <script>alert(1)</script>"
    );
    let slack: Vec<serde_json::Value> = got
        .iter()
        .filter(|d| d.path == "/slack")
        .map(|d| d.json())
        .collect();
    assert_eq!(
        slack.len(),
        4,
        "only request.created goes to the slack hook: {slack:?}"
    );
    let text = slack
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .find(|t| t.contains("INC-2"))
        .unwrap();
    assert!(
        text.contains("&lt;script&gt;") && !text.contains("<script>"),
        "{text}"
    );
    let metrics = ureq::get(format!("{}/metrics", svc.url))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        metrics.contains("jitsudod_webhook_deliveries_total{result=\"failed_attempt\"} 1"),
        "{metrics}"
    );
    assert!(
        svc.log().contains("webhook delivery failed; will retry"),
        "{}",
        svc.log()
    );
}

async fn tamper_checks(svc: &Service, token: &str, database: &str) {
    use sqlx::Row;
    let pool = common::connect_database(database).await;
    let exec = |sql: String| {
        let pool = pool.clone();
        async move {
            sqlx::query(&sql)
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    };
    let verify_fails = |needle: &'static str| {
        let out = ctl(svc, token, &["audit", "verify"]);
        assert_eq!(out.code, 1, "verify must fail: {out:?}");
        assert!(out.stderr.contains(needle), "{needle:?} not in {out:?}");
    };

    // Altered: one field of record 5.
    let detail: String = sqlx::query("SELECT detail FROM audit_log WHERE seq = 5")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("detail");
    exec("UPDATE audit_log SET detail = '{\"reason\":\"nothing to see\"}' WHERE seq = 5".into())
        .await;
    verify_fails("audit record 5: was altered");
    exec(format!(
        "UPDATE audit_log SET detail = '{}' WHERE seq = 5",
        detail.replace('\'', "''")
    ))
    .await;
    ctl(svc, token, &["audit", "verify"]).ok();

    // Removed: record 6.
    exec("CREATE TABLE audit_saved AS SELECT * FROM audit_log WHERE seq = 6".into()).await;
    exec("DELETE FROM audit_log WHERE seq = 6".into()).await;
    verify_fails("audit record 6: record 6 is missing");
    exec("INSERT INTO audit_log SELECT * FROM audit_saved".into()).await;
    exec("DROP TABLE audit_saved".into()).await;
    ctl(svc, token, &["audit", "verify"]).ok();

    // Reordered: records 7 and 8 swap places.
    exec("UPDATE audit_log SET seq = -8 WHERE seq = 8".into()).await;
    exec("UPDATE audit_log SET seq = 8 WHERE seq = 7".into()).await;
    exec("UPDATE audit_log SET seq = 7 WHERE seq = -8".into()).await;
    verify_fails("audit record 7: does not follow record 6");
    exec("UPDATE audit_log SET seq = -7 WHERE seq = 7".into()).await;
    exec("UPDATE audit_log SET seq = 7 WHERE seq = 8".into()).await;
    exec("UPDATE audit_log SET seq = 8 WHERE seq = -7".into()).await;
    ctl(svc, token, &["audit", "verify"]).ok();

    // The service's own walk agrees, and says so to any approver.
    exec("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2".into()).await;
    let v = svc.get_json("/v1/audit/verify", token);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["seq"], 2, "{v}");
    pool.close().await;
}

// ---- concurrent writers -------------------------------------------------------------------

#[test]
fn concurrent_writers_seal_one_chain_sqlite() {
    common::require_root();
    let dir = TempDir::new("audit-concurrent-db");
    let url = format!("sqlite://{}/jitsudod.db", dir.path().display());
    concurrent_writers(&url);
}

#[test]
fn concurrent_writers_seal_one_chain_postgres() {
    let pg = Pg::start();
    let url = pg.new_database();
    concurrent_writers(&url);
}

/// 200 auto-approved requests at once (each transaction adds three records): afterwards
/// every record is sealed into one intact chain and the counts match.
fn concurrent_writers(database: &str) {
    const N: usize = 200;
    let svc = Service::start_with(
        database,
        POLICY,
        None,
        "user_requests_per_minute = 100000\nhost_requests_per_minute = 100000\n",
        "",
    );
    let admin = svc.admin_token.clone();
    let key = SecretKey::generate("host").unwrap();
    run_ok(
        svc.ctl(&admin)
            .args(["host", "add", "web-01", &key.public.to_paserk()]),
    );
    let auditor = svc.add_approver("auditor", &[]);
    let svc = Arc::new(svc);
    let key = Arc::new(key);
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let (svc, key) = (svc.clone(), key.clone());
            std::thread::spawn(move || {
                for i in (t..N).step_by(16) {
                    let user = format!("user{}", i % 7);
                    let a = ask(
                        &svc,
                        &key,
                        &user,
                        &["/usr/bin/id", "-u"],
                        &format!("load {i}"),
                    );
                    assert_eq!(a["status"], "approved", "{a}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let v = svc.get_json("/v1/audit/verify", &auditor);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["pending"], 0, "everything committed is sealed: {v}");
    let mut all: Vec<serde_json::Value> = Vec::new();
    loop {
        let after = all
            .last()
            .map_or(String::new(), |r| format!("&after={}", r["seq"]));
        let page = svc.get_json(&format!("/v1/audit?limit=1000{after}"), &auditor);
        let page = page.as_array().unwrap().clone();
        let n = page.len();
        all.extend(page);
        if n < 1000 {
            break;
        }
    }
    assert_eq!(v["records"], all.len() as u64, "{v}");
    let count = |k: &str| all.iter().filter(|r| r["kind"] == k).count();
    assert_eq!(count("request.created"), N);
    assert_eq!(count("request.decided"), N);
    assert_eq!(count("grant.issued"), N);
    // approver.added ×2 (admin, auditor), key.activated, policy.loaded, host.registered.
    assert_eq!(all.len(), 3 * N + 5, "no record lost or doubled");
    // One chain, no fork: each record links to the one before it.
    let mut prev = jitsudo_policy::audit::GENESIS.to_string();
    for r in &all {
        assert_eq!(r["prev"], prev.as_str(), "{r}");
        prev = r["hash"].as_str().unwrap().to_string();
    }
    assert_eq!(v["head"], prev.as_str());
    // The rows in the database, sealed or not, are exactly those.
    common::block_on(async {
        use sqlx::Row;
        let pool = common::connect_database(database).await;
        let row = sqlx::query("SELECT COUNT(*) AS n, COUNT(hash) AS sealed FROM audit_log")
            .fetch_one(&pool)
            .await
            .unwrap();
        let (n, sealed): (i64, i64) = (row.get("n"), row.get("sealed"));
        assert_eq!((n, sealed), (all.len() as i64, all.len() as i64));
        pool.close().await;
    });
}
