//! Login grants: the checks that admit a login (pam_jitsudo's account, auth and session
//! phases), made with the same verification the setuid binary uses — `host::verified_grants`
//! for signature and key, then binding, revocation, time window and use counter — and
//! the syslog record a login leaves.
//!
//! The clock is a parameter everywhere (`now`), so callers decide where time comes from
//! (`host::checked_now` on a real host, a fixed value in tests).
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::fmt;

use crate::config::{HostConfig, LogConfig};
use crate::grant::{self, Grant, Kind};
use crate::host;
use crate::log::{escape, split_line, Severity, SyslogSender, MAX_MESSAGE_BYTES};
use crate::store::{Store, StoreError, UserCache};
use crate::system::{Uid, User};

/// Why no cached grant admits the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginDenial {
    /// No cached grant is a login grant for this user on this host.
    NoGrant { host: String },
    /// A login grant is cached but cannot be used now; `why` says which check failed.
    Unusable { grant: String, why: String },
    /// The host refuses every grant right now (clock gone back, stale revocation list).
    Host(String),
}

impl fmt::Display for LoginDenial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginDenial::NoGrant { host } => write!(f, "no login grant for {host}"),
            LoginDenial::Unusable { grant, why } => write!(f, "{why} (grant {grant})"),
            LoginDenial::Host(why) => f.write_str(why),
        }
    }
}

impl LoginDenial {
    pub fn grant(&self) -> Option<&str> {
        match self {
            LoginDenial::Unusable { grant, .. } => Some(grant),
            _ => None,
        }
    }
}

/// A login was refused (`Denied`), could not be decided (`Failed`: unreadable cache,
/// store I/O), or was allowed but its line could not be logged while `[log] require`
/// is set (`NotLogged`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginError {
    Denied(LoginDenial),
    Failed(String),
    NotLogged(String),
}

impl fmt::Display for LoginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginError::Denied(d) => d.fmt(f),
            LoginError::Failed(e) => f.write_str(e),
            LoginError::NotLogged(e) => {
                write!(f, "cannot log the login ({e}) and [log] require is set")
            }
        }
    }
}

impl From<StoreError> for LoginError {
    fn from(e: StoreError) -> Self {
        LoginError::Failed(e.to_string())
    }
}

fn uses_spent(limit: u32) -> String {
    if limit == 1 {
        "one-time grant has already been used".to_string()
    } else {
        format!("all {limit} uses of the grant are used up")
    }
}

/// Pick the login grant to use among verified grants (with their use counters), as
/// `decision::decide` picks an exec grant: unlimited grants before counted ones, then
/// the soonest to expire. Exec grants are not considered at all.
pub fn select_login_grant(
    grants: &[(Grant, u32)],
    config: &HostConfig,
    user: &str,
    revoked: &HashSet<String>,
    now: i64,
) -> Result<usize, LoginDenial> {
    let mut best: Option<(usize, (bool, i64))> = None;
    let mut unusable: Option<LoginDenial> = None;
    for (index, (g, used)) in grants.iter().enumerate() {
        if g.claims.kind != Kind::Login {
            continue;
        }
        let problem = if let Err(e) = g.check_binding(&config.host, user) {
            Some(e.to_string())
        } else if revoked.contains(g.id()) {
            Some("grant has been revoked".to_string())
        } else if let Err(e) = g.check_window(now, config.clock_skew) {
            Some(e.to_string())
        } else {
            g.claims.uses.filter(|limit| used >= limit).map(uses_spent)
        };
        if let Some(why) = problem {
            // A grant for someone else says nothing useful to this user.
            if g.claims.sub == user {
                unusable.get_or_insert(LoginDenial::Unusable {
                    grant: g.id().to_string(),
                    why,
                });
            }
            continue;
        }
        let rank = (g.claims.uses.is_some(), g.exp);
        let better = match &best {
            None => true,
            Some((_, r)) => rank < *r,
        };
        if better {
            best = Some((index, rank));
        }
    }
    match best {
        Some((index, _)) => Ok(index),
        None => Err(unusable.unwrap_or_else(|| LoginDenial::NoGrant {
            host: config.host.clone(),
        })),
    }
}

/// A usable login grant and the uses counted for it so far.
#[derive(Clone, Debug)]
pub struct LoginGrant {
    pub grant: Grant,
    pub used: u32,
}

/// The user's usable login grant, if any, without counting a use.
pub fn usable_login_grant(
    store: &Store,
    config: &HostConfig,
    user: &User,
    now: i64,
) -> Result<LoginGrant, LoginError> {
    let revoked = host::revoked_ids(store, config, now)
        .map_err(|e| LoginError::Denied(LoginDenial::Host(e)))?;
    let cache = store.load_user(user.uid)?;
    let (mut grants, _invalid) = host::verified_grants(&cache, config);
    let index = select_login_grant(&grants, config, &user.name, &revoked, now)
        .map_err(LoginError::Denied)?;
    let (grant, used) = grants.swap_remove(index);
    Ok(LoginGrant { grant, used })
}

/// Admit a login: find a usable login grant and, for a counted grant, count one use
/// under the user's lock (re-reading the counter, as the setuid binary does). `log`
/// is called before the use is counted; if it fails the login is refused and the use
/// is not spent, so an unlogged login never costs a use.
pub fn admit(
    store: &Store,
    config: &HostConfig,
    user: &User,
    now: i64,
    log: impl FnOnce(&Grant) -> Result<(), String>,
) -> Result<LoginGrant, LoginError> {
    let found = usable_login_grant(store, config, user, now)?;
    let Some(limit) = found.grant.claims.uses else {
        log(&found.grant).map_err(LoginError::NotLogged)?;
        return Ok(found);
    };
    let lock = store.lock_user(user.uid)?;
    let mut cache = store.load_user(user.uid)?;
    let used = cache.used(found.grant.id());
    if used >= limit {
        return Err(LoginError::Denied(LoginDenial::Unusable {
            grant: found.grant.id().to_string(),
            why: uses_spent(limit),
        }));
    }
    log(&found.grant).map_err(LoginError::NotLogged)?;
    cache.count_use(found.grant.id(), found.grant.exp);
    store.save_user(user.uid, &cache, &lock)?;
    Ok(LoginGrant {
        grant: found.grant,
        used: used + 1,
    })
}

/// The checks `jitsudo --import` makes before caching a token: format, key and
/// signature, lifetime, this host, this user, not expired, not revoked. A grant that
/// is not valid yet is accepted (it is cached for later), as import accepts it.
pub fn verify_for_import(
    config: &HostConfig,
    user: &str,
    token: &str,
    now: i64,
    revoked: &HashSet<String>,
) -> Result<Grant, String> {
    let grant = grant::verify(token, &config.trusted_keys, config.max_grant_lifetime)
        .and_then(|g| g.check_binding(&config.host, user).map(|_| g))
        .and_then(|g| g.check_not_expired(now, config.clock_skew).map(|_| g))
        .map_err(|e| e.to_string())?;
    if revoked.contains(grant.id()) {
        return Err(format!("grant {} has been revoked", grant.id()));
    }
    Ok(grant)
}

// Caching is shared with the setuid binary's --request and --sync.
pub use crate::host::cache_grant;

/// Ids of the cached tokens that verify and carry `session_bound`.
pub fn session_bound_ids(cache: &UserCache, config: &HostConfig) -> Vec<String> {
    let (grants, _) = host::verified_grants(cache, config);
    grants
        .into_iter()
        .filter(|(g, _)| g.claims.session_bound)
        .map(|(g, _)| g.id().to_string())
        .collect()
}

/// End the user's session-bound grants: drop their tokens from the cache. Their use
/// counters stay as tombstones until they expire, so a re-import cannot reset them.
/// Returns the ids dropped.
pub fn drop_session_bound(
    store: &Store,
    config: &HostConfig,
    uid: Uid,
) -> Result<Vec<String>, StoreError> {
    if session_bound_ids(&store.load_user(uid)?, config).is_empty() {
        return Ok(Vec::new());
    }
    let lock = store.lock_user(uid)?;
    let mut cache = store.load_user(uid)?;
    let ids = session_bound_ids(&cache, config);
    for entry in &mut cache.entries {
        if ids.contains(&entry.jti) {
            entry.token = None;
        }
    }
    store.save_user(uid, &cache, &lock)?;
    Ok(ids)
}

// ---- the audit record ----------------------------------------------------------------

/// What happened to a login, as the line says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginEvent {
    /// Account check passed under a grant.
    Allowed,
    /// Account check passed because the user is in the exempt group.
    Exempt(String),
    /// Would have been denied, allowed because the module runs with `audit_only`.
    AuditOnly(String),
    Denied(String),
    /// A pasted token was verified and cached.
    Imported,
    /// A pasted token was refused.
    TokenRefused(String),
    SessionOpened,
    SessionClosed,
    /// A session-bound grant was dropped when the session closed.
    SessionBoundDropped,
    /// Something failed before a decision could be made (config, arguments, store).
    Error(String),
    /// Extra detail with the module's `debug` option.
    Debug(String),
}

/// One line about a login: who, what happened, and from where.
#[derive(Clone, Debug)]
pub struct LoginRecord {
    pub user: String,
    pub event: LoginEvent,
    /// The PAM service (sshd, login, …).
    pub service: String,
    pub rhost: String,
    pub tty: String,
    pub grant: Option<String>,
}

impl LoginRecord {
    pub fn severity(&self) -> Severity {
        match self.event {
            LoginEvent::Denied(_) | LoginEvent::TokenRefused(_) | LoginEvent::Error(_) => {
                Severity::Alert
            }
            LoginEvent::AuditOnly(_) => Severity::Err,
            LoginEvent::Debug(_) => Severity::Info,
            _ => Severity::Notice,
        }
    }

    /// `alice : login denied: no login grant for web-01 ; SERVICE=sshd ; RHOST=10.0.0.5 ; TTY=ssh`,
    /// every field escaped.
    pub fn line(&self) -> String {
        let what = match &self.event {
            LoginEvent::Allowed => "login allowed".to_string(),
            LoginEvent::Exempt(group) => format!(
                "login allowed: member of exempt group {}",
                escape(group.as_bytes())
            ),
            LoginEvent::AuditOnly(why) => format!(
                "login would be denied (audit_only): {}",
                escape(why.as_bytes())
            ),
            LoginEvent::Denied(why) => format!("login denied: {}", escape(why.as_bytes())),
            LoginEvent::Imported => "login grant imported".to_string(),
            LoginEvent::TokenRefused(why) => {
                format!("login grant refused: {}", escape(why.as_bytes()))
            }
            LoginEvent::SessionOpened => "session opened".to_string(),
            LoginEvent::SessionClosed => "session closed".to_string(),
            LoginEvent::SessionBoundDropped => "session-bound grant dropped".to_string(),
            LoginEvent::Error(why) => format!("error: {}", escape(why.as_bytes())),
            LoginEvent::Debug(what) => format!("debug: {}", escape(what.as_bytes())),
        };
        let mut out = format!(
            "{} : {what} ; SERVICE={} ; RHOST={} ; TTY={}",
            escape(self.user.as_bytes()),
            escape(self.service.as_bytes()),
            escape(self.rhost.as_bytes()),
            escape(self.tty.as_bytes())
        );
        if let Some(grant) = &self.grant {
            out.push_str(&format!(" ; GRANT={}", escape(grant.as_bytes())));
        }
        out
    }

    pub fn messages(&self) -> Vec<String> {
        split_line(
            &self.line(),
            &escape(self.user.as_bytes()),
            MAX_MESSAGE_BYTES,
        )
    }
}

/// The syslog channel for login records, with the config's `[log] require` rule.
pub struct LoginAudit {
    sender: Result<SyslogSender, String>,
    require: bool,
}

impl LoginAudit {
    pub fn connect(config: &LogConfig) -> LoginAudit {
        let sender = SyslogSender::connect(&config.syslog_socket, config.facility, "jitsudo")
            .map_err(|e| format!("{}: {e}", config.syslog_socket.display()));
        LoginAudit {
            sender,
            require: config.require,
        }
    }

    /// Whether a login may go ahead when its line could not be logged.
    pub fn required(&self) -> bool {
        self.require
    }

    pub fn send(&self, record: &LoginRecord) -> Result<(), String> {
        let sender = self.sender.as_ref().map_err(|e| e.clone())?;
        for message in record.messages() {
            sender
                .send(record.severity(), &message)
                .map_err(|e| format!("{}: {e}", sender.path().display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrustedKey;
    use crate::grant::keys::SecretKey;
    use crate::grant::{format_time, sign, Claims};
    use std::path::Path;
    use std::time::Duration;

    const NOW: i64 = 1_800_000_000;

    fn config() -> HostConfig {
        crate::config::parse(
            Path::new("/etc/jitsudo/jitsudo.toml"),
            "host = \"web-01\"\n",
        )
        .unwrap()
    }

    fn grant(kind: Kind, edit: impl FnOnce(&mut Claims)) -> Grant {
        let key = SecretKey::generate("k").unwrap();
        let mut c = Claims {
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
        };
        edit(&mut c);
        let trusted = [TrustedKey {
            id: "k".into(),
            key: key.public.clone(),
        }];
        grant::verify(
            &sign(&c, &key).unwrap(),
            &trusted,
            Duration::from_secs(86400),
        )
        .unwrap()
    }

    fn select(grants: &[(Grant, u32)], revoked: &[&str], now: i64) -> Result<usize, LoginDenial> {
        let revoked = revoked.iter().map(|s| s.to_string()).collect();
        select_login_grant(grants, &config(), "alice", &revoked, now)
    }

    #[test]
    fn exec_grants_never_admit_a_login() {
        let g = grant(Kind::Exec, |_| {});
        assert_eq!(
            select(&[(g, 0)], &[], NOW),
            Err(LoginDenial::NoGrant {
                host: "web-01".into()
            })
        );
    }

    #[test]
    fn login_grant_admits_and_says_why_not() {
        let ok = grant(Kind::Login, |_| {});
        assert_eq!(select(&[(ok.clone(), 0)], &[], NOW), Ok(0));

        let expired = grant(Kind::Login, |c| {
            c.nbf = format_time(NOW - 7200);
            c.exp = format_time(NOW - 600);
        });
        let e = select(&[(expired, 0)], &[], NOW).unwrap_err();
        assert!(e.to_string().contains("expired"), "{e}");

        let e = select(&[(ok.clone(), 0)], &[ok.id()], NOW).unwrap_err();
        assert!(e.to_string().contains("revoked"), "{e}");

        let other_host = grant(Kind::Login, |c| c.host = "db-01".into());
        let e = select(&[(other_host, 0)], &[], NOW).unwrap_err();
        assert!(e.to_string().contains("db-01"), "{e}");

        let other_user = grant(Kind::Login, |c| c.sub = "bob".into());
        assert!(matches!(
            select(&[(other_user, 0)], &[], NOW),
            Err(LoginDenial::NoGrant { .. })
        ));

        let once = grant(Kind::Login, |c| c.uses = Some(1));
        assert_eq!(select(&[(once.clone(), 0)], &[], NOW), Ok(0));
        let e = select(&[(once, 1)], &[], NOW).unwrap_err();
        assert!(e.to_string().contains("one-time"), "{e}");

        let later = grant(Kind::Login, |c| c.nbf = format_time(NOW + 600));
        let e = select(&[(later, 0)], &[], NOW).unwrap_err();
        assert!(e.to_string().contains("not yet valid"), "{e}");
    }

    #[test]
    fn unlimited_preferred_over_counted() {
        let counted = grant(Kind::Login, |c| c.uses = Some(3));
        let unlimited = grant(Kind::Login, |c| c.exp = format_time(NOW + 7200));
        assert_eq!(select(&[(counted, 0), (unlimited, 0)], &[], NOW), Ok(1));
    }

    #[test]
    fn import_checks_binding_and_revocation() {
        let key = SecretKey::generate("k").unwrap();
        let mut cfg = config();
        cfg.trusted_keys.push(TrustedKey {
            id: "k".into(),
            key: key.public.clone(),
        });
        let g = grant(Kind::Login, |_| {});
        // Signed by a key this config does not trust.
        let e = verify_for_import(&cfg, "alice", &g.token, NOW, &HashSet::new()).unwrap_err();
        assert!(e.contains("signature") || e.contains("key"), "{e}");
        let mut c = g.claims.clone();
        c.jti = "abc".into();
        let token = sign(&c, &key).unwrap();
        assert!(verify_for_import(&cfg, "alice", &token, NOW, &HashSet::new()).is_ok());
        let e = verify_for_import(&cfg, "bob", &token, NOW, &HashSet::new()).unwrap_err();
        assert!(e.contains("for user"), "{e}");
        let e =
            verify_for_import(&cfg, "alice", &token, NOW, &["abc".to_string()].into()).unwrap_err();
        assert!(e.contains("revoked"), "{e}");
        let e = verify_for_import(&cfg, "alice", "garbage", NOW, &HashSet::new()).unwrap_err();
        assert!(e.starts_with("malformed grant"), "{e}");
    }

    #[test]
    fn record_line_escapes_and_names_fields() {
        let r = LoginRecord {
            user: "alice".into(),
            event: LoginEvent::Denied("no login grant for web-01".into()),
            service: "sshd".into(),
            rhost: "evil\nhost".into(),
            tty: "ssh".into(),
            grant: None,
        };
        assert_eq!(
            r.line(),
            "alice : login denied: no login grant for web-01 ; SERVICE=sshd ; RHOST=evil#012host ; TTY=ssh"
        );
        assert_eq!(r.severity(), Severity::Alert);
        let r = LoginRecord {
            event: LoginEvent::SessionOpened,
            grant: Some("3f6c".into()),
            ..r
        };
        assert!(r.line().ends_with("TTY=ssh ; GRANT=3f6c"), "{}", r.line());
        assert_eq!(r.severity(), Severity::Notice);
    }
}
