//! Revocation lists at fleet scale: each host's sync carries its own signed list (named
//! for it, holding only its revoked grants, whatever the other hosts' revocations), the
//! fleet's list stays for older hosts and is signed once and reused (with an entity
//! tag), and a revocation is in the next answer of either list at once.

mod common;

use common::hosts::{agent, revoke, trusted, TestHost, POLICY};
use common::world::Service;
use common::TempDir;
use jitsudo_core::wire;

/// GET /v1/revocations: (status, etag, body).
fn fleet(svc: &Service, if_none_match: Option<&str>) -> (u16, String, String) {
    let mut r = agent().get(format!("{}/v1/revocations", svc.url));
    if let Some(e) = if_none_match {
        r = r.header("if-none-match", e);
    }
    let mut resp = r.call().unwrap();
    let etag = resp
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_string())
        .expect("an ETag");
    (
        resp.status().as_u16(),
        etag,
        resp.body_mut().read_to_string().unwrap(),
    )
}

fn fleet_ids(svc: &Service) -> Vec<String> {
    let (s, _, body) = fleet(svc, None);
    assert_eq!(s, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let list = wire::verify_revocations(v["revocations"].as_str().unwrap(), &trusted(svc)).unwrap();
    assert_eq!(list.host, None);
    list.ids
}

#[test]
fn each_host_gets_its_own_list_and_the_fleet_list_is_reused() {
    common::require_root();
    let db = TempDir::new("revocations-db");
    let svc = Service::start(
        &format!("sqlite://{}/x.db", db.path().display()),
        POLICY,
        None,
    );
    let keys = trusted(&svc);
    let a = TestHost::register(&svc, "web-01");
    let b = TestHost::register(&svc, "web-02");
    let a1 = a.grant(&svc);
    let a2 = a.grant(&svc);
    let b_grants: Vec<String> = (0..20).map(|_| b.grant(&svc)).collect();

    // Nothing revoked yet: each host's list is empty and names the host.
    let before = a.sync(&svc, true);
    let list = wire::verify_host_revocations(&before.revocations, &keys, "web-01").unwrap();
    assert!(list.ids.is_empty());
    assert_eq!(before.grants.len(), 2);
    assert!(fleet_ids(&svc).is_empty());

    // One of web-01's grants and all of web-02's are revoked: web-01's list holds its
    // own only, and its size does not follow web-02's revocations.
    revoke(&svc, &a1);
    let one = a.sync(&svc, true);
    let list = wire::verify_host_revocations(&one.revocations, &keys, "web-01").unwrap();
    assert_eq!(list.ids, vec![a1.clone()]);
    let now = jitsudo_core::grant::now();
    assert!(
        (now - 5..=now).contains(&list.issued_at),
        "{}",
        list.issued_at
    );
    assert_eq!(one.grants.len(), 1, "the revoked grant is not sent");
    for g in &b_grants {
        revoke(&svc, g);
    }
    let after = a.sync(&svc, true);
    let list = wire::verify_host_revocations(&after.revocations, &keys, "web-01").unwrap();
    assert_eq!(list.ids, vec![a1.clone()]);
    assert_eq!(after.revocations.len(), one.revocations.len());
    // web-02's list is web-02's, and web-01 would refuse it.
    let theirs = b.sync(&svc, true);
    let list = wire::verify_host_revocations(&theirs.revocations, &keys, "web-02").unwrap();
    let mut want = b_grants.clone();
    want.sort();
    assert_eq!(list.ids, want);
    let e = wire::verify_host_revocations(&theirs.revocations, &keys, "web-01").unwrap_err();
    assert!(e.contains("is for host \"web-02\""), "{e}");

    // A revocation is in the very next sync, in the same second too (no stale reuse).
    revoke(&svc, &a2);
    let list =
        wire::verify_host_revocations(&a.sync(&svc, true).revocations, &keys, "web-01").unwrap();
    let mut want = vec![a1.clone(), a2.clone()];
    want.sort();
    assert_eq!(list.ids, want);

    // Older hosts (no host_revocations) get the fleet's list, in sync and by GET.
    let old = a.sync(&svc, false);
    let list = wire::verify_revocations(&old.revocations, &keys).unwrap();
    assert_eq!(list.host, None);
    assert_eq!(list.ids.len(), 22);
    assert_eq!(fleet_ids(&svc).len(), 22);

    // The fleet's list is signed once and handed out again: the same entity tag gets
    // 304 while the same signature is served (a new second signs again, with a new tag).
    let mut not_modified = false;
    for _ in 0..50 {
        let (s, etag, body) = fleet(&svc, None);
        assert_eq!(s, 200, "{body}");
        let (s2, etag2, body2) = fleet(&svc, Some(&etag));
        if s2 == 304 {
            assert_eq!(etag2, etag);
            assert!(body2.is_empty(), "{body2}");
            not_modified = true;
            break;
        }
        assert_eq!(s2, 200, "{body2}");
        assert_ne!(etag2, etag, "a 200 for the tag sent must carry another tag");
    }
    assert!(not_modified, "never answered 304 for the current tag");
    let (_, etag, _) = fleet(&svc, None);
    // A revocation drops the signed fleet list at once.
    let extra = a.grant(&svc);
    revoke(&svc, &extra);
    let (s, etag2, body) = fleet(&svc, Some(&etag));
    assert_eq!(s, 200, "{body}");
    assert_ne!(etag, etag2);
    assert!(fleet_ids(&svc).contains(&extra));
}
