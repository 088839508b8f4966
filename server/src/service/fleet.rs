//! Running as several replicas on one database: what must be decided once for the
//! fleet is decided in the database, not in a process.
//!
//! * **Rate limits** are counted in the database (`rate_windows`): a sliding estimate
//!   over fixed one-minute windows, one upsert per request (and one read of the
//!   previous window), so a limit of 30 a minute is 30 for the fleet, whichever
//!   replicas the requests reach.
//! * **The active key**: `key.activated` is recorded when the fleet's active key
//!   changes, decided under the lock of the one `fleet_state` row. A replica started
//!   with a key the fleet used before and has replaced (a rolling rotation still under
//!   way) signs with its configured key, which hosts still trust, but records no switch
//!   back and logs a warning; so the trail says k1 → k2 once, however the restarts
//!   interleave. Going back to an earlier key deliberately takes a new key id.
//! * **The policy** is each replica's own file: its SHA-256 is recorded with every
//!   decision, in a `policy.loaded` record at start and on each reload, and in
//!   `/metrics`, so replicas deciding by different policies show it.
//! * **Web sessions** are rows (see `http::web`), so any replica serves any browser.
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;

use jitsudo_policy::policy::{self, Policy};
use sha2::{Digest, Sha256};

use jitsudo_core::grant::keys::SecretKey;

use super::error::{Error, Result};
use crate::config::host_name;
use crate::limits::{inc, Metrics};
use crate::store::audit::Entry;
pub use crate::store::fleet::{KeyChange, WebSession};
use crate::store::Db;

/// The largest policy file read (as `jitsudo_policy::policy::load`).
const MAX_POLICY_BYTES: usize = 4 << 20;
/// Rate-limit windows, in seconds.
const WINDOW: i64 = 60;

/// A policy as loaded, with the SHA-256 (hex) of the file's bytes.
#[derive(Clone)]
pub struct LoadedPolicy {
    pub policy: Arc<Policy>,
    pub hash: String,
}

/// Read and check the policy file once, and hash the very bytes that were parsed.
pub fn load_policy(path: &Path) -> std::result::Result<LoadedPolicy, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() > MAX_POLICY_BYTES {
        return Err(format!(
            "{}: larger than {MAX_POLICY_BYTES} bytes",
            path.display()
        ));
    }
    let hash = jitsudo_policy::audit::hex(&Sha256::digest(&bytes));
    let text =
        std::str::from_utf8(&bytes).map_err(|_| format!("{}: not valid UTF-8", path.display()))?;
    let policy = policy::parse(path, text).map_err(|e| e.to_string())?;
    Ok(LoadedPolicy {
        policy: Arc::new(policy),
        hash,
    })
}

/// A Prometheus label value: backslash, quote and newline escaped (a value read from the
/// database is not trusted to be a plain key id).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The `/metrics` lines naming the policy this replica decides by.
pub fn render_policy_info(hash: &str, replica: &str) -> String {
    let (hash, replica) = (label(hash), label(replica));
    format!(
        "# HELP jitsudod_policy_info The policy this replica decides by (SHA-256 of its file).\n\
         # TYPE jitsudod_policy_info gauge\n\
         jitsudod_policy_info{{hash=\"{hash}\",replica=\"{replica}\"}} 1\n"
    )
}

/// The `/metrics` lines naming the key this replica signs with and the fleet's active
/// key: they differ on a replica lagging in a rolling rotation.
pub fn render_key_info(key: &str, fleet_key: &str, replica: &str) -> String {
    let (key, fleet_key, replica) = (label(key), label(fleet_key), label(replica));
    format!(
        "# HELP jitsudod_signing_key_info The key this replica signs with, and the fleet's active key.\n\
         # TYPE jitsudod_signing_key_info gauge\n\
         jitsudod_signing_key_info{{key=\"{key}\",fleet_key=\"{fleet_key}\",replica=\"{replica}\"}} 1\n"
    )
}

/// When the sliding estimate falls to `limit - 1` again: the previous window's share
/// shrinks by `prev / WINDOW` a second.
fn retry_after(prev: i64, cur: i64, limit: i64, into: i64) -> u64 {
    let rest = WINDOW - into;
    if cur >= limit || prev == 0 {
        return rest.max(1) as u64;
    }
    // prev * (WINDOW - into - t) / WINDOW + cur <= limit - 1
    let t = (WINDOW - into) - (limit - 1 - cur) * WINDOW / prev;
    t.clamp(1, rest.max(1)) as u64
}

fn now() -> i64 {
    jitsudo_core::grant::now()
}

/// This minute's window: its start, and how far into it `now` is.
pub fn rate_window(now: i64) -> (i64, i64) {
    let start = now - now.rem_euclid(WINDOW);
    (start, now - start)
}

/// The window before the one starting at `start`.
pub fn previous_window(start: i64) -> i64 {
    start - WINDOW
}

/// Count one request against `bucket`'s limit of `per_minute` for the fleet; the 429
/// error when it is over. A refused request is not counted.
pub async fn limited(
    store: &Db,
    metrics: &Metrics,
    bucket: &str,
    per_minute: u32,
    what: &str,
) -> Result<()> {
    let (start, _) = rate_window(now());
    let counts = store
        .rate_count(bucket, start, previous_window(start))
        .await?;
    check_counted(store, metrics, (bucket, start), counts, per_minute, what).await
}

/// The limit's verdict on a request already counted (`cur` with it, `prev` of the
/// window before); over the limit, the count is taken back and the 429 returned.
pub async fn check_counted(
    store: &Db,
    metrics: &Metrics,
    (bucket, start): (&str, i64),
    (cur, prev): (i64, i64),
    per_minute: u32,
    what: &str,
) -> Result<()> {
    let into = now() - start;
    let limit = i64::from(per_minute);
    // The previous window's count, weighted by how much of it the last minute still
    // covers (rounded up): no burst of twice the limit across a window's edge.
    let estimate = (prev * (WINDOW - into) + WINDOW - 1) / WINDOW + cur;
    if estimate <= limit {
        return Ok(());
    }
    store.rate_uncount(bucket, start).await?;
    inc(&metrics.rate_limited);
    let secs = retry_after(prev, cur - 1, limit, into);
    Err(Error::RateLimited {
        message: format!("rate limit for {what} reached; retry in {secs}s"),
        retry_after: secs,
    })
}

/// Record that replica `replica` decides by `loaded` (read from `file`; `why`: start,
/// reload).
pub async fn record_policy_loaded(
    store: &Db,
    replica: &str,
    file: &Path,
    loaded: &LoadedPolicy,
    why: &str,
) -> Result<()> {
    let e = Entry::new("policy.loaded", format!("jitsudod:{replica}"))
        .host(&host_name())
        .detail(serde_json::json!({
            "replica": replica,
            "hash": loaded.hash,
            "rules": loaded.policy.rules.len(),
            "file": file.display().to_string(),
            "why": why,
        }));
    let mut tx = store.write().await?;
    let result = tx.audit(now(), &[e]).await.map_err(Error::from);
    tx.finish(result).await
}

/// Make `key` the fleet's active key, recording `key.activated` only when that changes
/// the fleet's key (see the module comment).
pub async fn activate_key(store: &Db, key: &SecretKey, replica: &str) -> Result<KeyChange> {
    let public_key = key.public.to_paserk();
    let change = store
        .activate_key(
            &key.id,
            &public_key,
            "jitsudod",
            serde_json::json!({
                "key_id": key.id,
                "public_key": public_key,
                "replica": replica,
            }),
            now(),
        )
        .await?;
    match &change {
        KeyChange::Unchanged => {}
        KeyChange::Activated { previous } => tracing::info!(
            key = %key.id, previous = previous.as_deref().unwrap_or("-"),
            "the fleet's active key is now this replica's active_key"
        ),
        KeyChange::Superseded { active } => tracing::warn!(
            key = %key.id, fleet_key = %active,
            "active_key was replaced by the fleet's active key; signing with it until this replica's config is updated, not recording a switch back"
        ),
    }
    Ok(change)
}

/// Remove expired web sessions and rate-limit windows no estimate reads any more.
pub async fn sweep(store: &Db) -> Result<()> {
    let now = now();
    store.web_sessions_sweep(now).await?;
    store.rate_sweep(now - 3 * WINDOW).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_within_the_window() {
        // Over the limit in this window alone: wait for the window's end.
        assert_eq!(retry_after(0, 30, 30, 10), 50);
        // Mostly the previous window's share: it shrinks by 30/60 a second.
        assert_eq!(retry_after(30, 0, 30, 0), 2);
        assert_eq!(retry_after(30, 10, 30, 59), 1);
    }

    #[test]
    fn policy_info_names_hash_and_replica() {
        let t = render_policy_info("ab12", "a");
        assert!(t.contains("jitsudod_policy_info{hash=\"ab12\",replica=\"a\"} 1"));
        let t = render_key_info("k1", "k\"2\n", "a");
        assert!(
            t.contains(
                "jitsudod_signing_key_info{key=\"k1\",fleet_key=\"k\\\"2\\n\",replica=\"a\"} 1"
            ),
            "{t}"
        );
    }
}
