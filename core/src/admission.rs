//! Whether a grant counts, decided in one place for every path on the host.
//!
//! - [`admit`] takes a token into a user's cache: `jitsudo --import`, `--request` and
//!   `--sync`, and pam_jitsudo's auth phase. Verify (format, key, signature, claims,
//!   lifetime), then bind (this host, this user, the kind the path uses), then the
//!   window (not expired; a grant that starts later is cached for later), then
//!   revocation.
//! - [`select`] picks the cached grant a use goes ahead under — a command for `exec`, a
//!   login for `login` — with the same checks, the window taken now, and the use
//!   counter.
//! - [`spend_use`] counts one use of a counted grant under the user's lock, after the
//!   use is logged.
//!
//! The revocation list is a [`RevocationList`], which exists only as read from the
//! store (refusing anything but a missing file) or as just verified by `--sync`: there
//! is no empty default for a caller to fall back on when the list is broken.
//!
//! What one kind of grant adds to selection (for `exec`: the command, the run-as user
//! and the pin) is the caller's [`Request`]. The kind itself is a parameter, so a new
//! kind is an arm of `grant::Kind` and a `Request` of its own, not another copy of these
//! checks.
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use crate::config::HostConfig;
use crate::grant::{self, human_duration, Grant, Kind, Rejection};
use crate::store::{Revocations, Store, StoreError, UserLock};
use crate::system::Uid;

// ---- the revocation list ----------------------------------------------------------------

/// The revoked grant ids this host knows of.
#[derive(Clone, Debug)]
pub struct RevocationList {
    ids: HashSet<String>,
    /// When the service issued the list; `None` on a host that has never synced.
    issued_at: Option<i64>,
}

impl RevocationList {
    /// The list as `jitsudo --sync` last stored it. A missing file is a host that has
    /// not synced yet, and nothing is revoked (hosts that must have a list set
    /// `revocation_max_age`; see [`RevocationList::check_fresh`]). Any other trouble —
    /// unreadable, not the JSON `--sync` writes, not a root-owned regular file in the
    /// root-only state directory — is an error naming the file and the reason: a list
    /// that cannot be read cannot say a grant is not revoked.
    pub fn load(store: &Store) -> Result<RevocationList, String> {
        Ok(match store.revocations().map_err(|e| e.to_string())? {
            Some(list) => RevocationList::from_verified(&list),
            None => RevocationList {
                ids: HashSet::new(),
                issued_at: None,
            },
        })
    }

    /// The list a use is checked against: [`RevocationList::load`], then
    /// [`RevocationList::check_fresh`].
    pub fn for_use(store: &Store, config: &HostConfig, now: i64) -> Result<RevocationList, String> {
        let list = RevocationList::load(store)?;
        list.check_fresh(config, now)?;
        Ok(list)
    }

    /// A list whose signature has been checked (`--sync`, just before it stores it), or
    /// one read back from the root-only store.
    pub fn from_verified(list: &Revocations) -> RevocationList {
        RevocationList {
            ids: list.ids.iter().cloned().collect(),
            issued_at: Some(list.issued_at),
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// With `revocation_max_age` set, refuse a host with no list or with one older than
    /// that. Checked at every use, not when a grant is cached: a grant imported while
    /// the list is stale is refused when it is used, until `--sync` runs.
    pub fn check_fresh(&self, config: &HostConfig, now: i64) -> Result<(), String> {
        let Some(max_age) = config.revocation_max_age else {
            return Ok(());
        };
        match self.issued_at {
            None => Err(
                "no revocation list on this host yet and revocation_max_age is set; \
                 run jitsudo --sync (as root) or ask an admin"
                    .into(),
            ),
            Some(issued) if now - issued > max_age.as_secs() as i64 => Err(format!(
                "the revocation list is {} old, older than revocation_max_age ({}); \
                 run jitsudo --sync (as root) or ask an admin",
                human_duration((now - issued).max(0) as u64),
                human_duration(max_age.as_secs())
            )),
            Some(_) => Ok(()),
        }
    }
}

// ---- the checks -------------------------------------------------------------------------

/// What a grant is checked against.
#[derive(Clone, Copy, Debug)]
pub struct Terms<'a> {
    /// This host's id, as grants name it.
    pub host: &'a str,
    /// The user the grant must be for.
    pub user: &'a str,
    /// The kind of grant the path uses; `None` where every kind is cached (`--import`,
    /// `--sync`, `--list`).
    pub kind: Option<Kind>,
    pub revoked: &'a RevocationList,
    pub now: i64,
    pub skew: Duration,
}

impl<'a> Terms<'a> {
    pub fn new(
        config: &'a HostConfig,
        user: &'a str,
        kind: Option<Kind>,
        revoked: &'a RevocationList,
        now: i64,
    ) -> Terms<'a> {
        Terms {
            host: &config.host,
            user,
            kind,
            revoked,
            now,
            skew: config.clock_skew,
        }
    }
}

/// Which part of the validity window a check needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// Caching and listing: not expired. A grant that starts later is kept for later.
    NotExpired,
    /// A use: inside [nbf - skew, exp + skew).
    Now,
}

/// Why a grant does not count. Each message says which check failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Format, key, signature, claims or lifetime; host or user; the window.
    Grant(Rejection),
    /// A grant of another kind than the path uses.
    WrongKind {
        grant: String,
        kind: Kind,
        wanted: Kind,
    },
    Revoked {
        grant: String,
    },
    /// Every use of a counted grant is spent.
    UsedUp {
        limit: u32,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Revoked { grant } => write!(f, "grant {grant} has been revoked"),
            other => f.write_str(&other.reason()),
        }
    }
}

impl Refusal {
    /// The reason without the grant's id, for lines that name the grant beside it
    /// (`… (grant 3f6c…)`, `GRANT=3f6c…`).
    pub fn reason(&self) -> String {
        match self {
            Refusal::Grant(r) => r.to_string(),
            Refusal::WrongKind { kind, wanted, .. } => format!(
                "grant is {} grant, not {} grant",
                with_article(*kind),
                with_article(*wanted)
            ),
            Refusal::Revoked { .. } => "grant has been revoked".to_string(),
            Refusal::UsedUp { limit: 1 } => "one-time grant has already been used".to_string(),
            Refusal::UsedUp { limit } => format!("all {limit} uses of the grant are used up"),
        }
    }
}

/// "an exec", "a login".
pub fn with_article(kind: Kind) -> String {
    let name = kind.to_string();
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

/// The checks every path makes of a verified grant, in this order: bound to this host
/// and this user, of the kind wanted, inside the window, not revoked.
pub fn check(grant: &Grant, terms: &Terms<'_>, window: Window) -> Result<(), Refusal> {
    grant
        .check_binding(terms.host, terms.user)
        .map_err(Refusal::Grant)?;
    if let Some(wanted) = terms.kind {
        if grant.claims.kind != wanted {
            return Err(Refusal::WrongKind {
                grant: grant.id().to_string(),
                kind: grant.claims.kind,
                wanted,
            });
        }
    }
    match window {
        Window::NotExpired => grant.check_not_expired(terms.now, terms.skew),
        Window::Now => grant.check_window(terms.now, terms.skew),
    }
    .map_err(Refusal::Grant)?;
    if terms.revoked.contains(grant.id()) {
        return Err(Refusal::Revoked {
            grant: grant.id().to_string(),
        });
    }
    Ok(())
}

/// [`check`], and for a counted grant that a use is left (`used` counted so far).
pub fn check_use(
    grant: &Grant,
    used: u32,
    terms: &Terms<'_>,
    window: Window,
) -> Result<(), Refusal> {
    check(grant, terms, window)?;
    match grant.claims.uses {
        Some(limit) if used >= limit => Err(Refusal::UsedUp { limit }),
        _ => Ok(()),
    }
}

/// Admit a token into a user's cache: verify it against the pinned keys, then
/// [`check`] it with the window [`Window::NotExpired`]. The one admission of
/// `--import`, `--request`, `--sync` and pam_jitsudo's auth phase.
pub fn admit(config: &HostConfig, token: &str, terms: &Terms<'_>) -> Result<Grant, Refusal> {
    let grant = grant::verify(token, &config.trusted_keys, config.max_grant_lifetime)
        .map_err(Refusal::Grant)?;
    check(&grant, terms, Window::NotExpired)?;
    Ok(grant)
}

// ---- selection --------------------------------------------------------------------------

/// What a grant says about what was asked, before the shared checks.
#[derive(Debug, PartialEq, Eq)]
pub enum Names<T> {
    /// Nothing: the grant is not about this.
    No,
    /// What was asked, but only as another run-as user.
    OtherRunAs(String),
    /// What was asked; `T` is what the kind needs to confirm and use it.
    Yes(T),
}

/// What one kind of grant adds to selection.
pub trait Request {
    /// What [`Request::names`] found in a grant (exec: the matching paths and pins).
    type Found;
    /// What the use needs of the chosen grant (exec: the path, and whether it is pinned).
    type Chosen;

    /// Does this grant (of the kind selected) name what was asked?
    fn names(&mut self, grant: &Grant) -> Names<Self::Found>;

    /// The kind's last check, made only once the shared checks passed (exec: the pin,
    /// which reads the file). `Err` says why the grant cannot be used.
    fn confirm(&mut self, grant: &Grant, found: Self::Found) -> Result<Self::Chosen, String>;
}

/// A login names nothing beyond the grant itself.
pub struct Login;

impl Request for Login {
    type Found = ();
    type Chosen = ();

    fn names(&mut self, _grant: &Grant) -> Names<()> {
        Names::Yes(())
    }

    fn confirm(&mut self, _grant: &Grant, _found: ()) -> Result<(), String> {
        Ok(())
    }
}

/// An edit (`jitsudo -e`) names one file: an edit grant lists it, exactly.
pub struct EditFile<'a>(pub &'a str);

impl Request for EditFile<'_> {
    type Found = ();
    type Chosen = ();

    fn names(&mut self, grant: &Grant) -> Names<()> {
        if grant.commands.iter().any(|c| c.path == self.0) {
            Names::Yes(())
        } else {
            Names::No
        }
    }

    fn confirm(&mut self, _grant: &Grant, _found: ()) -> Result<(), String> {
        Ok(())
    }
}

/// The grant [`select`] chose: its index in the grants given, and what the kind needs.
#[derive(Debug, PartialEq, Eq)]
pub struct Chosen<T> {
    pub index: usize,
    pub chosen: T,
}

/// Why no grant was chosen, most useful reason first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unchosen {
    /// A grant names what was asked but cannot be used now.
    Unusable { grant: String, why: String },
    /// A grant names what was asked, but only as another run-as user.
    OtherRunAs { grant: String, run_as: String },
    /// No grant of this kind names what was asked.
    NoGrant,
}

/// Pick the grant a use goes ahead under, among verified grants with their use
/// counters. Only grants of `terms.kind` are considered (all of them if `None`).
/// Unlimited grants are preferred over counted ones (no need to burn a one-time grant
/// when a window covers the use), then the soonest to expire.
pub fn select<R: Request>(
    grants: &[(Grant, u32)],
    terms: &Terms<'_>,
    request: &mut R,
) -> Result<Chosen<R::Chosen>, Unchosen> {
    // (counted, exp): the lowest wins.
    type Rank = (bool, i64);
    let mut best: Option<(Chosen<R::Chosen>, Rank)> = None;
    let mut unusable: Option<Unchosen> = None;
    let mut other_run_as: Option<Unchosen> = None;
    for (index, (g, used)) in grants.iter().enumerate() {
        if terms.kind.is_some_and(|kind| g.claims.kind != kind) {
            continue;
        }
        let found = match request.names(g) {
            Names::No => continue,
            Names::OtherRunAs(run_as) => {
                other_run_as.get_or_insert(Unchosen::OtherRunAs {
                    grant: g.id().to_string(),
                    run_as,
                });
                continue;
            }
            Names::Yes(found) => found,
        };
        let checked = check_use(g, *used, terms, Window::Now)
            .map_err(|e| e.reason())
            .and_then(|()| request.confirm(g, found));
        let chosen = match checked {
            Ok(chosen) => chosen,
            Err(why) => {
                unusable.get_or_insert(Unchosen::Unusable {
                    grant: g.id().to_string(),
                    why,
                });
                continue;
            }
        };
        let rank = (g.claims.uses.is_some(), g.exp);
        if best.as_ref().is_none_or(|(_, r)| rank < *r) {
            best = Some((Chosen { index, chosen }, rank));
        }
    }
    match best {
        Some((chosen, _)) => Ok(chosen),
        None => Err(unusable.or(other_run_as).unwrap_or(Unchosen::NoGrant)),
    }
}

// ---- an extension's successor ------------------------------------------------------------

/// What a running command was started with, for [`successor`].
#[derive(Clone, Copy, Debug)]
pub struct Running<'a> {
    /// The grant the command runs under now.
    pub grant: &'a str,
    pub run_as: &'a str,
    pub path: &'a str,
    pub args: &'a [std::ffi::OsString],
    /// The command was executed from a pinned file; no successor can vouch for it.
    pub pinned: bool,
    /// No exec filter is installed (the grant allowed exec); a successor must allow it too.
    pub allow_exec: bool,
    /// The run is being recorded; a successor that wants a recording needs one.
    pub recording: bool,
}

/// The cached grant a running command may continue under when its grant is revoked or
/// ends: one that names the running grant in `extends`, passes every check a new use
/// would (host, user, exec kind, the window now, not revoked, a use left), is for the
/// same run-as user, allows exactly this command unpinned, and asks for nothing the run
/// cannot give (exec allowed where a filter is installed is fine; the reverse is not).
/// The latest-ending such grant, its index in `grants`.
pub fn successor(grants: &[(Grant, u32)], terms: &Terms<'_>, run: &Running<'_>) -> Option<usize> {
    if run.pinned {
        return None;
    }
    let terms = Terms {
        kind: Some(Kind::Exec),
        ..*terms
    };
    grants
        .iter()
        .enumerate()
        .filter(|(_, (g, used))| {
            g.claims.extends.as_deref() == Some(run.grant)
                && g.id() != run.grant
                && g.claims.run_as == run.run_as
                && (!run.allow_exec || g.claims.exec)
                && (run.recording || !g.claims.record)
                && g.commands
                    .iter()
                    .any(|c| c.pin.is_none() && c.allows(run.path, run.args))
                && check_use(g, *used, &terms, Window::Now).is_ok()
        })
        .max_by_key(|(_, (g, _))| g.exp)
        .map(|(i, _)| i)
}

// ---- spending a use ---------------------------------------------------------------------

/// A use that went ahead.
pub struct Spent {
    /// For a counted grant, the user's lock, still held: the setuid binary keeps it
    /// until the command is executed.
    pub lock: Option<UserLock>,
    /// For a counted grant, its uses spent including this one (with several, the last
    /// one's).
    pub used: Option<u32>,
}

impl fmt::Debug for Spent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spent")
            .field("locked", &self.lock.is_some())
            .field("used", &self.used)
            .finish()
    }
}

/// Why a use did not go ahead.
#[derive(Debug)]
pub enum SpendError<E> {
    /// Another use spent the last one since the grant was chosen.
    UsedUp(Refusal),
    /// The user's lock or cache could not be had; nothing was logged or spent.
    Store(StoreError),
    /// `log` failed; nothing was spent.
    NotLogged(E),
    /// The use was logged but could not be recorded.
    NotRecorded(StoreError),
}

/// Spend one use of `grant` for `uid`. An unlimited grant is only logged. For a counted
/// grant: take the user's lock, re-read the counter (another use may have spent the last
/// one since the grant was chosen), log, then durably count the use. `log` runs before
/// the count, so a use that cannot be logged costs nothing.
pub fn spend_use<E>(
    store: &Store,
    uid: Uid,
    grant: &Grant,
    log: impl FnOnce() -> Result<(), E>,
) -> Result<Spent, SpendError<E>> {
    spend_uses(store, uid, &[grant], log)
}

/// [`spend_use`] for one use that goes ahead under several grants at once (`jitsudo -e`
/// of files named by different grants): one use of each counted grant, under one lock,
/// all or none. A grant listed twice is spent once.
pub fn spend_uses<E>(
    store: &Store,
    uid: Uid,
    grants: &[&Grant],
    log: impl FnOnce() -> Result<(), E>,
) -> Result<Spent, SpendError<E>> {
    let mut counted: Vec<(&Grant, u32)> = Vec::new();
    for g in grants {
        if let Some(limit) = g.claims.uses {
            if !counted.iter().any(|(c, _)| c.id() == g.id()) {
                counted.push((g, limit));
            }
        }
    }
    if counted.is_empty() {
        log().map_err(SpendError::NotLogged)?;
        return Ok(Spent {
            lock: None,
            used: None,
        });
    }
    let lock = store.lock_user(uid).map_err(SpendError::Store)?;
    let mut cache = store.load_user(uid).map_err(SpendError::Store)?;
    for (g, limit) in &counted {
        if cache.used(g.id()) >= *limit {
            return Err(SpendError::UsedUp(Refusal::UsedUp { limit: *limit }));
        }
    }
    log().map_err(SpendError::NotLogged)?;
    let mut used = None;
    for (g, _) in &counted {
        used = Some(cache.used(g.id()) + 1);
        cache.count_use(g.id(), g.exp);
    }
    store
        .save_user(uid, &cache, &lock)
        .map_err(SpendError::NotRecorded)?;
    Ok(Spent {
        lock: Some(lock),
        used,
    })
}

#[cfg(test)]
mod tests;
