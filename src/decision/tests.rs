use super::*;
use crate::config::TrustedKey;
use crate::grant::keys::SecretKey;
use crate::grant::{format_time, sign, verify, Claims};
use crate::store::Revocations;

const NOW: i64 = 1_800_000_000;

fn grant(commands: &[&str], edit: impl FnOnce(&mut Claims)) -> Grant {
    let key = SecretKey::generate("k").unwrap();
    let mut c = Claims {
        jti: crate::grant::new_grant_id().unwrap(),
        iss: "t".into(),
        sub: "alice".into(),
        host: "web-01".into(),
        run_as: "root".into(),
        commands: commands.iter().map(|s| s.to_string()).collect(),
        nbf: format_time(NOW - 60),
        exp: format_time(NOW + 3600),
        iat: format_time(NOW - 60),
        uses: None,
        kind: Kind::Exec,
        reason: String::new(),
        approved_by: vec![],
        request: None,
        session_bound: false,
        exec: false,
        record: false,
        ticket: None,
        extends: None,
    };
    edit(&mut c);
    let trusted = [TrustedKey {
        id: "k".into(),
        key: key.public.clone(),
    }];
    verify(
        &sign(&c, &key).unwrap(),
        &trusted,
        Duration::from_secs(86400),
    )
    .unwrap()
}

fn ask<'a>(paths: &'a [String], args: &'a [OsString]) -> Ask<'a> {
    Ask {
        user: "alice",
        host: "web-01",
        run_as: "root",
        paths,
        args,
    }
}

fn run(grants: &[(&Grant, u32)], paths: &[&str], args: &[&str]) -> Result<Allowed, Denial> {
    run_with(grants, paths, args, &revoked(&[]), &mut |_, _| Ok(()))
}

fn revoked(ids: &[&str]) -> RevocationList {
    RevocationList::from_verified(&Revocations {
        issued_at: NOW,
        ids: ids.iter().map(|s| s.to_string()).collect(),
    })
}

fn run_with(
    grants: &[(&Grant, u32)],
    paths: &[&str],
    args: &[&str],
    revoked: &RevocationList,
    pin: &mut PinCheck<'_>,
) -> Result<Allowed, Denial> {
    let paths: Vec<String> = paths.iter().map(|s| s.to_string()).collect();
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    let cached: Vec<(Grant, u32)> = grants
        .iter()
        .map(|(g, used)| ((*g).clone(), *used))
        .collect();
    decide(
        &ask(&paths, &args),
        &cached,
        vec![],
        revoked,
        NOW,
        Duration::from_secs(60),
        pin,
    )
}

#[test]
fn allows_matching_command() {
    let g = grant(&["/usr/bin/id"], |_| {});
    let a = run(&[(&g, 0)], &["/usr/bin/id"], &[]).unwrap();
    assert_eq!(a.grant, 0);
    assert_eq!(a.path, "/usr/bin/id");
}

#[test]
fn no_grant_when_command_differs() {
    let g = grant(&["/usr/bin/id"], |_| {});
    assert!(matches!(
        run(&[(&g, 0)], &["/usr/bin/id"], &["-u"]),
        Err(Denial::NoGrant { .. })
    ));
    assert!(matches!(
        run(&[(&g, 0)], &["/usr/bin/whoami"], &[]),
        Err(Denial::NoGrant { .. })
    ));
    assert!(matches!(
        run(&[], &["/usr/bin/id"], &[]),
        Err(Denial::NoGrant { .. })
    ));
}

#[test]
fn expired_and_not_yet_valid_explained() {
    let old = grant(&["/usr/bin/id"], |c| {
        c.nbf = format_time(NOW - 7200);
        c.exp = format_time(NOW - 180);
    });
    let e = run(&[(&old, 0)], &["/usr/bin/id"], &[]).unwrap_err();
    assert_eq!(e.log_text(), "grant expired 3m ago");
    let later = grant(&["/usr/bin/id"], |c| {
        c.nbf = format_time(NOW + 600);
        c.exp = format_time(NOW + 3600);
    });
    let e = run(&[(&later, 0)], &["/usr/bin/id"], &[]).unwrap_err();
    assert!(e.log_text().contains("not yet valid"));
}

#[test]
fn run_as_must_match() {
    let g = grant(&["/usr/bin/id"], |c| c.run_as = "postgres".into());
    let e = run(&[(&g, 0)], &["/usr/bin/id"], &[]).unwrap_err();
    assert!(matches!(e, Denial::OtherRunAs { ref run_as, .. } if run_as == "postgres"));
}

#[test]
fn wrong_user_or_host_planted_in_cache() {
    let g = grant(&["/usr/bin/id"], |c| c.sub = "bob".into());
    let e = run(&[(&g, 0)], &["/usr/bin/id"], &[]).unwrap_err();
    assert!(e.log_text().contains("for user \"bob\""), "{e:?}");
    let g = grant(&["/usr/bin/id"], |c| c.host = "db-02".into());
    let e = run(&[(&g, 0)], &["/usr/bin/id"], &[]).unwrap_err();
    assert!(e.log_text().contains("db-02"), "{e:?}");
}

#[test]
fn uses_are_counted() {
    let once = grant(&["/usr/bin/id"], |c| c.uses = Some(1));
    assert!(run(&[(&once, 0)], &["/usr/bin/id"], &[]).is_ok());
    let e = run(&[(&once, 1)], &["/usr/bin/id"], &[]).unwrap_err();
    assert_eq!(e.log_text(), "one-time grant has already been used");
    let three = grant(&["/usr/bin/id"], |c| c.uses = Some(3));
    assert!(run(&[(&three, 2)], &["/usr/bin/id"], &[]).is_ok());
    assert!(run(&[(&three, 3)], &["/usr/bin/id"], &[]).is_err());
}

#[test]
fn unlimited_grant_preferred_over_one_time() {
    let once = grant(&["/usr/bin/id"], |c| c.uses = Some(1));
    let window = grant(&["/usr/bin/id"], |_| {});
    let a = run(&[(&once, 0), (&window, 0)], &["/usr/bin/id"], &[]).unwrap();
    assert_eq!(a.grant, 1);
}

#[test]
fn revoked_grant_denied() {
    let g = grant(&["/usr/bin/id"], |_| {});
    let e = run_with(
        &[(&g, 0)],
        &["/usr/bin/id"],
        &[],
        &revoked(&[g.id()]),
        &mut |_, _| Ok(()),
    )
    .unwrap_err();
    assert_eq!(e.log_text(), "grant has been revoked");
}

#[test]
fn login_grant_does_not_run_commands() {
    let g = grant(&["/usr/bin/id"], |c| c.kind = Kind::Login);
    assert!(run(&[(&g, 0)], &["/usr/bin/id"], &[]).is_err());
}

#[test]
fn pin_mismatch_denied() {
    let hex = "00".repeat(32);
    let spec = format!("sha256:{hex} /usr/bin/id");
    let g = grant(&[spec.as_str()], |_| {});
    let e = run_with(
        &[(&g, 0)],
        &["/usr/bin/id"],
        &[],
        &revoked(&[]),
        &mut |_, path| Err(format!("{path} does not match the grant's sha256 pin")),
    )
    .unwrap_err();
    assert!(e.log_text().contains("sha256"), "{e:?}");
    let a = run_with(
        &[(&g, 0)],
        &["/usr/bin/id"],
        &[],
        &revoked(&[]),
        &mut |_, _| Ok(()),
    )
    .unwrap();
    assert!(a.pinned);
}

#[test]
fn bare_name_matches_any_secure_path_candidate() {
    let g = grant(&["/bin/true"], |_| {});
    let a = run(&[(&g, 0)], &["/usr/bin/true", "/bin/true"], &[]).unwrap();
    assert_eq!(a.path, "/bin/true");
}

#[test]
fn quoting() {
    assert_eq!(shell_quote("/usr/bin/id"), "/usr/bin/id");
    assert_eq!(shell_quote("a b"), "'a b'");
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
    assert_eq!(shell_quote(""), "''");
}
