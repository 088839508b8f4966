//! The service's rules on real storage, against SQLite and a real PostgreSQL server:
//! who may approve and deny, the approval count, exactly one grant per request under
//! concurrent approvals, and writes that fail without leaving anything behind.

mod common;

use std::sync::Arc;

use common::pg::Pg;
use common::rows::{grant, request, who, NOW};
use jitsudod::model::{GrantRow, RequestRow};
use jitsudod::service::{record_approval, record_denial, Error, PENDING_TTL};
use jitsudod::store::{Db, Table};

#[test]
fn sqlite_suite() {
    let urls = common::SqliteUrls::new("service");
    common::multi_threaded().block_on(suite(&|| urls.next()));
}

#[test]
fn postgres_suite() {
    let pg = Pg::start();
    common::multi_threaded().block_on(suite(&|| pg.new_database()));
}

async fn suite(new_url: &dyn Fn() -> String) {
    two_approvals_no_self_approval(&new_url()).await;
    deny_flow(&new_url()).await;
    concurrent_approvals_issue_one_grant(&new_url()).await;
    contention_fails_no_write(&new_url()).await;
}

fn issue(req: &RequestRow, names: Vec<String>) -> Result<GrantRow, String> {
    assert!(!names.is_empty());
    Ok(grant(&format!("g-{}", req.id), &req.id, NOW + 600))
}

async fn two_approvals_no_self_approval(url: &str) {
    let db = Db::connect(url).await.unwrap();
    db.insert_request(
        &request("r1", "pending", 2, &["alice", "bob", "group:sre"]),
        None,
    )
    .await
    .unwrap();
    let e = record_approval(&db, "r1", &who("alice", &[]), "", NOW, issue)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Forbidden(ref m) if m.contains("own request")),
        "{e:?}"
    );
    let e = record_approval(&db, "r1", &who("mallory", &["dev"]), "", NOW, issue)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Forbidden(ref m) if m.contains("may not approve")),
        "{e:?}"
    );
    let a = record_approval(&db, "r1", &who("bob", &[]), "ok", NOW, issue)
        .await
        .unwrap();
    assert_eq!(
        (a.status.as_str(), a.approvals, a.needed, a.grant),
        ("pending", 1, 2, None)
    );
    let e = record_approval(&db, "r1", &who("bob", &[]), "again", NOW, issue)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Conflict(ref m) if m.contains("already approved")),
        "{e:?}"
    );
    assert!(db.grant_for_request("r1").await.unwrap().is_none());
    let a = record_approval(&db, "r1", &who("carol", &["sre"]), "", NOW + 5, issue)
        .await
        .unwrap();
    assert_eq!((a.status.as_str(), a.approvals), ("approved", 2));
    assert_eq!(a.grant.unwrap().id, "g-r1");
    let r = db.request("r1").await.unwrap().unwrap();
    assert_eq!(
        (r.status.as_str(), r.decided_by.as_deref()),
        ("approved", Some("bob,carol"))
    );
    let e = record_approval(&db, "r1", &who("dave", &["sre"]), "", NOW, issue)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Conflict(ref m) if m.contains("already approved")),
        "{e:?}"
    );
    let approvals = db.approvals("r1").await.unwrap();
    assert_eq!(
        approvals
            .iter()
            .map(|a| a.approver.as_str())
            .collect::<Vec<_>>(),
        ["bob", "carol"]
    );
    assert_eq!(db.count(Table::Grants).await.unwrap(), 1);
    // Too old to approve.
    let mut old = request("r-old", "pending", 1, &["bob"]);
    old.created_at = NOW - 2 * PENDING_TTL;
    db.insert_request(&old, None).await.unwrap();
    assert!(
        matches!(record_approval(&db, "r-old", &who("bob", &[]), "", NOW, issue).await, Err(Error::Conflict(ref m)) if m.contains("expired"))
    );
    // A failing signer leaves the request pending and without a grant.
    db.insert_request(&request("r3", "pending", 1, &["bob"]), None)
        .await
        .unwrap();
    let e = record_approval(&db, "r3", &who("bob", &[]), "", NOW, |_, _| {
        Err("no key".into())
    })
    .await
    .unwrap_err();
    assert!(matches!(e, Error::Internal(_)));
    assert_eq!(db.request("r3").await.unwrap().unwrap().status, "pending");
    assert!(db.approvals("r3").await.unwrap().is_empty());
    db.close().await;
}

async fn deny_flow(url: &str) {
    let db = Db::connect(url).await.unwrap();
    db.insert_request(&request("r1", "pending", 1, &["bob"]), None)
        .await
        .unwrap();
    assert!(matches!(
        record_denial(&db, "r1", &who("eve", &[]), "no", NOW).await,
        Err(Error::Forbidden(_))
    ));
    record_denial(&db, "r1", &who("bob", &[]), "not now", NOW)
        .await
        .unwrap();
    let r = db.request("r1").await.unwrap().unwrap();
    assert_eq!(r.status, "denied");
    assert!(r.message.contains("not now"));
    assert!(matches!(
        record_approval(&db, "r1", &who("bob", &[]), "", NOW, issue).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        record_denial(&db, "nope", &who("bob", &[]), "x", NOW).await,
        Err(Error::NotFound(_))
    ));
    let listed = db.list_requests(true, 10).await.unwrap();
    assert!(listed.is_empty());
    assert_eq!(db.list_requests(false, 10).await.unwrap().len(), 1);
    db.close().await;
}

async fn concurrent_approvals_issue_one_grant(url: &str) {
    let db = Arc::new(Db::connect(url).await.unwrap());
    let names: Vec<String> = (0..8).map(|i| format!("a{i}")).collect();
    for r in 0..10 {
        db.insert_request(
            &request(&format!("c{r}"), "pending", 2, &["group:sre"]),
            None,
        )
        .await
        .unwrap();
    }
    let mut tasks = Vec::new();
    for r in 0..10 {
        for n in &names {
            let (db, n, id) = (db.clone(), n.clone(), format!("c{r}"));
            tasks.push(tokio::spawn(async move {
                record_approval(&db, &id, &who(&n, &["sre"]), "", NOW, issue).await
            }));
        }
    }
    let mut issued = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(a) if a.grant.is_some() => issued += 1,
            Ok(_) => {}
            Err(Error::Conflict(_)) => {}
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(issued, 10, "exactly one grant per request");
    assert_eq!(db.count(Table::Grants).await.unwrap(), 10);
    for r in 0..10 {
        let req = db.request(&format!("c{r}")).await.unwrap().unwrap();
        assert_eq!(req.status, "approved");
        assert_eq!(
            db.approvals(&req.id).await.unwrap().len(),
            2,
            "no approval recorded after the decision"
        );
    }
    db.close().await;
}

/// Busy threads that keep every CPU occupied while they live, so the runtime's workers
/// are preempted in the middle of transactions (the windows where a write that ended in
/// an error could still hold SQLite's lock).
struct CpuLoad {
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl CpuLoad {
    fn start(n: usize) -> CpuLoad {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        CpuLoad { stop, threads }
    }
}

impl Drop for CpuLoad {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Writes that end in an error after they wrote (a duplicate approval, a re-revoke, a
/// duplicate registration) racing with approvals that succeed, under CPU load: every
/// outcome is a success or the expected conflict, never a database error ("database is
/// locked" on SQLite, when such a transaction was dropped with its rollback still
/// queued and the next writer could not upgrade its read).
async fn contention_fails_no_write(url: &str) {
    const REQUESTS: usize = 60;
    const ROUNDS: usize = 3;
    let db = Arc::new(Db::connect(url).await.unwrap());
    db.add_host("web-01", "k4.public.a", NOW).await.unwrap();
    db.add_approver("a0", &["sre".into()], "hash-a0", false, NOW)
        .await
        .unwrap();
    let _load = CpuLoad::start(2);
    let mut unexpected = Vec::new();
    for round in 0..ROUNDS {
        for r in 0..REQUESTS {
            db.insert_request(
                &request(&format!("p{round}-{r}"), "pending", 2, &["group:sre"]),
                None,
            )
            .await
            .unwrap();
            let auto = format!("auto{round}-{r}");
            db.insert_request(
                &request(&auto, "approved", 0, &[]),
                Some(&grant(&format!("g-{auto}"), &auto, NOW + 600)),
            )
            .await
            .unwrap();
        }
        let mut tasks: Vec<tokio::task::JoinHandle<(&str, Result<(), Error>)>> = Vec::new();
        for r in 0..REQUESTS {
            let id = format!("p{round}-{r}");
            // Two approvals that count, one more and a duplicate of the first, which
            // fail (already approved / already decided) after or before writing.
            for name in ["b0", "b1", "b2", "b0"] {
                let (db, id) = (db.clone(), id.clone());
                tasks.push(tokio::spawn(async move {
                    let res = record_approval(&db, &id, &who(name, &["sre"]), "", NOW, issue).await;
                    ("approve", res.map(|_| ()))
                }));
            }
            let g = format!("g-auto{round}-{r}");
            for _ in 0..2 {
                let (db, g) = (db.clone(), g.clone());
                tasks.push(tokio::spawn(async move {
                    let res = db.revoke(&g, "b0", "leaked", NOW).await;
                    ("revoke", res.map(|_| ()).map_err(Error::from))
                }));
            }
            let db2 = db.clone();
            tasks.push(tokio::spawn(async move {
                let res = db2.add_host("web-01", "k4.public.b", NOW).await;
                ("register", res.map_err(Error::from))
            }));
            let db3 = db.clone();
            tasks.push(tokio::spawn(async move {
                let res = db3
                    .add_approver("a0", &[], &format!("hash-{r}"), false, NOW)
                    .await;
                ("approver", res.map_err(Error::from))
            }));
        }
        for t in tasks {
            let (what, res) = t.await.unwrap();
            match res {
                Ok(()) | Err(Error::Conflict(_)) => {}
                Err(e) => unexpected.push(format!("{what}: {e}")),
            }
        }
    }
    drop(_load);
    assert!(
        unexpected.is_empty(),
        "{} of {} operations failed: {unexpected:#?}",
        unexpected.len(),
        ROUNDS * REQUESTS * 8
    );
    for round in 0..ROUNDS {
        for r in 0..REQUESTS {
            let req = db.request(&format!("p{round}-{r}")).await.unwrap().unwrap();
            assert_eq!(req.status, "approved", "{req:?}");
            assert_eq!(db.approvals(&req.id).await.unwrap().len(), 2);
        }
    }
    assert_eq!(
        db.count(Table::Grants).await.unwrap() as usize,
        2 * ROUNDS * REQUESTS
    );
    assert_eq!(db.revoked_ids(NOW).await.unwrap().len(), ROUNDS * REQUESTS);
    db.close().await;
}
