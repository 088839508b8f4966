//! The storage suite, run against SQLite and a real PostgreSQL server: the same cases,
//! the same expectations. Approving and denying, which the service composes from
//! storage steps, are in the service suite (tests/service.rs).

mod common;

use common::pg::Pg;
use common::rows::{grant, request, who, NOW};
use jitsudod::store::{Db, DbError, Table};

#[test]
fn sqlite_suite() {
    let urls = common::SqliteUrls::new("store");
    common::multi_threaded().block_on(suite(&|| urls.next()));
}

#[test]
fn postgres_suite() {
    let pg = Pg::start();
    common::multi_threaded().block_on(suite(&|| pg.new_database()));
}

async fn suite(new_url: &dyn Fn() -> String) {
    migrations_are_idempotent(&new_url()).await;
    a_missing_migration_below_the_newest_still_runs(&new_url()).await;
    hosts_and_nonces(&new_url()).await;
    approvers_by_token_hash(&new_url()).await;
    auto_grant_sync_and_revoke(&new_url()).await;
    transaction_steps(&new_url()).await;
    batched_reads(&new_url()).await;
}

async fn migrations_are_idempotent(url: &str) {
    let db = Db::connect(url).await.unwrap();
    db.add_host("h", "k4.public.x", NOW).await.unwrap();
    db.close().await;
    let db = Db::connect(url).await.unwrap();
    assert_eq!(
        db.host_key("h").await.unwrap().as_deref(),
        Some("k4.public.x")
    );
    db.ping().await.unwrap();
    db.close().await;
}

/// Branches number their migrations apart (a database may have 5 before 4 exists), so
/// every version not yet applied runs, not only those above the newest applied.
async fn a_missing_migration_below_the_newest_still_runs(url: &str) {
    use sqlx::{Executor, Row};
    Db::connect(url).await.unwrap().close().await;
    let pool = common::connect_database(url).await;
    pool.execute("ALTER TABLE requests DROP COLUMN kind")
        .await
        .unwrap();
    pool.execute("DELETE FROM schema_version WHERE version = 3")
        .await
        .unwrap();
    pool.close().await;
    let db = Db::connect(url).await.unwrap();
    db.close().await;
    let pool = common::connect_database(url).await;
    pool.execute("SELECT kind FROM requests").await.unwrap();
    let versions: Vec<i64> = sqlx::query("SELECT version FROM schema_version ORDER BY version")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("version"))
        .collect();
    assert!(
        versions.contains(&3) && versions.contains(&5),
        "{versions:?}"
    );
    pool.close().await;
}

async fn hosts_and_nonces(url: &str) {
    let db = Db::connect(url).await.unwrap();
    db.add_host("web-01", "k4.public.a", NOW).await.unwrap();
    let e = db.add_host("web-01", "k4.public.b", NOW).await.unwrap_err();
    assert!(
        matches!(e, DbError::Conflict(ref m) if m.contains("already registered")),
        "{e:?}"
    );
    assert_eq!(db.host_key("nope").await.unwrap(), None);
    // A nonce is spent once per host, with the host's rate count in the same
    // transaction; a replay counts nothing.
    let window = |host| (host, NOW - NOW % 60, NOW - NOW % 60 - 60);
    let spend = |host: &'static str| {
        let db = &db;
        async move {
            db.spend_nonce_and_count((host, "aa", NOW), window(host))
                .await
                .unwrap()
        }
    };
    assert_eq!(spend("web-01").await, Some((1, 0)));
    assert_eq!(spend("web-01").await, None, "replay");
    assert_eq!(spend("web-02").await, Some((1, 0)), "per host");
    assert_eq!(db.purge_nonces(NOW + 1).await.unwrap(), 2);
    db.close().await;
}

async fn approvers_by_token_hash(url: &str) {
    let db = Db::connect(url).await.unwrap();
    db.add_approver("bob", &["sre".into()], "hash-b", false, NOW)
        .await
        .unwrap();
    db.add_approver("root-admin", &[], "hash-a", true, NOW)
        .await
        .unwrap();
    assert!(matches!(
        db.add_approver("bob", &[], "hash-c", false, NOW).await,
        Err(DbError::Conflict(_))
    ));
    let bob = db.approver_by_token_hash("hash-b").await.unwrap().unwrap();
    assert_eq!(bob, who("bob", &["sre"]));
    assert!(
        db.approver_by_token_hash("hash-a")
            .await
            .unwrap()
            .unwrap()
            .admin
    );
    assert_eq!(db.approver_by_token_hash("nope").await.unwrap(), None);
    db.close().await;
}

async fn auto_grant_sync_and_revoke(url: &str) {
    let db = Db::connect(url).await.unwrap();
    let r = request("r1", "approved", 0, &[]);
    db.insert_request(&r, Some(&grant("g1", "r1", NOW + 600)))
        .await
        .unwrap();
    assert_eq!(db.request("r1").await.unwrap().unwrap(), r);
    assert_eq!(db.grant_for_request("r1").await.unwrap().unwrap().id, "g1");
    // A second grant for the same request is impossible.
    let e = db
        .insert_request(
            &request("r1", "approved", 0, &[]),
            Some(&grant("g2", "r1", NOW + 600)),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, DbError::Conflict(_)), "{e:?}");
    // The failed transaction left nothing behind.
    assert!(db.grant("g2").await.unwrap().is_none());
    db.insert_request(
        &request("r2", "approved", 0, &[]),
        Some(&grant("g-old", "r2", NOW - 10)),
    )
    .await
    .unwrap();
    let live: Vec<String> = db
        .grants_for_host("web-01", NOW)
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(live, vec!["g1"]);
    assert!(db.grants_for_host("web-02", NOW).await.unwrap().is_empty());
    assert!(db.revoke("g1", "bob", "leaked", NOW).await.unwrap());
    assert!(!db.revoke("g1", "bob", "again", NOW).await.unwrap());
    assert!(matches!(
        db.revoke("nope", "bob", "x", NOW).await,
        Err(DbError::NotFound(_))
    ));
    assert_eq!(db.revoked_ids(NOW).await.unwrap(), vec!["g1"]);
    assert!(
        db.grants_for_host("web-01", NOW).await.unwrap().is_empty(),
        "revoked grants are not synced"
    );
    assert_eq!(db.count(Table::Grants).await.unwrap(), 2);
    db.close().await;
}

/// The steps the service composes into approving and denying: each does its one SQL
/// thing, constraints answer `Conflict`, and an error rolls back every step before it.
async fn transaction_steps(url: &str) {
    let db = Db::connect(url).await.unwrap();
    db.insert_request(&request("r1", "pending", 2, &["group:sre"]), None)
        .await
        .unwrap();
    db.insert_request(&request("r2", "pending", 1, &["bob"]), None)
        .await
        .unwrap();
    let mut tx = db.write().await.unwrap();
    assert_eq!(tx.request_for_update("nope").await.unwrap(), None);
    let r = tx.request_for_update("r1").await.unwrap().unwrap();
    assert_eq!(r.status, "pending");
    tx.insert_approval("r1", "bob", "ok", NOW).await.unwrap();
    tx.insert_approval("r1", "carol", "", NOW + 1)
        .await
        .unwrap();
    assert_eq!(tx.approvers_of("r1").await.unwrap(), ["bob", "carol"]);
    assert!(tx.set_approved("r1", "bob,carol", NOW + 1).await.unwrap());
    assert!(
        !tx.set_approved("r1", "bob,carol", NOW + 1).await.unwrap(),
        "only a pending request is decided"
    );
    tx.insert_grant(&grant("g1", "r1", NOW + 600))
        .await
        .unwrap();
    tx.finish(Ok::<_, DbError>(())).await.unwrap();
    let r = db.request("r1").await.unwrap().unwrap();
    assert_eq!(
        (r.status.as_str(), r.decided_by.as_deref(), r.decided_at),
        ("approved", Some("bob,carol"), Some(NOW + 1))
    );
    assert_eq!(db.grant_for_request("r1").await.unwrap().unwrap().id, "g1");

    // A duplicate approval is a conflict, and the transaction's error undoes it all.
    let mut tx = db.write().await.unwrap();
    tx.insert_approval("r2", "bob", "", NOW).await.unwrap();
    assert!(tx
        .set_denied("r2", "denied by bob: no", "bob", NOW)
        .await
        .unwrap());
    let e = tx.insert_approval("r2", "bob", "", NOW).await.unwrap_err();
    assert!(matches!(e, DbError::Conflict(_)), "{e:?}");
    assert!(tx.finish::<(), _>(Err(e)).await.is_err());
    let r = db.request("r2").await.unwrap().unwrap();
    assert_eq!(r.status, "pending", "rolled back");
    assert!(db.approvals("r2").await.unwrap().is_empty());

    // A second grant for a request is refused by the schema.
    let mut tx = db.write().await.unwrap();
    let e = tx
        .insert_grant(&grant("g2", "r1", NOW + 600))
        .await
        .unwrap_err();
    assert!(matches!(e, DbError::Conflict(_)), "{e:?}");
    assert!(tx.finish::<(), _>(Err(e)).await.is_err());
    assert_eq!(db.count(Table::Grants).await.unwrap(), 1);

    let mut tx = db.write().await.unwrap();
    assert!(tx
        .set_denied("r2", "denied by bob: no", "bob", NOW)
        .await
        .unwrap());
    tx.finish(Ok::<_, DbError>(())).await.unwrap();
    let r = db.request("r2").await.unwrap().unwrap();
    assert_eq!(
        (r.status.as_str(), r.message.as_str()),
        ("denied", "denied by bob: no")
    );
    db.close().await;
}

/// The reads behind request lists and the web page: several requests' approvals and
/// grants in one query each, and the recent grants with their revocations.
async fn batched_reads(url: &str) {
    let db = Db::connect(url).await.unwrap();
    for id in ["a1", "a2", "a3"] {
        db.insert_request(&request(id, "pending", 2, &["group:sre"]), None)
            .await
            .unwrap();
    }
    db.insert_request(
        &request("auto", "approved", 0, &[]),
        Some(&grant("g-auto", "auto", NOW + 600)),
    )
    .await
    .unwrap();
    let mut tx = db.write().await.unwrap();
    tx.insert_approval("a1", "carol", "second", NOW + 2)
        .await
        .unwrap();
    tx.insert_approval("a1", "bob", "first", NOW + 1)
        .await
        .unwrap();
    tx.insert_approval("a3", "dave", "", NOW).await.unwrap();
    tx.finish(Ok::<_, DbError>(())).await.unwrap();

    let ids = ["a1", "a2", "a3", "auto", "nope"];
    let approvals = db.approvals_of(&ids).await.unwrap();
    let names = |id: &str| -> Vec<String> {
        approvals
            .get(id)
            .map(|a| a.iter().map(|a| a.approver.clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(names("a1"), ["bob", "carol"], "oldest first");
    assert_eq!(names("a3"), ["dave"]);
    assert!(names("a2").is_empty() && names("nope").is_empty());
    assert_eq!(approvals["a1"], db.approvals("a1").await.unwrap());
    assert!(db.approvals_of(&[]).await.unwrap().is_empty());

    let grants = db.grants_of(&ids).await.unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants["auto"].id, "g-auto");

    let mut rows: Vec<String> = db
        .requests(&["a3", "auto", "nope"])
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    rows.sort();
    assert_eq!(rows, ["a3", "auto"]);
    assert!(db.requests(&[]).await.unwrap().is_empty());

    assert!(db.revoke("g-auto", "bob", "leaked", NOW).await.unwrap());
    let recent = db.recent_grants(30).await.unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(
        (
            recent[0].id.as_str(),
            recent[0].command.as_str(),
            recent[0].revoked_by.as_deref()
        ),
        ("g-auto", "/bin/true", Some("bob"))
    );
    db.close().await;
}
