//! One user's grant cache: tokens plus how often each was used.
//!
//! A grant's use counter outlives the grant's token: `--drop` and pruning keep a
//! tombstone (id, expiry, uses counted) until the grant expires, so re-importing a
//! one-time grant can never reset its counter.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserCache {
    pub version: u32,
    pub entries: Vec<CacheEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CacheEntry {
    pub jti: String,
    /// Expiry (unix seconds); the entry is pruned once it has passed.
    pub exp: i64,
    /// Uses counted so far.
    pub used: u32,
    /// The token; `None` once dropped (the counter stays until `exp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `grant::verification_mark` of the token, written when it was verified on the way
    /// in, so a run need not check the signature again (see `grant::verify_cached`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<String>,
}

pub const CACHE_VERSION: u32 = 1;

impl UserCache {
    pub fn from_bytes(bytes: &[u8]) -> Result<UserCache, String> {
        let cache: UserCache = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if cache.version != CACHE_VERSION {
            return Err(format!("unsupported cache version {}", cache.version));
        }
        Ok(cache)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut copy = self.clone();
        copy.version = CACHE_VERSION;
        // Serialising plain strings and integers cannot fail.
        serde_json::to_vec(&copy).unwrap_or_default()
    }

    pub fn entry(&self, jti: &str) -> Option<&CacheEntry> {
        self.entries.iter().find(|e| e.jti == jti)
    }

    pub fn used(&self, jti: &str) -> u32 {
        self.entry(jti).map_or(0, |e| e.used)
    }

    /// Add or revive a grant, keeping any counter already recorded for it. `verified`
    /// is the token's verification mark, given only for a token just verified.
    /// Returns false if the token was already cached.
    pub fn insert(&mut self, jti: &str, exp: i64, token: &str, verified: Option<String>) -> bool {
        match self.entries.iter_mut().find(|e| e.jti == jti) {
            Some(e) if e.token.as_deref() == Some(token) => {
                e.verified = verified;
                false
            }
            Some(e) => {
                e.token = Some(token.to_string());
                e.verified = verified;
                true
            }
            None => {
                self.entries.push(CacheEntry {
                    jti: jti.to_string(),
                    exp,
                    used: 0,
                    token: Some(token.to_string()),
                    verified,
                });
                true
            }
        }
    }

    /// Count one use. The caller holds the user's lock and has checked the limit.
    pub fn count_use(&mut self, jti: &str, exp: i64) {
        match self.entries.iter_mut().find(|e| e.jti == jti) {
            Some(e) => e.used = e.used.saturating_add(1),
            None => self.entries.push(CacheEntry {
                jti: jti.to_string(),
                exp,
                used: 1,
                token: None,
                verified: None,
            }),
        }
    }

    /// Forget tokens (all, or those whose id starts with `prefix`); counters stay.
    /// Returns the ids dropped.
    pub fn drop_tokens(&mut self, prefix: Option<&str>) -> Vec<String> {
        let mut dropped = Vec::new();
        for e in &mut self.entries {
            if e.token.is_some() && prefix.is_none_or(|p| e.jti.starts_with(p)) {
                e.token = None;
                e.verified = None;
                dropped.push(e.jti.clone());
            }
        }
        dropped
    }

    /// Remove entries that expired before `cutoff` (tokens and counters alike).
    pub fn prune(&mut self, cutoff: i64) -> usize {
        let before = self.entries.len();
        self.entries.retain(|e| e.exp >= cutoff);
        before - self.entries.len()
    }

    pub fn tokens(&self) -> impl Iterator<Item = (&CacheEntry, &str)> {
        self.entries
            .iter()
            .filter_map(|e| e.token.as_deref().map(|t| (e, t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_survive_drop_and_reimport() {
        let mut c = UserCache::default();
        assert!(c.insert("a1", 100, "tok", None));
        assert!(!c.insert("a1", 100, "tok", None));
        c.count_use("a1", 100);
        assert_eq!(c.drop_tokens(None), vec!["a1".to_string()]);
        assert_eq!(c.tokens().count(), 0);
        assert!(c.insert("a1", 100, "tok", None));
        assert_eq!(c.used("a1"), 1);
    }

    #[test]
    fn prune_removes_only_expired() {
        let mut c = UserCache::default();
        c.insert("old", 10, "t1", None);
        c.insert("new", 1000, "t2", None);
        assert_eq!(c.prune(500), 1);
        assert!(c.entry("new").is_some());
        assert!(c.entry("old").is_none());
    }

    #[test]
    fn drop_by_prefix() {
        let mut c = UserCache::default();
        c.insert("abc1", 10, "t1", None);
        c.insert("abd2", 10, "t2", None);
        assert_eq!(c.drop_tokens(Some("abc")), vec!["abc1".to_string()]);
        assert_eq!(c.tokens().count(), 1);
    }

    #[test]
    fn bytes_round_trip_and_version_check() {
        let mut c = UserCache::default();
        c.insert("a", 1, "t", None);
        let back = UserCache::from_bytes(&c.to_bytes()).unwrap();
        assert_eq!(back.entries, c.entries);
        assert!(UserCache::from_bytes(br#"{"version":9,"entries":[]}"#).is_err());
        assert!(UserCache::from_bytes(b"{garbage").is_err());
    }
}
