use super::*;
use crate::config::TrustedKey;
use crate::grant::keys::SecretKey;
use crate::grant::{format_time, sign, Claims};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

const NOW: i64 = 1_800_000_000;
const SKEW: i64 = 60;

struct Keyed {
    key: SecretKey,
    config: HostConfig,
}

fn keyed() -> Keyed {
    let key = SecretKey::generate("k").unwrap();
    let mut config = crate::config::parse(
        Path::new("/etc/jitsudo/jitsudo.toml"),
        "host = \"web-01\"\nclock_skew = \"60s\"\n",
    )
    .unwrap();
    config.trusted_keys.push(TrustedKey {
        id: "k".into(),
        key: key.public.clone(),
    });
    Keyed { key, config }
}

fn claims(kind: Kind) -> Claims {
    Claims {
        jti: grant::new_grant_id().unwrap(),
        iss: "t".into(),
        sub: "alice".into(),
        host: "web-01".into(),
        run_as: "root".into(),
        commands: if kind == Kind::Exec {
            vec!["/usr/bin/id".into()]
        } else {
            vec![]
        },
        nbf: format_time(NOW - 600),
        exp: format_time(NOW + 3600),
        iat: format_time(NOW - 600),
        uses: None,
        kind,
        reason: String::new(),
        approved_by: vec![],
        request: None,
        session_bound: false,
        exec: false,
        record: false,
        ticket: None,
        extends: None,
    }
}

impl Keyed {
    fn token(&self, kind: Kind, edit: impl FnOnce(&mut Claims)) -> String {
        let mut c = claims(kind);
        edit(&mut c);
        sign(&c, &self.key).unwrap()
    }

    fn grant(&self, kind: Kind, edit: impl FnOnce(&mut Claims)) -> Grant {
        let token = self.token(kind, edit);
        grant::verify(
            &token,
            &self.config.trusted_keys,
            self.config.max_grant_lifetime,
        )
        .unwrap()
    }
}

fn revoked(ids: &[&str]) -> RevocationList {
    RevocationList::from_verified(&Revocations {
        issued_at: NOW - 10,
        ids: ids.iter().map(|s| s.to_string()).collect(),
    })
}

fn terms<'a>(
    config: &'a HostConfig,
    kind: Option<Kind>,
    list: &'a RevocationList,
    now: i64,
) -> Terms<'a> {
    Terms::new(config, "alice", kind, list, now)
}

// ---- admission --------------------------------------------------------------------------

#[test]
fn admits_a_good_grant_of_any_kind_or_the_kind_asked() {
    let k = keyed();
    let none = revoked(&[]);
    for kind in [Kind::Exec, Kind::Login] {
        let token = k.token(kind, |_| {});
        let g = admit(&k.config, &token, &terms(&k.config, None, &none, NOW)).unwrap();
        assert_eq!(g.claims.kind, kind);
        admit(&k.config, &token, &terms(&k.config, Some(kind), &none, NOW)).unwrap();
    }
}

#[test]
fn admission_refuses_bad_tokens_and_bindings() {
    let k = keyed();
    let none = revoked(&[]);
    let t = terms(&k.config, None, &none, NOW);
    let e = admit(&k.config, "garbage", &t).unwrap_err();
    assert!(e.to_string().starts_with("malformed grant"), "{e}");

    let other_key = SecretKey::generate("k").unwrap();
    let forged = sign(&claims(Kind::Exec), &other_key).unwrap();
    let e = admit(&k.config, &forged, &t).unwrap_err();
    assert_eq!(e.to_string(), "grant signature invalid for key \"k\"");

    let token = k.token(Kind::Exec, |c| c.host = "db-01".into());
    let e = admit(&k.config, &token, &t).unwrap_err();
    assert_eq!(
        e.to_string(),
        "grant is for host \"db-01\", this host is \"web-01\""
    );

    let token = k.token(Kind::Exec, |c| c.sub = "bob".into());
    let e = admit(&k.config, &token, &t).unwrap_err();
    assert_eq!(e.to_string(), "grant is for user \"bob\", not \"alice\"");

    let token = k.token(Kind::Exec, |_| {});
    let e = admit(
        &k.config,
        &token,
        &terms(&k.config, Some(Kind::Login), &none, NOW),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Refusal::WrongKind {
                kind: Kind::Exec,
                wanted: Kind::Login,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "grant is an exec grant, not a login grant");
}

#[test]
fn admission_refuses_a_revoked_grant_by_id() {
    let k = keyed();
    let g = k.grant(Kind::Exec, |_| {});
    let list = revoked(&[g.id()]);
    let e = admit(&k.config, &g.token, &terms(&k.config, None, &list, NOW)).unwrap_err();
    assert_eq!(
        e,
        Refusal::Revoked {
            grant: g.id().to_string()
        }
    );
    assert_eq!(e.to_string(), format!("grant {} has been revoked", g.id()));
    assert_eq!(e.reason(), "grant has been revoked");
    // Another grant is not affected.
    let other = k.token(Kind::Exec, |_| {});
    admit(&k.config, &other, &terms(&k.config, None, &list, NOW)).unwrap();
}

/// Caching needs "not expired"; a use needs "inside the window". Both allow the clock
/// skew on either side: [nbf - skew, exp + skew).
#[test]
fn window_edges() {
    let k = keyed();
    let none = revoked(&[]);
    let nbf = NOW + 1000;
    let exp = NOW + 2000;
    let g = k.grant(Kind::Exec, |c| {
        c.nbf = format_time(nbf);
        c.exp = format_time(exp);
    });
    let at = |now: i64, window: Window| check(&g, &terms(&k.config, None, &none, now), window);

    // Not valid yet: cached for later, not usable.
    assert_eq!(at(nbf - SKEW - 1, Window::NotExpired), Ok(()));
    assert!(matches!(
        at(nbf - SKEW - 1, Window::Now),
        Err(Refusal::Grant(Rejection::NotYetValid { .. }))
    ));
    assert_eq!(at(nbf - SKEW, Window::Now), Ok(()));
    // The last second inside the skew after exp, and the first outside.
    assert_eq!(at(exp + SKEW - 1, Window::Now), Ok(()));
    assert_eq!(at(exp + SKEW - 1, Window::NotExpired), Ok(()));
    for window in [Window::Now, Window::NotExpired] {
        let e = at(exp + SKEW, window).unwrap_err();
        assert_eq!(
            e,
            Refusal::Grant(Rejection::Expired { ago: SKEW as u64 }),
            "{window:?}"
        );
    }
    // Admission of an expired token says so.
    let e = admit(
        &k.config,
        &g.token,
        &terms(&k.config, None, &none, exp + SKEW),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "grant expired 1m ago");
}

#[test]
fn checks_run_in_order_binding_kind_window_revocation() {
    let k = keyed();
    // Wrong host, wrong kind, expired and revoked: the host is what is reported.
    let g = k.grant(Kind::Login, |c| {
        c.host = "db-01".into();
        c.nbf = format_time(NOW - 7200);
        c.exp = format_time(NOW - 3600);
    });
    let list = revoked(&[g.id()]);
    let t = terms(&k.config, Some(Kind::Exec), &list, NOW);
    assert!(matches!(
        check(&g, &t, Window::Now),
        Err(Refusal::Grant(Rejection::WrongHost { .. }))
    ));
    let g = k.grant(Kind::Login, |c| {
        c.nbf = format_time(NOW - 7200);
        c.exp = format_time(NOW - 3600);
    });
    let list = revoked(&[g.id()]);
    let t = terms(&k.config, Some(Kind::Exec), &list, NOW);
    assert!(matches!(
        check(&g, &t, Window::Now),
        Err(Refusal::WrongKind { .. })
    ));
    let t = terms(&k.config, Some(Kind::Login), &list, NOW);
    assert!(matches!(
        check(&g, &t, Window::Now),
        Err(Refusal::Grant(Rejection::Expired { .. }))
    ));
}

#[test]
fn uses_are_checked_at_use() {
    let k = keyed();
    let none = revoked(&[]);
    let t = terms(&k.config, None, &none, NOW);
    let once = k.grant(Kind::Exec, |c| c.uses = Some(1));
    assert_eq!(check_use(&once, 0, &t, Window::Now), Ok(()));
    let e = check_use(&once, 1, &t, Window::Now).unwrap_err();
    assert_eq!(e.reason(), "one-time grant has already been used");
    let three = k.grant(Kind::Exec, |c| c.uses = Some(3));
    let e = check_use(&three, 3, &t, Window::Now).unwrap_err();
    assert_eq!(e.reason(), "all 3 uses of the grant are used up");
}

// ---- freshness --------------------------------------------------------------------------

#[test]
fn freshness_is_required_only_with_revocation_max_age() {
    let mut config = keyed().config;
    let never_synced = RevocationList {
        ids: HashSet::new(),
        issued_at: None,
    };
    assert_eq!(never_synced.check_fresh(&config, NOW), Ok(()));
    config.revocation_max_age = Some(Duration::from_secs(900));
    let e = never_synced.check_fresh(&config, NOW).unwrap_err();
    assert!(e.starts_with("no revocation list on this host yet"), "{e}");
    let list = |age: i64| {
        RevocationList::from_verified(&Revocations {
            issued_at: NOW - age,
            ids: vec![],
        })
    };
    assert_eq!(list(900).check_fresh(&config, NOW), Ok(()));
    let e = list(901).check_fresh(&config, NOW).unwrap_err();
    assert!(
        e.starts_with("the revocation list is 15m 1s old, older than revocation_max_age (15m)"),
        "{e}"
    );
}

// ---- the list on disk -------------------------------------------------------------------

static SCRATCH: AtomicU32 = AtomicU32::new(0);

/// A state directory under /run: the store trusts only directories root owns and nobody
/// else may write all the way up, which a shared /tmp is not.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        assert_eq!(
            crate::system::effective_uid(),
            0,
            "these tests use a real state directory, which must be root-owned: run them as root"
        );
        let dir = Path::new("/run").join(format!(
            "jitsudo-admission-unit-{}-{}",
            std::process::id(),
            SCRATCH.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        Scratch(dir)
    }

    fn store(&self) -> Store {
        Store::new(&self.0.join("state"))
    }

    fn list_path(&self) -> PathBuf {
        self.0.join("state/revocations.json")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_missing_list_revokes_nothing_and_a_stored_one_is_read() {
    let scratch = Scratch::new();
    let store = scratch.store();
    // No state directory at all, then one without a list.
    assert!(RevocationList::load(&store).unwrap().is_empty());
    store.prepare().unwrap();
    let list = RevocationList::load(&store).unwrap();
    assert!(list.is_empty());
    assert_eq!(list.issued_at, None);
    store
        .save_revocations(&Revocations {
            issued_at: NOW,
            ids: vec!["abc".into()],
        })
        .unwrap();
    let list = RevocationList::load(&store).unwrap();
    assert!(list.contains("abc") && !list.contains("abd"));
    assert_eq!(list.issued_at, Some(NOW));
}

/// An unreadable, unparsable or untrusted list refuses, naming the file and the reason;
/// so does every admission and use made with it, since there is no list without `load`.
#[test]
fn a_broken_list_refuses_naming_the_file() {
    let scratch = Scratch::new();
    let store = scratch.store();
    store.prepare().unwrap();
    let path = scratch.list_path();
    let shown = path.display().to_string();
    let config = keyed().config;

    std::fs::write(&path, "{\"issued_at\":1,\"ids\":[").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = RevocationList::load(&store).unwrap_err();
    assert!(
        e.starts_with(&format!("{shown}: corrupt revocation list")),
        "{e}"
    );
    let e = RevocationList::for_use(&store, &config, NOW).unwrap_err();
    assert!(e.contains("corrupt revocation list"), "{e}");

    // Valid JSON, but not what --sync writes.
    std::fs::write(&path, "{\"ids\":[\"x\"],\"revoked\":true}").unwrap();
    let e = RevocationList::load(&store).unwrap_err();
    assert!(e.contains("corrupt revocation list"), "{e}");

    std::fs::write(&path, "{\"issued_at\":1,\"ids\":[]}").unwrap();
    std::os::unix::fs::chown(&path, Some(42001), None).unwrap();
    let e = RevocationList::load(&store).unwrap_err();
    assert_eq!(
        e,
        format!("refusing revocation list: {shown} is owned by uid 42001, not root; fix with: chown root:root {shown}")
    );
    std::os::unix::fs::chown(&path, Some(0), None).unwrap();

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let e = RevocationList::load(&store).unwrap_err();
    assert!(e.contains("is writable by group or others"), "{e}");

    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", &path).unwrap();
    let e = RevocationList::load(&store).unwrap_err();
    assert!(e.contains(&format!("{shown} is a symlink")), "{e}");

    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    let e = RevocationList::load(&store).unwrap_err();
    assert!(e.contains(&shown), "{e}");
}

// ---- selection --------------------------------------------------------------------------

fn select_login(
    grants: &[(Grant, u32)],
    config: &HostConfig,
    list: &RevocationList,
    now: i64,
) -> Result<usize, Unchosen> {
    select(
        grants,
        &terms(config, Some(Kind::Login), list, now),
        &mut Login,
    )
    .map(|c| c.index)
}

#[test]
fn selection_skips_other_kinds_and_prefers_unlimited_then_soonest() {
    let k = keyed();
    let none = revoked(&[]);
    let exec = k.grant(Kind::Exec, |_| {});
    assert_eq!(
        select_login(&[(exec.clone(), 0)], &k.config, &none, NOW),
        Err(Unchosen::NoGrant)
    );
    let counted = k.grant(Kind::Login, |c| {
        c.uses = Some(3);
        c.exp = format_time(NOW + 60);
    });
    let late = k.grant(Kind::Login, |c| c.exp = format_time(NOW + 7000));
    let soon = k.grant(Kind::Login, |c| c.exp = format_time(NOW + 3000));
    let all = [(exec, 0), (counted, 0), (late, 0), (soon, 0)];
    assert_eq!(select_login(&all, &k.config, &none, NOW), Ok(3));
    assert_eq!(select_login(&all[..2], &k.config, &none, NOW), Ok(1));
}

#[test]
fn selection_says_why_a_grant_that_names_the_request_is_unusable() {
    let k = keyed();
    let g = k.grant(Kind::Login, |c| c.uses = Some(1));
    let id = g.id().to_string();
    let list = revoked(&[&id]);
    assert_eq!(
        select_login(&[(g.clone(), 0)], &k.config, &list, NOW),
        Err(Unchosen::Unusable {
            grant: id.clone(),
            why: "grant has been revoked".into()
        })
    );
    let none = revoked(&[]);
    assert_eq!(
        select_login(&[(g.clone(), 1)], &k.config, &none, NOW),
        Err(Unchosen::Unusable {
            grant: id.clone(),
            why: "one-time grant has already been used".into()
        })
    );
    // A usable grant wins over an unusable one, whatever their order.
    let ok = k.grant(Kind::Login, |_| {});
    assert_eq!(
        select_login(&[(g, 1), (ok, 0)], &k.config, &none, NOW),
        Ok(1)
    );
}

/// A kind's request: names the grant if its first command is `want`; the run-as user
/// must be root; confirm fails for a grant listed in `bad`.
struct Named {
    want: &'static str,
    bad: Vec<String>,
    confirmed: Vec<String>,
}

impl Request for Named {
    type Found = ();
    type Chosen = String;

    fn names(&mut self, grant: &Grant) -> Names<()> {
        if grant.claims.commands.first().map(String::as_str) != Some(self.want) {
            Names::No
        } else if grant.claims.run_as != "root" {
            Names::OtherRunAs(grant.claims.run_as.clone())
        } else {
            Names::Yes(())
        }
    }

    fn confirm(&mut self, grant: &Grant, _found: ()) -> Result<String, String> {
        self.confirmed.push(grant.id().to_string());
        if self.bad.iter().any(|b| b == grant.id()) {
            Err("confirm failed".into())
        } else {
            Ok(grant.id().to_string())
        }
    }
}

#[test]
fn selection_asks_the_kind_and_confirms_only_what_passed_the_checks() {
    let k = keyed();
    let none = revoked(&[]);
    let t = terms(&k.config, Some(Kind::Exec), &none, NOW);
    let other = k.grant(Kind::Exec, |c| c.commands = vec!["/bin/true".into()]);
    let as_bob = k.grant(Kind::Exec, |c| c.run_as = "bob".into());
    let expired = k.grant(Kind::Exec, |c| {
        c.nbf = format_time(NOW - 7200);
        c.exp = format_time(NOW - 3600);
    });
    let bad = k.grant(Kind::Exec, |_| {});
    let good = k.grant(Kind::Exec, |_| {});
    let mut request = Named {
        want: "/usr/bin/id",
        bad: vec![bad.id().to_string()],
        confirmed: vec![],
    };

    let e = select(&[(other.clone(), 0)], &t, &mut request).unwrap_err();
    assert_eq!(e, Unchosen::NoGrant);
    let e = select(&[(as_bob.clone(), 0)], &t, &mut request).unwrap_err();
    assert_eq!(
        e,
        Unchosen::OtherRunAs {
            grant: as_bob.id().into(),
            run_as: "bob".into()
        }
    );
    // Unusable beats another run-as user; the expired grant is never confirmed.
    let e = select(
        &[(as_bob.clone(), 0), (expired.clone(), 0)],
        &t,
        &mut request,
    )
    .unwrap_err();
    assert!(
        matches!(&e, Unchosen::Unusable { grant, why } if grant == expired.id() && why.starts_with("grant expired")),
        "{e:?}"
    );
    let e = select(&[(bad.clone(), 0)], &t, &mut request).unwrap_err();
    assert_eq!(
        e,
        Unchosen::Unusable {
            grant: bad.id().into(),
            why: "confirm failed".into()
        }
    );
    assert_eq!(request.confirmed, vec![bad.id().to_string()]);
    let all = [
        (other, 0),
        (as_bob, 0),
        (expired, 0),
        (bad, 0),
        (good.clone(), 0),
    ];
    let chosen = select(&all, &t, &mut request).unwrap();
    assert_eq!(chosen.index, 4);
    assert_eq!(chosen.chosen, good.id());
}

// ---- spending a use ---------------------------------------------------------------------

#[test]
fn spending_counts_under_the_lock_and_only_after_logging() {
    let scratch = Scratch::new();
    let store = scratch.store();
    let k = keyed();
    let uid = Uid::new(42001).unwrap();
    let g = k.grant(Kind::Exec, |c| c.uses = Some(2));
    crate::host::cache_grant(&store, &k.config, uid, &g, NOW).unwrap();

    // A log that fails spends nothing.
    let e = spend_use(&store, uid, &g, || Err("syslog down")).unwrap_err();
    assert!(matches!(e, SpendError::NotLogged("syslog down")), "{e:?}");
    assert_eq!(store.load_user(uid).unwrap().used(g.id()), 0);

    let mut logged = 0;
    for n in 1..=2 {
        let spent = spend_use(&store, uid, &g, || {
            logged += 1;
            Ok::<(), String>(())
        })
        .unwrap();
        assert_eq!(spent.used, Some(n));
        assert!(spent.lock.is_some());
    }
    assert_eq!(store.load_user(uid).unwrap().used(g.id()), 2);
    // The last use is gone: refused before the log.
    let e = spend_use(&store, uid, &g, || {
        logged += 1;
        Ok::<(), String>(())
    })
    .unwrap_err();
    assert!(
        matches!(&e, SpendError::UsedUp(r) if r.reason() == "all 2 uses of the grant are used up"),
        "{e:?}"
    );
    assert_eq!(logged, 2);

    // An unlimited grant is logged, not counted, and takes no lock.
    let unlimited = k.grant(Kind::Exec, |_| {});
    let spent = spend_use(&store, uid, &unlimited, || Ok::<(), String>(())).unwrap();
    assert!(spent.lock.is_none() && spent.used.is_none());
    assert_eq!(store.load_user(uid).unwrap().used(unlimited.id()), 0);
}

// ---- an extension's successor -------------------------------------------------------------

#[test]
fn a_successor_replaces_exactly_the_running_grant_for_the_same_command() {
    let k = keyed();
    let old = k.grant(Kind::Exec, |_| {});
    let ext = |edit: &dyn Fn(&mut Claims)| {
        k.grant(Kind::Exec, |c| {
            c.extends = Some(old.id().to_string());
            c.exp = format_time(NOW + 7200);
            edit(c);
        })
    };
    let good = ext(&|_| {});
    let none = revoked(&[]);
    let t = terms(&k.config, None, &none, NOW);
    let args: Vec<std::ffi::OsString> = vec![];
    let run = Running {
        grant: old.id(),
        run_as: "root",
        path: "/usr/bin/id",
        args: &args,
        pinned: false,
        allow_exec: false,
        recording: false,
    };
    let later = ext(&|c| c.exp = format_time(NOW + 9000));
    let all = vec![(old.clone(), 0), (good.clone(), 0), (later.clone(), 0)];
    assert_eq!(successor(&all, &t, &run), Some(2), "the latest-ending one");
    assert_eq!(successor(&all[..2], &t, &run), Some(1));

    // Each of these is not a successor of the running command.
    let refused: Vec<(&str, Grant, u32)> = vec![
        (
            "extends another grant",
            ext(&|c| c.extends = Some("other".into())),
            0,
        ),
        ("extends nothing", ext(&|c| c.extends = None), 0),
        ("another run-as", ext(&|c| c.run_as = "bob".into()), 0),
        (
            "another command",
            ext(&|c| c.commands = vec!["/usr/bin/id -u".into()]),
            0,
        ),
        (
            "a login grant",
            ext(&|c| {
                c.kind = Kind::Login;
                c.commands = vec![];
            }),
            0,
        ),
        ("for another user", ext(&|c| c.sub = "bob".into()), 0),
        ("not yet valid", ext(&|c| c.nbf = format_time(NOW + 600)), 0),
        (
            "expired",
            ext(&|c| {
                c.nbf = format_time(NOW - 900);
                c.exp = format_time(NOW - 300);
            }),
            0,
        ),
        ("wants a recording", ext(&|c| c.record = true), 0),
        ("used up", ext(&|c| c.uses = Some(1)), 1),
    ];
    for (why, g, used) in refused {
        assert_eq!(successor(&[(g, used)], &t, &run), None, "{why}");
    }
    let listed = revoked(&[good.id()]);
    let t2 = terms(&k.config, None, &listed, NOW);
    assert_eq!(successor(&[(good.clone(), 0)], &t2, &run), None, "revoked");
    let pinned = Running {
        pinned: true,
        ..run
    };
    assert_eq!(
        successor(&[(good.clone(), 0)], &t, &pinned),
        None,
        "pinned run"
    );
    // No exec filter in place: only a successor that allows exec keeps the terms.
    let unfiltered = Running {
        allow_exec: true,
        ..run
    };
    assert_eq!(successor(&[(good.clone(), 0)], &t, &unfiltered), None);
    let with_exec = ext(&|c| c.exec = true);
    assert_eq!(
        successor(&[(with_exec.clone(), 0)], &t, &unfiltered),
        Some(0)
    );
    // A filtered run may continue under a grant that would allow exec: it stays filtered.
    assert_eq!(successor(&[(with_exec, 0)], &t, &run), Some(0));
}
