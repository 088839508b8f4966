//! Which edit grant covers a file: the same admission as for commands (host, user,
//! revocation, window, uses left), and the same preference (a grant without a use
//! count before a counted one, then the soonest to expire). Pure.
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::time::Duration;

use crate::grant::{Grant, Kind};

/// What the host knows when it decides.
pub struct Admission<'a> {
    pub user: &'a str,
    pub host: &'a str,
    pub revoked: &'a HashSet<String>,
    pub now: i64,
    pub skew: Duration,
}

/// Why no grant covers a file, the most useful reason first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoGrant {
    /// No edit grant names the file.
    NotNamed { exec_grant: Option<String> },
    /// An edit grant names it but cannot be used now.
    Unusable { grant: String, why: String },
}

impl NoGrant {
    pub fn log_text(&self) -> String {
        match self {
            NoGrant::NotNamed { .. } => "no edit grant".to_string(),
            NoGrant::Unusable { why, .. } => why.clone(),
        }
    }

    pub fn grant(&self) -> Option<&str> {
        match self {
            NoGrant::NotNamed { .. } => None,
            NoGrant::Unusable { grant, .. } => Some(grant),
        }
    }
}

/// Why this grant cannot be used now, if it cannot.
pub fn unusable(ask: &Admission<'_>, grant: &Grant, used: u32) -> Option<String> {
    if let Err(e) = grant.check_binding(ask.host, ask.user) {
        Some(e.to_string())
    } else if ask.revoked.contains(grant.id()) {
        Some("grant has been revoked".to_string())
    } else if let Err(e) = grant.check_window(ask.now, ask.skew) {
        Some(e.to_string())
    } else if grant.claims.uses.is_some_and(|n| used >= n) {
        Some(match grant.claims.uses.unwrap_or(0) {
            1 => "one-time grant has already been used".to_string(),
            n => format!("all {n} uses of the grant are used up"),
        })
    } else {
        None
    }
}

/// The index of the grant to edit `path` under.
pub fn choose(ask: &Admission<'_>, grants: &[(Grant, u32)], path: &str) -> Result<usize, NoGrant> {
    let mut best: Option<(usize, (bool, i64))> = None;
    let mut first_problem = None;
    let mut exec_grant = None;
    for (index, (g, used)) in grants.iter().enumerate() {
        let names = g.commands.iter().any(|c| c.path == path);
        if g.claims.kind != Kind::Edit {
            // `jitsudo -e` never uses an exec grant, even one for this path; say so.
            if names && exec_grant.is_none() {
                exec_grant = Some(g.id().to_string());
            }
            continue;
        }
        if !names {
            continue;
        }
        if let Some(why) = unusable(ask, g, *used) {
            first_problem.get_or_insert(NoGrant::Unusable {
                grant: g.id().to_string(),
                why,
            });
            continue;
        }
        let rank = (g.claims.uses.is_some(), g.exp);
        if best.as_ref().is_none_or(|(_, r)| rank < *r) {
            best = Some((index, rank));
        }
    }
    match best {
        Some((index, _)) => Ok(index),
        None => Err(first_problem.unwrap_or(NoGrant::NotNamed { exec_grant })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::{format_time, keys::SecretKey, Claims};

    const NOW: i64 = 1_800_000_000;

    fn grant(kind: Kind, files: &[&str], change: impl FnOnce(&mut Claims)) -> Grant {
        let mut claims = Claims {
            jti: format!("g{}", files.len()),
            iss: "test".into(),
            sub: "alice".into(),
            host: "web-01".into(),
            run_as: "root".into(),
            commands: files.iter().map(|f| f.to_string()).collect(),
            nbf: format_time(NOW - 60),
            exp: format_time(NOW + 3600),
            iat: format_time(NOW - 60),
            uses: None,
            kind,
            reason: String::new(),
            approved_by: vec![],
            request: None,
            session_bound: false,
        };
        change(&mut claims);
        let key = SecretKey::generate("k1").unwrap();
        let token = crate::grant::sign(&claims, &key).unwrap();
        let trusted = [crate::grant::keys::TrustedKey {
            id: "k1".into(),
            key: key.public.clone(),
        }];
        crate::grant::verify(&token, &trusted, Duration::from_secs(86400)).unwrap()
    }

    fn ask(revoked: &HashSet<String>) -> Admission<'_> {
        Admission {
            user: "alice",
            host: "web-01",
            revoked,
            now: NOW,
            skew: Duration::ZERO,
        }
    }

    #[test]
    fn the_grant_naming_the_file_is_chosen() {
        let none = HashSet::new();
        let grants = vec![
            (grant(Kind::Edit, &["/etc/hosts"], |_| {}), 0),
            (
                grant(Kind::Edit, &["/etc/a", "/etc/nginx/nginx.conf"], |_| {}),
                0,
            ),
        ];
        assert_eq!(choose(&ask(&none), &grants, "/etc/nginx/nginx.conf"), Ok(1));
        assert_eq!(choose(&ask(&none), &grants, "/etc/hosts"), Ok(0));
        assert_eq!(
            choose(&ask(&none), &grants, "/etc/shadow"),
            Err(NoGrant::NotNamed { exec_grant: None })
        );
    }

    #[test]
    fn an_exec_grant_for_the_path_does_not_allow_editing() {
        let none = HashSet::new();
        let grants = vec![(
            grant(Kind::Exec, &["/etc/hosts"], |c| c.jti = "x1".into()),
            0,
        )];
        assert_eq!(
            choose(&ask(&none), &grants, "/etc/hosts"),
            Err(NoGrant::NotNamed {
                exec_grant: Some("x1".into())
            })
        );
    }

    #[test]
    fn expired_revoked_used_up_and_foreign_grants_are_unusable() {
        let cases: Vec<(Grant, u32, &str)> = vec![
            (
                grant(Kind::Edit, &["/etc/hosts"], |c| {
                    c.exp = format_time(NOW - 1)
                }),
                0,
                "expired",
            ),
            (
                grant(Kind::Edit, &["/etc/hosts"], |c| c.uses = Some(1)),
                1,
                "already been used",
            ),
            (
                grant(Kind::Edit, &["/etc/hosts"], |c| c.host = "db-01".into()),
                0,
                "for host",
            ),
            (
                grant(Kind::Edit, &["/etc/hosts"], |c| c.sub = "bob".into()),
                0,
                "for user",
            ),
            (
                grant(Kind::Edit, &["/etc/hosts"], |c| {
                    c.nbf = format_time(NOW + 60)
                }),
                0,
                "not yet valid",
            ),
        ];
        let none = HashSet::new();
        for (g, used, needle) in cases {
            let err = choose(&ask(&none), &[(g, used)], "/etc/hosts").unwrap_err();
            assert!(err.log_text().contains(needle), "{err:?} vs {needle}");
        }
        let g = grant(Kind::Edit, &["/etc/hosts"], |_| {});
        let revoked: HashSet<String> = [g.id().to_string()].into();
        let err = choose(&ask(&revoked), &[(g, 0)], "/etc/hosts").unwrap_err();
        assert_eq!(err.log_text(), "grant has been revoked");
    }

    #[test]
    fn unlimited_before_counted_then_soonest_to_expire() {
        let none = HashSet::new();
        let grants = vec![
            (grant(Kind::Edit, &["/etc/hosts"], |c| c.uses = Some(3)), 0),
            (
                grant(Kind::Edit, &["/etc/hosts"], |c| {
                    c.exp = format_time(NOW + 7200)
                }),
                0,
            ),
            (
                grant(Kind::Edit, &["/etc/hosts"], |c| {
                    c.exp = format_time(NOW + 600)
                }),
                0,
            ),
        ];
        assert_eq!(choose(&ask(&none), &grants, "/etc/hosts"), Ok(2));
    }
}
