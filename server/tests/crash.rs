//! Crash consistency: `kill -9` the real `jitsudod` in the middle of a load of
//! concurrent requests and approvals over real HTTP, start it again on the same
//! database, and check that nothing a client was told is lost or half-written:
//!
//! * every grant a client received (from a host request, a poll or an approval) is in
//!   the database, for that request, with the same token;
//! * every request id a client received exists;
//! * no request has two grants, none has more approvals than it needed, an approved
//!   request always has its grant and a grant always has its approved request;
//! * every stored grant verifies with the service key and names its own request;
//! * the restarted service answers normally.
//!
//! The same test runs on SQLite and on a PostgreSQL server the test starts.

mod common;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use common::pg::Pg;
use common::world::Service;
use common::TempDir;
use jitsudo_core::config::TrustedKey;
use jitsudo_core::grant::keys::{PublicKey, SecretKey};
use jitsudo_core::wire::{self, NewRequest, RequestStatus, RequestView, Signed};

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
approvers = ["bob", "carol"]

[[rule]]
name = "two-approvers"
commands = ["/usr/bin/uptime"]
decision = "approve"
approvals = 2
approvers = ["bob", "carol"]
"#;

const LIMITS: &str = "user_requests_per_minute = 10000000\nhost_requests_per_minute = 10000000\n";
const HOST: &str = "crash-host";
/// Load before the kill, and again after the restart.
const LOAD: Duration = Duration::from_millis(1500);

#[test]
fn sqlite_kill9_under_load() {
    common::require_root();
    let dir = TempDir::new("crash-db");
    run(&format!("sqlite://{}/jitsudod.db", dir.path().display()));
}

#[test]
fn postgres_kill9_under_load() {
    let pg = Pg::start();
    run(&pg.new_database());
}

/// What clients were told, to be checked against the database afterwards.
#[derive(Default)]
struct Seen {
    /// (request id, grant token) from host requests and polls.
    tokens: Vec<(String, String)>,
    /// (request id, grant id) from approvals.
    grant_ids: Vec<(String, String)>,
    /// Request ids returned to hosts.
    requests: Vec<String>,
    /// Successful answers per epoch (0: before the kill, 1: after the restart).
    ok: [usize; 2],
    /// Grants seen per epoch.
    grants: [usize; 2],
    server_errors: Vec<String>,
    transport_errors: usize,
}

struct Shared {
    url: RwLock<String>,
    epoch: AtomicUsize,
    stop: AtomicBool,
    seen: Mutex<Seen>,
    /// Pending requests for each approver thread, and for the poller.
    queues: [Mutex<VecDeque<(String, String)>>; 3],
}

impl Shared {
    fn url(&self) -> String {
        self.url.read().unwrap().clone()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

/// One HTTP exchange: Ok((status, body)) or Err on a transport failure (the service
/// was killed under us, or is not back yet).
fn exchange(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Result<(u16, String), String> {
    let result = if method == "GET" {
        let mut r = agent.get(url);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.call()
    } else {
        let mut r = agent.post(url).header("content-type", "application/json");
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send(body.unwrap_or_default())
    };
    let mut resp = result.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((status, text))
}

fn note_failure(shared: &Shared, what: &str, result: &Result<(u16, String), String>) {
    let mut seen = shared.seen.lock().unwrap();
    match result {
        Err(_) => seen.transport_errors += 1,
        Ok((s, text)) if *s >= 500 => seen.server_errors.push(format!("{what}: {s} {text}")),
        Ok(_) => {}
    }
    drop(seen);
    if result.is_err() {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A host sending signed requests: auto-approved ones and ones that need people.
fn requester(shared: Arc<Shared>, key: Arc<SecretKey>, user: String) {
    let agent = agent();
    let mut n = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        n += 1;
        let argv: Vec<String> = match n % 4 {
            0 => vec!["/usr/bin/whoami".into()],
            1 => vec!["/usr/bin/uptime".into()],
            _ => vec!["/usr/bin/id".into(), "-u".into(), n.to_string()],
        };
        let body = NewRequest {
            kind: jitsudo_core::grant::Kind::Exec,
            user: user.clone(),
            uid: 42000,
            groups: vec![],
            run_as: "root".into(),
            argv,
            reason: format!("crash test {n}"),
            duration: None,
            once: false,
            source: None,
            ticket: None,
            extends: None,
        };
        let envelope = wire::sign_envelope(
            &key,
            HOST,
            wire::PATH_REQUESTS,
            jitsudo_core::grant::now(),
            &body,
        )
        .unwrap();
        let epoch = shared.epoch.load(Ordering::SeqCst);
        let url = format!("{}{}", shared.url(), wire::PATH_REQUESTS);
        let body = serde_json::to_string(&Signed { envelope }).unwrap();
        let result = exchange(&agent, "POST", &url, &[], Some(body));
        match &result {
            Ok((200, text)) => {
                let status: RequestStatus = serde_json::from_str(text).unwrap();
                let mut seen = shared.seen.lock().unwrap();
                seen.ok[epoch] += 1;
                seen.requests.push(status.id.clone());
                if let Some(token) = status.grant {
                    assert_eq!(status.status, "approved", "{text}");
                    seen.tokens.push((status.id.clone(), token));
                    seen.grants[epoch] += 1;
                } else {
                    assert_eq!(status.status, "pending", "{text}");
                    drop(seen);
                    let poll_key = status.poll_key.unwrap();
                    for q in &shared.queues {
                        q.lock()
                            .unwrap()
                            .push_back((status.id.clone(), poll_key.clone()));
                    }
                }
            }
            Ok((s, text)) if *s < 500 => panic!("request refused: {s} {text}"),
            _ => note_failure(&shared, "request", &result),
        }
    }
}

/// An approver working through the pending requests; the other approver gets the same
/// ones at the same time, so one-approver requests are raced for.
fn approver(shared: Arc<Shared>, queue: usize, token: String) {
    let agent = agent();
    let auth = format!("Bearer {token}");
    while !shared.stop.load(Ordering::SeqCst) {
        let next = shared.queues[queue].lock().unwrap().pop_front();
        let Some((id, poll_key)) = next else {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        };
        let epoch = shared.epoch.load(Ordering::SeqCst);
        let url = format!("{}/v1/requests/{id}/approve", shared.url());
        let result = exchange(
            &agent,
            "POST",
            &url,
            &[("authorization", &auth)],
            Some(r#"{"comment":"ok"}"#.into()),
        );
        match &result {
            Ok((200, text)) => {
                let view: RequestView = serde_json::from_str(text).unwrap();
                let mut seen = shared.seen.lock().unwrap();
                seen.ok[epoch] += 1;
                if let Some(g) = view.grant_id {
                    assert_eq!(view.status, "approved", "{text}");
                    seen.grant_ids.push((id.clone(), g));
                    seen.grants[epoch] += 1;
                }
            }
            // The other approver completed it first: refused, never a second grant.
            Ok((409, text)) => {
                assert!(
                    text.contains("already approved") || text.contains("decided meanwhile"),
                    "{text}"
                );
                shared.seen.lock().unwrap().ok[epoch] += 1;
            }
            Ok((s, text)) if *s < 500 => panic!("approval refused: {s} {text}"),
            _ => {
                note_failure(&shared, "approve", &result);
                // Not decided: try again (possibly after the restart).
                if result.is_err() {
                    shared.queues[queue]
                        .lock()
                        .unwrap()
                        .push_back((id, poll_key));
                }
            }
        }
    }
}

/// The requester's helper polling for grants, as `jitsudo --request` does.
fn poller(shared: Arc<Shared>) {
    let agent = agent();
    while !shared.stop.load(Ordering::SeqCst) {
        let next = shared.queues[2].lock().unwrap().pop_front();
        let Some((id, poll_key)) = next else {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        };
        let epoch = shared.epoch.load(Ordering::SeqCst);
        let url = format!("{}/v1/host/requests/{id}", shared.url());
        let result = exchange(
            &agent,
            "GET",
            &url,
            &[(wire::POLL_KEY_HEADER, &poll_key)],
            None,
        );
        match &result {
            Ok((200, text)) => {
                let status: RequestStatus = serde_json::from_str(text).unwrap();
                let mut seen = shared.seen.lock().unwrap();
                seen.ok[epoch] += 1;
                if let Some(token) = status.grant {
                    seen.tokens.push((id, token));
                } else if status.status == "pending" {
                    drop(seen);
                    shared.queues[2].lock().unwrap().push_back((id, poll_key));
                }
            }
            Ok((s, text)) if *s < 500 => panic!("poll refused: {s} {text}"),
            _ => {
                note_failure(&shared, "poll", &result);
                shared.queues[2].lock().unwrap().push_back((id, poll_key));
            }
        }
    }
}

fn register_host(svc: &Service, key: &SecretKey) {
    let (status, text) = exchange(
        &agent(),
        "POST",
        &format!("{}/v1/admin/hosts", svc.url),
        &[("authorization", &format!("Bearer {}", svc.admin_token))],
        Some(serde_json::json!({"name": HOST, "public_key": key.public.to_paserk()}).to_string()),
    )
    .unwrap();
    assert_eq!(status, 200, "{text}");
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

fn run(database: &str) {
    let mut svc = Service::start_with(database, POLICY, None, LIMITS, "");
    let key = Arc::new(SecretKey::generate("host").unwrap());
    register_host(&svc, &key);
    let bob = svc.add_approver("bob", &[]);
    let carol = svc.add_approver("carol", &[]);

    let shared = Arc::new(Shared {
        url: RwLock::new(svc.url.clone()),
        epoch: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        seen: Mutex::new(Seen::default()),
        queues: Default::default(),
    });
    let mut threads = Vec::new();
    for user in ["alice", "dave", "erin", "frank"] {
        let (s, k, u) = (shared.clone(), key.clone(), user.to_string());
        threads.push(std::thread::spawn(move || requester(s, k, u)));
    }
    for (i, token) in [bob, carol].into_iter().enumerate() {
        let s = shared.clone();
        threads.push(std::thread::spawn(move || approver(s, i, token)));
    }
    {
        let s = shared.clone();
        threads.push(std::thread::spawn(move || poller(s)));
    }
    // Stop the clients however this test ends, so that a failed assertion does not
    // leave threads hammering a dead port.
    struct StopOnDrop(Arc<Shared>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.stop.store(true, Ordering::SeqCst);
        }
    }
    let _stop = StopOnDrop(shared.clone());

    std::thread::sleep(LOAD);
    let killed_at = Instant::now();
    shared.epoch.store(1, Ordering::SeqCst);
    svc.kill9_and_restart();
    *shared.url.write().unwrap() = svc.url.clone();
    let restart = killed_at.elapsed();
    std::thread::sleep(LOAD);
    shared.stop.store(true, Ordering::SeqCst);
    for t in threads {
        if let Err(panic) = t.join() {
            std::panic::resume_unwind(panic);
        }
    }
    let seen = std::mem::take(&mut *shared.seen.lock().unwrap());
    eprintln!(
        "{database}: restart took {restart:?}; answers before/after the kill {:?}, grants seen {:?}, \
         {} requests, {} transport errors",
        seen.ok,
        seen.grants,
        seen.requests.len(),
        seen.transport_errors
    );
    assert!(
        seen.server_errors.is_empty(),
        "5xx answers: {:?}\n{}",
        &seen.server_errors[..seen.server_errors.len().min(5)],
        svc.log()
    );
    assert!(
        seen.grants[0] > 0 && seen.grants[1] > 0,
        "no grants issued on one side of the kill: {:?}\n{}",
        seen.grants,
        svc.log()
    );
    assert!(
        !seen.grant_ids.is_empty(),
        "no approval completed a request\n{}",
        svc.log()
    );
    // Clients were busy when the service died: some calls failed mid-flight or found
    // nobody listening.
    assert!(seen.transport_errors > 0, "the kill did not hit the load");

    // The restarted service serves normally: health, a new automatic grant, sync.
    let agent = agent();
    let (status, text) =
        exchange(&agent, "GET", &format!("{}/healthz", svc.url), &[], None).unwrap();
    assert_eq!(status, 200, "{text}");
    let envelope = wire::sign_envelope(
        &key,
        HOST,
        wire::PATH_REQUESTS,
        jitsudo_core::grant::now(),
        &NewRequest {
            kind: jitsudo_core::grant::Kind::Exec,
            user: "alice".into(),
            uid: 42000,
            groups: vec![],
            run_as: "root".into(),
            argv: vec!["/usr/bin/id".into()],
            reason: "after restart".into(),
            duration: None,
            once: false,
            source: None,
            ticket: None,
            extends: None,
        },
    )
    .unwrap();
    let (status, text) = exchange(
        &agent,
        "POST",
        &format!("{}{}", svc.url, wire::PATH_REQUESTS),
        &[],
        Some(serde_json::to_string(&Signed { envelope }).unwrap()),
    )
    .unwrap();
    assert_eq!(status, 200, "{text}");
    let after: RequestStatus = serde_json::from_str(&text).unwrap();
    assert!(after.grant.is_some(), "{text}");

    check_database(database, &seen, &service_key(&svc));
}

fn check_database(database: &str, seen: &Seen, key: &TrustedKey) {
    use sqlx::Row;
    common::block_on(async {
        let pool = common::connect_database(database).await;
        let ids = |sql: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query(sql)
                    .fetch_all(&pool)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    .iter()
                    .map(|r| r.try_get::<String, _>(0).unwrap())
                    .collect::<Vec<String>>()
            }
        };
        for (what, sql) in [
            (
                "requests with more than one grant",
                "SELECT request_id FROM grants GROUP BY request_id HAVING COUNT(*) > 1",
            ),
            (
                "approved requests without a grant",
                "SELECT r.id FROM requests r WHERE r.status = 'approved' \
                 AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.request_id = r.id)",
            ),
            (
                "grants without an approved request",
                "SELECT g.id FROM grants g LEFT JOIN requests r ON r.id = g.request_id \
                 WHERE r.id IS NULL OR r.status <> 'approved'",
            ),
            (
                "requests with more approvals than needed (approved twice)",
                "SELECT a.request_id FROM approvals a JOIN requests r ON r.id = a.request_id \
                 GROUP BY a.request_id, r.approvals_needed HAVING COUNT(*) > r.approvals_needed",
            ),
            (
                "approved requests whose approvals do not add up",
                "SELECT r.id FROM requests r WHERE r.status = 'approved' AND r.approvals_needed > 0 \
                 AND (SELECT COUNT(*) FROM approvals a WHERE a.request_id = r.id) <> r.approvals_needed",
            ),
            (
                "pending requests with all their approvals (approval without decision)",
                "SELECT r.id FROM requests r WHERE r.status = 'pending' \
                 AND (SELECT COUNT(*) FROM approvals a WHERE a.request_id = r.id) >= r.approvals_needed",
            ),
            (
                "approvals without a request",
                "SELECT a.request_id FROM approvals a LEFT JOIN requests r ON r.id = a.request_id \
                 WHERE r.id IS NULL",
            ),
        ] {
            let bad = ids(sql).await;
            assert!(bad.is_empty(), "{what}: {bad:?}");
        }

        // Every stored grant is a valid token for its own request and user.
        let rows = sqlx::query("SELECT id, request_id, user_name, host, token FROM grants")
            .fetch_all(&pool)
            .await
            .unwrap();
        let mut by_request = std::collections::HashMap::new();
        for r in &rows {
            let (id, request, user, host, token): (String, String, String, String, String) = (
                r.try_get(0).unwrap(),
                r.try_get(1).unwrap(),
                r.try_get(2).unwrap(),
                r.try_get(3).unwrap(),
                r.try_get(4).unwrap(),
            );
            let g = jitsudo_core::grant::verify(
                &token,
                std::slice::from_ref(key),
                Duration::from_secs(24 * 3600),
            )
            .unwrap_or_else(|e| panic!("stored grant {id} does not verify: {e}"));
            assert_eq!(g.claims.jti, id);
            assert_eq!(g.claims.request.as_deref(), Some(request.as_str()));
            assert_eq!(
                (g.claims.sub.as_str(), g.claims.host.as_str()),
                (user.as_str(), host.as_str())
            );
            by_request.insert(request, (id, token));
        }

        // Everything a client was told is there.
        for (request, token) in &seen.tokens {
            let stored = by_request.get(request).unwrap_or_else(|| {
                panic!("a client received a grant for request {request}, which has none stored")
            });
            assert_eq!(
                &stored.1, token,
                "request {request}: stored grant differs from the one a client received"
            );
        }
        for (request, grant) in &seen.grant_ids {
            let stored = by_request.get(request).unwrap_or_else(|| {
                panic!(
                    "an approver was told request {request} got grant {grant}, which is not stored"
                )
            });
            assert_eq!(&stored.0, grant, "request {request}");
        }
        let stored: std::collections::HashSet<String> =
            ids("SELECT id FROM requests").await.into_iter().collect();
        for r in &seen.requests {
            assert!(
                stored.contains(r),
                "a host was given request id {r}, which is not stored"
            );
        }
        eprintln!(
            "{} requests and {} grants stored; {} grant tokens and {} approvals seen by clients all present",
            stored.len(),
            rows.len(),
            seen.tokens.len(),
            seen.grant_ids.len()
        );
        pool.close().await;
    });
}
