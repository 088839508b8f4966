//! Several real `jitsudod` replicas on one real PostgreSQL server the test starts, as
//! behind a load balancer: clients pick a replica per call.
//!
//! * concurrent approvals of the same requests through different replicas: exactly one
//!   grant per approved request, no lost and no double-counted approval, one audit chain
//!   with the same head on every replica;
//! * `kill -9` of one replica under a load through all of them: no 5xx from the
//!   survivors, and everything a client was told is stored;
//! * web sessions across replicas: sign in on A, approve on B (recorded), a restart
//!   signs nobody out, signing out or an expired session answers the sign-in page
//!   saying the action was not recorded;
//! * three replicas starting at once record one `key.activated`; a rolling rotation
//!   records k1 → k2 once, and a replica still on k1 records no switch back;
//! * replicas with different policy files show it in /metrics, in `policy.loaded`
//!   records and in each decision's policy hash;
//! * a rate limit holds for the fleet, not per replica.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::pg::Pg;
use common::world::run_ok;
use common::TempDir;
use jitsudo_core::grant::keys::SecretKey;
use jitsudo_core::wire::{self, NewRequest, RequestStatus, RequestView, Signed};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;

/// (status, headers as (lowercase name, value), body).
type Answer = (u16, Vec<(String, String)>, String);

const POLICY: &str = r#"
[[rule]]
name = "auto-id"
commands = ["/usr/bin/id *"]
decision = "auto"

[[rule]]
name = "one-approver"
commands = ["/usr/bin/whoami"]
decision = "approve"
approvals = 1
approvers = ["bob", "carol", "dave"]

[[rule]]
name = "two-approvers"
commands = ["/usr/bin/uptime"]
decision = "approve"
approvals = 2
approvers = ["bob", "carol", "dave"]
"#;

const HOST: &str = "replica-host";
const BIG_LIMITS: &str =
    "user_requests_per_minute = 10000000\nhost_requests_per_minute = 10000000\n";

// ---- the fleet ---------------------------------------------------------------------------

/// One running `jitsudod serve` of the fleet; killed on drop.
struct Replica {
    name: String,
    child: Child,
    url: String,
    config: PathBuf,
    log: PathBuf,
}

impl Replica {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Start replica `name` on `config`; its stderr goes to `dir`/replica-NAME.log.
fn spawn(name: &str, config: &Path, dir: &Path) -> Replica {
    let log = dir.join(format!("replica-{name}.log"));
    let (child, url) = jitsudo_testbed::serve(config, None, &log);
    Replica {
        name: name.to_string(),
        child,
        url,
        config: config.to_path_buf(),
        log,
    }
}

/// Keys, policies and configs in one directory, the database on `pg`.
struct Fleet {
    // Replicas before the directory and the server: fields drop in order.
    replicas: Vec<Replica>,
    database: String,
    admin: String,
    dir: TempDir,
    _pg: Pg,
}

impl Fleet {
    /// Signing keys k1 and k2, policy `POLICY`; no replica started yet.
    fn new(tag: &str) -> Fleet {
        let pg = Pg::start();
        let database = pg.new_database();
        let dir = TempDir::new(tag);
        for id in ["k1", "k2"] {
            run_ok(
                Command::new(common::world::bin("jitsudoctl"))
                    .args(["keygen", "--id", id, "--out"])
                    .arg(dir.path().join("keys")),
            );
        }
        let mut fleet = Fleet {
            replicas: Vec::new(),
            database,
            admin: String::new(),
            dir,
            _pg: pg,
        };
        fleet.write_config("a", "k1", POLICY, BIG_LIMITS);
        let admin = run_ok(
            Command::new(common::world::bin("jitsudod"))
                .args(["add-admin", "admin", "--config"])
                .arg(fleet.dir.path().join("a.toml")),
        );
        fleet.admin = String::from_utf8(admin.stdout).unwrap().trim().to_string();
        fleet
    }

    /// Write replica `name`'s config (`NAME.toml`) and policy (`NAME-policy.toml`).
    fn write_config(&self, name: &str, active_key: &str, policy: &str, limits: &str) -> PathBuf {
        let d = self.dir.path();
        fs::write(d.join(format!("{name}-policy.toml")), policy).unwrap();
        let config = d.join(format!("{name}.toml"));
        fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndatabase = \"{}\"\npolicy = \"{name}-policy.toml\"\n\
                 active_key = \"{active_key}\"\nreplica = \"{name}\"\n\
                 [[signing_key]]\nfile = \"keys/k1.key\"\n[[signing_key]]\nfile = \"keys/k2.key\"\n\
                 [limits]\n{limits}",
                self.database
            ),
        )
        .unwrap();
        config
    }

    /// Start replicas `names` with key `active_key`, all at once (one thread each).
    fn start(&mut self, names: &[&str], active_key: &str, limits: &str) {
        let configs: Vec<(String, PathBuf)> = names
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    self.write_config(n, active_key, POLICY, limits),
                )
            })
            .collect();
        let dir = self.dir.path().to_path_buf();
        let started: Vec<Replica> = std::thread::scope(|s| {
            let handles: Vec<_> = configs
                .iter()
                .map(|(n, c)| {
                    let dir = dir.clone();
                    s.spawn(move || spawn(n, c, &dir))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        self.replicas.extend(started);
    }

    fn replica(&self, name: &str) -> &Replica {
        self.replicas.iter().find(|r| r.name == name).unwrap()
    }

    fn replica_mut(&mut self, name: &str) -> &mut Replica {
        self.replicas.iter_mut().find(|r| r.name == name).unwrap()
    }

    /// Stop replica `name` (kill -9) and start it again on its config as it is now.
    fn restart(&mut self, name: &str) {
        let dir = self.dir.path().to_path_buf();
        let r = self.replica_mut(name);
        r.kill9();
        let config = r.config.clone();
        *r = spawn(name, &config, &dir);
    }

    fn url(&self, name: &str) -> String {
        self.replica(name).url.clone()
    }

    /// Register `HOST` with a new key, and approvers bob, carol, dave; their tokens.
    fn setup(&self) -> (Arc<SecretKey>, HashMap<&'static str, String>) {
        let key = SecretKey::generate("host").unwrap();
        let a = &self.replicas[0].url;
        let (s, t) = call(
            &agent(),
            "POST",
            &format!("{a}/v1/admin/hosts"),
            &[("authorization", &format!("Bearer {}", self.admin))],
            Some(
                serde_json::json!({"name": HOST, "public_key": key.public.to_paserk()}).to_string(),
            ),
        )
        .unwrap();
        assert_eq!(s, 200, "{t}");
        let mut tokens = HashMap::new();
        for name in ["bob", "carol", "dave"] {
            let (s, t) = call(
                &agent(),
                "POST",
                &format!("{a}/v1/admin/approvers"),
                &[("authorization", &format!("Bearer {}", self.admin))],
                Some(serde_json::json!({"name": name, "groups": [], "admin": false}).to_string()),
            )
            .unwrap();
            assert_eq!(s, 200, "{t}");
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            tokens.insert(name, v["token"].as_str().unwrap().to_string());
        }
        (Arc::new(key), tokens)
    }

    /// Rows of `sql` (text parameters `binds`) on the shared database, read directly.
    fn rows(&self, sql: &str, binds: &[&str]) -> Vec<AnyRow> {
        common::block_on(async {
            let pool = common::connect_database(&self.database).await;
            let mut q = sqlx::query(sql);
            for b in binds {
                q = q.bind(b.to_string());
            }
            let rows = q.fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        })
    }

    /// The details of the audit records of `kind`, oldest first.
    fn audit_of(&self, kind: &str) -> Vec<serde_json::Value> {
        self.rows(
            "SELECT detail FROM audit_log WHERE kind = $1 ORDER BY seq",
            &[kind],
        )
        .iter()
        .map(|r| serde_json::from_str(&r.get::<String, _>("detail")).unwrap())
        .collect()
    }

    fn count(&self, sql: &str) -> i64 {
        self.rows(sql, &[])[0].get::<i64, _>(0)
    }

    /// Column 0 of the one row of `sql`.
    fn text(&self, sql: &str, binds: &[&str]) -> String {
        let rows = self.rows(sql, binds);
        assert_eq!(rows.len(), 1, "{sql} {binds:?}");
        rows[0].get::<String, _>(0)
    }
}

// ---- HTTP ------------------------------------------------------------------------------

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .new_agent()
}

/// One exchange: Ok((status, body)), or Err on a transport failure.
fn call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Result<(u16, String), String> {
    full_call(agent, method, url, headers, body, "application/json").map(|(s, _, t)| (s, t))
}

/// One exchange with its headers: (status, headers as (lowercase name, value), body).
fn full_call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
    content_type: &str,
) -> Result<Answer, String> {
    let result = if method == "GET" {
        let mut r = agent.get(url);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.call()
    } else {
        let mut r = agent.post(url).header("content-type", content_type);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send(body.unwrap_or_default())
    };
    let mut resp = result.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let heads = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((status, heads, text))
}

/// A signed host request from `user` for `argv` to the replica at `url`.
fn ask(
    agent: &ureq::Agent,
    url: &str,
    key: &SecretKey,
    user: &str,
    argv: &[String],
) -> Result<(u16, String), String> {
    let body = NewRequest {
        kind: jitsudo_core::grant::Kind::Exec,
        user: user.to_string(),
        uid: 42000,
        groups: vec![],
        run_as: "root".into(),
        argv: argv.to_vec(),
        reason: "replica test".into(),
        duration: None,
        once: false,
        source: None,
        ticket: None,
        extends: None,
    };
    let envelope = wire::sign_envelope(
        key,
        HOST,
        wire::PATH_REQUESTS,
        jitsudo_core::grant::now(),
        &body,
    )
    .unwrap();
    call(
        agent,
        "POST",
        &format!("{url}{}", wire::PATH_REQUESTS),
        &[],
        Some(serde_json::to_string(&Signed { envelope }).unwrap()),
    )
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// A new pending request through `url`; its id.
fn pending(agent: &ureq::Agent, url: &str, key: &SecretKey, command: &str) -> String {
    let (s, t) = ask(agent, url, key, "alice", &argv(&[command])).unwrap();
    assert_eq!(s, 200, "{t}");
    let status: RequestStatus = serde_json::from_str(&t).unwrap();
    assert_eq!(status.status, "pending", "{t}");
    status.id
}

fn approve(agent: &ureq::Agent, url: &str, token: &str, id: &str) -> Result<(u16, String), String> {
    call(
        agent,
        "POST",
        &format!("{url}/v1/requests/{id}/approve"),
        &[("authorization", &format!("Bearer {token}"))],
        Some(r#"{"comment":"ok"}"#.into()),
    )
}

fn metrics(url: &str) -> String {
    let (s, t) = call(&agent(), "GET", &format!("{url}/metrics"), &[], None).unwrap();
    assert_eq!(s, 200, "{t}");
    t
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The audit chain as `url`'s replica verifies it: (ok, records, head).
fn verify(url: &str, token: &str) -> serde_json::Value {
    let (s, t) = call(
        &agent(),
        "GET",
        &format!("{url}/v1/audit/verify"),
        &[("authorization", &format!("Bearer {token}"))],
        None,
    )
    .unwrap();
    assert_eq!(s, 200, "{t}");
    serde_json::from_str(&t).unwrap()
}

/// The stored invariants every scenario ends with: at most one grant per request, an
/// approved request has exactly its grant and the approvals it needed, no more.
fn check_store(fleet: &Fleet) {
    let rows: Vec<(String, String, i64, i64, i64)> = fleet
        .rows(
            "SELECT r.id, r.status, r.approvals_needed, \
             (SELECT COUNT(*) FROM approvals a WHERE a.request_id = r.id) AS approvals, \
             (SELECT COUNT(*) FROM grants g WHERE g.request_id = r.id) AS grants \
             FROM requests r",
            &[],
        )
        .iter()
        .map(|r| {
            (
                r.get("id"),
                r.get("status"),
                r.get("approvals_needed"),
                r.get("approvals"),
                r.get("grants"),
            )
        })
        .collect();
    assert!(!rows.is_empty());
    for (id, status, needed, approvals, grants) in rows {
        match status.as_str() {
            "approved" => {
                assert_eq!(grants, 1, "request {id}: one grant");
                assert_eq!(
                    approvals, needed,
                    "request {id}: exactly the approvals needed"
                );
            }
            _ => {
                assert_eq!(grants, 0, "request {id} ({status}) has no grant");
                assert!(
                    approvals < needed.max(1),
                    "request {id}: {approvals}/{needed}"
                );
            }
        }
    }
}

// ---- concurrent approvals ------------------------------------------------------------------

#[test]
fn concurrent_approvals_through_different_replicas() {
    let mut fleet = Fleet::new("replicas-approve");
    fleet.start(&["a", "b", "c"], "k1", BIG_LIMITS);
    let (key, tokens) = fleet.setup();
    let names = ["a", "b", "c"];
    let urls: Vec<String> = names.iter().map(|n| fleet.url(n)).collect();
    let agent = agent();
    // 30 requests for one approver and 30 for two, created through all replicas.
    let mut ids = Vec::new();
    for i in 0..60 {
        let command = if i % 2 == 0 {
            "/usr/bin/whoami"
        } else {
            "/usr/bin/uptime"
        };
        ids.push((
            pending(&agent, &urls[i % 3], &key, command),
            if i % 2 == 0 { 1 } else { 2 },
        ));
    }
    // bob approves everything through a, carol through b, dave through c, at once.
    let answers: Vec<Vec<(String, u16, String)>> = std::thread::scope(|s| {
        let handles: Vec<_> = ["bob", "carol", "dave"]
            .iter()
            .enumerate()
            .map(|(i, who)| {
                let (url, token, ids) = (&urls[i], &tokens[*who], &ids);
                s.spawn(move || {
                    let agent = self::agent();
                    ids.iter()
                        .map(|(id, _)| {
                            let (st, t) = approve(&agent, url, token, id).unwrap();
                            (id.clone(), st, t)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut told: HashMap<String, Vec<String>> = HashMap::new();
    let mut accepted: HashMap<String, usize> = HashMap::new();
    for (id, status, text) in answers.into_iter().flatten() {
        match status {
            200 => {
                *accepted.entry(id.clone()).or_default() += 1;
                let view: RequestView = serde_json::from_str(&text).unwrap();
                if let Some(g) = view.grant_id {
                    told.entry(id).or_default().push(g);
                }
            }
            409 => assert!(
                text.contains("already approved") || text.contains("decided meanwhile"),
                "{text}"
            ),
            _ => panic!("approval of {id}: {status} {text}"),
        }
    }
    for (id, needed) in &ids {
        assert_eq!(
            accepted.get(id).copied().unwrap_or(0),
            *needed,
            "request {id}: as many approvals accepted as it needed, no lost or extra vote"
        );
        // Each answer shows the request as it is afterwards: every approver that saw a
        // grant saw the same one, and it is the one stored.
        let grants: HashSet<String> = told
            .get(id)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let stored = fleet.text("SELECT id FROM grants WHERE request_id = $1", &[id]);
        assert_eq!(
            grants,
            HashSet::from([stored]),
            "request {id}: one grant, the one stored"
        );
    }
    check_store(&fleet);
    assert_eq!(fleet.count("SELECT COUNT(*) FROM grants"), 60);
    assert_eq!(fleet.count("SELECT COUNT(*) FROM approvals"), 30 + 60);
    // One audit chain, the same head whichever replica verifies it.
    let heads: HashSet<String> = names
        .iter()
        .map(|n| {
            let v = verify(&fleet.url(n), &tokens["bob"]);
            assert_eq!(v["ok"], true, "{v}");
            v["head"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(heads.len(), 1, "{heads:?}");
    // Nothing here changed the fleet's key: one activation, by the first replica up.
    assert_eq!(fleet.audit_of("key.activated").len(), 1);
}

// ---- kill -9 under load ---------------------------------------------------------------------

#[derive(Default)]
struct Seen {
    /// (request id, grant token) from host requests, and (request id, grant id) from
    /// approvals.
    tokens: Vec<(String, String)>,
    grant_ids: Vec<(String, String)>,
    requests: Vec<String>,
    /// 5xx answers, by replica.
    server_errors: Vec<String>,
    /// Transport failures, by replica.
    transport: BTreeMap<String, usize>,
    ok: usize,
}

#[test]
fn kill9_of_one_replica_under_load() {
    let mut fleet = Fleet::new("replicas-kill");
    fleet.start(&["a", "b", "c"], "k1", BIG_LIMITS);
    let (key, tokens) = fleet.setup();
    let live: Arc<Mutex<Vec<(String, String)>>> = Arc::new(Mutex::new(
        ["a", "b", "c"]
            .iter()
            .map(|n| (n.to_string(), fleet.url(n)))
            .collect(),
    ));
    let seen = Arc::new(Mutex::new(Seen::default()));
    // Each pending request goes to both approvers, who race for it through whichever
    // replicas they reach.
    let queues: [Mutex<Vec<String>>; 2] = Default::default();
    let stop = Arc::new(AtomicBool::new(false));
    let pick = |live: &Mutex<Vec<(String, String)>>, n: usize| {
        let l = live.lock().unwrap();
        l[n % l.len()].clone()
    };
    let note =
        |seen: &Mutex<Seen>, replica: &str, what: &str, r: &Result<(u16, String), String>| {
            let mut s = seen.lock().unwrap();
            match r {
                Err(_) => *s.transport.entry(replica.to_string()).or_default() += 1,
                Ok((st, t)) if *st >= 500 => s
                    .server_errors
                    .push(format!("{what} on {replica}: {st} {t}")),
                Ok(_) => {}
            }
        };
    std::thread::scope(|s| {
        for t in 0..3 {
            let (live, seen, queues, stop, key) = (&live, &seen, &queues, &stop, &key);
            s.spawn(move || {
                let agent = agent();
                let mut n = t;
                while !stop.load(Ordering::SeqCst) {
                    n += 3;
                    let (replica, url) = pick(live, n);
                    let words = match n % 3 {
                        0 => argv(&["/usr/bin/whoami"]),
                        _ => argv(&["/usr/bin/id", "-u", &n.to_string()]),
                    };
                    let r = ask(&agent, &url, key, "alice", &words);
                    match &r {
                        Ok((200, text)) => {
                            let st: RequestStatus = serde_json::from_str(text).unwrap();
                            let mut sn = seen.lock().unwrap();
                            sn.ok += 1;
                            sn.requests.push(st.id.clone());
                            match st.grant {
                                Some(g) => sn.tokens.push((st.id, g)),
                                None => {
                                    for q in queues {
                                        q.lock().unwrap().push(st.id.clone());
                                    }
                                }
                            }
                        }
                        Ok((st, text)) if *st < 500 => panic!("request refused: {st} {text}"),
                        _ => note(seen, &replica, "request", &r),
                    }
                }
            });
        }
        for (i, who) in ["bob", "carol"].into_iter().enumerate() {
            let (live, seen, queue, stop, token) = (&live, &seen, &queues[i], &stop, &tokens[who]);
            s.spawn(move || {
                let agent = agent();
                let mut n = i;
                while !stop.load(Ordering::SeqCst) {
                    let Some(id) = queue.lock().unwrap().pop() else {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    };
                    n += 1;
                    let (replica, url) = pick(live, n);
                    let r = approve(&agent, &url, token, &id);
                    match &r {
                        Ok((200, text)) => {
                            let v: RequestView = serde_json::from_str(text).unwrap();
                            let mut sn = seen.lock().unwrap();
                            sn.ok += 1;
                            if let Some(g) = v.grant_id {
                                sn.grant_ids.push((id, g));
                            }
                        }
                        Ok((409, _)) => seen.lock().unwrap().ok += 1,
                        Ok((st, text)) if *st < 500 => panic!("approval refused: {st} {text}"),
                        _ => {
                            note(seen, &replica, "approve", &r);
                            if r.is_err() {
                                queue.lock().unwrap().push(id);
                            }
                        }
                    }
                }
            });
        }
        // Load through all three, then kill -9 c mid-load and take it out of the
        // balancer (as a health check would), then more load through a and b.
        wait_for_answers(&seen, 150);
        let c = fleet.replicas.iter_mut().find(|r| r.name == "c").unwrap();
        c.kill9();
        let at_kill = seen.lock().unwrap().ok;
        live.lock().unwrap().retain(|(n, _)| n != "c");
        wait_for_answers(&seen, at_kill + 150);
        stop.store(true, Ordering::SeqCst);
    });
    let seen = Arc::try_unwrap(seen).ok().unwrap().into_inner().unwrap();
    eprintln!(
        "answers {}, requests {}, grants told {}, transport failures {:?}",
        seen.ok,
        seen.requests.len(),
        seen.tokens.len() + seen.grant_ids.len(),
        seen.transport
    );
    assert!(
        seen.server_errors.is_empty(),
        "no 5xx from any replica: {:?}",
        seen.server_errors
    );
    for (replica, n) in &seen.transport {
        assert_eq!(
            replica, "c",
            "only the killed replica failed to answer ({n} times)"
        );
    }
    // Everything a client was told is stored, once.
    let stored: HashMap<String, (String, String)> = fleet
        .rows("SELECT request_id, id, token FROM grants", &[])
        .iter()
        .map(|r| (r.get("request_id"), (r.get("id"), r.get("token"))))
        .collect();
    let requests: HashSet<String> = fleet
        .rows("SELECT id FROM requests", &[])
        .iter()
        .map(|r| r.get("id"))
        .collect();
    for id in &seen.requests {
        assert!(
            requests.contains(id),
            "request {id} told to a host is stored"
        );
    }
    for (id, token) in &seen.tokens {
        assert_eq!(&stored[id].1, token, "grant of {id}");
    }
    for (id, g) in &seen.grant_ids {
        assert_eq!(&stored[id].0, g, "grant of {id}");
    }
    assert!(!seen.grant_ids.is_empty() && !seen.tokens.is_empty());
    check_store(&fleet);
    let bob = &tokens["bob"];
    let (a, b) = (verify(&fleet.url("a"), bob), verify(&fleet.url("b"), bob));
    assert_eq!(a["ok"], true, "{a}");
    assert_eq!(a["head"], b["head"]);
}

/// Wait until clients have had `n` answers (no timing is asserted: the deadline only
/// turns a hung fleet into a failure instead of a hung test).
fn wait_for_answers(seen: &Mutex<Seen>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while seen.lock().unwrap().ok < n {
        assert!(Instant::now() < deadline, "the fleet stopped answering");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---- web sessions ---------------------------------------------------------------------------

/// The session cookie (`jitsudo_session=…`) a sign-in on `url` sets.
fn sign_in(url: &str, token: &str) -> String {
    let (s, heads, t) = full_call(
        &agent(),
        "POST",
        &format!("{url}/ui/login"),
        &[],
        Some(format!("token={token}")),
        "application/x-www-form-urlencoded",
    )
    .unwrap();
    assert_eq!(s, 303, "{t}");
    let cookie = heads
        .iter()
        .find(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.split(';').next().unwrap().to_string())
        .unwrap();
    assert!(cookie.starts_with("jitsudo_session="), "{cookie}");
    cookie
}

fn page(url: &str, cookie: &str) -> String {
    let (s, t) = call(
        &agent(),
        "GET",
        &format!("{url}/ui"),
        &[("cookie", cookie)],
        None,
    )
    .unwrap();
    assert_eq!(s, 200, "{t}");
    t
}

fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF field: {page}"));
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

fn form(url: &str, path: &str, cookie: &str, body: &str) -> (u16, String) {
    let (s, _, t) = full_call(
        &agent(),
        "POST",
        &format!("{url}{path}"),
        &[("cookie", cookie)],
        Some(body.to_string()),
        "application/x-www-form-urlencoded",
    )
    .unwrap();
    (s, t)
}

fn status_of(fleet: &Fleet, id: &str) -> String {
    fleet.text("SELECT status FROM requests WHERE id = $1", &[id])
}

#[test]
fn web_sessions_work_on_every_replica() {
    let mut fleet = Fleet::new("replicas-web");
    fleet.start(&["a", "b"], "k1", BIG_LIMITS);
    let (key, tokens) = fleet.setup();
    let (a, b) = (fleet.url("a"), fleet.url("b"));
    let agent = agent();
    let first = pending(&agent, &a, &key, "/usr/bin/whoami");

    // Signed in on a, the page and its actions work on b.
    let cookie = sign_in(&a, &tokens["bob"]);
    let on_b = page(&b, &cookie);
    assert!(on_b.contains("signed in as <b id=\"me\">bob</b>"), "{on_b}");
    assert!(on_b.contains(&format!("req-{first}")), "{on_b}");
    let csrf = csrf_of(&on_b);
    assert_eq!(
        csrf,
        csrf_of(&page(&a, &cookie)),
        "one session, one CSRF token"
    );
    let (s, t) = form(
        &b,
        "/ui/approve",
        &cookie,
        &format!("csrf={csrf}&id={first}&comment=ok"),
    );
    assert_eq!(s, 303, "{t}");
    assert_eq!(
        status_of(&fleet, &first),
        "approved",
        "the approval sent to b is recorded"
    );
    // The outcome is shown once, by whichever replica serves the next page.
    let next = page(&a, &cookie);
    assert!(
        next.contains("id=\"flash\"") && next.contains("approved; grant"),
        "{next}"
    );
    assert!(!page(&b, &cookie).contains("id=\"flash\""), "shown once");

    // A restart of both replicas signs nobody out.
    fleet.restart("a");
    fleet.restart("b");
    let (a, b) = (fleet.url("a"), fleet.url("b"));
    assert!(page(&a, &cookie).contains("signed in as"));
    let second = pending(&agent, &b, &key, "/usr/bin/whoami");

    // A stale form (wrong CSRF token) is refused, and says so.
    let (s, t) = form(
        &a,
        "/ui/approve",
        &cookie,
        &format!("csrf={}&id={second}", "0".repeat(64)),
    );
    assert_eq!(s, 403, "{t}");
    assert!(t.contains("The approval was NOT recorded."), "{t}");
    assert_eq!(status_of(&fleet, &second), "pending");

    // An expired session: the sign-in page, saying the approval was not recorded.
    fleet.rows("UPDATE web_sessions SET expires = 1", &[]);
    let (s, t) = form(
        &b,
        "/ui/approve",
        &cookie,
        &format!("csrf={csrf}&id={second}&comment=x"),
    );
    assert_eq!(s, 401, "{t}");
    assert!(
        t.contains("id=\"token\"") && t.contains("The approval was NOT recorded."),
        "{t}"
    );
    assert_eq!(status_of(&fleet, &second), "pending");

    // Signing out on b deletes the session row; a's next form with it is refused.
    let cookie = sign_in(&b, &tokens["carol"]);
    // Session ids are stored only as hashes (bob's expired one was swept).
    let cookie_id = cookie.trim_start_matches("jitsudo_session=").to_string();
    let ids: Vec<String> = fleet
        .rows("SELECT id_hash FROM web_sessions", &[])
        .iter()
        .map(|r| r.get("id_hash"))
        .collect();
    assert_eq!(ids, [sha256_hex(cookie_id.as_bytes())]);
    let csrf = csrf_of(&page(&a, &cookie));
    let (s, t) = form(&b, "/ui/logout", &cookie, &format!("csrf={csrf}"));
    assert_eq!(s, 303, "{t}");
    assert_eq!(
        fleet.count("SELECT COUNT(*) FROM web_sessions WHERE approver = 'carol'"),
        0
    );
    let (s, t) = form(
        &a,
        "/ui/deny",
        &cookie,
        &format!("csrf={csrf}&id={second}&comment=no"),
    );
    assert_eq!(s, 401, "{t}");
    assert!(t.contains("The denial was NOT recorded."), "{t}");
    assert_eq!(status_of(&fleet, &second), "pending");
}

// ---- the fleet's key ------------------------------------------------------------------------

fn key_ids(fleet: &Fleet) -> Vec<String> {
    fleet
        .audit_of("key.activated")
        .iter()
        .map(|d| d["key_id"].as_str().unwrap().to_string())
        .collect()
}

/// The key id of the grant an auto-approved request through `url` gets.
fn signing_key_of(fleet: &Fleet, key: &SecretKey, url: &str) -> String {
    let (s, t) = ask(&agent(), url, key, "alice", &argv(&["/usr/bin/id", "-u"])).unwrap();
    assert_eq!(s, 200, "{t}");
    let id = serde_json::from_str::<RequestStatus>(&t).unwrap().id;
    fleet.text("SELECT key_id FROM grants WHERE request_id = $1", &[&id])
}

#[test]
fn rolling_key_rotation_records_each_change_once() {
    let mut fleet = Fleet::new("replicas-keys");
    // Three replicas starting at once: one activation.
    fleet.start(&["a", "b", "c"], "k1", BIG_LIMITS);
    assert_eq!(key_ids(&fleet), ["k1"]);
    let (key, _) = fleet.setup();

    // Rolling rotation to k2: a first, then b; c lags and restarts on k1 meanwhile.
    fleet.write_config("a", "k2", POLICY, BIG_LIMITS);
    fleet.restart("a");
    assert_eq!(key_ids(&fleet), ["k1", "k2"]);
    fleet.restart("c");
    fleet.write_config("b", "k2", POLICY, BIG_LIMITS);
    fleet.restart("b");
    fleet.restart("c");
    assert_eq!(key_ids(&fleet), ["k1", "k2"], "no switch back to k1 by c");
    assert!(
        fleet
            .replica("c")
            .log_text()
            .contains("not recording a switch back"),
        "{}",
        fleet.replica("c").log_text()
    );
    // The lagging replica signs with its configured key (hosts trust both), the others
    // with the new one.
    assert_eq!(signing_key_of(&fleet, &key, &fleet.url("c")), "k1");
    assert_eq!(signing_key_of(&fleet, &key, &fleet.url("a")), "k2");
    // /metrics shows the lagging replica.
    assert!(metrics(&fleet.url("c"))
        .contains("jitsudod_signing_key_info{key=\"k1\",fleet_key=\"k2\",replica=\"c\"} 1"));
    assert!(metrics(&fleet.url("b"))
        .contains("jitsudod_signing_key_info{key=\"k2\",fleet_key=\"k2\",replica=\"b\"} 1"));
    // c catches up: nothing more to record; every replica restarting again, neither.
    fleet.write_config("c", "k2", POLICY, BIG_LIMITS);
    for r in ["c", "a", "b"] {
        fleet.restart(r);
    }
    assert_eq!(key_ids(&fleet), ["k1", "k2"]);
    let active: String = fleet.text("SELECT active_key FROM fleet_state WHERE id = 1", &[]);
    assert_eq!(active, "k2");
    let k2 = fleet.audit_of("key.activated")[1].clone();
    assert_eq!(k2["replica"], "a", "{k2}");
}

// ---- divergent policies ---------------------------------------------------------------------

fn policy_info(url: &str) -> String {
    let m = metrics(url);
    m.lines()
        .find(|l| l.starts_with("jitsudod_policy_info{"))
        .unwrap_or_else(|| panic!("no jitsudod_policy_info in {m}"))
        .to_string()
}

#[test]
fn divergent_policies_are_visible() {
    let mut fleet = Fleet::new("replicas-policy");
    fleet.start(&["a", "b"], "k1", BIG_LIMITS);
    // b runs a different policy file: one more rule.
    let other = format!(
        "{POLICY}\n[[rule]]\nname = \"auto-date\"\ncommands = [\"/usr/bin/date\"]\ndecision = \"auto\"\n"
    );
    fleet.write_config("b", "k1", &other, BIG_LIMITS);
    fleet.restart("b");
    let (key, _) = fleet.setup();
    let (ha, hb) = (sha256_hex(POLICY.as_bytes()), sha256_hex(other.as_bytes()));
    let (a, b) = (fleet.url("a"), fleet.url("b"));
    assert_eq!(
        policy_info(&a),
        format!("jitsudod_policy_info{{hash=\"{ha}\",replica=\"a\"}} 1")
    );
    assert_eq!(
        policy_info(&b),
        format!("jitsudod_policy_info{{hash=\"{hb}\",replica=\"b\"}} 1")
    );
    // policy.loaded at each start, naming replica, host and hash.
    let loaded = fleet.audit_of("policy.loaded");
    let by: Vec<(String, String, String)> = loaded
        .iter()
        .map(|d| {
            (
                d["replica"].as_str().unwrap().to_string(),
                d["hash"].as_str().unwrap().to_string(),
                d["why"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        by.contains(&("a".into(), ha.clone(), "start".into())),
        "{by:?}"
    );
    assert!(
        by.contains(&("b".into(), hb.clone(), "start".into())),
        "{by:?}"
    );
    let hosts: Vec<String> = fleet
        .rows(
            "SELECT host FROM audit_log WHERE kind = 'policy.loaded'",
            &[],
        )
        .iter()
        .map(|r| r.get::<Option<String>, _>("host").unwrap_or_default())
        .collect();
    assert!(hosts.iter().all(|h| !h.is_empty()), "{hosts:?}");

    // Each decision records the policy that made it: the same request, two answers.
    let date = argv(&["/usr/bin/date"]);
    let (s, t) = ask(&agent(), &a, &key, "alice", &date).unwrap();
    assert_eq!(s, 200, "{t}");
    let on_a: RequestStatus = serde_json::from_str(&t).unwrap();
    assert_eq!(on_a.status, "denied", "{t}");
    let (s, t) = ask(&agent(), &b, &key, "alice", &date).unwrap();
    assert_eq!(s, 200, "{t}");
    let on_b: RequestStatus = serde_json::from_str(&t).unwrap();
    assert_eq!(on_b.status, "approved", "{t}");
    for (id, hash) in [(&on_a.id, &ha), (&on_b.id, &hb)] {
        let row = fleet.text("SELECT policy_hash FROM requests WHERE id = $1", &[id]);
        let decided = fleet.text(
            "SELECT detail FROM audit_log WHERE kind = 'request.decided' AND request_id = $1",
            &[id],
        );
        assert_eq!(&row, hash, "request {id}");
        let d: serde_json::Value = serde_json::from_str(&decided).unwrap();
        assert_eq!(d["policy_hash"].as_str(), Some(hash.as_str()), "{d}");
    }

    // b's file made equal to a's and reloaded (SIGHUP): recorded, and /metrics agrees.
    fs::write(fleet.dir.path().join("b-policy.toml"), POLICY).unwrap();
    run_ok(Command::new("kill").args(["-HUP", &fleet.replica("b").pid().to_string()]));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !policy_info(&b).contains(&ha) {
        assert!(Instant::now() < deadline, "b did not reload its policy");
        std::thread::sleep(Duration::from_millis(50));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reloads: Vec<serde_json::Value> = fleet
            .audit_of("policy.loaded")
            .into_iter()
            .filter(|d| d["why"] == "reload")
            .collect();
        if !reloads.is_empty() {
            assert_eq!(reloads.len(), 1);
            assert_eq!(reloads[0]["replica"], "b");
            assert_eq!(reloads[0]["hash"].as_str(), Some(ha.as_str()));
            break;
        }
        assert!(Instant::now() < deadline, "the reload was not recorded");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(metrics(&b).contains("jitsudod_policy_reloads_total{result=\"ok\"} 1"));
}

// ---- rate limits ----------------------------------------------------------------------------

#[test]
fn rate_limits_hold_for_the_fleet() {
    let mut fleet = Fleet::new("replicas-rate");
    let limits = "user_requests_per_minute = 6\nhost_requests_per_minute = 100000\n";
    fleet.start(&["a", "b"], "k1", limits);
    let (key, _) = fleet.setup();
    let (a, b) = (fleet.url("a"), fleet.url("b"));
    let agent = agent();
    let id = argv(&["/usr/bin/id", "-u"]);
    for i in 0..6 {
        let url = if i % 2 == 0 { &a } else { &b };
        let (s, t) = ask(&agent, url, &key, "alice", &id).unwrap();
        assert_eq!(s, 200, "request {i}: {t}");
    }
    // Six a minute for the fleet: the seventh is refused by either replica.
    for url in [&a, &b] {
        let (s, t) = ask(&agent, url, &key, "alice", &id).unwrap();
        assert_eq!(s, 429, "{t}");
        assert!(
            t.contains("rate limit for user alice on replica-host reached"),
            "{t}"
        );
    }
    // Another user's limit is their own.
    let (s, t) = ask(&agent, &b, &key, "bob", &id).unwrap();
    assert_eq!(s, 200, "{t}");
    let limited: u64 = [&a, &b]
        .iter()
        .map(|u| {
            metrics(u)
                .lines()
                .find_map(|l| l.strip_prefix("jitsudod_rate_limited_total "))
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(limited, 2);
    // Refused requests do not use up the limit: the window holds alice's six.
    let counted: i64 = fleet.count(
        "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM rate_windows WHERE bucket = 'user:replica-host/alice'",
    );
    assert_eq!(counted, 6);
}
