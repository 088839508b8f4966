//! The module's logic: one function per PAM phase, generic over `PamHandler`, with the
//! host config, the grant store, the clock, the user directory and the audit log passed
//! in (`Env`), so the tests drive every path without libpam, root files or a real clock.
//!
//! The grant checks themselves are `crate::login`, the code the setuid binary's own
//! checks are built from; this file only decides what each phase does with the answer.
#![forbid(unsafe_code)]

use std::fmt;

use crate::login::{self, LoginError, LoginEvent, LoginRecord};
use jitsudo_core::admission::{self, Refusal, RevocationList, Terms};
use jitsudo_core::config::HostConfig;
use jitsudo_core::grant::Kind;
use jitsudo_core::host;
use jitsudo_core::store::Store;
use jitsudo_core::system::User;

use crate::handler::{Item, PamHandler};
use crate::options::Options;

/// What a phase answers; `ffi` maps it to a PAM code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// PAM_SUCCESS
    Success,
    /// PAM_IGNORE: this module has no say (auth with no token pasted, or audit_only).
    Ignore,
    /// PAM_PERM_DENIED
    Denied,
    /// PAM_SERVICE_ERR: bad arguments, missing or bad config, store failures.
    ServiceError,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Success => "success",
            Verdict::Ignore => "ignore",
            Verdict::Denied => "denied",
            Verdict::ServiceError => "service error",
        })
    }
}

/// Users and groups (NSS on a real host).
pub trait Directory {
    fn user(&self, name: &str) -> Result<Option<User>, String>;
    /// Is `user` in `group` (primary or supplementary)? `None` when the group does not exist.
    fn in_group(&self, user: &User, group: &str) -> Result<Option<bool>, String>;
}

/// Where login records go (the syslog socket on a real host).
pub trait AuditLog {
    fn send(&self, record: &LoginRecord) -> Result<(), String>;
    /// `[log] require`: may a login go ahead when its line could not be sent?
    fn required(&self) -> bool;
}

/// The time, checked against the host's clock mark (`host::checked_now` on a real host).
pub type Clock<'a> = &'a dyn Fn(&Store, &HostConfig) -> Result<i64, String>;

/// Everything a phase needs besides the PAM handle.
pub struct Env<'a> {
    /// The host config, or why it could not be used.
    pub config: Result<&'a HostConfig, String>,
    pub store: &'a Store,
    pub clock: Clock<'a>,
    pub directory: &'a dyn Directory,
    pub log: &'a dyn AuditLog,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Auth,
    Account,
    OpenSession,
    CloseSession,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Auth => "auth",
            Phase::Account => "account",
            Phase::OpenSession => "open_session",
            Phase::CloseSession => "close_session",
        })
    }
}

/// The note the account phase leaves for the session phases.
const NOTE_GRANT: &str = "grant:";
const NOTE_EXEMPT: &str = "exempt:";

/// One call into the module: where it came from and what to log.
struct Call<'a> {
    env: &'a Env<'a>,
    phase: Phase,
    options: Options,
    user: String,
    service: String,
    rhost: String,
    tty: String,
}

impl Call<'_> {
    fn record(&self, event: LoginEvent, grant: Option<&str>) -> LoginRecord {
        LoginRecord {
            user: self.user.clone(),
            event,
            service: self.service.clone(),
            rhost: self.rhost.clone(),
            tty: self.tty.clone(),
            grant: grant.map(str::to_string),
        }
    }

    /// Log; a failure to deliver changes nothing (nothing is being allowed).
    fn log(&self, event: LoginEvent, grant: Option<&str>) {
        let _ = self.env.log.send(&self.record(event, grant));
    }

    /// Log a line that lets someone in: with `[log] require`, failing to deliver it
    /// is an error.
    fn log_required(&self, event: LoginEvent, grant: Option<&str>) -> Result<(), String> {
        match self.env.log.send(&self.record(event, grant)) {
            Err(e) if self.env.log.required() => Err(e),
            _ => Ok(()),
        }
    }

    fn debug(&self, text: impl Into<String>) {
        if self.options.debug {
            self.log(
                LoginEvent::Debug(format!("{}: {}", self.phase, text.into())),
                None,
            );
        }
    }

    fn error(&self, why: String) -> Verdict {
        self.log(LoginEvent::Error(format!("{}: {why}", self.phase)), None);
        Verdict::ServiceError
    }

    /// Refuse — or, with `audit_only`, log that we would have and let the stack decide.
    fn deny(&self, h: &mut impl PamHandler, why: &str, grant: Option<&str>) -> Verdict {
        self.deny_telling(h, why, grant, true)
    }

    fn deny_telling(
        &self,
        h: &mut impl PamHandler,
        why: &str,
        grant: Option<&str>,
        tell_user: bool,
    ) -> Verdict {
        if self.options.audit_only {
            self.log(LoginEvent::AuditOnly(why.to_string()), grant);
            return match self.phase {
                Phase::Auth => Verdict::Ignore,
                _ => Verdict::Success,
            };
        }
        self.log(LoginEvent::Denied(why.to_string()), grant);
        if tell_user && !h.silent() {
            h.error_message(&format!("jitsudo: login refused for {}: {why}", self.user));
        }
        Verdict::Denied
    }

    /// The exempt group the user belongs to, if any. A group that does not exist exempts
    /// nobody (logged as an error each time, so the typo gets noticed).
    fn exempt(&self, user: &User) -> Option<String> {
        let group = self.options.exempt_group.as_ref()?;
        match self.env.directory.in_group(user, group) {
            Ok(Some(true)) => Some(group.clone()),
            Ok(Some(false)) => None,
            Ok(None) => {
                self.log(
                    LoginEvent::Error(format!(
                        "exempt_group={group}: no such group; nobody is exempt"
                    )),
                    None,
                );
                None
            }
            Err(e) => {
                self.log(
                    LoginEvent::Error(format!(
                        "exempt_group={group}: cannot look up the group ({e}); nobody is exempt"
                    )),
                    None,
                );
                None
            }
        }
    }
}

/// Common start of every phase: items, arguments, config and the user's name. Each
/// failure is logged and becomes the phase's answer.
fn begin_call<'a>(
    h: &mut impl PamHandler,
    args: &[String],
    env: &'a Env<'a>,
    phase: Phase,
) -> Result<(Call<'a>, &'a HostConfig, String), Verdict> {
    let user = h.user();
    let mut call = Call {
        env,
        phase,
        options: Options::default(),
        user: user.clone().unwrap_or_else(|_| "unknown".to_string()),
        service: item_or_unknown(h, Item::Service),
        rhost: item_or_unknown(h, Item::RHost),
        tty: item_or_unknown(h, Item::Tty),
    };
    call.options = match Options::try_from(args) {
        Ok(o) => o,
        Err(e) => return Err(call.error(format!("bad module arguments: {e}"))),
    };
    let config = match &env.config {
        Ok(c) => *c,
        Err(e) => return Err(call.error(format!("{e}; refusing every login until it is fixed"))),
    };
    match user {
        Ok(name) => Ok((call, config, name)),
        Err(e) => Err(call.error(format!("cannot get the user name: {e}"))),
    }
}

/// `begin_call`, then the account: a name with no account is refused (and the user is
/// not told why, so nothing says which accounts exist).
fn begin<'a>(
    h: &mut impl PamHandler,
    args: &[String],
    env: &'a Env<'a>,
    phase: Phase,
) -> Result<(Call<'a>, &'a HostConfig, User), Verdict> {
    let (call, config, name) = begin_call(h, args, env, phase)?;
    match env.directory.user(&name) {
        Ok(Some(u)) => Ok((call, config, u)),
        Ok(None) => Err(call.deny_telling(h, "unknown user", None, false)),
        Err(e) => Err(call.error(format!("cannot look up user {name:?}: {e}"))),
    }
}

fn item_or_unknown(h: &impl PamHandler, item: Item) -> String {
    h.item(item)
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

// ---- account --------------------------------------------------------------------------

/// pam_sm_acct_mgmt: allow only a user holding a usable login grant for this host (or a
/// member of `exempt_group`). A counted grant spends one use here.
pub fn account(h: &mut impl PamHandler, args: &[String], env: &Env<'_>) -> Verdict {
    let (call, config, user) = match begin(h, args, env, Phase::Account) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let verdict = account_checked(h, &call, config, &user);
    call.debug(format!("answer: {verdict}"));
    verdict
}

fn account_checked(
    h: &mut impl PamHandler,
    call: &Call<'_>,
    config: &HostConfig,
    user: &User,
) -> Verdict {
    let env = call.env;
    if let Some(group) = call.exempt(user) {
        call.log(LoginEvent::Exempt(group.clone()), None);
        if let Err(e) = h.set_note(&format!("{NOTE_EXEMPT}{group}")) {
            call.debug(format!("cannot keep a note for the session: {e}"));
        }
        return Verdict::Success;
    }
    let now = match (env.clock)(env.store, config) {
        Ok(now) => now,
        Err(e) => return call.deny(h, &e, None),
    };
    let admitted = login::admit(env.store, config, user, now, |g| {
        call.log_required(LoginEvent::Allowed, Some(g.id()))
    });
    match admitted {
        Ok(found) => {
            if let Err(e) = h.set_note(&format!("{NOTE_GRANT}{}", found.grant.id())) {
                call.debug(format!("cannot keep a note for the session: {e}"));
            }
            if let Some(limit) = found.grant.claims.uses {
                call.debug(format!(
                    "grant {} used {} of {limit} times",
                    found.grant.id(),
                    found.used
                ));
            }
            Verdict::Success
        }
        Err(LoginError::Denied(d)) => call.deny(h, &d.to_string(), d.grant()),
        Err(LoginError::NotLogged(e)) => call.deny(
            h,
            &format!("cannot log the login ({e}) and [log] require is set"),
            None,
        ),
        Err(LoginError::Failed(e)) => call.error(e),
    }
}

// ---- auth -----------------------------------------------------------------------------

/// pam_sm_authenticate: the proof step, and nothing else. Ask for a grant token through
/// the conversation, verify it as `jitsudo --import` does, cache it, and succeed only if
/// that pasted grant admits the user now. No token pasted is PAM_IGNORE: a cached grant
/// is authorization (the account phase), not proof of who is at the other end, so it
/// never makes this phase succeed.
///
/// Everyone is asked the same way — users with a cached grant, without one, members of
/// `exempt_group`, and names with no account — and every step up to a token that
/// verifies is the same for all of them, so neither the prompt nor the answer to an
/// empty or bad token says whether an account exists, is exempt or holds a grant.
pub fn authenticate(h: &mut impl PamHandler, args: &[String], env: &Env<'_>) -> Verdict {
    let (call, config, name) = match begin_call(h, args, env, Phase::Auth) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let verdict = authenticate_checked(h, &call, config, &name);
    call.debug(format!("answer: {verdict}"));
    verdict
}

fn authenticate_checked(
    h: &mut impl PamHandler,
    call: &Call<'_>,
    config: &HostConfig,
    name: &str,
) -> Verdict {
    let env = call.env;
    if call.options.audit_only {
        // Rolling out: the account phase logs what it would refuse; asking for tokens
        // would change what users see.
        call.debug("audit_only: not asking for a grant token");
        return Verdict::Ignore;
    }
    let token = match h.prompt_secret(&token_prompt(name, config)) {
        Ok(Some(token)) if !token.trim().is_empty() => token,
        Ok(_) => {
            call.debug("no token pasted; this module has no say");
            return Verdict::Ignore;
        }
        Err(e) => return call.error(format!("cannot ask for a grant token: {e}")),
    };
    // Looked up only now, so that nothing before the reply depends on the account.
    let user = match env.directory.user(name) {
        Ok(user) => user,
        Err(e) => return call.error(format!("cannot look up user {name:?}: {e}")),
    };
    let known = user.is_some();
    let now = match (env.clock)(env.store, config) {
        Ok(now) => now,
        Err(e) => return call.deny(h, &e, None),
    };
    // Admitted as `jitsudo --import` admits a token, with the kind `login`. A list that
    // cannot be read refuses (it cannot say the grant is not revoked); one that is only
    // too old does not stop caching, and the check below (as every use) refuses then.
    let revoked = match RevocationList::load(env.store) {
        Ok(revoked) => revoked,
        Err(e) => return call.deny(h, &e, None),
    };
    let terms = Terms::new(config, name, Some(Kind::Login), &revoked, now);
    let admitted = admission::admit(config, &token, &terms);
    drop(token);
    let grant = match admitted {
        Ok(g) => g,
        Err(Refusal::WrongKind { grant, kind, .. }) => {
            let why = format!(
                "this is {} grant; logging in needs a login grant (jitsudoctl mint --kind login)",
                admission::with_article(kind)
            );
            return refuse_token(h, call, &why, Some(&grant), known);
        }
        Err(why) => return refuse_token(h, call, &why.to_string(), None, known),
    };
    let Some(user) = user else {
        // The reason says it already; `known` would only repeat it in the log.
        return refuse_token(h, call, "unknown user", None, true);
    };
    match login::cache_grant(env.store, config, user.uid, &grant, now) {
        Ok(_) => call.log(LoginEvent::Imported, Some(grant.id())),
        Err(e) => return call.error(e.to_string()),
    }
    pasted_grant_admits(h, call, config, &user, grant, &revoked, now)
}

/// Does the grant just pasted admit the user now? Only that grant counts: another one in
/// the cache proves nothing about who answered this conversation.
fn pasted_grant_admits(
    h: &mut impl PamHandler,
    call: &Call<'_>,
    config: &HostConfig,
    user: &User,
    grant: jitsudo_core::grant::Grant,
    revoked: &RevocationList,
    now: i64,
) -> Verdict {
    let env = call.env;
    let id = grant.id().to_string();
    if let Err(why) = revoked.check_fresh(config, now) {
        return call.deny(h, &why, Some(&id));
    }
    let used = match env.store.load_user(user.uid) {
        Ok(cache) => cache.used(&id),
        Err(e) => return call.error(e.to_string()),
    };
    match login::select_login_grant(&[(grant, used)], config, &user.name, revoked, now) {
        Ok(_) => {
            call.debug(format!("grant {id} pasted and verified"));
            Verdict::Success
        }
        Err(d) => call.deny(h, &d.to_string(), Some(&id)),
    }
}

/// Refuse a pasted token. The user is told the same for a name with no account; the
/// log says it (`known` false).
fn refuse_token(
    h: &mut impl PamHandler,
    call: &Call<'_>,
    why: &str,
    grant: Option<&str>,
    known: bool,
) -> Verdict {
    let logged = if known {
        why.to_string()
    } else {
        format!("{why} (unknown user)")
    };
    call.log(LoginEvent::TokenRefused(logged), grant);
    if !h.silent() {
        h.error_message(&format!("jitsudo: grant token refused: {why}"));
    }
    Verdict::Denied
}

fn token_prompt(user: &str, config: &HostConfig) -> String {
    format!(
        "jitsudo login grant for {user} on {} (paste the token): ",
        config.host
    )
}

// ---- session --------------------------------------------------------------------------

/// What the session lines say about how the user got in.
enum Admission {
    Grant(String),
    Exempt(String),
    Unknown,
}

impl Admission {
    fn from_note(note: Option<String>) -> Option<Admission> {
        let note = note?;
        if let Some(id) = note.strip_prefix(NOTE_GRANT) {
            Some(Admission::Grant(id.to_string()))
        } else {
            note.strip_prefix(NOTE_EXEMPT)
                .map(|g| Admission::Exempt(g.to_string()))
        }
    }

    /// The GRANT= field of the session lines.
    fn grant(&self) -> String {
        match self {
            Admission::Grant(id) => id.clone(),
            Admission::Exempt(group) => format!("none (exempt group {group})"),
            Admission::Unknown => "none".to_string(),
        }
    }
}

/// When the account phase ran in another handle (or not at all), find out again, without
/// counting a use.
fn admission(h: &impl PamHandler, call: &Call<'_>, config: &HostConfig, user: &User) -> Admission {
    if let Some(found) = Admission::from_note(h.note()) {
        return found;
    }
    if let Some(group) = call.exempt(user) {
        return Admission::Exempt(group);
    }
    let env = call.env;
    let Ok(now) = (env.clock)(env.store, config) else {
        return Admission::Unknown;
    };
    let Ok(cache) = env.store.load_user(user.uid) else {
        return Admission::Unknown;
    };
    let (grants, _) = host::verified_grants(&cache, config);
    // Checked as a use would be: no list to trust, no grant to name.
    let Ok(revoked) = RevocationList::for_use(env.store, config, now) else {
        return Admission::Unknown;
    };
    // Uses are not counted again: the account phase already spent one.
    let unspent: Vec<_> = grants.into_iter().map(|(g, _)| (g, 0)).collect();
    match login::select_login_grant(&unspent, config, &user.name, &revoked, now) {
        Ok(i) => Admission::Grant(unspent[i].0.id().to_string()),
        Err(_) => Admission::Unknown,
    }
}

/// pam_sm_open_session: log the session with the grant that admitted it.
pub fn open_session(h: &mut impl PamHandler, args: &[String], env: &Env<'_>) -> Verdict {
    let (call, config, user) = match begin(h, args, env, Phase::OpenSession) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let admitted = admission(h, &call, config, &user);
    let event = LoginEvent::SessionOpened;
    let verdict = match (&admitted, call.log_required(event, Some(&admitted.grant()))) {
        (_, Ok(())) => Verdict::Success,
        // Break-glass logins go ahead even when syslog is down.
        (Admission::Exempt(_), Err(_)) => Verdict::Success,
        (_, Err(e)) if call.options.audit_only => {
            call.debug(format!(
                "cannot log the session ({e}); audit_only, allowing"
            ));
            Verdict::Success
        }
        (_, Err(e)) => call.error(format!(
            "cannot log the session ({e}) and [log] require is set"
        )),
    };
    call.debug(format!("answer: {verdict}"));
    verdict
}

/// pam_sm_close_session: log the end of the session, and end the user's session-bound
/// grants (their tokens leave the cache; their use counters stay until they expire).
pub fn close_session(h: &mut impl PamHandler, args: &[String], env: &Env<'_>) -> Verdict {
    let (call, config, user) = match begin(h, args, env, Phase::CloseSession) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let admitted = Admission::from_note(h.note()).unwrap_or(Admission::Unknown);
    call.log(LoginEvent::SessionClosed, Some(&admitted.grant()));
    let verdict = match login::drop_session_bound(env.store, config, user.uid) {
        Ok(ids) => {
            for id in &ids {
                call.log(LoginEvent::SessionBoundDropped, Some(id));
            }
            Verdict::Success
        }
        Err(e) => call.error(format!("cannot drop session-bound grants: {e}")),
    };
    call.debug(format!("answer: {verdict}"));
    verdict
}

/// pam_sm_setcred: there are no credentials to set; succeed so that a stack whose only
/// auth module is this one does not fail at setcred. Arguments are still checked.
pub fn setcred(args: &[String]) -> Verdict {
    match Options::try_from(args) {
        Ok(_) => Verdict::Success,
        Err(_) => Verdict::ServiceError,
    }
}

#[cfg(test)]
mod tests;
