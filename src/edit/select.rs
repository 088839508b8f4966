//! Which edit grant covers a file: `admission::select` with the edit kind's request
//! (an edit grant that lists the file), and the messages `jitsudo -e` gives when none
//! does. Pure.
#![forbid(unsafe_code)]

use crate::grant::{Grant, Kind};
use jitsudo_core::admission::{self, EditFile, Terms, Unchosen, Window};

/// Why no grant covers a file, the most useful reason first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoGrant {
    /// No edit grant names the file (an exec grant may: say so, it does not count).
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

/// The index of the grant to edit `path` under. `terms.kind` must be `Kind::Edit`.
pub fn choose(grants: &[(Grant, u32)], terms: &Terms<'_>, path: &str) -> Result<usize, NoGrant> {
    debug_assert_eq!(terms.kind, Some(Kind::Edit));
    match admission::select(grants, terms, &mut EditFile(path)) {
        Ok(chosen) => Ok(chosen.index),
        Err(Unchosen::Unusable { grant, why }) => Err(NoGrant::Unusable { grant, why }),
        Err(Unchosen::OtherRunAs { .. } | Unchosen::NoGrant) => Err(NoGrant::NotNamed {
            // `jitsudo -e` never uses an exec grant, even one for this path.
            exec_grant: grants
                .iter()
                .find(|(g, _)| {
                    g.claims.kind == Kind::Exec && g.commands.iter().any(|c| c.path == path)
                })
                .map(|(g, _)| g.id().to_string()),
        }),
    }
}

/// Why this grant cannot be used now, if it cannot: the write-back's second look. The
/// use was spent when the edit began, so uses are not counted again.
pub fn unusable(grant: &Grant, terms: &Terms<'_>) -> Option<String> {
    admission::check(grant, terms, Window::Now)
        .err()
        .map(|refusal| refusal.reason())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::{format_time, keys::SecretKey, Claims};
    use crate::store::Revocations;
    use admission::RevocationList;
    use std::time::Duration;

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
            exec: false,
            record: false,
            ticket: None,
            extends: None,
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

    fn list(ids: &[&str]) -> RevocationList {
        RevocationList::from_verified(&Revocations {
            issued_at: NOW,
            ids: ids.iter().map(|s| s.to_string()).collect(),
        })
    }

    fn terms(revoked: &RevocationList) -> Terms<'_> {
        Terms {
            host: "web-01",
            user: "alice",
            kind: Some(Kind::Edit),
            revoked,
            now: NOW,
            skew: Duration::ZERO,
        }
    }

    #[test]
    fn the_grant_naming_the_file_is_chosen() {
        let none = list(&[]);
        let grants = vec![
            (grant(Kind::Edit, &["/etc/hosts"], |_| {}), 0),
            (
                grant(Kind::Edit, &["/etc/a", "/etc/nginx/nginx.conf"], |_| {}),
                0,
            ),
        ];
        assert_eq!(
            choose(&grants, &terms(&none), "/etc/nginx/nginx.conf"),
            Ok(1)
        );
        assert_eq!(choose(&grants, &terms(&none), "/etc/hosts"), Ok(0));
        assert_eq!(
            choose(&grants, &terms(&none), "/etc/shadow"),
            Err(NoGrant::NotNamed { exec_grant: None })
        );
    }

    #[test]
    fn an_exec_grant_for_the_path_does_not_allow_editing() {
        let none = list(&[]);
        let grants = vec![(
            grant(Kind::Exec, &["/etc/hosts"], |c| c.jti = "x1".into()),
            0,
        )];
        assert_eq!(
            choose(&grants, &terms(&none), "/etc/hosts"),
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
        let none = list(&[]);
        for (g, used, needle) in cases {
            let err = choose(&[(g, used)], &terms(&none), "/etc/hosts").unwrap_err();
            assert!(err.log_text().contains(needle), "{err:?} vs {needle}");
        }
        let g = grant(Kind::Edit, &["/etc/hosts"], |_| {});
        let revoked = list(&[g.id()]);
        let err = choose(&[(g, 0)], &terms(&revoked), "/etc/hosts").unwrap_err();
        assert_eq!(err.log_text(), "grant has been revoked");
    }

    #[test]
    fn unlimited_before_counted_then_soonest_to_expire() {
        let none = list(&[]);
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
        assert_eq!(choose(&grants, &terms(&none), "/etc/hosts"), Ok(2));
    }
}
