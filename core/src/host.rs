//! What every grant-using path on this host shares (the setuid binary's run, list and
//! import modes, and the PAM module) besides admission (`crate::admission`): the clock,
//! verifying the cached tokens of one user, and caching a token that was admitted.
#![forbid(unsafe_code)]

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

/// A token just cached, and the uses counted for it so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cached {
    /// False if the token was already cached.
    pub added: bool,
    /// A re-import keeps the counter: dropping and importing again resets nothing.
    pub used: u32,
}

/// Cache an admitted token (`admission::admit`) in the user's cache, keeping any use
/// counter already recorded for it, and prune what expired.
pub fn cache_grant(
    store: &Store,
    config: &HostConfig,
    uid: Uid,
    grant: &Grant,
    now: i64,
) -> Result<Cached, StoreError> {
    let lock = store.lock_user(uid)?;
    let mut cache = store.load_user(uid)?;
    let mark = grant::mark_for(grant, &config.trusted_keys);
    let added = cache.insert(grant.id(), grant.exp, &grant.token, mark);
    cache.prune(now - config.clock_skew.as_secs() as i64);
    store.save_user(uid, &cache, &lock)?;
    Ok(Cached {
        added,
        used: cache.used(grant.id()),
    })
}
