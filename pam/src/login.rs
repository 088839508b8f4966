//! Login grants: what admits a login (pam_jitsudo's account, auth and session phases),
//! and the syslog record a login leaves. The checks are the setuid binary's own, from
//! jitsudo-core: `host::verified_grants` for signature and key, `admission::select` with
//! the kind `login` for binding, window, revocation and use counter, and
//! `admission::spend_use` to count a use.
//!
//! The clock is a parameter everywhere (`now`), so callers decide where time comes from
//! (`host::checked_now` on a real host, a fixed value in tests).
#![forbid(unsafe_code)]

use std::fmt;

use crate::admission::{self, RevocationList, SpendError, Terms, Unchosen};
use crate::config::{HostConfig, LogConfig};
use crate::grant::{Grant, Kind};
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

/// Pick the login grant to use among verified grants (with their use counters):
/// `admission::select` with the kind `login`, as the setuid binary picks an exec grant.
/// Unlimited grants before counted ones, then the soonest to expire; grants of other
/// kinds are not considered at all.
pub fn select_login_grant(
    grants: &[(Grant, u32)],
    config: &HostConfig,
    user: &str,
    revoked: &RevocationList,
    now: i64,
) -> Result<usize, LoginDenial> {
    let terms = Terms::new(config, user, Some(Kind::Login), revoked, now);
    match admission::select(grants, &terms, &mut admission::Login) {
        Ok(chosen) => Ok(chosen.index),
        Err(Unchosen::Unusable { grant, why }) => Err(LoginDenial::Unusable { grant, why }),
        // A login names no run-as user; a grant of no use says nothing.
        Err(Unchosen::OtherRunAs { .. } | Unchosen::NoGrant) => Err(LoginDenial::NoGrant {
            host: config.host.clone(),
        }),
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
    let revoked = RevocationList::for_use(store, config, now)
        .map_err(|e| LoginError::Denied(LoginDenial::Host(e)))?;
    let cache = store.load_user(user.uid)?;
    let (mut grants, _invalid) = host::verified_grants(&cache, config);
    let index = select_login_grant(&grants, config, &user.name, &revoked, now)
        .map_err(LoginError::Denied)?;
    let (grant, used) = grants.swap_remove(index);
    Ok(LoginGrant { grant, used })
}

/// Admit a login: find a usable login grant and spend a use of it
/// (`admission::spend_use`: for a counted grant, under the user's lock, re-reading the
/// counter, as the setuid binary does). `log` is called before the use is counted; if
/// it fails the login is refused and the use is not spent, so an unlogged login never
/// costs a use.
pub fn admit(
    store: &Store,
    config: &HostConfig,
    user: &User,
    now: i64,
    log: impl FnOnce(&Grant) -> Result<(), String>,
) -> Result<LoginGrant, LoginError> {
    let found = usable_login_grant(store, config, user, now)?;
    match admission::spend_use(store, user.uid, &found.grant, || log(&found.grant)) {
        Ok(spent) => Ok(LoginGrant {
            used: spent.used.unwrap_or(found.used),
            grant: found.grant,
        }),
        Err(SpendError::UsedUp(why)) => Err(LoginError::Denied(LoginDenial::Unusable {
            grant: found.grant.id().to_string(),
            why: why.reason(),
        })),
        Err(SpendError::NotLogged(e)) => Err(LoginError::NotLogged(e)),
        Err(SpendError::Store(e) | SpendError::NotRecorded(e)) => Err(e.into()),
    }
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
    use crate::grant;
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
            record: false,
            ticket: None,
            extends: None,
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
        let revoked = RevocationList::from_verified(&crate::store::Revocations {
            issued_at: NOW,
            ids: revoked.iter().map(|s| s.to_string()).collect(),
        });
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

        // Only root could put it in alice's cache; the denial says what it is.
        let other_user = grant(Kind::Login, |c| c.sub = "bob".into());
        let e = select(&[(other_user, 0)], &[], NOW).unwrap_err();
        assert!(e.to_string().contains("for user \"bob\""), "{e}");

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
