//! Checks every grant-using path on this host shares (the setuid binary's run, list and
//! import modes, and the PAM module): the clock, the revocation list, and verifying
//! the cached tokens of one user.
#![forbid(unsafe_code)]

use std::collections::HashSet;

use crate::config::HostConfig;
use crate::grant::{self, format_time, human_duration, Grant, Rejection};
use crate::store::{Store, StoreError, UserCache};
use crate::system::Uid;

/// The current time, unless the clock has gone back more than `clock_skew` behind the
/// highest time this host has seen (which would revive expired grants).
pub fn checked_now(store: &Store, config: &HostConfig) -> Result<i64, String> {
    let now = grant::now();
    let mark = store.clock_mark().map_err(|e| e.to_string())?;
    if let Some(mark) = mark {
        let skew = config.clock_skew.as_secs() as i64;
        if now + skew < mark {
            return Err(format!(
                "the system clock ({}) is {} behind the latest time this host has seen ({}); \
                 refusing to trust grant times until the clock is fixed",
                format_time(now),
                human_duration((mark - now) as u64),
                format_time(mark)
            ));
        }
    }
    // Failing to advance the mark only weakens the next check; do not refuse for it.
    let _ = store.advance_clock(now, mark);
    Ok(now)
}

/// Revoked grant ids; with `revocation_max_age` set, refuse when the list is missing or
/// older than that.
pub fn revoked_ids(
    store: &Store,
    config: &HostConfig,
    now: i64,
) -> Result<HashSet<String>, String> {
    let list = store.revocations().map_err(|e| e.to_string())?;
    if let Some(max_age) = config.revocation_max_age {
        match &list {
            None => {
                return Err(
                    "no revocation list on this host yet and revocation_max_age is set; \
                            run jitsudo --sync (as root) or ask an admin"
                        .into(),
                )
            }
            Some(l) if now - l.issued_at > max_age.as_secs() as i64 => {
                return Err(format!(
                    "the revocation list is {} old, older than revocation_max_age ({}); \
                     run jitsudo --sync (as root) or ask an admin",
                    human_duration((now - l.issued_at).max(0) as u64),
                    human_duration(max_age.as_secs())
                ))
            }
            Some(_) => {}
        }
    }
    Ok(list
        .map(|l| l.ids.into_iter().collect())
        .unwrap_or_default())
}

/// Verify every cached token of a user. Returns the good ones with their use counters,
/// and why the others were rejected.
pub fn verified_grants(
    cache: &UserCache,
    config: &HostConfig,
) -> (Vec<(Grant, u32)>, Vec<Rejection>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (entry, token) in cache.tokens() {
        let mark = entry.verified.as_deref();
        match grant::verify_cached(token, &config.trusted_keys, config.max_grant_lifetime, mark) {
            Ok(g) if g.id() == entry.jti => good.push((g, entry.used)),
            Ok(_) => bad.push(Rejection::Malformed(
                "cache entry id does not match its token".into(),
            )),
            Err(e) => bad.push(e),
        }
    }
    (good, bad)
}

/// Cache a verified token in the user's cache, keeping any use counter already recorded
/// for it, and prune what expired. Returns false if the token was already cached.
pub fn cache_grant(
    store: &Store,
    config: &HostConfig,
    uid: Uid,
    grant: &Grant,
    now: i64,
) -> Result<bool, StoreError> {
    let lock = store.lock_user(uid)?;
    let mut cache = store.load_user(uid)?;
    let mark = grant::mark_for(grant, &config.trusted_keys);
    let added = cache.insert(grant.id(), grant.exp, &grant.token, mark);
    cache.prune(now - config.clock_skew.as_secs() as i64);
    store.save_user(uid, &cache, &lock)?;
    Ok(added)
}
